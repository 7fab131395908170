"""Event conditions over one table version: per-contact values and the contacts that hold.

An event condition bound to an instant (`EventPlan`) reduces each contact run of a table
version to one float: count, sum, avg, min, max, distinct (events in the period passing the
filters), the ts of the first / last matching event (all time up to now), whole days since
the last one, or the number of streak units filled. NaN means "no value" and never holds.
A contact without rows has `absent_value` (0 for count, sum and distinct; none otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core import periods
from core.columns import NO_ITEM, Kind, PathColumn
from core.dictionary import StringDictionary
from core.kernels import aggregates, compare, sequences, windows
from core.segments import derived
from core.segments.filters import ColumnSource, columns_at, row_mask
from core.segments.plan import Cmp, EventCond
from core.versions import TableVersion

DAY_MS = 86_400_000
_INF = math.inf
# A period covering at most this share of a version's rows is read through its time buckets
# (only the rows in the period), otherwise run by run over the whole version.
WINDOW_SHARE = 0.5
BUCKETS_AFTER = 2  # a version's time buckets are built on its BUCKETS_AFTER-th windowed read
_WINDOW_MEASURES = frozenset({"count", "sum", "avg", "min", "max", "distinct", "streak"})


@dataclass(frozen=True, slots=True)
class CmpRange:
    """A comparison as one range plus excluded values (the form the compare kernels take)."""

    lo: float = -_INF
    lo_inc: bool = True
    hi: float = _INF
    hi_inc: bool = True
    excluded: tuple[float, ...] = ()

    def holds(self, x: float) -> bool:
        """Whether x satisfies the comparison (NaN never does)."""
        if x != x:
            return False
        above = x >= self.lo if self.lo_inc else x > self.lo
        below = x <= self.hi if self.hi_inc else x < self.hi
        return above and below and x not in self.excluded


def compile_cmp(cmp: Cmp) -> CmpRange:
    """The range form of a Cmp: every bound given narrows one range; `ne` excludes a value."""
    lo, lo_inc, hi, hi_inc = -_INF, True, _INF, True
    lows: list[tuple[float, bool]] = []
    highs: list[tuple[float, bool]] = []
    if cmp.eq is not None:
        lows.append((cmp.eq, True))
        highs.append((cmp.eq, True))
    if cmp.gt is not None:
        lows.append((cmp.gt, False))
    if cmp.gte is not None:
        lows.append((cmp.gte, True))
    if cmp.lt is not None:
        highs.append((cmp.lt, False))
    if cmp.lte is not None:
        highs.append((cmp.lte, True))
    if cmp.between is not None:
        lows.append((cmp.between[0], True))
        highs.append((cmp.between[1], True))
    for v, inc in lows:
        v = float(v)
        if v > lo or (v == lo and not inc):
            lo, lo_inc = v, inc
    for v, inc in highs:
        v = float(v)
        if v < hi or (v == hi and not inc):
            hi, hi_inc = v, inc
    excluded = () if cmp.ne is None else (float(cmp.ne),)
    return CmpRange(lo, lo_inc, hi, hi_inc, excluded)


@dataclass(frozen=True, slots=True)
class EventPlan:
    """An event condition bound to `now` and a time zone."""

    cond: EventCond
    now_ms: int
    lo_ms: int  # period [lo_ms, hi_ms), capped at t <= now
    hi_ms: int
    test: CmpRange  # the per-contact value holds when it passes
    absent_value: float  # value of a contact with no matching rows (NaN: none)
    bounds_ms: np.ndarray | None  # streak unit boundaries


def plan_event(cond: EventCond, now_ms: int, tz: str) -> EventPlan:
    """Binds an event condition to `now_ms` in zone `tz`."""
    end = now_ms + 1  # events after now do not exist
    lo, hi, bounds = periods.NO_LOWER, end, None
    if cond.period is not None:
        lo, hi = periods.interval(cond.period, now_ms, tz)
        hi = min(hi, end)
    m = cond.measure
    if m in ("first", "last"):
        test = CmpRange(float(lo), True, float(hi), False)
    elif m == "streak":
        bounds = np.ascontiguousarray(periods.streak_bounds(cond.streak_unit, cond.streak_count, now_ms, tz), np.int64)
        test = CmpRange(float(cond.streak_count), True, float(cond.streak_count), True)
    else:
        test = compile_cmp(cond.cmp if cond.cmp is not None else Cmp(gte=1.0))
    absent = 0.0 if m in ("count", "sum", "distinct") else math.nan
    return EventPlan(cond, now_ms, int(lo), int(hi), test, absent, bounds)


# ------------------------------------------------------------- derived arrays


def contact_runs(view: ColumnSource) -> tuple[np.ndarray, np.ndarray]:
    """(run_contact, run_start) of a contact-sorted table version (cached per version)."""
    return derived.contact_runs(view.contact)  # type: ignore[attr-defined]


def _document_order(cols: list[PathColumn], path: str) -> np.ndarray | None:
    """Order of the concatenated entries of `cols` by (row, array ordinals outermost first):
    the order in which the values appear in each event."""
    prefixes = sorted({p for c in cols for p in c.items}, key=lambda p: p.count("."), reverse=True)
    keys = []
    for p in prefixes:
        parts = [c.items[p] if p in c.items else np.full(len(c), NO_ITEM, np.int32) for c in cols]
        keys.append(np.concatenate(parts))
    keys.append(np.concatenate([c.row for c in cols]))
    return np.lexsort(keys)


def numeric_entries(view: ColumnSource, path: str, dictionary: StringDictionary) -> tuple[np.ndarray, np.ndarray]:
    """(entry_row int32, value float64) of every number and numeric string at `path`, in
    document order; NaN for strings that are not numbers."""
    cols = columns_at(view, path)
    num, text = cols.get(Kind.NUM), cols.get(Kind.STR)
    if text is None:
        if num is None:
            return np.zeros(0, np.int32), np.zeros(0, np.float64)
        return num.row, num.values
    def build() -> tuple[np.ndarray, np.ndarray]:
        # codes beyond the table cannot occur: a code exists in the dictionary before any entry
        text_values = dictionary.numeric_of(text.values)[text.values]
        if num is None:
            return text.row, text_values
        order = _document_order([num, text], path)
        rows = np.concatenate([num.row, text.row])[order]
        values = np.concatenate([num.values, text_values])[order]
        return np.ascontiguousarray(rows), np.ascontiguousarray(values)

    sources = [text.row, text.values] + ([num.row] if num is not None else [])
    return derived.cache.get(("numeric", path), sources, build)


def distinct_ids(view: ColumnSource, path: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(entry_row int32, id int32, n_ids) of every value at `path` (cached per version): equal
    values of one kind share an id in [0, n_ids), values of different kinds never do; NaN
    numbers get -1 (no value). Entries ascend by row."""
    cols = [(k, c) for k, c in columns_at(view, path).items() if k != Kind.NODE]

    def build() -> tuple[np.ndarray, np.ndarray, int]:
        rows: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        n_ids = 0
        for kind, col in cols:
            if kind == Kind.NUM:
                v = col.values + 0.0  # -0.0 and 0.0 are one value
                ok = ~np.isnan(v)
                uniq = np.unique(v[ok])
                part = np.full(v.shape[0], -1, np.int32)
                part[ok] = np.searchsorted(uniq, v[ok]).astype(np.int32) + n_ids
            else:
                uniq, inverse = np.unique(col.values, return_inverse=True)
                part = inverse.astype(np.int32) + n_ids
            n_ids += int(uniq.shape[0])
            rows.append(col.row)
            ids.append(part)
        if not rows:
            return np.zeros(0, np.int32), np.zeros(0, np.int32), 0
        if len(rows) == 1:
            return rows[0], ids[0], n_ids
        row = np.concatenate(rows)
        order = np.argsort(row, kind="stable")
        return np.ascontiguousarray(row[order]), np.ascontiguousarray(np.concatenate(ids)[order]), n_ids

    sources = [c.row for _, c in cols] + [c.values for _, c in cols]
    return derived.cache.get(("ids", path), sources, build)  # type: ignore[no-any-return]


def one_per_row(
    view: ColumnSource, entry_row: np.ndarray, values: np.ndarray, fill: float | int
) -> tuple[np.ndarray | None, np.ndarray]:
    """(None, one value per row) when no row has two entries, rows without one holding `fill`
    (a "no value": NaN, or -1 for ids); else (entry_row, values) as they are. Cached: kernels
    then read a dense stream with no per-row entry bounds."""
    n = len(view)
    if derived.dense(entry_row, n) is None:
        return None, values

    def build() -> tuple[np.ndarray | None, np.ndarray]:
        if entry_row.shape[0] > 1 and not bool(np.all(entry_row[1:] > entry_row[:-1])):
            return entry_row, values
        out = np.full(n, fill, values.dtype)
        out[entry_row] = values
        return None, out

    return derived.cache.get(("per-row", n, fill != fill), [entry_row, values], build)  # type: ignore[no-any-return]


# ------------------------------------------------------------- per-run values


def run_values(plan: EventPlan, view: ColumnSource, dictionary: StringDictionary) -> tuple[np.ndarray, np.ndarray]:
    """(run_contact uint32[m], value float64[m]) of every contact run in `view`."""
    run_contact, run_start = contact_runs(view)
    ts = view.ts_ms  # type: ignore[attr-defined]
    cond = plan.cond
    mask = row_mask(view, cond.where, dictionary)
    m = cond.measure
    lo, hi = plan.lo_ms, plan.hi_ms
    if m == "count":
        values = aggregates.count_in_window(run_start, ts, mask, lo, hi).astype(np.float64)
    elif m in ("sum", "avg", "min", "max"):
        entry_row, entry_value = numeric_entries(view, cond.param, dictionary)
        rows, entry_value = one_per_row(view, entry_row, entry_value, math.nan)
        count, total, low, high = aggregates.value_stats(run_start, ts, mask, lo, hi, rows, entry_value)
        if m == "sum":
            values = total
        elif m == "avg":
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            values = low if m == "min" else high
    elif m == "distinct":
        entry_row, ids, n_ids = distinct_ids(view, cond.param)
        rows, ids = one_per_row(view, entry_row, ids, -1)
        values = aggregates.distinct_ids_in_window(run_start, ts, mask, lo, hi, rows, ids, n_ids).astype(np.float64)
    elif m in ("first", "last", "daysSinceLast"):
        kernel = sequences.first_ts if m == "first" else sequences.last_ts
        t = kernel(run_start, ts, mask, plan.now_ms + 1)
        none = t == sequences.NO_EVENT
        if m == "daysSinceLast":
            values = ((plan.now_ms - t) // DAY_MS).astype(np.float64)
        else:
            values = t.astype(np.float64)
        values[none] = np.nan
    elif m == "streak":
        assert plan.bounds_ms is not None
        values = sequences.streak_units(run_start, ts, mask, plan.bounds_ms).astype(np.float64)
    else:  # pragma: no cover - the parser admits only the measures above
        raise AssertionError(f"unknown measure {m!r}")
    return run_contact, values


def select(plan: EventPlan, view: ColumnSource, dictionary: StringDictionary, want: bool) -> tuple[np.ndarray, bool]:
    """Contacts (uint32) of `view` whose value holds (want=True) or does not (want=False);
    when that is most of the view's contacts, the others instead, flagged: (ids, complemented)."""
    if len(view) == 0:
        return np.zeros(0, np.uint32), False
    t = plan.test
    layout = _period_layout(plan, view)
    if layout is not None:
        # a contact without rows in the period has the absent value: it is on the side of
        # `want` only when that value holds == want, and then the caller takes the others
        if absent_holds(plan) != want:
            run_contact, values = _window_values(plan, view, dictionary, layout)
            ids = compare.select_runs(run_contact, values, t.lo, t.lo_inc, t.hi, t.hi_inc, np.array(t.excluded), want)
            return ids, False
    run_contact, values = run_values(plan, view, dictionary)
    return compare.select_runs_smaller(run_contact, values, t.lo, t.lo_inc, t.hi, t.hi_inc, np.array(t.excluded), want)


@dataclass(frozen=True, slots=True)
class _Bucketed:
    """A version's rows in time-bucket order (core.kernels.windows): the bucket index, and the
    ts and run of every row laid out in that order (built once per version)."""

    buckets: tuple[np.ndarray, np.ndarray, int, int]  # order, bucket starts, base_ms, width_ms
    ts_ms: np.ndarray  # int64[n]: ts of row order[i]
    run: np.ndarray  # int32[n]: run of row order[i]
    n_runs: int

    @property
    def order(self) -> np.ndarray:
        return self.buckets[0]


def _bucketed(view: ColumnSource) -> _Bucketed:
    ts = view.ts_ms  # type: ignore[attr-defined]
    buckets = windows.time_buckets(ts)
    order = buckets[0]
    _, run_start = contact_runs(view)
    run = windows.run_of_row(run_start)[order]
    return _Bucketed(buckets, ts[order], run, run_start.shape[0] - 1)


def _period_layout(plan: EventPlan, view: ColumnSource) -> _Bucketed | None:
    """The version in bucket order when reading only the period's rows pays: a measure over
    the period, a published version read before (the layout is built on its BUCKETS_AFTER-th
    read, so a version read once costs nothing extra), a period holding few of its rows."""
    if plan.cond.measure not in _WINDOW_MEASURES or not isinstance(view, TableVersion):
        return None
    lo, hi = _window(plan)
    if plan.cond.measure == "streak" and plan.bounds_ms is not None and plan.bounds_ms.shape[0] > windows.MAX_UNITS + 1:
        return None
    holder = derived.cache.get("bucketed", [view.ts_ms, view.contact], lambda: [0, None])
    holder[0] += 1
    if holder[1] is None:
        if holder[0] < BUCKETS_AFTER:
            return None
        holder[1] = _bucketed(view)
    layout: _Bucketed = holder[1]
    if windows.window_size(layout.buckets, lo, hi) > WINDOW_SHARE * len(view):
        return None
    return layout


def _window(plan: EventPlan) -> tuple[int, int]:
    """The instants [lo, hi) the plan's measure reads (a streak: its units)."""
    if plan.cond.measure == "streak" and plan.bounds_ms is not None:
        return int(plan.bounds_ms[0]), int(plan.bounds_ms[-1])
    return plan.lo_ms, plan.hi_ms


def _in_bucket_order(
    view: ColumnSource, layout: _Bucketed, entry_row: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray]:
    """(offsets or None when entry e is row e, values) of an entry stream, rows in bucket order."""
    n = len(view)
    fill: float | int = math.nan if values.dtype == np.float64 else -1

    def build() -> tuple[np.ndarray | None, np.ndarray]:
        rows, per_row = one_per_row(view, entry_row, values, fill)
        if rows is None:
            return None, per_row[layout.order]
        offsets, entry = windows.reorder_entries(windows.row_offsets(entry_row, n), layout.order)
        return offsets, values[entry]

    return derived.cache.get(("bucket-entries", n), [entry_row, values, layout.order], build)  # type: ignore[no-any-return]


def entry_rows_of(offsets: np.ndarray | None) -> np.ndarray | None:
    """The row of every entry of an entry stream in bucket order (None when entry e is row e),
    kept with the offsets."""
    if offsets is None:
        return None
    return derived.cache.get("bucket-entry-rows", [offsets], lambda: windows.entry_rows(offsets))  # type: ignore[no-any-return]


def _window_values(
    plan: EventPlan, view: ColumnSource, dictionary: StringDictionary, layout: _Bucketed
) -> tuple[np.ndarray, np.ndarray]:
    """As run_values, over the rows of the period only: contacts with no row there passing
    the filters are left out (their value is the absent one)."""
    run_contact, _ = contact_runs(view)
    cond = plan.cond
    mask = row_mask(view, cond.where, dictionary)
    if mask is not None:
        full = mask
        mask = derived.cache.get("bucket-mask", [full, layout.order], lambda: full[layout.order])
    m = cond.measure
    lo, hi = _window(plan)
    start, stop = windows.bucket_span(layout.buckets, lo, hi)
    if m == "streak":
        assert plan.bounds_ms is not None
        group, units = windows.window_units(start, stop, layout.run, layout.n_runs, layout.ts_ms, mask, plan.bounds_ms)
        return run_contact[group], units.astype(np.float64)
    args = (start, stop, layout.run, layout.n_runs, layout.ts_ms, mask, lo, hi)
    if m == "count":
        group, count = windows.window_count(*args)
        return run_contact[group], count.astype(np.float64)
    if m == "distinct":
        entry_row, ids, n_ids = distinct_ids(view, cond.param)
        offsets, ids_b = _in_bucket_order(view, layout, entry_row, ids)
        group, distinct = windows.window_distinct(*args, offsets, ids_b, n_ids, entry_rows_of(offsets))
        return run_contact[group], distinct.astype(np.float64)
    entry_row, entry_value = numeric_entries(view, cond.param, dictionary)
    offsets, values_b = _in_bucket_order(view, layout, entry_row, entry_value)
    if m in ("min", "max"):
        group, extreme = windows.window_extreme(*args, offsets, values_b, m == "max")
        return run_contact[group], extreme
    group, count, total, _, _ = windows.window_stats(*args, offsets, values_b)
    if m == "sum":
        return run_contact[group], total
    with np.errstate(invalid="ignore", divide="ignore"):
        return run_contact[group], np.where(count > 0, total / np.maximum(count, 1), np.nan)


def absent_holds(plan: EventPlan) -> bool:
    """Whether a contact with no rows of the type holds the condition."""
    return plan.test.holds(plan.absent_value)

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
from core.columns import NO_ITEM, Kind, PathColumn, StringDictionary
from core.kernels import aggregates, compare, sequences
from core.segments import derived
from core.segments.filters import ColumnSource, columns_at, row_mask
from core.segments.plan import Cmp, EventCond

DAY_MS = 86_400_000
_INF = math.inf


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
    numeric = dictionary.numeric()

    def build() -> tuple[np.ndarray, np.ndarray]:
        # codes beyond `numeric` cannot occur: a code exists in the dictionary before any entry
        text_values = numeric[text.values]
        if num is None:
            return text.row, text_values
        order = _document_order([num, text], path)
        rows = np.concatenate([num.row, text.row])[order]
        values = np.concatenate([num.values, text_values])[order]
        return np.ascontiguousarray(rows), np.ascontiguousarray(values)

    sources = [text.row, text.values] + ([num.row] if num is not None else [])
    return derived.cache.get(("numeric", path), sources, build)


def _distinct_streams(view: ColumnSource, path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(entry_row, key float64) per value kind at `path` (numbers, string codes, booleans)."""
    out = []
    for kind, col in columns_at(view, path).items():
        if kind == Kind.NODE:
            continue
        if kind == Kind.NUM:
            out.append((col.row, col.values))
        else:
            keys = derived.cache.get(("keys", path), [col.values], lambda c=col: c.values.astype(np.float64))
            out.append((col.row, keys))
    return out


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
        rows = derived.dense(entry_row, len(view))
        count, total, low, high = aggregates.value_stats(run_start, ts, mask, lo, hi, rows, entry_value)
        if m == "sum":
            values = total
        elif m == "avg":
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            values = low if m == "min" else high
    elif m == "distinct":
        values = np.zeros(run_contact.shape[0], np.float64)
        for entry_row, keys in _distinct_streams(view, cond.param):
            rows = derived.dense(entry_row, len(view))
            values += aggregates.distinct_in_window(run_start, ts, mask, lo, hi, rows, keys)
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
    run_contact, values = run_values(plan, view, dictionary)
    t = plan.test
    return compare.select_runs_smaller(run_contact, values, t.lo, t.lo_inc, t.hi, t.hi_inc, np.array(t.excluded), want)


def absent_holds(plan: EventPlan) -> bool:
    """Whether a contact with no rows of the type holds the condition."""
    return plan.test.holds(plan.absent_value)

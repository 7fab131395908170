"""When membership changes with no new write: the thresholds that move with the clock.

An event condition reads a contact's events of one type through a few instants that depend
on `now` (its thresholds): the bounds of its period, the `now + 1` past which events do not
exist yet, the unit boundaries of a streak, the day marks of `daysSinceLast`. A contact's
value of the condition at `now` is fixed by which side of each threshold each of its events
lies on. So between two instants a and b, only a contact with an event in
[min(th(a), th(b)), max(th(a), th(b))) for some threshold th can change; every other contact
keeps its value. That holds for any threshold function, monotone or not (DST folds).

`TimeIndex` finds those contacts: per event type, sorted runs of (ts, contact); `EventTimes`
keeps the indexes a registry needs, fed from the store. `next_change`
gives the next instant a threshold crosses an indexed event (or a calendar boundary), which
is when the time-driven worker (`Ticker`) should look next.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from pyroaring import BitMap

from core import periods
from core.segments.plan import AttrCond, Cmp, Definition, EventCond, Period, paths

if TYPE_CHECKING:
    from core.store import EventStore

DAY_MS = periods.DAY_MS
_FIXED_MS = {"minutes": periods.MINUTE_MS, "hours": periods.HOUR_MS, "days": DAY_MS, "weeks": periods.WEEK_MS}
_MAX_DAYS = 2**62 // DAY_MS  # daysSinceLast marks beyond this reach before any representable instant
NO_PATHS: frozenset[str] = frozenset()  # stored rows read for their times and contacts only
EXISTS = 1  # the offset of the threshold `now + 1`: events after now do not exist yet


# ----------------------------------------------------------------------------- thresholds


@dataclass(frozen=True, slots=True)
class Threshold:
    """One instant an event condition reads its type's events through, as a function of now.

    kind "shift": now + offset (a fixed distance; offset EXISTS is the existence bound);
    "period": bound `index` (0 lo, 1 hi) of `period` in `tz`; "streak": boundary `index` of
    `count` complete `unit`s in `tz`. "period" thresholds of `last`/`before` in months move
    continuously (`months`); the other "period" and "streak" ones jump at local midnights.
    """

    type: str
    kind: str
    offset: int = 0
    period: Period | None = None
    unit: str = ""
    count: int = 0
    index: int = 0
    tz: str = "UTC"

    @property
    def months(self) -> bool:
        return self.kind == "period" and self.period is not None and self.period.unit == "months"

    @property
    def calendar(self) -> bool:
        """Whether it only jumps, at local midnights in `tz`."""
        return self.kind == "streak" or (self.kind == "period" and not self.months)

    def at(self, now_ms: int) -> int:
        """The threshold's instant at `now_ms` (epoch ms)."""
        if self.kind == "shift":
            return now_ms + self.offset
        if self.kind == "period":
            assert self.period is not None
            return _interval(self.period, now_ms, self.tz)[self.index]
        return int(_streak_bounds(self.unit, self.count, now_ms, self.tz)[self.index])


@lru_cache(maxsize=8192)
def _interval(period: Period, now_ms: int, tz: str) -> tuple[int, int]:
    return periods.interval(period, now_ms, tz)


@lru_cache(maxsize=4096)
def _streak_bounds(unit: str, count: int, now_ms: int, tz: str) -> tuple[int, ...]:
    return tuple(int(x) for x in periods.streak_bounds(unit, count, now_ms, tz))


def day_marks(cmp: Cmp) -> list[int]:
    """The whole-day counts k >= 1 at which `cmp` changes its verdict between k - 1 and k:
    a `daysSinceLast` condition can only change when a contact's day count reaches one."""
    values = [v for v in (cmp.eq, cmp.ne, cmp.gt, cmp.gte, cmp.lt, cmp.lte) if v is not None]
    values += list(cmp.between or ())
    marks: set[int] = set()
    for v in values:
        if not math.isfinite(v):
            continue
        f = math.floor(v)
        marks.update(k for k in (f - 1, f, f + 1, f + 2) if 1 <= k <= _MAX_DAYS)
    return sorted(k for k in marks if cmp.holds(float(k - 1)) != cmp.holds(float(k)))


def event_thresholds(cond: EventCond, tz: str) -> list[Threshold]:
    """Every threshold of one event condition (see the module docstring)."""
    t = cond.type
    exists = Threshold(t, "shift", offset=EXISTS)
    if cond.measure == "streak":
        return [Threshold(t, "streak", unit=cond.streak_unit, count=cond.streak_count, index=i, tz=tz)
                for i in range(cond.streak_count + 1)]
    if cond.measure == "daysSinceLast":
        # floor((now - last) / day) >= k  <=>  last < now - k days + 1
        cmp = cond.cmp if cond.cmp is not None else Cmp(gte=1.0)
        return [exists] + [Threshold(t, "shift", offset=1 - k * DAY_MS) for k in day_marks(cmp)]
    out = [exists]  # first/last look at all time up to now; other measures' hi is capped at now + 1
    p = cond.period
    if p is None or p.kind in ("allTime", "between"):
        return out  # between: fixed bounds, only the cap at now + 1 moves
    if p.kind in ("last", "before"):
        bound = 0 if p.kind == "last" else 1
        if p.unit == "months":
            out.append(Threshold(t, "period", period=p, index=bound, tz=tz))
        else:
            out.append(Threshold(t, "shift", offset=-p.n * _FIXED_MS[p.unit]))
        return out
    out.append(Threshold(t, "period", period=p, index=0, tz=tz))
    if p.kind in ("yesterday", "previous"):
        out.append(Threshold(t, "period", period=p, index=1, tz=tz))
    return out


@dataclass(frozen=True, slots=True)
class Timing:
    """What of a definition's own conditions moves with the clock (references excluded)."""

    thresholds: tuple[Threshold, ...]
    daily_zones: tuple[str, ...]  # local dates whose change re-evaluates everyone (anniversaries)

    def marks(self, now_ms: int) -> list[int]:
        """Every threshold's instant at `now_ms`, in order."""
        return [th.at(now_ms) for th in self.thresholds]

    def new_day(self, a_ms: int, b_ms: int) -> bool:
        """Whether a local date of `daily_zones` differs between the two instants."""
        return any(periods.local_date(a_ms, tz) != periods.local_date(b_ms, tz) for tz in self.daily_zones)

    def rolling_types(self) -> set[str]:
        """Event types read through a threshold that moves with every millisecond (bar existence):
        the types a TimeIndex must hold for this definition."""
        return {th.type for th in self.thresholds if (th.kind == "shift" and th.offset != EXISTS) or th.months}


def timing_of(defn: Definition) -> Timing | None:
    """The timing of a definition's own conditions; None when the clock alone changes nothing."""
    thresholds: list[Threshold] = []
    zones: set[str] = set()
    for _, node in paths(defn):
        if isinstance(node, EventCond):
            for th in event_thresholds(node, defn.timezone):
                if th not in thresholds:
                    thresholds.append(th)
        elif isinstance(node, AttrCond) and node.op == "anniversaryInDays":
            zones.add(defn.timezone)
    if not thresholds and not zones:
        return None
    return Timing(tuple(thresholds), tuple(sorted(zones)))


def next_midnight(after_ms: int, tz: str) -> int:
    """The first local midnight in `tz` strictly after `after_ms`."""
    day = periods.local_date(after_ms, tz) + dt.timedelta(days=1)
    return periods.to_ms(dt.datetime(day.year, day.month, day.day, tzinfo=periods.zone(tz)))


# ----------------------------------------------------------------------------- time index


class TimeIndex:
    """Event instants by type: sorted runs of (ts int64, contact uint32), merged so that
    runs shrink geometrically (amortised O(log n) merges per row). Entries may be stale
    (erased, moved or dropped events) or repeated: lookups over-approximate, never miss."""

    def __init__(self) -> None:
        self._runs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._lock = threading.Lock()

    def has(self, type_key: str) -> bool:
        return type_key in self._runs

    def types(self) -> list[str]:
        return sorted(self._runs)

    def size(self, type_key: str) -> int:
        return sum(int(ts.shape[0]) for ts, _ in self._runs.get(type_key, ()))

    def nbytes(self) -> int:
        return sum(ts.nbytes + c.nbytes for runs in self._runs.values() for ts, c in runs)

    def reset(self, type_key: str, ts: np.ndarray | None = None, contacts: np.ndarray | None = None) -> None:
        """Starts a type over, holding the given rows (none by default)."""
        with self._lock:
            self._runs[type_key] = []
        if ts is not None and contacts is not None:
            self.add(type_key, ts, contacts)

    def add(self, type_key: str, ts: np.ndarray, contacts: np.ndarray) -> None:
        """Adds rows of one type (any order); a type not held yet is started."""
        if ts.shape[0] == 0:
            with self._lock:
                self._runs.setdefault(type_key, [])
            return
        order = np.argsort(ts, kind="stable")
        run = (np.ascontiguousarray(ts[order], np.int64), np.ascontiguousarray(contacts[order], np.uint32))
        with self._lock:
            runs = list(self._runs.get(type_key, ()))
            runs.append(run)
            while len(runs) > 1 and runs[-2][0].shape[0] <= 2 * runs[-1][0].shape[0]:
                (t1, c1), (t2, c2) = runs[-2], runs.pop()
                t, c = np.concatenate([t1, t2]), np.concatenate([c1, c2])
                order = np.argsort(t, kind="stable")
                runs[-1] = (t[order], c[order])
            self._runs[type_key] = runs  # replaced, never mutated: lookups run without the lock

    def drop_through(self, type_key: str, ts_ms: int) -> None:
        """Forgets the rows with ts <= ts_ms."""
        with self._lock:
            runs = self._runs.get(type_key)
            if not runs:
                return
            kept = []
            for t, c in runs:
                k = int(np.searchsorted(t, ts_ms, side="right"))
                if k < t.shape[0]:
                    kept.append((t[k:], c[k:]))
            self._runs[type_key] = kept

    def query(self, type_key: str, lo_ms: int, hi_ms: int) -> np.ndarray:
        """Contacts (uint32, unordered, maybe repeated) of the rows with lo_ms <= ts < hi_ms."""
        parts = []
        for t, c in self._runs.get(type_key, ()):
            i = int(np.searchsorted(t, lo_ms, side="left"))
            j = int(np.searchsorted(t, hi_ms, side="left"))
            if j > i:
                parts.append(c[i:j])
        if not parts:
            return np.zeros(0, np.uint32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def first_at_or_after(self, type_key: str, ts_ms: int) -> int | None:
        """The smallest ts >= ts_ms held for the type, or None."""
        best: int | None = None
        for t, _ in self._runs.get(type_key, ()):
            i = int(np.searchsorted(t, ts_ms, side="left"))
            if i < t.shape[0] and (best is None or int(t[i]) < best):
                best = int(t[i])
        return best


class EventTimes:
    """The time indexes kept over a store: `rolling` holds every event of the types read through
    a rolling threshold; `future` holds the events stamped after the highest instant reached
    when they were stored (only those can start to exist in a forward step). Rows are taken
    from the store by arrival number: those arriving from `arrival_mark` on are not held yet."""

    def __init__(self) -> None:
        self.rolling = TimeIndex()
        self.future = TimeIndex()
        self.future_types: set[str] = set()
        self.arrival_mark = 0

    def track(self, store: EventStore, timing: Timing | None, floor_ms: int) -> None:
        """Starts holding the types a definition reads through the clock (from the stored rows);
        `floor_ms`: the highest instant reached (rows stamped later go to `future`)."""
        if timing is None:
            return
        for type_key in timing.rolling_types():
            if not self.rolling.has(type_key):
                self.rolling.reset(type_key, *self._all_rows(store, type_key))
        for type_key in {th.type for th in timing.thresholds} - self.future_types:
            ts, contacts = self._all_rows(store, type_key)
            later = ts > floor_ms
            self.future.add(type_key, ts[later], contacts[later])
            self.future_types.add(type_key)

    def absorb(self, store: EventStore, by_type: Mapping[str, BitMap], floor_ms: int) -> None:
        """Takes in the rows an ingest stored for the contacts it touched (per type)."""
        mark = self.arrival_mark
        for type_key, ids in by_type.items():
            if self.rolling.has(type_key) or type_key in self.future_types:
                self._index_rows(store, type_key, np.array(ids.to_array(), dtype=np.uint32), mark, floor_ms)

    def add_contacts(self, store: EventStore, ids: np.ndarray, floor_ms: int) -> None:
        """Takes in every row of `ids` (ascending) again, e.g. after a merge moved rows to them."""
        for type_key in self.future_types | set(self.rolling.types()):
            self._index_rows(store, type_key, ids, 0, floor_ms)

    def rebuild_rolling(self, store: EventStore) -> None:
        """Rebuilds `rolling` from the stored rows (after many were dropped)."""
        for type_key in self.rolling.types():
            self.rolling.reset(type_key, *self._all_rows(store, type_key))

    def forget_future_through(self, ts_ms: int) -> None:
        """Drops future rows no forward step from `ts_ms` on can need."""
        for type_key in self.future.types():
            self.future.drop_through(type_key, ts_ms)

    def nbytes(self) -> int:
        return self.rolling.nbytes() + self.future.nbytes()

    def _all_rows(self, store: EventStore, type_key: str) -> tuple[np.ndarray, np.ndarray]:
        """(ts, contact) of every stored row of the type, in no particular order (merges nothing)."""
        versions = [v for pair in store.parts(type_key) for v in pair if len(v)]
        if not versions:
            return np.zeros(0, np.int64), np.zeros(0, np.uint32)
        self.arrival_mark = max(self.arrival_mark, 1 + max(v.arrival_max() for v in versions))
        return np.concatenate([v.ts_ms for v in versions]), np.concatenate([v.contact for v in versions])

    def _index_rows(self, store: EventStore, type_key: str, ids: np.ndarray, min_arrival: int, floor_ms: int) -> None:
        """Adds the rows of `ids` (ascending) arriving at or after `min_arrival`."""
        ts_parts, contact_parts = [], []
        for v in store.rows_of(type_key, ids, NO_PATHS):  # times and contacts only
            arrival = v.arrival
            self.arrival_mark = max(self.arrival_mark, v.arrival_max() + 1)
            keep = arrival >= min_arrival
            ts_parts.append(v.ts_ms[keep])
            contact_parts.append(v.contact[keep])
        if not ts_parts:
            return
        ts, contacts = np.concatenate(ts_parts), np.concatenate(contact_parts)
        if self.rolling.has(type_key):
            self.rolling.add(type_key, ts, contacts)
        if type_key in self.future_types:
            later = ts > floor_ms
            if later.any():
                self.future.add(type_key, ts[later], contacts[later])


def next_change(timing: Timing, at_ms: int, rolling: TimeIndex, future: TimeIndex) -> int | None:
    """The next instant after `at_ms` at which `timing` may change someone's membership, as far
    as the indexes tell: a threshold reaching an indexed event, or a calendar boundary.

    `future` holds the events stamped after the highest instant evaluated so far. The answer
    may be early (then nothing changes there) or, across DST or month-length changes for
    month thresholds, late by up to a day; the caller re-looks at least every second anyway.
    """
    best: int | None = None

    def consider(instant: int | None) -> None:
        nonlocal best
        if instant is not None and instant > at_ms and (best is None or instant < best):
            best = instant

    for tz in timing.daily_zones:
        consider(next_midnight(at_ms, tz))
    for th in timing.thresholds:
        if th.calendar:
            consider(next_midnight(at_ms, th.tz))
            continue
        mark = th.at(at_ms)
        index = future if th.kind == "shift" and th.offset == EXISTS else rolling
        ts = index.first_at_or_after(th.type, mark)
        if ts is None:
            continue
        # The threshold passes ts (mark > ts) once now has moved by ts - mark + 1.
        instant = at_ms + (ts - mark) + 1
        if th.months:
            instant = min(instant, next_midnight(at_ms, th.tz))
        consider(instant)
    return best


# ----------------------------------------------------------------------------- worker


class Ticker:
    """A daemon thread that calls `step` until stopped; `step` returns the seconds to wait
    before the next call (clamped to [min_wait_s, max_wait_s]). `wake` cuts a wait short."""

    def __init__(self, step: Callable[[], float], *, name: str = "segment-timer",
                 min_wait_s: float = 0.01, max_wait_s: float = 1.0,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self._step = step
        self._min, self._max = min_wait_s, max_wait_s
        self._on_error = on_error
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._step()
            except Exception as exc:  # noqa: BLE001 - the worker must outlive a failed step
                if self._on_error is not None:
                    self._on_error(exc)
                wait = self._max
            self._wake.wait(min(self._max, max(self._min, wait)))
            self._wake.clear()

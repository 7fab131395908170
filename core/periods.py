"""Periods of SEGMENTS.md section 7 as half-open intervals [lo, hi) of epoch milliseconds.

Calendar units (day, week, month) are taken in an IANA time zone: a day is a local calendar
day (23, 24 or 25 hours), weeks start on Monday 00:00 local, months on the 1st 00:00 local.
A local time that does not exist (DST gap) or exists twice is resolved the zoneinfo way
(fold=0: the offset in force before the transition). Fixed units (minutes, hours, days,
weeks in `last`/`before`) are plain durations. Every bound is an int in epoch ms; NO_LOWER
stands for "no lower bound". The evaluator further caps every interval at t <= now.
"""

from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache
import zoneinfo
from zoneinfo import ZoneInfo

import numpy as np

from core.errors import InvalidArgument
from core.segments.plan import Period

NO_LOWER = -(2**62)  # lower bound of intervals that reach back forever, epoch ms

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
_FIXED_MS = {"minutes": MINUTE_MS, "hours": HOUR_MS, "days": DAY_MS, "weeks": WEEK_MS}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_ONE_MS = dt.timedelta(milliseconds=1)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    # "localtime" names the host's zone, which would make results depend on the machine.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


@lru_cache(maxsize=256)
def zone(tz: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; InvalidArgument("timezone", ...) when unknown."""
    if tz not in _known_zones():
        raise InvalidArgument("timezone", f"unknown time zone {tz!r}")
    return ZoneInfo(tz)


def to_local(ts_ms: int, tz: str) -> dt.datetime:
    """The aware local datetime of an instant."""
    return (_EPOCH + dt.timedelta(milliseconds=ts_ms)).astimezone(zone(tz))


def to_ms(moment: dt.datetime) -> int:
    """Epoch ms of an aware datetime (zoneinfo fold honoured)."""
    return (moment - _EPOCH) // _ONE_MS


def local_date(now_ms: int, tz: str) -> dt.date:
    """The calendar date of `now_ms` in the zone."""
    return to_local(now_ms, tz).date()


def _midnight_ms(day: dt.date, tz: str) -> int:
    """Epoch ms of the first instant of local date `day` (00:00, fold=0)."""
    return to_ms(dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz)))


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    """(year, month) moved by `delta` months; the year may leave datetime's range."""
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _unit_start_date(day: dt.date, unit: str) -> dt.date:
    """The local date on which the day/week/month containing `day` starts."""
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())  # Monday = 0
    if unit == "month":
        return day.replace(day=1)
    raise InvalidArgument("unit", f"unknown calendar unit {unit!r}")


def _shift_start_ms(start: dt.date, unit: str, k: int, tz: str) -> int:
    """Epoch ms of the start of the unit `k` units before the one starting on `start`.

    Returns NO_LOWER when that start falls before year 1."""
    try:
        if unit == "day":
            day = start - dt.timedelta(days=k)
        elif unit == "week":
            day = start - dt.timedelta(weeks=k)
        else:
            year, month = _add_months(start.year, start.month, -k)
            if year < dt.MINYEAR:
                return NO_LOWER
            day = dt.date(year, month, 1)
    except OverflowError:
        return NO_LOWER
    return _midnight_ms(day, tz)


def unit_start(ts_ms: int, unit: str, tz: str) -> int:
    """Epoch ms of the start of the local day/week/month containing `ts_ms`."""
    return _midnight_ms(_unit_start_date(local_date(ts_ms, tz), unit), tz)


def months_before(now_ms: int, n: int, tz: str) -> int:
    """The same local date `n` months before now (day clamped to the month's length), same
    local wall time, as epoch ms; NO_LOWER when that falls before year 1."""
    here = to_local(now_ms, tz)
    year, month = _add_months(here.year, here.month, -n)
    if year < dt.MINYEAR:
        return NO_LOWER
    day = min(here.day, calendar.monthrange(year, month)[1])
    then = dt.datetime(year, month, day, here.hour, here.minute, here.second, here.microsecond,
                       tzinfo=zone(tz), fold=0)
    return to_ms(then)


def _ago_ms(now_ms: int, unit: str, n: int, tz: str) -> int:
    """now minus n units: calendar months, fixed durations otherwise."""
    if unit == "months":
        return months_before(now_ms, n, tz)
    if unit not in _FIXED_MS:
        raise InvalidArgument("period", f"unknown unit {unit!r}")
    return max(now_ms - n * _FIXED_MS[unit], NO_LOWER)


def interval(period: Period, now_ms: int, tz: str) -> tuple[int, int]:
    """The period at `now_ms` in zone `tz` as [lo, hi) epoch ms (see module docstring)."""
    kind = period.kind
    if kind == "last":
        return _ago_ms(now_ms, period.unit, period.n, tz), now_ms + 1
    if kind == "before":
        return NO_LOWER, _ago_ms(now_ms, period.unit, period.n, tz)
    if kind == "allTime":
        return NO_LOWER, now_ms + 1
    if kind == "between":
        return period.from_ms, period.to_ms
    today = local_date(now_ms, tz)
    if kind == "today":
        return _midnight_ms(today, tz), now_ms + 1
    if kind == "yesterday":
        return _shift_start_ms(today, "day", 1, tz), _midnight_ms(today, tz)
    if kind == "thisWeek":
        return _midnight_ms(_unit_start_date(today, "week"), tz), now_ms + 1
    if kind == "thisMonth":
        return _midnight_ms(_unit_start_date(today, "month"), tz), now_ms + 1
    if kind == "previous":
        start = _unit_start_date(today, period.unit)
        return _shift_start_ms(start, period.unit, period.n, tz), _midnight_ms(start, tz)
    raise InvalidArgument("period", f"unknown period kind {kind!r}")


def streak_bounds(unit: str, count: int, now_ms: int, tz: str) -> np.ndarray:
    """count + 1 ascending int64 boundaries: the starts of the `count` previous complete
    day/week/month units, then the start of the current one. Unit i is [b[i], b[i+1])."""
    start = _unit_start_date(local_date(now_ms, tz), unit)
    bounds = [_shift_start_ms(start, unit, k, tz) for k in range(count, -1, -1)]
    return np.asarray(bounds, dtype=np.int64)

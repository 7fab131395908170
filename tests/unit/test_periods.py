"""Periods against an independent reference.

The reference never converts local wall time to UTC through zoneinfo's `utcoffset`: it only
asks "what is the local time of this instant" (datetime.fromtimestamp) and searches. The start
of a local day is the first instant whose local date is that day; a wall time is the earliest
instant showing it (fold=0), or, in a DST gap, the wall time read with the offset in force
before the gap.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidArgument
from core.periods import NO_LOWER, interval, local_date, months_before, streak_bounds, unit_start
from core.segments.plan import Period

HOUR = 3_600_000
DAY = 24 * HOUR
UTC = dt.timezone.utc

ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",  # +05:30, no DST
    "America/Sao_Paulo",  # until 2019 DST began at local midnight
    "Pacific/Apia",  # skipped 2011-12-30 entirely
]


# --- reference -------------------------------------------------------------------------

def ref_local(ms: int, tz: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms // 1000, tz=ZoneInfo(tz)) + dt.timedelta(milliseconds=ms % 1000)


def naive_utc_ms(naive: dt.datetime) -> int:
    """The instant at which a UTC clock shows `naive`."""
    return int(naive.replace(tzinfo=UTC).timestamp()) * 1000 + naive.microsecond // 1000


def ref_first_instant(day: dt.date, tz: str) -> int:
    """Smallest ms whose local date is on or after `day` (binary search)."""
    guess = naive_utc_ms(dt.datetime(day.year, day.month, day.day))
    lo, hi = guess - 2 * DAY, guess + 2 * DAY  # ref_local(lo) < day <= ref_local(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ref_local(mid, tz).date() >= day:
            hi = mid
        else:
            lo = mid
    return hi


def ref_wall_ms(naive: dt.datetime, tz: str) -> int:
    """The instant showing wall time `naive` (earliest if twice; pre-gap offset if never)."""
    base = naive_utc_ms(naive)
    offsets = {ref_local(base + h * HOUR, tz).utcoffset() for h in range(-30, 31)}
    hits = [base - off // dt.timedelta(milliseconds=1) for off in offsets if off is not None]
    hits = [t for t in hits if ref_local(t, tz).replace(tzinfo=None) == naive]
    if hits:
        return min(hits)
    before = ref_local(base - DAY, tz).utcoffset()
    assert before is not None
    return base - before // dt.timedelta(milliseconds=1)


def ref_today(now_ms: int, tz: str) -> dt.date:
    return ref_local(now_ms, tz).date()


def ref_days_back(day: dt.date, n: int) -> dt.date:
    return dt.date.fromordinal(day.toordinal() - n)


def ref_monday(day: dt.date) -> dt.date:
    while day.weekday() != 0:
        day = ref_days_back(day, 1)
    return day


def ref_months_back(year: int, month: int, n: int) -> tuple[int, int]:
    for _ in range(n):
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return year, month


def ref_month_len(year: int, month: int) -> int:
    nxt = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def ref_unit_start_day(day: dt.date, unit: str, back: int) -> dt.date:
    """The first local date of the unit `back` units before the one containing `day`."""
    if unit == "day":
        return ref_days_back(day, back)
    if unit == "week":
        return ref_days_back(ref_monday(day), 7 * back)
    year, month = ref_months_back(day.year, day.month, back)
    return dt.date(year, month, 1)


def ref_months_before(now_ms: int, n: int, tz: str) -> int:
    here = ref_local(now_ms, tz)
    year, month = ref_months_back(here.year, here.month, n)
    wall = dt.datetime(year, month, min(here.day, ref_month_len(year, month)),
                       here.hour, here.minute, here.second, here.microsecond)
    return ref_wall_ms(wall, tz)


def ref_interval(p: Period, now_ms: int, tz: str) -> tuple[int, int]:
    fixed = {"minutes": 60_000, "hours": HOUR, "days": DAY, "weeks": 7 * DAY}
    today = ref_today(now_ms, tz)
    if p.kind in ("last", "before"):
        edge = ref_months_before(now_ms, p.n, tz) if p.unit == "months" else now_ms - p.n * fixed[p.unit]
        return (edge, now_ms + 1) if p.kind == "last" else (NO_LOWER, edge)
    if p.kind == "today":
        return ref_first_instant(today, tz), now_ms + 1
    if p.kind == "yesterday":
        return ref_first_instant(ref_days_back(today, 1), tz), ref_first_instant(today, tz)
    if p.kind == "thisWeek":
        return ref_first_instant(ref_monday(today), tz), now_ms + 1
    if p.kind == "thisMonth":
        return ref_first_instant(today.replace(day=1), tz), now_ms + 1
    if p.kind == "previous":
        return (ref_first_instant(ref_unit_start_day(today, p.unit, p.n), tz),
                ref_first_instant(ref_unit_start_day(today, p.unit, 0), tz))
    if p.kind == "allTime":
        return NO_LOWER, now_ms + 1
    assert p.kind == "between"
    return p.from_ms, p.to_ms


def at(tz: str, *wall: int) -> int:
    """Epoch ms of a (non-ambiguous) local wall time."""
    return ref_wall_ms(dt.datetime(*wall), tz)  # type: ignore[arg-type]


# --- properties against the reference --------------------------------------------------

PERIODS = [
    Period("today"), Period("yesterday"), Period("thisWeek"), Period("thisMonth"), Period("allTime"),
    Period("previous", "day", 1), Period("previous", "day", 3), Period("previous", "week", 1),
    Period("previous", "week", 2), Period("previous", "month", 1), Period("previous", "month", 13),
    Period("last", "minutes", 90), Period("last", "hours", 24), Period("last", "days", 7),
    Period("last", "weeks", 2), Period("last", "months", 1), Period("last", "months", 3),
    Period("last", "months", 12), Period("before", "days", 30), Period("before", "hours", 5),
    Period("before", "months", 1), Period("before", "months", 12),
    Period("between", from_ms=1_700_000_000_000, to_ms=1_700_000_000_001),
]

_instants = st.integers(naive_utc_ms(dt.datetime(2000, 1, 1)), naive_utc_ms(dt.datetime(2040, 1, 1)))


@settings(max_examples=80, deadline=None)
@given(_instants, st.sampled_from(ZONES))
def test_every_period_matches_the_reference(now_ms: int, tz: str) -> None:
    for p in PERIODS:
        assert interval(p, now_ms, tz) == ref_interval(p, now_ms, tz), p


@settings(max_examples=60, deadline=None)
@given(_instants, st.sampled_from(ZONES), st.sampled_from(["day", "week", "month"]), st.integers(1, 14))
def test_streak_bounds_match_the_reference(now_ms: int, tz: str, unit: str, count: int) -> None:
    bounds = streak_bounds(unit, count, now_ms, tz)
    today = ref_today(now_ms, tz)
    expected = [ref_first_instant(ref_unit_start_day(today, unit, k), tz) for k in range(count, -1, -1)]
    assert bounds.dtype == np.int64 and bounds.shape == (count + 1,)
    assert bounds.tolist() == expected
    assert np.all(np.diff(bounds) > 0)
    assert bounds[-1] == unit_start(now_ms, unit, tz) <= now_ms


@settings(max_examples=60, deadline=None)
@given(_instants, st.sampled_from(ZONES))
def test_unit_start_matches_the_reference(ts_ms: int, tz: str) -> None:
    day = ref_today(ts_ms, tz)
    assert local_date(ts_ms, tz) == day
    for unit in ("day", "week", "month"):
        start = unit_start(ts_ms, unit, tz)
        assert start == ref_first_instant(ref_unit_start_day(day, unit, 0), tz)
        assert start <= ts_ms and unit_start(start, unit, tz) == start


# --- named cases -----------------------------------------------------------------------

@pytest.mark.parametrize(("tz", "day", "hours"), [
    ("UTC", dt.date(2024, 3, 31), 24),
    ("Europe/London", dt.date(2024, 3, 31), 23),
    ("Europe/London", dt.date(2024, 10, 27), 25),
    ("America/New_York", dt.date(2024, 3, 10), 23),
    ("America/New_York", dt.date(2024, 11, 3), 25),
    ("Australia/Lord_Howe", dt.date(2024, 4, 7), 24.5),
    ("Australia/Lord_Howe", dt.date(2024, 10, 6), 23.5),
])
def test_yesterday_is_a_calendar_day(tz: str, day: dt.date, hours: float) -> None:
    next_noon = at(tz, day.year, day.month, day.day, 12) + DAY + 2 * HOUR  # safely on the next day
    assert ref_today(next_noon, tz) == day + dt.timedelta(days=1)
    lo, hi = interval(Period("yesterday"), next_noon, tz)
    assert (hi - lo) == hours * HOUR
    assert ref_local(lo, tz).replace(tzinfo=None) == dt.datetime(day.year, day.month, day.day)
    assert ref_local(hi, tz).replace(tzinfo=None) == dt.datetime(day.year, day.month, day.day) + dt.timedelta(days=1)


def test_today_in_london_across_the_spring_change() -> None:
    now = naive_utc_ms(dt.datetime(2024, 3, 31, 12, 0))  # 13:00 BST
    lo, hi = interval(Period("today"), now, "Europe/London")
    assert lo == naive_utc_ms(dt.datetime(2024, 3, 31, 0, 0))  # midnight GMT
    assert hi == now + 1
    lo_ny, _ = interval(Period("today"), now, "America/New_York")
    assert lo_ny == naive_utc_ms(dt.datetime(2024, 3, 31, 4, 0))  # midnight EDT


def test_last_days_is_a_fixed_duration_even_across_dst() -> None:
    now = at("Europe/London", 2024, 4, 1, 12)
    lo, hi = interval(Period("last", "days", 2), now, "Europe/London")
    assert hi - lo == 2 * DAY + 1
    assert ref_local(lo, "Europe/London").hour == 11  # 2 x 24 h back crosses the lost hour


def test_last_months_keeps_local_time_of_day_across_dst() -> None:
    now = at("Europe/London", 2024, 4, 15, 12, 30)
    lo, _ = interval(Period("last", "months", 1), now, "Europe/London")
    assert ref_local(lo, "Europe/London").replace(tzinfo=None) == dt.datetime(2024, 3, 15, 12, 30)
    assert now - lo == 31 * DAY - HOUR
    now_ny = at("America/New_York", 2024, 11, 20, 8, 0)
    lo_ny, _ = interval(Period("last", "months", 1), now_ny, "America/New_York")
    assert ref_local(lo_ny, "America/New_York").replace(tzinfo=None) == dt.datetime(2024, 10, 20, 8, 0)
    assert now_ny - lo_ny == 31 * DAY + HOUR


@pytest.mark.parametrize(("now", "n", "expected"), [
    (dt.datetime(2023, 3, 31, 10, 0), 1, dt.datetime(2023, 2, 28, 10, 0)),
    (dt.datetime(2024, 3, 31, 10, 0), 1, dt.datetime(2024, 2, 29, 10, 0)),
    (dt.datetime(2024, 5, 31, 23, 59, 59), 3, dt.datetime(2024, 2, 29, 23, 59, 59)),
    (dt.datetime(2024, 12, 31, 0, 0), 1, dt.datetime(2024, 11, 30, 0, 0)),
    (dt.datetime(2024, 1, 31, 6, 0), 2, dt.datetime(2023, 11, 30, 6, 0)),
    (dt.datetime(2024, 2, 29, 6, 0), 12, dt.datetime(2023, 2, 28, 6, 0)),
    (dt.datetime(2024, 7, 15, 6, 0), 25, dt.datetime(2022, 6, 15, 6, 0)),
])
@pytest.mark.parametrize("tz", ["UTC", "Europe/London", "America/New_York"])
def test_months_are_clamped_to_the_month_length(now: dt.datetime, n: int, expected: dt.datetime, tz: str) -> None:
    now_ms = ref_wall_ms(now, tz)
    got = months_before(now_ms, n, tz)
    assert ref_local(got, tz).replace(tzinfo=None) == expected
    assert interval(Period("last", "months", n), now_ms, tz) == (got, now_ms + 1)
    assert interval(Period("before", "months", n), now_ms, tz) == (NO_LOWER, got)


def test_month_back_into_a_dst_gap_uses_the_pre_gap_offset() -> None:
    # 2024-03-31 01:30 does not exist in London (01:00 GMT -> 02:00 BST)
    now = at("Europe/London", 2024, 5, 31, 1, 30)
    lo, _ = interval(Period("last", "months", 2), now, "Europe/London")
    assert lo == naive_utc_ms(dt.datetime(2024, 3, 31, 1, 30))  # read as GMT
    assert ref_local(lo, "Europe/London").replace(tzinfo=None) == dt.datetime(2024, 3, 31, 2, 30)
    # the wall time exists twice in autumn: the earlier instant (BST) is taken
    now = at("Europe/London", 2024, 11, 27, 1, 30)
    lo, _ = interval(Period("last", "months", 1), now, "Europe/London")
    assert lo == naive_utc_ms(dt.datetime(2024, 10, 27, 0, 30))


@pytest.mark.parametrize("weekday", range(7))
def test_week_starts_on_monday(weekday: int) -> None:
    # 2024-06-03 is a Monday
    day = dt.date(2024, 6, 3) + dt.timedelta(days=weekday)
    assert day.weekday() == weekday
    for wall in ((0, 0), (12, 0), (23, 59)):
        now = at("America/New_York", day.year, day.month, day.day, *wall)
        lo, _ = interval(Period("thisWeek"), now, "America/New_York")
        assert ref_local(lo, "America/New_York").replace(tzinfo=None) == dt.datetime(2024, 6, 3)
        plo, phi = interval(Period("previous", "week", 1), now, "America/New_York")
        assert (ref_local(plo, "America/New_York").replace(tzinfo=None), phi) == (dt.datetime(2024, 5, 27), lo)


def test_week_containing_a_dst_change_is_167_or_169_hours() -> None:
    now = at("Europe/London", 2024, 4, 3, 9)  # Wednesday after the spring change
    lo, hi = interval(Period("previous", "week", 1), now, "Europe/London")
    assert hi - lo == 7 * DAY - HOUR
    now = at("Europe/London", 2024, 10, 30, 9)
    lo, hi = interval(Period("previous", "week", 1), now, "Europe/London")
    assert hi - lo == 7 * DAY + HOUR


def test_this_month_and_previous_months() -> None:
    now = at("Australia/Lord_Howe", 2024, 4, 20, 8)
    lo, hi = interval(Period("thisMonth"), now, "Australia/Lord_Howe")
    assert ref_local(lo, "Australia/Lord_Howe").replace(tzinfo=None) == dt.datetime(2024, 4, 1)
    assert hi == now + 1
    plo, phi = interval(Period("previous", "month", 2), now, "Australia/Lord_Howe")
    assert ref_local(plo, "Australia/Lord_Howe").replace(tzinfo=None) == dt.datetime(2024, 2, 1)
    assert phi == lo


def test_open_ended_and_absolute_periods() -> None:
    now = 1_718_000_000_000
    assert interval(Period("allTime"), now, "UTC") == (NO_LOWER, now + 1)
    assert interval(Period("before", "hours", 2), now, "Asia/Kolkata") == (NO_LOWER, now - 2 * HOUR)
    assert interval(Period("last", "minutes", 15), now, "UTC") == (now - 15 * 60_000, now + 1)
    assert interval(Period("between", from_ms=5, to_ms=9), now, "Europe/London") == (5, 9)


def test_huge_amounts_stay_in_range() -> None:
    now = 1_718_000_000_000
    lo, _ = interval(Period("last", "months", 10**9), now, "UTC")
    assert lo == NO_LOWER
    assert interval(Period("before", "months", 10**9), now, "UTC") == (NO_LOWER, NO_LOWER)
    lo, _ = interval(Period("last", "days", 10**9), now, "UTC")
    assert lo == now - 10**9 * DAY and lo > NO_LOWER
    lo, hi = interval(Period("previous", "day", 10**9), now, "UTC")
    assert lo == NO_LOWER and hi == unit_start(now, "day", "UTC")
    assert interval(Period("previous", "month", 10**9), now, "UTC")[0] == NO_LOWER


def test_streak_bounds_in_london_weeks() -> None:
    now = at("Europe/London", 2024, 4, 3, 9)  # Wednesday
    bounds = streak_bounds("week", 4, now, "Europe/London")
    walls = [ref_local(int(b), "Europe/London").replace(tzinfo=None) for b in bounds]
    assert walls == [dt.datetime(2024, 3, 4), dt.datetime(2024, 3, 11), dt.datetime(2024, 3, 18),
                     dt.datetime(2024, 3, 25), dt.datetime(2024, 4, 1)]
    assert int(bounds[4] - bounds[3]) == 7 * DAY - HOUR  # the week of the spring change


def test_streak_bounds_of_months_clamp_nothing() -> None:
    now = at("UTC", 2024, 3, 31, 23, 59)
    bounds = streak_bounds("month", 3, now, "UTC")
    assert [ref_local(int(b), "UTC").date() for b in bounds] == [
        dt.date(2023, 12, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]


def test_midnight_gap_starts_the_day_at_the_transition() -> None:
    # Sao Paulo 2018-11-04: clocks jumped from 00:00 to 01:00, so the day starts at 01:00 local
    now = naive_utc_ms(dt.datetime(2018, 11, 4, 15, 0))
    lo, _ = interval(Period("today"), now, "America/Sao_Paulo")
    assert ref_local(lo, "America/Sao_Paulo").replace(tzinfo=None) == dt.datetime(2018, 11, 4, 1, 0)
    assert ref_local(lo - 1, "America/Sao_Paulo").date() == dt.date(2018, 11, 3)


def test_unknown_zone_and_unit() -> None:
    with pytest.raises(InvalidArgument) as info:
        interval(Period("today"), 0, "Mars/Olympus")
    assert info.value.field == "timezone"
    with pytest.raises(InvalidArgument):
        unit_start(0, "fortnight", "UTC")

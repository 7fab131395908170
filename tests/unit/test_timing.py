"""Thresholds of event conditions, the time index, next-change instants and the ticker."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import periods
from core.segments.definition import parse_definition
from core.segments.plan import Cmp, EventCond
from core.segments.timing import (
    DAY_MS,
    EXISTS,
    Ticker,
    TimeIndex,
    day_marks,
    event_thresholds,
    next_change,
    next_midnight,
    timing_of,
)

NOW = periods.to_ms(periods.to_local(0, "UTC").replace(year=2026, month=3, day=7, hour=12))  # Sat 2026-03-07 12:00Z
MINUTE = 60_000


def cond(body: dict, tz: str = "UTC") -> EventCond:
    defn = parse_definition({"name": "x", "timezone": tz, "condition": {"event": body}})
    assert isinstance(defn.condition, EventCond)
    return defn.condition


@pytest.mark.parametrize(
    ("cmp", "marks"),
    [
        (Cmp(gte=30), [30]),
        (Cmp(gt=30), [31]),
        (Cmp(lt=7), [7]),
        (Cmp(lte=7), [8]),
        (Cmp(eq=3), [3, 4]),
        (Cmp(ne=0), [1]),
        (Cmp(between=(2, 5)), [2, 6]),
        (Cmp(gt=2.5), [3]),
        (Cmp(gte=-4), []),  # always holds
        (Cmp(gte=10, lt=12), [10, 12]),
    ],
)
def test_day_marks_are_where_a_whole_day_count_changes_the_verdict(cmp: Cmp, marks: list[int]) -> None:
    assert day_marks(cmp) == marks
    for k in range(1, 40):  # brute force over small counts
        assert (k in marks) == (cmp.holds(k - 1) != cmp.holds(k))


def test_thresholds_of_each_period_kind() -> None:
    rolling = event_thresholds(cond({"type": "t", "period": {"last": {"days": 30}}}), "UTC")
    assert [(th.kind, th.offset) for th in rolling] == [("shift", EXISTS), ("shift", -30 * DAY_MS)]
    assert rolling[1].at(NOW) == NOW - 30 * DAY_MS
    before = event_thresholds(cond({"type": "t", "period": {"before": {"hours": 2}}, "last": {}}), "UTC")
    assert [(th.kind, th.offset) for th in before] == [("shift", EXISTS), ("shift", -2 * 3_600_000)]
    months = event_thresholds(cond({"type": "t", "period": {"last": {"months": 1}}}), "Europe/London")
    assert months[1].months and not months[1].calendar
    assert months[1].at(NOW) == periods.months_before(NOW, 1, "Europe/London")
    today = event_thresholds(cond({"type": "t", "period": {"today": {}}}, "America/New_York"), "America/New_York")
    assert [th.kind for th in today] == ["shift", "period"] and today[1].calendar
    assert today[1].at(NOW) == periods.interval(today[1].period, NOW, "America/New_York")[0]  # type: ignore[arg-type]
    previous = event_thresholds(cond({"type": "t", "period": {"previous": {"unit": "week", "count": 2}}}), "UTC")
    assert [th.index for th in previous if th.kind == "period"] == [0, 1]
    streak = event_thresholds(cond({"type": "t", "streak": {"unit": "day", "count": 3}}), "UTC")
    assert [th.at(NOW) for th in streak] == [int(x) for x in periods.streak_bounds("day", 3, NOW, "UTC")]
    since = event_thresholds(cond({"type": "t", "daysSinceLast": {"gte": 30}}), "UTC")
    assert [th.offset for th in since] == [EXISTS, 1 - 30 * DAY_MS]
    assert [th.kind for th in event_thresholds(cond({"type": "t", "period": {"allTime": {}}}), "UTC")] == ["shift"]


def test_timing_of_a_definition() -> None:
    assert timing_of(parse_definition({"name": "a", "condition": {"identifier": {"kind": "email"}}})) is None
    assert timing_of(parse_definition({"name": "s", "contacts": [1, 2]})) is None
    birthday = timing_of(parse_definition({"name": "b", "timezone": "Asia/Kolkata", "condition": {
        "attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 1}}}))
    assert birthday is not None and birthday.daily_zones == ("Asia/Kolkata",) and not birthday.thresholds
    assert birthday.new_day(NOW, NOW + 12 * 3_600_000) and not birthday.new_day(NOW, NOW + 3_600_000)
    both = timing_of(parse_definition({"name": "c", "condition": {"all": [
        {"event": {"type": "buy", "period": {"last": {"hours": 1}}}},
        {"event": {"type": "view", "period": {"today": {}}}},
        {"event": {"type": "buy", "period": {"last": {"hours": 1}}, "count": {"gte": 2}}},
    ]}}))
    assert both is not None
    assert both.rolling_types() == {"buy"}  # view only jumps at midnight
    assert len(both.thresholds) == 4  # the repeated buy thresholds are kept once


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(st.tuples(st.integers(-50, 50), st.integers(1, 9)), max_size=20), max_size=8),
    lo=st.integers(-60, 60), width=st.integers(0, 40), drop=st.one_of(st.none(), st.integers(-60, 60)),
)
def test_time_index_matches_a_plain_list(batches: list[list[tuple[int, int]]], lo: int, width: int,
                                         drop: int | None) -> None:
    index = TimeIndex()
    rows: list[tuple[int, int]] = []
    for batch in batches:
        index.add("t", np.array([t for t, _ in batch], np.int64), np.array([c for _, c in batch], np.uint32))
        rows += batch
    if drop is not None:
        index.drop_through("t", drop)
        rows = [(t, c) for t, c in rows if t > drop]
    hi = lo + width
    assert sorted(index.query("t", lo, hi).tolist()) == sorted(c for t, c in rows if lo <= t < hi)
    later = [t for t, _ in rows if t >= lo]
    assert index.first_at_or_after("t", lo) == (min(later) if later else None)
    assert index.size("t") == len(rows)
    assert index.query("other", -100, 100).shape == (0,)


def test_next_change_of_a_rolling_window_and_of_a_future_event() -> None:
    timing = timing_of(parse_definition({"name": "w", "condition": {
        "event": {"type": "buy", "period": {"last": {"minutes": 5}}}}}))
    assert timing is not None
    rolling, future = TimeIndex(), TimeIndex()
    rolling.add("buy", np.array([NOW - 2 * MINUTE, NOW - 4 * MINUTE]), np.array([1, 2], np.uint32))
    future.add("buy", np.array([NOW + 10 * MINUTE]), np.array([3], np.uint32))
    # the older event leaves the window first: when now - 5 min passes it
    assert next_change(timing, NOW, rolling, future) == NOW - 4 * MINUTE + 5 * MINUTE + 1
    after = NOW + 3 * MINUTE + 1  # both have left; the future event starts to exist next
    assert next_change(timing, after, rolling, future) == NOW + 10 * MINUTE
    assert next_change(timing, NOW + 11 * MINUTE, TimeIndex(), TimeIndex()) is None


def test_next_change_of_calendar_periods_is_the_next_local_midnight() -> None:
    timing = timing_of(parse_definition({"name": "d", "timezone": "America/New_York", "condition": {
        "event": {"type": "open", "period": {"yesterday": {}}}}}))
    assert timing is not None
    # New York springs forward on Sunday 2026-03-08: that day has 23 hours
    midnight = next_midnight(NOW, "America/New_York")
    assert midnight == periods.to_ms(periods.to_local(NOW, "America/New_York").replace(
        day=8, hour=0, minute=0, second=0, microsecond=0))
    assert next_change(timing, NOW, TimeIndex(), TimeIndex()) == midnight
    assert next_midnight(midnight, "America/New_York") - midnight == 23 * 3_600_000


def test_ticker_calls_until_stopped_and_survives_a_failing_step() -> None:
    calls: list[float] = []
    errors: list[BaseException] = []
    ran = threading.Event()

    def step() -> float:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise RuntimeError("boom")
        if len(calls) >= 4:
            ran.set()
        return 0.0

    ticker = Ticker(step, min_wait_s=0.001, max_wait_s=0.01, on_error=errors.append)
    ticker.start()
    assert ran.wait(5.0)
    ticker.stop()
    assert not ticker.running
    count = len(calls)
    time.sleep(0.05)
    assert len(calls) == count  # stopped for good
    assert len(errors) == 1 and str(errors[0]) == "boom"
    slow = Ticker(lambda: 60.0, max_wait_s=60.0)
    slow.start()
    slow.wake()
    slow.stop(timeout=5.0)  # a long wait is cut short
    assert not slow.running

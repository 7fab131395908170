"""Segment history buckets (any resolution, coarsening) and alert rules (parsing, firing, resolving)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidArgument
from core.segments.alerts import AlertBook, parse_rule, rules_of
from core.segments.history import MAX_POINTS, SegmentHistory

T0 = 1_790_000_040_000  # a whole minute


def test_points_carry_size_forward_and_sum_entries_and_exits() -> None:
    h = SegmentHistory()
    assert [(p.size, p.entered) for p in h.points(T0, T0 + 120_000, 60_000)] == [(0, 0), (0, 0)]  # nothing yet
    h.record(T0 + 500, 3, 0, 3)
    h.record(T0 + 900, 1, 1, 3)  # same second: one bucket
    h.record(T0 + 61_000, 0, 2, 1)
    h.record(T0 + 185_000, 4, 0, 5)
    assert len(h) == 3
    points = h.points(T0, T0 + 240_000, 60_000)
    assert [(p.at_ms - T0, p.size, p.entered, p.exited) for p in points] == [
        (0, 3, 4, 1), (60_000, 1, 0, 2), (120_000, 1, 0, 0), (180_000, 5, 4, 0)]
    assert [p.size for p in h.points(T0 - 120_000, T0, 60_000)] == [0, 0]  # before anything: empty
    assert h.totals(T0, T0 + 61_000) == (4, 3)
    with pytest.raises(InvalidArgument):
        h.points(T0, T0 + (MAX_POINTS + 1) * 1000, 1000)
    h.record(T0, 1, 0, 6)  # the clock went back: counted in the last bucket
    assert h.points(T0 + 180_000, T0 + 240_000, 60_000)[0].entered == 5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1_000_000), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=300),
       st.sampled_from([60_000, 3_600_000]))
def test_coarsened_history_keeps_totals_and_final_sizes(steps: list[tuple[int, int, int]], resolution: int) -> None:
    # at most 300 steps 1,000 s apart span under 4 days: day buckets never need dropping
    full, small = SegmentHistory(max_buckets=10**6), SegmentHistory(max_buckets=16)
    at, size = T0, 0
    for gap, entered, exited in steps:
        at += gap
        size = max(0, size + entered - exited)
        full.record(at, entered, exited, size)
        small.record(at, entered, exited, size)
    assert len(small) <= 16
    start, end = T0 - T0 % 86_400_000, at + 1
    coarse = 86_400_000
    a, b = full.points(start, end, coarse), small.points(start, end, coarse)
    # at a resolution no finer than the coarsest merge, both agree
    assert [(p.size, p.entered, p.exited) for p in a] == [(p.size, p.entered, p.exited) for p in b]
    assert sum(p.entered for p in full.points(start, end, resolution)) == sum(e for _, e, _ in steps)
    assert SegmentHistory.from_state(small.to_state()).points(start, end, coarse) == b


def test_alert_rules_read_from_tags() -> None:
    assert rules_of(["vip", "alert:size>=100", "alert:entries/10m<=500", "alert:exits<3"]) == (
        parse_rule("alert:size>=100", "x"), parse_rule("alert:entries/10m<=500", "x"), parse_rule("alert:exits<3", "x"))
    rule = parse_rule("alert:entries/10m<=500", "tags[1]")
    assert (rule.metric, rule.op, rule.bound, rule.window_ms) == ("entries", "<=", 500.0, 600_000)
    assert parse_rule("alert:exits<3", "t").window_ms == 3_600_000  # default window
    for bad in ("alert:size", "alert:size/1h>3", "alert:members>3", "alert:entries/0m<3", "alert:size=>3"):
        with pytest.raises(InvalidArgument) as info:
            rules_of(["ok", bad])
        assert info.value.field == "tags[1]"


def test_alerts_fire_once_when_outside_and_resolve_when_back() -> None:
    woken: list[int] = []
    book = AlertBook(notify=lambda: woken.append(1))
    history = SegmentHistory()
    low, burst = parse_rule("alert:size>=2", "t"), parse_rule("alert:entries/1m<=3", "t")
    assert [a.firing for a in book.check("s", [low, burst], T0, 1, history)] == [True]  # size 1 < 2
    assert book.check("s", [low, burst], T0 + 1000, 1, history) == []  # still outside: no repeat
    history.record(T0 + 2000, 5, 0, 6)
    got = book.check("s", [low, burst], T0 + 2000, 6, history)
    assert [(a.rule, a.firing, a.value) for a in got] == [
        ("alert:size>=2", False, 6.0), ("alert:entries/1m<=3", True, 5.0)]
    assert "back within" in got[0].message and "outside" in got[1].message
    got = book.check("s", [burst], T0 + 62_001, 6, history)  # the burst left the window
    assert [(a.rule, a.firing, a.value) for a in got] == [("alert:entries/1m<=3", False, 0.0)]
    assert [i for i, _ in book.since(0)] == [1, 2, 3, 4] and [i for i, _ in book.since(3)] == [4]
    assert book.fired == {("s", "alert:size>=2"): 1, ("s", "alert:entries/1m<=3"): 1}
    assert book.firing() == [] and len(woken) == 3
    book.check("s", [low], T0 + 70_000, 0, history)
    assert book.firing() == [("s", "alert:size>=2")]
    book.forget("s")
    assert book.firing() == []

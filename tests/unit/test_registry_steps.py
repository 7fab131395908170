"""Registry steps under concurrent readers: staleness is judged under the writer lock."""

from __future__ import annotations

import threading
import time

import pytest

from core.engine import Engine
from core.segments.registry import TIME_RESOLUTION_MS, SegmentRegistry

NOW = 1_790_000_000_000


def _engine() -> tuple[Engine, list[int]]:
    clock = [NOW]
    engine = Engine(clock=lambda: clock[0])
    engine.upsert_contacts([{"externalId": f"C-{i}"} for i in range(5)])
    engine.ingest([{"eventTypeKey": "view", "params": {"externalCustomerId": f"C-{i}"}, "timestamp": NOW - 500 * i}
                   for i in range(5)])
    engine.put_segment({"name": "recent", "condition": {"event": {"type": "view", "period": {"last": {"minutes": 1}}}}})
    return engine, clock


def test_concurrent_readers_of_a_stale_segment_run_one_step(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, clock = _engine()
    steps: list[int] = []
    original = SegmentRegistry._step

    def slow_step(self: SegmentRegistry, now: int, *args: object, **kwargs: object) -> object:
        steps.append(now)
        time.sleep(0.05)  # every reader has judged the members stale before this step ends
        return original(self, now, *args, **kwargs)

    monkeypatch.setattr(SegmentRegistry, "_step", slow_step)
    clock[0] += 60_000 - 750  # C-2 .. C-4 are now older than a minute
    now = clock[0]
    barrier = threading.Barrier(6)
    sizes: list[int] = []

    def read(i: int) -> None:
        barrier.wait()
        sizes.append(len(engine.segments.current("recent", now + i)))  # each request reads its own clock

    threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(steps) == 1 and now <= steps[0] < now + 6
    assert sizes == [2] * 6  # C-0 and C-1 only
    assert engine.segments.at_ms == steps[0]


def test_advance_within_tolerance_does_nothing_and_exact_advance_still_steps() -> None:
    engine, clock = _engine()
    reg = engine.segments
    start = reg.at_ms
    assert start is not None
    reg.advance(start + TIME_RESOLUTION_MS - 1, tolerance_ms=TIME_RESOLUTION_MS - 1)
    assert reg.at_ms == start
    reg.advance(start + 1)
    assert reg.at_ms == start + 1


def test_the_worker_never_steps_back_past_a_write() -> None:
    engine, clock = _engine()
    reg = engine.segments
    engine.upsert_contacts([{"externalId": "C-new"}])
    clock[0] += 10_000
    late = clock[0] - 5  # a clock reading taken just before an ingest stepped to clock[0]
    engine.ingest([{"eventTypeKey": "view", "params": {"externalCustomerId": "C-new"}}])
    members = set(reg.get("recent").members)
    assert reg.at_ms == clock[0] and len(members) == 6  # the new contact's only event brought it in
    seq = reg.changes.last_sequence
    reg.advance(late, forward_only=True)
    assert reg.at_ms == clock[0] and set(reg.get("recent").members) == members
    assert reg.changes.last_sequence == seq
    reg.current("recent", late - 2 * TIME_RESOLUTION_MS)  # a slow reader's old clock
    assert reg.at_ms == clock[0] and reg.changes.last_sequence == seq


def test_a_segment_put_after_time_moved_enters_its_members_by_definition() -> None:
    engine, clock = _engine()
    reg = engine.segments
    seen = reg.changes.last_sequence
    clock[0] += 60_000 - 750  # "recent" now loses C-2 .. C-4, but nothing has stepped it yet
    engine.put_segment({"name": "not-recent", "condition": {"not": {"segment": "recent"}}})
    changes, _ = reg.changes.read(seen, limit=1000)
    by_segment = {name: {(c.contact_id, c.entered, c.cause) for c in changes if c.segment == name}
                  for name in ("recent", "not-recent")}
    recent = engine.evaluate({"name": "q1", "condition": {"segment": "recent"}})
    rest = engine.evaluate({"name": "q2", "condition": {"not": {"segment": "recent"}}})
    assert len(recent) == 2 and len(rest) == 3
    assert by_segment["recent"] == {(c, False, "time") for c in rest}
    assert by_segment["not-recent"] == {(c, True, "definition") for c in rest}  # not "time", though "recent" moved

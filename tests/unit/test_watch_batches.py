"""Batched WatchSegments messages: sizes, the cap, and every field carried over."""

from __future__ import annotations

from core.changes import CAUSES, Change
from server import convert
from server.pb import segmentd_pb2 as pb
from server.watch_api import MAX_BATCH, batch_size, batched_events


def changes(count: int) -> list[Change]:
    return [Change(100 + i, f"seg-{i % 3}", 7 * i, i % 2 == 0, 1_700_000_000_000 + i, CAUSES[i % len(CAUSES)])
            for i in range(count)]


def test_batch_size_keeps_0_and_1_single_and_caps_large_requests() -> None:
    assert [batch_size(n) for n in (0, 1, 2, 500, MAX_BATCH, MAX_BATCH + 1, 2**32 - 1)] == [
        1, 1, 2, 500, MAX_BATCH, MAX_BATCH, MAX_BATCH]


def test_batched_events_split_in_order_and_carry_every_field() -> None:
    given = changes(2 * MAX_BATCH + 7)
    events = list(batched_events(given, MAX_BATCH))
    assert [len(e.changes) for e in events] == [MAX_BATCH, MAX_BATCH, 7]
    assert not any(e.HasField("change") or e.HasField("alert") for e in events)
    flat = [c for e in events for c in e.changes]
    assert flat == [convert.change_to_pb(c) for c in given]
    # a message survives the wire unchanged
    again = pb.WatchEvent.FromString(events[2].SerializeToString())
    assert list(again.changes) == [convert.change_to_pb(c) for c in given[-7:]]
    assert list(batched_events([], 5)) == []
    assert [len(e.changes) for e in batched_events(given[:10], 4)] == [4, 4, 2]

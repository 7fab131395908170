"""WatchSegments, GetSegmentHistory and alerts on a real server, with a clock tests move.

A watcher sees a contact enter when its qualifying event is ingested and leave when the
window expires (found by the server's time-driven worker, nobody asking); reconnecting from
a sequence number resumes exactly, also across a restart of a durable server; the CLI's
`segment watch` and `segment history` print what the RPCs return.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.engine import Engine
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests.e2e.harness import (
    NOW_MS,
    ROOT,
    CliRunner,
    ServerProcess,
    child_env,
    run_cli,
    start_in_process,
    start_process,
)

MINUTE = 60_000
WAIT_S = 10.0


class Clock:
    """A clock tests move by hand (epoch ms)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Watcher:
    """A WatchSegments stream read by a thread into a queue."""

    def __init__(self, stub: pb_grpc.SegmentdStub, segments: tuple[str, ...] = (), from_sequence: int = 0,
                 max_batch: int = 0, from_latest: bool = False) -> None:
        request = pb.WatchSegmentsRequest(segments=segments, from_sequence=from_sequence, max_batch=max_batch,
                                          from_latest=from_latest)
        self.call = stub.WatchSegments(request)
        self.messages: list[pb.WatchEvent] = []  # every WatchEvent read through next(), in order
        self.items: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self.items.put(event)
        except grpc.RpcError as exc:
            self.items.put(exc)

    def next(self, timeout: float = WAIT_S) -> pb.WatchEvent:
        item = self.items.get(timeout=timeout)
        if isinstance(item, grpc.RpcError):
            raise item
        self.messages.append(item)
        return item

    def changes(self, count: int, timeout: float = WAIT_S) -> list[pb.MembershipChange]:
        out = []
        while len(out) < count:
            event = self.next(timeout)
            if event.HasField("change"):
                out.append(event.change)
            out.extend(event.changes)
        return out

    def quiet(self, for_s: float = 0.3) -> bool:
        """Whether nothing arrives for `for_s` seconds."""
        try:
            self.items.get(timeout=for_s)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(WAIT_S)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW_MS)


@pytest.fixture
def served(clock: Clock) -> Iterator[tuple[Engine, pb_grpc.SegmentdStub]]:
    """A ready engine on the test clock behind an in-process server, its time-driven worker on."""
    engine = Engine(clock=clock)
    engine.ready = True
    running = start_in_process(engine)
    engine.start_background()
    try:
        yield engine, pb_grpc.SegmentdStub(running.channel)
    finally:
        engine.stop_background()
        running.close()


def put(stub: pb_grpc.SegmentdStub, doc: dict[str, Any]) -> None:
    from google.protobuf import json_format

    stub.PutSegment(pb.PutSegmentRequest(segment=json_format.ParseDict(doc, pb.Segment())))


def ingest(stub: pb_grpc.SegmentdStub, type_key: str, external_id: str, **fields: Any) -> pb.IngestEventsResponse:
    line = json.dumps({"eventTypeKey": type_key, "params": {"externalCustomerId": external_id, **fields}})
    reply = stub.IngestEvents(pb.IngestEventsRequest(jsonl=line.encode(), report_changes=True))
    assert reply.accepted == 1, reply
    return reply


def test_a_watcher_sees_an_entry_on_ingest_and_the_exit_when_the_window_expires(
    served: tuple[Engine, pb_grpc.SegmentdStub], clock: Clock
) -> None:
    _, stub = served
    window = {"last": {"minutes": 5}}
    put(stub, {"name": "recent-buyers", "condition": {"event": {"type": "purchase", "period": window}}})
    watcher = Watcher(stub, ("recent-buyers",))
    try:
        sent = time.monotonic()
        reply = ingest(stub, "purchase", "C-1")
        (entered,) = watcher.changes(1)
        latency = time.monotonic() - sent
        assert (entered.segment, entered.entered, entered.cause) == ("recent-buyers", True, "event")
        assert entered.at_ms == NOW_MS
        assert list(reply.changes) == [entered]  # the ingest reply reports the same change
        assert latency < WAIT_S
        # just before the window passes the event nothing happens; just after, the worker notices
        clock.now_ms = NOW_MS + 5 * MINUTE
        assert watcher.quiet(1.5)
        clock.now_ms = NOW_MS + 5 * MINUTE + 1
        (exited,) = watcher.changes(1)
        assert (exited.contact_id, exited.entered, exited.cause) == (entered.contact_id, False, "time")
        assert exited.at_ms == NOW_MS + 5 * MINUTE + 1 and exited.sequence == entered.sequence + 1
        count = stub.CountMembers(pb.CountMembersRequest(name="recent-buyers"))
        assert count.count == 0
    finally:
        watcher.close()


def test_reconnecting_from_a_sequence_resumes_exactly(served: tuple[Engine, pb_grpc.SegmentdStub]) -> None:
    engine, stub = served
    put(stub, {"name": "buyers", "condition": {"event": {"type": "order", "period": {"allTime": {}}}}})
    put(stub, {"name": "viewers", "condition": {"event": {"type": "look", "period": {"allTime": {}}}}})
    for k in range(5):
        ingest(stub, "order", f"R-{k}")
        ingest(stub, "look", f"R-{k}")
    first = Watcher(stub, ("buyers",))
    try:
        seen = first.changes(5)
    finally:
        first.close()
    assert [c.segment for c in seen] == ["buyers"] * 5 and all(c.entered for c in seen)
    sequences = [c.sequence for c in seen]
    assert sequences == sorted(sequences) and len(set(sequences)) == 5
    for k in range(5, 7):
        ingest(stub, "order", f"R-{k}")
    again = Watcher(stub, ("buyers",), from_sequence=sequences[2])
    try:
        resumed = again.changes(4)
        assert resumed[:2] == seen[3:]  # nothing missed, nothing twice
        assert [c.contact_id for c in resumed[2:]] == [
            engine.resolve_ref("externalId:R-5"), engine.resolve_ref("externalId:R-6")]
        assert again.quiet()
    finally:
        again.close()
    everything = Watcher(stub)  # all segments, from the oldest retained
    try:
        every = everything.changes(12)
        assert [c.sequence for c in every] == list(range(every[0].sequence, every[0].sequence + 12))
        assert {c.segment for c in every} == {"buyers", "viewers"}
    finally:
        everything.close()


def test_watch_refuses_unknown_segments_and_sequences_it_cannot_resume_from(
    served: tuple[Engine, pb_grpc.SegmentdStub],
) -> None:
    engine, stub = served
    put(stub, {"name": "few", "condition": {"event": {"type": "ping", "period": {"allTime": {}}}}})
    for k in range(4):
        ingest(stub, "ping", f"P-{k}")
    cases = [
        (pb.WatchSegmentsRequest(segments=["nope"]), grpc.StatusCode.NOT_FOUND, "nope"),
        (pb.WatchSegmentsRequest(from_sequence=99), grpc.StatusCode.FAILED_PRECONDITION, "beyond the last change"),
    ]
    engine.segments.changes.max_entries = 2
    ingest(stub, "ping", "P-4")  # the log now keeps the last two changes only
    cases.append((pb.WatchSegmentsRequest(from_sequence=1), grpc.StatusCode.FAILED_PRECONDITION, "no longer retained"))
    for request, code, text in cases:
        with pytest.raises(grpc.RpcError) as info:
            next(iter(stub.WatchSegments(request, timeout=WAIT_S)))
        assert info.value.code() == code and text in info.value.details()
    last = engine.segments.changes.last_sequence
    tail = Watcher(stub, from_sequence=last - 1)  # still retained
    try:
        assert [c.sequence for c in tail.changes(1)] == [last]
    finally:
        tail.close()


def test_from_latest_starts_after_the_last_change_when_the_stream_opens(
    served: tuple[Engine, pb_grpc.SegmentdStub],
) -> None:
    engine, stub = served
    put(stub, {"name": "fresh", "condition": {"event": {"type": "fresh-buy", "period": {"allTime": {}}}}})
    for k in range(3):
        ingest(stub, "fresh-buy", f"F-{k}")
    last = engine.segments.changes.last_sequence
    follower = Watcher(stub, ("fresh",), from_latest=True, max_batch=16)
    everything = Watcher(stub, ("fresh",))
    try:
        assert len(everything.changes(3)) == 3  # both streams are open: the earlier entries are retained
        assert follower.quiet()  # ...but the follower skips them
        ingest(stub, "fresh-buy", "F-new")
        (change,) = follower.changes(1)
        assert change.sequence == last + 1 and change.entered
        assert change.contact_id == engine.resolve_ref("externalId:F-new")
    finally:
        follower.close()
        everything.close()
    with pytest.raises(grpc.RpcError) as info:
        next(iter(stub.WatchSegments(pb.WatchSegmentsRequest(from_sequence=1, from_latest=True), timeout=WAIT_S)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("from_latest")


def test_alerts_reach_watchers_and_history_counts_entries_and_exits(
    served: tuple[Engine, pb_grpc.SegmentdStub], clock: Clock
) -> None:
    _, stub = served
    put(stub, {"name": "crowd", "tags": ["vip", "alert:size<2"],
               "condition": {"event": {"type": "join", "period": {"allTime": {}}}}})
    watcher = Watcher(stub)
    try:
        ingest(stub, "join", "A-1")
        clock.now_ms += MINUTE
        ingest(stub, "join", "A-2")
        alerts = []
        while not alerts:
            event = watcher.next()
            if event.HasField("alert"):
                alerts.append(event.alert)
        assert (alerts[0].segment, alerts[0].rule, alerts[0].value) == ("crowd", "alert:size<2", 2.0)
        assert "outside" in alerts[0].message and alerts[0].at_ms == clock.now_ms
        clock.now_ms += MINUTE
        stub.EraseContact(pb.EraseContactRequest(contact=pb.ContactRef(ref="externalId:A-1")))
        resolved = None
        while resolved is None:
            event = watcher.next()
            if event.HasField("alert"):
                resolved = event.alert
        assert resolved.value == 1.0 and "back within" in resolved.message
    finally:
        watcher.close()
    reply = stub.GetSegmentHistory(pb.GetSegmentHistoryRequest(name="crowd", resolution_seconds=60))
    points = [(p.at_ms, p.size, p.entered, p.exited) for p in reply.points]
    assert points == [(NOW_MS, 1, 1, 0), (NOW_MS + MINUTE, 2, 1, 0), (NOW_MS + 2 * MINUTE, 1, 0, 1)]
    with pytest.raises(grpc.RpcError) as info:
        stub.GetSegmentHistory(pb.GetSegmentHistoryRequest(name="missing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    too_fine = pb.GetSegmentHistoryRequest(name="crowd", resolution_seconds=1)
    getattr(too_fine, "from").number_value = NOW_MS - 86_400_000  # a day at one second: too many points
    with pytest.raises(grpc.RpcError) as info:
        stub.GetSegmentHistory(too_fine)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "resolution_seconds" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        put(stub, {"name": "bad-alert", "tags": ["alert:size~3"], "condition": {"identifier": {"kind": "email"}}})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "tags[0]" in info.value.details()


def ingest_many(stub: pb_grpc.SegmentdStub, type_key: str, prefix: str, count: int) -> None:
    """`count` events of one type from fresh contacts, in one IngestEvents call."""
    lines = "".join(json.dumps({"eventTypeKey": type_key, "params": {"externalCustomerId": f"{prefix}-{k}"}}) + "\n"
                    for k in range(count))
    reply = stub.IngestEvents(pb.IngestEventsRequest(jsonl=lines.encode()))
    assert reply.accepted == count, reply


def test_batched_delivery_is_the_same_changes_in_fewer_messages(
    served: tuple[Engine, pb_grpc.SegmentdStub], clock: Clock
) -> None:
    _, stub = served
    put(stub, {"name": "big", "tags": ["alert:size<50"], "condition": {"event": {"type": "big", "period": {"allTime": {}}}}})
    put(stub, {"name": "small", "condition": {"event": {"type": "small", "period": {"allTime": {}}}}})
    ingest_many(stub, "big", "B", 40)
    ingest_many(stub, "small", "S", 25)
    total = 85
    # the in-process server has 4 RPC threads: two streams at a time leave room for ingest
    watchers = {n: Watcher(stub, max_batch=n) for n in (0, 7)}
    try:
        time.sleep(0.3)  # both streams are open before the alert is raised
        clock.now_ms += MINUTE
        ingest_many(stub, "big", "A", 20)  # "big" reaches 60: outside its rule, one alert
        got = {n: w.changes(total) for n, w in watchers.items()}
        for w in watchers.values():
            while not any(m.HasField("alert") for m in w.messages):
                w.next()
            assert w.quiet()  # nothing more than the 85 changes and the one alert
    finally:
        for w in watchers.values():
            w.close()
    for n in (1, 5000):  # opened afterwards: the same changes from the log, no alert
        later = watchers[n] = Watcher(stub, max_batch=n)
        try:
            got[n] = later.changes(total)
            assert later.quiet()
        finally:
            later.close()
    plain = got[0]
    assert [c.sequence for c in plain] == list(range(plain[0].sequence, plain[0].sequence + total))
    assert [(c.segment, c.entered) for c in plain].count(("big", True)) == 60
    for n, changes in got.items():
        assert changes == plain, n  # same changes, same order, nothing missed or twice
        messages = watchers[n].messages
        alerts = [m.alert for m in messages if m.HasField("alert")]
        expected = [("big", "alert:size<50", 60.0)] if n in (0, 7) else []
        assert [(a.segment, a.rule, a.value) for a in alerts] == expected, n
        carrying = [m for m in messages if not m.HasField("alert")]
        if n <= 1:  # one change per message, in `change`, as before batching existed
            assert len(carrying) == total and all(m.HasField("change") and not m.changes for m in carrying)
        else:
            assert all(not m.HasField("change") and 1 <= len(m.changes) <= n for m in carrying)
            assert len(carrying) < total
    assert max(len(m.changes) for m in watchers[7].messages) == 7
    # the alert comes after the changes that raised it: the 20 entries of the last ingest
    for n in (0, 7):
        kinds = ["alert" if m.HasField("alert") else "changes" for m in watchers[n].messages]
        before_alert = watchers[n].messages[:kinds.index("alert")]
        delivered = sum(len(m.changes) or 1 for m in before_alert)
        assert delivered == total, n


def test_batched_delivery_resumes_from_a_middle_sequence(served: tuple[Engine, pb_grpc.SegmentdStub]) -> None:
    _, stub = served
    put(stub, {"name": "one", "condition": {"event": {"type": "one", "period": {"allTime": {}}}}})
    put(stub, {"name": "two", "condition": {"event": {"type": "two", "period": {"allTime": {}}}}})
    ingest_many(stub, "one", "O", 30)
    ingest_many(stub, "two", "T", 30)
    ingest_many(stub, "one", "P", 30)
    first = Watcher(stub, ("one",), max_batch=1)
    try:
        reference = first.changes(60)
    finally:
        first.close()
    middle = reference[17].sequence  # inside a batch the server would send
    for n in (1, 8, 1000):
        again = Watcher(stub, ("one",), from_sequence=middle, max_batch=n)
        try:
            assert again.changes(42) == reference[18:], n
            assert again.quiet()
        finally:
            again.close()
    # across a reconnect: the first stream stops after a few batches, the second resumes after
    # the last change the first received
    part = Watcher(stub, max_batch=16)
    try:
        head = part.changes(33)
    finally:
        part.close()
    head = head[:33]  # a batch may carry past the 33rd change; the consumer stops there
    rest = Watcher(stub, from_sequence=head[-1].sequence, max_batch=16)
    try:
        tail = rest.changes(90 - 33)
        assert rest.quiet()
    finally:
        rest.close()
    every = [c.sequence for c in head + tail]
    assert every == list(range(every[0], every[0] + 90))


def test_changes_resume_exactly_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_process(tmp_path, "--data-dir", str(data))
    try:
        segment = tmp_path / "segment.json"
        condition = {"event": {"type": "keep", "period": {"allTime": {}}}}
        segment.write_text(json.dumps({"name": "kept", "condition": condition}))
        assert run_cli("segment", "apply", str(segment), server=server.address).returncode == 0
        lines = "".join(json.dumps({"eventTypeKey": "keep", "params": {"externalCustomerId": f"K-{k}"}}) + "\n"
                        for k in range(3))
        assert run_cli("ingest", "-", server=server.address, input=lines).returncode == 0
        before = _watch_lines(server.address, "--from", "0", "--limit", "3")
    finally:
        server.process.kill()  # a crash: no final snapshot, the log is replayed
        server.process.wait(30)
    server = start_process(tmp_path, "--data-dir", str(data))
    try:
        assert _watch_lines(server.address, "--from", "0", "--limit", "3") == before  # same numbers, same changes
        more = json.dumps({"eventTypeKey": "keep", "params": {"externalCustomerId": "K-3"}}) + "\n"
        assert run_cli("ingest", "-", server=server.address, input=more).returncode == 0
        after = _watch_lines(server.address, "--from", str(before[1]["sequence"]), "--limit", "2")
        assert after[0] == before[2] and after[1]["sequence"] == before[2]["sequence"] + 1
    finally:
        assert server.stop() == 0  # a clean stop: the final snapshot holds the log
    server = start_process(tmp_path, "--data-dir", str(data))
    try:
        assert _watch_lines(server.address, "--from", "0", "--limit", "4") == before + after[1:]
    finally:
        server.stop()


def _watch_lines(address: str, *args: str) -> list[dict[str, Any]]:
    done = run_cli("segment", "watch", "kept", *args, server=address, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_cli_watch_and_history(cli: CliRunner, tmp_path: Path) -> None:
    segment = tmp_path / "watched.json"
    segment.write_text(json.dumps({"name": "cli-watched", "tags": ["alert:size>=5"],
                                   "condition": {"event": {"type": "cli-watch-buy", "period": {"allTime": {}}}}}))
    assert cli("segment", "apply", str(segment)).returncode == 0
    lines = "".join(json.dumps({"eventTypeKey": "cli-watch-buy", "params": {"externalCustomerId": f"W-{k}"}}) + "\n"
                    for k in range(2))
    assert cli("ingest", "-", input=lines).returncode == 0
    done = cli("segment", "watch", "cli-watched", "--from", "0", "--limit", "2")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    changes = [p for p in printed if "sequence" in p]
    assert [(c["segment"], c["entered"], c["cause"]) for c in changes] == [("cli-watched", True, "event")] * 2
    assert changes[1]["sequence"] == changes[0]["sequence"] + 1 and changes[0]["at"].endswith("Z")
    history = cli("segment", "history", "cli-watched", "--json")
    assert history.returncode == 0, history.stderr
    points = [json.loads(line) for line in history.stdout.splitlines()]
    assert points and points[-1]["size"] == 2 and sum(p["entered"] for p in points) == 2
    table = cli("segment", "history", "cli-watched", "--resolution", "3600")
    assert table.returncode == 0 and table.stdout.startswith("AT") and "SIZE" in table.stdout
    more = "".join(json.dumps({"eventTypeKey": "cli-watch-buy", "params": {"externalCustomerId": f"X-{k}"}}) + "\n"
                   for k in range(6))
    assert cli("ingest", "-", input=more).returncode == 0
    # the server sends these 8 changes in one message; --limit still stops at the 5th line
    done = cli("segment", "watch", "cli-watched", "--from", "0", "--limit", "5")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [p["sequence"] for p in printed] == [changes[0]["sequence"] + k for k in range(5)]
    assert printed[:2] == changes
    missing = cli("segment", "watch", "no-such-segment", "--limit", "1")
    assert missing.returncode != 0 and "no-such-segment" in missing.stderr


def test_cli_watch_from_latest_prints_only_new_changes(
    cli: CliRunner, server_process: ServerProcess, tmp_path: Path
) -> None:
    segment = tmp_path / "latest.json"
    segment.write_text(json.dumps({"name": "cli-latest",
                                   "condition": {"event": {"type": "cli-latest-buy", "period": {"allTime": {}}}}}))
    assert cli("segment", "apply", str(segment)).returncode == 0

    def buy(external_id: str) -> None:
        line = json.dumps({"eventTypeKey": "cli-latest-buy", "params": {"externalCustomerId": external_id}})
        assert cli("ingest", "-", input=line + "\n").returncode == 0

    buy("L-old")
    (old,) = [json.loads(line) for line in cli("segment", "watch", "cli-latest", "--limit", "1").stdout.splitlines()]
    watch = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "segment", "watch", "cli-latest", "--from", "latest", "--limit", "1"],
        cwd=ROOT, env=child_env(SEGMENTD_SERVER=server_process.address),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        k = 0
        while watch.poll() is None and time.monotonic() < deadline:  # new members until the watch prints one
            buy(f"L-new-{k}")
            k += 1
            time.sleep(0.2)
        out, err = watch.communicate(timeout=WAIT_S)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0, err
    (printed,) = [json.loads(line) for line in out.splitlines()]
    assert printed["sequence"] > old["sequence"] and printed["contactId"] != old["contactId"]
    bad = cli("segment", "watch", "cli-latest", "--from", "soon", "--limit", "1")
    assert bad.returncode == 2 and "--from" in bad.stderr and "latest" in bad.stderr

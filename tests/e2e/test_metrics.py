"""The metrics endpoint after real traffic: every series docs/OPERATIONS.md lists is there, with
the type it documents, and the counts match the calls that were made."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.engine import Engine
from server.app import build_server
from server.metrics import MetricsEndpoint
from server.observe import ServerMetrics
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.pipeline import Protection
from snapshots.durable import open_durable
from tests.e2e.harness import NOW_MS, ROOT, free_port, run_cli, start_process

DOC = ROOT / "docs" / "OPERATIONS.md"
DOC_ROW = re.compile(r"^\| `([a-z_]+)` \| (counter|gauge|histogram) \|", re.MULTILINE)
TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$")
SERVICE = "segmentd.v1.Segmentd"


def documented() -> dict[str, str]:
    """metric name -> type, from the metrics table of docs/OPERATIONS.md."""
    found = dict(DOC_ROW.findall(DOC.read_text()))
    assert len(found) > 30, "the metrics table of docs/OPERATIONS.md was not found"
    return found


@dataclass
class Scrape:
    text: str

    def types(self) -> dict[str, str]:
        return dict(TYPE_LINE.findall(self.text))

    def value(self, name: str, **labels: str) -> float:
        """The sample `name` whose labels include `labels` (exactly one must match)."""
        hits = []
        for line in self.text.splitlines():
            match = SAMPLE.match(line)
            if not match or match.group(1) != name:
                continue
            have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                hits.append(float(match.group(3)))
        assert len(hits) == 1, f"{name} {labels}: {len(hits)} samples"
        return hits[0]

    def rpc(self, name: str, method: str, **labels: str) -> float:
        return self.value(name, grpc_service=SERVICE, grpc_method=method, **labels)


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        return Scrape(reply.read().decode())


@dataclass
class Served:
    stub: pb_grpc.SegmentdStub
    metrics_port: int
    durability: Any


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    metrics = ServerMetrics()
    engine = Engine(clock=lambda: NOW_MS)
    _, durability = open_durable(tmp_path / "data", engine=engine, fsync_fn=metrics.timed_fsync())
    metrics.watch_durability(durability)
    engine.ready = True
    server, port = build_server(engine, "127.0.0.1:0", max_workers=4, protection=Protection(metrics=metrics))
    endpoint = MetricsEndpoint(metrics.registry, "127.0.0.1:0")
    server.start()
    endpoint.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(pb_grpc.SegmentdStub(channel), endpoint.port, durability)
    finally:
        channel.close()
        endpoint.stop()
        server.stop(None).wait(10)
        durability.close(snapshot=False)


def jsonl(*docs: Any) -> bytes:
    return b"".join(json.dumps(d).encode() + b"\n" for d in docs)


def traffic(stub: pb_grpc.SegmentdStub) -> None:
    """A little of everything: ingest (good, rejected, conflicting), contacts, segments, errors."""
    for i in range(3):
        stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(
            {"eventTypeKey": "purchase", "params": {"email": f"m{i}@example.com", "total": 10 * i}})))
    stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(
        {"eventTypeKey": "purchase", "params": {"email": "m9@example.com"}, "timestamp": "not a time"},
        {"eventTypeKey": ""},
    ) + b"{broken\n"))
    batches = [pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=jsonl(
        {"eventTypeKey": "view", "params": {"email": f"m{i}@example.com"}}))) for i in range(4)]
    assert stub.StreamEvents(iter(batches)).accepted == 4
    stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=jsonl(
        {"email": "m0@example.com", "externalId": "X-0"}, {"email": "new@example.com"})))
    # externalId X-0 now belongs to m0: a contact claiming it with m1's email is a conflict
    stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=jsonl({"email": "m1@example.com", "externalId": "X-0"})))
    buyers = pb.Segment(
        name="buyers", tags=["alert:size<=1"], condition=pb.Condition(event=pb.EventCondition(type="purchase"))
    )
    stub.PutSegment(pb.PutSegmentRequest(segment=buyers))
    stub.PreviewSegment(pb.PreviewSegmentRequest(segment=buyers))
    assert stub.CountMembers(pb.CountMembersRequest(name="buyers")).count == 3
    assert sum(len(p.contact_ids) for p in stub.ListMembers(pb.ListMembersRequest(name="buyers", page_size=1))) == 3
    with pytest.raises(grpc.RpcError):
        stub.GetContact(pb.GetContactRequest(contact=pb.ContactRef(ref="email:nobody@example.com")))
    stub.EraseContact(pb.EraseContactRequest(contact=pb.ContactRef(ref="email:new@example.com")))


def test_every_documented_series_is_exposed_after_real_traffic(served: Served) -> None:
    traffic(served.stub)
    served.durability.snapshot_now()
    got = scrape(served.metrics_port)
    types = got.types()
    for name, kind in documented().items():
        assert name in types, f"{name} is documented but not exposed"
        assert types[name] == kind, f"{name}: documented as {kind}, exposed as {types[name]}"
    undocumented = {n for n in types if n.startswith(("segmentd_", "grpc_"))} - set(documented())
    assert not undocumented, f"exposed but not documented: {sorted(undocumented)}"


def test_rpc_series_count_the_calls(served: Served) -> None:
    traffic(served.stub)
    got = scrape(served.metrics_port)
    assert got.rpc("grpc_server_started_total", "IngestEvents", grpc_type="unary") == 4
    assert got.rpc("grpc_server_handled_total", "IngestEvents", grpc_type="unary", grpc_code="OK") == 4
    assert got.rpc("grpc_server_handling_seconds_count", "IngestEvents") == 4
    assert got.rpc("grpc_server_handled_total", "GetContact", grpc_code="NOT_FOUND") == 1
    assert got.rpc("grpc_server_msg_received_total", "StreamEvents", grpc_type="client_stream") == 4
    assert got.rpc("grpc_server_msg_sent_total", "StreamEvents") == 1
    assert got.rpc("grpc_server_msg_sent_total", "ListMembers", grpc_type="server_stream") == 3
    assert got.rpc("grpc_server_handling_seconds_bucket", "ListMembers", le="+Inf") == 1


def test_domain_series_follow_what_happened(served: Served) -> None:
    traffic(served.stub)
    got = scrape(served.metrics_port)
    assert got.value("segmentd_events_total", result="accepted") == 3 + 4
    assert got.value("segmentd_events_total", result="rejected") == 3
    assert got.value("segmentd_events_rejected_total", reason="timestamp") == 1
    assert got.value("segmentd_events_rejected_total", reason="eventTypeKey") == 1
    assert got.value("segmentd_events_rejected_total", reason="jsonl") == 1
    assert got.value("segmentd_mapping_conflicts_total", source="contact") >= 1
    assert got.value("segmentd_contact_upserts_total", result="created") == 1
    assert got.value("segmentd_contacts_erased_total") == 1
    assert got.value("segmentd_segment_members", segment="buyers") == 3
    assert got.value("segmentd_segments") == 1
    # 3 buyers is outside the rule's bound: the alert fired once and is firing
    assert got.value("segmentd_segment_alerts_firing", segment="buyers", rule="alert:size<=1") == 1
    assert got.value("segmentd_segment_alerts_total", segment="buyers", rule="alert:size<=1") == 1
    assert got.value("segmentd_event_types") == 2
    assert got.value("segmentd_segment_evaluation_seconds_count", kind="preview") == 1
    assert got.value("segmentd_segment_evaluation_seconds_count", kind="materialise") >= 1
    assert got.value("segmentd_ready") == 1
    assert got.value("segmentd_wal_fsync_seconds_count") >= 1
    assert got.value("segmentd_wal_last_sequence") == got.value("segmentd_wal_written_sequence") > 0
    assert got.value("segmentd_wal_failed") == 0
    assert got.value("process_resident_memory_bytes") > 0


def test_snapshots_are_timed(served: Served) -> None:
    traffic(served.stub)
    served.durability.snapshot_now()
    got = scrape(served.metrics_port)
    assert got.value("segmentd_snapshot_seconds_count") == 1
    assert got.value("segmentd_snapshot_bytes") > 0
    assert got.value("segmentd_snapshot_last_timestamp_seconds") > 0


def test_a_served_process_exposes_metrics_after_cli_traffic(tmp_path: Path) -> None:
    metrics_port = free_port()
    child = start_process(tmp_path, "--data-dir", str(tmp_path / "data"), "--metrics-listen",
                          f"127.0.0.1:{metrics_port}")
    try:
        events = tmp_path / "events.jsonl"
        events.write_text("".join(json.dumps({"eventTypeKey": "cliView", "params": {"email": f"c{i}@example.com"}})
                                  + "\n" for i in range(25)) + "not json\n")
        result = run_cli("ingest", str(events), server=child.address)
        assert result.returncode == 1 and "accepted 25" in result.stdout, result.stderr
        assert run_cli("event-types", server=child.address).returncode == 0
        got = scrape(metrics_port)
        assert got.rpc("grpc_server_handled_total", "StreamEvents", grpc_code="OK") == 1
        assert got.rpc("grpc_server_handled_total", "ListEventTypes", grpc_code="OK") == 1
        assert got.value("segmentd_events_total", result="accepted") == 25
        assert got.value("segmentd_events_rejected_total", reason="jsonl") == 1
        assert got.value("segmentd_wal_fsync_seconds_count") >= 1
        assert got.value("segmentd_ready") == 1
        assert set(documented()) <= set(got.types())
    finally:
        assert child.stop() == 0, child.output()
    lines = [json.loads(line) for line in child.stderr.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "segmentd.access"]
    assert {line["method"] for line in access} >= {"segmentd.v1.Segmentd/StreamEvents"}
    assert "c1@example.com" not in child.stderr.read_text()


@pytest.mark.parametrize("max_batch", [0, 100])
def test_watchers_and_the_change_log_are_tracked(served: Served, max_batch: int) -> None:
    name = f"viewers-{max_batch}"
    viewers = pb.Segment(name=name, condition=pb.Condition(
        event=pb.EventCondition(type=f"view{max_batch}", period=pb.Period(all_time=pb.Empty()))))
    served.stub.PutSegment(pb.PutSegmentRequest(segment=viewers))
    start = scrape(served.metrics_port).value("segmentd_changelog_sequence")
    watch = served.stub.WatchSegments(pb.WatchSegmentsRequest(
        segments=[name], from_sequence=int(start), max_batch=max_batch))
    try:
        for i in range(3):
            served.stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(
                {"eventTypeKey": f"view{max_batch}", "params": {"email": f"w{max_batch}-{i}@example.com"}})))
        first = next(watch)
        assert (first.changes[0] if max_batch else first.change).sequence == start + 1
        deadline = time.monotonic() + 10
        while scrape(served.metrics_port).value("segmentd_watch_sent_sequence") < start + 3:
            assert time.monotonic() < deadline, "the watcher was not sent the three changes"
            time.sleep(0.05)
        got = scrape(served.metrics_port)
        assert got.value("segmentd_watch_streams") == 1
        assert got.value("segmentd_changelog_sequence") == start + 3
        assert got.value("segmentd_changelog_lag") == 0
    finally:
        watch.cancel()
    deadline = time.monotonic() + 10
    while scrape(served.metrics_port).value("segmentd_watch_streams") != 0:
        assert time.monotonic() < deadline, "the closed watcher is still counted"
        time.sleep(0.05)

"""Crash at every named step of the log, snapshot, MANIFEST and cleanup (SEGMENTD_CRASH_AT),
restart without it, and compare the recovered state with a model given the same requests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from core.engine import Engine
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from snapshots.crash import POINTS
from snapshots.digest import state_digest, state_lines
from snapshots.durable import open_durable
from tests.e2e.test_durability import kill_9, start_server

pytestmark = pytest.mark.e2e

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: events carry explicit timestamps
AT_MS = T0_MS + 86_400_000  # the instant digests evaluate at
BATCHES = 80
SNAPSHOT_EVERY = 4  # batches between Snapshot calls

# The n-th time each point is reached: late enough that some state is already durable.
# cleanup.mid is first reached by the third snapshot (it deletes the first).
CRASH_AT = {
    "wal.before_write": 12,
    "wal.after_write_before_sync": 12,
    "wal.after_sync": 12,
    "snapshot.mid_frames": 2,
    "snapshot.before_rename": 2,
    "manifest.before_rename": 2,
    "manifest.after_rename": 2,
    "cleanup.mid": 1,
}


def requests() -> list[tuple[str, list[dict[str, Any]]]]:
    """The write requests, in order: ("events" | "contacts" | "snapshot", docs)."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for b in range(BATCHES):
        if b % 5 == 2:
            out.append(
                ("contacts", [{"externalId": f"X-{b}-{i}", "fields": {"batch": b, "tier": "gold" if i else "basic"}} for i in range(3)])
            )
        out.append(
            (
                "events",
                [
                    {
                        "eventTypeKey": "purchase" if i % 2 else "visit",
                        "eventId": f"e-{b}-{i}",
                        "keyValue": f"X-{b - b % 5 + 2}-{i % 3}" if b % 5 >= 2 else f"anon-{b}-{i}",
                        "timestamp": T0_MS + b * 1000 + i,
                        "params": {"b": b, "i": i, "items": [{"sku": f"S{i}"}, {"sku": f"T{b}"}], "note": f"n{b}"},
                    }
                    for i in range(5)
                ],
            )
        )
        if b % SNAPSHOT_EVERY == SNAPSHOT_EVERY - 1:
            out.append(("snapshot", []))
    return out


def send(stub: pb_grpc.SegmentdStub, kind: str, docs: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(doc) + "\n" for doc in docs).encode()
    if kind == "events":
        reply = stub.IngestEvents(pb.IngestEventsRequest(jsonl=lines), timeout=30)
        assert reply.rejected == 0, reply
    elif kind == "contacts":
        stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=lines), timeout=30)
    else:
        stub.Snapshot(pb.SnapshotRequest(), timeout=60)


def model_digest(applied: list[tuple[str, list[dict[str, Any]]]]) -> tuple[str, list[str]]:
    engine = Engine(clock=lambda: AT_MS)
    for kind, docs in applied:
        if kind == "events":
            engine.ingest(docs)
        elif kind == "contacts":
            engine.upsert_contacts(docs)
    return state_digest(engine, AT_MS, portable=True), state_lines(engine, AT_MS, portable=True)


@pytest.mark.parametrize("point", POINTS)
def test_crash_point(point: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    plan = requests()
    server = start_server(tmp_path, data, SEGMENTD_CRASH_AT=f"{point}:{CRASH_AT[point]}")
    acked = 0
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.SegmentdStub(channel)
            for kind, docs in plan:
                try:
                    send(stub, kind, docs)
                except grpc.RpcError:
                    break
                acked += 1
    finally:
        try:
            server.process.wait(20)  # it kills itself at the point; the failed call may come first
        except subprocess.TimeoutExpired:
            kill_9(server)
            pytest.fail(f"the server never reached {point}")
    assert server.process.returncode == -9, server.output()
    assert acked < len(plan)
    # restart without the crash point; it must recover, serve, and stop cleanly
    server = start_server(tmp_path, data)
    assert server.stop() == 0
    engine, durability = open_durable(data, clock=lambda: AT_MS)
    try:
        recovered = state_digest(engine, AT_MS, portable=True)
        lines = state_lines(engine, AT_MS, portable=True)
    finally:
        durability.close(snapshot=False)
    acknowledged, acknowledged_lines = model_digest(plan[:acked])
    in_flight, _ = model_digest(plan[: acked + 1])  # the interrupted request, had it landed
    if point.startswith("wal."):
        assert plan[acked][0] != "snapshot"
        # killed before the write: the request is lost; after it: the page cache keeps it
        expected = acknowledged if point == "wal.before_write" else in_flight
    else:
        assert plan[acked][0] == "snapshot"  # a snapshot, cleanup or MANIFEST step was cut short
        expected = acknowledged
    assert recovered == expected, "\n".join(sorted(set(lines) ^ set(acknowledged_lines))[:20])

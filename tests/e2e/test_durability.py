"""Durability through a real server process: kill -9 at random moments loses no acknowledged
event and invents none; segment answers are the same before and after a restart."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest

from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests.e2e.harness import (
    ROOT,
    SERVING,
    START_TIMEOUT_S,
    ServerProcess,
    child_env,
    free_port,
    wait_for_status,
)

pytestmark = pytest.mark.e2e

TYPE = "durabilityProbe"
ROUNDS = 6
WORKERS = 4


def start_server(workdir: Path, data_dir: Path, *args: str, **env: str) -> ServerProcess:
    """`segmentd serve --data-dir DATA ARGS` in a child with extra environment, once SERVING."""
    address = f"127.0.0.1:{free_port()}"
    stdout, stderr = workdir / "serve.out", workdir / "serve.err"
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--listen", address, "--data-dir", str(data_dir), *args],
            cwd=ROOT,
            env=child_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    child = ServerProcess(process, address, stdout, stderr)
    with grpc.insecure_channel(address) as channel:
        try:
            wait_for_status(channel, SERVING, START_TIMEOUT_S, lambda: process.poll() is None)
        except BaseException:
            child.stop()
            print(child.output(), file=sys.stderr)
            raise
    return child


def kill_9(server: ServerProcess) -> None:
    server.process.kill()
    server.process.wait(20)


def ingest(stub: pb_grpc.SegmentdStub, docs: list[dict[str, Any]]) -> pb.IngestEventsResponse:
    lines = "".join(json.dumps(doc) + "\n" for doc in docs).encode()
    return stub.IngestEvents(pb.IngestEventsRequest(jsonl=lines), timeout=30)


def stored_params(stub: pb_grpc.SegmentdStub, type_key: str) -> list[dict[str, Any]]:
    """The params of every stored event of the type, through GetEventHistory pages."""
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        try:
            reply = stub.GetEventHistory(
                pb.GetEventHistoryRequest(event_type_key=type_key, page_size=10_000, page_token=token), timeout=30
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return out
            raise
        out.extend(dict(event.params) for event in reply.events)
        token = reply.next_page_token
        if not token:
            return out


class Ledger:
    """What clients sent and what the server acknowledged, by unique event id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: set[str] = set()
        self.acked: set[str] = set()

    def check(self, stub: pb_grpc.SegmentdStub) -> int:
        counts = Counter(str(p["uid"]) for p in stored_params(stub, TYPE))
        with self.lock:
            missing = self.acked - set(counts)
            invented = set(counts) - self.sent
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        assert not invented, f"events never sent appeared: {sorted(invented)[:3]}"
        doubled = [uid for uid, n in counts.items() if n > 1]
        assert not doubled, f"events stored twice: {doubled[:3]}"
        return len(counts)


def client(address: str, ledger: Ledger, prefix: str, seed: int, stop: threading.Event) -> None:
    """Sends batches of uniquely identified events until the server goes away or `stop`."""
    rng = random.Random(seed)
    n = 0
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.SegmentdStub(channel)
        while not stop.is_set():
            size = rng.randint(1, 25)
            uids = [f"{prefix}-{n + i}" for i in range(size)]
            docs = [
                {
                    "eventTypeKey": TYPE,
                    "eventId": uid,
                    "keyValue": f"{prefix}-visitor-{(n + i) % 7}",
                    "params": {"uid": uid, "n": n + i, "cart": [{"sku": f"S{i}", "qty": i}]},
                }
                for i, uid in enumerate(uids)
            ]
            with ledger.lock:
                ledger.sent.update(uids)
            try:
                reply = ingest(stub, docs)
            except grpc.RpcError:
                return  # killed mid-call: these events may or may not be stored
            assert reply.accepted == size, reply
            with ledger.lock:
                ledger.acked.update(uids)
            n += size


def test_kill_9_keeps_every_acknowledged_event_once(tmp_path: Path) -> None:
    rng = random.Random(20260115)
    data = tmp_path / "data"
    ledger = Ledger()
    started = time.monotonic()
    for round_no in range(ROUNDS):
        server = start_server(tmp_path, data)
        with grpc.insecure_channel(server.address) as channel:
            ledger.check(pb_grpc.SegmentdStub(channel))
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=client, args=(server.address, ledger, f"r{round_no}w{w}", rng.randrange(1 << 30), stop)
            )
            for w in range(WORKERS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.2, 1.2))
        kill_9(server)
        stop.set()
        for thread in threads:
            thread.join(30)
        if time.monotonic() - started > 40:
            break  # a slow machine: fewer rounds, same checks
    server = start_server(tmp_path, data)
    with grpc.insecure_channel(server.address) as channel:
        stored = ledger.check(pb_grpc.SegmentdStub(channel))
    assert server.stop() == 0
    assert len(ledger.acked) > 0 and stored >= len(ledger.acked)
    # after a clean stop (final snapshot) the same holds
    server = start_server(tmp_path, data)
    with grpc.insecure_channel(server.address) as channel:
        ledger.check(pb_grpc.SegmentdStub(channel))
    assert server.stop() == 0


def test_snapshot_command_and_rpc(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(tmp_path, data, "--fsync", "everysec")
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.SegmentdStub(channel)
            ingest(stub, [{"eventTypeKey": TYPE, "keyValue": "v", "params": {"uid": "only"}}])
            reply = stub.Snapshot(pb.SnapshotRequest(), timeout=60)
        assert Path(reply.path).parent == data and Path(reply.path).exists()
        assert reply.bytes == Path(reply.path).stat().st_size and reply.seconds >= 0
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "snapshot", "--server", server.address],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert str(data) in result.stdout
    finally:
        assert server.stop() == 0


def _segment_answers(stub: pb_grpc.SegmentdStub, names: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for name in names:
        count = stub.CountMembers(pb.CountMembersRequest(name=name), timeout=30).count
        members = [cid for page in stub.ListMembers(pb.ListMembersRequest(name=name), timeout=30) for cid in page.contact_ids]
        answers[name] = (count, members)
    return answers


def test_segment_answers_survive_restarts(tmp_path: Path) -> None:
    from server.servicer import Servicer

    if "PutSegment" not in Servicer.__dict__:
        pytest.skip("the segment RPCs are not served yet")
    from google.protobuf import json_format

    data = tmp_path / "data"
    server = start_server(tmp_path, data)
    definitions = [
        {"name": "buyers", "condition": {"event": {"type": "buy", "period": {"allTime": {}}}}},
        {"name": "big-buyers", "condition": {"event": {"type": "buy", "period": {"allTime": {}}, "sum": {"param": "amount", "gte": 100}}}},
        {"name": "not-big", "condition": {"all": [{"segment": "buyers"}, {"not": {"segment": "big-buyers"}}]}},
    ]
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.SegmentdStub(channel)
        docs = [
            {"eventTypeKey": "buy", "keyValue": f"shopper-{i % 40}", "timestamp": 1_767_225_600_000 + i, "params": {"amount": i % 70}}
            for i in range(400)
        ]
        assert ingest(stub, docs).accepted == len(docs)
        for definition in definitions:
            segment = json_format.ParseDict(definition, pb.Segment())
            stub.PutSegment(pb.PutSegmentRequest(segment=segment), timeout=30)
        names = [d["name"] for d in definitions]
        before = _segment_answers(stub, names)
    assert any(count for count, _ in before.values())
    assert server.stop() == 0
    server = start_server(tmp_path, data)  # from the final snapshot
    with grpc.insecure_channel(server.address) as channel:
        assert _segment_answers(pb_grpc.SegmentdStub(channel), names) == before
    kill_9(server)
    server = start_server(tmp_path, data)  # from snapshot + log after a kill
    with grpc.insecure_channel(server.address) as channel:
        assert _segment_answers(pb_grpc.SegmentdStub(channel), names) == before
    assert server.stop() == 0


def test_damaged_data_directory_refuses_to_start_unless_forced(tmp_path: Path) -> None:
    from snapshots.wal import list_segments, scan_segment

    data = tmp_path / "data"
    server = start_server(tmp_path, data)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.SegmentdStub(channel)
        for n in range(5):
            ingest(stub, [{"eventTypeKey": TYPE, "keyValue": "v", "eventId": f"d{n}", "params": {"uid": f"d{n}"}}])
    kill_9(server)
    (_, segment), = list_segments(data)
    raw = bytearray(segment.read_bytes())
    victim = scan_segment(bytes(raw)).records[1]
    raw[victim.offset + 30] ^= 0x01
    segment.write_bytes(bytes(raw))
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(data)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert f"{segment} at byte {victim.offset}" in result.stderr
    server = start_server(tmp_path, data, "--force-recovery")
    with grpc.insecure_channel(server.address) as channel:
        kept = sorted(str(p["uid"]) for p in stored_params(pb_grpc.SegmentdStub(channel), TYPE))
    assert kept == ["d0"]
    assert server.stop() == 0
    server = start_server(tmp_path, data)  # the forced start committed a consistent state
    assert server.stop() == 0

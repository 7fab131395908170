"""Quick reads on their own worker threads: same answers, same guards, not stuck behind slow calls.

A real server over a real channel; the engine's saved segments are built through PutSegment.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest

from core.engine import Engine
from server.app import build_server
from server.auth import parse_tokens
from server.handlers import method_parts
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.pipeline import Protection
from server.workers import QUICK_METHODS, LeanPool, QuickLane
from tests.e2e.harness import NOW_MS, STOP_TIMEOUT_S

READ_TOKEN = "read-token-0123456789"
WRITE_TOKEN = "write-token-0123456789"


def _contacts(stub: pb_grpc.SegmentdStub, count: int, *, metadata: tuple = ()) -> None:
    # contact i + 1: externalId Q-i, and an email when i is even
    lines = "".join(f'{{"externalId": "Q-{i}"' + (f', "email": "q{i}@example.com"' if i % 2 == 0 else "") + "}\n"
                    for i in range(count))
    reply = stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=lines.encode()), timeout=30, metadata=metadata)
    assert reply.created == count


def _segment(stub: pb_grpc.SegmentdStub, name: str, kind: str, *, metadata: tuple = ()) -> None:
    seg = pb.Segment(name=name)
    seg.condition.identifier.kind = kind
    stub.PutSegment(pb.PutSegmentRequest(segment=seg), timeout=30, metadata=metadata)


def test_lean_pool_runs_calls_and_reports_completion() -> None:
    pool = LeanPool(2, name="test-lean")
    ran: list[str] = []
    seen: list[bool] = []
    done = threading.Event()
    try:
        future = pool.submit(lambda x: ran.append(threading.current_thread().name + x), "!")
        future.add_done_callback(lambda f: (seen.append(f.done()), done.set()))
        assert done.wait(5)
        assert ran and ran[0].startswith("test-lean_") and ran[0].endswith("!")
        assert seen == [True]
        late: list[bool] = []
        future.add_done_callback(lambda f: late.append(True))  # after completion: called at once
        assert late == [True]
        failing = pool.submit(lambda: 1 / 0)  # the worker survives a failing call
        after = threading.Event()
        failing.add_done_callback(lambda f: after.set())
        assert after.wait(5)
        again = threading.Event()
        pool.submit(again.set)
        assert again.wait(5)
        assert isinstance(pool, futures.ThreadPoolExecutor) and pool.workers == 2
    finally:
        pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_quick_lane_marks_only_unary_quick_methods() -> None:
    pool = LeanPool(1)
    try:
        lane = QuickLane(pool)
        quick = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
        other = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)

        class Details(grpc.HandlerCallDetails):
            def __init__(self, method: str) -> None:
                self.method = method
                self.invocation_metadata = ()

        (name,) = [m for m in QUICK_METHODS if method_parts(m)[1] == "CheckMembership"]
        assert lane.intercept_service(lambda d: quick, Details(name)) is quick
        assert quick.unary_unary.experimental_thread_pool is pool
        lane.intercept_service(lambda d: other, Details("/segmentd.v1.Segmentd/PreviewSegment"))
        assert not hasattr(other.unary_unary, "experimental_thread_pool")
        assert lane.intercept_service(lambda d: None, Details(name)) is None
    finally:
        pool.shutdown()


def test_quick_reads_answer_with_auth_and_limits_in_force() -> None:
    tokens = parse_tokens(f"{READ_TOKEN} read-only reader\n{WRITE_TOKEN} read-write writer", "test")
    engine = Engine(clock=lambda: NOW_MS)
    engine.ready = True
    server, port = build_server(engine, "127.0.0.1:0", max_workers=4, protection=Protection(tokens=tokens),
                                quick_workers=2)
    server.start()
    assert server.quick_pool is not None and server.quick_pool.workers == 2
    write = (("authorization", f"Bearer {WRITE_TOKEN}"),)
    read = (("authorization", f"Bearer {READ_TOKEN}"),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.SegmentdStub(channel)
            _contacts(stub, 10, metadata=write)
            _segment(stub, "emailable", "email", metadata=write)
            refs = [pb.ContactRef(contact_id=i) for i in range(1, 11)]
            reply = stub.CheckMembership(pb.CheckMembershipRequest(contacts=refs, segments=["emailable"]), timeout=10,
                                         metadata=read)
            assert list(reply.results) == [i % 2 == 1 for i in range(1, 11)]
            names = stub.GetContactSegments(
                pb.GetContactSegmentsRequest(contact=pb.ContactRef(contact_id=9)), timeout=10, metadata=read)
            assert list(names.segments) == ["emailable"]
            with pytest.raises(grpc.RpcError) as missing:
                stub.CheckMembership(pb.CheckMembershipRequest(contacts=refs[:1], segments=["emailable"]), timeout=10)
            assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as too_long:
                stub.CheckMembership(pb.CheckMembershipRequest(contacts=refs[:1], segments=["x" * 70_000]),
                                     timeout=10, metadata=read)
            assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "max_string_bytes" in (too_long.value.details() or "")
            with pytest.raises(grpc.RpcError) as unknown:
                stub.CheckMembership(pb.CheckMembershipRequest(contacts=refs[:1], segments=["nope"]), timeout=10,
                                     metadata=read)
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(None).wait(STOP_TIMEOUT_S)


def test_quick_reads_pass_calls_held_on_the_main_pool() -> None:
    """Every main worker busy with an open stream; CheckMembership still answers at once."""
    engine = Engine(clock=lambda: NOW_MS)
    engine.ready = True
    server, port = build_server(engine, "127.0.0.1:0", max_workers=2, quick_workers=1)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.SegmentdStub(channel)
            _contacts(stub, 3)
            _segment(stub, "all", "externalId")
            watches = [stub.WatchSegments(pb.WatchSegmentsRequest(from_sequence=0), timeout=30) for _ in range(2)]
            for watch in watches:
                next(watch)  # each stream now holds a main worker
            started = time.monotonic()
            reply = stub.CheckMembership(
                pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=2)], segments=["all"]), timeout=10)
            assert list(reply.results) == [True]
            assert time.monotonic() - started < 5.0
            with pytest.raises(grpc.RpcError) as queued:  # a call for the main pool waits its turn
                stub.CountMembers(pb.CountMembersRequest(name="all"), timeout=0.5)
            assert queued.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            for watch in watches:
                watch.cancel()
    finally:
        server.stop(None).wait(STOP_TIMEOUT_S)

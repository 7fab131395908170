"""One test per limit, each on a real server built with that limit set low: the refusal has the
right code (RESOURCE_EXHAUSTED or INVALID_ARGUMENT), names the limit, is counted in the metrics,
and leaves the server answering and its data intact."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from core.engine import Engine
from server.app import build_server
from server.limits import Limits
from server.observe import ServerMetrics
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.pipeline import Protection
from tests.e2e.harness import NOW_MS

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
WAIT_S = 10.0


@dataclass
class Served:
    stub: pb_grpc.SegmentdStub
    channel: grpc.Channel
    metrics: ServerMetrics
    engine: Engine

    def refusals(self, limit: str) -> float:
        return self.metrics.refused.labels(limit).value

    def started(self, method: str, kind: str = "client_stream") -> float:
        return self.metrics.started.labels(kind, "segmentd.v1.Segmentd", method).value


@contextmanager
def serving(limits: Limits, max_workers: int = 4) -> Iterator[Served]:
    engine = Engine(clock=lambda: NOW_MS)
    engine.ready = True
    metrics = ServerMetrics()
    server, port = build_server(
        engine, "127.0.0.1:0", max_workers=max_workers, protection=Protection(limits=limits, metrics=metrics)
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(pb_grpc.SegmentdStub(channel), channel, metrics, engine)
    finally:
        channel.close()
        server.stop(None).wait(WAIT_S)


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    return caught.value


def jsonl(*docs: Any) -> bytes:
    return b"".join(json.dumps(d).encode() + b"\n" for d in docs)


def login(i: int) -> dict[str, Any]:
    return {"eventTypeKey": "login", "params": {"email": f"u{i}@example.com"}}


def still_answers(served: Served) -> None:
    """The server keeps working and kept what it had accepted before the refusal."""
    types = {t.key: t.count for t in served.stub.ListEventTypes(pb.ListEventTypesRequest()).event_types}
    assert types.get("login") == 1
    assert served.stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(login(2)))).accepted == 1


def seeded(served: Served) -> Served:
    assert served.stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(login(1)))).accepted == 1
    return served


def nested_condition(depth: int) -> pb.Condition:
    cond = pb.Condition(event=pb.EventCondition(type="login"))
    for _ in range(depth - 1):
        cond = pb.Condition(all=[cond])
    return cond


# --------------------------------------------------------------------------- sizes of one request


def test_max_request_bytes() -> None:
    with serving(Limits(max_request_bytes=64 * 1024)) as served:
        seeded(served)
        big = jsonl(*[login(i) for i in range(3000)])
        assert len(big) > 64 * 1024
        err = refused(served.stub.IngestEvents, pb.IngestEventsRequest(jsonl=big))
        assert err.code() == EXHAUSTED and "larger than max" in err.details()
        still_answers(served)


def test_max_batch_events() -> None:
    with serving(Limits(max_batch_events=5)) as served:
        seeded(served)
        err = refused(served.stub.IngestEvents, pb.IngestEventsRequest(jsonl=jsonl(*[login(i) for i in range(6)])))
        assert err.code() == INVALID and err.details().startswith("events:") and "max_batch_events" in err.details()
        err = refused(served.stub.UpsertContacts, pb.UpsertContactsRequest(jsonl=jsonl(*[{"email": "a@b.co"}] * 6)))
        assert err.code() == INVALID and err.details().startswith("contacts:")
        assert served.refusals("max_batch_events") == 2
        still_answers(served)


def test_max_string_bytes() -> None:
    with serving(Limits(max_string_bytes=1024)) as served:
        seeded(served)
        err = refused(served.stub.GetSegment, pb.GetSegmentRequest(name="n" * 1025))
        assert err.code() == INVALID and err.details().startswith("name:") and "max_string_bytes" in err.details()
        assert served.refusals("max_string_bytes") == 1
        still_answers(served)


def test_max_list_items() -> None:
    with serving(Limits(max_list_items=10)) as served:
        seeded(served)
        request = pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=1)], segments=["s"] * 11)
        err = refused(served.stub.CheckMembership, request)
        assert err.code() == INVALID and err.details().startswith("segments:") and "max_list_items" in err.details()
        still_answers(served)


def test_max_json_depth() -> None:
    with serving(Limits(max_json_depth=10)) as served:
        seeded(served)
        deep = b'{"eventTypeKey":"login","params":' + b"[" * 11 + b"]" * 11 + b"}\n"
        err = refused(served.stub.IngestEvents, pb.IngestEventsRequest(jsonl=deep))
        assert err.code() == INVALID and err.details().startswith("jsonl[1]:") and "max_json_depth" in err.details()
        still_answers(served)


def test_json_nested_far_beyond_the_parser_is_refused_cleanly_at_default_limits() -> None:
    with serving(Limits()) as served:
        seeded(served)
        for payload in (b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
            err = refused(served.stub.IngestEvents, pb.IngestEventsRequest(jsonl=payload))
            assert err.code() == INVALID and "max_json_depth" in err.details()
            err = refused(served.stub.UpsertContacts, pb.UpsertContactsRequest(jsonl=payload))
            assert err.code() == INVALID and "max_json_depth" in err.details()
        still_answers(served)


def test_max_definition_depth() -> None:
    with serving(Limits(max_definition_depth=4)) as served:
        seeded(served)
        err = refused(served.stub.PutSegment, pb.PutSegmentRequest(segment=pb.Segment(name="deep",
                                                                                    condition=nested_condition(5))))
        assert err.code() == INVALID and "max_definition_depth" in err.details()
        assert err.details().startswith("segment.condition.all[0]")
        ok = served.stub.PutSegment(pb.PutSegmentRequest(segment=pb.Segment(name="ok", condition=nested_condition(4))))
        assert ok.created
        still_answers(served)


def test_max_definition_conditions() -> None:
    with serving(Limits(max_definition_conditions=8)) as served:
        seeded(served)
        wide = pb.Condition(any=[pb.Condition(event=pb.EventCondition(type="login"))] * 8)
        err = refused(served.stub.PreviewSegment, pb.PreviewSegmentRequest(segment=pb.Segment(condition=wide)))
        assert err.code() == INVALID and "max_definition_conditions" in err.details()
        still_answers(served)


def test_max_definition_bytes() -> None:
    with serving(Limits(max_definition_bytes=2048)) as served:
        seeded(served)
        segment = pb.Segment(name="wordy", description="d" * 3000, condition=nested_condition(1))
        err = refused(served.stub.PutSegment, pb.PutSegmentRequest(segment=segment))
        assert err.code() == INVALID and err.details().startswith("segment:")
        assert "max_definition_bytes" in err.details()
        assert not served.engine.segments.has("wordy")
        still_answers(served)


def test_bytes_that_are_not_a_message_are_invalid_not_internal() -> None:
    deep = struct_pb2.Value()
    cursor = deep
    for _ in range(120):  # deeper than the protobuf parser accepts
        cursor = cursor.list_value.values.add()
    request = pb.CountMembersRequest(name="s")
    request.as_of.CopyFrom(deep)
    with serving(Limits()) as served:
        seeded(served)
        for method, data in (("GetSegment", b"\xff\xff\xff\xff"), ("CountMembers", request.SerializeToString())):
            raw = served.channel.unary_unary(f"/segmentd.v1.Segmentd/{method}")
            err = refused(raw, data)
            assert err.code() == INVALID and "not a valid message" in err.details()
        assert served.refusals("message") == 2
        still_answers(served)


# --------------------------------------------------------------------------- calls and streams at once


class HeldStream:
    """A StreamEvents call whose client side waits until released."""

    def __init__(self, served: Served) -> None:
        self.release = threading.Event()
        self.future = served.stub.StreamEvents.future(self._requests())

    def _requests(self) -> Iterator[pb.StreamEventsRequest]:
        yield pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=jsonl(login(100))))
        self.release.wait(WAIT_S)

    def finish(self) -> Any:
        self.release.set()
        return self.future.result(timeout=WAIT_S)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_max_concurrent_rpcs() -> None:
    with serving(Limits(max_concurrent_rpcs=2, max_streams=0), max_workers=4) as served:
        held = [HeldStream(served) for _ in range(2)]
        wait_until(lambda: served.started("StreamEvents") == 2)
        err = refused(served.stub.ListEventTypes, pb.ListEventTypesRequest())
        assert err.code() == EXHAUSTED and "Concurrent RPC limit" in err.details()
        assert [h.finish().accepted for h in held] == [1, 1]
        assert served.stub.ListEventTypes(pb.ListEventTypesRequest()).event_types


def test_max_streams() -> None:
    with serving(Limits(max_streams=1), max_workers=4) as served:
        seeded(served)
        held = HeldStream(served)
        wait_until(lambda: served.started("StreamEvents") == 1)
        second = iter([pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=jsonl(login(7))))])
        err = refused(served.stub.StreamEvents, second)
        assert err.code() == EXHAUSTED and "max_streams" in err.details()
        assert served.stub.ListEventTypes(pb.ListEventTypesRequest()).event_types  # unary calls still served
        assert held.finish().accepted == 1
        again = iter([pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=jsonl(login(8))))])
        assert served.stub.StreamEvents(again).accepted == 1  # the slot was given back
        assert served.refusals("max_streams") == 1


def test_stream_messages_per_s() -> None:
    with serving(Limits(stream_messages_per_s=5)) as served:
        seeded(served)
        flood = (pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=jsonl(login(10 + i)))) for i in range(40))
        err = refused(served.stub.StreamEvents, flood)
        assert err.code() == EXHAUSTED and "stream_messages_per_s" in err.details()
        count = {t.key: t.count for t in served.stub.ListEventTypes(pb.ListEventTypesRequest()).event_types}["login"]
        assert 1 + 5 <= count < 1 + 40  # the burst went in, the flood did not
        assert served.refusals("stream_messages_per_s") == 1


def test_eval_deadline_s_stops_a_long_member_listing() -> None:
    with serving(Limits(eval_deadline_s=1e-6)) as served:
        contacts = jsonl(*[{"email": f"m{i}@example.com"} for i in range(200)])
        assert served.stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=contacts)).created == 200
        served.engine.put_segment({"name": "everyone", "contacts": list(range(1, 201))})
        pages = served.stub.ListMembers(pb.ListMembersRequest(name="everyone", page_size=1))
        got: list[int] = []
        with pytest.raises(grpc.RpcError) as caught:
            for page in pages:
                got.extend(page.contact_ids)
        assert caught.value.code() == EXHAUSTED and "eval_deadline_s" in caught.value.details()
        assert len(got) < 200
        assert served.stub.CountMembers(pb.CountMembersRequest(name="everyone")).count == 200


MANY = 50_000  # one-id pages: far more than the server can send before the client's deadline


def test_a_client_deadline_ends_the_call_on_the_server() -> None:
    with serving(Limits()) as served:
        served.engine.upsert_contacts([{"email": f"d{i}@example.com"} for i in range(MANY)])
        served.engine.put_segment({"name": "many", "contacts": list(range(1, MANY + 1))})
        pages = served.stub.ListMembers(pb.ListMembersRequest(name="many", page_size=1), timeout=0.3)
        with pytest.raises(grpc.RpcError) as caught:
            for _ in pages:
                time.sleep(0.01)  # a slow reader: its deadline passes mid-listing
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        labels = ("server_stream", "segmentd.v1.Segmentd", "ListMembers")
        # The client's transport may report its deadline as a cancellation before the server's
        # own timer fires: either way the call ended early on the server.
        ended = [served.metrics.handled.labels(*labels, code) for code in ("DEADLINE_EXCEEDED", "CANCELLED")]
        wait_until(lambda: sum(child.value for child in ended) == 1)
        assert served.metrics.sent.labels(*labels).value < MANY  # the server stopped, it did not list on


def test_eval_deadline_s_stops_a_long_evaluation_between_shards() -> None:
    with serving(Limits(eval_deadline_s=1e-6)) as served:
        served.engine.upsert_contacts([{"email": f"e{i}@example.com"} for i in range(50)])
        served.engine.ingest([login(i) for i in range(50)])
        served.engine.put_segment({"name": "logged-in", "condition": {"event": {"type": "login"}}})
        err = refused(served.stub.CountMembers, pb.CountMembersRequest(name="logged-in", as_of=struct_pb2.Value(
            number_value=NOW_MS - 1)))
        assert err.code() == EXHAUSTED and "eval_deadline_s" in err.details()
        assert served.stub.ListEventTypes(pb.ListEventTypesRequest()).event_types

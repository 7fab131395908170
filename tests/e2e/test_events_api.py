"""Events RPCs on a real server: ingest (batch, stream, JSON Lines, dry run), event types,
history, type configuration; status mapping; health and reflection."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from core import errors
from core.engine import Engine
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.servicer import Servicer
from server.status import STATUS_OF, guarded
from tests.e2e.harness import (
    NOT_SERVING,
    NOW_MS,
    SERVING,
    Running,
    health_status,
    start_in_process,
    wait_for_status,
)

REJECTED = pb.EventResult.REJECTED
ACCEPTED = pb.EventResult.ACCEPTED
DUPLICATE = pb.EventResult.DUPLICATE


def value(x: Any) -> struct_pb2.Value:
    return json_format.ParseDict(x, struct_pb2.Value())


def event(
    type_key: str,
    params: Any = None,
    *,
    key_value: str = "",
    event_id: str = "",
    timestamp: Any = None,
    system: bool = False,
) -> pb.Event:
    e = pb.Event(event_type_key=type_key, key_value=key_value, event_id=event_id, system=system)
    if params is not None:
        e.params.CopyFrom(value(params))
    if timestamp is not None:
        e.timestamp.CopyFrom(value(timestamp))
    return e


def jsonl(*docs: Any) -> bytes:
    return b"".join((d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\n" for d in docs)


def rpc_error(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


def type_keys(stub: pb_grpc.SegmentdStub) -> set[str]:
    return {t.key for t in stub.ListEventTypes(pb.ListEventTypesRequest()).event_types}


# --------------------------------------------------------------------------- IngestEvents


def test_both_event_shapes_are_stored(stub: pb_grpc.SegmentdStub) -> None:
    v2 = event(
        "productViewed",
        [
            {"name": "email", "value": "ann@example.com"},
            {"name": "product", "value": '{"productId":"WS01-L-Green","price":45.5,"isInStock":1}'},
            {"name": "currencyCode", "value": "USD"},
        ],
        key_value="ann@example.com",
        timestamp="2026-01-10T10:15:00Z",
    )
    v3 = event("Applogin", {"externalCustomerId": "C-7", "osType": "iOS"}, key_value="dev-1", timestamp=NOW_MS - 1000)
    reply = stub.IngestEvents(pb.IngestEventsRequest(events=[v2, v3]))
    assert (reply.accepted, reply.duplicates, reply.rejected) == (2, 0, 0)
    assert list(reply.results) == [] and not reply.all_results
    history = stub.GetEventHistory(pb.GetEventHistoryRequest(event_type_key="productViewed"))
    assert len(history.events) == 1
    stored = json_format.MessageToDict(history.events[0].params)
    assert stored["product"]["price"] == 45.5 and stored["currencyCode"] == "USD"
    assert history.events[0].ts_ms == 1_768_040_100_000
    login = stub.GetEventHistory(pb.GetEventHistoryRequest(event_type_key="Applogin")).events[0]
    assert login.ts_ms == NOW_MS - 1000
    assert login.contact_id != history.events[0].contact_id


def test_a_missing_timestamp_is_the_server_time(stub: pb_grpc.SegmentdStub) -> None:
    stub.IngestEvents(pb.IngestEventsRequest(events=[event("ping", {"email": "t@example.com"})]))
    stored = stub.GetEventHistory(pb.GetEventHistoryRequest(event_type_key="ping")).events
    assert [e.ts_ms for e in stored] == [NOW_MS]


def test_rejected_events_are_reported_by_position_and_the_rest_stored(stub: pb_grpc.SegmentdStub) -> None:
    batch = [
        event("visit", {"email": "a@example.com"}),
        event("visit", {"email": "b@example.com"}, timestamp="yesterday-ish"),
        event("visit", {"email": "c@example.com"}),
        event("visit", {"note": "no identifier and no keyValue"}),
        event("", {"email": "d@example.com"}),
    ]
    reply = stub.IngestEvents(pb.IngestEventsRequest(events=batch))
    assert (reply.accepted, reply.rejected) == (2, 3)
    assert [r.index for r in reply.results] == [1, 3, 4]
    assert all(r.status == REJECTED and r.error for r in reply.results)
    assert reply.results[0].field == "timestamp" and "timestamp" in reply.results[0].error
    assert reply.results[2].field == "eventTypeKey"
    history = stub.GetEventHistory(pb.GetEventHistoryRequest(event_type_key="visit"))
    assert len(history.events) == 2


def test_jsonl_lines_follow_the_events_in_positions(stub: pb_grpc.SegmentdStub) -> None:
    lines = jsonl(
        {"eventTypeKey": "scan", "params": {"email": "j1@example.com"}},
        b"{not json",
        b"   ",
        [1, 2, 3],
        {"eventTypeKey": "scan", "params": [{"name": "Email", "value": "j2@example.com"}]},
        b'{"eventTypeKey": "scan", "params": {"email": "\xff@example.com"}}',
    )
    reply = stub.IngestEvents(pb.IngestEventsRequest(events=[event("scan", {"email": "j0@example.com"})], jsonl=lines))
    assert (reply.accepted, reply.rejected) == (3, 3)
    assert [(r.index, r.field) for r in reply.results] == [(2, "jsonl[2]"), (3, "jsonl[4]"), (5, "jsonl[6]")]
    assert "not valid JSON" in reply.results[0].error and "not valid JSON" in reply.results[2].error
    assert stub.ListEventTypes(pb.ListEventTypesRequest(key="scan")).event_types[0].count == 3


def test_a_retry_with_the_same_event_id_is_a_duplicate(stub: pb_grpc.SegmentdStub) -> None:
    once = event("order", {"email": "o@example.com", "total": 10}, event_id="ord-1")
    first = stub.IngestEvents(pb.IngestEventsRequest(events=[once, once]))
    assert (first.accepted, first.duplicates) == (1, 1)
    again = stub.IngestEvents(pb.IngestEventsRequest(events=[once]))
    assert (again.accepted, again.duplicates, again.rejected) == (0, 1, 0)
    other_type = stub.IngestEvents(pb.IngestEventsRequest(events=[event("refund", {"email": "o@example.com"}, event_id="ord-1")]))
    assert other_type.accepted == 1
    assert stub.ListEventTypes(pb.ListEventTypesRequest(key="order")).event_types[0].count == 1


def test_an_identifier_conflict_is_reported_and_not_moved(stub: pb_grpc.SegmentdStub) -> None:
    ann, bob = stub.UpsertContacts(
        pb.UpsertContactsRequest(
            contacts=[pb.ContactInput(email="ann@conflict.example"), pb.ContactInput(email="bob@conflict.example")]
        )
    ).results
    # Found by Ann's email; Bob's email belongs to Bob, so it stays his and is reported.
    batch = [
        event("visit", [{"name": "email", "value": "ann@conflict.example"}, {"name": "ContactEmail", "value": "bob@conflict.example"}]),
        event("visit", {"email": "ann@conflict.example"}),
    ]
    reply = stub.IngestEvents(pb.IngestEventsRequest(events=batch))
    assert reply.accepted == 2 and not reply.all_results
    assert [(r.index, r.status, r.contact_id) for r in reply.results] == [(0, ACCEPTED, ann.contact_id)]
    assert list(reply.results[0].conflicts) == ["email:bob@conflict.example"]
    bob_now = stub.GetContact(pb.GetContactRequest(contact=pb.ContactRef(ref="email:bob@conflict.example")))
    assert bob_now.contact.contact_id == bob.contact_id


def test_dry_run_maps_every_event_and_stores_nothing(stub: pb_grpc.SegmentdStub) -> None:
    known = stub.UpsertContacts(pb.UpsertContactsRequest(contacts=[pb.ContactInput(email="Known@Example.com")]))
    known_id = known.results[0].contact_id
    batch = [
        event("trial", {"Email": "KNOWN@example.com"}),
        # the list shape keeps parameter order on the wire (a Struct is a map and does not)
        event("trial", [{"name": "email", "value": "new@example.com"}, {"name": "PushToken", "value": "wp:new"}]),
        event("trial", {"x": 1}),
    ]
    reply = stub.IngestEvents(pb.IngestEventsRequest(events=batch, dry_run=True))
    assert reply.all_results
    assert [r.status for r in reply.results] == [ACCEPTED, ACCEPTED, REJECTED]
    assert reply.results[0].contact_id == known_id and not reply.results[0].contact_created
    assert reply.results[0].identifier == "email:known@example.com"
    assert reply.results[1].contact_created and reply.results[1].identifier == "email:new@example.com"
    assert "pushToken:wp:new" in reply.results[1].attached
    assert "trial" not in type_keys(stub)
    missing = rpc_error(stub.GetContact, pb.GetContactRequest(contact=pb.ContactRef(ref="email:new@example.com")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


def test_a_batch_over_10000_events_is_refused_whole(stub: pb_grpc.SegmentdStub) -> None:
    lines = jsonl(*({"eventTypeKey": "bulk", "params": {"email": f"u{i}@example.com"}} for i in range(10_000)))
    request = pb.IngestEventsRequest(events=[event("bulk", {"email": "first@example.com"})], jsonl=lines)
    err = rpc_error(stub.IngestEvents, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("events:") and "10000" in err.details()
    assert "bulk" not in type_keys(stub)
    exactly = stub.IngestEvents(pb.IngestEventsRequest(jsonl=lines))
    assert exactly.accepted == 10_000


# --------------------------------------------------------------------------- StreamEvents


def stream(*batches: pb.IngestEventsRequest) -> Iterator[pb.StreamEventsRequest]:
    for batch in batches:
        yield pb.StreamEventsRequest(batch=batch)


def test_a_stream_of_batches_gets_one_summed_reply(stub: pb_grpc.SegmentdStub) -> None:
    reply = stub.StreamEvents(
        stream(
            pb.IngestEventsRequest(events=[event("tap", {"email": "s1@example.com"}), event("tap", {})]),
            pb.IngestEventsRequest(jsonl=jsonl({"eventTypeKey": "tap", "params": {"email": "s2@example.com"}}, b"[")),
            pb.IngestEventsRequest(events=[event("tap", {"email": "s1@example.com"}, event_id="e1")] * 2),
        )
    )
    assert (reply.accepted, reply.duplicates, reply.rejected) == (3, 1, 2)
    assert [(r.index, r.status) for r in reply.results] == [(1, REJECTED), (3, REJECTED)]
    assert reply.results[1].field == "jsonl[2]"
    assert not reply.all_results


def test_an_oversized_stream_batch_is_refused_naming_it(stub: pb_grpc.SegmentdStub) -> None:
    big = jsonl(*({"eventTypeKey": "flood", "params": {"email": f"f{i}@example.com"}} for i in range(10_001)))
    first = pb.IngestEventsRequest(events=[event("trickle", {"email": "t@example.com"})])
    err = rpc_error(stub.StreamEvents, stream(first, pb.IngestEventsRequest(jsonl=big)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("batch.events:") and "message 1" in err.details()
    assert "flood" not in type_keys(stub) and "trickle" in type_keys(stub)


def test_a_stream_cancelled_by_the_client_is_not_a_server_error(
    stub: pb_grpc.SegmentdStub, caplog: pytest.LogCaptureFixture
) -> None:
    hold = threading.Event()

    def requests() -> Iterator[pb.StreamEventsRequest]:
        yield pb.StreamEventsRequest(batch=pb.IngestEventsRequest(events=[event("held", {"email": "h@example.com"})]))
        hold.wait(10)  # keeps the stream open until the test cancels it

    with caplog.at_level(logging.INFO, logger="segmentd.rpc"):
        call = stub.StreamEvents.future(requests())
        deadline = time.monotonic() + 10
        while "held" not in type_keys(stub) and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            assert call.cancel()
            # grpcio may hand the handler a cancelled stream as one that simply ended (its
            # pending read completes empty before the cancellation is noted), so the INFO line
            # is awaited, not required; what must never appear is an error
            settle = time.monotonic() + 2
            while not any("cancelled" in r.getMessage() for r in caplog.records) and time.monotonic() < settle:
                time.sleep(0.02)
        finally:
            hold.set()
        assert call.cancelled()
        reply = stub.StreamEvents(stream(pb.IngestEventsRequest(events=[event("after", {"email": "a@example.com"})])))
    assert reply.accepted == 1 and {"held", "after"} <= type_keys(stub)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "segmentd.rpc"]
    assert all(level < logging.ERROR for level, _ in messages), messages


def test_an_empty_stream_stores_nothing(stub: pb_grpc.SegmentdStub) -> None:
    reply = stub.StreamEvents(stream())
    assert (reply.accepted, reply.rejected, len(reply.results)) == (0, 0, 0)


# --------------------------------------------------------------------------- event types, history, config


def test_event_types_list_paths_with_kinds_counts_and_examples(stub: pb_grpc.SegmentdStub) -> None:
    docs = [
        {"eventTypeKey": "cartUpdated", "params": [
            {"name": "email", "value": f"cart{i}@example.com"},
            {"name": "products", "value": json.dumps([{"productId": f"P-{i}", "price": 2.5 * (i + 1)}])},
            {"name": "gift", "value": i % 2 == 0}]}
        for i in range(3)
    ]  # fmt: skip
    stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(*docs)))
    (cart,) = stub.ListEventTypes(pb.ListEventTypesRequest(key="cartUpdated")).event_types
    assert cart.count == 3 and cart.first_ts_ms == cart.last_ts_ms == NOW_MS
    paths = {(p.path, p.kind): p for p in cart.paths}
    assert paths[("products.price", "number")].count == 3
    assert paths[("gift", "boolean")].count == 3
    examples = [json_format.MessageToDict(v) for v in paths[("products.productId", "string")].examples]
    assert examples and set(examples) <= {"P-0", "P-1", "P-2"}
    assert "cartUpdated" in type_keys(stub)


def test_an_unknown_event_type_is_not_found(stub: pb_grpc.SegmentdStub) -> None:
    err = rpc_error(stub.ListEventTypes, pb.ListEventTypesRequest(key="neverSeen"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "neverSeen" in err.details()
    err = rpc_error(stub.GetEventHistory, pb.GetEventHistoryRequest(event_type_key="neverSeen"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_history_pages_through_every_event_once(stub: pb_grpc.SegmentdStub) -> None:
    docs = [{"eventTypeKey": "step", "timestamp": NOW_MS - i * 1000, "params": {"email": "w@example.com", "n": i}} for i in range(5)]
    stub.IngestEvents(pb.IngestEventsRequest(jsonl=jsonl(*docs)))
    seen: list[int] = []
    token = ""
    for _ in range(10):
        page = stub.GetEventHistory(pb.GetEventHistoryRequest(event_type_key="step", page_size=2, page_token=token))
        assert len(page.events) <= 2
        seen += [int(e.params["n"]) for e in page.events]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetEventHistoryRequest(event_type_key="step", page_size=10_001), "page_size"),
        (pb.GetEventHistoryRequest(), "event_type_key"),
    ],
)
def test_bad_history_requests_name_the_field(stub: pb_grpc.SegmentdStub, request_: Any, field: str) -> None:
    stub.IngestEvents(pb.IngestEventsRequest(events=[event("step", {"email": "w@example.com"})]))
    err = rpc_error(stub.GetEventHistory, request_)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"{field}:")


def test_a_custom_mapping_decides_the_contact(stub: pb_grpc.SegmentdStub) -> None:
    contact = stub.UpsertContacts(pb.UpsertContactsRequest(contacts=[pb.ContactInput(external_id="CRM-9")])).results[0]
    config = pb.EventTypeConfig(mapping={"clientCode": "externalId"}, retention_days=30)
    reply = stub.SetEventTypeConfig(pb.SetEventTypeConfigRequest(event_type_key="loyalty", config=config))
    assert dict(reply.event_type.config.mapping) == {"clientCode": "externalId"}
    assert reply.event_type.config.retention_days == 30
    ingest = stub.IngestEvents(pb.IngestEventsRequest(events=[event("loyalty", {"clientCode": "CRM-9"})], dry_run=True))
    assert ingest.results[0].contact_id == contact.contact_id
    assert ingest.results[0].identifier == "externalId:CRM-9"


def test_a_bad_mapping_is_refused_naming_it(stub: pb_grpc.SegmentdStub) -> None:
    config = pb.EventTypeConfig(mapping={"clientCode": "shoeSize"})
    err = rpc_error(stub.SetEventTypeConfig, pb.SetEventTypeConfigRequest(event_type_key="loyalty", config=config))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("config.mapping")
    err = rpc_error(stub.SetEventTypeConfig, pb.SetEventTypeConfigRequest(event_type_key="", config=pb.EventTypeConfig()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("event_type_key")


# --------------------------------------------------------------------------- status mapping


class FailingEngine(Engine):
    """A real engine whose event_types and clock raise `error` (how the server reports each
    class); an ingest reads the clock once it holds the writer lock."""

    error: BaseException = RuntimeError("secret: db password is hunter2")

    def event_types(self, key: str | None = None) -> Any:
        raise self.error

    def ingest(self, docs: Any, *, dry_run: bool = False, now_ms: int | None = None) -> Any:
        raise self.error

    def failing_clock(self) -> int:
        raise self.error


def _failing(error: BaseException) -> Running:
    engine = FailingEngine(clock=lambda: NOW_MS)
    engine.error = error
    engine.clock = engine.failing_clock
    engine.ready = True
    return start_in_process(engine)


@pytest.mark.parametrize("error_class", list(STATUS_OF))
def test_each_domain_error_has_its_status_code(error_class: type[errors.SegmentdError]) -> None:
    error = error_class("things[2].name", "is wrong") if error_class is errors.InvalidArgument else error_class("nope")
    run = _failing(error)
    try:
        stub = pb_grpc.SegmentdStub(run.channel)
        for call in (
            lambda: stub.ListEventTypes(pb.ListEventTypesRequest()),
            lambda: stub.StreamEvents(stream(pb.IngestEventsRequest(events=[event("x", {"email": "a@b.c"})]))),
        ):
            err = rpc_error(call)
            assert err.code() == STATUS_OF[error_class]
            assert err.details() == str(error)
    finally:
        run.close()


def test_an_unexpected_error_is_internal_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    run = _failing(RuntimeError("secret: db password is hunter2"))
    try:
        with caplog.at_level(logging.ERROR, logger="segmentd.rpc"):
            err = rpc_error(pb_grpc.SegmentdStub(run.channel).ListEventTypes, pb.ListEventTypesRequest())
        assert err.code() == grpc.StatusCode.INTERNAL
        assert "hunter2" not in err.details() and "Traceback" not in err.details()
        ref = err.details().split("ref ")[1].split(")")[0]
        logged = [r for r in caplog.records if ref in r.getMessage()]
        assert logged and logged[0].exc_info is not None
        assert "hunter2" in str(logged[0].exc_info[1])
    finally:
        run.close()


@guarded(pb_grpc.SegmentdServicer)
class ServicerWithMembers(Servicer):
    """The servicer extended by one more RPC, as a new area of the API would be."""

    def ListMembers(self, request: pb.ListMembersRequest, context: grpc.ServicerContext) -> Iterator[pb.ListMembersResponse]:
        yield pb.ListMembersResponse(contact_ids=[1, 2])
        raise errors.NotFound(f"segment {request.name!r} does not exist")


@guarded(pb_grpc.SegmentdServicer)
class OneMethodServicer(pb_grpc.SegmentdServicer):
    def ListEventTypes(self, request: Any, context: grpc.ServicerContext) -> pb.ListEventTypesResponse:
        return pb.ListEventTypesResponse()


def serving(servicer: pb_grpc.SegmentdServicer) -> tuple[grpc.Server, pb_grpc.SegmentdStub, grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_SegmentdServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return server, pb_grpc.SegmentdStub(channel), channel


def test_an_extended_servicer_maps_errors_once_including_streamed_replies(engine: Engine) -> None:
    server, stub, channel = serving(ServicerWithMembers(engine))
    try:
        received: list[int] = []
        with pytest.raises(grpc.RpcError) as info:
            for reply in stub.ListMembers(pb.ListMembersRequest(name="vips")):
                received += reply.contact_ids
        assert received == [1, 2]
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and "vips" in info.value.details()
        err = rpc_error(stub.ListEventTypes, pb.ListEventTypesRequest(key="nothing"))
        assert err.code() == grpc.StatusCode.NOT_FOUND  # inherited, wrapped once: not INTERNAL
    finally:
        channel.close()
        server.stop(None)


def test_methods_left_to_the_generated_base_answer_unimplemented() -> None:
    server, stub, channel = serving(OneMethodServicer())
    try:
        assert list(stub.ListEventTypes(pb.ListEventTypesRequest()).event_types) == []
        assert rpc_error(stub.CountMembers, pb.CountMembersRequest()).code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        channel.close()
        server.stop(None)


# --------------------------------------------------------------------------- health, readiness, reflection


def test_health_follows_readiness_and_shutdown() -> None:
    engine = Engine(clock=lambda: NOW_MS)
    run = start_in_process(engine)
    try:
        stub = pb_grpc.SegmentdStub(run.channel)
        assert health_status(run.channel) == NOT_SERVING
        assert health_status(run.channel, "segmentd.v1.Segmentd") == NOT_SERVING
        err = rpc_error(stub.ListEventTypes, pb.ListEventTypesRequest())
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        engine.ready = True
        wait_for_status(run.channel, SERVING, timeout=10)
        assert health_status(run.channel, "segmentd.v1.Segmentd") == SERVING
        assert list(stub.ListEventTypes(pb.ListEventTypesRequest()).event_types) == []
    finally:
        run.channel.close()
        stopped = run.server.stop(1.0)
    check = run.server.health.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert check.status == NOT_SERVING
    assert stopped.wait(10)


def test_health_for_an_unknown_service_is_not_found(running: Running) -> None:
    err = rpc_error(health_status, running.channel, "no.such.Service")
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"segmentd.v1.Segmentd", "grpc.health.v1.Health"} <= names


def test_a_long_stream_of_rejections_keeps_its_reply_bounded(stub: pb_grpc.SegmentdStub) -> None:
    from server.servicer import MAX_STREAM_RESULTS

    bad_lines = b"{}\n" * 10_000
    messages = MAX_STREAM_RESULTS // 10_000 + 1
    reply = stub.StreamEvents(
        iter([pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=bad_lines)) for _ in range(messages)])
    )
    assert reply.rejected == messages * 10_000
    assert len(reply.results) == MAX_STREAM_RESULTS and not reply.all_results
    assert reply.results[-1].index == MAX_STREAM_RESULTS - 1


# --------------------------------------------------------------------------- column batches


def test_columns_store_rows_and_reject_bad_ones_by_position(stub: pb_grpc.SegmentdStub) -> None:
    import numpy as np

    from server.convert import batch_to_columns

    created = stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=b'{"externalId":"C-1"}\n{"externalId":"C-2"}\n'))
    assert created.created == 2
    columns = batch_to_columns(
        "workout",
        [1, 2, 77, 1],
        [NOW_MS - 1000, NOW_MS - 2000, NOW_MS, NOW_MS],
        {
            "calories": np.array([120.0, np.nan, 50.0, np.inf]),
            "osType": np.array(["iOS", None, "Web", "iOS"], dtype=object),
            "indoor": np.array([True, False, True, True]),
        },
    )
    reply = stub.IngestEvents(pb.IngestEventsRequest(columns=columns))
    assert (reply.accepted, reply.rejected) == (2, 2)
    assert [(r.index, r.field) for r in reply.results] == [(2, "contact_ids"), (3, "params.calories")]
    history = stub.GetEventHistory(pb.GetEventHistoryRequest(event_type_key="workout"))
    stored = sorted((e.contact_id, e.ts_ms, json_format.MessageToDict(e.params)) for e in history.events)
    assert stored == [
        (1, NOW_MS - 1000, {"calories": 120, "osType": "iOS", "indoor": True}),
        (2, NOW_MS - 2000, {"indoor": False}),
    ]
    err = rpc_error(stub.IngestEvents, pb.IngestEventsRequest(columns=pb.EventColumns(event_type_key="t", ts_ms=b"1")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("columns.ts_ms")
    mixed = pb.IngestEventsRequest(columns=columns, jsonl=b'{"eventTypeKey":"x","keyValue":"k"}\n')
    assert rpc_error(stub.IngestEvents, mixed).details().startswith("columns:")

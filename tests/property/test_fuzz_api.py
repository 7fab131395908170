"""Fuzzing the API: hostile event JSON, contact JSON, segment definitions and request bytes.

A real server (over a durable engine) must answer every input with success or a clean error
(never INTERNAL, UNKNOWN or a crash), keep answering, keep the seed data it accepted before the
fuzzing exactly as it was, and hold only state that its write-ahead log replays to exactly.
Destructive RPCs (erase, merge, delete, upserts by id) are fuzzed on a second, scratch server.

Bounded for the suite; FUZZ_EXAMPLES=N runs N examples per test (docs/OPERATIONS.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import Engine
from server.app import build_server
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from snapshots.digest import state_lines
from snapshots.durable import open_durable

NOW_MS = 1_768_478_400_000
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
CLEAN = frozenset({
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
})
SEED_TYPE = "seed-type-7f3a9c"
SEED_SEGMENT = "seed-segment-7f3a9c"
SERVICE = pb.DESCRIPTOR.services_by_name["Segmentd"]
# RPCs that change or remove what exists: fuzzed only on the scratch server.
DESTRUCTIVE = {"EraseContact", "MergeContacts", "DeleteSegment", "UpsertContacts", "SetEventTypeConfig", "Snapshot"}
NEVER_ENDING = {"WatchSegments"}  # a stream that waits for changes


# --------------------------------------------------------------------------- servers


@dataclass
class Served:
    engine: Engine
    durability: Any
    channel: grpc.Channel
    stub: pb_grpc.SegmentdStub
    data_dir: Path


def start(data_dir: Path) -> tuple[Served, Any]:
    engine = Engine(clock=lambda: NOW_MS)
    _, durability = open_durable(data_dir, engine=engine, fsync="none")
    engine.ready = True
    server, port = build_server(engine, "127.0.0.1:0", max_workers=4)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)])
    return Served(engine, durability, channel, pb_grpc.SegmentdStub(channel), data_dir), server


def seed(engine: Engine) -> None:
    engine.upsert_contacts([{"email": f"seed{i}@seed-7f3a9c.example", "fields": {"tier": i}} for i in range(5)])
    engine.ingest([{"eventTypeKey": SEED_TYPE, "params": {"email": f"seed{i}@seed-7f3a9c.example", "n": i}}
                   for i in range(5)])
    engine.put_segment({"name": SEED_SEGMENT, "condition": {"event": {"type": SEED_TYPE,
                                                                       "period": {"allTime": {}}}}})


def seed_state(engine: Engine) -> list[str]:
    """The seed data: the seed type and its events, the seed segment and its members, contacts 1-5."""
    mine = (f'type "{SEED_TYPE}"', f'event "{SEED_TYPE}"', f'members "{SEED_SEGMENT}"')
    lines = [line for line in state_lines(engine, portable=True) if line.startswith(mine)]
    lines.append(repr(engine.segments.to_json(SEED_SEGMENT)))
    lines += [repr(engine.contacts.get(cid)) for cid in range(1, 6)]
    return lines


@pytest.fixture(scope="module")
def main_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served, server = start(tmp_path_factory.mktemp("fuzz") / "data")
    seed(served.engine)
    before = seed_state(served.engine)
    yield served
    try:
        assert seed_state(served.engine) == before, "the fuzzing changed data accepted before it"
        live = state_lines(served.engine, portable=True)
    finally:
        served.channel.close()
        server.stop(None).wait(10)
        served.durability.close(snapshot=False)
    recovered = Engine(clock=lambda: NOW_MS)
    _, durability = open_durable(served.data_dir, engine=recovered, fsync="none")
    try:
        assert state_lines(recovered, portable=True) == live, "the log does not replay to the fuzzed state"
    finally:
        durability.close(snapshot=False)


@pytest.fixture(scope="module")
def scratch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served, server = start(tmp_path_factory.mktemp("fuzz-scratch") / "data")
    seed(served.engine)
    yield served
    served.channel.close()
    server.stop(None).wait(10)
    served.durability.close(snapshot=False)


def code_of(call: Any, request: Any) -> grpc.StatusCode:
    try:
        result = call(request, timeout=30)
        if hasattr(result, "__next__"):
            list(result)
    except grpc.RpcError as exc:
        assert exc.code() in CLEAN, f"{exc.code()}: {exc.details()}"
        return exc.code()
    return grpc.StatusCode.OK


def still_serving(served: Served, *, seeds_kept: bool = True) -> None:
    """The server answers (and, unless destructive calls went to it, still has the seed events)."""
    types = served.stub.ListEventTypes(pb.ListEventTypesRequest(), timeout=30).event_types
    if seeds_kept:
        assert {t.key: t.count for t in types}[SEED_TYPE] == 5


# --------------------------------------------------------------------------- strategies

KEYS = st.sampled_from(["eventTypeKey", "keyValue", "eventId", "timestamp", "system", "params", "name", "value",
                        "email", "phone", "externalId", "pushTokens", "keys", "fields", "contactId", "x"])
# Integers beyond 64 bits have a test of their own (below): one accepted kills the log.
SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    KEYS | st.text(max_size=8), inner, max_size=4), max_leaves=25)
TIMES = st.one_of(st.integers(-(2**64), 2**64), st.text(max_size=30),
                  st.sampled_from(["2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "1969-12-31T23:59:59.999Z"]))
IDENTIFIERS = st.sampled_from(["a@example.com", "A@EXAMPLE.COM ", "+44 20 7946 0001", "bad@", "", " ",
                               "x" * 300, "é@example.com", "\u0000@example.com"])


@st.composite
def event_docs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)  # not even an object, sometimes
    doc: dict[str, Any] = {"eventTypeKey": draw(st.sampled_from(["purchase", "view", "", "x" * 129, "Ünïcode"])
                                                | st.text(max_size=10))}
    params = draw(st.one_of(
        st.dictionaries(st.text(max_size=10) | st.sampled_from(["email", "phone", "contactId", "product"]),
                        JSON | IDENTIFIERS | st.just('{"nested": [1, 2, {"a": "b"}]}'), max_size=6),
        st.lists(st.fixed_dictionaries({"name": st.text(max_size=8), "value": JSON}), max_size=4),
        JSON,
    ))
    doc["params"] = params
    for key, strategy in (("keyValue", IDENTIFIERS | st.text(max_size=10)), ("eventId", st.text(max_size=10)),
                          ("timestamp", TIMES), ("system", st.booleans() | JSON)):
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return doc


@st.composite
def contact_docs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    doc: dict[str, Any] = {}
    for key, strategy in (("email", IDENTIFIERS | JSON), ("phone", IDENTIFIERS | JSON), ("externalId", IDENTIFIERS),
                          ("pushTokens", st.lists(st.text(max_size=10), max_size=3) | JSON),
                          ("keys", st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2) | JSON),
                          ("fields", st.dictionaries(st.text(max_size=8), JSON, max_size=4) | JSON),
                          ("contactId", st.integers(10_000, 2**65) | JSON)):
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return doc


def jsonl(docs: list[Any], raw: list[bytes]) -> bytes:
    lines = [json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass") for d in docs]
    return b"\n".join(lines + raw)


RAW_LINES = st.lists(st.sampled_from([b"{", b"\xff\xfe", b"[" * 200, b'{"eventTypeKey": NaN}', b"null", b"  "])
                     | st.binary(max_size=40), max_size=3)

OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains", "starts_with", "exists",
       "any", "bogus"]
PERIODS = st.sampled_from([{"today": {}}, {"last": {"days": 7}}, {"last": {"months": 1}}, {"allTime": {}},
                           {"previous": {"unit": "week", "count": 2}}, {"between": {"from": "2026-01-01T00:00:00Z",
                                                                                   "to": 1}}, {"nope": {}}])


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["event", "attribute", "identifier", "segment"]))
    if kind == "event":
        event: dict[str, Any] = {"type": draw(st.sampled_from([SEED_TYPE, "purchase", "", "missing"]))}
        if draw(st.booleans()):
            event["period"] = draw(PERIODS)
        if draw(st.booleans()):
            event["where"] = [{"param": draw(st.sampled_from(["n", "email", "a.b", ""])), "op": draw(
                st.sampled_from(OPS)), "value": draw(JSON)} for _ in range(draw(st.integers(0, 2)))]
        if draw(st.booleans()):
            event[draw(st.sampled_from(["count", "sum", "avg", "distinct", "streak"]))] = draw(
                st.fixed_dictionaries({"gte": st.floats(-5, 5)}) | st.just({"unit": "day", "count": 2}))
        return {"event": event}
    if kind == "attribute":
        return {"attribute": {"field": draw(st.sampled_from(["tier", "city", "birthday", ""])),
                              "op": draw(st.sampled_from(OPS + ["anniversaryInDays"])), "value": draw(JSON)}}
    if kind == "identifier":
        return {"identifier": {"kind": draw(st.sampled_from(["email", "phone", "externalId", "pushToken", "x"])),
                               "present": draw(st.booleans())}}
    return {"segment": draw(st.sampled_from([SEED_SEGMENT, "unknown", ""]))}


CONDITIONS = st.recursive(leaves(), lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda c: {"all": c}),
    st.lists(inner, max_size=3).map(lambda c: {"any": c}),
    inner.map(lambda c: {"not": c}),
), max_leaves=8)


def segment_message(doc: dict[str, Any]) -> pb.Segment | None:
    """The message form of a definition, or None when the JSON has no message form at all."""
    try:
        return json_format.ParseDict(doc, pb.Segment())
    except (json_format.ParseError, ValueError, TypeError):
        return None


# --------------------------------------------------------------------------- the fuzz tests


@FUZZ
@given(docs=st.lists(event_docs(), max_size=8), raw=RAW_LINES, dry_run=st.booleans())
def test_event_json(main_server: Served, docs: list[Any], raw: list[bytes], dry_run: bool) -> None:
    payload = jsonl(docs, raw)
    request = pb.IngestEventsRequest(jsonl=payload, dry_run=dry_run)
    if code_of(main_server.stub.IngestEvents, request) == grpc.StatusCode.OK:
        reply = main_server.stub.IngestEvents(pb.IngestEventsRequest(jsonl=payload, dry_run=True), timeout=30)
        lines = sum(1 for line in payload.split(b"\n") if line.strip())
        assert reply.accepted + reply.duplicates + reply.rejected == lines
    stream = iter([pb.StreamEventsRequest(batch=pb.IngestEventsRequest(jsonl=payload))] * 2)
    code_of(main_server.stub.StreamEvents, stream)
    still_serving(main_server)


@FUZZ
@given(docs=st.lists(contact_docs(), max_size=8), raw=RAW_LINES)
def test_contact_json(scratch_server: Served, docs: list[Any], raw: list[bytes]) -> None:
    code_of(scratch_server.stub.UpsertContacts, pb.UpsertContactsRequest(jsonl=jsonl(docs, raw)))
    still_serving(scratch_server, seeds_kept=False)


@FUZZ
@given(condition=CONDITIONS, name=st.text(max_size=12), timezone=st.sampled_from(["", "UTC", "Mars/Olympus"]),
       as_of=JSON)
def test_segment_definitions(main_server: Served, condition: Any, name: str, timezone: str, as_of: Any) -> None:
    doc: dict[str, Any] = {"name": "fz-" + name, "condition": condition}
    if timezone:
        doc["timezone"] = timezone
    message = segment_message(doc)
    if message is None:
        return
    preview = pb.PreviewSegmentRequest(segment=message)
    try:
        preview.as_of.CopyFrom(json_format.ParseDict(as_of, preview.as_of))
    except (json_format.ParseError, ValueError, TypeError):
        pass
    code_of(main_server.stub.PreviewSegment, preview)
    if code_of(main_server.stub.PutSegment, pb.PutSegmentRequest(segment=message)) == grpc.StatusCode.OK:
        assert code_of(main_server.stub.CountMembers, pb.CountMembersRequest(name=message.name)) == grpc.StatusCode.OK
    still_serving(main_server)


def samples() -> dict[str, bytes]:
    """One meaningful request per RPC, serialized: the starting point of byte mutations."""
    def ref(text: str) -> pb.ContactRef:
        return pb.ContactRef(ref=text)

    made = {
        "IngestEvents": pb.IngestEventsRequest(jsonl=b'{"eventTypeKey":"view","params":{"email":"f@example.com"}}'),
        "StreamEvents": pb.StreamEventsRequest(batch=pb.IngestEventsRequest(events=[pb.Event(event_type_key="v")])),
        "ListEventTypes": pb.ListEventTypesRequest(key=SEED_TYPE),
        "GetEventHistory": pb.GetEventHistoryRequest(event_type_key=SEED_TYPE, page_size=3),
        "SetEventTypeConfig": pb.SetEventTypeConfigRequest(event_type_key="view", config=pb.EventTypeConfig(
            mapping={"uid": "externalId"}, retention_days=3)),
        "UpsertContacts": pb.UpsertContactsRequest(contacts=[pb.ContactInput(contact_id=2, email="z@example.com")]),
        "GetContact": pb.GetContactRequest(contact=ref("email:seed1@seed-7f3a9c.example"), recent_events=2),
        "MergeContacts": pb.MergeContactsRequest(into=pb.ContactRef(contact_id=1), **{"from": pb.ContactRef(
            contact_id=2)}),
        "EraseContact": pb.EraseContactRequest(contact=pb.ContactRef(contact_id=3)),
        "PutSegment": pb.PutSegmentRequest(segment=pb.Segment(name="fz-bytes", condition=pb.Condition(
            segment=SEED_SEGMENT))),
        "GetSegment": pb.GetSegmentRequest(name=SEED_SEGMENT),
        "ListSegments": pb.ListSegmentsRequest(tag="t"),
        "DeleteSegment": pb.DeleteSegmentRequest(name="fz-bytes"),
        "PreviewSegment": pb.PreviewSegmentRequest(segment=pb.Segment(condition=pb.Condition(
            event=pb.EventCondition(type=SEED_TYPE))), sample_size=3),
        "CountMembers": pb.CountMembersRequest(name=SEED_SEGMENT),
        "ListMembers": pb.ListMembersRequest(name=SEED_SEGMENT, page_size=2, with_identifiers=True),
        "CheckMembership": pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=1)], segments=[SEED_SEGMENT]),
        "GetContactSegments": pb.GetContactSegmentsRequest(contact=pb.ContactRef(contact_id=1)),
        "ExplainMembership": pb.ExplainMembershipRequest(name=SEED_SEGMENT, contact=pb.ContactRef(contact_id=1)),
        "GetSegmentHistory": pb.GetSegmentHistoryRequest(name=SEED_SEGMENT, resolution_seconds=60),
        "Snapshot": pb.SnapshotRequest(),
    }
    return {name: message.SerializeToString() for name, message in made.items()}


SAMPLES = samples()
FUZZED_METHODS = sorted(m.name for m in SERVICE.methods if m.name not in NEVER_ENDING)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif action == "delete" and at < len(data):
            del data[at]
        elif action == "truncate":
            del data[at:]
    return bytes(data)


@st.composite
def method_and_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    method = draw(st.sampled_from(FUZZED_METHODS))
    data = draw(st.one_of(mutated(SAMPLES.get(method, b"")), st.binary(max_size=64)))
    return method, data


def call_raw(served: Served, method: str, data: bytes) -> grpc.StatusCode:
    desc = SERVICE.methods_by_name[method]
    path = f"/{SERVICE.full_name}/{method}"
    if desc.client_streaming:
        return code_of(served.channel.stream_unary(path), iter([data, data]))
    if desc.server_streaming:
        return code_of(served.channel.unary_stream(path), data)
    return code_of(served.channel.unary_unary(path), data)


@FUZZ
@given(case=method_and_bytes())
def test_request_bytes(main_server: Served, scratch_server: Served, case: tuple[str, bytes]) -> None:
    method, data = case
    call_raw(scratch_server if method in DESTRUCTIVE else main_server, method, data)
    still_serving(main_server)
    still_serving(scratch_server, seeds_kept=False)


def test_an_event_integer_beyond_64_bits_is_refused_not_fatal(tmp_path: Path) -> None:
    served, server = start(tmp_path / "data")
    try:
        line = json.dumps({"eventTypeKey": "big", "params": {"email": "big@example.com", "n": 2**64}}).encode()
        code_of(served.stub.IngestEvents, pb.IngestEventsRequest(jsonl=line))
        after = json.dumps({"eventTypeKey": "big", "params": {"email": "next@example.com"}}).encode()
        assert served.stub.IngestEvents(pb.IngestEventsRequest(jsonl=after), timeout=30).accepted == 1
    finally:
        served.channel.close()
        server.stop(None).wait(10)
        served.durability.close(snapshot=False)

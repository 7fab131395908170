"""Segment RPCs on a real server over a real channel: every RPC and every error it can answer.

The engine's clock is a `Clock` the tests move; `asOf` requests evaluate at other instants.
The shop: contacts 1..10 (email shopN@example.com, externalId S-N), contact N bought once
for N * 100 an hour or less before NOW.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from core.engine import Engine
from core.segments.definition import definition_to_json, parse_definition
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests.e2e.harness import NOW_MS

HOUR = 3_600_000
DAY = 24 * HOUR
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND

BIG = {"name": "big", "tags": ["promo"], "condition": {"event": {
    "type": "purchase", "period": {"last": {"days": 1}},
    "where": [{"param": "totalPrice", "op": "gte", "value": 500}]}}}
EVENS = {"name": "evens", "tags": ["promo", "test"], "contacts": [2, 4, 6, 8, 10]}
BIG_EVENS = {"name": "big-evens", "condition": {"all": [{"segment": "big"}, {"segment": "evens"}]}}


@dataclass
class Clock:
    now_ms: int = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> Engine:
    """A ready engine on the test's clock (replaces the fixed-clock engine of conftest)."""
    e = Engine(clock=clock)
    e.ready = True
    return e


def message(doc: dict[str, Any]) -> pb.Segment:
    return json_format.ParseDict(doc, pb.Segment())


def canonical(doc: dict[str, Any]) -> pb.Segment:
    """The definition as the server states it back (defaults filled in)."""
    return message(definition_to_json(parse_definition(doc)))


def put(stub: pb_grpc.SegmentdStub, doc: dict[str, Any], create_only: bool = False) -> pb.PutSegmentResponse:
    return stub.PutSegment(pb.PutSegmentRequest(segment=message(doc), create_only=create_only))


def value(x: Any) -> struct_pb2.Value:
    return json_format.ParseDict(x, struct_pb2.Value())


def rpc_error(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call(request)
        if hasattr(result, "__next__"):
            list(result)  # a server stream fails when read
    return info.value


def assert_refused(call: Any, request: Any, code: grpc.StatusCode, field: str = "") -> str:
    err = rpc_error(call, request)
    assert err.code() == code, err.details()
    if field:
        assert err.details().startswith(f"{field}:"), err.details()
    return str(err.details())


def ingest(stub: pb_grpc.SegmentdStub, *docs: dict[str, Any]) -> None:
    reply = stub.IngestEvents(pb.IngestEventsRequest(jsonl="\n".join(json.dumps(d) for d in docs).encode()))
    assert reply.rejected == 0, reply.results


def members(stub: pb_grpc.SegmentdStub, name: str, **kw: Any) -> list[int]:
    return [c for page in stub.ListMembers(pb.ListMembersRequest(name=name, **kw)) for c in page.contact_ids]


def count(stub: pb_grpc.SegmentdStub, name: str, as_of: Any = None) -> int:
    request = pb.CountMembersRequest(name=name, as_of=None if as_of is None else value(as_of))
    return int(stub.CountMembers(request).count)


@pytest.fixture
def shop(stub: pb_grpc.SegmentdStub) -> pb_grpc.SegmentdStub:
    lines = "\n".join(json.dumps({"email": f"shop{n}@example.com", "externalId": f"S-{n}"}) for n in range(1, 11))
    assert stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=lines.encode())).created == 10
    ingest(stub, *({"eventTypeKey": "purchase", "timestamp": NOW_MS - n * HOUR // 10,
                    "params": {"contactId": str(n), "totalPrice": n * 100}} for n in range(1, 11)))
    return stub


@pytest.fixture
def saved(shop: pb_grpc.SegmentdStub) -> pb_grpc.SegmentdStub:
    for doc in (BIG, EVENS, BIG_EVENS):
        put(shop, doc)
    return shop


# --------------------------------------------------------------------------- PutSegment / GetSegment


def test_put_creates_then_replaces(shop: pb_grpc.SegmentdStub, clock: Clock) -> None:
    created = put(shop, BIG)
    assert created.created and created.segment.size == 6
    info = created.segment
    assert info.segment == canonical(BIG)
    assert info.created_at_ms == info.updated_at_ms == info.evaluated_at_ms == NOW_MS
    clock.now_ms += 60_000
    dearer = json.loads(json.dumps(BIG).replace("500", "800"))
    replaced = put(shop, dearer)
    assert not replaced.created and replaced.segment.size == 3
    assert (replaced.segment.created_at_ms, replaced.segment.updated_at_ms) == (NOW_MS, NOW_MS + 60_000)
    got = shop.GetSegment(pb.GetSegmentRequest(name="big"))
    assert got.segment == canonical(dearer) and got.size == 3


def test_create_only_refuses_an_existing_name(shop: pb_grpc.SegmentdStub) -> None:
    assert put(shop, EVENS, create_only=True).created
    details = assert_refused(
        shop.PutSegment, pb.PutSegmentRequest(segment=message(EVENS), create_only=True), grpc.StatusCode.ALREADY_EXISTS
    )
    assert "evens" in details


ROUND_TRIPS = [
    {"name": "every-measure", "description": "d", "purpose": "p", "tags": ["a", "b"], "timezone": "Europe/Kyiv",
     "condition": {"any": [
         {"event": {"type": "t", "period": {"last": {"minutes": 5}}, "count": {"between": [2, 4], "ne": 3}}},
         {"event": {"type": "t", "period": {"last": {"months": 2}}, "sum": {"param": "p.q", "gt": 1.5}}},
         {"event": {"type": "t", "period": {"before": {"weeks": 1}}, "avg": {"param": "x", "lte": 10}}},
         {"event": {"type": "t", "period": {"thisWeek": {}}, "min": {"param": "x", "lt": 0}}},
         {"event": {"type": "t", "period": {"thisMonth": {}}, "max": {"param": "x", "eq": 7}}},
         {"event": {"type": "t", "period": {"yesterday": {}}, "distinct": {"param": "x", "gte": 2}}},
         {"event": {"type": "t", "period": {"previous": {"unit": "month", "count": 2}}, "first": {}}},
         {"event": {"type": "t", "period": {"between": {"from": "2025-01-01T00:00:00Z", "to": 1767225600000}},
                    "last": {}}},
         {"event": {"type": "t", "period": {"allTime": {}}, "daysSinceLast": {"gte": 3}}},
         {"event": {"type": "t", "streak": {"unit": "day", "count": 5}}}]}},
    {"name": "every-filter", "condition": {"all": [
        {"event": {"type": "t", "where": [
            {"param": "a", "op": "in", "value": [1, "x", True]},
            {"param": "b", "op": "not_in", "value": ["y"]},
            {"param": "c", "op": "between", "value": ["a", "m"]},
            {"param": "d", "op": "contains", "value": "zz"},
            {"param": "e", "op": "not_exists"},
            {"param": "items", "op": "any", "where": [
                {"param": "title", "op": "eq", "value": "sneakers"}, {"param": "price", "op": "gt", "value": 100}]}]}},
        {"not": {"attribute": {"field": "city", "op": "starts_with", "value": "Lon"}}},
        {"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 0}},
        {"identifier": {"kind": "loyaltyCard", "present": False}},
        {"identifier": {"kind": "phone"}}]}},
    {"name": "static-one", "contacts": [3, 1, 2]},
]


@pytest.mark.parametrize("doc", ROUND_TRIPS, ids=lambda d: d["name"])
def test_definitions_round_trip_through_the_wire(stub: pb_grpc.SegmentdStub, doc: dict[str, Any]) -> None:
    put(stub, doc)
    info = stub.GetSegment(pb.GetSegmentRequest(name=doc["name"]))
    assert info.segment == canonical(doc)
    # what comes back is accepted again unchanged
    assert put(stub, json_format.MessageToDict(info.segment)).segment.segment == info.segment


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"name": "bad name!", "contacts": [1]}, "segment.name"),
        ({"contacts": [1]}, "segment.name"),
        ({"name": "tz", "timezone": "Mars/Olympus", "contacts": [1]}, "segment.timezone"),
        ({"name": "both", "contacts": [1], "condition": {"segment": "x"}}, "segment.condition"),
        ({"name": "neither"}, "segment.condition"),
        ({"name": "amount", "condition": {"all": [{"event": {"type": "a"}}, {"event": {"type": "b", "period": {"last": {}}}}]}},
         "segment.condition.all[1].event.period.last"),
        ({"name": "streak", "condition": {"event": {"type": "a", "period": {"today": {}}, "streak": {"unit": "week", "count": 2}}}},
         "segment.condition.event.period"),
        ({"name": "measures", "condition": {"event": {"type": "a", "count": {"gte": 1}, "sum": {"param": "x", "gt": 1}}}},
         "segment.condition.event.sum"),
        ({"name": "unknown-ref", "condition": {"any": [{"segment": "nowhere"}]}}, "segment.condition.any[0].segment"),
        ({"name": "op", "condition": {"event": {"type": "a", "where": [{"param": "x", "op": "like", "value": "y"}]}}},
         "segment.condition.event.where[0].op"),
        ({"name": "novalue", "condition": {"event": {"type": "a", "where": [{"param": "x", "op": "eq"}]}}},
         "segment.condition.event.where[0].value"),
        ({"name": "two-keys", "condition": {"segment": "a", "identifier": {"kind": "email"}}}, "segment.condition"),
        ({"name": "no-cmp", "condition": {"event": {"type": "a", "sum": {"param": "x"}}}}, "segment.condition.event.sum"),
    ],
)
def test_invalid_definitions_are_refused_naming_the_field(
    stub: pb_grpc.SegmentdStub, doc: dict[str, Any], field: str
) -> None:
    assert_refused(stub.PutSegment, pb.PutSegmentRequest(segment=message(doc)), INVALID, field)
    assert not stub.ListSegments(pb.ListSegmentsRequest()).segments


def test_too_deep_a_definition_is_refused(stub: pb_grpc.SegmentdStub) -> None:
    condition: dict[str, Any] = {"identifier": {"kind": "email"}}
    for _ in range(16):
        condition = {"not": condition}
    details = assert_refused(stub.PutSegment, pb.PutSegmentRequest(segment=message({"name": "deep", "condition": condition})), INVALID)
    assert details.startswith("segment.condition.not.not") and "16" in details


def test_reference_cycles_are_refused(saved: pb_grpc.SegmentdStub) -> None:
    looped = {"name": "evens", "condition": {"segment": "big-evens"}}
    details = assert_refused(saved.PutSegment, pb.PutSegmentRequest(segment=message(looped)), INVALID, "segment.condition")
    assert "cycle" in details
    itself = {"name": "big", "condition": {"any": [{"segment": "big"}]}}
    assert_refused(saved.PutSegment, pb.PutSegmentRequest(segment=message(itself)), INVALID, "segment.condition")
    assert count(saved, "big-evens") == 3  # nothing changed


def test_get_segment_errors(saved: pb_grpc.SegmentdStub) -> None:
    assert_refused(saved.GetSegment, pb.GetSegmentRequest(name="nope"), NOT_FOUND)
    assert_refused(saved.GetSegment, pb.GetSegmentRequest(), INVALID, "name")


# --------------------------------------------------------------------------- ListSegments / DeleteSegment


def test_list_segments_with_sizes_and_tag_filter(saved: pb_grpc.SegmentdStub) -> None:
    listed = saved.ListSegments(pb.ListSegmentsRequest()).segments
    assert [(s.segment.name, s.size) for s in listed] == [("big", 6), ("big-evens", 3), ("evens", 5)]
    assert [s.segment.name for s in saved.ListSegments(pb.ListSegmentsRequest(tag="promo")).segments] == ["big", "evens"]
    assert [s.segment.name for s in saved.ListSegments(pb.ListSegmentsRequest(tag="test")).segments] == ["evens"]
    assert not saved.ListSegments(pb.ListSegmentsRequest(tag="none")).segments


def test_delete_refuses_a_referenced_segment(saved: pb_grpc.SegmentdStub) -> None:
    details = assert_refused(saved.DeleteSegment, pb.DeleteSegmentRequest(name="big"), grpc.StatusCode.FAILED_PRECONDITION)
    assert "big-evens" in details
    saved.DeleteSegment(pb.DeleteSegmentRequest(name="big-evens"))
    saved.DeleteSegment(pb.DeleteSegmentRequest(name="big"))
    assert [s.segment.name for s in saved.ListSegments(pb.ListSegmentsRequest()).segments] == ["evens"]
    assert_refused(saved.DeleteSegment, pb.DeleteSegmentRequest(name="big"), NOT_FOUND)
    assert_refused(saved.CountMembers, pb.CountMembersRequest(name="big"), NOT_FOUND)
    assert_refused(saved.DeleteSegment, pb.DeleteSegmentRequest(), INVALID, "name")


# --------------------------------------------------------------------------- PreviewSegment


def test_preview_counts_samples_and_counts_each_condition(saved: pb_grpc.SegmentdStub) -> None:
    adhoc = {"condition": {"all": [
        {"event": {"type": "purchase", "period": {"last": {"days": 1}}, "sum": {"param": "totalPrice", "gte": 300}}},
        {"not": {"segment": "evens"}}]}}
    reply = saved.PreviewSegment(pb.PreviewSegmentRequest(segment=message(adhoc)))
    assert reply.count == 4 and list(reply.sample) == [3, 5, 7, 9]
    assert [(c.path, c.count) for c in reply.conditions] == [
        ("condition", 4), ("condition.all[0].event", 8), ("condition.all[1]", 5), ("condition.all[1].not.segment", 5)]
    assert reply.build_ms >= 0
    assert len(saved.ListSegments(pb.ListSegmentsRequest()).segments) == 3  # nothing saved
    two = saved.PreviewSegment(pb.PreviewSegmentRequest(segment=message(adhoc), sample_size=2))
    assert (two.count, list(two.sample)) == (4, [3, 5])
    before = saved.PreviewSegment(pb.PreviewSegmentRequest(segment=message(adhoc), as_of=value("2026-01-14T00:00:00Z")))
    assert before.count == 0 and not before.sample


def test_preview_samples_ten_by_default_and_previews_static_lists(shop: pb_grpc.SegmentdStub) -> None:
    everyone = {"condition": {"identifier": {"kind": "email"}}}
    reply = shop.PreviewSegment(pb.PreviewSegmentRequest(segment=message(everyone)))
    assert reply.count == 10 and list(reply.sample) == list(range(1, 11))
    assert [(c.path, c.count) for c in reply.conditions] == [("condition.identifier", 10)]
    static = shop.PreviewSegment(pb.PreviewSegmentRequest(segment=message({"contacts": [1, 2, 99]})))
    assert (static.count, list(static.sample), list(static.conditions)) == (2, [1, 2], [])


def test_preview_errors(shop: pb_grpc.SegmentdStub) -> None:
    bad = {"condition": {"event": {"type": "purchase", "period": {"last": {"days": 0}}}}}
    assert_refused(shop.PreviewSegment, pb.PreviewSegmentRequest(segment=message(bad)), INVALID,
                   "segment.condition.event.period.last.days")
    ok = message({"condition": {"identifier": {"kind": "email"}}})
    assert_refused(shop.PreviewSegment, pb.PreviewSegmentRequest(segment=ok, sample_size=10_001), INVALID, "sample_size")
    assert_refused(shop.PreviewSegment, pb.PreviewSegmentRequest(segment=ok, as_of=value("soon")), INVALID, "as_of")


# --------------------------------------------------------------------------- CountMembers


def test_count_at_now_and_at_other_instants(saved: pb_grpc.SegmentdStub, clock: Clock) -> None:
    reply = saved.CountMembers(pb.CountMembersRequest(name="big"))
    assert (reply.count, reply.as_of_ms) == (6, NOW_MS)
    for as_of in ("2026-01-15T12:00:00Z", NOW_MS, str(NOW_MS), "2026-01-15T13:00:00+01:00"):
        assert count(saved, "big", as_of) == 6, as_of
    assert count(saved, "big", NOW_MS - HOUR - 1) == 0  # before any purchase
    assert count(saved, "big", NOW_MS - 7 * HOUR // 10) == 4  # contacts 7..10 had bought
    assert count(saved, "big", NOW_MS + DAY + HOUR) == 0  # the day has rolled past them
    later = saved.CountMembers(pb.CountMembersRequest(name="big", as_of=value(NOW_MS + 5)))
    assert later.as_of_ms == NOW_MS + 5
    clock.now_ms += 2 * DAY  # the server's own clock moves: the materialised members expire
    assert count(saved, "big") == 0 and count(saved, "big-evens") == 0 and count(saved, "evens") == 5


def test_count_follows_new_events_and_erased_contacts(saved: pb_grpc.SegmentdStub) -> None:
    ingest(saved, {"eventTypeKey": "purchase", "timestamp": NOW_MS - 1000, "params": {"contactId": "2", "totalPrice": 900}})
    assert count(saved, "big") == 7 and count(saved, "big-evens") == 4
    saved.EraseContact(pb.EraseContactRequest(contact=pb.ContactRef(contact_id=6)))
    assert (count(saved, "big"), count(saved, "evens"), count(saved, "big-evens")) == (6, 4, 3)


def test_count_errors(saved: pb_grpc.SegmentdStub) -> None:
    assert_refused(saved.CountMembers, pb.CountMembersRequest(name="nope"), NOT_FOUND)
    assert_refused(saved.CountMembers, pb.CountMembersRequest(), INVALID, "name")
    for bad in ("next tuesday", True, 1.5, "2026-13-01T00:00:00Z"):
        assert_refused(saved.CountMembers, pb.CountMembersRequest(name="big", as_of=value(bad)), INVALID, "as_of")


# --------------------------------------------------------------------------- ListMembers


def test_list_members_in_pages_and_resumes_after_an_id(saved: pb_grpc.SegmentdStub) -> None:
    pages = [list(p.contact_ids) for p in saved.ListMembers(pb.ListMembersRequest(name="big", page_size=4))]
    assert pages == [[5, 6, 7, 8], [9, 10]]
    assert members(saved, "big", after_contact_id=6) == [7, 8, 9, 10]
    assert members(saved, "big", after_contact_id=4) == [5, 6, 7, 8, 9, 10]
    assert members(saved, "big", after_contact_id=10) == []
    assert members(saved, "big", after_contact_id=2**40) == []
    assert members(saved, "big", as_of=value(NOW_MS - 7 * HOUR // 10)) == [7, 8, 9, 10]
    assert members(saved, "evens") == [2, 4, 6, 8, 10]


def test_list_members_with_identifiers(saved: pb_grpc.SegmentdStub) -> None:
    pages = list(saved.ListMembers(pb.ListMembersRequest(name="big-evens", with_identifiers=True, page_size=2)))
    assert [list(p.contact_ids) for p in pages] == [[6, 8], [10]]
    contacts = [c for p in pages for c in p.contacts]
    assert [(c.contact_id, c.email, c.external_id) for c in contacts] == [
        (6, "shop6@example.com", "S-6"), (8, "shop8@example.com", "S-8"), (10, "shop10@example.com", "S-10")]
    assert all(not c.HasField("fields") for c in contacts)
    assert not any(p.contacts for p in saved.ListMembers(pb.ListMembersRequest(name="big-evens")))


def test_list_members_carries_every_kind_of_identifier(stub: pb_grpc.SegmentdStub) -> None:
    full = pb.ContactInput(external_id="X-1", email="x@example.com", phone="+1 555 0100", push_tokens=["wp:1", "wp:2"],
                           keys={"card": "C-9"})
    rich = stub.UpsertContacts(pb.UpsertContactsRequest(contacts=[full])).results[0].contact_id
    ingest(stub, {"eventTypeKey": "visit", "keyValue": "cookie-7", "params": {"page": "/"}})  # an anonymous contact
    anonymous = stub.GetContact(pb.GetContactRequest(contact=pb.ContactRef(ref="anonymous:cookie-7"))).contact.contact_id
    put(stub, {"name": "pair", "contacts": [rich, anonymous]})
    (page,) = stub.ListMembers(pb.ListMembersRequest(name="pair", with_identifiers=True))
    first, second = page.contacts
    assert (first.contact_id, first.external_id, first.email, first.phone) == (rich, "X-1", "x@example.com", "15550100")
    assert (list(first.push_tokens), dict(first.keys), list(first.anonymous_keys)) == (["wp:1", "wp:2"], {"card": "C-9"}, [])
    assert (second.contact_id, list(second.anonymous_keys), second.email) == (anonymous, ["cookie-7"], "")


def test_list_members_streams_a_large_segment_in_default_pages(stub: pb_grpc.SegmentdStub) -> None:
    n = 25_000
    lines = "\n".join(json.dumps({"externalId": f"L-{i}"}) for i in range(n)).encode()
    for start in range(0, n, 10_000):  # keep each upsert under the batch limits
        chunk = b"\n".join(lines.split(b"\n")[start:start + 10_000])
        stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=chunk))
    put(stub, {"name": "all", "condition": {"identifier": {"kind": "externalId"}}})
    pages = [list(p.contact_ids) for p in stub.ListMembers(pb.ListMembersRequest(name="all"))]
    assert [len(p) for p in pages] == [10_000, 10_000, 5_000]
    assert [c for p in pages for c in p] == list(range(1, n + 1))
    resumed = members(stub, "all", after_contact_id=pages[0][-1])
    assert resumed == [c for p in pages[1:] for c in p]


def test_list_members_errors(saved: pb_grpc.SegmentdStub) -> None:
    assert_refused(saved.ListMembers, pb.ListMembersRequest(name="nope"), NOT_FOUND)
    assert_refused(saved.ListMembers, pb.ListMembersRequest(), INVALID, "name")
    assert_refused(saved.ListMembers, pb.ListMembersRequest(name="big", page_size=100_001), INVALID, "page_size")
    assert_refused(saved.ListMembers, pb.ListMembersRequest(name="big", as_of=value("x")), INVALID, "as_of")


# --------------------------------------------------------------------------- CheckMembership


def test_check_membership_of_many_contacts_in_many_segments(saved: pb_grpc.SegmentdStub) -> None:
    refs = [pb.ContactRef(contact_id=5), pb.ContactRef(ref="email:SHOP2@example.com"), pb.ContactRef(ref="externalId:S-8"),
            pb.ContactRef(contact_id=999), pb.ContactRef(ref="email:nobody@example.com"), pb.ContactRef(ref="6")]
    names = ["big", "evens", "big-evens", "big"]
    reply = saved.CheckMembership(pb.CheckMembershipRequest(contacts=refs, segments=names))
    assert list(reply.contact_ids) == [5, 2, 8, 0, 0, 6]
    sets = {name: set(members(saved, name)) for name in set(names)}
    expected = [cid != 0 and cid in sets[name] for cid in reply.contact_ids for name in names]
    assert list(reply.results) == expected
    assert expected[:4] == [True, False, False, True] and expected[8:12] == [True, True, True, True]
    empty = saved.CheckMembership(pb.CheckMembershipRequest(contacts=refs))
    assert not empty.results and list(empty.contact_ids) == [5, 2, 8, 0, 0, 6]


def test_check_membership_errors(saved: pb_grpc.SegmentdStub) -> None:
    one = [pb.ContactRef(contact_id=5)]
    details = assert_refused(saved.CheckMembership, pb.CheckMembershipRequest(contacts=one, segments=["big", "nope"]),
                             NOT_FOUND, "segments[1]")
    assert "nope" in details
    assert_refused(saved.CheckMembership, pb.CheckMembershipRequest(contacts=one, segments=[""]), INVALID, "segments[0]")
    bad_ref = [pb.ContactRef(contact_id=5), pb.ContactRef(contact_id=6), pb.ContactRef(ref="nonsense")]
    assert_refused(saved.CheckMembership, pb.CheckMembershipRequest(contacts=bad_ref, segments=["big"]), INVALID,
                   "contacts[2].ref")
    assert_refused(saved.CheckMembership, pb.CheckMembershipRequest(contacts=[pb.ContactRef()], segments=["big"]),
                   INVALID, "contacts[0]")
    many = [pb.ContactRef(contact_id=1)] * 10_001
    assert_refused(saved.CheckMembership, pb.CheckMembershipRequest(contacts=many, segments=["big"]), INVALID, "contacts")


# --------------------------------------------------------------------------- GetContactSegments / GetContact


def test_get_contact_segments(saved: pb_grpc.SegmentdStub) -> None:
    six = saved.GetContactSegments(pb.GetContactSegmentsRequest(contact=pb.ContactRef(ref="email:shop6@example.com")))
    assert (six.contact_id, list(six.segments)) == (6, ["big", "big-evens", "evens"])
    one = saved.GetContactSegments(pb.GetContactSegmentsRequest(contact=pb.ContactRef(contact_id=1)))
    assert (one.contact_id, list(one.segments)) == (1, [])
    assert_refused(saved.GetContactSegments, pb.GetContactSegmentsRequest(contact=pb.ContactRef(contact_id=99)), NOT_FOUND)
    assert_refused(saved.GetContactSegments, pb.GetContactSegmentsRequest(contact=pb.ContactRef(ref="x")), INVALID,
                   "contact.ref")


def test_get_contact_lists_the_contacts_segments(saved: pb_grpc.SegmentdStub) -> None:
    reply = saved.GetContact(pb.GetContactRequest(contact=pb.ContactRef(contact_id=5)))
    assert list(reply.segments) == ["big"]


# --------------------------------------------------------------------------- ExplainMembership


def explain(stub: pb_grpc.SegmentdStub, name: str, cid: int, as_of: Any = None) -> pb.ExplainMembershipResponse:
    return stub.ExplainMembership(pb.ExplainMembershipRequest(
        name=name, contact=pb.ContactRef(contact_id=cid), as_of=None if as_of is None else value(as_of)))


def test_explain_composite_segments(saved: pb_grpc.SegmentdStub) -> None:
    six = explain(saved, "big-evens", 6)
    assert (six.contact_id, six.member, six.as_of_ms) == (6, True, NOW_MS)
    rows = [(c.path, c.kind, c.holds) for c in six.conditions]
    assert rows == [("condition", "all", True), ("condition.all[0].segment", "segment", True),
                    ("condition.all[1].segment", "segment", True)]
    five = explain(saved, "big-evens", 5)
    assert not five.member
    assert [c.holds for c in five.conditions] == [False, True, False]
    assert "evens" in five.conditions[2].detail


def test_explain_event_values_at_now_and_as_of(saved: pb_grpc.SegmentdStub) -> None:
    seven = explain(saved, "big", 7)
    (leaf,) = seven.conditions
    assert seven.member and (leaf.path, leaf.kind, leaf.holds) == ("condition.event", "event", True)
    assert json_format.MessageToDict(leaf.value) == 1 and "purchase" in leaf.detail
    earlier = explain(saved, "big", 7, "2026-01-15T11:00:00Z")
    assert not earlier.member and earlier.as_of_ms == NOW_MS - HOUR
    assert json_format.MessageToDict(earlier.conditions[0].value) == 0
    assert not explain(saved, "big", 4).member  # bought, but for 400


def test_explain_a_static_segment(saved: pb_grpc.SegmentdStub) -> None:
    listed, unlisted = explain(saved, "evens", 4), explain(saved, "evens", 5)
    assert listed.member and not unlisted.member
    assert [c.kind for c in listed.conditions] == ["static"]


def test_explain_errors(saved: pb_grpc.SegmentdStub) -> None:
    def request(name: str, ref: pb.ContactRef, as_of: Any = None) -> pb.ExplainMembershipRequest:
        return pb.ExplainMembershipRequest(name=name, contact=ref, as_of=None if as_of is None else value(as_of))

    assert_refused(saved.ExplainMembership, request("nope", pb.ContactRef(contact_id=5)), NOT_FOUND)
    assert_refused(saved.ExplainMembership, request("big", pb.ContactRef(contact_id=99)), NOT_FOUND)
    assert_refused(saved.ExplainMembership, request("big", pb.ContactRef(ref="email:")), INVALID, "contact.ref")
    assert_refused(saved.ExplainMembership, request("", pb.ContactRef(contact_id=5)), INVALID, "name")
    assert_refused(saved.ExplainMembership, request("big", pb.ContactRef(contact_id=5), "then"), INVALID, "as_of")

"""Contact RPCs on a real server: upsert (messages and JSON Lines), get, merge, erase."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests.e2e.harness import NOW_MS


def fields(doc: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(doc, struct_pb2.Struct())


def upsert(stub: pb_grpc.SegmentdStub, *contacts: pb.ContactInput) -> pb.UpsertContactsResponse:
    return stub.UpsertContacts(pb.UpsertContactsRequest(contacts=list(contacts)))


def get(stub: pb_grpc.SegmentdStub, ref: str | int, recent: int = 0) -> pb.GetContactResponse:
    contact_ref = pb.ContactRef(contact_id=ref) if isinstance(ref, int) else pb.ContactRef(ref=ref)
    return stub.GetContact(pb.GetContactRequest(contact=contact_ref, recent_events=recent))


def rpc_error(call: Any, *args: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value


def ingest(stub: pb_grpc.SegmentdStub, *docs: dict[str, Any]) -> pb.IngestEventsResponse:
    reply = stub.IngestEvents(pb.IngestEventsRequest(jsonl=b"\n".join(json.dumps(d).encode() for d in docs)))
    assert reply.rejected == 0, reply.results
    return reply


ANN = pb.ContactInput(
    external_id="C-1001",
    email="Ann@Example.com",
    phone="+44 20 7946 0001",
    push_tokens=["wp:abc"],
    keys={"loyaltyCard": "LC-77"},
    fields=fields({"firstName": "Ann", "city": "London", "birthday": "1990-11-23", "vip": True}),
)


# --------------------------------------------------------------------------- UpsertContacts


def test_upsert_creates_then_updates_by_any_identifier(stub: pb_grpc.SegmentdStub) -> None:
    created = upsert(stub, ANN)
    assert (created.created, created.updated, created.rejected) == (1, 0, 0)
    cid = created.results[0].contact_id
    assert cid >= 1 and created.results[0].created
    updated = upsert(stub, pb.ContactInput(phone="442079460001", fields=fields({"city": "Leeds"})))
    assert (updated.created, updated.updated) == (0, 1)
    assert updated.results[0].contact_id == cid and not updated.results[0].created
    contact = get(stub, cid).contact
    assert contact.email == "ann@example.com" and contact.external_id == "C-1001"
    assert list(contact.push_tokens) == ["wp:abc"] and dict(contact.keys) == {"loyaltyCard": "LC-77"}
    assert json_format.MessageToDict(contact.fields)["city"] == "Leeds"
    assert contact.source == "Api" and contact.created_at_ms == NOW_MS


def test_upsert_jsonl_reports_bad_lines_by_position(stub: pb_grpc.SegmentdStub) -> None:
    lines = b"\n".join(
        [
            json.dumps({"email": "l1@example.com", "fields": {"city": "Paris"}}).encode(),
            b"{oops",
            json.dumps({"externalId": "X-2", "fields": {"birthday": "not a date"}}).encode(),
            json.dumps({"email": "l3@example.com"}).encode(),
        ]
    )
    reply = stub.UpsertContacts(pb.UpsertContactsRequest(contacts=[pb.ContactInput(email="l0@example.com")], jsonl=lines))
    assert (reply.created, reply.rejected) == (3, 2)
    assert [r.index for r in reply.results] == [0, 1, 2, 3, 4]
    bad = [(r.index, r.field) for r in reply.results if r.error]
    assert bad[0] == (2, "jsonl[2]")
    assert bad[1][0] == 3 and "birthday" in bad[1][1]
    assert all(r.contact_id for r in reply.results if not r.error)


# --------------------------------------------------------------------------- GetContact


def test_get_contact_by_id_and_by_identifiers(stub: pb_grpc.SegmentdStub) -> None:
    cid = upsert(stub, ANN).results[0].contact_id
    for ref in (cid, str(cid), "email:ANN@example.com", "externalId:C-1001", "phone:+44 (20) 7946-0001",
                "pushToken:wp:abc", "key:loyaltyCard:LC-77"):  # fmt: skip
        assert get(stub, ref).contact.contact_id == cid, ref


def test_get_contact_includes_recent_events_newest_first(stub: pb_grpc.SegmentdStub) -> None:
    cid = upsert(stub, ANN).results[0].contact_id
    ingest(stub, *({"eventTypeKey": "visit", "timestamp": NOW_MS - i * 60_000, "params": {"email": "ann@example.com", "n": i}} for i in range(30)))
    reply = get(stub, cid)
    assert len(reply.recent_events) == 20  # the default
    times = [e.ts_ms for e in reply.recent_events]
    assert times == sorted(times, reverse=True) and times[0] == NOW_MS
    assert {e.contact_id for e in reply.recent_events} == {cid}
    assert list(reply.segments) == []
    assert len(get(stub, cid, recent=5).recent_events) == 5


def test_an_event_with_a_new_identifier_creates_a_contact(stub: pb_grpc.SegmentdStub) -> None:
    reply = ingest(stub, {"eventTypeKey": "signup", "params": {"Email": "Fresh@Example.com", "PushToken": "fcm:1"}})
    assert reply.accepted == 1
    contact = get(stub, "email:fresh@example.com").contact
    assert contact.source == "Event" and list(contact.push_tokens) == ["fcm:1"]


@pytest.mark.parametrize(
    ("ref", "code", "field"),
    [
        ("email:nobody@example.com", grpc.StatusCode.NOT_FOUND, ""),
        (999_999, grpc.StatusCode.NOT_FOUND, ""),
        ("shoeSize:44", grpc.StatusCode.INVALID_ARGUMENT, "contact.ref"),
        ("no-colon-here", grpc.StatusCode.INVALID_ARGUMENT, "contact.ref"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "contact"),
    ],
)
def test_bad_or_unknown_references(stub: pb_grpc.SegmentdStub, ref: str | int, code: grpc.StatusCode, field: str) -> None:
    err = rpc_error(get, stub, ref)
    assert err.code() == code
    if field:
        assert err.details().startswith(f"{field}:")


def test_too_many_recent_events_is_refused(stub: pb_grpc.SegmentdStub) -> None:
    cid = upsert(stub, ANN).results[0].contact_id
    err = rpc_error(get, stub, cid, 10_001)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("recent_events:")


def test_both_id_and_ref_is_refused(stub: pb_grpc.SegmentdStub) -> None:
    request = pb.GetContactRequest(contact=pb.ContactRef(contact_id=1, ref="email:a@b.c"))
    err = rpc_error(stub.GetContact, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("contact:")


# --------------------------------------------------------------------------- MergeContacts


def test_merge_moves_identifiers_and_events(stub: pb_grpc.SegmentdStub) -> None:
    a = upsert(stub, pb.ContactInput(email="a@example.com", fields=fields({"city": "Kyiv"}))).results[0].contact_id
    b = upsert(stub, pb.ContactInput(external_id="B-1", phone="555 0101", fields=fields({"city": "Lviv", "vip": True})))
    b_id = b.results[0].contact_id
    ingest(stub, *({"eventTypeKey": "tap", "params": {"externalCustomerId": "B-1"}} for _ in range(3)))
    ingest(stub, {"eventTypeKey": "tap", "params": {"email": "a@example.com"}})
    merged = stub.MergeContacts(pb.MergeContactsRequest(into=pb.ContactRef(contact_id=a), **{"from": pb.ContactRef(ref="externalId:B-1")}))
    assert merged.events_moved == 3
    assert merged.contact.contact_id == a and merged.contact.external_id == "B-1"
    merged_fields = json_format.MessageToDict(merged.contact.fields)
    assert merged_fields["city"] == "Kyiv" and merged_fields["vip"] is True
    assert rpc_error(get, stub, b_id).code() == grpc.StatusCode.NOT_FOUND
    assert get(stub, "externalId:B-1").contact.contact_id == a
    assert len(get(stub, a).recent_events) == 4


def test_merge_errors(stub: pb_grpc.SegmentdStub) -> None:
    a = upsert(stub, pb.ContactInput(email="m@example.com")).results[0].contact_id
    itself = pb.MergeContactsRequest(into=pb.ContactRef(contact_id=a), **{"from": pb.ContactRef(ref="email:m@example.com")})
    err = rpc_error(stub.MergeContacts, itself)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("from:")
    unknown = pb.MergeContactsRequest(into=pb.ContactRef(contact_id=a), **{"from": pb.ContactRef(contact_id=424242)})
    assert rpc_error(stub.MergeContacts, unknown).code() == grpc.StatusCode.NOT_FOUND
    bad = pb.MergeContactsRequest(into=pb.ContactRef(ref="what:ever"), **{"from": pb.ContactRef(contact_id=a)})
    err = rpc_error(stub.MergeContacts, bad)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("into.ref:")


# --------------------------------------------------------------------------- EraseContact


def test_erase_deletes_the_contact_and_releases_its_identifiers(stub: pb_grpc.SegmentdStub) -> None:
    cid = upsert(stub, pb.ContactInput(email="gone@example.com")).results[0].contact_id
    ingest(stub, *({"eventTypeKey": "tap", "params": {"email": "gone@example.com"}} for _ in range(2)))
    reply = stub.EraseContact(pb.EraseContactRequest(contact=pb.ContactRef(ref="email:gone@example.com")))
    assert (reply.contact_id, reply.events_erased) == (cid, 2)
    assert rpc_error(get, stub, cid).code() == grpc.StatusCode.NOT_FOUND
    again = upsert(stub, pb.ContactInput(email="gone@example.com")).results[0]
    assert again.created and again.contact_id != cid
    err = rpc_error(stub.EraseContact, pb.EraseContactRequest(contact=pb.ContactRef(contact_id=cid)))
    assert err.code() == grpc.StatusCode.NOT_FOUND

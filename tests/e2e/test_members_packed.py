"""ListMembers with `packed`: ids as little-endian uint32 bytes, beside the unpacked form; batched
CheckMembership against one-by-one checks; and the per-method handlers of the interceptors still give
every call its own request id."""

from __future__ import annotations

import struct

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from core.engine import Engine
from core.errors import InvalidArgument
from server import convert_segments as cs
from server import segments_api
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc

MEMBERS = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


@pytest.fixture
def listed(engine: Engine, stub: pb_grpc.SegmentdStub) -> pb_grpc.SegmentdStub:
    engine.upsert_contacts([{"externalId": f"P-{n}"} for n in range(1, 31)])
    engine.put_segment({"name": "primes", "contacts": MEMBERS})
    return stub


def _decoded(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def test_packed_pages_carry_the_same_ids_as_bytes(listed: pb_grpc.SegmentdStub) -> None:
    pages = list(listed.ListMembers(pb.ListMembersRequest(name="primes", packed=True, page_size=4)))
    assert [len(p.packed_contact_ids) for p in pages] == [16, 16, 8]
    assert all(not p.contact_ids for p in pages)
    assert [_decoded(p.packed_contact_ids) for p in pages] == [MEMBERS[:4], MEMBERS[4:8], MEMBERS[8:]]
    plain = [c for p in listed.ListMembers(pb.ListMembersRequest(name="primes")) for c in p.contact_ids]
    assert plain == MEMBERS
    assert all(not p.packed_contact_ids for p in listed.ListMembers(pb.ListMembersRequest(name="primes")))


def test_packed_resumes_after_an_id(listed: pb_grpc.SegmentdStub) -> None:
    request = pb.ListMembersRequest(name="primes", packed=True, after_contact_id=12)
    assert [c for p in listed.ListMembers(request) for c in _decoded(p.packed_contact_ids)] == [13, 17, 19, 23, 29]
    request = pb.ListMembersRequest(name="primes", packed=True, after_contact_id=29)
    assert list(listed.ListMembers(request)) == []


def test_packed_pages_may_be_larger(listed: pb_grpc.SegmentdStub) -> None:
    big = segments_api.MAX_PAGE_SIZE + 1
    pages = list(listed.ListMembers(pb.ListMembersRequest(name="primes", packed=True, page_size=big)))
    assert len(pages) == 1 and _decoded(pages[0].packed_contact_ids) == MEMBERS
    with pytest.raises(grpc.RpcError) as refused:
        list(listed.ListMembers(pb.ListMembersRequest(name="primes", page_size=big)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in (refused.value.details() or "")
    too_big = pb.ListMembersRequest(name="primes", packed=True, page_size=segments_api.MAX_PACKED_PAGE_SIZE + 1)
    with pytest.raises(grpc.RpcError) as refused:
        list(listed.ListMembers(too_big))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_packed_with_identifiers_keeps_contacts(listed: pb_grpc.SegmentdStub) -> None:
    request = pb.ListMembersRequest(name="primes", packed=True, with_identifiers=True, page_size=3)
    pages = list(listed.ListMembers(request))
    assert _decoded(pages[0].packed_contact_ids) == [2, 3, 5]
    assert [(c.contact_id, c.external_id) for c in pages[0].contacts] == [(2, "P-2"), (3, "P-3"), (5, "P-5")]


def test_unpacked_ids_round_trip_and_refuse_partial_ids() -> None:
    from array import array

    ids = array("I", [1, 70_000, 2**32 - 1])
    assert list(cs.unpacked_ids(cs.packed_ids(ids))) == [1, 70_000, 2**32 - 1]
    assert cs.packed_ids(ids)[:4] == b"\x01\x00\x00\x00"
    with pytest.raises(InvalidArgument):
        cs.unpacked_ids(b"\x01\x00\x00")


def test_each_call_gets_its_own_request_id(listed: pb_grpc.SegmentdStub) -> None:
    request = pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=3)], segments=["primes"])
    seen = []
    for _ in range(3):
        reply, call = listed.CheckMembership.with_call(request)
        assert list(reply.results) == [True]
        seen.append(dict(call.trailing_metadata())["x-request-id"])
    assert len(set(seen)) == 3 and all(len(i) == 16 for i in seen)
    _, call = listed.CheckMembership.with_call(request, metadata=(("x-request-id", "mine-1"),))
    assert dict(call.trailing_metadata())["x-request-id"] == "mine-1"


@settings(max_examples=30, deadline=None)
@given(
    ids=st.lists(st.integers(0, 300), min_size=0, max_size=120),
    sets=st.lists(st.sets(st.integers(1, 300), max_size=200), min_size=1, max_size=5),
)
def test_memberships_agree_with_one_by_one(ids: list[int], sets: list[set[int]]) -> None:
    bitmaps = [BitMap(s) for s in sets]
    expected = [cid != 0 and cid in s for cid in ids for s in sets]
    assert segments_api.memberships(ids, bitmaps) == expected


def test_batched_check_matches_single_checks(listed: pb_grpc.SegmentdStub, engine: Engine) -> None:
    engine.put_segment({"name": "odds", "contacts": list(range(1, 31, 2))})
    refs = [pb.ContactRef(contact_id=c) for c in range(1, 41)] + [pb.ContactRef(ref="externalId:P-7")]
    reply = listed.CheckMembership(pb.CheckMembershipRequest(contacts=refs, segments=["primes", "odds"] * 4))
    assert len(reply.results) == len(refs) * 8
    for i, cid in enumerate(reply.contact_ids):
        row = list(reply.results[i * 8 : i * 8 + 8])
        assert row == [cid in MEMBERS, cid != 0 and cid % 2 == 1 and cid < 31] * 4
    assert list(reply.contact_ids)[29:] == [30] + [0] * 10 + [7]  # contacts 31-40 do not exist


@pytest.mark.parametrize("packed", [True, False])
def test_a_segment_within_one_page_comes_as_the_pages_would(
    engine: Engine, listed: pb_grpc.SegmentdStub, packed: bool
) -> None:
    engine.put_segment({"name": "nobody", "contacts": []})
    whole = list(listed.ListMembers(pb.ListMembersRequest(name="primes", packed=packed)))
    paged = list(cs.member_pages(BitMap(MEMBERS), after=0, page_size=len(MEMBERS), packed=packed))
    assert whole == paged and len(whole) == 1
    ids = _decoded(whole[0].packed_contact_ids) if packed else list(whole[0].contact_ids)
    assert ids == MEMBERS
    assert list(listed.ListMembers(pb.ListMembersRequest(name="nobody", packed=packed))) == []
    exact = list(listed.ListMembers(pb.ListMembersRequest(name="primes", packed=packed, page_size=len(MEMBERS))))
    assert exact == paged

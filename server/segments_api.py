"""The segment RPCs of segmentd.v1.Segmentd: a mixin of `server.servicer.Servicer`.

Saved segments answer "now" from their materialised bitmap (re-evaluated only when stale or
expired); a request with `asOf` evaluates at that instant. Every error is a core.errors class,
mapped to a status by `guarded` on the combined servicer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from pyroaring import BitMap

from core.engine import Engine
from core.errors import InvalidArgument, NotFound
from core.identifiers import Identifier
from core.segments.evaluate import condition_counts, evaluate, explain
from server import convert
from server import convert_segments as cs
from server.pb import segmentd_pb2 as pb
from server.status import field_prefix

DEFAULT_SAMPLE_SIZE = 10
MAX_SAMPLE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 10_000
MAX_PAGE_SIZE = 100_000
# Packed pages (ids only, 4 bytes an id): 400 KB by default, at most 4 MB (gRPC's default
# receive limit is 4 MiB).
DEFAULT_PACKED_PAGE_SIZE = 100_000
MAX_PACKED_PAGE_SIZE = 1_000_000
MAX_CHECK_CONTACTS = 10_000  # contacts in one CheckMembership call
MAX_CHECK_SEGMENTS = 1_000  # segments in one CheckMembership call


@dataclass(frozen=True, slots=True)
class Preview:
    members: BitMap
    counts: list[tuple[str, int]]  # (condition path, members of that condition), pre-order
    build_ms: float


# Engine-level operations written over engine.segments; they belong on core.engine.Engine.


def members(engine: Engine, name: str, as_of_ms: int | None) -> tuple[BitMap, int]:
    """A saved segment's members and the instant they hold at (default: the engine clock).

    At "now" the materialised bitmap answers; another instant evaluates there.
    """
    if as_of_ms is None:
        now = engine.clock()
        return engine.segments.current(name, now), now
    return engine.segments.members_at(name, as_of_ms), as_of_ms


def preview(engine: Engine, doc: dict[str, Any], as_of_ms: int | None) -> Preview:
    """Members and per-condition counts of an ad-hoc definition (its name may be empty)."""
    with field_prefix("segment"):
        defn = engine.segments.parse(doc, require_name=False)
    at = engine.clock() if as_of_ms is None else as_of_ms
    started = time.perf_counter()
    ctx = engine.segments.context(defn, at)
    found = evaluate(defn, ctx)
    counts = condition_counts(defn, ctx)
    return Preview(found, counts, (time.perf_counter() - started) * 1000)


def explain_contact(engine: Engine, name: str, contact_id: int, as_of_ms: int) -> list[Any]:
    """Every condition of a saved segment judged for one contact at `as_of_ms`."""
    defn = engine.segments.get(name).definition
    return explain(defn, engine.segments.context(defn, as_of_ms), contact_id)


def contact_or_zero(engine: Engine, ref: pb.ContactRef, field: str) -> int:
    """The contact id a reference names, 0 when nobody has it (bad references still fail)."""
    if ref.contact_id and not ref.ref:  # the common case, without the reference parser
        return ref.contact_id if engine.contacts.exists(ref.contact_id) else 0
    with field_prefix(field):
        target = convert.ref_of(ref, "")
        try:
            return engine.resolve_ref(target)
        except NotFound:
            return 0


def memberships(ids: list[int], bitmaps: list[BitMap]) -> list[bool]:
    """Whether each contact is in each bitmap, contact by contact (`ids[i]` in `bitmaps[j]` at
    i * len(bitmaps) + j); id 0 (nobody) is in none. (One bitmap probe per check is faster here
    than intersecting with numpy: about 70 ns a check.)"""
    return [cid != 0 and cid in bm for cid in ids for bm in bitmaps]


def contact_of(engine: Engine, ref: pb.ContactRef, field: str) -> int:
    """The contact id a reference names; NotFound when nobody has it."""
    with field_prefix(field):
        return engine.resolve_ref(convert.ref_of(ref, ""))


class SegmentsService:
    """PutSegment, GetSegment, ListSegments, DeleteSegment, PreviewSegment, CountMembers,
    ListMembers, CheckMembership, GetContactSegments, ExplainMembership."""

    engine: Engine

    def PutSegment(self, request: pb.PutSegmentRequest, context: grpc.ServicerContext) -> pb.PutSegmentResponse:
        doc = cs.segment_to_doc(request.segment)
        with field_prefix("segment"):
            saved, created = self.engine.put_segment(doc, create_only=request.create_only)
        return pb.PutSegmentResponse(segment=cs.info_to_pb(saved, len(saved.members)), created=created)

    def GetSegment(self, request: pb.GetSegmentRequest, context: grpc.ServicerContext) -> pb.SegmentInfo:
        name = cs.required_name(request.name)
        found, _ = members(self.engine, name, None)
        return cs.info_to_pb(self.engine.segments.get(name), len(found))

    def ListSegments(
        self, request: pb.ListSegmentsRequest, context: grpc.ServicerContext
    ) -> pb.ListSegmentsResponse:
        reply = pb.ListSegmentsResponse()
        for name in self.engine.segments.names():
            try:
                saved = self.engine.segments.get(name)
                if request.tag and request.tag not in saved.definition.tags:
                    continue
                found, _ = members(self.engine, name, None)
            except NotFound:
                continue  # deleted while listing
            reply.segments.append(cs.info_to_pb(saved, len(found)))
        return reply

    def DeleteSegment(
        self, request: pb.DeleteSegmentRequest, context: grpc.ServicerContext
    ) -> pb.DeleteSegmentResponse:
        self.engine.delete_segment(cs.required_name(request.name))
        return pb.DeleteSegmentResponse()

    def PreviewSegment(
        self, request: pb.PreviewSegmentRequest, context: grpc.ServicerContext
    ) -> pb.PreviewSegmentResponse:
        sample_size = cs.bounded(request.sample_size, DEFAULT_SAMPLE_SIZE, MAX_SAMPLE_SIZE, "sample_size")
        result = preview(self.engine, cs.segment_to_doc(request.segment), cs.as_of_ms(request))
        return pb.PreviewSegmentResponse(
            count=len(result.members),
            sample=result.members[:sample_size].to_array(),
            conditions=[pb.ConditionCount(path=p, count=n) for p, n in result.counts],
            build_ms=result.build_ms,
        )

    def CountMembers(
        self, request: pb.CountMembersRequest, context: grpc.ServicerContext
    ) -> pb.CountMembersResponse:
        found, at = members(self.engine, cs.required_name(request.name), cs.as_of_ms(request))
        return pb.CountMembersResponse(count=len(found), as_of_ms=at)

    def ListMembers(
        self, request: pb.ListMembersRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ListMembersResponse]:
        if request.packed and not request.with_identifiers:
            page_size = cs.bounded(request.page_size, DEFAULT_PACKED_PAGE_SIZE, MAX_PACKED_PAGE_SIZE, "page_size")
        else:
            page_size = cs.bounded(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, "page_size")
        found, _ = members(self.engine, cs.required_name(request.name), cs.as_of_ms(request))
        if not request.with_identifiers and not request.after_contact_id and 0 < len(found) <= page_size:
            # One page holds them all (most segments): no rank, no slice, no generator chain.
            ids = found.to_array()
            if request.packed:
                yield pb.ListMembersResponse(packed_contact_ids=cs.packed_ids(ids))
            else:
                yield pb.ListMembersResponse(contact_ids=ids)
            return
        lookup = self._identifiers_lookup() if request.with_identifiers else None
        yield from cs.member_pages(
            found, after=request.after_contact_id, page_size=page_size, lookup=lookup, packed=request.packed
        )

    def _identifiers_lookup(self) -> Callable[[int], list[Identifier] | None]:
        book = self.engine.contacts

        def lookup(contact_id: int) -> list[Identifier] | None:
            try:
                return book.identifiers(contact_id)
            except NotFound:
                return None  # erased since the members were evaluated

        return lookup

    def CheckMembership(
        self, request: pb.CheckMembershipRequest, context: grpc.ServicerContext
    ) -> pb.CheckMembershipResponse:
        if len(request.contacts) > MAX_CHECK_CONTACTS:
            raise InvalidArgument("contacts", f"at most {MAX_CHECK_CONTACTS} in one call, got {len(request.contacts)}")
        if len(request.segments) > MAX_CHECK_SEGMENTS:
            raise InvalidArgument("segments", f"at most {MAX_CHECK_SEGMENTS} in one call, got {len(request.segments)}")
        registry = self.engine.segments
        for j, name in enumerate(request.segments):
            cs.required_name(name, f"segments[{j}]")
            if not registry.has(name):
                raise NotFound(f"segments[{j}]: segment {name!r} does not exist")
        ids = [contact_or_zero(self.engine, ref, f"contacts[{i}]") for i, ref in enumerate(request.contacts)]
        now = self.engine.clock()
        bitmaps = [registry.current(name, now) for name in request.segments]
        return pb.CheckMembershipResponse(results=memberships(ids, bitmaps), contact_ids=ids)

    def GetContactSegments(
        self, request: pb.GetContactSegmentsRequest, context: grpc.ServicerContext
    ) -> pb.GetContactSegmentsResponse:
        cid = contact_of(self.engine, request.contact, "contact")
        names = self.engine.segments.contact_segments(cid, self.engine.clock())
        return pb.GetContactSegmentsResponse(contact_id=cid, segments=names)

    def ExplainMembership(
        self, request: pb.ExplainMembershipRequest, context: grpc.ServicerContext
    ) -> pb.ExplainMembershipResponse:
        name = cs.required_name(request.name)
        self.engine.segments.get(name)  # NotFound before the contact is looked at
        cid = contact_of(self.engine, request.contact, "contact")
        as_of = cs.as_of_ms(request)
        at = self.engine.clock() if as_of is None else as_of
        judged = explain_contact(self.engine, name, cid, at)
        return pb.ExplainMembershipResponse(
            contact_id=cid,
            member=bool(judged) and bool(judged[0].holds),  # the root condition (or static listing)
            conditions=[cs.explanation_to_pb(e) for e in judged],
            as_of_ms=at,
        )

"""Segment messages <-> the SEGMENTS.md JSON the engine takes; segment results -> messages.

A `Segment` message's proto3 JSON form (json names) is exactly the JSON of SEGMENTS.md, so a
definition crosses the wire as `MessageToDict` / `ParseDict` of it. Protobuf carries every
number of a `Value` or a comparison as a double; integral ones come back as ints (3.0 -> 3).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2
from pyroaring import BitMap

from core.errors import InvalidArgument
from core.events import parse_timestamp
from core.identifiers import Identifier, IdKind
from core.segments.canonical import definition_to_json
from core.segments.registry import SavedSegment
from server.convert import integral, python_to_value, value_to_python
from server.pb import segmentd_pb2 as pb

MAX_STATIC_ID = 2**32 - 1  # contact ids are uint32; `Segment.contacts` is repeated uint32
_U32 = "I" if array("I").itemsize == 4 else "L"  # the array typecode of a 4-byte unsigned int

Doc = dict[str, Any]


# ----------------------------------------------------------------------------- definitions


def segment_to_doc(segment: pb.Segment) -> Doc:
    """A Segment message as SEGMENTS.md JSON (unset fields left out, integral numbers as ints)."""
    doc: Doc = integral(json_format.MessageToDict(segment))
    return doc


def doc_to_segment(doc: Mapping[str, Any]) -> pb.Segment:
    """SEGMENTS.md JSON (a canonical definition) as a Segment message.

    Raises json_format.ParseError for JSON that has no message form (unknown keys, wrong
    types); validate with core.segments.definition.parse_definition first for path errors.
    """
    body = dict(doc)
    contacts = body.get("contacts")
    if isinstance(contacts, list):
        # Ids beyond uint32 are never assigned, so such a contact can never be a member.
        body["contacts"] = [c for c in contacts if not isinstance(c, int) or c <= MAX_STATIC_ID]
    return json_format.ParseDict(body, pb.Segment())


def saved_to_pb(saved: SavedSegment) -> pb.Segment:
    """The canonical definition of a saved segment as a message."""
    return doc_to_segment(definition_to_json(saved.definition))


def info_to_pb(saved: SavedSegment, size: int) -> pb.SegmentInfo:
    """A saved segment with its member count as a SegmentInfo."""
    return pb.SegmentInfo(
        segment=saved_to_pb(saved),
        size=size,
        created_at_ms=saved.created_at_ms,
        updated_at_ms=saved.updated_at_ms,
        evaluated_at_ms=saved.evaluated_at_ms or 0,
        last_build_ms=saved.last_build_ms,
    )


# ----------------------------------------------------------------------------- request values


def as_of_ms(request: Any) -> int | None:
    """A request's `as_of` Value (RFC 3339 text or epoch ms) as epoch ms; None when absent or null."""
    if not request.HasField("as_of"):
        return None
    value: struct_pb2.Value = request.as_of
    if value.WhichOneof("kind") in (None, "null_value"):
        return None
    return parse_timestamp(value_to_python(value), "as_of")


def required_name(name: str, field: str = "name") -> str:
    """A segment name the request must give."""
    if not name:
        raise InvalidArgument(field, "required")
    return name


def bounded(value: int, default: int, limit: int, field: str) -> int:
    """`value`, or `default` when 0; InvalidArgument beyond `limit`."""
    if value == 0:
        return default
    if value > limit:
        raise InvalidArgument(field, f"at most {limit}, got {value}")
    return value


# ----------------------------------------------------------------------------- results


def explanation_to_pb(explanation: Any) -> pb.ConditionExplanation:
    """A core Explanation (path, kind, holds, value, detail) as a ConditionExplanation."""
    return pb.ConditionExplanation(
        path=explanation.path,
        kind=explanation.kind,
        holds=bool(explanation.holds),
        value=python_to_value(explanation.value),
        detail=explanation.detail,
    )


def identifiers_to_pb(contact_id: int, identifiers: Iterable[Identifier]) -> pb.Contact:
    """A contact's id and identifiers (no fields) as a Contact message."""
    contact = pb.Contact(contact_id=contact_id)
    for ident in identifiers:
        if ident.kind is IdKind.EXTERNAL_ID:
            contact.external_id = ident.value
        elif ident.kind is IdKind.EMAIL:
            contact.email = ident.value
        elif ident.kind is IdKind.PHONE:
            contact.phone = ident.value
        elif ident.kind is IdKind.PUSH_TOKEN:
            contact.push_tokens.append(ident.value)
        elif ident.kind is IdKind.KEY:
            contact.keys[ident.key_name] = ident.value
        elif ident.kind is IdKind.ANONYMOUS:
            contact.anonymous_keys.append(ident.value)
    return contact


def member_pages(
    members: BitMap,
    *,
    after: int,
    page_size: int,
    lookup: Callable[[int], list[Identifier] | None] | None = None,
    packed: bool = False,
) -> Iterator[pb.ListMembersResponse]:
    """The members with ids above `after`, ascending, `page_size` ids per message.

    The members above `after` are read out once (4 bytes a member, far cheaper than cutting
    each page from the bitmap by rank) and pages are slices of that array. With
    `packed`, each page carries its ids in `packed_contact_ids` (little-endian uint32, 4 bytes
    an id) and leaves `contact_ids` empty. With `lookup` (contact id -> its identifiers, None
    when gone), each page also carries a Contact with the identifiers of each member still
    there (a contact erased since the evaluation is left out of `contacts`, not of the ids).
    """
    if after > MAX_STATIC_ID:
        return
    start = members.rank(after) if after else 0  # members <= after come first; skip them
    total = len(members)
    ascending = members[start:total].to_array() if start else members.to_array()  # array('I')
    for lo in range(0, total - start, page_size):
        ids = ascending[lo : lo + page_size]
        reply = pb.ListMembersResponse()
        if packed:
            reply.packed_contact_ids = packed_ids(ids)
        else:
            reply.contact_ids.extend(ids)
        if lookup is not None:
            for cid in ids:
                identifiers = lookup(cid)
                if identifiers is not None:
                    reply.contacts.append(identifiers_to_pb(cid, identifiers))
        yield reply


def packed_ids(ids: array) -> bytes:
    """Contact ids (array('I')) as little-endian uint32 bytes, 4 an id."""
    if ids.itemsize != 4 or sys.byteorder != "little":
        ids = array(_U32, ids)  # a copy: the caller's array is left as it was
        if sys.byteorder != "little":
            ids.byteswap()
    return ids.tobytes()


def unpacked_ids(data: bytes) -> array:
    """`packed_contact_ids` back to an array of uint32 ids (native order)."""
    if len(data) % 4:
        raise InvalidArgument("packed_contact_ids", f"{len(data)} bytes is not a whole number of uint32 ids")
    ids = array(_U32)
    ids.frombytes(data)
    if sys.byteorder != "little":
        ids.byteswap()
    return ids

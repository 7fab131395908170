"""Proto messages <-> the Python values the engine takes and returns.

Events and contacts go to the engine as the JSON documents of spec/EVENTS.md (plain dicts),
whether they arrived as messages or as JSON Lines; what comes back (contacts, stored events,
event types, per-item outcomes) is turned into messages here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2

from core.columnar import ColumnBatch, ParamValues, column_batch
from core.columns import KIND_NAMES, Kind
from core.errors import InvalidArgument
from core.jsonl import jsonl_docs
from server.pb import segmentd_pb2 as pb

# Largest magnitude below which every integer is an exact double (2^53).
EXACT_INT_LIMIT = 2**53
DAY_MS = 86_400_000

Doc = dict[str, Any]
DocOrError = Mapping[str, Any] | InvalidArgument

STATUS_CODES = {
    "accepted": pb.EventResult.ACCEPTED,
    "duplicate": pb.EventResult.DUPLICATE,
    "rejected": pb.EventResult.REJECTED,
}



# ----------------------------------------------------------------------------- values


def integral(value: Any) -> Any:
    """`value` with every integral double within 2^53 turned into an int (protobuf has only doubles)."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= EXACT_INT_LIMIT:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def value_to_python(value: struct_pb2.Value) -> Any:
    """A google.protobuf.Value as a Python value; integral numbers become ints."""
    return integral(json_format.MessageToDict(value))


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types (numpy scalars, dates and tuples included)."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return jsonable(item())
    return str(value)


def python_to_value(value: Any) -> struct_pb2.Value:
    """A Python (JSON-like) value as a google.protobuf.Value."""
    return json_format.ParseDict(jsonable(value), struct_pb2.Value())


def python_to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A Python mapping as a google.protobuf.Struct."""
    struct = struct_pb2.Struct()
    struct.update(jsonable(value))
    return struct


# ----------------------------------------------------------------------------- events in


def _plain_value(value: struct_pb2.Value) -> Any:
    """`value_to_python` without the generic message walk: the same result, much faster."""
    which = value.WhichOneof("kind")
    if which == "string_value":
        return value.string_value
    if which == "number_value":
        x = value.number_value
        if x - x != 0.0:
            return value_to_python(value)  # NaN or infinite: raises what the generic walk raises
        return int(x) if x.is_integer() and abs(x) <= EXACT_INT_LIMIT else x
    if which == "struct_value":
        fields = value.struct_value.fields
        return {key: _plain_value(fields[key]) for key in fields}
    if which == "list_value":
        return [_plain_value(item) for item in value.list_value.values]
    if which == "bool_value":
        return value.bool_value
    return None  # null_value, or no kind set


def event_to_doc(event: pb.Event) -> Doc:
    """An Event message as the event JSON document of EVENTS.md section 1."""
    doc: Doc = {"eventTypeKey": event.event_type_key}
    if event.key_value:
        doc["keyValue"] = event.key_value
    if event.event_id:
        doc["eventId"] = event.event_id
    if event.HasField("timestamp"):
        ts = _plain_value(event.timestamp)
        if ts is not None:
            doc["timestamp"] = ts
    if event.system:
        doc["system"] = True
    if event.HasField("params"):
        params = _plain_value(event.params)
        if params is not None:
            doc["params"] = params
    return doc


def jsonl_to_docs(data: bytes, field: str = "jsonl") -> list[DocOrError]:
    """One document per non-blank line of `data`, in order (core.jsonl.jsonl_docs).

    A line that is not a JSON object becomes ``InvalidArgument("jsonl[N]", ...)`` at its
    position (N is the 1-based line number within `data`), so the engine reports it there.
    """
    return jsonl_docs(data, field)


def event_batch(request: pb.IngestEventsRequest) -> list[DocOrError]:
    """The documents of a batch: `events` first, then the lines of `jsonl`."""
    docs: list[DocOrError] = [event_to_doc(e) for e in request.events]
    if request.jsonl:
        docs.extend(jsonl_to_docs(request.jsonl))
    return docs


def _packed(data: bytes, dtype: str, field: str) -> np.ndarray:
    """A packed little-endian array field as numpy, or InvalidArgument naming it."""
    size = np.dtype(dtype).itemsize
    if len(data) % size:
        raise InvalidArgument(field, f"{len(data)} bytes is not a whole number of {size}-byte entries")
    return np.frombuffer(data, dtype=dtype)


def columns_to_batch(columns: pb.EventColumns, field: str = "columns") -> ColumnBatch:
    """An EventColumns message as a core ColumnBatch; InvalidArgument names a malformed column."""
    contact = _packed(columns.contact_ids, "<u4", f"{field}.contact_ids")
    ts_ms = _packed(columns.ts_ms, "<i8", f"{field}.ts_ms")
    params = []
    for i, column in enumerate(columns.params):
        here = f"{field}.params[{i}]"
        which = column.WhichOneof("values")
        if which == "numbers":
            params.append(ParamValues(column.name, Kind.NUM, _packed(column.numbers, "<f8", f"{here}.numbers")))
        elif which == "booleans":
            params.append(ParamValues(column.name, Kind.BOOL, _packed(column.booleans, "u1", f"{here}.booleans")))
        elif which == "strings":
            codes = _packed(column.strings.codes, "<i4", f"{here}.strings.codes")
            params.append(ParamValues(column.name, Kind.STR, codes, list(column.strings.vocab)))
        else:
            raise InvalidArgument(here, "holds no values (numbers, booleans or strings)")
    return column_batch(columns.event_type_key, contact, ts_ms, params, field)


def batch_to_columns(
    type_key: str, contact: Any, ts_ms: Any, params: Mapping[str, Any]
) -> pb.EventColumns:
    """An EventColumns message of numpy columns (a client's helper): float arrays are numbers
    (NaN absent), bool arrays booleans, str/object arrays strings (None absent)."""
    message = pb.EventColumns(
        event_type_key=type_key,
        contact_ids=np.asarray(contact).astype("<u4").tobytes(),
        ts_ms=np.asarray(ts_ms).astype("<i8").tobytes(),
    )
    for name, raw in params.items():
        arr = np.asarray(raw)
        column = message.params.add(name=name)
        if arr.dtype == np.bool_:
            column.booleans = arr.astype("u1").tobytes()
        elif arr.dtype.kind in "iuf":
            column.numbers = arr.astype("<f8").tobytes()
        else:
            listed = arr.tolist()
            vocab = sorted({v for v in listed if v is not None})
            code_of = {v: i for i, v in enumerate(vocab)}
            codes = np.fromiter((-1 if v is None else code_of[v] for v in listed), dtype="<i4", count=len(listed))
            column.strings.vocab.extend(vocab)
            column.strings.codes = codes.tobytes()
    return message


# ----------------------------------------------------------------------------- events out


def outcome_to_pb(outcome: Any, index_offset: int = 0) -> pb.EventResult:
    """An engine EventOutcome as an EventResult; `index_offset` shifts its position."""
    return pb.EventResult(
        index=outcome.index + index_offset,
        status=STATUS_CODES[outcome.status],
        error=outcome.error,
        field=outcome.field,
        contact_id=outcome.contact_id,
        identifier=outcome.identifier,
        contact_created=outcome.created,
        attached=list(outcome.attached),
        conflicts=list(outcome.conflicts),
    )


def change_to_pb(change: Any) -> pb.MembershipChange:
    """A membership change of the segment engine (attributes named as in the proto)."""
    return pb.MembershipChange(
        sequence=change.sequence,
        segment=change.segment,
        contact_id=change.contact_id,
        entered=change.entered,
        at_ms=change.at_ms,
        cause=change.cause,
    )


def add_report(
    reply: pb.IngestEventsResponse,
    report: Any,
    *,
    index_offset: int = 0,
    all_results: bool = False,
    changes: bool = False,
) -> None:
    """Adds an engine IngestReport to `reply`: counts summed, results appended.

    Rejected events, and accepted ones whose identifiers conflicted with another contact's,
    are always listed; every event is listed when `all_results`.
    """
    reply.accepted += report.accepted
    reply.duplicates += report.duplicates
    reply.rejected += report.rejected
    for outcome in report.outcomes:
        if all_results or outcome.status == "rejected" or outcome.conflicts:
            reply.results.append(outcome_to_pb(outcome, index_offset))
    if changes:
        reply.changes.extend(change_to_pb(c) for c in getattr(report, "changes", ()) or ())


def stored_event_to_pb(event: Any) -> pb.StoredEvent:
    """A core StoredEvent as a message (`sequence` is its arrival number)."""
    return pb.StoredEvent(
        event_type_key=event.type,
        contact_id=event.contact_id,
        ts_ms=event.ts_ms,
        params=python_to_struct(event.params or {}),
        sequence=event.arrival,
    )


def event_type_to_pb(info: Any) -> pb.EventType:
    """A core EventTypeInfo as an EventType message."""
    retention_ms = info.retention_ms or 0
    config = pb.EventTypeConfig(
        mapping=dict(info.mapping.params),
        contact_key_name=info.mapping.contact_key_name,
        retention_days=retention_ms // DAY_MS,
    )
    return pb.EventType(
        key=info.key,
        count=info.count,
        paths=[
            pb.ParamPath(
                path=p.path,
                kind=KIND_NAMES[p.kind],
                count=p.count,
                examples=[python_to_value(x) for x in p.examples],
            )
            for p in info.paths
        ],
        config=config,
        first_ts_ms=info.first_ts_ms or 0,
        last_ts_ms=info.last_ts_ms or 0,
    )


# ----------------------------------------------------------------------------- contacts


def contact_input_to_doc(contact: pb.ContactInput) -> Doc:
    """A ContactInput as the contact JSON of EVENTS.md section 2 (empty fields left out)."""
    doc: Doc = {}
    if contact.contact_id:
        doc["contactId"] = contact.contact_id
    if contact.external_id:
        doc["externalId"] = contact.external_id
    if contact.email:
        doc["email"] = contact.email
    if contact.phone:
        doc["phone"] = contact.phone
    if contact.push_tokens:
        doc["pushTokens"] = list(contact.push_tokens)
    if contact.keys:
        doc["keys"] = dict(contact.keys)
    if contact.HasField("fields"):
        doc["fields"] = integral(json_format.MessageToDict(contact.fields))
    return doc


def contact_batch(request: pb.UpsertContactsRequest) -> list[DocOrError]:
    """The documents of an upsert: `contacts` first, then the lines of `jsonl`."""
    docs: list[DocOrError] = [contact_input_to_doc(c) for c in request.contacts]
    if request.jsonl:
        docs.extend(jsonl_to_docs(request.jsonl))
    return docs


def contact_to_pb(contact: Any) -> pb.Contact:
    """A core Contact as a Contact message."""
    return pb.Contact(
        contact_id=contact.contact_id,
        external_id=contact.external_id or "",
        email=contact.email or "",
        phone=contact.phone or "",
        push_tokens=list(contact.push_tokens or ()),
        keys=dict(contact.keys or {}),
        anonymous_keys=list(contact.anonymous_keys or ()),
        fields=python_to_struct(contact.fields or {}),
        created_at_ms=contact.created_at_ms or 0,
        source=contact.source or "",
    )


def contact_outcome_to_pb(outcome: Any) -> pb.ContactResult:
    """An engine ContactOutcome as a ContactResult."""
    return pb.ContactResult(
        index=outcome.index,
        contact_id=outcome.contact_id,
        created=outcome.created,
        error=outcome.error,
        field=outcome.field,
        conflicts=list(outcome.conflicts),
    )


def upsert_reply(report: Any) -> pb.UpsertContactsResponse:
    """An engine UpsertReport as the reply: counts and one result per contact."""
    return pb.UpsertContactsResponse(
        created=report.created,
        updated=report.updated,
        rejected=report.rejected,
        results=[contact_outcome_to_pb(o) for o in report.outcomes],
    )


def ref_of(ref: pb.ContactRef, field: str) -> int | str:
    """The engine reference (an id, or "kind:value") of a ContactRef named `field`."""
    if ref.contact_id and ref.ref:
        raise InvalidArgument(field, "give contact_id or ref, not both")
    if ref.contact_id:
        return ref.contact_id
    text = ref.ref.strip()
    if not text:
        raise InvalidArgument(field, "a contact_id or a ref (kind:value) is required")
    if text.isdigit():
        return int(text)
    return text


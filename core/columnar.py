"""Column batches: many events of one type, each tied to a contact, given column by column.

The bulk ingest path. Each event is row i of every column: `contact[i]` (an existing
contact; 0 makes a system event), `ts_ms[i]`, and the i-th entry of each flat parameter
column (absent where the column says so). Events are validated as EVENTS.md section 1
says, row by row: `row_errors` names the first bad field of each bad row, and the good
rows are stored through `core.bulk.append_leaves`, the same store as appending the events
one by one. A string that would be read as JSON (first non-blank `{` or `[`, and parses)
is refused: nested values come as event documents, where they are flattened.

`record_of` / `events_of_record` are the log record of a stored batch and its way back:
the stored rows as `Event`s tied to their contacts, which `Engine.ingest` replays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.bulk import Coded, LeafColumn
from core.columns import Kind
from core.errors import InvalidArgument
from core.event_model import (
    MAX_EVENT_BYTES,
    MAX_PARAMS,
    MAX_TYPE_KEY_CHARS,
    Event,
    LeafTuple,
)
from core.events import check_text, encoded_size
from core.timestamps import MAX_TS_MS, MIN_TS_MS

BOOL_ABSENT = 2  # a booleans entry: 0 false, 1 true, 2 absent
_NUMBER_BOUND = 32  # bytes of any number's JSON text


@dataclass(slots=True)
class ParamValues:
    """One flat parameter: its kind and one entry per event.

    NUM: float64 values, NaN where absent. BOOL: uint8 0/1, BOOL_ABSENT where absent.
    STR: int32 codes into `vocab`, -1 where absent.
    """

    name: str
    kind: Kind
    values: np.ndarray
    vocab: list[str] | None = None  # STR only


@dataclass(slots=True)
class ColumnBatch:
    """Events of one type, column by column (see the module docstring)."""

    type_key: str
    contact: np.ndarray  # uint32, one per event
    ts_ms: np.ndarray  # int64 epoch ms, one per event
    params: list[ParamValues]

    def __len__(self) -> int:
        return int(self.contact.shape[0])


def column_batch(
    type_key: str, contact: np.ndarray, ts_ms: np.ndarray, params: list[ParamValues], field: str = "columns"
) -> ColumnBatch:
    """A ColumnBatch after checking its shape: one entry per event in every column, distinct
    names, codes inside their vocabulary. InvalidArgument (naming the column) refuses it whole."""
    n = int(contact.shape[0])
    if ts_ms.shape != (n,):
        raise InvalidArgument(f"{field}.ts_ms", f"must hold one timestamp per event ({n}), got {ts_ms.shape[0]}")
    names: set[str] = set()
    for i, p in enumerate(params):
        here = f"{field}.params[{i}]"
        if p.name in names:
            raise InvalidArgument(f"{here}.name", f"parameter {p.name!r} has two columns")
        names.add(p.name)
        if p.values.shape != (n,):
            raise InvalidArgument(here, f"must hold one entry per event ({n}), got {p.values.shape[0]}")
        if p.kind is Kind.BOOL and n and int(p.values.max()) > BOOL_ABSENT:
            raise InvalidArgument(here, "booleans are 0, 1 or 2 (absent)")
        if p.kind is Kind.STR:
            size = len(p.vocab or ())
            if n and (int(p.values.min()) < -1 or int(p.values.max()) >= size):
                raise InvalidArgument(here, f"string codes must lie in -1..{size - 1}")
    return ColumnBatch(type_key, contact.astype(np.uint32, copy=False), ts_ms.astype(np.int64, copy=False), params)


def row_errors(batch: ColumnBatch) -> dict[int, InvalidArgument]:
    """The first bad field of every bad row (EVENTS.md section 1), by row; reads no state."""
    n = len(batch)
    errors: dict[int, InvalidArgument] = {}

    def reject(rows: np.ndarray, error: InvalidArgument) -> None:
        for row in rows.tolist():
            errors.setdefault(row, error)

    every = np.arange(n)
    type_key = batch.type_key
    if not isinstance(type_key, str) or not 1 <= len(type_key) <= MAX_TYPE_KEY_CHARS:
        reject(every, InvalidArgument("eventTypeKey", f"must be a string of 1-{MAX_TYPE_KEY_CHARS} characters"))
        return errors
    try:
        check_text(type_key, "eventTypeKey")
    except InvalidArgument as exc:
        reject(every, exc)
        return errors
    ts = batch.ts_ms
    reject(np.flatnonzero((ts < MIN_TS_MS) | (ts > MAX_TS_MS)), InvalidArgument("timestamp", "is out of range"))
    if len(batch.params) > MAX_PARAMS:
        reject(every, InvalidArgument("params", f"more than {MAX_PARAMS} parameters ({len(batch.params)})"))
        return errors
    bound = np.full(n, 200 + 6 * len(type_key), dtype=np.int64)  # encoded bytes, an upper bound
    for p in batch.params:
        try:
            if not p.name:
                raise InvalidArgument("params", "parameter names must be non-empty strings")
            check_text(p.name, "params")
        except InvalidArgument as exc:
            reject(every, exc)
            continue
        field = f"params.{p.name}"
        values = p.values
        if p.kind is Kind.NUM:
            present = ~np.isnan(values)
            reject(np.flatnonzero(present & ~np.isfinite(values)), InvalidArgument(field, "numbers must be finite"))
            bound += present * (6 * len(p.name) + 4 + _NUMBER_BOUND)
        elif p.kind is Kind.BOOL:
            bound += (values != BOOL_ABSENT) * (6 * len(p.name) + 10)
        else:
            vocab = p.vocab or []
            bad, sizes = _vocab_checks(vocab, field)
            codes = values.astype(np.int64)
            present = codes >= 0
            for code, error in bad.items():
                reject(np.flatnonzero(codes == code), error)
            if vocab:
                bound += present * (6 * len(p.name) + 4 + sizes[np.where(present, codes, 0)])
    for row in np.flatnonzero(bound > MAX_EVENT_BYTES).tolist():
        if row not in errors:
            size = encoded_size(_doc_of(batch, row))
            if size > MAX_EVENT_BYTES:
                errors[row] = InvalidArgument("", f"event exceeds 1 MiB ({size} bytes encoded)")
    return errors


def _vocab_checks(vocab: list[str], field: str) -> tuple[dict[int, InvalidArgument], np.ndarray]:
    """(error of each unusable vocabulary entry by code, an encoded-size bound per entry)."""
    bad: dict[int, InvalidArgument] = {}
    sizes = np.zeros(len(vocab), dtype=np.int64)
    for code, text in enumerate(vocab):
        sizes[code] = 6 * len(text) + 2
        try:
            check_text(text, field)
        except InvalidArgument as exc:
            bad[code] = exc
            continue
        head = text.lstrip()[:1]
        if head == "{" or head == "[":
            try:
                json.loads(text)
            except (ValueError, RecursionError):
                continue  # not JSON after all: a plain string
            bad[code] = InvalidArgument(field, "holds JSON: send nested values as event documents, not columns")
    return bad, sizes


def _value(p: ParamValues, row: int) -> Any:
    """Row `row`'s value of a parameter, None where absent."""
    v = p.values[row]
    if p.kind is Kind.NUM:
        return None if np.isnan(v) else float(v)
    if p.kind is Kind.BOOL:
        return None if v == BOOL_ABSENT else bool(v)
    return None if v < 0 else (p.vocab or [])[int(v)]


def _doc_of(batch: ColumnBatch, row: int) -> dict[str, Any]:
    """Row `row` as an event document (its params as an object, absent ones left out)."""
    params = {p.name: v for p in batch.params if (v := _value(p, row)) is not None}
    return {"eventTypeKey": batch.type_key, "timestamp": int(batch.ts_ms[row]), "params": params}


def leaf_columns_of(batch: ColumnBatch, keep: np.ndarray) -> list[LeafColumn]:
    """The LeafColumns of the rows `keep` (bool per event), rows renumbered among them."""
    renumbered = np.cumsum(keep, dtype=np.int64) - 1
    columns = []
    for p in batch.params:
        if p.kind is Kind.NUM:
            present = ~np.isnan(p.values)
        elif p.kind is Kind.BOOL:
            present = p.values != BOOL_ABSENT
        else:
            present = p.values >= 0
        sel = np.flatnonzero(present & keep)
        if not sel.shape[0]:
            continue
        rows = renumbered[sel]
        if p.kind is Kind.NUM:
            columns.append(LeafColumn(p.name, Kind.NUM, rows, p.values[sel].astype(np.float64)))
        elif p.kind is Kind.BOOL:
            columns.append(LeafColumn(p.name, Kind.BOOL, rows, p.values[sel].astype(np.int8)))
        else:
            vocab = np.empty(len(p.vocab or ()), dtype=object)
            vocab[:] = p.vocab or []
            columns.append(LeafColumn(p.name, Kind.STR, rows, Coded(p.values[sel].astype(np.int64), vocab)))
    return columns


# ---------------------------------------------------------------------------- log record


def record_of(batch: ColumnBatch, keep: np.ndarray) -> dict[str, Any]:
    """The stored rows (`keep`) as plain msgpack-able values: the "columns" of a log record."""
    params = []
    for p in batch.params:
        data = p.values[keep].astype(_DTYPES[p.kind]).tobytes()
        params.append([p.name, int(p.kind), data, p.vocab])
    return {
        "type": batch.type_key,
        "contact": batch.contact[keep].astype("<u4").tobytes(),
        "ts_ms": batch.ts_ms[keep].astype("<i8").tobytes(),
        "params": params,
    }


_DTYPES = {Kind.NUM: "<f8", Kind.BOOL: "u1", Kind.STR: "<i4"}


def batch_of_record(record: dict[str, Any]) -> ColumnBatch:
    """The ColumnBatch a `record_of` record holds."""
    params = [
        ParamValues(name, Kind(kind), np.frombuffer(data, dtype=_DTYPES[Kind(kind)]), vocab)
        for name, kind, data, vocab in record["params"]
    ]
    contact = np.frombuffer(record["contact"], dtype="<u4").astype(np.uint32)
    ts = np.frombuffer(record["ts_ms"], dtype="<i8").astype(np.int64)
    return column_batch(record["type"], contact, ts, params)


def events_of_record(record: dict[str, Any]) -> list[Event]:
    """The events a `record_of` record stored, in row order, each tied to its contact."""
    batch = batch_of_record(record)
    events = []
    for row in range(len(batch)):
        leaves: list[LeafTuple] = [(p.name, v, ()) for p in batch.params if (v := _value(p, row)) is not None]
        cid = int(batch.contact[row])
        params = {name: value for name, value, _ in leaves}
        events.append(
            Event(batch.type_key, None, None, int(batch.ts_ms[row]), cid == 0, params, leaves, contact=cid)
        )
    return events

"""Batch ingest for the server: one request's events validated, mapped, stored, journalled.

The outcome is `Engine.ingest`'s, event for event (EVENTS.md: each event succeeds or fails
on its own; rejections by position, naming the field), and so is the state it leaves.
What differs is how the work is laid out:

- `prepare` validates outside the writer lock (validation reads no state);
- the log record of a JSON Lines batch holds the request's bytes and the positions that
  were not stored, instead of every stored event encoded again; recovery decodes the bytes
  with the same `core.jsonl.jsonl_docs` and replays the other positions (snapshots/wal.py);
- `ingest_prepared` hands back the journal ticket instead of waiting on it, so a stream
  can map its next batch while the log syncs the previous one. Nothing may be acknowledged
  before its ticket is waited on.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.bulk import append_leaves
from core.columnar import ColumnBatch, leaf_columns_of, record_of, row_errors
from core.engine import Engine, EventOutcome, IngestReport, Ticket
from core.errors import InvalidArgument
from core.event_fast import PLAIN_LINE_BYTES
from core.event_model import Event, leaf_tuples
from core.events import parse_event, parse_line_event
from core.jsonl import (
    RECORD_BYTES,
    RECORD_COLUMNS,
    RECORD_SKIP,
    iter_jsonl_docs,
    journal_doc,
)
from core.mapping import place

_TURN = threading.Lock()  # one request's batch at a time through `batch_turn`


@contextmanager
def batch_turn() -> Iterator[None]:
    """One request's batch at a time: decoded, validated, mapped and stored, its documents
    freed, with the cyclic garbage collector off.

    Batches are CPU work under one interpreter lock: several at once only trade it back
    and forth (and the writer lock serialises their mapping anyway). Waiting for the log
    happens after the turn, so syncs still group. A batch allocates containers by the
    hundred thousand that die with it and make no cycles; collected while alive they are
    traversed for nothing (several microseconds an event).
    """
    with _TURN:
        collecting = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if collecting:
                gc.enable()


class _Done:
    def wait(self) -> None:
        return None


DONE: Ticket = _Done()


@dataclass(slots=True)
class Prepared:
    """A request's events by position: parsed, or the error that rejects them."""

    events: list[Event | InvalidArgument]
    jsonl: bytes | None = None  # the request's bytes, when every event came from them


def prepare(docs: Iterable[Mapping[str, Any] | InvalidArgument], jsonl: bytes | None = None) -> Prepared:
    """Parses every document (`parse_event`); reads no state, takes no lock.

    `jsonl`: the bytes `docs` were decoded from by `jsonl_docs` (or `iter_jsonl_docs`), all
    of them and nothing else; given, the log records those bytes instead of the documents.
    """
    events: list[Event | InvalidArgument] = []
    append = events.append
    parse: Callable[[Any], Event] = parse_event
    if jsonl is not None and max(map(len, jsonl.split(b"\n"))) <= PLAIN_LINE_BYTES:
        parse = parse_line_event  # every document was decoded from a short line
    collecting = gc.isenabled()
    gc.disable()  # many short-lived containers, no cycles
    try:
        for doc in docs:
            if type(doc) is InvalidArgument:
                append(doc)
                continue
            try:
                append(parse(doc))
            except InvalidArgument as exc:
                append(exc)
    finally:
        if collecting:
            gc.enable()
    return Prepared(events, jsonl)


def prepare_jsonl(data: bytes, field: str = "jsonl") -> Prepared:
    """`prepare` of the documents of a JSON Lines request, each parsed as soon as it is
    decoded: a document is done with while it is still in cache, and freed before the next
    is decoded (what a request's documents all decoded first would not allow)."""
    return prepare(iter_jsonl_docs(data, field), data)


def ingest_prepared(
    engine: Engine,
    prepared: Prepared,
    *,
    dry_run: bool = False,
    all_results: bool = True,
    now_ms: int | None = None,
) -> tuple[IngestReport, Ticket]:
    """Maps and stores prepared events as `Engine.ingest` would; (report, journal ticket).

    Without `all_results` the report's outcomes list only the rejected events and the
    accepted ones with conflicts (its counts stay exact). The caller waits on the ticket
    before it acknowledges anything.
    """
    report = IngestReport()
    outcomes = report.outcomes
    events = prepared.events
    contacts, store = engine.contacts, engine.store
    seen = engine._seen
    accepted = duplicates = 0
    skipped: list[int] = []  # positions not stored
    stored: list[Event] = []
    touched: dict[str, set[int]] = {}
    mappings: dict[str, Any] = {}
    with engine._lock:
        now = engine.clock() if now_ms is None else now_ms
        batch = None if dry_run else store.batch()
        collecting = gc.isenabled()
        gc.disable()
        try:
            for index, event in enumerate(events):
                if type(event) is not Event:
                    skipped.append(index)
                    outcomes.append(EventOutcome(index, "rejected", error=str(event), field=event.field))  # type: ignore[union-attr]
                    continue
                type_key = event.type
                if event.event_id is not None and engine._is_duplicate(event, now):
                    skipped.append(index)
                    duplicates += 1
                    if all_results:
                        outcomes.append(EventOutcome(index, "duplicate"))
                    continue
                mapping = mappings.get(type_key)
                if mapping is None:
                    mapping = mappings[type_key] = store.mapping(type_key)
                try:
                    contact_id, identifier, created, attached, conflicts, _ = place(
                        contacts, event, mapping, now, dry_run
                    )
                except InvalidArgument as exc:
                    skipped.append(index)
                    outcomes.append(EventOutcome(index, "rejected", error=str(exc), field=exc.field))
                    continue
                accepted += 1
                if all_results or conflicts:
                    outcomes.append(
                        EventOutcome(index, "accepted", "", "", contact_id, identifier, created, attached, conflicts)
                    )
                if batch is None:
                    continue
                ts_ms = event.ts_ms
                if ts_ms is None:
                    ts_ms = event.ts_ms = now
                leaves = event.leaves
                batch.add(type_key, contact_id, ts_ms, leaf_tuples(event.params) if leaves is None else leaves)
                if event.event_id is not None:
                    seen[(type_key, event.event_id)] = now
                stored.append(event)
                if contact_id:
                    cids = touched.get(type_key)
                    if cids is None:
                        cids = touched[type_key] = set()
                    cids.add(contact_id)
        finally:
            if batch is not None:
                batch.commit()
            if collecting:
                gc.enable()
        report.accepted, report.duplicates = accepted, duplicates
        report.rejected = len(events) - accepted - duplicates
        ticket: Ticket = DONE
        if stored:
            ticket = engine.journal.append("ingest", _record(prepared, now, stored, skipped))
        if touched:
            report.changes = engine.segments.on_events(touched, now)
    return report, ticket


def ingest(
    engine: Engine, docs: Sequence[Mapping[str, Any] | InvalidArgument], *, dry_run: bool = False,
    jsonl: bytes | None = None, now_ms: int | None = None,
) -> IngestReport:
    """`Engine.ingest` through this module: prepare, map and store, wait for the log."""
    report, ticket = ingest_prepared(engine, prepare(docs, jsonl), dry_run=dry_run, now_ms=now_ms)
    ticket.wait()
    return report


def ingest_columns(
    engine: Engine,
    batch: ColumnBatch,
    *,
    dry_run: bool = False,
    all_results: bool = True,
    now_ms: int | None = None,
) -> tuple[IngestReport, Ticket]:
    """Validates a column batch row by row and stores its good rows at once (the bulk path);
    (report, journal ticket) as `ingest_prepared`. A row whose contact does not exist is
    rejected naming `contact_ids`."""
    errors = row_errors(batch)  # reads no state
    n = len(batch)
    report = IngestReport()
    with engine._lock:
        now = engine.clock() if now_ms is None else now_ms
        contact = batch.contact
        exists = engine.contacts.exists
        missing = InvalidArgument("contact_ids", "names no existing contact (the service assigns contact ids)")
        for cid in np.unique(contact).tolist():
            if cid and not exists(cid):
                for row in np.flatnonzero(contact == cid).tolist():
                    errors.setdefault(row, missing)
        keep = np.ones(n, dtype=bool)
        if errors:
            keep[list(errors)] = False
        report.accepted = n - len(errors)
        report.rejected = len(errors)
        if all_results:
            identifier = [f"contactId:{c}" if c else "" for c in contact.tolist()]
            for row in range(n):
                error = errors.get(row)
                if error is None:
                    cid = int(contact[row])
                    report.outcomes.append(EventOutcome(row, "accepted", contact_id=cid, identifier=identifier[row]))
                else:
                    report.outcomes.append(EventOutcome(row, "rejected", error=str(error), field=error.field))
        else:
            for row in sorted(errors):
                error = errors[row]
                report.outcomes.append(EventOutcome(row, "rejected", error=str(error), field=error.field))
        ticket: Ticket = DONE
        if dry_run or not report.accepted:
            return report, ticket
        append_leaves(engine.store, batch.type_key, contact[keep], batch.ts_ms[keep], leaf_columns_of(batch, keep))
        ticket = engine.journal.append("ingest", {"now_ms": now, RECORD_COLUMNS: record_of(batch, keep)})
        stored = contact[keep]
        touched = np.unique(stored[stored != 0]).tolist()
        if touched:
            report.changes = engine.segments.on_events({batch.type_key: touched}, now)
    return report, ticket


def _record(prepared: Prepared, now: int, stored: list[Event], skipped: list[int]) -> dict[str, Any]:
    """The "ingest" log record: the request's bytes and the positions not stored, or (no
    bytes) the stored events as documents with the server's timestamp filled in."""
    if prepared.jsonl is not None:
        return {"now_ms": now, RECORD_BYTES: prepared.jsonl, RECORD_SKIP: skipped}
    return {"now_ms": now, "docs": [journal_doc(event) for event in stored]}

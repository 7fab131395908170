"""The engine: one object that owns contacts, event columns and segments.

Every write goes through here under one writer lock, in a fixed order, so that replaying the
same journal records against the same starting state gives the same state (the durability
layer relies on it). Readers take immutable versions from the store and never block writers.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from core.contact_docs import parse_contact_doc
from core.contacts import Contact, ContactBook
from core.errors import InvalidArgument, NotFound
from core.event_model import Event, flatten, leaf_tuples
from core.events import parse_event
from core.history import StoredEvent, contact_events, recent_events
from core.identifiers import Identifier, TypeMapping, parse_identifier_spec, parse_ref
from core.jsonl import journal_doc
from core.mapping import place
from core.store import EventBatch, EventStore, EventTypeInfo

DEDUP_WINDOW_MS = 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000


def _parsed_contact(doc: Mapping[str, Any] | InvalidArgument) -> tuple[Any, ...] | InvalidArgument:
    """`parse_contact_doc(doc)`, or the InvalidArgument that refuses it."""
    if isinstance(doc, InvalidArgument):
        return doc
    try:
        return parse_contact_doc(doc)
    except InvalidArgument as exc:
        return exc


def wall_clock_ms() -> int:
    """The server clock, epoch milliseconds."""
    return time.time_ns() // 1_000_000


class Ticket(Protocol):
    def wait(self) -> None: ...


class Journal(Protocol):
    """Where writes are recorded before they are acknowledged (the write-ahead log)."""

    def append(self, op: str, payload: dict[str, Any]) -> Ticket: ...


class _Done:
    def wait(self) -> None:
        return None


class NullJournal:
    """Records nothing: an engine without durability."""

    def append(self, op: str, payload: dict[str, Any]) -> Ticket:
        return _Done()


@dataclass(slots=True)
class EventOutcome:
    index: int
    status: str  # accepted | duplicate | rejected
    error: str = ""
    field: str = ""
    contact_id: int = 0
    identifier: str = ""
    created: bool = False
    attached: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    outcomes: list[EventOutcome] = field(default_factory=list)
    changes: Sequence[Any] = field(default_factory=list)  # core.changes.Change, in sequence order


@dataclass(slots=True)
class ContactOutcome:
    index: int
    contact_id: int = 0
    created: bool = False
    error: str = ""
    field: str = ""
    conflicts: tuple[str, ...] = ()


@dataclass(slots=True)
class UpsertReport:
    created: int = 0
    updated: int = 0
    rejected: int = 0
    outcomes: list[ContactOutcome] = field(default_factory=list)


class Engine:
    """Contacts, events and segments in memory; the single entry point for every operation."""

    def __init__(
        self,
        *,
        clock: Callable[[], int] | None = None,
        shard_bits: int = 20,
        journal: Journal | None = None,
    ) -> None:
        self.clock: Callable[[], int] = clock or wall_clock_ms
        self.contacts = ContactBook()
        self.store = EventStore(shard_bits=shard_bits)
        self.journal: Journal = journal or NullJournal()
        self.ready = False
        self._lock = threading.RLock()
        # (type, eventId) -> accept time (ms); insertion order is accept order.
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._ticker: Any = None  # the time-driven worker (core.segments.timing.Ticker)
        from core.segments.registry import SegmentRegistry

        self.segments = SegmentRegistry(self)

    # ------------------------------------------------------------------ events

    def ingest(
        self,
        docs: Sequence[Mapping[str, Any] | InvalidArgument],
        *,
        dry_run: bool = False,
        now_ms: int | None = None,
    ) -> IngestReport:
        """Validates, maps and stores a batch; each event succeeds or fails on its own.

        Events are mapped one by one in order; the accepted ones reach the store together
        at the end of the batch (one append per table), as if stored one by one.
        """
        report = IngestReport()
        outcomes = report.outcomes
        with self._lock:
            now = self.clock() if now_ms is None else now_ms
            stored: list[dict[str, Any]] = []
            touched: dict[str, set[int]] = {}
            batch = None if dry_run else self.store.batch()
            # A batch makes many short-lived containers and no cycles: collector passes
            # during it would only re-scan live objects.
            collecting = gc.isenabled()
            gc.disable()
            try:
                for index, doc in enumerate(docs):
                    outcomes.append(self._ingest_one(index, doc, now, dry_run, stored, touched, batch))
            finally:
                if batch is not None:
                    batch.commit()
                if collecting:
                    gc.enable()
            accepted = duplicates = 0
            for outcome in outcomes:
                if outcome.status == "accepted":
                    accepted += 1
                elif outcome.status == "duplicate":
                    duplicates += 1
            report.accepted, report.duplicates = accepted, duplicates
            report.rejected = len(outcomes) - accepted - duplicates
            ticket = self.journal.append("ingest", {"now_ms": now, "docs": stored}) if stored else _Done()
            if touched:
                report.changes = self.segments.on_events(touched, now)
        ticket.wait()
        return report

    def _ingest_one(
        self,
        index: int,
        doc: Mapping[str, Any] | InvalidArgument,
        now: int,
        dry_run: bool,
        stored: list[dict[str, Any]],
        touched: dict[str, set[int]],
        batch: EventBatch | None = None,
    ) -> EventOutcome:
        try:
            if isinstance(doc, InvalidArgument):
                raise doc
            event = parse_event(doc)
            if event.ts_ms is None:
                event.ts_ms = now
            if event.event_id is not None and self._is_duplicate(event, now):
                return EventOutcome(index, "duplicate")
            mapping = self.store.mapping(event.type)
            contact_id, identifier, created, attached, conflicts, _ = place(
                self.contacts, event, mapping, now, dry_run
            )
        except InvalidArgument as exc:
            return EventOutcome(index, "rejected", error=str(exc), field=exc.field)
        if not dry_run:
            if batch is not None:
                leaves = event.leaves
                batch.add(event.type, contact_id, event.ts_ms, leaf_tuples(event.params) if leaves is None else leaves)
            else:
                self.store.append(event.type, contact_id, event.ts_ms, flatten(event.params))
            if event.event_id is not None:
                self._seen[(event.type, event.event_id)] = now
            stored.append(journal_doc(event))
            if contact_id:
                cids = touched.get(event.type)
                if cids is None:
                    cids = touched[event.type] = set()
                cids.add(contact_id)
        return EventOutcome(index, "accepted", "", "", contact_id, identifier, created, attached, conflicts)

    def _is_duplicate(self, event: Event, now: int) -> bool:
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at < DEDUP_WINDOW_MS:
                break
            self._seen.popitem(last=False)
        return (event.type, event.event_id) in self._seen  # type: ignore[comparison-overlap]

    def seen_window(self) -> list[tuple[str, str, int]]:
        """The eventId dedup window: (type, eventId, accept ms) in accept order."""
        with self._lock:
            return [(t, e, at) for (t, e), at in self._seen.items()]

    def restore_seen_window(self, entries: Sequence[tuple[str, str, int]]) -> None:
        """Replaces the dedup window (recovery from a snapshot)."""
        with self._lock:
            self._seen = OrderedDict(((t, e), int(at)) for t, e, at in entries)

    def event_types(self, key: str | None = None) -> list[EventTypeInfo]:
        if key is not None:
            return [self.store.type_info(key)]
        return self.store.types()

    def event_history(
        self, key: str, page_size: int, page_token: str | None
    ) -> tuple[list[StoredEvent], str | None]:
        if not self.store.has_type(key):
            raise NotFound(f"event type {key!r} does not exist")
        if page_size <= 0:
            page_size = 100
        if page_size > 10_000:
            raise InvalidArgument("page_size", "at most 10000")
        return recent_events(self.store, key, page_size, page_token or None)

    def set_event_type_config(
        self,
        key: str,
        mapping: Mapping[str, str],
        contact_key_name: str,
        retention_days: int,
        *,
        now_ms: int | None = None,
    ) -> EventTypeInfo:
        """Sets a type's custom mapping and retention (0: keep forever); creates the type."""
        if not key or len(key) > 128:
            raise InvalidArgument("event_type_key", "must be 1-128 characters")
        for name, spec in mapping.items():
            if not name:
                raise InvalidArgument("config.mapping", "parameter names must not be empty")
            parse_identifier_spec(spec, f"config.mapping[{name}]")
        if retention_days < 0:
            raise InvalidArgument("config.retention_days", "must not be negative")
        type_mapping = TypeMapping(
            params=dict(mapping), contact_key_name=contact_key_name or TypeMapping().contact_key_name
        )
        with self._lock:
            now = self.clock() if now_ms is None else now_ms
            retention = retention_days * DAY_MS if retention_days else None
            self.store.set_config(key, type_mapping, retention)
            ticket = self.journal.append(
                "type_config",
                {
                    "key": key,
                    "mapping": dict(mapping),
                    "contact_key_name": contact_key_name,
                    "retention_days": retention_days,
                    "now_ms": now,
                },
            )
            if retention and self.store.apply_retention(now):
                self.segments.on_retention(now)
        ticket.wait()
        return self.store.type_info(key)

    def apply_retention(self, now_ms: int | None = None) -> int:
        with self._lock:
            now = self.clock() if now_ms is None else now_ms
            dropped = self.store.apply_retention(now)
            ticket = self.journal.append("retention", {"now_ms": now}) if dropped else _Done()
            if dropped:
                self.segments.on_retention(now)
        ticket.wait()
        return dropped

    # ---------------------------------------------------------------- contacts

    def upsert_contacts(
        self, docs: Sequence[Mapping[str, Any] | InvalidArgument], *, source: str = "Api", now_ms: int | None = None
    ) -> UpsertReport:
        report = UpsertReport()
        with self._lock:
            now = self.clock() if now_ms is None else now_ms
            applied: list[Mapping[str, Any]] = []
            changed: set[int] = set()
            collecting = gc.isenabled()
            gc.disable()  # as in `ingest`: the parsed batch lives to its end and holds no cycles
            try:
                # parsed first, so the identifiers' owners are looked up together
                parsed = [_parsed_contact(doc) for doc in docs]
                self.contacts.prefetch([i for p in parsed if not isinstance(p, InvalidArgument) for i in p[1]])
                for index, (doc, found) in enumerate(zip(docs, parsed)):
                    try:
                        if isinstance(found, InvalidArgument):
                            raise found
                        cid, created, conflicts = self.contacts.upsert_parsed(*found, source, now)
                    except InvalidArgument as exc:
                        report.rejected += 1
                        report.outcomes.append(ContactOutcome(index, error=str(exc), field=exc.field))
                        continue
                    applied.append(doc)
                    changed.add(cid)
                    report.created += created
                    report.updated += not created
                    report.outcomes.append(ContactOutcome(index, cid, created, conflicts=tuple(conflicts)))
            finally:
                if collecting:
                    gc.enable()
            ticket = (
                self.journal.append("upsert", {"now_ms": now, "source": source, "docs": applied})
                if applied
                else _Done()
            )
            if changed:
                self.segments.on_contacts(changed, now, cause="contact")
        ticket.wait()
        return report

    def resolve_ref(self, ref: int | str) -> int:
        """A contact id from an id or a "kind:value" reference; NotFound when nobody has it."""
        target: int | Identifier
        if isinstance(ref, int):
            target = ref
        else:
            target = parse_ref(ref)
        if isinstance(target, int):
            if not self.contacts.exists(target):
                raise NotFound(f"contact {target} does not exist")
            return target
        found = self.contacts.find(target)
        if found is None:
            raise NotFound(f"no contact has {target.ref()}")
        return found

    def get_contact(self, ref: int | str) -> Contact:
        return self.contacts.get(self.resolve_ref(ref))

    def contact_events(self, contact_id: int, limit: int) -> list[StoredEvent]:
        return contact_events(self.store, contact_id, limit)

    def merge_contacts(
        self, into: int | str, source: int | str, *, now_ms: int | None = None
    ) -> tuple[Contact, int]:
        with self._lock:
            into_id, from_id = self.resolve_ref(into), self.resolve_ref(source)
            if into_id == from_id:
                raise InvalidArgument("from", "cannot merge a contact into itself")
            now = self.clock() if now_ms is None else now_ms
            self.contacts.merge(into_id, from_id)
            moved = self.store.move_contact(from_id, into_id)
            ticket = self.journal.append("merge", {"into": into_id, "from": from_id, "now_ms": now})
            self.segments.on_merge(into_id, from_id, now)
            merged = self.contacts.get(into_id)
        ticket.wait()
        return merged, moved

    def erase_contact(self, ref: int | str, *, now_ms: int | None = None) -> tuple[int, int]:
        with self._lock:
            cid = self.resolve_ref(ref)
            now = self.clock() if now_ms is None else now_ms
            self.contacts.erase(cid)
            erased = self.store.erase_contact(cid)
            ticket = self.journal.append("erase", {"contact_id": cid, "now_ms": now})
            self.segments.on_erase(cid, now)
        ticket.wait()
        return cid, erased

    # ---------------------------------------------------------------- segments

    def evaluate(self, definition: Mapping[str, Any] | Any, as_of_ms: int | None = None) -> Any:
        """Members (a BitMap) of an ad-hoc definition at `as_of_ms` (default: now)."""
        return self.segments.evaluate(definition, self.clock() if as_of_ms is None else as_of_ms)

    def put_segment(self, doc: Mapping[str, Any], *, create_only: bool = False) -> tuple[Any, bool]:
        with self._lock:
            now = self.clock()
            info, created = self.segments.put(doc, now, create_only=create_only)
            ticket = self.journal.append("segment_put", {"doc": dict(doc), "now_ms": now})
        ticket.wait()
        return info, created

    def delete_segment(self, name: str, *, now_ms: int | None = None) -> None:
        with self._lock:
            now = self.clock() if now_ms is None else now_ms
            self.segments.delete(name, now)
            ticket = self.journal.append("segment_delete", {"name": name, "now_ms": now})
        ticket.wait()

    # ---------------------------------------------------------------- background

    def start_background(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Starts the time-driven worker: it brings segments to the clock as windows move and
        calendar boundaries pass (at the instants they can change, at least every second)."""
        from core.segments.timing import Ticker

        def logged(exc: BaseException) -> None:
            logging.getLogger("segmentd.segments").error("time-driven segment update failed", exc_info=exc)

        with self._lock:
            if self._ticker is None or not self._ticker.running:
                self._ticker = Ticker(lambda: self.segments.tick(), on_error=on_error or logged)
                self._ticker.start()

    def wake_background(self) -> None:
        """Makes the time-driven worker look at the clock now (after the clock jumped)."""
        ticker = self._ticker
        if ticker is not None:
            ticker.wake()

    def stop_background(self) -> None:
        """Stops the time-driven worker and the store's compactor (idempotent); returns once
        both have stopped. Tails that fall due later merge in the appending thread."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
        self.store.close()

    # ---------------------------------------------------------------- replay

    def replay(self, op: str, payload: Mapping[str, Any]) -> None:
        """Applies one journal record again (recovery). Records nothing."""
        journal, self.journal = self.journal, NullJournal()
        try:
            if op == "ingest":
                self.ingest(payload["docs"], now_ms=payload["now_ms"])
            elif op == "upsert":
                self.upsert_contacts(payload["docs"], source=payload["source"], now_ms=payload["now_ms"])
            elif op == "merge":
                # records written before they carried now_ms: the segments' own instant
                then = payload.get("now_ms", self.segments.at_ms)
                self.merge_contacts(int(payload["into"]), int(payload["from"]), now_ms=then)
            elif op == "erase":
                then = payload.get("now_ms", self.segments.at_ms)
                self.erase_contact(int(payload["contact_id"]), now_ms=then)
            elif op == "type_config":
                self.set_event_type_config(
                    payload["key"],
                    payload["mapping"],
                    payload["contact_key_name"],
                    payload["retention_days"],
                    now_ms=payload.get("now_ms"),
                )
            elif op == "retention":
                self.apply_retention(payload["now_ms"])
            elif op == "segment_put":
                with self._lock:
                    self.segments.put(payload["doc"], payload["now_ms"])
            elif op == "segment_delete":
                self.delete_segment(payload["name"], now_ms=payload.get("now_ms", self.segments.at_ms))
            elif op == "tick":
                self.segments.advance(int(payload["now_ms"]))
            else:
                raise ValueError(f"unknown journal record {op!r}")
        finally:
            self.journal = journal

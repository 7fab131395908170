"""An engine's state as a snapshot tree: captured at one log position, restored into an engine.

`capture` runs under the engine's writer lock and only takes immutable references or copies
(store versions are immutable numpy views; the contact book is captured as state), so the
slow part, `to_tree` and writing the file, runs outside the lock while ingest goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from core.dictionary import StringDictionary
from core.contacts import ContactBook
from core.engine import Engine
from core.errors import SegmentdError
from core.store import EventStore
from snapshots.snapshot import SnapshotReader

IMAGE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Cut:
    """Everything a snapshot holds, as of log sequence number `seq`."""

    seq: int
    taken_ms: int
    contacts: Any  # ContactBook.to_state()
    store: Any  # EventStore.to_state()
    segments: list[dict[str, Any]]  # {"doc", "created_ms", "updated_ms"} per saved segment
    seen: list[list[Any]]  # [type, eventId, accept ms] in accept order
    realtime: Any = None  # SegmentRegistry.to_state(): members, change log, histories


def seen_window(engine: Engine) -> list[list[Any]]:
    """The engine's event-id dedup window as [type, eventId, accept ms] in accept order."""
    return [[type_key, event_id, ms] for type_key, event_id, ms in engine.seen_window()]


def capture(engine: Engine, last_seq: Callable[[], int]) -> Cut:
    """The engine's state at the current log position; takes the engine's writer lock briefly."""
    with engine._lock:
        segments = []
        for name in engine.segments.names():
            saved = engine.segments.get(name)
            segments.append(
                {
                    "doc": engine.segments.to_json(name),
                    "created_ms": saved.created_at_ms,
                    "updated_ms": saved.updated_at_ms,
                }
            )
        return Cut(
            seq=last_seq(),
            taken_ms=engine.clock(),
            contacts=engine.contacts.to_state(),
            store=engine.store.to_state(),
            segments=segments,
            seen=seen_window(engine),
            realtime=engine.segments.to_state(),
        )


def to_tree(cut: Cut) -> dict[str, Any]:
    """The snapshot tree of a cut (plain values, numpy arrays and bitmaps)."""
    return {
        "format": IMAGE_FORMAT,
        "seq": cut.seq,
        "taken_ms": cut.taken_ms,
        "contacts": cut.contacts,
        "store": cut.store,
        "segments": cut.segments,
        "seen": cut.seen,
        **({"realtime": cut.realtime} if cut.realtime is not None else {}),
    }


class ImageError(Exception):
    """A snapshot tree that decodes but cannot be restored."""


def reset(engine: Engine) -> None:
    """Empties an engine (contacts, events, dedup window, segments) before a restore attempt."""
    from core.segments.registry import SegmentRegistry

    with engine._lock:
        engine.contacts = ContactBook()
        engine.store = EventStore(shard_bits=engine.store.shard_bits)
        engine.restore_seen_window([])
        engine.segments = SegmentRegistry(engine)


def restore(engine: Engine, tree: dict[str, Any], reader: SnapshotReader | None = None) -> int:
    """Loads a snapshot tree into an empty engine; returns the sequence number it covers.

    `reader`: the snapshot file still being read; each part is restored once its arrays are
    filled and checked (damage found meanwhile raises its RecoveryError)."""
    if not isinstance(tree, dict) or tree.get("format") != IMAGE_FORMAT:
        raise ImageError(f"snapshot content format {tree.get('format') if isinstance(tree, dict) else '?'} is not {IMAGE_FORMAT}")
    try:
        with engine._lock:
            _restore_locked(engine, tree, reader)
    except (KeyError, TypeError, ValueError, IndexError, SegmentdError) as exc:
        raise ImageError(f"snapshot content cannot be restored: {type(exc).__name__}: {exc}") from None
    return int(tree["seq"])


def _restore_locked(engine: Engine, tree: dict[str, Any], reader: SnapshotReader | None) -> None:
    # Arrays lie in the file in tree order: contacts, then the store (its dictionary first).
    if reader is not None:
        reader.wait_part("contacts")
    engine.contacts = ContactBook.from_state(tree["contacts"])
    dictionary_state = tree["store"]["dictionary"]
    if reader is not None and isinstance(dictionary_state, Mapping):
        reader.wait_arrays(*dictionary_state.values())
    dictionary = StringDictionary.from_state(dictionary_state)
    if reader is not None:
        reader.wait_part("store")
    engine.store = EventStore.from_state(tree["store"], dictionary=dictionary)
    engine.restore_seen_window([(type_key, event_id, int(ms)) for type_key, event_id, ms in tree["seen"]])
    if "realtime" in tree:  # members and change log as they were: replay continues the log
        if reader is not None:
            reader.wait_part("realtime")
        from core.segments.registry import SegmentRegistry

        engine.segments = SegmentRegistry.from_state(engine, tree["realtime"])
    else:
        _restore_segments(engine, tree["segments"])


def _restore_segments(engine: Engine, entries: list[dict[str, Any]]) -> None:
    """Puts saved segments back, each after the segments it refers to, with their times."""
    pending = list(entries)
    now = engine.clock()
    while pending:
        left: list[dict[str, Any]] = []
        failures: list[str] = []
        for entry in pending:
            try:
                engine.segments.put(entry["doc"], now)
            except SegmentdError as exc:  # refers to a segment not restored yet
                left.append(entry)
                failures.append(str(exc))
                continue
            saved = engine.segments.get(entry["doc"]["name"])
            saved.created_at_ms = int(entry["created_ms"])
            saved.updated_at_ms = int(entry["updated_ms"])
        if len(left) == len(pending):
            raise ImageError("segments cannot be restored: " + "; ".join(failures))
        pending = left

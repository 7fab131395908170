"""A digest of an engine's observable state, to compare an engine before and after recovery.

The digest covers, in canonical order: every live contact (identifiers, fields, creation time,
source, max id), every event type's configuration and its events (contact, timestamp, params;
sorted, so storage layout and merge timing do not matter), the event-id dedup window, and every
saved segment's definition, times and members at one instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from core.engine import Engine
from core.history import recent_events

_ALL = 1 << 62  # a page size larger than any type


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def state_lines(engine: Engine, now_ms: int | None = None, *, portable: bool = False) -> list[str]:
    """The digest's input, one canonical line per item (readable when two engines differ).

    `portable` leaves out what the server's clock stamps (contact creation times, dedup accept
    times, segment times), so an engine given the same requests elsewhere compares equal.
    """
    now = engine.clock() if now_ms is None else now_ms
    with engine._lock:
        lines = [f"max_id {engine.contacts.max_id}"]
        for cid in engine.contacts.ids().tolist():
            contact = dataclasses.asdict(engine.contacts.get(cid))
            if portable:
                contact.pop("created_at_ms", None)
            lines.append("contact " + _canonical(contact))
        for key in sorted(engine.store.type_keys()):
            info = engine.store.type_info(key)
            config = {
                "params": dict(info.mapping.params),
                "contact_key_name": info.mapping.contact_key_name,
                "retention_ms": info.retention_ms,
            }
            lines.append(f"type {_canonical(key)} {_canonical(config)}")
            events, _ = recent_events(engine.store, key, _ALL, None)
            rows = sorted(_canonical([e.contact_id, e.ts_ms, e.params]) for e in events)
            lines.extend(f"event {_canonical(key)} {row}" for row in rows)
        lines.extend(f"seen {_canonical([t, e, None if portable else ms])}" for t, e, ms in engine.seen_window())
        for name in engine.segments.names():
            saved = engine.segments.get(name)
            members = engine.segments.evaluate(saved.definition, now)
            times = None if portable else [saved.created_at_ms, saved.updated_at_ms]
            lines.append("segment " + _canonical([engine.segments.to_json(name), times]))
            lines.append(f"members {_canonical(name)} {_canonical(list(members))}")
    return lines


def state_digest(engine: Engine, now_ms: int | None = None, *, portable: bool = False) -> str:
    """SHA-256 (hex) of `state_lines`: equal digests mean equal observable state."""
    digest = hashlib.sha256()
    for line in state_lines(engine, now_ms, portable=portable):
        digest.update(line.encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()

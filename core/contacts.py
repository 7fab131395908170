"""The contact book: dense contact ids, identifier -> contact maps, and contact fields.

Ids are assigned densely from 1 and never reused. Every identifier belongs to at most one
contact; a contact holds at most one externalId, email, phone and value per key name, and
any number of push tokens and anonymous keys. Fields are kept column-wise (field name ->
{contact id -> value}) so a segment reads one field without touching every contact.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from core.contact_docs import RESERVED_FIELDS, SOURCES, check_fields, parse_contact_doc, source_code
from core.contact_state import Slot, StoredMaps, build_maps, checked_maps
from core.errors import InvalidArgument, NotFound
from core.field_values import FieldValues
from core.identifier_slots import IdentifierSlot
from core.identifiers import SINGLE_VALUED, IdKind, Identifier

MULTI_VALUED = (IdKind.PUSH_TOKEN, IdKind.ANONYMOUS)
STATE_FORMAT = 2  # identifiers and field strings as offsets and UTF-8 bytes

_CONTACT_ID = IdKind.CONTACT_ID  # enum members as module constants: hot paths compare them
_KEY = IdKind.KEY


@dataclass(slots=True)
class Contact:
    """A read-only copy of one contact."""

    contact_id: int
    external_id: str | None
    email: str | None
    phone: str | None
    push_tokens: list[str]
    keys: dict[str, str]
    anonymous_keys: list[str]
    fields: dict[str, Any]
    created_at_ms: int
    source: str  # "Event" | "Import" | "Api"


def _slot(ident: Identifier) -> Slot:
    return (ident.kind, ident.key_name)


class ContactBook:
    """Dense ids from 1, never reused; identifier -> id maps; fields."""

    def __init__(self) -> None:
        self._max_id = 0
        self._live = 0
        self._conflicts = 0
        # Per-contact arrays indexed by id, valid for ids 1..max_id; capacity grows by doubling.
        self._alive = np.zeros(64, dtype=np.bool_)
        self._created_ms = np.zeros(64, dtype=np.int64)
        self._source = np.zeros(64, dtype=np.uint8)
        self._slots: dict[Slot, IdentifierSlot] = {}  # identifier values and their contacts
        self._fields: dict[str, FieldValues] = {}  # field name -> its value per contact id
        # A restored book holds its checked entries here until the two maps above are built
        # from them: on first use (every method reading a map calls `_ready` first) or by
        # `finish_restore`; the first caller builds under `_build_lock`, others wait.
        self._stored: StoredMaps | None = None
        self._build_lock = threading.Lock()
        self.version = 0  # bumped by every change to contacts, fields or identifiers (cache key)

    # ------------------------------------------------------------ restored maps

    def _ready(self) -> None:
        """Builds the maps of a restored book if that is still to be done."""
        if self._stored is not None:
            self._build()

    def _build(self) -> None:
        with self._build_lock:
            stored = self._stored
            if stored is None:  # built meanwhile by another thread
                return
            maps = build_maps(stored)
            self._slots, self._fields = maps.slots, maps.fields
            self._stored = None  # last: a reader seeing None sees the maps

    def finish_restore(self) -> None:
        """Builds the maps of a restored book now, if that is still to be done (any thread)."""
        self._ready()

    # ------------------------------------------------------------ reading

    def __len__(self) -> int:
        return self._live

    @property
    def max_id(self) -> int:
        """The highest id ever assigned (0 if none)."""
        return self._max_id

    @property
    def conflicts(self) -> int:
        """Identifier conflicts seen so far (an identifier of one contact offered to another)."""
        return self._conflicts

    def exists(self, contact_id: int) -> bool:
        return 0 < contact_id <= self._max_id and bool(self._alive[contact_id])

    def _require(self, contact_id: int) -> None:
        if not self.exists(contact_id):
            raise NotFound(f"contact {contact_id} does not exist")

    def find(self, ident: Identifier) -> int | None:
        """The contact holding `ident`; for a contactId, that id if the contact exists."""
        if ident.kind is _CONTACT_ID:
            cid = int(ident.value)
            return cid if self.exists(cid) else None
        if self._stored is not None:  # inline `_ready`: a hot path
            self._build()
        slot = self._slots.get((ident.kind, ident.key_name))
        return None if slot is None else slot.owner(ident.value)

    def owner_of(self, parts: tuple[IdKind, str, str]) -> int | None:
        """`find` of the identifier with these (kind, value, key name) fields."""
        kind, value, key_name = parts
        if kind is _CONTACT_ID:
            cid = int(value)
            return cid if 0 < cid <= self._max_id and self._alive[cid] else None
        if self._stored is not None:  # inline `_ready`: a hot path
            self._build()
        slot = self._slots.get((kind, key_name))
        return None if slot is None else slot.owner(value)

    def prefetch(self, idents: Sequence[Identifier]) -> None:
        """Looks up these identifiers' owners together (one probe of each slot's table), so
        the `find` calls of a batch about to name them are answered from memory."""
        self._ready()
        by_slot: dict[Slot, list[str]] = {}
        for ident in idents:
            if ident.kind is not _CONTACT_ID:
                by_slot.setdefault((ident.kind, ident.key_name), []).append(ident.value)
        for key, values in by_slot.items():
            slot = self._slots.get(key)
            if slot is not None:
                slot.prefetch(values)

    def value_of(self, contact_id: int, kind: IdKind, key_name: str = "") -> str | None:
        """The contact's identifier of a single-valued kind (KEY: of that key name), or None."""
        self._ready()
        slot = self._slots.get((kind, key_name if kind is _KEY else ""))
        return None if slot is None else slot.value_of(contact_id)

    def get(self, contact_id: int) -> Contact:
        """A copy of the contact; NotFound when it does not exist."""
        self._ready()
        self._require(contact_id)
        keys = {
            name: value
            for (kind, name), slot in self._slots.items()
            if kind is _KEY and (value := slot.value_of(contact_id)) is not None
        }
        fields = {name: got[1] for name, values in self._fields.items() if (got := values.get(contact_id))[0]}
        return Contact(
            contact_id=contact_id,
            external_id=self.value_of(contact_id, IdKind.EXTERNAL_ID),
            email=self.value_of(contact_id, IdKind.EMAIL),
            phone=self.value_of(contact_id, IdKind.PHONE),
            push_tokens=self._values_of(contact_id, IdKind.PUSH_TOKEN),
            keys=keys,
            anonymous_keys=self._values_of(contact_id, IdKind.ANONYMOUS),
            fields=fields,
            created_at_ms=int(self._created_ms[contact_id]),
            source=SOURCES[int(self._source[contact_id]) - 1],
        )

    def identifiers(self, contact_id: int) -> list[Identifier]:
        """Every identifier the contact holds (without its contact id)."""
        self._ready()
        self._require(contact_id)
        out = [
            Identifier(kind, value, name)
            for (kind, name), slot in self._slots.items()
            if not slot.multi and (value := slot.value_of(contact_id)) is not None
        ]
        for (kind, _), slot in self._slots.items():
            if slot.multi:
                out.extend(Identifier(kind, v) for v in slot.values_of(contact_id))
        return out

    def _values_of(self, contact_id: int, kind: IdKind) -> list[str]:
        slot = self._slots.get((kind, ""))
        return [] if slot is None else slot.values_of(contact_id)

    def ids(self) -> np.ndarray:
        """Sorted ids (uint32) of the live contacts."""
        return np.flatnonzero(self._alive[: self._max_id + 1]).astype(np.uint32)

    def has_identifier_mask(self, kind: IdKind, key_name: str = "") -> np.ndarray:
        """bool[max_id + 1]: the contact holds an identifier of `kind` (KEY with key_name "":
        any contact key)."""
        self._ready()
        mask = np.zeros(self._max_id + 1, dtype=np.bool_)
        kind = IdKind(kind)
        if kind is IdKind.CONTACT_ID:
            mask[:] = self._alive[: self._max_id + 1]
            return mask
        if kind is IdKind.KEY and not key_name:
            slots = [slot for (k, _), slot in self._slots.items() if k is IdKind.KEY]
        else:
            slots = [slot for slot in (self._slots.get((kind, key_name if kind is IdKind.KEY else "")),) if slot]
        for slot in slots:
            mask |= slot.holders(mask.shape[0])
        return mask

    def field_names(self) -> list[str]:
        """Names of the fields some contact has, plus createdAt and source."""
        self._ready()
        return [name for name, values in self._fields.items() if len(values)] + list(RESERVED_FIELDS)

    def field_values(self, name: str) -> dict[int, Any]:
        """Contact id -> value of one field, for the live contacts that have it.

        ``createdAt`` is epoch milliseconds and ``source`` the source name, for every contact.
        """
        ids, values = self.field_entries(name)
        return dict(zip(ids.tolist(), values))

    def field_entries(self, name: str) -> tuple[np.ndarray, list[Any]]:
        """`field_values` as (contact ids ascending, their values)."""
        self._ready()
        if name == "createdAt":
            ids = self.ids().astype(np.int64)
            return ids, self._created_ms[ids].tolist()
        if name == "source":
            ids = self.ids().astype(np.int64)
            return ids, [SOURCES[code - 1] for code in self._source[ids].tolist()]
        values = self._fields.get(name)
        if values is None:
            return np.zeros(0, dtype=np.int64), []
        return values.entries()

    def field_of(self, contact_id: int, name: str) -> tuple[bool, Any]:
        """(whether the live contact has the field, its value), as `field_values` has it."""
        if not self.exists(contact_id):
            return False, None
        if name == "createdAt":
            return True, int(self._created_ms[contact_id])
        if name == "source":
            return True, SOURCES[int(self._source[contact_id]) - 1]
        self._ready()
        values = self._fields.get(name)
        return (False, None) if values is None else values.get(contact_id)

    # ------------------------------------------------------------ identifier plumbing

    def _put(self, contact_id: int, ident: Identifier) -> None:
        """Gives a free identifier to a contact (a single-valued slot must be empty)."""
        self._ready()
        self.version += 1
        key = (ident.kind, ident.key_name)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = IdentifierSlot(multi=ident.kind in MULTI_VALUED)
        slot.put(contact_id, ident.value)

    def _drop(self, contact_id: int, key: Slot) -> list[str]:
        """Releases the contact's identifiers of one slot; returns their values."""
        self._ready()
        self.version += 1
        slot = self._slots.get(key)
        return [] if slot is None else slot.drop(contact_id)

    def can_attach(self, contact_id: int, ident: Identifier) -> bool:
        """Whether attach would succeed (or the contact already holds `ident`)."""
        if ident.kind is IdKind.CONTACT_ID:
            return int(ident.value) == contact_id
        owner = self.find(ident)
        if owner is not None:
            return owner == contact_id
        if ident.kind in SINGLE_VALUED:
            return self.value_of(contact_id, ident.kind, ident.key_name) is None
        return True

    def attach(self, contact_id: int, ident: Identifier) -> bool:
        """Gives `ident` to the contact. False, and no change, when it belongs to another
        contact or the contact already holds a different one of a single-valued kind."""
        self._require(contact_id)
        if not self.can_attach(contact_id, ident):
            return False
        if ident.kind is not IdKind.CONTACT_ID and self.find(ident) is None:
            self._put(contact_id, ident)
        return True

    def record_conflicts(self, count: int) -> None:
        """Counts identifier conflicts found by a caller (event mapping)."""
        self._conflicts += count

    # ------------------------------------------------------------ writing

    def _grow(self, needed: int) -> None:
        size = len(self._alive)
        if needed < size:
            return
        while size <= needed:
            size *= 2
        for name in ("_alive", "_created_ms", "_source"):
            old = getattr(self, name)
            new = np.zeros(size, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def create(
        self,
        idents: Sequence[Identifier],
        source: str,
        now_ms: int,
        fields: Mapping[str, Any] | None = None,
    ) -> int:
        """A new contact holding those of `idents` it can (in order); returns its id."""
        code = source_code(source)
        updates = check_fields(fields) if fields else {}
        cid = self._max_id + 1
        self._grow(cid)
        self._max_id = cid
        self._live += 1
        self._alive[cid] = True
        self._created_ms[cid] = now_ms
        self._source[cid] = code
        for ident in idents:
            if ident.kind is _CONTACT_ID or self.find(ident) is not None:
                continue
            if ident.kind in SINGLE_VALUED and self.value_of(cid, ident.kind, ident.key_name) is not None:
                continue
            self._put(cid, ident)
        self._set_fields(cid, updates)
        return cid

    def _set_fields(self, contact_id: int, updates: Mapping[str, Any]) -> None:
        self._ready()
        self.version += 1
        for name, value in updates.items():
            values = self._fields.get(name)
            if value is None:
                if values is not None:
                    values.remove(contact_id)
            else:
                if values is None:
                    values = self._fields[name] = FieldValues()
                values.set(contact_id, value)

    def upsert(self, doc: Mapping[str, Any], source: str, now_ms: int) -> tuple[int, bool, list[str]]:
        """Finds the contact by any identifier of `doc` and updates it, or creates one.

        Returns (id, created, refs of identifiers that belong to another contact). The first
        identifier that finds a contact decides (contactId, externalId, email, phone,
        pushTokens, keys); externalId, email, phone and keys replace the contact's own when
        free; fields merge (null removes one).
        """
        return self.upsert_parsed(*parse_contact_doc(doc), source, now_ms)

    def upsert_parsed(
        self, given_id: int | None, idents: Sequence[Identifier], updates: Mapping[str, Any], source: str, now_ms: int
    ) -> tuple[int, bool, list[str]]:
        """`upsert` of a document `parse_contact_doc` has parsed."""
        code = source_code(source)
        if given_id is not None and not self.exists(given_id):
            raise InvalidArgument("contactId", f"contact {given_id} does not exist")
        owners = [self.find(ident) for ident in idents]
        target = given_id
        if target is None:
            target = next((owner for owner in owners if owner is not None), None)
        created = target is None
        if target is None:
            target = self.create((), SOURCES[code - 1], now_ms)
        conflicts: list[str] = []
        for ident in idents:
            owner = self.find(ident)  # afresh: the doc may repeat an identifier
            if owner == target:
                continue
            if owner is not None:
                conflicts.append(ident.ref())
                continue
            if ident.kind in SINGLE_VALUED and not created:  # a new contact holds none yet
                self._drop(target, _slot(ident))
            self._put(target, ident)
        self._set_fields(target, updates)
        self._conflicts += len(conflicts)
        return target, created, conflicts

    def merge(self, into_id: int, from_id: int) -> None:
        """Moves from's identifiers and fields to into (into's win) and removes from.

        A single-valued identifier of from whose slot into already fills is released (and
        counted as a conflict).
        """
        self._ready()
        if into_id == from_id:
            raise InvalidArgument("from", "cannot merge a contact into itself")
        self._require(into_id)
        self._require(from_id)
        for key, slot in list(self._slots.items()):
            for value in self._drop(from_id, key):
                if slot.multi or slot.value_of(into_id) is None:
                    self._put(into_id, Identifier(key[0], value, key[1]))
                else:
                    self._conflicts += 1
        for values in self._fields.values():
            present, value = values.get(from_id)
            if present:
                values.remove(from_id)
                if not values.get(into_id)[0]:
                    values.set(into_id, value)
        self._kill(from_id)

    def erase(self, contact_id: int) -> None:
        """Removes the contact, its fields and identifiers (released); the id stays used."""
        self._ready()
        self._require(contact_id)
        for key in list(self._slots):
            self._drop(contact_id, key)
        for values in self._fields.values():
            values.remove(contact_id)
        self._kill(contact_id)

    def _kill(self, contact_id: int) -> None:
        self.version += 1
        self._alive[contact_id] = False
        self._created_ms[contact_id] = 0
        self._source[contact_id] = 0
        self._live -= 1

    # ------------------------------------------------------------ snapshots

    def to_state(self) -> dict[str, Any]:
        """Plain data (dict, list, int, str, numpy arrays) that from_state restores exactly."""
        self._ready()
        n = self._max_id + 1
        identifiers: list[dict[str, Any]] = []
        for multi in (False, True):  # single-valued slots first
            for (kind, name), slot in self._slots.items():
                if slot.multi is multi:
                    ids, offsets, data = slot.arrays()
                    identifiers.append({"kind": kind.value, "key_name": name, "ids": ids, "offsets": offsets, "data": data})
        fields = []
        for name, values in self._fields.items():
            ids, tags, payload, offsets, data = values.arrays()
            fields.append({"name": name, "ids": ids, "tags": tags, "payload": payload, "offsets": offsets, "data": data})
        return {
            "format": STATE_FORMAT,
            "max_id": self._max_id,
            "conflicts": self._conflicts,
            "alive": self._alive[:n].copy(),
            "created_at_ms": self._created_ms[:n].copy(),
            "source": self._source[:n].copy(),
            "identifiers": identifiers,
            "fields": fields,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "ContactBook":
        """The book `to_state` described; InvalidArgument("state", ...) on a malformed state."""
        try:
            return cls._restore(state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidArgument("state", f"malformed contact book state ({exc!r})") from None

    @classmethod
    def _restore(cls, state: Mapping[str, Any]) -> "ContactBook":
        if state["format"] not in (1, STATE_FORMAT):  # 1: identifier and field values as lists
            raise ValueError(f"unknown format {state['format']}")
        book = cls()
        max_id = int(state["max_id"])
        n = max_id + 1
        alive = np.asarray(state["alive"], dtype=np.bool_)
        created = np.asarray(state["created_at_ms"], dtype=np.int64)
        source = np.asarray(state["source"], dtype=np.uint8)
        if alive.shape != (n,) or created.shape != (n,) or source.shape != (n,):
            raise ValueError("per-contact arrays do not have max_id + 1 entries")
        if alive[0] or int(source[alive].max(initial=1)) > len(SOURCES) or not source[alive].all():
            raise ValueError("bad alive/source entries")
        book._grow(n)
        book._max_id = max_id
        book._live = int(alive.sum())
        book._conflicts = int(state["conflicts"])
        book._alive[:n] = alive
        book._created_ms[:n] = created
        book._source[:n] = source
        book._stored = checked_maps(state, book._all_alive)  # maps built on first use
        return book

    def _all_alive(self, ids: np.ndarray) -> bool:
        """Whether every id names a live contact."""
        if ids.size == 0:
            return True
        if int(ids.min()) < 1 or int(ids.max()) > self._max_id:
            return False
        return bool(self._alive[ids].all())

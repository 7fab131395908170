"""The contact book's identifier and field maps as restored from a snapshot state.

Restoring a book is split in two so a restart answers sooner: `checked_maps` checks every
identifier and field entry of a state at once (in compiled loops and numpy, no per-contact
Python), and `build_maps` later turns the checked entries into the book's identifier slots
and field values, which is what costs (hashing millions of strings into tables). A state
`checked_maps` accepts always builds, into exactly the maps the book had when it wrote it.

Format 2 (written now) holds identifier values and field strings as offsets into UTF-8
bytes, fields as type tags and 64-bit payloads; format 1 (earlier releases) held them as
lists of Python values and still restores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.field_values import FieldValues, check_arrays
from core.identifier_slots import IdentifierSlot
from core.identifiers import SINGLE_VALUED, IdKind
from core.texts import check_texts, encoded

Slot = tuple[IdKind, str]  # (kind, key name); key name is "" except for KEY


@dataclass(frozen=True, slots=True)
class StoredIdentifiers:
    """The identifiers of one slot: value i, data[offsets[i]:offsets[i+1]], belongs to contact ids[i]."""

    kind: IdKind
    key_name: str
    ids: np.ndarray  # int64, live contact ids
    offsets: np.ndarray  # int64
    data: np.ndarray  # uint8: the values' UTF-8 bytes; non-empty, distinct


@dataclass(frozen=True, slots=True)
class StoredField:
    """One field: values[i] (or, from a format-2 state, the entry i of `arrays`) is the value
    of contact ids[i]."""

    name: str
    ids: np.ndarray  # int64, live contact ids
    values: list[Any] | None
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None  # tags, payload, offsets, data


@dataclass(frozen=True, slots=True)
class StoredMaps:
    identifiers: tuple[StoredIdentifiers, ...]  # in state order
    fields: tuple[StoredField, ...]  # in state order


@dataclass(slots=True)
class BookMaps:
    """The maps of a contact book (see ContactBook.__init__ for their shapes)."""

    slots: dict[Slot, IdentifierSlot]
    fields: dict[str, FieldValues]


_FIELD_TYPES = {str, int, float, bool}


def checked_maps(state: Mapping[str, Any], all_alive: Callable[[np.ndarray], bool]) -> StoredMaps:
    """The identifier and field entries of a book state, checked; raises ValueError (or
    KeyError, TypeError) on a malformed one. `all_alive(ids)`: every id names a live contact."""
    identifiers = []
    slots: set[Slot] = set()
    for entry in state["identifiers"]:
        kind = IdKind(entry["kind"])
        name = str(entry["key_name"])
        ids = np.asarray(entry["ids"], dtype=np.int64)
        if "values" in entry:  # format 1: a list of str
            values = list(entry["values"])
            if ids.shape != (len(values),) or not all_alive(ids):
                raise ValueError(f"{kind.value}: ids and values do not match live contacts")
            if values and (set(map(type, values)) != {str} or not all(values)):  # C loops, no genexpr
                raise ValueError(f"{kind.value}: values must be non-empty strings")
            if not _distinct(values):
                raise ValueError(f"{kind.value}: an identifier appears twice")
            data, offsets = encoded(values)
        else:
            offsets, data = check_texts(entry["offsets"], entry["data"], kind.value)
            if ids.shape != (offsets.shape[0] - 1,) or not all_alive(ids):
                raise ValueError(f"{kind.value}: ids and values do not match live contacts")
        if (kind, name) in slots:
            raise ValueError(f"{kind.value}: an identifier appears twice")
        if kind in SINGLE_VALUED and ids.shape[0] and int(np.bincount(ids).max()) > 1:  # ids checked >= 1
            raise ValueError(f"{kind.value}: a contact holds two values")
        slots.add((kind, name))
        identifiers.append(StoredIdentifiers(kind, name, ids, offsets, data))
    fields = []
    for entry in state["fields"]:
        what = f"field {entry['name']!r}"
        ids = np.asarray(entry["ids"], dtype=np.int64)
        if not all_alive(ids):
            raise ValueError(f"{what}: bad entries")
        if ids.shape[0] and int(np.bincount(ids).max()) > 1:  # ids checked >= 1
            raise ValueError(f"{what}: a contact appears twice")
        if "values" not in entry:  # format 2: arrays
            offsets, data = check_texts(entry["offsets"], entry["data"], what, empty=True)
            tags, payload = check_arrays(entry["tags"], entry["payload"], offsets.shape[0] - 1, what)
            if tags.shape != ids.shape:
                raise ValueError(f"{what}: bad entries")
            fields.append(StoredField(str(entry["name"]), ids, None, (tags, payload, offsets, data)))
            continue
        values = list(entry["values"])
        if ids.shape != (len(values),):
            raise ValueError(f"{what}: bad entries")
        if not set(map(type, values)) <= _FIELD_TYPES:
            raise ValueError(f"{what}: values must be strings, numbers or booleans")
        if int in set(map(type, values)) and not all(-(2**63) < v < 2**63 for v in values if type(v) is int):
            raise ValueError(f"{what}: integers must fit in 64 bits")
        fields.append(StoredField(str(entry["name"]), ids, values, None))
    return StoredMaps(tuple(identifiers), tuple(fields))


def _distinct(values: list[str]) -> bool:
    """Whether no string repeats. Python's string hashes, sorted, decide unless two collide."""
    hashes = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
    hashes.sort()
    if not bool((hashes[1:] == hashes[:-1]).any()):
        return True
    return len(set(values)) == len(values)


def build_maps(stored: StoredMaps) -> BookMaps:
    """The book's maps for checked entries, in the order the state lists them."""
    maps = BookMaps({}, {})
    for entry in stored.identifiers:
        multi = entry.kind not in SINGLE_VALUED
        maps.slots[(entry.kind, entry.key_name)] = IdentifierSlot.from_arrays(multi, entry.ids, entry.offsets, entry.data)
    for field in stored.fields:
        if field.arrays is not None:
            maps.fields[field.name] = FieldValues.from_arrays(field.ids, *field.arrays)
        else:
            maps.fields[field.name] = FieldValues.of(field.ids, field.values or [])
    return maps

"""One contact field's values, by contact id: a type tag and a 64-bit payload per contact.

Strings are held once per distinct value in a `TextTable` with a reference count per string
(the payload is the string's id); integers are the payload itself, floats its bits. A field
costs 9 bytes per contact id plus its distinct strings, where a dict entry with its value
object cost 60-150. Values come back with the type they were given (1 and 1.0 stay apart).
The ids of recently set strings are remembered in a bounded dict (most fields have few
distinct strings: cities, tiers), so setting one seldom probes the table.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.texts import TextTable

ABSENT, TEXT, INT, FLOAT, FALSE, TRUE = range(6)
RECENT_MAX = 1 << 14  # string ids remembered per field (dates of birth: about 20k distinct)


def _tag_of(value: Any) -> int:
    t = type(value)
    if t is str:
        return TEXT
    if t is bool:
        return TRUE if value else FALSE
    if t is int:
        return INT
    if t is float:
        return FLOAT
    raise TypeError(f"field values must be str, int, float or bool, not {t.__name__}")


def check_arrays(tags: np.ndarray, payload: np.ndarray, texts: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(tags uint8, payload int64) of a field's `arrays`, checked against `texts` strings:
    known tags, TEXT payloads naming one of the strings, finite floats, 0 for booleans.
    Raises ValueError naming `what`."""
    tags = np.ascontiguousarray(tags, dtype=np.uint8)
    payload = np.ascontiguousarray(payload, dtype=np.int64)
    if tags.shape != payload.shape or tags.ndim != 1:
        raise ValueError(f"{what}: tags and payloads must match")
    if bool(((tags < TEXT) | (tags > TRUE)).any()):
        raise ValueError(f"{what}: unknown value tag")
    text = payload[tags == TEXT]
    if bool(((text < 0) | (text >= texts)).any()):
        raise ValueError(f"{what}: a string index is out of range")
    if not bool(np.isfinite(payload[tags == FLOAT].view(np.float64)).all()):
        raise ValueError(f"{what}: numbers must be finite")
    if bool((payload[(tags == FALSE) | (tags == TRUE)] != 0).any()):
        raise ValueError(f"{what}: a boolean carries a payload")
    return tags, payload


def _grown(arr: np.ndarray, index: int) -> np.ndarray:
    """`arr`, or a copy grown (by doubling, zero-filled) to hold `index`."""
    if index < arr.shape[0]:
        return arr
    size = max(arr.shape[0], 8)
    while size <= index:
        size *= 2
    out = np.zeros(size, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class FieldValues:
    """The values of one field (see the module docstring)."""

    __slots__ = ("_tag", "_payload", "_texts", "_refs", "_count", "_recent")

    def __init__(self) -> None:
        self._tag = np.zeros(8, dtype=np.uint8)  # per contact id
        self._payload = np.zeros(8, dtype=np.int64)  # per contact id: text id, int or float bits
        self._texts = TextTable()
        self._refs = np.zeros(8, dtype=np.int32)  # per text id: contacts holding it
        self._count = 0  # contacts holding a value
        self._recent: dict[str, int] = {}  # string -> its live text id, for strings set lately

    def __len__(self) -> int:
        return self._count

    def get(self, contact_id: int) -> tuple[bool, Any]:
        """(whether the contact has the field, its value)."""
        if contact_id >= self._tag.shape[0]:
            return False, None
        tag = int(self._tag[contact_id])
        if tag == ABSENT:
            return False, None
        return True, self._value(tag, int(self._payload[contact_id]))

    def _value(self, tag: int, payload: int) -> Any:
        if tag == TEXT:
            return self._texts.get(payload)
        if tag == INT:
            return payload
        if tag == FLOAT:
            return float(np.int64(payload).view(np.float64))
        return tag == TRUE

    def set(self, contact_id: int, value: Any) -> None:
        """Gives the contact `value` (str, int, float or bool), replacing its own."""
        tag = _tag_of(value)
        if contact_id < self._tag.shape[0]:
            if self._tag[contact_id]:
                self.remove(contact_id)
        else:
            self._tag = _grown(self._tag, contact_id)
            self._payload = _grown(self._payload, contact_id)
        if tag == TEXT:
            tid = self._recent.get(value)
            if tid is None:
                tid = self._texts.add(value)
                if len(self._recent) >= RECENT_MAX:
                    self._recent.clear()
                self._recent[value] = tid
            if tid >= self._refs.shape[0]:
                self._refs = _grown(self._refs, tid)
            self._refs[tid] += 1
            payload = tid
        elif tag == INT:
            payload = value
        elif tag == FLOAT:
            payload = int(np.float64(value).view(np.int64))
        else:
            payload = 0
        self._tag[contact_id] = tag
        self._payload[contact_id] = payload
        self._count += 1

    def remove(self, contact_id: int) -> None:
        """Takes the field from the contact (nothing when it has none)."""
        if contact_id >= self._tag.shape[0] or self._tag[contact_id] == ABSENT:
            return
        if self._tag[contact_id] == TEXT:
            tid = int(self._payload[contact_id])
            self._refs[tid] -= 1
            if self._refs[tid] == 0:
                self._recent.pop(self._texts.get(tid), None)  # type: ignore[arg-type]  # live
                self._texts.remove_many(np.array([tid], dtype=np.int64))
        self._tag[contact_id] = ABSENT
        self._payload[contact_id] = 0
        self._count -= 1

    def entries(self) -> tuple[np.ndarray, list[Any]]:
        """(contact ids ascending, their values)."""
        ids = np.flatnonzero(self._tag)
        tags = self._tag[ids]
        payload = self._payload[ids]
        out: list[Any] = [None] * ids.shape[0]
        for tag in np.unique(tags).tolist():
            at = np.flatnonzero(tags == tag)
            picked = payload[at]
            if tag == TEXT:
                values: list[Any] = self._texts.strings(picked)
            elif tag == INT:
                values = picked.tolist()
            elif tag == FLOAT:
                values = picked.view(np.float64).tolist()
            else:
                values = [tag == TRUE] * at.shape[0]
            if at.shape[0] == ids.shape[0]:
                out = values
            else:
                for j, v in zip(at.tolist(), values):
                    out[j] = v
        return ids, out

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(contact ids ascending, tags, payloads, offsets, bytes): the field as arrays. A TEXT
        payload is the index of its string among the ones (offsets, bytes) list."""
        ids = np.flatnonzero(self._tag)
        tags = self._tag[ids]
        payload = self._payload[ids].copy()
        tids = np.flatnonzero(self._texts.alive())
        text = tags == TEXT
        payload[text] = np.searchsorted(tids, payload[text])
        return (ids.astype(np.uint32), tags, payload, *self._texts.packed(tids))

    @classmethod
    def from_arrays(cls, ids: np.ndarray, tags: np.ndarray, payload: np.ndarray,
                    offsets: np.ndarray, data: np.ndarray) -> "FieldValues":
        """The field `arrays` described (checked by `check_arrays`)."""
        field = cls()
        ids = np.asarray(ids, dtype=np.int64)
        k = offsets.shape[0] - 1
        field._texts = TextTable.from_arrays(k, np.arange(k, dtype=np.int64), offsets, data)
        if ids.shape[0] == 0:
            return field
        top = int(ids.max())
        field._tag = _grown(np.zeros(0, np.uint8), top)
        field._payload = _grown(np.zeros(0, np.int64), top)
        field._tag[ids] = tags
        field._payload[ids] = payload
        text = payload[tags == TEXT]
        field._refs = np.bincount(text, minlength=max(k, 8)).astype(np.int32)
        field._count = ids.shape[0]
        return field

    @classmethod
    def of(cls, ids: np.ndarray, values: Sequence[Any]) -> "FieldValues":
        """The field holding values[i] for contact ids[i] (distinct ids)."""
        field = cls()
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.shape[0]
        if n == 0:
            return field
        top = int(ids.max())
        field._tag = _grown(np.zeros(0, np.uint8), top)
        field._payload = _grown(np.zeros(0, np.int64), top)
        tags = np.fromiter(map(_tag_of, values), dtype=np.uint8, count=n)
        field._tag[ids] = tags
        for tag in np.unique(tags).tolist():
            at = np.flatnonzero(tags == tag)
            picked = [values[j] for j in at.tolist()] if at.shape[0] < n else list(values)
            if tag == TEXT:
                tids = field._texts.add_many(picked)
                field._refs = np.bincount(tids, minlength=8).astype(np.int32)
                field._payload[ids[at]] = tids
            elif tag == INT:
                field._payload[ids[at]] = np.array(picked, dtype=np.int64)
            elif tag == FLOAT:
                field._payload[ids[at]] = np.array(picked, dtype=np.float64).view(np.int64)
        field._count = n
        return field

"""Columnar views of contact fields and identifier holders, cached per contact book.

A FieldColumn lays one field out by contact id (slot i is contact i, slots 0..max_id): a
kind code per slot and, per kind, its value in a parallel array. Non-date strings are
dictionary-encoded with the dictionary sorted in code-point order, so code order is string
order. Views are built lazily on first use and rebuilt when the book has changed since
(ContactBook.version, max_id and size form the key); an evaluation never sees a stale one.
"""

from __future__ import annotations

import array
import datetime as dt
import math
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import numpy as np
from pyroaring import BitMap

from core.contacts import ContactBook
from core.identifiers import IdKind

# kind codes (uint8): what the field holds for a contact
NONE = 0  # no value
NUMBER = 1  # int or float (not bool): `number`
STRING = 2  # a string that is not a date: `code` into `strings`
BOOL = 3  # `number` is 1.0 / 0.0
DATE = 4  # a "YYYY-MM-DD" string naming a real date: `day`, `month_day`
OTHER = 5  # a value of another type: present, comparable with nothing

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")  # ASCII digits only
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMPTY_F = np.zeros(0, np.float64)


def text_date(x: Any) -> dt.date | None:
    """x as a date when it is a YYYY-MM-DD string naming a real calendar date."""
    if isinstance(x, str) and _DATE_TEXT.fullmatch(x):
        try:
            return dt.date.fromisoformat(x)
        except ValueError:
            return None
    return None


def text_number(x: str) -> float:
    """The finite number a string spells (ASCII decimal), else NaN."""
    if _NUMBER_TEXT.fullmatch(x):
        v = float(x)
        if math.isfinite(v):
            return v
    return math.nan


def month_day(month: int, day: int) -> int:
    """The month-day ordinal of a calendar day: month * 32 + day (1..12, 1..31)."""
    return month * 32 + day


@dataclass(frozen=True, slots=True)
class FieldColumn:
    """One field of every contact id; the value arrays of kinds the field lacks are empty."""

    name: str
    kind: np.ndarray  # uint8[max_id + 1], NONE for dead ids and contacts without the field
    number: np.ndarray  # float64[max_id + 1] (NUMBER, BOOL slots) or empty
    day: np.ndarray  # int32[max_id + 1] days since 1970-01-01 (DATE slots) or empty
    month_day: np.ndarray  # uint16[max_id + 1] month * 32 + day (DATE slots) or empty
    code: np.ndarray  # int32[max_id + 1] index into `strings` (STRING slots) or empty
    strings: tuple[str, ...]  # distinct non-date strings, sorted
    string_number: np.ndarray  # float64 per entry of `strings`: the number it spells, or NaN

    def holders(self) -> np.ndarray:
        """Sorted ids (uint32) of the contacts that have the field."""
        return np.flatnonzero(self.kind != NONE).astype(np.uint32)

    def has(self, kind: int) -> bool:
        """Whether some contact holds a value of `kind`."""
        if kind in (NUMBER, BOOL):
            return self.number.shape[0] > 0 and bool(np.any(self.kind == kind))
        if kind == DATE:
            return self.day.shape[0] > 0
        if kind == STRING:
            return len(self.strings) > 0
        return bool(np.any(self.kind == kind))

    def take(self, ids: np.ndarray) -> FieldColumn:
        """The column restricted to `ids` (slot j is contact ids[j]; ids <= max_id)."""

        def cut(a: np.ndarray) -> np.ndarray:
            return a[ids] if a.shape[0] else a

        return FieldColumn(
            self.name,
            self.kind[ids],
            cut(self.number),
            cut(self.day),
            cut(self.month_day),
            cut(self.code),
            self.strings,
            self.string_number,
        )


def _type_kind(t: type) -> int:
    if issubclass(t, bool):
        return BOOL
    if issubclass(t, int | float):
        return NUMBER
    if issubclass(t, str):
        return STRING
    return OTHER


def _encode_strings(col: dict[str, np.ndarray], ids: np.ndarray, texts: list[str], size: int) -> tuple[Any, Any]:
    """Fills kind/day/month_day/code for string values; returns (strings, string_number)."""
    distinct = list(dict.fromkeys(texts))
    dates = [text_date(s) for s in distinct]
    plain = sorted(s for s, d in zip(distinct, dates) if d is None)
    code_of = {s: i for i, s in enumerate(plain)}
    u_kind = np.array([STRING if d is None else DATE for d in dates], np.uint8)
    u_code = np.array([code_of.get(s, -1) for s in distinct], np.int32)
    u_day = np.array([0 if d is None else d.toordinal() - EPOCH_ORDINAL for d in dates], np.int32)
    u_md = np.array([0 if d is None else month_day(d.month, d.day) for d in dates], np.uint16)
    position = {s: i for i, s in enumerate(distinct)}
    inverse = np.fromiter(map(position.__getitem__, texts), np.int64, count=len(texts))
    col["kind"][ids] = u_kind[inverse]
    if plain:
        col["code"] = np.full(size, -1, np.int32)
        col["code"][ids] = u_code[inverse]
    if len(plain) < len(distinct):
        col["day"] = np.zeros(size, np.int32)
        col["month_day"] = np.zeros(size, np.uint16)
        col["day"][ids] = u_day[inverse]
        col["month_day"][ids] = u_md[inverse]
    numbers = np.array([text_number(s) for s in plain], np.float64) if plain else _EMPTY_F
    return tuple(plain), numbers


def build_column(name: str, ids: np.ndarray, vals: list[Any], size: int) -> FieldColumn:
    """The column of one field from its values `vals` of contacts `ids` (int64, < size)."""
    col: dict[str, np.ndarray] = {"kind": np.zeros(size, np.uint8)}
    type_kinds = {t: _type_kind(t) for t in set(map(type, vals))}
    if len(set(type_kinds.values())) <= 1:
        kinds = np.full(len(vals), next(iter(type_kinds.values()), NONE), np.uint8)
    else:
        kinds = np.fromiter((type_kinds[type(v)] for v in vals), np.uint8, count=len(vals))
    strings: tuple[str, ...] = ()
    string_number = _EMPTY_F
    numeric = (kinds == NUMBER) | (kinds == BOOL)
    if numeric.any():
        at = np.flatnonzero(numeric)
        col["number"] = np.full(size, np.nan, np.float64)
        picked = vals if at.shape[0] == len(vals) else [vals[i] for i in at.tolist()]
        col["number"][ids[at]] = np.fromiter(map(float, picked), np.float64, count=at.shape[0])
        col["kind"][ids[at]] = kinds[at]
    other = kinds == OTHER
    if other.any():
        col["kind"][ids[other]] = OTHER
    textual = kinds == STRING
    if textual.any():
        at = np.flatnonzero(textual)
        texts = vals if at.shape[0] == len(vals) else [vals[i] for i in at.tolist()]
        strings, string_number = _encode_strings(col, ids[at], texts, size)
    empty_i = np.zeros(0, np.int32)
    return FieldColumn(
        name=name,
        kind=col["kind"],
        number=col.get("number", _EMPTY_F),
        day=col.get("day", empty_i),
        month_day=col.get("month_day", np.zeros(0, np.uint16)),
        code=col.get("code", empty_i),
        strings=strings,
        string_number=string_number,
    )


_Key = tuple[int, int, int]


MAX_RESULTS = 256  # cached condition results per book state


class _BookViews:
    """The views of one book at one key; replaced whole when the key moves."""

    def __init__(self, key: _Key) -> None:
        self.key = key
        self.columns: dict[str, FieldColumn] = {}
        self.holders: dict[tuple[IdKind, str], BitMap] = {}
        self.results: dict[Hashable, Any] = {}


_views: weakref.WeakKeyDictionary[ContactBook, _BookViews] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _key(contacts: ContactBook) -> _Key:
    return (contacts.version, contacts.max_id, len(contacts))


def _current(contacts: ContactBook) -> _BookViews:
    key = _key(contacts)
    with _lock:
        views = _views.get(contacts)
        if views is None or views.key != key:
            views = _views[contacts] = _BookViews(key)
        return views


def field_column(contacts: ContactBook, name: str) -> FieldColumn:
    """The column of field `name` (createdAt: epoch ms as NUMBER; source: its name), built
    at most once per state of the book."""
    views = _current(contacts)
    column = views.columns.get(name)
    if column is None:
        column = build_column(name, *contacts.field_entries(name), contacts.max_id + 1)
        views.columns[name] = column
    return column


def book_value(contacts: ContactBook, key: Hashable, build: Callable[[], Any]) -> Any:
    """`build()` computed at most once per state of the book for `key` (equal keys must mean
    equal values); shared, so never mutate it."""
    views = _current(contacts)
    hit = views.results.get(key)
    if hit is None:
        hit = build()
        if len(views.results) >= MAX_RESULTS:
            views.results.pop(next(iter(views.results)), None)
        views.results[key] = hit
    return hit


def book_result(contacts: ContactBook, key: Hashable, build: Callable[[], np.ndarray]) -> np.ndarray:
    """`book_value` of an array, made read-only."""

    def frozen() -> np.ndarray:
        out = build()
        out.flags.writeable = False
        return out

    return book_value(contacts, key, frozen)  # type: ignore[no-any-return]


def cached_column(contacts: ContactBook, name: str) -> FieldColumn | None:
    """The column of `name` when it is already built for the book's current state."""
    views = _views.get(contacts)
    if views is None or views.key != _key(contacts):
        return None
    return views.columns.get(name)


def built_identifier_holders(contacts: ContactBook, kind: IdKind, key_name: str = "") -> BitMap | None:
    """`identifier_holders` when it is already built for the book's current state, else None
    (so a caller judging a few contacts can read them one by one instead of building it)."""
    views = _views.get(contacts)
    if views is None or views.key != _key(contacts):
        return None
    kind = IdKind(kind)
    return views.holders.get((kind, key_name if kind is IdKind.KEY else ""))


def identifier_holders(contacts: ContactBook, kind: IdKind, key_name: str = "") -> BitMap:
    """Ids of the contacts holding an identifier of `kind` (KEY with key_name "": any key),
    built at most once per state of the book. Shared: never mutate the result."""
    kind = IdKind(kind)
    views = _current(contacts)
    slot = (kind, key_name if kind is IdKind.KEY else "")
    holders = views.holders.get(slot)
    if holders is None:
        mask = contacts.has_identifier_mask(kind, key_name)
        ids = np.flatnonzero(mask).astype(np.uint32)
        holders = BitMap(array.array("I", ids.tobytes()))
        holders.shrink_to_fit()
        views.holders[slot] = holders
    return holders

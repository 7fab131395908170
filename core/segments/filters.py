"""Parameter filters of SEGMENTS.md section 5 as row masks over one table version.

A filter reads the columns of its path (one per value kind). Typing: a number compares with
numbers and with strings that parse as a finite number (the dictionary's numeric value per
code); a string with strings only (by code, or by a per-code table for ordered and substring
tests); a boolean with booleans only. A row passes when at least one of its values passes;
`not_exists` passes when the row has no value at the path. `any` groups the nested filters
by array element (see `_element_keys`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from core.columns import NO_ITEM, Kind, PathColumn
from core.dictionary import StringDictionary
from core.kernels import filters as fk
from core.kernels import groups as gk
from core.segments import derived
from core.segments.derived import dense_rows
from core.segments.plan import Filter
from core.segments.strings import code_table
from core.versions import TableVersion

_INF = math.inf
_FEW_CODES = 16  # in / not_in lists up to this long compare codes directly


class ColumnSource(Protocol):
    """What filters read: a table version (rows 0..n-1) and its columns by (path, kind)."""

    columns: Mapping[tuple[str, Kind], PathColumn]

    def __len__(self) -> int: ...


def columns_at(view: ColumnSource, path: str) -> dict[Kind, PathColumn]:
    """The non-empty columns of `path`, by kind."""
    out = {}
    for kind in Kind:
        col = view.columns.get((path, kind))
        if col is not None and len(col):
            out[kind] = col
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, float | int) and not isinstance(v, bool)


def _ordered(op: str, v: Any) -> Callable[[str], bool]:
    if op == "gt":
        return lambda s: s > v
    if op == "gte":
        return lambda s: s >= v
    if op == "lt":
        return lambda s: s < v
    return lambda s: s <= v


_NUM_RANGES: dict[str, Callable[[float], tuple[float, bool, float, bool]]] = {
    "gt": lambda v: (v, False, _INF, True),
    "gte": lambda v: (v, True, _INF, True),
    "lt": lambda v: (-_INF, True, v, False),
    "lte": lambda v: (-_INF, True, v, True),
}

_TEXT: dict[str, Callable[[str], Callable[[str], bool]]] = {
    "contains": lambda v: lambda s: v in s,
    "not_contains": lambda v: lambda s: v not in s,
    "starts_with": lambda v: lambda s: s.startswith(v),
    "ends_with": lambda v: lambda s: s.endswith(v),
}


def mark_values(
    cols: Mapping[Kind, PathColumn],
    op: str,
    value: Any,
    dictionary: StringDictionary,
    out: np.ndarray,
    rows_of: Callable[[PathColumn], np.ndarray | None],
) -> None:
    """Marks in `out` the targets (`rows_of(col)` per entry; None: entry e is target e) of
    every entry passing `op value`.

    `op` is a value op (not exists/not_exists/any)."""
    num, text, flags = cols.get(Kind.NUM), cols.get(Kind.STR), cols.get(Kind.BOOL)
    if op in ("in", "not_in"):
        _mark_set_op(num, text, flags, op == "not_in", value, dictionary, out, rows_of)
        return
    if op in _TEXT:
        if text is not None and isinstance(value, str):
            test = _TEXT[op](value)
            table = code_table(dictionary, (op, value), lambda s, x: test(s), text.values)
            fk.mark_code_table(rows_of(text), text.values, table, out)
        return
    if op == "between":
        a, b = value
        if _is_num(a):
            _mark_num_range(num, text, (float(a), True, float(b), True), dictionary, out, rows_of)
        elif text is not None:
            table = code_table(dictionary, (op, a, b), lambda s, x: a <= s <= b, text.values)
            fk.mark_code_table(rows_of(text), text.values, table, out)
        return
    if isinstance(value, bool):
        if flags is not None and op in ("eq", "ne"):
            fk.mark_flags(rows_of(flags), flags.values, value == (op == "ne"), value == (op == "eq"), out)
        return
    if _is_num(value):
        v = float(value)
        if op in _NUM_RANGES:
            _mark_num_range(num, text, _NUM_RANGES[op](v), dictionary, out, rows_of)
        elif op in ("eq", "ne"):
            members = np.array([v])
            if num is not None:
                fk.mark_set(rows_of(num), num.values, members, op == "ne", out)
            if text is not None:
                fk.mark_set_coded(rows_of(text), text.values, dictionary.numeric_of(text.values), members, op == "ne", out)
        return
    if isinstance(value, str) and text is not None:
        if op in ("eq", "ne"):
            code = dictionary.lookup(value)
            if code is None:
                if op == "ne":  # every string differs from one nobody used
                    fk.mark_all(rows_of(text), len(text), out)
                return
            fk.mark_code(rows_of(text), text.values, code, op == "ne", out)
        elif op in _NUM_RANGES:
            test = _ordered(op, value)
            table = code_table(dictionary, (op, value), lambda s, x: test(s), text.values)
            fk.mark_code_table(rows_of(text), text.values, table, out)


def _mark_num_range(
    num: PathColumn | None,
    text: PathColumn | None,
    rng: tuple[float, bool, float, bool],
    dictionary: StringDictionary,
    out: np.ndarray,
    rows_of: Callable[[PathColumn], np.ndarray | None],
) -> None:
    if num is not None:
        fk.mark_range(rows_of(num), num.values, *rng, out)
    if text is not None:
        fk.mark_range_coded(rows_of(text), text.values, dictionary.numeric_of(text.values), *rng, out)


def _mark_set_op(
    num: PathColumn | None,
    text: PathColumn | None,
    flags: PathColumn | None,
    negate: bool,
    values: tuple[Any, ...],
    dictionary: StringDictionary,
    out: np.ndarray,
    rows_of: Callable[[PathColumn], np.ndarray | None],
) -> None:
    """in / not_in. not_in holds for a value of a kind some listed value has (numbers and
    numeric strings for numbers) that equals none of them."""
    numbers = np.array(sorted({float(v) for v in values if _is_num(v)}), dtype=np.float64)
    strings = frozenset(v for v in values if isinstance(v, str))
    bools = {v for v in values if isinstance(v, bool)}
    if num is not None and numbers.shape[0]:
        fk.mark_set(rows_of(num), num.values, numbers, negate, out)
    if flags is not None and bools:
        accept_false, accept_true = (False in bools) != negate, (True in bools) != negate
        fk.mark_flags(rows_of(flags), flags.values, accept_false, accept_true, out)
    if text is None or (not strings and not numbers.shape[0]):
        return
    if not strings:
        fk.mark_set_coded(rows_of(text), text.values, dictionary.numeric_of(text.values), numbers, negate, out)
        return
    codes = [c for c in (dictionary.lookup(s) for s in strings) if c is not None]
    if not numbers.shape[0] and len(codes) <= _FEW_CODES:
        # strings only: every string is comparable, so not_in is "none of these codes"
        fk.mark_codes(rows_of(text), text.values, np.array(codes, np.int32), negate, out)
        return
    listed = frozenset(numbers.tolist())

    def test(s: str, x: float) -> bool:
        equal = s in strings or x in listed
        if not negate:
            return equal
        return not equal and (bool(strings) or (bool(listed) and x == x))

    table = code_table(dictionary, ("not_in" if negate else "in", strings, listed), test, text.values)
    fk.mark_code_table(rows_of(text), text.values, table, out)


def _exists_rows(view: ColumnSource, path: str) -> np.ndarray:
    out = np.zeros(len(view), dtype=np.bool_)
    for col in columns_at(view, path).values():
        fk.mark_all(dense_rows(col, len(view)), len(col), out)
    return out


def filter_mask(view: ColumnSource, f: Filter, dictionary: StringDictionary) -> np.ndarray:
    """bool per row of `view`: the rows passing filter `f`."""
    if f.op == "exists":
        return _exists_rows(view, f.param)
    if f.op == "not_exists":
        return ~_exists_rows(view, f.param)
    out = np.zeros(len(view), dtype=np.bool_)
    if f.op == "any":
        gk.mark_key_rows(_any_keys(view, f.param, f.where, dictionary), out)
        return out
    n = len(view)
    mark_values(columns_at(view, f.param), f.op, f.value, dictionary, out, lambda col: dense_rows(col, n))
    return out


def row_mask(view: ColumnSource, where: tuple[Filter, ...], dictionary: StringDictionary) -> np.ndarray | None:
    """bool per row passing every filter of `where`; None when there are no filters.

    On a published table version the mask is cached (read-only) with the version's arrays:
    it depends on them and on the dictionary's codes, which never change meaning."""
    if not where:
        return None
    if not isinstance(view, TableVersion):
        return _combined_mask(view, where, dictionary)
    sources = [view.contact, view.ts_ms] + _filter_arrays(view, where)

    def build() -> np.ndarray:
        mask = _combined_mask(view, where, dictionary)
        assert mask is not None
        mask.flags.writeable = False
        return mask

    key = ("mask", tuple(map(_filter_key, where)), id(dictionary))
    return derived.cache.get(key, sources, build)  # type: ignore[no-any-return]


def _typed(value: Any) -> Any:
    """`value` with its type spelled out: True and 1.0 are equal in Python, not as filter values."""
    if isinstance(value, tuple | list):
        return ("seq", tuple(map(_typed, value)))
    return (type(value).__name__, value)


def _filter_key(f: Filter) -> tuple[Any, ...]:
    return (f.param, f.op, _typed(f.value), tuple(map(_filter_key, f.where)))


def _filter_arrays(view: ColumnSource, where: tuple[Filter, ...]) -> list[np.ndarray]:
    """The arrays of every column the filters read (for `any`: every column under its path)."""
    paths = {f.param for f in where}
    out: list[np.ndarray] = []
    for (p, _), col in view.columns.items():
        if any(p == q or p.startswith(q + ".") for q in paths):
            out += [col.row, col.values, *col.items.values()]
    return out


def _combined_mask(view: ColumnSource, where: tuple[Filter, ...], dictionary: StringDictionary) -> np.ndarray | None:
    mask: np.ndarray | None = None
    for f in where:
        m = filter_mask(view, f, dictionary)
        if mask is None:
            mask = m
        else:
            np.logical_and(mask, m, out=mask)
        if not mask.any():
            break
    return mask


# ------------------------------------------------------------------ any: element keys

_DEPTH_SHIFT = 26  # element ordinal bits; ordinals stay far below 2**26 (1 MiB events)


def _element_keys(col: PathColumn, path: str) -> np.ndarray:
    """Per entry of `col` (at `path` or below it): the key of the element of `path` holding it.

    The element is the one of the deepest array on the way to `path` (the longest items
    prefix that is `path` or a prefix of it) that the entry crosses; the ordinal is tagged
    with that prefix's depth so elements of different arrays never share a key. An entry
    crossing no array there belongs to the row itself (ordinal 0, depth 0).
    """
    prefixes = [p for p in col.items if p == path or path.startswith(p + ".")]
    prefixes.sort(key=lambda p: p.count("."))
    combined = np.zeros(len(col), dtype=np.int32)
    for p in prefixes:
        ords = col.items[p]
        depth = p.count(".") + 1
        np.copyto(combined, (np.int32(depth) << _DEPTH_SHIFT) | ords, where=ords != NO_ITEM)
    return gk.entry_keys(col.row, combined)


def _columns_under(view: ColumnSource, path: str) -> list[PathColumn]:
    below = path + "."
    return [c for (p, _), c in view.columns.items() if (p == path or p.startswith(below)) and len(c)]


def _any_keys(view: ColumnSource, path: str, where: tuple[Filter, ...], dictionary: StringDictionary) -> np.ndarray:
    """Sorted keys of the elements of `path` that pass every filter of `where`."""
    result: np.ndarray | None = None
    for g in where:
        sub = f"{path}.{g.param}"
        if g.op == "any":
            inner = _any_keys(view, sub, g.where, dictionary)
            keys = np.zeros(0, np.int64)
            for col in _columns_under(view, sub):
                lifted = gk.lift_keys(_element_keys(col, sub), _element_keys(col, path), inner)
                keys = gk.union_keys(keys, lifted)
        elif g.op in ("exists", "not_exists"):
            keys = np.zeros(0, np.int64)
            for col in columns_at(view, sub).values():
                keys = gk.union_keys(keys, gk.unique_keys(_element_keys(col, path)))
            if g.op == "not_exists":
                keys = gk.subtract_keys(_all_elements(view, path), keys)
        else:
            keys = np.zeros(0, np.int64)
            for kind, col in columns_at(view, sub).items():
                passed = np.zeros(len(col), dtype=np.bool_)
                mark_values({kind: col}, g.op, g.value, dictionary, passed, _entry_index)
                keys = gk.union_keys(keys, gk.unique_keys(_element_keys(col, path), passed))
        result = keys if result is None else gk.intersect_keys(result, keys)
        if result.shape[0] == 0:
            break
    return result if result is not None else np.zeros(0, np.int64)


def _all_elements(view: ColumnSource, path: str) -> np.ndarray:
    keys = np.zeros(0, np.int64)
    for col in _columns_under(view, path):
        keys = gk.union_keys(keys, gk.unique_keys(_element_keys(col, path)))
    return keys


def _entry_index(col: PathColumn) -> None:
    return None  # entry-level marks: entry e is flag e

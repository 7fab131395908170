"""Column building blocks: value kinds, growable buffers, path columns (the string dictionary
is `core.dictionary`).

A path column holds every value one parameter path took in one table version, in COO layout:
entry i belongs to row `row[i]`; rows ascend, and a row has several entries when its path
crosses an array (in document order). Columns are immutable once built; growth happens in
`GrowableArray`s whose published views never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

ROW_DTYPE = np.dtype(np.int32)
ITEM_DTYPE = np.dtype(np.int32)
# An items ordinal of -1: the entry does not cross an array at that prefix (the same path
# was an array in some events and a plain object in others).
NO_ITEM = -1


class Kind(IntEnum):
    """The kind of value one column holds; the same path may have one column per kind."""

    NUM = 0
    STR = 1
    BOOL = 2
    NODE = 3  # an object present at the path; no value


VALUE_DTYPES: dict[Kind, np.dtype] = {
    Kind.NUM: np.dtype(np.float64),
    Kind.STR: np.dtype(np.int32),
    Kind.BOOL: np.dtype(np.int8),
    Kind.NODE: np.dtype(np.int8),  # always empty
}

KIND_NAMES: dict[Kind, str] = {
    Kind.NUM: "number",
    Kind.STR: "string",
    Kind.BOOL: "boolean",
    Kind.NODE: "object",
}


def kind_of(value: object) -> Kind:
    """The column kind of a leaf value (bool before int: a bool is not a number here)."""
    if value is None:
        return Kind.NODE
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, (int, float)):
        return Kind.NUM
    if isinstance(value, str):
        return Kind.STR
    raise TypeError(f"unsupported leaf value type {type(value).__name__}")


class GrowableArray:
    """An append-only numpy buffer with amortised O(1) growth.

    `view(n)` is a read-only view of the first n items. Growth copies into a new buffer and
    only ever writes at positions >= len, so a view handed out earlier never changes.
    """

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype: np.dtype | type, capacity: int = 8) -> None:
        self._buf = np.empty(max(capacity, 1), dtype=dtype)
        self._n = 0

    @classmethod
    def of(cls, values: np.ndarray, dtype: np.dtype | type | None = None) -> "GrowableArray":
        """A growable array holding a copy of `values`."""
        arr = np.asarray(values, dtype=dtype)
        out = cls(arr.dtype, capacity=max(8, arr.shape[0]))
        out.extend(arr)
        return out

    def __len__(self) -> int:
        return self._n

    @property
    def dtype(self) -> np.dtype:
        return self._buf.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of the allocated buffer (capacity, not length)."""
        return int(self._buf.nbytes)

    def _reserve(self, need: int) -> None:
        cap = self._buf.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        buf = np.empty(new_cap, dtype=self._buf.dtype)
        buf[: self._n] = self._buf[: self._n]
        self._buf = buf

    def append(self, value: Any) -> None:
        """Adds one item at the end."""
        n = self._n
        if n == self._buf.shape[0]:
            self._reserve(n + 1)
        self._buf[n] = value
        self._n = n + 1

    def extend(self, values: Any) -> None:
        """Adds every item of `values` (any array-like) at the end."""
        arr = np.asarray(values, dtype=self._buf.dtype)
        k = arr.shape[0]
        if k == 0:
            return
        self._reserve(self._n + k)
        self._buf[self._n : self._n + k] = arr
        self._n += k

    def fill(self, value: Any, count: int) -> None:
        """Adds `count` copies of `value`."""
        if count <= 0:
            return
        self._reserve(self._n + count)
        self._buf[self._n : self._n + count] = value
        self._n += count

    def view(self, n: int | None = None) -> np.ndarray:
        """Read-only view of the first n items (all items when n is None)."""
        n = self._n if n is None else n
        if not 0 <= n <= self._n:
            raise IndexError(f"view of {n} items of a {self._n}-item array")
        out = self._buf[:n]
        out.flags.writeable = False
        return out

    def copy(self, start: int = 0) -> np.ndarray:
        """A fresh, owned copy of items [start, len)."""
        return self._buf[start : self._n].copy()


_EMPTY_ITEMS: Mapping[str, np.ndarray] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PathColumn:
    """Every value of one (path, kind) in one table version (COO layout).

    `row` (int32) ascends; `values` is aligned with it (NUM float64, STR int32 codes, BOOL int8,
    NODE empty); `items[prefix]` gives, per entry, the ordinal of the array element it lies in
    at that prefix (NO_ITEM when that entry's path does not cross an array there).
    """

    path: str
    kind: Kind
    row: np.ndarray
    values: np.ndarray
    items: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.row.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.row.nbytes + self.values.nbytes + sum(a.nbytes for a in self.items.values()))

    def entries(self, lo: int, hi: int) -> tuple[int, int]:
        """Entry range [a, b) of the rows [lo, hi)."""
        a, b = np.searchsorted(self.row, (lo, hi), side="left")
        return int(a), int(b)


def frozen(arr: np.ndarray) -> np.ndarray:
    """`arr` marked read-only (columns are shared between versions and threads)."""
    arr.flags.writeable = False
    return arr


def make_column(
    path: str,
    kind: Kind,
    row: np.ndarray,
    values: np.ndarray | None = None,
    items: Mapping[str, np.ndarray] | None = None,
) -> PathColumn:
    """A PathColumn with dtypes coerced and arrays frozen; NODE columns get empty values."""
    row = frozen(np.asarray(row, dtype=ROW_DTYPE))
    if kind == Kind.NODE or values is None:
        vals = np.zeros(0, dtype=VALUE_DTYPES[kind])
    else:
        vals = np.asarray(values, dtype=VALUE_DTYPES[kind])
    vals = frozen(vals)
    if kind != Kind.NODE and vals.shape != row.shape:
        raise ValueError(f"column {path}: {vals.shape[0]} values for {row.shape[0]} entries")
    if not items:
        return PathColumn(path, kind, row, vals, _EMPTY_ITEMS)
    fixed = {p: frozen(np.asarray(a, dtype=ITEM_DTYPE)) for p, a in items.items()}
    for p, a in fixed.items():
        if a.shape != row.shape:
            raise ValueError(f"column {path}: items at {p} do not align with entries")
    return PathColumn(path, kind, row, vals, MappingProxyType(fixed))


def empty_column(path: str, kind: Kind) -> PathColumn:
    """A column with no entries."""
    return make_column(path, kind, np.zeros(0, dtype=ROW_DTYPE))


# ------------------------------------------------------------------------ path statistics

MAX_EXAMPLES = 5


@dataclass(slots=True)
class PathStats:
    """Statistics of one column: events carrying it and up to 5 distinct raw values (NUM float,
    STR code, BOOL 0/1; none for NODE)."""

    count: int
    examples: list[Any]

    def merged(self, other: "PathStats") -> "PathStats":
        """Statistics over disjoint rows of both."""
        examples = list(self.examples)
        for x in other.examples:
            if len(examples) >= MAX_EXAMPLES:
                break
            if x not in examples:
                examples.append(x)
        return PathStats(self.count + other.count, examples)


def first_distinct(values: np.ndarray, need: int) -> list[Any]:
    """Up to `need` distinct values of `values` in order of first appearance (reads a prefix)."""
    out: list[Any] = []
    start, chunk = 0, 256
    while start < values.shape[0] and len(out) < need:
        part = values[start : start + chunk]
        uniq, first = np.unique(part, return_index=True)
        for x in uniq[np.argsort(first)].tolist():
            if x not in out:
                out.append(x)
                if len(out) == need:
                    break
        start += chunk
        chunk *= 4
    return out


def column_stats(col: PathColumn) -> PathStats:
    """Statistics of a built column (rows ascend, so a new row starts wherever row changes)."""
    if len(col) == 0:
        return PathStats(0, [])
    count = int(np.count_nonzero(np.diff(col.row))) + 1
    examples = [] if col.kind == Kind.NODE else first_distinct(col.values, MAX_EXAMPLES)
    return PathStats(count, examples)

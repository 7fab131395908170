"""The append-only tail of an event table: rows in arrival order, in growable numpy buffers.

A buffer only ever writes past its length, and growth copies into a fresh buffer, so a view
of the first n items handed out earlier never changes: `Tail.version()` is a zero-copy
immutable version of every row so far (O(columns), whatever the tail's length). Callers
hold the owning table's lock around every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from core.blocks import BlockColumn
from core.columns import (
    ITEM_DTYPE,
    MAX_EXAMPLES,
    NO_ITEM,
    ROW_DTYPE,
    VALUE_DTYPES,
    GrowableArray,
    Kind,
    PathColumn,
    PathStats,
    first_distinct,
    make_column,
)
from core.versions import ColumnKey, TableVersion


def _items_buffer(fill: int) -> GrowableArray:
    """An items buffer starting with `fill` NO_ITEM ordinals (entries that crossed no array)."""
    buf = GrowableArray(ITEM_DTYPE, capacity=max(8, fill))
    buf.fill(NO_ITEM, fill)
    return buf


class TailColumn:
    """Entries of one (path, kind) in the tail, rows tail-local, with running statistics."""

    __slots__ = ("count", "examples", "items", "kind", "last_row", "row", "values")

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.row = GrowableArray(ROW_DTYPE)
        self.values = None if kind == Kind.NODE else GrowableArray(VALUE_DTYPES[kind])
        self.items: dict[str, GrowableArray] = {}
        self.count = 0  # distinct rows
        self.last_row = -1
        self.examples: list[Any] = []

    def add_items(self, items: tuple[tuple[str, int], ...]) -> None:
        """Records the entry just appended in the items buffers (NO_ITEM where it crosses no array)."""
        mine = self.items
        if len(items) == len(mine) and all(p in mine for p, _ in items):
            for p, o in items:
                mine[p].append(o)
            return
        before = len(self.row) - 1
        present = set()
        for p, o in items:
            buf = mine.get(p)
            if buf is None:
                buf = mine[p] = _items_buffer(before)
            buf.append(o)
            present.add(p)
        for p, buf in mine.items():
            if p not in present:
                buf.append(NO_ITEM)

    def add_examples(self, values: Sequence[Any] | np.ndarray) -> None:
        """Keeps the first distinct values (raw) up to MAX_EXAMPLES."""
        examples = self.examples
        if len(examples) >= MAX_EXAMPLES:
            return
        found = first_distinct(values, MAX_EXAMPLES) if isinstance(values, np.ndarray) else values
        for x in found:
            if x not in examples:
                examples.append(x)
                if len(examples) == MAX_EXAMPLES:
                    break

    def column(self, key: ColumnKey) -> PathColumn:
        """Every entry so far as a column (views, no copy)."""
        vals = None if self.values is None else self.values.view()
        items = {p: a.view() for p, a in self.items.items()}
        return make_column(key[0], key[1], self.row.view(), vals, items)

    def stats(self) -> PathStats:
        return PathStats(self.count, list(self.examples))

    @property
    def nbytes(self) -> int:
        bufs = [self.row, *self.items.values()] + ([self.values] if self.values is not None else [])
        return sum(b.nbytes for b in bufs)


def extend_block_column(col: TailColumn, bcol: BlockColumn, base: int, codes: Sequence[int]) -> None:
    """Appends a block column's entries (rows shifted by `base`) with their statistics."""
    rows = bcol.rows
    start = len(col.row)
    col.row.extend(np.asarray(rows, dtype=np.int64) + base if base else rows)
    col.count += len(set(rows))  # block rows are all after col.last_row
    col.last_row = rows[-1] + base
    if col.values is not None:
        values = [codes[i] for i in bcol.values] if col.kind is Kind.STR else bcol.values
        col.values.extend(values)
        col.add_examples(values)
    if not bcol.itemized and not col.items:
        return
    # per prefix, one ordinal per new entry (NO_ITEM where the entry crosses no array there)
    k = len(rows)
    lists = {p: [NO_ITEM] * k for p in col.items}
    for index, items in bcol.itemized:
        for p, ordinal in items:
            ordinals = lists.get(p)
            if ordinals is None:
                ordinals = lists[p] = [NO_ITEM] * k
                col.items[p] = _items_buffer(start)
            ordinals[index] = ordinal
    for p, ordinals in lists.items():
        col.items[p].extend(ordinals)


def extend_array_items(col: TailColumn, items: Mapping[str, np.ndarray], before: int, k: int) -> None:
    """Appends the items ordinals of k new entries (`before` entries were there already).

    A prefix no entry so far crossed starts with NO_ITEM for the earlier entries; a prefix
    whose ordinals are all NO_ITEM adds nothing new, as appending row by row would.
    """
    for p, ordinals in items.items():
        arr = np.ascontiguousarray(ordinals, dtype=ITEM_DTYPE)
        if arr.shape[0] != k:
            raise ValueError(f"items at {p}: {arr.shape[0]} ordinals for {k} entries")
        buf = col.items.get(p)
        if buf is None:
            if not bool(np.any(arr != NO_ITEM)):
                continue
            buf = col.items[p] = _items_buffer(before)
        buf.extend(arr)
    for p, buf in col.items.items():
        if p not in items:
            buf.fill(NO_ITEM, k)


class Tail:
    """Rows appended since the last compaction, in arrival order."""

    __slots__ = ("arrival", "columns", "contact", "ts_ms")

    def __init__(self) -> None:
        self.contact = GrowableArray(np.uint32)
        self.ts_ms = GrowableArray(np.int64)
        self.arrival = GrowableArray(np.int64)
        self.columns: dict[ColumnKey, TailColumn] = {}

    def __len__(self) -> int:
        return len(self.contact)

    def version(self) -> TableVersion:
        """Every tail row as an immutable version (views; rows numbered from 0; unsorted)."""
        cols = {key: col.column(key) for key, col in self.columns.items()}
        return TableVersion(self.contact.view(), self.ts_ms.view(), self.arrival.view(),
                            0, MappingProxyType(cols))

    def rest(self, k: int, counts: Mapping[ColumnKey, int]) -> Tail:
        """A tail of rows [k, len), given each column's entry count for rows < k."""
        out = Tail()
        out.contact = GrowableArray.of(self.contact.view()[k:])
        out.ts_ms = GrowableArray.of(self.ts_ms.view()[k:])
        out.arrival = GrowableArray.of(self.arrival.view()[k:])
        for key, col in self.columns.items():
            start = counts.get(key, 0)
            if len(col.row) == start:
                continue
            new = out.columns[key] = TailColumn(key[1])
            row = col.row.view()[start:] - np.int32(k)
            new.row = GrowableArray.of(row)
            new.count = 1 + int(np.count_nonzero(np.diff(row)))
            new.last_row = int(row[-1])
            if col.values is not None:
                values = col.values.view()[start:]
                new.values = GrowableArray.of(values)
                new.examples = first_distinct(values, MAX_EXAMPLES)
            new.items = {p: GrowableArray.of(buf.view()[start:]) for p, buf in col.items.items()}
        return out

    def stats(self) -> dict[ColumnKey, PathStats]:
        return {key: col.stats() for key, col in self.columns.items()}

    @property
    def nbytes(self) -> int:
        own = self.contact.nbytes + self.ts_ms.nbytes + self.arrival.nbytes
        return own + sum(c.nbytes for c in self.columns.values())

"""Event tables: one event type in one contact shard, as a sorted base plus an append-only tail.

Readers take immutable `TableVersion`s (core.versions). Compaction merges the tail into the
base: the heavy sort and merge run outside the append lock, and rows appended meanwhile stay
behind as the new tail. Only compaction and rebuilds replace the base, and both hold the
table's compaction lock, so a merge never races another.
"""

from __future__ import annotations

import threading
from array import array
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.blocks import KINDS, BlockColumn, RowBlock
from core.columns import (
    ITEM_DTYPE,
    MAX_EXAMPLES,
    NO_ITEM,
    ROW_DTYPE,
    VALUE_DTYPES,
    Kind,
    PathColumn,
    PathStats,
    StringDictionary,
    first_distinct,
    kind_of,
    make_column,
)
from core.errors import InvalidArgument
from core.versions import (
    ColumnKey,
    TableVersion,
    concat_versions,
    empty_version,
    make_version,
    merge_sorted,
    sort_rows,
    version_stats,
)

# a column of `Table.append_arrays`: (key, rows, values) or (key, rows, values, items)
ArrayColumn = (
    tuple[ColumnKey, np.ndarray, np.ndarray] | tuple[ColumnKey, np.ndarray, np.ndarray, Mapping[str, np.ndarray]]
)

# Default tail limit: max(COMPACT_MIN_ROWS, COMPACT_FRACTION * base rows), per Table.
COMPACT_FRACTION = 0.25
COMPACT_MIN_ROWS = 4096


# array.array type codes of the tail buffers: compact, amortised O(1) appends, no per-row objects
_ARRAY_CODES = {np.dtype(np.uint32): "I", np.dtype(np.int32): "i", np.dtype(np.int64): "q",
                np.dtype(np.float64): "d", np.dtype(np.int8): "b"}
for _dtype, _code in _ARRAY_CODES.items():
    assert array(_code).itemsize == _dtype.itemsize, "unexpected C type sizes"


def _buffer(dtype: np.dtype | type) -> array:
    return array(_ARRAY_CODES[np.dtype(dtype)])


def _snapshot(buf: array, dtype: np.dtype | type, start: int = 0, stop: int | None = None) -> np.ndarray:
    """An owned numpy copy of buf[start:stop]."""
    out = np.frombuffer(buf, dtype=dtype)[start:stop].copy()
    return out


class _TailColumn:
    """Entries of one (path, kind) in the tail, rows tail-local, with running statistics."""

    __slots__ = ("kind", "row", "values", "items", "count", "last_row", "examples")

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.row = _buffer(ROW_DTYPE)
        self.values = None if kind == Kind.NODE else _buffer(VALUE_DTYPES[kind])
        self.items: dict[str, array] = {}
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
                buf = mine[p] = array("i", [NO_ITEM]) * before
            buf.append(o)
            present.add(p)
        for p, buf in mine.items():
            if p not in present:
                buf.append(NO_ITEM)

    def column(self, key: ColumnKey, start: int = 0, shift: int = 0) -> PathColumn:
        """Entries [start, len) as a column (copied), rows minus `shift`."""
        row = _snapshot(self.row, ROW_DTYPE, start)
        if shift:
            row -= np.int32(shift)
        vals = None if self.values is None else _snapshot(self.values, VALUE_DTYPES[self.kind], start)
        items = {p: _snapshot(a, ITEM_DTYPE, start) for p, a in self.items.items()}
        return make_column(key[0], key[1], row, vals, items)

    def stats(self) -> PathStats:
        return PathStats(self.count, list(self.examples))

    @property
    def nbytes(self) -> int:
        bufs = [self.row, *self.items.values()] + ([self.values] if self.values is not None else [])
        return sum(b.buffer_info()[1] * b.itemsize for b in bufs)


def _extend_column(col: _TailColumn, bcol: BlockColumn, base: int, codes: Sequence[int]) -> None:
    """Appends a block column's entries (rows shifted by `base`) with their statistics."""
    rows = bcol.rows
    start = len(col.row)
    col.row.extend([r + base for r in rows] if base else rows)
    col.count += len(set(rows))  # block rows are all after col.last_row
    col.last_row = rows[-1] + base
    if col.values is not None:
        values = [codes[i] for i in bcol.values] if col.kind is Kind.STR else bcol.values
        col.values.extend(values)
        examples = col.examples
        if len(examples) < MAX_EXAMPLES:
            for value in values:
                if value not in examples:
                    examples.append(value)
                    if len(examples) == MAX_EXAMPLES:
                        break
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
                col.items[p] = array("i", [NO_ITEM]) * start
            ordinals[index] = ordinal
    for p, ordinals in lists.items():
        col.items[p].extend(ordinals)


def _extend_items(col: _TailColumn, items: Mapping[str, np.ndarray], before: int, k: int) -> None:
    """Appends the items ordinals of k new entries (`before` entries were there already).

    A prefix no entry so far crossed starts with NO_ITEM for the earlier entries; a prefix
    whose ordinals are all NO_ITEM adds nothing new, as appending row by row would.
    """
    for p, ordinals in items.items():
        arr = np.ascontiguousarray(ordinals, dtype=np.int32)
        if arr.shape[0] != k:
            raise ValueError(f"items at {p}: {arr.shape[0]} ordinals for {k} entries")
        buf = col.items.get(p)
        if buf is None:
            if not bool(np.any(arr != NO_ITEM)):
                continue
            buf = col.items[p] = array("i", [NO_ITEM]) * before
        buf.frombytes(arr.tobytes())
    for p, buf in col.items.items():
        if p not in items:
            buf.extend(array("i", [NO_ITEM]) * k)


class _Tail:
    """Rows appended since the last compaction, in arrival order."""

    __slots__ = ("contact", "ts_ms", "arrival", "columns")

    def __init__(self) -> None:
        self.contact = _buffer(np.uint32)
        self.ts_ms = _buffer(np.int64)
        self.arrival = _buffer(np.int64)
        self.columns: dict[ColumnKey, _TailColumn] = {}

    def __len__(self) -> int:
        return len(self.contact)

    def block(self) -> TableVersion:
        """Every tail row as a version of its own (copied; rows numbered from 0)."""
        cols = {key: col.column(key) for key, col in self.columns.items()}
        return make_version(
            _snapshot(self.contact, np.uint32), _snapshot(self.ts_ms, np.int64),
            _snapshot(self.arrival, np.int64), 0, cols,
        )

    def rest(self, k: int, counts: Mapping[ColumnKey, int]) -> "_Tail":
        """A tail of rows [k, len), given each column's entry count for rows < k."""
        out = _Tail()
        out.contact, out.ts_ms, out.arrival = self.contact[k:], self.ts_ms[k:], self.arrival[k:]
        for key, col in self.columns.items():
            start = counts.get(key, 0)
            if len(col.row) == start:
                continue
            new = out.columns[key] = _TailColumn(key[1])
            new.row = array("i", (r - k for r in col.row[start:]))
            if col.values is not None:
                new.values = col.values[start:]
            new.items = {p: buf[start:] for p, buf in col.items.items()}
            new.count = len(set(new.row))
            new.last_row = new.row[-1]
            if col.values is not None:
                new.examples = first_distinct(np.frombuffer(new.values, VALUE_DTYPES[key[1]]), MAX_EXAMPLES)
        return out

    def stats(self) -> dict[ColumnKey, PathStats]:
        return {key: col.stats() for key, col in self.columns.items()}

    @property
    def nbytes(self) -> int:
        own = sum(b.buffer_info()[1] * b.itemsize for b in (self.contact, self.ts_ms, self.arrival))
        return own + sum(c.nbytes for c in self.columns.values())


def _merge_stats(a: Mapping[ColumnKey, PathStats], b: Mapping[ColumnKey, PathStats]) -> dict[ColumnKey, PathStats]:
    out = dict(a)
    for key, s in b.items():
        out[key] = out[key].merged(s) if key in out else s
    return out


class Table:
    """One event type in one contact shard: a sorted base plus an append-only tail."""

    # a tail longer than max(compact_min_rows, compact_fraction * base rows) is merged on append
    compact_min_rows = COMPACT_MIN_ROWS
    compact_fraction = COMPACT_FRACTION

    def __init__(self, base: TableVersion | None = None,
                 stats: Mapping[ColumnKey, PathStats] | None = None) -> None:
        self._lock = threading.Lock()  # guards the tail and the installed base
        self._compact_lock = threading.Lock()  # one base replacement at a time
        self._base = sort_rows(base) if base is not None else empty_version()
        self._base_stats = dict(stats) if stats is not None else version_stats(self._base)
        self._tail = _Tail()
        self._cached: TableVersion | None = self._base
        self._generation = 0  # bumped by every change
        self._due_rows = self._tail_limit()

    def _tail_limit(self) -> int:
        """Tail rows past which an append merges the tail into the base."""
        return int(max(self.compact_min_rows, self.compact_fraction * len(self._base)))

    def __len__(self) -> int:
        return len(self._base) + len(self._tail)

    @property
    def nbytes(self) -> int:
        return self._base.nbytes + self._tail.nbytes

    def stats(self) -> dict[ColumnKey, PathStats]:
        """Per (path, kind): events carrying it and a few example values (raw)."""
        with self._lock:
            return _merge_stats(self._base_stats, self._tail.stats())

    def append(
        self, contact: int, ts_ms: int, arrival: int, leaves: Sequence[Any], dictionary: StringDictionary
    ) -> None:
        """Adds one row to the tail; merges the tail into the base once it is long enough.

        Raises InvalidArgument (a number out of range) before anything is stored.
        """
        prepared = []
        for leaf in leaves:
            value = leaf.value
            t = type(value)
            if t is str:
                kind = Kind.STR
            elif t is float:
                kind = Kind.NUM
            elif t is int:
                kind = Kind.NUM
                try:
                    value = float(value)
                except OverflowError:
                    raise InvalidArgument(f"params.{leaf.path}", "number out of range") from None
            elif t is bool:
                kind, value = Kind.BOOL, int(value)
            elif value is None:
                kind = Kind.NODE
            else:
                kind = kind_of(value)
                if kind == Kind.NUM:
                    try:
                        value = float(value)
                    except OverflowError:
                        raise InvalidArgument(f"params.{leaf.path}", "number out of range") from None
                elif kind == Kind.BOOL:
                    value = int(value)
            prepared.append((leaf.path, kind, value, leaf.items))
        acquire = dictionary.acquire
        with self._lock:
            tail = self._tail
            row = len(tail.contact)
            tail.contact.append(contact)
            tail.ts_ms.append(ts_ms)
            tail.arrival.append(arrival)
            cols = tail.columns
            for path, kind, value, items in prepared:
                col = cols.get((path, kind))
                if col is None:
                    col = cols[(path, kind)] = _TailColumn(kind)
                col.row.append(row)
                if kind is Kind.STR:
                    value = acquire(value)
                if col.last_row != row:
                    col.last_row = row
                    col.count += 1
                if kind is not Kind.NODE:
                    col.values.append(value)  # type: ignore[union-attr]
                    examples = col.examples
                    if len(examples) < MAX_EXAMPLES and value not in examples:
                        examples.append(value)
                if items or col.items:
                    col.add_items(items)
            self._generation += 1
            self._cached = None
            due = row >= self._due_rows
        if due and self._compact_lock.acquire(blocking=False):
            try:
                self._compact_locked()
            finally:
                self._compact_lock.release()

    def append_block(self, block: RowBlock, codes: Sequence[int], first_arrival: int) -> None:
        """Adds a block's rows to the tail, as `append` of each row in order would.

        `codes[i]` is the string code of the batch's string i (STR entries hold positions);
        the block's arrival offsets count from `first_arrival`.
        """
        n = len(block)
        if n == 0:
            return
        with self._lock:
            tail = self._tail
            base = len(tail.contact)
            tail.contact.extend(block.contact)
            tail.ts_ms.extend(block.ts_ms)
            tail.arrival.extend([first_arrival + a for a in block.arrival])
            cols = tail.columns
            for (path, k), bcol in block.columns.items():
                kind = KINDS[k]
                col = cols.get((path, kind))
                if col is None:
                    col = cols[(path, kind)] = _TailColumn(kind)
                _extend_column(col, bcol, base, codes)
            self._generation += 1
            self._cached = None
            due = base + n - 1 >= self._due_rows
        if due and self._compact_lock.acquire(blocking=False):
            try:
                self._compact_locked()
            finally:
                self._compact_lock.release()

    def append_arrays(
        self,
        contact: np.ndarray,
        ts_ms: np.ndarray,
        arrival: np.ndarray,
        columns: Sequence[ArrayColumn],
    ) -> None:
        """Adds rows given as arrays, as `append` of each row in order would.

        `columns`: `(key, rows, values)` or `(key, rows, values, items)` in order of first use.
        `rows` (int32, ascending, numbered from 0 within these rows) may repeat a row: one
        entry per array element, in document order. `values` has one item per entry in the
        key's dtype (STR: codes already acquired). `items` maps an array prefix to int32
        ordinals, one per entry (NO_ITEM where the entry crosses no array there).
        """
        n = contact.shape[0]
        if n == 0:
            return
        with self._lock:
            tail = self._tail
            base = len(tail.contact)
            tail.contact.frombytes(np.ascontiguousarray(contact, dtype=np.uint32).tobytes())
            tail.ts_ms.frombytes(np.ascontiguousarray(ts_ms, dtype=np.int64).tobytes())
            tail.arrival.frombytes(np.ascontiguousarray(arrival, dtype=np.int64).tobytes())
            for entry in columns:
                key, rows, values = entry[0], entry[1], entry[2]
                items: Mapping[str, np.ndarray] = entry[3] if len(entry) > 3 else {}  # type: ignore[misc]
                k = rows.shape[0]
                if k == 0:
                    continue
                col = tail.columns.get(key)
                if col is None:
                    col = tail.columns[key] = _TailColumn(key[1])
                before = len(col.row)
                rows32 = np.ascontiguousarray(rows, dtype=np.int32)
                col.row.frombytes((rows32 + np.int32(base)).tobytes())
                col.count += 1 + int(np.count_nonzero(np.diff(rows32)))  # distinct rows (ascending)
                col.last_row = base + int(rows32[-1])
                if col.values is not None:
                    vals = np.ascontiguousarray(values, dtype=VALUE_DTYPES[key[1]])
                    col.values.frombytes(vals.tobytes())
                    examples = col.examples
                    for x in first_distinct(vals, MAX_EXAMPLES):
                        if len(examples) == MAX_EXAMPLES:
                            break
                        if x not in examples:
                            examples.append(x)
                _extend_items(col, items, before, k)
            self._generation += 1
            self._cached = None
            due = base + n - 1 >= self._due_rows
        if due and self._compact_lock.acquire(blocking=False):
            try:
                self._compact_locked()
            finally:
                self._compact_lock.release()

    def version(self, sorted: bool = False) -> TableVersion:
        """An immutable version of every row so far; `sorted` merges the tail first."""
        if sorted:
            return self.compact()
        with self._lock:
            if self._cached is not None:
                return self._cached
            base, block, generation = self._base, self._tail.block(), self._generation
        out = concat_versions([base, block], len(base))
        with self._lock:
            if self._generation == generation:
                self._cached = out
        return out

    def compact(self) -> TableVersion:
        """Merges the tail into the base; returns the fully sorted version installed."""
        with self._lock:
            if len(self._tail) == 0:
                return self._base
        with self._compact_lock:
            return self._compact_locked()

    def _take_tail(self) -> tuple[TableVersion, TableVersion, dict[ColumnKey, PathStats], int, dict[ColumnKey, int]]:
        with self._lock:
            tail = self._tail
            counts = {key: len(col.row) for key, col in tail.columns.items()}
            return self._base, tail.block(), tail.stats(), len(tail), counts

    def _install(self, base: TableVersion, stats: dict[ColumnKey, PathStats], k: int,
                 counts: dict[ColumnKey, int]) -> None:
        with self._lock:
            self._tail = self._tail.rest(k, counts) if len(self._tail) > k else _Tail()
            self._base, self._base_stats = base, stats
            self._due_rows = self._tail_limit()
            self._generation += 1
            self._cached = base if len(self._tail) == 0 else None

    def _compact_locked(self) -> TableVersion:
        base, block, tail_stats, k, counts = self._take_tail()
        if k == 0:
            return base
        merged = merge_sorted(base, sort_rows(block))
        self._install(merged, _merge_stats(self._base_stats, tail_stats), k, counts)
        return merged

    def rebuild(self, change: Callable[[TableVersion], TableVersion]) -> tuple[TableVersion, TableVersion]:
        """Replaces the rows by `change(sorted rows)` (copy-on-write); returns (before, after)."""
        with self._compact_lock:
            base, block, tail_stats, k, counts = self._take_tail()
            full = merge_sorted(base, sort_rows(block)) if k else base
            after = sort_rows(change(full))
            if after is full:
                stats = _merge_stats(self._base_stats, tail_stats)
            else:
                stats = version_stats(after)
            self._install(after, stats, k, counts)
            return full, after

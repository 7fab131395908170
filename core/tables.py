"""Event tables: one event type in one contact shard, as a sorted base plus an append-only tail.

Readers take immutable `TableVersion`s (core.versions) and never need the tail merged:
`parts()` gives the sorted base and the tail rows (a zero-copy version of the tail buffers),
`rows_of(ids)` a small sorted version of some contacts' rows, `split()` a contact-disjoint
full read. Compaction merges the tail into the base: inline once the tail is due for a
standalone table, in the owning store's compactor thread otherwise (`on_due`). The heavy
sort and merge run outside the append lock, and rows appended meanwhile stay behind as the
new tail. Only compaction and rebuilds replace the base, and both hold the table's
compaction lock, so a merge never races another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.blocks import KINDS, RowBlock
from core.columns import MAX_EXAMPLES, VALUE_DTYPES, Kind, PathStats, kind_of
from core.dictionary import StringDictionary
from core.errors import InvalidArgument
from core.tail import Tail, TailColumn, extend_array_items, extend_block_column
from core.versions import (
    ColumnKey,
    TableVersion,
    concat_versions,
    contact_rows_of,
    empty_version,
    merge_sorted,
    sort_rows,
    version_stats,
    with_paths,
)

# a column of `Table.append_arrays`: (key, rows, values) or (key, rows, values, items)
ArrayColumn = (
    tuple[ColumnKey, np.ndarray, np.ndarray] | tuple[ColumnKey, np.ndarray, np.ndarray, Mapping[str, np.ndarray]]
)

# Default tail limit: max(COMPACT_MIN_ROWS, COMPACT_FRACTION * base rows), per Table.
COMPACT_FRACTION = 0.25
COMPACT_MIN_ROWS = 4096


def _merge_stats(a: Mapping[ColumnKey, PathStats], b: Mapping[ColumnKey, PathStats]) -> dict[ColumnKey, PathStats]:
    out = dict(a)
    for key, s in b.items():
        out[key] = out[key].merged(s) if key in out else s
    return out


@dataclass(frozen=True, slots=True)
class TableSplit:
    """Every row of a table as contact-disjoint sorted pieces, with nothing merged into the base:
    the base without the contacts in `held`, and `fresh`, every row (base and tail) of `held`."""

    base: TableVersion  # fully sorted; its rows of `held` contacts are to be ignored
    held: np.ndarray  # uint32, ascending: the contacts with tail rows
    fresh: TableVersion  # fully sorted: the rows of the `held` contacts


class Table:
    """One event type in one contact shard: a sorted base plus an append-only tail."""

    # a tail longer than max(compact_min_rows, compact_fraction * base rows) is due for merging
    compact_min_rows = COMPACT_MIN_ROWS
    compact_fraction = COMPACT_FRACTION

    def __init__(self, base: TableVersion | None = None, stats: Mapping[ColumnKey, PathStats] | None = None,
                 on_due: Callable[[Table], None] | None = None) -> None:
        """`on_due(table)`: called (outside the table's locks) when the tail becomes due, instead
        of merging in the appending thread; the callee later calls `compact_due()`."""
        self._lock = threading.Lock()  # guards the tail and the installed base
        self._compact_lock = threading.Lock()  # one base replacement at a time
        self._base = sort_rows(base) if base is not None else empty_version()
        self._base_stats = dict(stats) if stats is not None else version_stats(self._base)
        self._tail = Tail()
        self._cached: TableVersion | None = self._base
        self._generation = 0  # bumped by every change
        self._due_rows = self._tail_limit()
        self._on_due = on_due
        self._queued = False  # handed to on_due and not compacted since
        self._tail_version: tuple[int, TableVersion] | None = None  # (generation, tail rows)
        self._split: tuple[int, TableSplit] | None = None  # (generation, split)

    def _tail_limit(self) -> int:
        """Tail rows past which the tail is due for merging into the base."""
        return int(max(self.compact_min_rows, self.compact_fraction * len(self._base)))

    def refresh_limit(self) -> None:
        """Recomputes the due tail length (after compact_min_rows / compact_fraction changed)."""
        with self._lock:
            self._due_rows = self._tail_limit()

    def __len__(self) -> int:
        return len(self._base) + len(self._tail)

    @property
    def nbytes(self) -> int:
        return self._base.nbytes + self._tail.nbytes

    @property
    def tail_rows(self) -> int:
        return len(self._tail)

    @property
    def generation(self) -> int:
        """A number that changes with every write, compaction or rebuild."""
        return self._generation

    def stats(self) -> dict[ColumnKey, PathStats]:
        """Per (path, kind): events carrying it and a few example values (raw)."""
        with self._lock:
            return _merge_stats(self._base_stats, self._tail.stats())

    # ---------------------------------------------------------------- appends

    def append(
        self, contact: int, ts_ms: int, arrival: int, leaves: Sequence[Any], dictionary: StringDictionary
    ) -> None:
        """Adds one row to the tail. Raises InvalidArgument (a number out of range) before
        anything is stored."""
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
                    col = cols[(path, kind)] = TailColumn(kind)
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
            due = self._changed(row + 1)
        if due:
            self._due()

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
            tail.arrival.extend(np.asarray(block.arrival, dtype=np.int64) + first_arrival)
            cols = tail.columns
            for (path, k), bcol in block.columns.items():
                kind = KINDS[k]
                col = cols.get((path, kind))
                if col is None:
                    col = cols[(path, kind)] = TailColumn(kind)
                extend_block_column(col, bcol, base, codes)
            due = self._changed(base + n)
        if due:
            self._due()

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
            tail.contact.extend(contact)
            tail.ts_ms.extend(ts_ms)
            tail.arrival.extend(arrival)
            for entry in columns:
                key, rows, values = entry[0], entry[1], entry[2]
                items: Mapping[str, np.ndarray] = entry[3] if len(entry) > 3 else {}  # type: ignore[misc]
                k = rows.shape[0]
                if k == 0:
                    continue
                col = tail.columns.get(key)
                if col is None:
                    col = tail.columns[key] = TailColumn(key[1])
                before = len(col.row)
                rows32 = np.ascontiguousarray(rows, dtype=np.int32)
                col.row.extend(rows32 + np.int32(base))
                col.count += 1 + int(np.count_nonzero(np.diff(rows32)))  # distinct rows (ascending)
                col.last_row = base + int(rows32[-1])
                if col.values is not None:
                    vals = np.ascontiguousarray(values, dtype=VALUE_DTYPES[key[1]])
                    col.values.extend(vals)
                    col.add_examples(vals)
                extend_array_items(col, items, before, k)
            due = self._changed(base + n)
        if due:
            self._due()

    def _changed(self, tail_rows: int) -> bool:
        """Bookkeeping after a write (under the lock); whether the tail is now due."""
        self._generation += 1
        self._cached = None
        return tail_rows > self._due_rows and not self._queued

    def _due(self) -> None:
        """The tail is due: merge it here (standalone table) or hand the table to `on_due`."""
        if self._on_due is None:
            if self._compact_lock.acquire(blocking=False):
                try:
                    self._compact_locked()
                finally:
                    self._compact_lock.release()
            return
        with self._lock:
            if self._queued:
                return
            self._queued = True
        self._on_due(self)

    # ---------------------------------------------------------------- reads

    def parts(self) -> tuple[TableVersion, TableVersion]:
        """(sorted base, tail rows in arrival order), consistent with each other; merges nothing.

        The tail version is made of views of the tail buffers (no copy) and cached until the
        next write; the base stays the same object until a compaction or rebuild replaces it.
        """
        with self._lock:
            cached = self._tail_version
            if cached is None or cached[0] != self._generation:
                cached = self._tail_version = (self._generation, self._tail.version())
            return self._base, cached[1]

    def rows_of(self, contact_ids: np.ndarray, paths: frozenset[str] | None = None) -> TableVersion:
        """A fully sorted version of the rows of `contact_ids` only (any order, repeats allowed);
        with `paths`, holding only the columns at or under them (None: every column)."""
        base, tail = self.parts()
        if paths is not None:
            base, tail = with_paths(base, paths), with_paths(tail, paths)
        return contact_rows_of(base, tail, contact_ids)

    def split(self) -> TableSplit:
        """Every row as contact-disjoint sorted pieces (see TableSplit); cached until the next write."""
        with self._lock:
            generation = self._generation
            hit = self._split
            if hit is not None and hit[0] == generation:
                return hit[1]
        base, tail = self.parts()
        if len(tail) == 0:
            out = TableSplit(base, np.zeros(0, np.uint32), empty_version())
        else:
            held = np.unique(tail.contact)
            out = TableSplit(base, held, contact_rows_of(base, tail, held))
        with self._lock:
            if self._generation == generation:
                self._split = (generation, out)
        return out

    def version(self, sorted: bool = False) -> TableVersion:
        """An immutable version of every row so far; `sorted` merges the tail first."""
        if sorted:
            return self.compact()
        with self._lock:
            if self._cached is not None:
                return self._cached
            generation = self._generation
        base, tail = self.parts()
        out = concat_versions([base, tail], len(base))
        with self._lock:
            if self._generation == generation:
                self._cached = out
        return out

    # ---------------------------------------------------------------- compaction

    def compact(self) -> TableVersion:
        """Merges the tail into the base; returns the fully sorted version installed."""
        with self._lock:
            if len(self._tail) == 0:
                return self._base
        with self._compact_lock:
            return self._compact_locked()

    def compact_due(self) -> None:
        """Merges the tail if it is (still) due: the work `on_due` asked for."""
        with self._compact_lock:
            with self._lock:
                self._queued = False  # appends from here on may hand the table over again
                due = len(self._tail) > self._due_rows
            if due:
                self._compact_locked()

    def _take_tail(self) -> tuple[TableVersion, TableVersion, dict[ColumnKey, PathStats], int, dict[ColumnKey, int]]:
        with self._lock:
            tail = self._tail
            counts = {key: len(col.row) for key, col in tail.columns.items()}
            return self._base, tail.version(), tail.stats(), len(tail), counts

    def _install(self, base: TableVersion, stats: dict[ColumnKey, PathStats], k: int,
                 counts: dict[ColumnKey, int]) -> None:
        with self._lock:
            self._tail = self._tail.rest(k, counts) if len(self._tail) > k else Tail()
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

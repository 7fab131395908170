"""Event tables: one event type in one contact shard, as a sorted base plus an append-only tail.

Readers take immutable `TableVersion`s. Rows [0, sorted_rows) of a version are ordered by
(contact, ts_ms, arrival); rows after them are the tail, in arrival order. Compaction merges
the tail into the base: the heavy sort and merge run outside the append lock, and rows
appended meanwhile stay behind as the new tail. Only compaction and rebuilds replace the base,
and both hold the table's compaction lock, so a merge never races another.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, replace
from types import MappingProxyType
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
    column_stats,
    first_distinct,
    frozen,
    kind_of,
    make_column,
)
from core.errors import FailedPrecondition, InvalidArgument

ColumnKey = tuple[str, Kind]
# a column of `Table.append_arrays`: (key, rows, values) or (key, rows, values, items)
ArrayColumn = (
    tuple[ColumnKey, np.ndarray, np.ndarray] | tuple[ColumnKey, np.ndarray, np.ndarray, Mapping[str, np.ndarray]]
)

# Default tail limit: max(COMPACT_MIN_ROWS, COMPACT_FRACTION * base rows), per Table.
COMPACT_FRACTION = 0.25
COMPACT_MIN_ROWS = 4096


@dataclass(frozen=True, slots=True)
class TableVersion:
    """An immutable cut of a table; safe to read from any thread while ingest goes on."""

    contact: np.ndarray  # uint32[n]
    ts_ms: np.ndarray  # int64[n], epoch ms UTC
    arrival: np.ndarray  # int64[n], global arrival sequence (breaks ties on ts)
    sorted_rows: int  # rows [0, sorted_rows) sorted by (contact, ts_ms, arrival)
    columns: Mapping[ColumnKey, PathColumn]

    def __len__(self) -> int:
        return int(self.contact.shape[0])

    @property
    def is_sorted(self) -> bool:
        return self.sorted_rows == len(self)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this version refers to (an array shared by columns counted once)."""
        arrays = {id(a): a for a in (self.contact, self.ts_ms, self.arrival)}
        for c in self.columns.values():
            arrays.update((id(a), a) for a in (c.row, c.values, *c.items.values()))
        return int(sum(a.nbytes for a in arrays.values()))

    def contact_range(self, contact_id: int) -> tuple[int, int]:
        """Rows [lo, hi) of `contact_id`; only for a fully sorted version."""
        if not self.is_sorted:
            raise FailedPrecondition("contact_range needs a fully sorted table version")
        if not 0 <= contact_id < 2**32:
            return 0, 0
        key = np.uint32(contact_id)
        lo = int(np.searchsorted(self.contact, key, side="left"))
        hi = int(np.searchsorted(self.contact, key, side="right"))
        return lo, hi


def make_version(
    contact: np.ndarray,
    ts_ms: np.ndarray,
    arrival: np.ndarray,
    sorted_rows: int,
    columns: Mapping[ColumnKey, PathColumn],
) -> TableVersion:
    """A TableVersion with dtypes coerced and arrays frozen."""
    c = frozen(np.asarray(contact, dtype=np.uint32))
    t = frozen(np.asarray(ts_ms, dtype=np.int64))
    a = frozen(np.asarray(arrival, dtype=np.int64))
    if not c.shape == t.shape == a.shape:
        raise ValueError("contact, ts_ms and arrival must have one entry per row")
    return TableVersion(c, t, a, int(sorted_rows), MappingProxyType(_share_dense_rows(columns, c.shape[0])))


def _share_dense_rows(columns: Mapping[ColumnKey, PathColumn], n: int) -> dict[ColumnKey, PathColumn]:
    """`columns`, with every column holding exactly one entry per row using one shared row array."""
    out = dict(columns)
    if n == 0:
        return out
    shared: np.ndarray | None = None
    for key, col in out.items():
        row = col.row
        if row is shared or len(col) != n or row[0] != 0 or row[-1] != n - 1:
            continue
        if n > 1 and not bool(np.all(np.diff(row) == 1)):
            continue
        if shared is None:
            shared = row
        else:
            out[key] = replace(col, row=shared)
    return out


def empty_version() -> TableVersion:
    """A version with no rows (sorted)."""
    return make_version(np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, {})


# ----------------------------------------------------------------------- row blocks


def slice_rows(v: TableVersion, lo: int, hi: int) -> TableVersion:
    """Rows [lo, hi) of `v`, renumbered from 0 (views, no copy)."""
    cols: dict[ColumnKey, PathColumn] = {}
    for key, col in v.columns.items():
        a, b = col.entries(lo, hi)
        if a == b:
            continue
        vals = col.values if col.kind == Kind.NODE else col.values[a:b]
        items = {p: arr[a:b] for p, arr in col.items.items()}
        cols[key] = make_column(col.path, col.kind, col.row[a:b] - np.int32(lo), vals, items)
    sorted_rows = min(max(v.sorted_rows - lo, 0), hi - lo)
    return make_version(v.contact[lo:hi], v.ts_ms[lo:hi], v.arrival[lo:hi], sorted_rows, cols)


def _fill_items(col: PathColumn, prefix: str) -> np.ndarray:
    arr = col.items.get(prefix)
    return arr if arr is not None else np.full(len(col), NO_ITEM, dtype=ITEM_DTYPE)


def concat_versions(parts: Sequence[TableVersion], sorted_rows: int) -> TableVersion:
    """The rows of every part in order (entries copied, rows renumbered)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_version()
    if len(parts) == 1:
        return replace(parts[0], sorted_rows=sorted_rows)
    offsets = np.cumsum([0] + [len(p) for p in parts])
    keys = dict.fromkeys(k for p in parts for k in p.columns)
    cols: dict[ColumnKey, PathColumn] = {}
    for key in keys:
        present = [(int(off), p.columns[key]) for off, p in zip(offsets, parts) if key in p.columns]
        row = np.concatenate([c.row + np.int32(off) for off, c in present])
        vals = None if key[1] == Kind.NODE else np.concatenate([c.values for _, c in present])
        prefixes = dict.fromkeys(pre for _, c in present for pre in c.items)
        items = {pre: np.concatenate([_fill_items(c, pre) for _, c in present]) for pre in prefixes}
        cols[key] = make_column(key[0], key[1], row, vals, items)
    contact = np.concatenate([p.contact for p in parts])
    ts_ms = np.concatenate([p.ts_ms for p in parts])
    arrival = np.concatenate([p.arrival for p in parts])
    return make_version(contact, ts_ms, arrival, sorted_rows, cols)


def take_rows(v: TableVersion, rows: np.ndarray, sorted_rows: int, ascending: bool = False) -> TableVersion:
    """The rows `rows` of `v` (distinct indices) in that order; entries of other rows are dropped.

    `ascending` promises rows are increasing, which keeps entries in order without a sort.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n, m = len(v), rows.shape[0]
    if ascending and m == n:
        return replace(v, sorted_rows=sorted_rows)
    inv = np.full(n, -1, dtype=np.int64)
    inv[rows] = np.arange(m, dtype=np.int64)
    cols: dict[ColumnKey, PathColumn] = {}
    for key, col in v.columns.items():
        new_row = inv[col.row]
        kept = np.flatnonzero(new_row >= 0)
        if kept.shape[0] == 0:
            continue
        if not ascending:
            # stable: entries of one row keep their document order
            kept = kept[np.argsort(new_row[kept], kind="stable")]
        vals = None if key[1] == Kind.NODE else col.values[kept]
        items = {p: arr[kept] for p, arr in col.items.items()}
        cols[key] = make_column(col.path, col.kind, new_row[kept], vals, items)
    return make_version(v.contact[rows], v.ts_ms[rows], v.arrival[rows], sorted_rows, cols)


def filter_rows(v: TableVersion, keep: np.ndarray) -> TableVersion:
    """The rows of `v` where `keep` is true, in their order."""
    return take_rows(v, np.flatnonzero(keep), min(v.sorted_rows, int(np.count_nonzero(keep))), True)


def sort_rows(v: TableVersion) -> TableVersion:
    """`v` fully sorted by (contact, ts_ms, arrival)."""
    if v.is_sorted:
        return v
    order = np.lexsort((v.arrival, v.ts_ms, v.contact))
    return take_rows(v, order, len(v))


def _insertion_points(a: TableVersion, b: TableVersion) -> np.ndarray | None:
    """For each row of sorted `b`, the row of sorted `a` it goes before; None if no cheap answer.

    Packs (contact, ts_ms) into one int64 when the spans fit; rows of `b` go after rows of `a`
    with the same (contact, ts_ms), which must then be later arrivals.
    """
    cmin = min(int(a.contact[0]), int(b.contact[0]))
    cmax = max(int(a.contact[-1]), int(b.contact[-1]))
    tmin = min(int(a.ts_ms.min()), int(b.ts_ms.min()))
    tmax = max(int(a.ts_ms.max()), int(b.ts_ms.max()))
    tbits = (tmax - tmin).bit_length()
    if (cmax - cmin).bit_length() + tbits > 62:
        return None
    ka = ((a.contact.astype(np.int64) - cmin) << tbits) | (a.ts_ms - tmin)
    kb = ((b.contact.astype(np.int64) - cmin) << tbits) | (b.ts_ms - tmin)
    ins = np.searchsorted(ka, kb, side="right")
    prev = ins - 1
    tied = (prev >= 0) & (ka[np.maximum(prev, 0)] == kb)
    if np.any(a.arrival[prev[tied]] > b.arrival[tied]):
        return None
    return ins


def _merge_positions(ins: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """New positions of the n old items and of the inserted ones (inserted j goes before old ins[j])."""
    k = ins.shape[0]
    b_pos = ins + np.arange(k, dtype=np.int64)
    a_pos = np.arange(n, dtype=np.int64) + np.cumsum(np.bincount(ins, minlength=n + 1))[:n]
    return a_pos, b_pos


def _merge_column(key: ColumnKey, ca: PathColumn | None, cb: PathColumn | None,
                  a_pos: np.ndarray, b_pos: np.ndarray) -> PathColumn:
    path, kind = key
    if cb is None or len(cb) == 0:
        assert ca is not None
        return make_column(path, kind, a_pos[ca.row], ca.values, ca.items)
    if ca is None or len(ca) == 0:
        return make_column(path, kind, b_pos[cb.row], cb.values, cb.items)
    ra, rb = a_pos[ca.row], b_pos[cb.row]
    ea_pos, eb_pos = _merge_positions(np.searchsorted(ra, rb), ra.shape[0])
    total = ra.shape[0] + rb.shape[0]
    row = np.empty(total, dtype=ROW_DTYPE)
    row[ea_pos], row[eb_pos] = ra, rb
    vals = None
    if kind != Kind.NODE:
        vals = np.empty(total, dtype=VALUE_DTYPES[kind])
        vals[ea_pos], vals[eb_pos] = ca.values, cb.values
    items = {}
    for pre in dict.fromkeys([*ca.items, *cb.items]):
        arr = np.empty(total, dtype=ITEM_DTYPE)
        arr[ea_pos], arr[eb_pos] = _fill_items(ca, pre), _fill_items(cb, pre)
        items[pre] = arr
    return make_column(path, kind, row, vals, items)


def merge_sorted(a: TableVersion, b: TableVersion) -> TableVersion:
    """The rows of two fully sorted versions, fully sorted (`b` usually the smaller)."""
    n, k = len(a), len(b)
    if k == 0:
        return a
    if n == 0:
        return b
    ins = _insertion_points(a, b)
    if ins is None:
        return sort_rows(concat_versions([a, b], 0))
    a_pos, b_pos = _merge_positions(ins, n)
    contact = np.empty(n + k, dtype=np.uint32)
    ts_ms = np.empty(n + k, dtype=np.int64)
    arrival = np.empty(n + k, dtype=np.int64)
    contact[a_pos], contact[b_pos] = a.contact, b.contact
    ts_ms[a_pos], ts_ms[b_pos] = a.ts_ms, b.ts_ms
    arrival[a_pos], arrival[b_pos] = a.arrival, b.arrival
    keys = dict.fromkeys([*a.columns, *b.columns])
    cols = {key: _merge_column(key, a.columns.get(key), b.columns.get(key), a_pos, b_pos) for key in keys}
    return make_version(contact, ts_ms, arrival, n + k, cols)


def lost_codes(v: TableVersion, keep: np.ndarray) -> np.ndarray:
    """String codes of the entries that go when only rows `keep` stay (one per entry)."""
    parts = [col.values[~keep[col.row]] for (_, kind), col in v.columns.items() if kind == Kind.STR]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


# ------------------------------------------------------------------------ the table


def version_stats(v: TableVersion) -> dict[ColumnKey, PathStats]:
    """Statistics of every column of a built version."""
    return {key: column_stats(col) for key, col in v.columns.items() if len(col)}

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

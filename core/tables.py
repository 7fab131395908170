"""Event tables: one event type in one contact shard, as a sorted base plus an append-only tail.

Readers take immutable `TableVersion`s. Rows [0, sorted_rows) of a version are ordered by
(contact, ts_ms, arrival); rows after them are the tail, in arrival order. Compaction merges
the tail into the base: the heavy sort and merge run outside the append lock, and rows
appended meanwhile stay behind as the new tail. Only compaction and rebuilds replace the base,
and both hold the table's compaction lock, so a merge never races another.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.columns import (
    ITEM_DTYPE,
    NO_ITEM,
    ROW_DTYPE,
    VALUE_DTYPES,
    GrowableArray,
    Kind,
    PathColumn,
    StringDictionary,
    frozen,
    kind_of,
    make_column,
)
from core.errors import FailedPrecondition, InvalidArgument

ColumnKey = tuple[str, Kind]

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
        """Bytes of the arrays this version refers to (shared arrays are counted here too)."""
        own = self.contact.nbytes + self.ts_ms.nbytes + self.arrival.nbytes
        return int(own + sum(c.nbytes for c in self.columns.values()))

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
    return TableVersion(c, t, a, int(sorted_rows), MappingProxyType(dict(columns)))


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


def removed_entries(v: TableVersion, keep: np.ndarray) -> dict[ColumnKey, tuple[int, np.ndarray]]:
    """Per column losing entries when only rows `keep` stay: (rows losing it, values of lost entries)."""
    out: dict[ColumnKey, tuple[int, np.ndarray]] = {}
    for key, col in v.columns.items():
        lost = ~keep[col.row]
        if not lost.any():
            continue
        lost_rows = col.row[lost]
        distinct = int(np.count_nonzero(np.diff(lost_rows))) + 1  # rows ascend in every column
        vals = col.values[lost] if key[1] != Kind.NODE else col.values
        out[key] = (distinct, vals)
    return out


# ------------------------------------------------------------------------ the table


class _TailColumn:
    """Entries of one (path, kind) in the tail; rows are tail-local."""

    __slots__ = ("row", "values", "items")

    def __init__(self, kind: Kind) -> None:
        self.row = GrowableArray(ROW_DTYPE)
        self.values = None if kind == Kind.NODE else GrowableArray(VALUE_DTYPES[kind])
        self.items: dict[str, GrowableArray] = {}

    def add(self, row: int, value: Any, items: tuple[tuple[str, int], ...]) -> None:
        self.row.append(row)
        if self.values is not None:
            self.values.append(value)
        mine = self.items
        if not items and not mine:
            return
        if len(items) == len(mine) and all(p in mine for p, _ in items):
            for p, o in items:
                mine[p].append(o)
            return
        before = len(self.row) - 1
        present = set()
        for p, o in items:
            arr = mine.get(p)
            if arr is None:
                arr = mine[p] = GrowableArray(ITEM_DTYPE)
                arr.fill(NO_ITEM, before)
            arr.append(o)
            present.add(p)
        for p, arr in mine.items():
            if p not in present:
                arr.append(NO_ITEM)

    def column(self, key: ColumnKey, start: int = 0, shift: int = 0) -> PathColumn:
        """Entries [start, len) as a column, rows minus `shift` (copies when start > 0)."""
        if start == 0 and shift == 0:
            row = self.row.view()
            vals = None if self.values is None else self.values.view()
            items = {p: a.view() for p, a in self.items.items()}
        else:
            row = self.row.copy(start) - np.int32(shift)
            vals = None if self.values is None else self.values.copy(start)
            items = {p: a.copy(start) for p, a in self.items.items()}
        return make_column(key[0], key[1], row, vals, items)

    @property
    def nbytes(self) -> int:
        own = self.row.nbytes + (self.values.nbytes if self.values is not None else 0)
        return own + sum(a.nbytes for a in self.items.values())


class _Tail:
    """Rows appended since the last compaction, in arrival order."""

    __slots__ = ("contact", "ts_ms", "arrival", "columns")

    def __init__(self) -> None:
        self.contact = GrowableArray(np.uint32)
        self.ts_ms = GrowableArray(np.int64)
        self.arrival = GrowableArray(np.int64)
        self.columns: dict[ColumnKey, _TailColumn] = {}

    def __len__(self) -> int:
        return len(self.contact)

    def block(self) -> TableVersion:
        """Every tail row as a version (read-only views; rows numbered from 0)."""
        cols = {key: col.column(key) for key, col in self.columns.items()}
        return make_version(self.contact.view(), self.ts_ms.view(), self.arrival.view(), 0, cols)

    def rest(self, k: int, counts: Mapping[ColumnKey, int]) -> "_Tail":
        """A tail of rows [k, len), given each column's entry count for rows < k."""
        out = _Tail()
        out.contact.extend(self.contact.copy(k))
        out.ts_ms.extend(self.ts_ms.copy(k))
        out.arrival.extend(self.arrival.copy(k))
        for key, col in self.columns.items():
            start = counts.get(key, 0)
            if len(col.row) == start:
                continue
            new = _TailColumn(key[1])
            part = col.column(key, start, k)
            new.row.extend(part.row)
            if new.values is not None:
                new.values.extend(part.values)
            for p, arr in part.items.items():
                new.items[p] = GrowableArray.of(arr, ITEM_DTYPE)
            out.columns[key] = new
        return out

    @property
    def nbytes(self) -> int:
        own = self.contact.nbytes + self.ts_ms.nbytes + self.arrival.nbytes
        return own + sum(c.nbytes for c in self.columns.values())


Prepared = list[tuple[ColumnKey, Any, tuple[tuple[str, int], ...]]]


def prepare_leaves(leaves: Sequence[Any]) -> Prepared:
    """(column key, value, items) per leaf: numbers as float, booleans as 0/1, strings as text.

    Raises InvalidArgument before anything is stored.
    """
    out: Prepared = []
    for leaf in leaves:
        value = leaf.value
        kind = kind_of(value)
        if kind == Kind.NUM:
            try:
                value = float(value)
            except OverflowError:
                raise InvalidArgument(f"params.{leaf.path}", "number out of range") from None
        elif kind == Kind.BOOL:
            value = 1 if value else 0
        out.append(((leaf.path, kind), value, leaf.items))
    return out


def encode_strings(prepared: Prepared, dictionary: StringDictionary) -> Prepared:
    """`prepared` with string values replaced by codes held in `dictionary` (one reference each)."""
    return [
        (key, dictionary.acquire(value), items) if key[1] == Kind.STR else (key, value, items)
        for key, value, items in prepared
    ]


class Table:
    """One event type in one contact shard: a sorted base plus an append-only tail."""

    # a tail longer than max(compact_min_rows, compact_fraction * base rows) is merged on append
    compact_min_rows = COMPACT_MIN_ROWS
    compact_fraction = COMPACT_FRACTION

    def __init__(self, base: TableVersion | None = None) -> None:
        self._lock = threading.Lock()  # guards the tail and the installed base
        self._compact_lock = threading.Lock()  # one base replacement at a time
        self._base = sort_rows(base) if base is not None else empty_version()
        self._tail = _Tail()
        self._cached: TableVersion | None = self._base
        self._generation = 0  # bumped by every change

    def __len__(self) -> int:
        return len(self._base) + len(self._tail)

    @property
    def nbytes(self) -> int:
        return self._base.nbytes + self._tail.nbytes

    def append(
        self, contact: int, ts_ms: int, arrival: int, leaves: Sequence[Any], dictionary: StringDictionary
    ) -> None:
        """Adds one row to the tail; merges the tail into the base once it is long enough."""
        self.append_prepared(contact, ts_ms, arrival, encode_strings(prepare_leaves(leaves), dictionary))

    def append_prepared(self, contact: int, ts_ms: int, arrival: int, prepared: Prepared) -> None:
        """`append` of leaves already prepared and with strings encoded."""
        with self._lock:
            tail = self._tail
            row = len(tail.contact)
            tail.contact.append(contact)
            tail.ts_ms.append(ts_ms)
            tail.arrival.append(arrival)
            cols = tail.columns
            for key, value, items in prepared:
                col = cols.get(key)
                if col is None:
                    col = cols[key] = _TailColumn(key[1])
                col.add(row, value, items)
            self._generation += 1
            self._cached = None
            due = row + 1 > max(self.compact_min_rows, self.compact_fraction * len(self._base))
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
        with self._compact_lock:
            return self._compact_locked()

    def _snapshot(self) -> tuple[TableVersion, TableVersion, int, dict[ColumnKey, int]]:
        with self._lock:
            tail = self._tail
            counts = {key: len(col.row) for key, col in tail.columns.items()}
            return self._base, tail.block(), len(tail), counts

    def _install(self, new_base: TableVersion, k: int, counts: dict[ColumnKey, int]) -> None:
        with self._lock:
            self._tail = self._tail.rest(k, counts) if len(self._tail) > k else _Tail()
            self._base = new_base
            self._generation += 1
            self._cached = new_base if len(self._tail) == 0 else None

    def _compact_locked(self) -> TableVersion:
        base, block, k, counts = self._snapshot()
        if k == 0:
            return base
        merged = merge_sorted(base, sort_rows(block))
        self._install(merged, k, counts)
        return merged

    def rebuild(self, change: Callable[[TableVersion], TableVersion]) -> tuple[TableVersion, TableVersion]:
        """Replaces the rows by `change(sorted rows)` (copy-on-write); returns (before, after)."""
        with self._compact_lock:
            base, block, k, counts = self._snapshot()
            full = merge_sorted(base, sort_rows(block)) if k else base
            after = sort_rows(change(full))
            self._install(after, k, counts)
            return full, after

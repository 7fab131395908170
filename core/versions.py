"""Table versions: immutable cuts of an event table, and the row operations on them.

Rows [0, sorted_rows) of a version are ordered by (contact, ts_ms, arrival); rows after
them are a tail in arrival order. Every operation returns a new version (views or copies);
none changes its inputs.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from core.columns import (
    ITEM_DTYPE,
    NO_ITEM,
    ROW_DTYPE,
    VALUE_DTYPES,
    Kind,
    PathColumn,
    PathStats,
    column_stats,
    frozen,
    make_column,
)
from core.errors import FailedPrecondition

ColumnKey = tuple[str, Kind]


@dataclass(frozen=True, slots=True)
class TableVersion:
    """An immutable cut of a table; safe to read from any thread while ingest goes on."""

    contact: np.ndarray  # uint32[n]
    ts_ms: np.ndarray  # int64[n], epoch ms UTC
    # the global arrival sequence (breaks ties on ts) of row i is arrival_base + arrival_offset[i]:
    # uint32 offsets when the version's arrivals span less than 2**32, else int64 with base 0
    arrival_offset: np.ndarray
    sorted_rows: int  # rows [0, sorted_rows) sorted by (contact, ts_ms, arrival)
    columns: Mapping[ColumnKey, PathColumn]
    arrival_base: int = 0

    def __len__(self) -> int:
        return int(self.contact.shape[0])

    @property
    def is_sorted(self) -> bool:
        return self.sorted_rows == len(self)

    @property
    def arrival(self) -> np.ndarray:
        """int64[n]: the arrival sequence number of each row."""
        return self.arrivals(slice(None))

    def arrivals(self, index: Any) -> Any:
        """The arrival numbers of rows `index` (an int gives an int)."""
        picked = self.arrival_offset[index]
        if isinstance(picked, np.ndarray):
            if self.arrival_base == 0 and picked.dtype == np.int64:
                return picked
            return picked.astype(np.int64) + self.arrival_base
        return int(picked) + self.arrival_base

    def arrival_max(self) -> int:
        """The highest arrival number of a row (the version must have rows)."""
        return int(self.arrival_offset.max()) + self.arrival_base

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this version refers to (an array shared by columns counted once)."""
        arrays = {id(a): a for a in (self.contact, self.ts_ms, self.arrival_offset)}
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
    a = np.asarray(arrival, dtype=np.int64)
    if not c.shape == t.shape == a.shape:
        raise ValueError("contact, ts_ms and arrival must have one entry per row")
    base = 0
    if a.shape[0] and int(a.max()) - int(a.min()) < 2**32:  # offsets from the lowest fit in 4 bytes
        base = int(a.min())
        a = (a - base).astype(np.uint32)
    return TableVersion(c, t, frozen(a), int(sorted_rows), MappingProxyType(_share_equal_arrays(columns)), base)


def _share_equal_arrays(columns: Mapping[ColumnKey, PathColumn]) -> dict[ColumnKey, PathColumn]:
    """`columns`, with equal row arrays and equal items arrays held once: the columns of one
    array's elements (products.productId, products.price, ...) carry the same rows and
    ordinals, and every column with one entry per row the same row numbers."""
    out = dict(columns)
    kept: list[np.ndarray] = []

    def shared(a: np.ndarray) -> np.ndarray:
        for k in kept:
            if k is a or (k.shape == a.shape and k.dtype == a.dtype and _equal(k, a)):
                return k
        kept.append(a)
        return a

    for key, col in out.items():
        row = shared(col.row)
        items = {prefix: shared(a) for prefix, a in col.items.items()}
        if row is not col.row or any(items[p] is not a for p, a in col.items.items()):
            out[key] = replace(col, row=row, items=MappingProxyType(items) if items else col.items)
    return out


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays of one shape and dtype hold the same values: views of one memory at
    once, a few samples before a full comparison."""
    n = a.shape[0]
    if n == 0 or (a.ctypes.data == b.ctypes.data and a.strides == b.strides):
        return True
    for i in (0, n // 2, n - 1):
        if a[i] != b[i]:
            return False
    return bool(np.array_equal(a, b))


def with_paths(v: TableVersion, paths: frozenset[str]) -> TableVersion:
    """`v` with only the columns at or under `paths` (same rows, arrays shared)."""
    cols = {key: col for key, col in v.columns.items() if reads_path(key[0], paths)}
    if len(cols) == len(v.columns):
        return v
    return TableVersion(v.contact, v.ts_ms, v.arrival_offset, v.sorted_rows, MappingProxyType(cols), v.arrival_base)


def reads_path(path: str, paths: frozenset[str]) -> bool:
    """Whether `path` is one of `paths` or lies under one ("a.b" under "a")."""
    if path in paths:
        return True
    dot = path.rfind(".")
    while dot > 0:
        path = path[:dot]
        if path in paths:
            return True
        dot = path.rfind(".")
    return False


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
    return make_version(v.contact[lo:hi], v.ts_ms[lo:hi], v.arrivals(slice(lo, hi)), sorted_rows, cols)


def _ranges_to_index(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) over i (int64)."""
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
    return starts + np.arange(total, dtype=np.int64)


_dense: dict[int, tuple[weakref.ref, bool]] = {}  # id(row array) -> (ref, entry e is row e)
_dense_lock = threading.Lock()


def _is_dense(row: np.ndarray, n: int) -> bool:
    """Whether a column's row array is 0..n-1 (one entry per row); remembered per array."""
    if row.shape[0] != n:
        return False
    key = id(row)
    with _dense_lock:
        hit = _dense.get(key)
    if hit is not None and hit[0]() is row:
        return hit[1]
    dense = n == 0 or bool(row[0] == 0 and row[-1] == n - 1 and np.all(np.diff(row) == 1))
    ref = weakref.ref(row, lambda _, k=key: _dense.pop(k, None))
    with _dense_lock:
        _dense[key] = (ref, dense)
    return dense


def take_ranges(v: TableVersion, lo: np.ndarray, hi: np.ndarray, sorted_rows: int) -> TableVersion:
    """The rows of the ranges [lo[i], hi[i]) of `v` (ascending, disjoint, non-empty), in order,
    renumbered from 0. Entries are found by binary search: O(ranges x log entries) per column
    plus what is kept, however long `v` is."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    index = _ranges_to_index(lo, hi)
    offsets = np.cumsum(hi - lo) - (hi - lo)  # new number of row lo[i]
    # searched in the rows' own dtype: a wider key would make numpy copy the whole column
    lo_r, hi_r = lo.astype(ROW_DTYPE), hi.astype(ROW_DTYPE)
    cols: dict[ColumnKey, PathColumn] = {}
    n = len(v)
    for key, col in v.columns.items():
        if _is_dense(col.row, n):  # entry e is row e: no search
            ea, eb = lo, hi
        else:
            ea = np.searchsorted(col.row, lo_r, side="left")
            eb = np.searchsorted(col.row, hi_r, side="left")
        counts = eb - ea
        keep = counts > 0
        if not keep.any():
            continue
        entries = _ranges_to_index(ea[keep], eb[keep])
        shift = np.repeat((offsets - lo)[keep], counts[keep])
        rows = col.row[entries] + shift
        vals = None if col.kind == Kind.NODE else col.values[entries]
        items = {p: a[entries] for p, a in col.items.items()}
        cols[key] = make_column(col.path, col.kind, rows, vals, items)
    return make_version(v.contact[index], v.ts_ms[index], v.arrivals(index), sorted_rows, cols)


def _distinct(contact_ids: np.ndarray) -> np.ndarray:
    """The ids as ascending distinct uint32 (no sort when they already are)."""
    ids = np.asarray(contact_ids, dtype=np.uint32)
    if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        ids = np.unique(ids)
    return ids


def contact_rows_of(base: TableVersion, tail: TableVersion, contact_ids: np.ndarray) -> TableVersion:
    """A fully sorted version of the rows of `contact_ids` in a sorted base and an unsorted tail:
    base rows by binary search, tail rows by one scan of the tail's contacts."""
    ids = _distinct(contact_ids)
    parts = []
    if len(base) and ids.shape[0]:
        lo = np.searchsorted(base.contact, ids, side="left")
        hi = np.searchsorted(base.contact, ids, side="right")
        present = hi > lo
        if present.any():
            parts.append(take_ranges(base, lo[present], hi[present], int((hi - lo).sum())))
    if len(tail) and ids.shape[0]:
        rows = np.flatnonzero(np.isin(tail.contact, ids))
        if rows.shape[0]:
            parts.append(sort_rows(take_ranges(tail, rows, rows + 1, 0)))
    if not parts:
        return empty_version()
    return parts[0] if len(parts) == 1 else merge_sorted(parts[0], parts[1])


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
    return make_version(v.contact[rows], v.ts_ms[rows], v.arrivals(rows), sorted_rows, cols)


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
    if np.any(a.arrivals(prev[tied]) > b.arrivals(tied)):
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


def version_stats(v: TableVersion) -> dict[ColumnKey, PathStats]:
    """Statistics of every column of a built version."""
    return {key: column_stats(col) for key, col in v.columns.items() if len(col)}

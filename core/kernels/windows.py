"""Rows of a time window, and the entries of chosen rows.

A table version is sorted by (contact, ts); a window of time is scattered over every contact
run. `window_rows` takes the rows of a window through the version's time buckets (rows grouped
by hour, built once per version in linear time) and returns them ascending, i.e. grouped by
contact and ts-sorted within each contact like the version itself. `entries_of_rows` maps chosen rows
to their entries through a per-row offsets array (`row_offsets`).
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.jit import jit


@jit
def _row_offsets(entry_row: np.ndarray, n_rows: int) -> np.ndarray:
    out = np.zeros(n_rows + 1, np.int64)
    for r in entry_row:
        out[r + 1] += 1
    for r in range(n_rows):
        out[r + 1] += out[r]
    return out


def row_offsets(entry_row: np.ndarray, n_rows: int) -> np.ndarray:
    """int64[n_rows + 1]: the entries of row r are offsets[r]:offsets[r+1] (entry_row ascending,
    every value in [0, n_rows))."""
    entry_row = readonly(entry_row, np.int32)
    n_rows = int(n_rows)
    if entry_row.shape[0] and (int(entry_row[0]) < 0 or int(entry_row[-1]) >= n_rows):
        raise KernelArgumentError("entry_row", f"must lie in [0, {n_rows})")
    return _row_offsets(entry_row, n_rows)


@jit
def _entries_of_rows(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = 0
    for r in rows:
        total += offsets[r + 1] - offsets[r]
    entry = np.empty(total, np.int64)
    local_row = np.empty(total, np.int32)
    k = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for e in range(offsets[r], offsets[r + 1]):
            entry[k] = e
            local_row[k] = i
            k += 1
    return entry, local_row


def entries_of_rows(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entry int64[k], local_row int32[k]): every entry of the chosen rows, rows in the order
    given and entries in order within a row; local_row[i] is the position in `rows` of the row
    holding entry[i]."""
    offsets = readonly(offsets, np.int64)
    rows = readonly(rows, np.int64)
    if rows.shape[0] and (int(rows.min()) < 0 or int(rows.max()) >= offsets.shape[0] - 1):
        raise KernelArgumentError("rows", f"must lie in [0, {offsets.shape[0] - 1})")
    return _entries_of_rows(offsets, rows)


_MAX_BUCKETS = 65_535  # bucket numbers fit uint16, whose stable argsort is a radix sort
_BUCKET_MS = 3_600_000  # an hour, widened when the version spans more than _MAX_BUCKETS of them


def time_buckets(ts_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(order int32[n], bucket_start int64[k+1], base_ms, width_ms): the rows grouped by time
    bucket [base + b*width, base + (b+1)*width), ascending rows within a bucket; bucket b holds
    order[bucket_start[b]:bucket_start[b+1]]. Linear time (a radix sort of 16-bit keys)."""
    ts_ms = readonly(ts_ms, np.int64)
    if ts_ms.shape[0] == 0:
        return np.zeros(0, np.int32), np.zeros(1, np.int64), 0, _BUCKET_MS
    base = int(ts_ms.min())
    span = int(ts_ms.max()) - base
    width = max(_BUCKET_MS, -(-(span + 1) // _MAX_BUCKETS))
    bucket = ((ts_ms - base) // width).astype(np.uint16)
    order = np.argsort(bucket, kind="stable").astype(np.int32)
    starts = np.zeros(int(bucket.max()) + 2, np.int64)
    np.cumsum(np.bincount(bucket), out=starts[1:])
    return order, starts, base, width


def window_rows(
    ts_ms: np.ndarray, buckets: tuple[np.ndarray, np.ndarray, int, int], lo_ms: int, hi_ms: int
) -> np.ndarray:
    """Ascending rows (int64) with lo_ms <= ts < hi_ms, read through `time_buckets(ts_ms)`."""
    order, starts, base, width = buckets
    k = starts.shape[0] - 1
    first = min(max((lo_ms - base) // width, 0), k)
    last = min(max((hi_ms - 1 - base) // width + 1, 0), k)  # buckets [first, last) may hold rows
    if last <= first:
        return np.zeros(0, np.int64)
    rows = order[int(starts[first]):int(starts[last])].astype(np.int64)
    rows.sort()
    t = ts_ms[rows]
    return rows[(t >= lo_ms) & (t < hi_ms)]


def window_size(buckets: tuple[np.ndarray, np.ndarray, int, int], lo_ms: int, hi_ms: int) -> int:
    """An upper bound of the rows in [lo_ms, hi_ms): the rows of the buckets it touches."""
    _, starts, base, width = buckets
    k = starts.shape[0] - 1
    first = min(max((lo_ms - base) // width, 0), k)
    last = min(max((hi_ms - 1 - base) // width + 1, 0), k)
    return int(starts[last] - starts[first]) if last > first else 0

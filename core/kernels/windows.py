"""Per-contact measures over the rows of a time window only, read through time buckets.

A table version is sorted by (contact, ts); a window of time is scattered over every contact
run. `time_buckets` groups the rows by hour (built once per version in linear time): taken in
its `order`, the rows of a window are the consecutive rows [start, stop) of a few buckets
(`bucket_span`), filtered by ts. The caller lays out the arrays it reads in that order once
per version, so the `window_*` kernels stream just those rows and accumulate per run, with no
sort. A run's rows stay in ascending original order (buckets ascend in time, rows ascend
within a bucket, and a run is ts-sorted): the order of the run kernels of
core.kernels.aggregates, so float sums come out identical.

Common arguments, all in bucket order: [start, stop) the candidate rows, `run_of_row`
int32[n] and `n_runs`, `ts_ms` int64[n], `row_mask` bool[n] (None: every row), window
[lo_ms, hi_ms). Entries of a row: `offsets[r]:offsets[r+1]` (`row_offsets`,
`reorder_entries`), or entry r when `offsets` is None. Results list the runs with at least
row in the window passing the mask (stats: one value there; distinct: one id) as
`group_run` int32, each such run once with one value, in no promised order.

Per-run accumulators are arrays of n_runs slots, touched at random by the rows read. A call
reading few rows for its runs (`sparse`: at most n_runs / SPARSE_SHARE of them) notes each run
on its first touch, so its cost follows the rows read; otherwise the touched runs are found
by one sequential (branch-free) pass over the slots. Stats give each run touched a compact
slot (two random accesses a row); `window_extreme` (min or max alone) keeps one value per run
in place instead when it reads many rows for its runs. Distinct reads its entries in one flat
loop through the row of each entry (`entry_rows`), keeps only the (run, id) bits and counts
them at the end. The module's knobs pick the paths; `forced` sets them for
a block (tests and benchmarks; module state, so not while other threads evaluate).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

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


def bucket_span(buckets: tuple[np.ndarray, np.ndarray, int, int], lo_ms: int, hi_ms: int) -> tuple[int, int]:
    """[start, stop) of `order` holding every row with lo_ms <= ts < hi_ms (and possibly a few
    rows of the same edge buckets outside it)."""
    _, starts, base, width = buckets
    k = starts.shape[0] - 1
    first = min(max((lo_ms - base) // width, 0), k)
    last = min(max((hi_ms - 1 - base) // width + 1, 0), k)
    return (int(starts[first]), int(starts[last])) if last > first else (0, 0)


def window_size(buckets: tuple[np.ndarray, np.ndarray, int, int], lo_ms: int, hi_ms: int) -> int:
    """An upper bound of the rows in [lo_ms, hi_ms): the rows of the buckets it touches."""
    _, starts, base, width = buckets
    k = starts.shape[0] - 1
    first = min(max((lo_ms - base) // width, 0), k)
    last = min(max((hi_ms - 1 - base) // width + 1, 0), k)
    return int(starts[last] - starts[first]) if last > first else 0


# distinct keeps one bit per (run, id) when that takes at most BITSET_WORDS 64-bit words, or at
# most BITSET_PER_ENTRY words per entry read (a hash table would take 2 to 4 per entry, and
# probe); otherwise an open-addressing hash table of (run, id) keys
BITSET_WORDS = 1 << 18
BITSET_PER_ENTRY = 4
MAX_UNITS = 63  # window_units keeps the filled units of a run in one 64-bit word
SPARSE_SHARE = 24  # a call reading at most n_runs / SPARSE_SHARE rows notes the runs it touches (bench.windows)
EXTREME_SHARE = 4  # window_extreme keeps one value per run when reading n_runs / EXTREME_SHARE rows or more


@contextmanager
def forced(**knobs: int) -> Iterator[None]:
    """Within the block, this module's path knobs (SPARSE_SHARE, EXTREME_SHARE, BITSET_WORDS,
    BITSET_PER_ENTRY) hold the given values: for tests and benchmarks taking one path."""
    module = sys.modules[__name__]
    saved = {k: getattr(module, k) for k in knobs}
    for k, v in knobs.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(module, k, v)


def _sparse(start: int, stop: int, n_runs: int) -> bool:
    """Whether a call over rows [start, stop) notes its runs on first touch (see the module
    docstring): it reads so few rows that a pass over all n_runs slots would cost more."""
    return (stop - start) * SPARSE_SHARE <= n_runs


@jit
def _nonzero_runs(per_run: np.ndarray, cap: int) -> np.ndarray:
    """int32 indices of the runs with a non-zero entry (ascending); at most `cap` of them."""
    out = np.empty(min(cap, per_run.shape[0]) + 1, np.int32)
    k = 0
    for j in range(per_run.shape[0]):  # branch-free: touched runs come at random
        out[k] = j
        k += per_run[j] != 0
    return out[:k].copy()


@jit
def _bits(x: np.uint64) -> int:
    c = 0
    while x:
        x &= x - np.uint64(1)
        c += 1
    return c


@jit
def _passes(r: int, ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, lo_ms: int, hi_ms: int) -> bool:
    """Whether row r lies in the window [lo_ms, hi_ms) and passes the mask."""
    t = ts_ms[r]
    return t >= lo_ms and t < hi_ms and (not use_mask or row_mask[r])


@jit
def _row_entries(r: int, offsets: np.ndarray, dense: bool) -> tuple[int, int]:
    """Entries [e0, e1) of row r: entry r alone when `dense`."""
    if dense:
        return r, r + 1
    return offsets[r], offsets[r + 1]


# Accumulators are indexed by run (one random access per row): arrays of n_runs slots,
# zeroed per call; the runs touched are noted on first touch (sparse) or found in one pass.


@jit
def _window_count(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                  ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, lo_ms: int,
                  hi_ms: int, sparse: bool) -> tuple[np.ndarray, np.ndarray]:
    count = np.zeros(n_runs, np.int32)  # a run holds fewer than 2**31 rows (run_of_row is int32)
    cap = min(stop - start, n_runs)  # no more runs touched than rows read
    touched = np.empty(cap if sparse else 0, np.int32)
    g = 0
    for r in range(start, stop):
        t = ts_ms[r]
        if t >= lo_ms and t < hi_ms and (not use_mask or row_mask[r]):
            j = run_of_row[r]
            if sparse and count[j] == 0:
                touched[g] = j
                g += 1
            count[j] += 1
    group_run = touched[:g].copy() if sparse else _nonzero_runs(count, cap)
    return group_run, count[group_run].astype(np.int64)


@jit
def _window_stats(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                  ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, lo_ms: int, hi_ms: int,
                  offsets: np.ndarray, dense: bool, entry_value: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # a run gets a compact slot on its first value; its count, sum, min and max share one
    # cache line, so a row costs two random accesses (slot map, accumulators). slot[j] is
    # 1 + the slot of run j, 0 for none (a zeroed map). Slots: at most one per run, and at
    # most one per row read.
    slot = np.zeros(n_runs, np.int32)
    cap = min(stop - start, n_runs)
    acc = np.empty((cap, 4), np.float64)
    group_run = np.empty(cap, np.int32)
    g = 0
    for r in range(start, stop):
        if not _passes(r, ts_ms, row_mask, use_mask, lo_ms, hi_ms):
            continue
        j = run_of_row[r]
        e0, e1 = _row_entries(r, offsets, dense)
        for e in range(e0, e1):
            x = entry_value[e]
            if x != x:
                continue
            q = slot[j] - 1
            if q < 0:
                q = g
                slot[j] = q + 1
                group_run[q] = j
                acc[q, 0] = 1.0
                acc[q, 1] = x
                acc[q, 2] = x
                acc[q, 3] = x
                g += 1
            else:
                acc[q, 0] += 1.0
                acc[q, 1] += x
                low = acc[q, 2]
                high = acc[q, 3]
                acc[q, 2] = x if x < low else low  # selects, not branches
                acc[q, 3] = x if x > high else high
    count = np.empty(g, np.int64)
    for q in range(g):
        count[q] = np.int64(acc[q, 0])
    return group_run[:g].copy(), count, acc[:g, 1].copy(), acc[:g, 2].copy(), acc[:g, 3].copy()


@jit
def _window_extreme(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                    ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, lo_ms: int, hi_ms: int,
                    offsets: np.ndarray, dense: bool, entry_value: np.ndarray, want_max: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    # one value per run, updated in place: a row costs one random access (no slot map)
    sign = -1.0 if want_max else 1.0  # the max is the min of the negated values
    best = np.full(n_runs, np.inf)
    seen = np.zeros(n_runs, np.bool_)
    for r in range(start, stop):
        if not _passes(r, ts_ms, row_mask, use_mask, lo_ms, hi_ms):
            continue
        j = run_of_row[r]
        e0, e1 = _row_entries(r, offsets, dense)
        for e in range(e0, e1):
            x = entry_value[e]
            if x != x:
                continue
            seen[j] = True
            y = sign * x
            b = best[j]
            best[j] = y if y < b else b  # the first of equal values stays (0.0 and -0.0 too)
    group_run = _nonzero_runs(seen, min(stop - start, n_runs))
    out = np.empty(group_run.shape[0], np.float64)
    for q in range(group_run.shape[0]):
        out[q] = sign * best[group_run[q]]
    return group_run, out


@jit
def _popcount(x: np.uint64) -> int:
    """Set bits of x, in constant time."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    x = x + (x >> np.uint64(8))  # byte sums, added without a wrapping multiply
    x = x + (x >> np.uint64(16))
    x = x + (x >> np.uint64(32))
    return int(x & np.uint64(0x7F))


@jit
def _window_distinct(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                     ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, lo_ms: int, hi_ms: int,
                     offsets: np.ndarray, dense: bool, entry_row: np.ndarray, entry_id: np.ndarray, n_ids: int,
                     bitset_words: int, bitset_per_entry: int, sparse: bool) -> tuple[np.ndarray, np.ndarray]:
    # Entries are read in one flat loop (a per-row inner loop of varying length keeps missing
    # the branch predictor). The bitset keeps one bit per (run, id), a run's words side by side,
    # so an entry costs one random access (ids of 64 or fewer: one word a run, which also tells
    # a first touch); counts are popcounts of the touched runs' words, taken at the end. The
    # hash table holds (run, id) keys and counts per run as it goes.
    words = (n_ids + 63) // 64
    e_start, e_stop = (start, stop) if dense else (offsets[start], offsets[stop])
    # entries read: with no mask, those of the candidate rows (the edge buckets add few);
    # counted only when the bitset is not small anyway
    entries = e_stop - e_start
    if n_runs * words > bitset_words and use_mask:
        entries = 0
        for e in range(e_start, e_stop):
            if _passes(e if dense else entry_row[e], ts_ms, row_mask, use_mask, lo_ms, hi_ms):
                entries += 1
    use_bits = n_runs * words <= max(bitset_words, bitset_per_entry * entries)
    bits = np.zeros(n_runs * words if use_bits else 0, np.uint64)
    size = 16
    if not use_bits:
        while size < 2 * entries:
            size *= 2
    table = np.full(size if not use_bits else 0, -1, np.int64)
    distinct = np.zeros(n_runs if not use_bits else 0, np.int64)
    cap = min(e_stop - e_start, n_runs)
    touched = np.empty(cap if sparse else 0, np.int32)
    seen = np.zeros(n_runs if sparse and use_bits and words > 1 else 0, np.bool_)
    g = 0
    for e in range(e_start, e_stop):
        r = e if dense else entry_row[e]
        if not _passes(r, ts_ms, row_mask, use_mask, lo_ms, hi_ms):
            continue
        v = entry_id[e]
        if v < 0 or v >= n_ids:
            continue
        j = run_of_row[r]
        if use_bits:
            first = j * words
            if sparse:
                if words == 1:
                    if bits[first] == 0:
                        touched[g] = j
                        g += 1
                elif not seen[j]:
                    seen[j] = True
                    touched[g] = j
                    g += 1
            bits[first + (v >> 6)] |= np.uint64(1) << np.uint64(v & 63)
            continue
        key = np.int64(j) * n_ids + v
        h = (key * 40503 + (key >> 13)) & (size - 1)  # keys < 2**52: no overflow
        while table[h] != -1 and table[h] != key:
            h = (h + 1) & (size - 1)
        if table[h] != -1:
            continue
        table[h] = key
        if sparse and distinct[j] == 0:
            touched[g] = j
            g += 1
        distinct[j] += 1
    if not use_bits:
        group_run = touched[:g].copy() if sparse else _nonzero_runs(distinct, cap)
        return group_run, distinct[group_run]
    return _bit_counts(bits, words, n_runs, sparse, touched[:g].copy(), cap)


@jit
def _bit_counts(bits: np.ndarray, words: int, n_runs: int, noted: bool, touched: np.ndarray,
                cap: int) -> tuple[np.ndarray, np.ndarray]:
    """(group_run, set bits of each): the runs with a bit set (`touched` when `noted`)."""
    if noted:
        group_run = touched
    else:
        group_run = np.empty(cap + 1, np.int32)
        g = 0
        for j in range(n_runs):
            w = j * words
            if words == 1:  # branch-free: about half the runs may be touched, at random
                group_run[g] = j
                g += bits[w] != 0
                continue
            while w < (j + 1) * words and bits[w] == 0:
                w += 1
            if w < (j + 1) * words:
                group_run[g] = j
                g += 1
        group_run = group_run[:g].copy()
    counts = np.zeros(group_run.shape[0], np.int64)
    for q in range(group_run.shape[0]):
        j = group_run[q]
        for w in range(j * words, (j + 1) * words):
            counts[q] += _popcount(bits[w])
    return group_run, counts


@jit
def _window_units(start: int, stop: int, run_of_row: np.ndarray, n_runs: int, ts_ms: np.ndarray,
                  row_mask: np.ndarray, use_mask: bool, bounds_ms: np.ndarray,
                  sparse: bool) -> tuple[np.ndarray, np.ndarray]:
    k = bounds_ms.shape[0] - 1
    filled = np.zeros(n_runs, np.uint64)
    cap = min(stop - start, n_runs)
    touched = np.empty(cap if sparse else 0, np.int32)
    g = 0
    for r in range(start, stop):
        t = ts_ms[r]
        if t < bounds_ms[0] or t >= bounds_ms[k] or (use_mask and not row_mask[r]):
            continue
        lo = 0
        hi = k  # unit u: bounds[u] <= t < bounds[u+1]; find the last bound <= t
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if bounds_ms[mid] <= t:
                lo = mid
            else:
                hi = mid
        j = run_of_row[r]
        if sparse and filled[j] == 0:
            touched[g] = j
            g += 1
        filled[j] |= np.uint64(1) << np.uint64(lo)
    group_run = touched[:g].copy() if sparse else _nonzero_runs(filled, cap)
    units = np.empty(group_run.shape[0], np.int64)
    for q in range(group_run.shape[0]):
        units[q] = _bits(filled[group_run[q]])
    return group_run, units


def window_units(start: int, stop: int, run_of_row: np.ndarray, n_runs: int, ts_ms: np.ndarray,
                 row_mask: np.ndarray | None, bounds_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group_run, units int64): how many of the units [bounds_ms[u], bounds_ms[u+1]) hold a
    row of [start, stop) passing the mask, per run (runs with such a row only); at most
    MAX_UNITS units."""
    args = _common(start, stop, run_of_row, n_runs, ts_ms, row_mask)
    bounds_ms = readonly(bounds_ms, np.int64)
    if bounds_ms.ndim != 1 or not 2 <= bounds_ms.shape[0] <= MAX_UNITS + 1 or np.any(np.diff(bounds_ms) <= 0):
        raise KernelArgumentError("bounds_ms", f"must be 2 to {MAX_UNITS + 1} strictly ascending instants")
    return _window_units(*args, bounds_ms, _sparse(args[0], args[1], args[3]))


@jit
def _reorder_entries(offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = order.shape[0]
    out = np.zeros(n + 1, np.int64)
    for i in range(n):
        r = order[i]
        out[i + 1] = out[i] + offsets[r + 1] - offsets[r]
    entry = np.empty(out[n], np.int64)
    k = 0
    for i in range(n):
        r = order[i]
        for e in range(offsets[r], offsets[r + 1]):
            entry[k] = e
            k += 1
    return out, entry


def reorder_entries(offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of the rows taken in `order`, entry int64[k]): row order[i] becomes row i, its
    entries keep their order; entry[j] is the source entry of new entry j."""
    offsets = readonly(offsets, np.int64)
    order = readonly(order, np.int32)
    if order.shape[0] and (int(order.min()) < 0 or int(order.max()) >= offsets.shape[0] - 1):
        raise KernelArgumentError("order", f"must lie in [0, {offsets.shape[0] - 1})")
    return _reorder_entries(offsets, order)


def entry_rows(offsets: np.ndarray) -> np.ndarray:
    """int32[k]: the row of every entry (offsets int64[n+1] of the rows' entries)."""
    offsets = readonly(offsets, np.int64)
    return np.repeat(np.arange(offsets.shape[0] - 1, dtype=np.int32), np.diff(offsets))


def run_of_row(run_start: np.ndarray) -> np.ndarray:
    """int32[n]: the run of every row (run_start int64[m+1] of a contact-sorted version)."""
    run_start = readonly(run_start, np.int64)
    return np.repeat(np.arange(run_start.shape[0] - 1, dtype=np.int32), np.diff(run_start))


def _common(start: int, stop: int, runs: np.ndarray, n_runs: int, ts_ms: np.ndarray,
            row_mask: np.ndarray | None) -> tuple:
    runs = readonly(runs, np.int32)
    ts_ms = readonly(ts_ms, np.int64)
    if not 0 <= start <= stop <= ts_ms.shape[0]:
        raise KernelArgumentError("start", f"[{start}, {stop}) must lie in [0, {ts_ms.shape[0]}]")
    if runs.shape != ts_ms.shape:
        raise KernelArgumentError("run_of_row", "must have one run per row")
    if row_mask is None:
        mask, use = np.zeros(0, np.bool_), False
    else:
        mask, use = readonly(row_mask, np.bool_), True
        if mask.shape != ts_ms.shape:
            raise KernelArgumentError("row_mask", f"must have one entry per row ({ts_ms.shape[0]})")
    return int(start), int(stop), runs, int(n_runs), ts_ms, mask, use


def _entries(offsets: np.ndarray | None, values: np.ndarray, dtype: object, n_rows: int) -> tuple:
    values = readonly(values, dtype)
    if offsets is None:
        if values.shape[0] != n_rows:
            raise KernelArgumentError("entry values", "must have one value per row when offsets is None")
        return np.zeros(1, np.int64), True, values
    offsets = readonly(offsets, np.int64)
    if offsets.shape[0] != n_rows + 1 or int(offsets[-1]) != values.shape[0]:
        raise KernelArgumentError("offsets", f"must have n_rows + 1 ({n_rows + 1}) entries ending at the values")
    return offsets, False, values


def window_count(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                 ts_ms: np.ndarray, row_mask: np.ndarray | None, lo_ms: int,
                 hi_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(group_run, count int64): rows [start, stop) in the window passing the mask, per run."""
    args = _common(start, stop, run_of_row, n_runs, ts_ms, row_mask)
    return _window_count(*args, int(lo_ms), int(hi_ms), _sparse(args[0], args[1], args[3]))


def window_stats(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                 ts_ms: np.ndarray, row_mask: np.ndarray | None, lo_ms: int, hi_ms: int,
                 offsets: np.ndarray | None, entry_value: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(group_run, count, sum in entry order, min, max) of the non-NaN entry values of the rows
    in the window passing the mask, per run that has at least one such value."""
    args = _common(start, stop, run_of_row, n_runs, ts_ms, row_mask)
    offs, dense, values = _entries(offsets, entry_value, np.float64, args[4].shape[0])
    return _window_stats(*args, int(lo_ms), int(hi_ms), offs, dense, values)


def window_distinct(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                    ts_ms: np.ndarray, row_mask: np.ndarray | None, lo_ms: int, hi_ms: int,
                    offsets: np.ndarray | None, entry_id: np.ndarray, n_ids: int,
                    entry_row: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(group_run, distinct int64): distinct ids among the entries of the rows in the window
    passing the mask, per run that has one; an id outside [0, n_ids) is no value. `entry_row`
    (int32, the row of every entry: `entry_rows(offsets)`) may be passed when it is at hand."""
    args = _common(start, stop, run_of_row, n_runs, ts_ms, row_mask)
    offs, dense, ids = _entries(offsets, entry_id, np.int32, args[4].shape[0])
    if dense:
        rows = np.zeros(0, np.int32)
    elif entry_row is None:
        rows = entry_rows(offs)
    else:
        rows = readonly(entry_row, np.int32)
        if rows.shape != ids.shape:
            raise KernelArgumentError("entry_row", "must have one row per entry")
    return _window_distinct(*args, int(lo_ms), int(hi_ms), offs, dense, rows, ids, int(n_ids), BITSET_WORDS,
                            BITSET_PER_ENTRY, _sparse(args[0], args[1], args[3]))


def window_extreme(start: int, stop: int, run_of_row: np.ndarray, n_runs: int,
                   ts_ms: np.ndarray, row_mask: np.ndarray | None, lo_ms: int, hi_ms: int,
                   offsets: np.ndarray | None, entry_value: np.ndarray, want_max: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(group_run, min or max): as `window_stats` with only the min (max when `want_max`).
    Reading many rows for the runs, one value per run in place; otherwise through window_stats
    (compact slots: its cost follows the rows read)."""
    args = _common(start, stop, run_of_row, n_runs, ts_ms, row_mask)
    offs, dense, values = _entries(offsets, entry_value, np.float64, args[4].shape[0])
    if (args[1] - args[0]) * EXTREME_SHARE < args[3]:
        group, _, _, low, high = _window_stats(*args, int(lo_ms), int(hi_ms), offs, dense, values)
        return group, high if want_max else low
    return _window_extreme(*args, int(lo_ms), int(hi_ms), offs, dense, values, bool(want_max))

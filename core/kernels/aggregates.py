"""Per-contact aggregates over the rows of each contact run that lie in a time window.

Common arguments: `run_start` int64[m+1] (rows of run j are run_start[j]:run_start[j+1],
ts-sorted), `ts_ms` int64[n], `row_mask` bool[n] (rows passing the filters; ignored when
`use_mask` is False), window [lo_ms, hi_ms). Entry streams (`entry_row` int32 ascending,
one value per entry, several entries per row when a path crosses an array) attach values to
rows; a NaN value is "no value" and is skipped.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.jit import jit
from core.kernels.runs import _gallop, _lower_bound

_EMPTY_MASK = readonly(np.zeros(0, dtype=np.bool_), np.bool_)


# Runs up to this many rows are scanned branch-free; longer ones are binary searched.
_SCAN_ROWS = 48


@jit
def _count_in_window(
    run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, lo_ms: int, hi_ms: int
) -> np.ndarray:
    m = run_start.shape[0] - 1
    out = np.zeros(m, np.int64)
    for j in range(m):
        a = run_start[j]
        b = run_start[j + 1]
        c = 0
        if ts_ms[b - 1] < lo_ms or ts_ms[a] >= hi_ms:
            pass  # the run lies outside the window
        elif ts_ms[a] >= lo_ms and ts_ms[b - 1] < hi_ms:  # inside it: ts need not be read
            if use_mask:
                for r in range(a, b):
                    c += row_mask[r]
            else:
                c = b - a
        elif b - a <= _SCAN_ROWS:
            if use_mask:
                for r in range(a, b):
                    c += row_mask[r] & (ts_ms[r] >= lo_ms) & (ts_ms[r] < hi_ms)
            else:
                for r in range(a, b):
                    c += (ts_ms[r] >= lo_ms) & (ts_ms[r] < hi_ms)
        else:
            a = _lower_bound(ts_ms, a, b, lo_ms)
            b = _lower_bound(ts_ms, a, b, hi_ms)
            if use_mask:
                for r in range(a, b):
                    c += row_mask[r]
            else:
                c = b - a
        out[j] = c
    return out


def _mask_args(row_mask: np.ndarray | None, n: int) -> tuple[np.ndarray, bool]:
    if row_mask is None:
        return _EMPTY_MASK, False
    row_mask = readonly(row_mask, np.bool_)
    if row_mask.shape != (n,):
        raise KernelArgumentError("row_mask", f"must have one entry per row ({n})")
    return row_mask, True


def _run_args(run_start: np.ndarray, ts_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    run_start = readonly(run_start, np.int64)
    ts_ms = readonly(ts_ms, np.int64)
    if run_start.ndim != 1 or run_start.shape[0] < 1:
        raise KernelArgumentError("run_start", "must be a one-dimensional array of m+1 offsets")
    if run_start[-1] != ts_ms.shape[0]:
        raise KernelArgumentError("run_start", "last offset must equal the number of rows")
    return run_start, ts_ms


_NO_ROWS = readonly(np.zeros(0, np.int32), np.int32)


def _entry_args(
    entry_row: np.ndarray | None, entry_value: np.ndarray, n_rows: int
) -> tuple[np.ndarray, bool, np.ndarray]:
    """(entry_row, dense, entry_value); entry_row None means entry e is row e."""
    entry_value = readonly(entry_value, np.float64)
    if entry_row is None:
        if entry_value.shape != (n_rows,):
            raise KernelArgumentError("entry_value", "must have one value per row when entry_row is None")
        return _NO_ROWS, True, entry_value
    entry_row = readonly(entry_row, np.int32)
    if entry_row.shape != entry_value.shape or entry_row.ndim != 1:
        raise KernelArgumentError("entry_value", "must have one value per entry row")
    return entry_row, False, entry_value


def count_in_window(
    run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray | None, lo_ms: int, hi_ms: int
) -> np.ndarray:
    """Per run: the number of rows with lo_ms <= ts < hi_ms that pass `row_mask` (None: all)."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    return _count_in_window(run_start, ts_ms, mask, use, int(lo_ms), int(hi_ms))


@jit
def _entry_span(entry_row: np.ndarray, e: int, a: int, b: int) -> tuple[int, int]:
    """Entries [e0, e1) of rows [a, b), searching forward from entry e (entries before e
    belong to rows < a)."""
    ne = entry_row.shape[0]
    e0 = _gallop(entry_row, e, ne, a)
    return e0, _gallop(entry_row, e0, ne, b)


@jit
def _value_stats(
    run_start: np.ndarray,
    ts_ms: np.ndarray,
    row_mask: np.ndarray,
    use_mask: bool,
    lo_ms: int,
    hi_ms: int,
    entry_row: np.ndarray,
    dense: bool,
    entry_value: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    m = run_start.shape[0] - 1
    count = np.zeros(m, np.int64)
    total = np.zeros(m, np.float64)
    low = np.full(m, np.nan)
    high = np.full(m, np.nan)
    e = 0
    for j in range(m):
        a = run_start[j]
        b = run_start[j + 1]
        if b - a > _SCAN_ROWS:  # long run: keep only the rows in the window
            a = _gallop(ts_ms, a, b, lo_ms)
            b = _gallop(ts_ms, a, b, hi_ms)
        if dense:
            e0, e1 = a, b
        else:
            e0, e1 = _entry_span(entry_row, e, a, b)
            e = e1
        c = 0
        s = 0.0
        mn = np.inf
        mx = -np.inf
        for k in range(e0, e1):
            r = k if dense else entry_row[k]
            x = entry_value[k]
            t = ts_ms[r]
            ok = (x == x) & (t >= lo_ms) & (t < hi_ms)
            if use_mask:
                ok &= row_mask[r]
            if ok:
                c += 1
                s += x
                mn = min(mn, x)
                mx = max(mx, x)
        count[j] = c
        total[j] = s
        if c > 0:
            low[j] = mn
            high[j] = mx
    return count, total, low, high


def value_stats(
    run_start: np.ndarray,
    ts_ms: np.ndarray,
    row_mask: np.ndarray | None,
    lo_ms: int,
    hi_ms: int,
    entry_row: np.ndarray,
    entry_value: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per run, over the non-NaN entry values of rows in the window passing the mask:
    (count int64, sum float64 in entry order, min, max; NaN when count is 0).

    `entry_row` None: entry e is row e."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    entry_row, dense, entry_value = _entry_args(entry_row, entry_value, ts_ms.shape[0])
    return _value_stats(run_start, ts_ms, mask, use, int(lo_ms), int(hi_ms), entry_row, dense, entry_value)


@jit
def _distinct_in_window(
    run_start: np.ndarray,
    ts_ms: np.ndarray,
    row_mask: np.ndarray,
    use_mask: bool,
    lo_ms: int,
    hi_ms: int,
    entry_row: np.ndarray,
    dense: bool,
    entry_key: np.ndarray,
) -> np.ndarray:
    m = run_start.shape[0] - 1
    out = np.zeros(m, np.int64)
    buf = np.empty(64, np.float64)
    e = 0
    for j in range(m):
        a = _lower_bound(ts_ms, run_start[j], run_start[j + 1], lo_ms)
        b = _lower_bound(ts_ms, a, run_start[j + 1], hi_ms)
        if dense:
            e0, e1 = a, b
        else:
            e0, e1 = _entry_span(entry_row, e, a, b)
            e = e1
        k = 0
        for i in range(e0, e1):
            r = i if dense else entry_row[i]
            x = entry_key[i]
            if x == x and (not use_mask or row_mask[r]):
                if k == buf.shape[0]:
                    bigger = np.empty(2 * k, np.float64)
                    bigger[:k] = buf
                    buf = bigger
                buf[k] = x + 0.0  # -0.0 and 0.0 are one value
                k += 1
        if k == 0:
            continue
        keys = np.sort(buf[:k])
        d = 1
        for i in range(1, k):
            d += keys[i] != keys[i - 1]
        out[j] = d
    return out


def distinct_in_window(
    run_start: np.ndarray,
    ts_ms: np.ndarray,
    row_mask: np.ndarray | None,
    lo_ms: int,
    hi_ms: int,
    entry_row: np.ndarray | None,
    entry_key: np.ndarray,
) -> np.ndarray:
    """Per run: the number of distinct non-NaN keys among entries of rows in the window
    passing the mask (keys of one kind: numbers by value, string codes, booleans 0/1).

    `entry_row` None: entry e is row e."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    entry_row, dense, entry_key = _entry_args(entry_row, entry_key, ts_ms.shape[0])
    return _distinct_in_window(run_start, ts_ms, mask, use, int(lo_ms), int(hi_ms), entry_row, dense, entry_key)


@jit
def _distinct_ids_in_window(
    run_start: np.ndarray,
    ts_ms: np.ndarray,
    row_mask: np.ndarray,
    use_mask: bool,
    lo_ms: int,
    hi_ms: int,
    entry_row: np.ndarray,
    dense: bool,
    entry_id: np.ndarray,
    n_ids: int,
) -> np.ndarray:
    m = run_start.shape[0] - 1
    out = np.zeros(m, np.int64)
    seen = np.full(max(n_ids, 1), -1, np.int64)  # seen[id] == j: id already counted for run j
    e = 0
    for j in range(m):
        a = _lower_bound(ts_ms, run_start[j], run_start[j + 1], lo_ms)
        b = _lower_bound(ts_ms, a, run_start[j + 1], hi_ms)
        if dense:
            e0, e1 = a, b
        else:
            e0, e1 = _entry_span(entry_row, e, a, b)
            e = e1
        d = 0
        for i in range(e0, e1):
            k = entry_id[i]
            if k < 0 or k >= n_ids:
                continue
            if use_mask and not row_mask[i if dense else entry_row[i]]:
                continue
            if seen[k] != j:
                seen[k] = j
                d += 1
        out[j] = d
    return out


def distinct_ids_in_window(
    run_start: np.ndarray,
    ts_ms: np.ndarray,
    row_mask: np.ndarray | None,
    lo_ms: int,
    hi_ms: int,
    entry_row: np.ndarray | None,
    entry_id: np.ndarray,
    n_ids: int,
) -> np.ndarray:
    """Per run: the number of distinct ids among entries of rows in the window passing the
    mask. Ids are dense in [0, n_ids); an id outside that range is "no value" and is skipped.

    `entry_row` None: entry e is row e. Linear in the entries read (no sorting)."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    entry_id = readonly(entry_id, np.int32)
    if entry_row is None:
        if entry_id.shape != ts_ms.shape:
            raise KernelArgumentError("entry_id", "must have one id per row when entry_row is None")
        rows, dense = _NO_ROWS, True
    else:
        rows, dense = readonly(entry_row, np.int32), False
        if rows.shape != entry_id.shape:
            raise KernelArgumentError("entry_id", "must have one id per entry row")
    return _distinct_ids_in_window(run_start, ts_ms, mask, use, int(lo_ms), int(hi_ms), rows, dense, entry_id, int(n_ids))

"""Per-contact sequence facts: earliest and latest matching event, and streaks of units.

Arguments as in `aggregates`: `run_start` int64[m+1], `ts_ms` int64[n] sorted within each
run, `row_mask` bool[n] (ignored when `use_mask` is False).
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.aggregates import _mask_args, _run_args
from core.kernels.jit import jit
from core.kernels.runs import _lower_bound

NO_EVENT = np.iinfo(np.int64).min  # "no matching event" in first/last results


@jit
def _first_ts(
    run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, hi_ms: int
) -> np.ndarray:
    m = run_start.shape[0] - 1
    out = np.full(m, NO_EVENT, np.int64)
    for j in range(m):
        for r in range(run_start[j], run_start[j + 1]):
            if ts_ms[r] >= hi_ms:
                break
            if not use_mask or row_mask[r]:
                out[j] = ts_ms[r]
                break
    return out


def first_ts(run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray | None, hi_ms: int) -> np.ndarray:
    """Per run: ts of the earliest row with ts < hi_ms passing the mask; NO_EVENT when none."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    return _first_ts(run_start, ts_ms, mask, use, int(hi_ms))


@jit
def _last_ts(
    run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, hi_ms: int
) -> np.ndarray:
    m = run_start.shape[0] - 1
    out = np.full(m, NO_EVENT, np.int64)
    for j in range(m):
        a = run_start[j]
        b = _lower_bound(ts_ms, a, run_start[j + 1], hi_ms)
        for r in range(b - 1, a - 1, -1):
            if not use_mask or row_mask[r]:
                out[j] = ts_ms[r]
                break
    return out


def last_ts(run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray | None, hi_ms: int) -> np.ndarray:
    """Per run: ts of the latest row with ts < hi_ms passing the mask; NO_EVENT when none."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    return _last_ts(run_start, ts_ms, mask, use, int(hi_ms))


@jit
def _streak_units(
    run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray, use_mask: bool, bounds_ms: np.ndarray
) -> np.ndarray:
    m = run_start.shape[0] - 1
    k = bounds_ms.shape[0] - 1  # units: [bounds_ms[u], bounds_ms[u+1]) for u < k
    out = np.zeros(m, np.int64)
    if k <= 0:
        return out
    for j in range(m):
        r = _lower_bound(ts_ms, run_start[j], run_start[j + 1], bounds_ms[0])
        b = _lower_bound(ts_ms, r, run_start[j + 1], bounds_ms[k])
        u = 0
        filled = 0
        while r < b:
            t = ts_ms[r]
            while t >= bounds_ms[u + 1]:
                u += 1
            if not use_mask or row_mask[r]:
                filled += 1
                # unit u is filled: jump to the first row of the next unit
                r = _lower_bound(ts_ms, r + 1, b, bounds_ms[u + 1])
            else:
                r += 1
        out[j] = filled
    return out


def streak_units(
    run_start: np.ndarray, ts_ms: np.ndarray, row_mask: np.ndarray | None, bounds_ms: np.ndarray
) -> np.ndarray:
    """Per run: how many of the units [bounds_ms[u], bounds_ms[u+1]) hold a row passing the mask."""
    run_start, ts_ms = _run_args(run_start, ts_ms)
    mask, use = _mask_args(row_mask, ts_ms.shape[0])
    bounds_ms = readonly(bounds_ms, np.int64)
    if bounds_ms.ndim != 1 or np.any(np.diff(bounds_ms) <= 0):
        raise KernelArgumentError("bounds_ms", "must be strictly ascending")
    return _streak_units(run_start, ts_ms, mask, use, bounds_ms)

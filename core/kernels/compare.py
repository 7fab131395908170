"""Compare per-run values with a comparison and collect the contacts on one side of it.

A comparison is a range [lo, hi] (either bound open: *_inc False; infinite bounds for none)
plus a sorted set of excluded values (`ne`). NaN is "no value" and never holds.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.filters import _in_range, _in_sorted
from core.kernels.jit import jit


@jit
def _holds(x: float, lo: float, lo_inc: bool, hi: float, hi_inc: bool, excluded: np.ndarray) -> bool:
    if x != x:
        return False
    if not _in_range(x, lo, lo_inc, hi, hi_inc):
        return False
    return excluded.shape[0] == 0 or not _in_sorted(x, excluded)


@jit
def _select_runs(
    run_contact: np.ndarray,
    values: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    excluded: np.ndarray,
    want: bool,
    smaller: bool,
) -> tuple[np.ndarray, bool]:
    m = values.shape[0]
    picked = np.empty(m, np.bool_)
    k = 0
    for j in range(m):
        x = values[j]
        h = ((x >= lo) if lo_inc else (x > lo)) & ((x <= hi) if hi_inc else (x < hi))
        if excluded.shape[0] and h:
            h = not _in_sorted(x, excluded)
        picked[j] = h == want
        k += picked[j]
    flip = smaller and 2 * k > m  # hand back the other side: fewer ids to turn into a bitmap
    out = np.empty(m - k if flip else k, np.uint32)
    i = 0
    for j in range(m):
        if picked[j] != flip:
            out[i] = run_contact[j]
            i += 1
    return out, flip


def select_runs(
    run_contact: np.ndarray,
    values: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    excluded: np.ndarray,
    want: bool = True,
) -> np.ndarray:
    """Contacts (uint32, in run order) whose value holds the comparison (want=True) or does not."""
    args = _select_args(run_contact, values, excluded)
    ids, _ = _select_runs(args[0], args[1], float(lo), bool(lo_inc), float(hi), bool(hi_inc), args[2], bool(want), False)
    return ids


def select_runs_smaller(
    run_contact: np.ndarray,
    values: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    excluded: np.ndarray,
    want: bool = True,
) -> tuple[np.ndarray, bool]:
    """As select_runs, but when more than half of the runs are selected returns the runs that
    are not, flagged True: (ids, complemented)."""
    args = _select_args(run_contact, values, excluded)
    ids, flip = _select_runs(args[0], args[1], float(lo), bool(lo_inc), float(hi), bool(hi_inc), args[2], bool(want), True)
    return ids, bool(flip)


def _select_args(run_contact: np.ndarray, values: np.ndarray, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    run_contact = readonly(run_contact, np.uint32)
    values = readonly(values, np.float64)
    if run_contact.shape != values.shape or values.ndim != 1:
        raise KernelArgumentError("values", "must have one value per run")
    return run_contact, values, _excluded(excluded)


_NONE_EXCLUDED = readonly(np.zeros(0, np.float64), np.float64)


def _excluded(excluded: np.ndarray) -> np.ndarray:
    """The excluded values sorted and distinct, as the kernels take them."""
    if len(excluded) == 0:
        return _NONE_EXCLUDED
    return readonly(np.unique(np.asarray(excluded, np.float64)), np.float64)


@jit
def _holds_each(
    values: np.ndarray, lo: float, lo_inc: bool, hi: float, hi_inc: bool, excluded: np.ndarray
) -> np.ndarray:
    out = np.empty(values.shape[0], np.bool_)
    for j in range(values.shape[0]):
        out[j] = _holds(values[j], lo, lo_inc, hi, hi_inc, excluded)
    return out


def holds_each(values: np.ndarray, lo: float, lo_inc: bool, hi: float, hi_inc: bool, excluded: np.ndarray) -> np.ndarray:
    """Per value: whether it holds the comparison."""
    values = readonly(values, np.float64)
    excluded = _excluded(excluded)
    return _holds_each(values, float(lo), bool(lo_inc), float(hi), bool(hi_inc), excluded)

"""Contact runs: the rows of one contact in a contact-sorted table, and time windows in them.

A table's `contact` column is sorted ascending, so the rows of one contact are contiguous:
run j covers rows run_start[j]:run_start[j+1] and belongs to run_contact[j]; within a run the
rows are sorted by `ts_ms`.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.jit import jit


@jit
def _contact_runs(contact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = contact.shape[0]
    m = 1 if n > 0 else 0
    for i in range(1, n):
        m += contact[i] != contact[i - 1]
    run_contact = np.empty(m, np.uint32)
    run_start = np.empty(m + 1, np.int64)
    run_start[m] = n
    if n == 0:
        return run_contact, run_start
    run_contact[0] = contact[0]
    run_start[0] = 0
    j = 1
    for i in range(1, n):
        if contact[i] != contact[i - 1]:
            run_contact[j] = contact[i]
            run_start[j] = i
            j += 1
    return run_contact, run_start


def contact_runs(contact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run_contact uint32[m], run_start int64[m+1]) of a contact-sorted uint32 column."""
    contact = readonly(contact, np.uint32)
    if contact.ndim != 1:
        raise KernelArgumentError("contact", "must be one-dimensional")
    return _contact_runs(contact)


@jit
def _lower_bound(ts: np.ndarray, a: int, b: int, x: int) -> int:
    """First index i in [a, b) with ts[i] >= x (b when none); ts[a:b] ascending."""
    if a >= b or ts[a] >= x:
        return a
    if ts[b - 1] < x:
        return b
    lo = a
    hi = b - 1  # invariant: ts[lo] < x <= ts[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if ts[mid] < x:
            lo = mid
        else:
            hi = mid
    return hi


@jit
def _gallop(values: np.ndarray, a: int, b: int, x: int) -> int:
    """As _lower_bound, probing a, a+1, a+3, a+7, ... first: O(log d) for an answer d past a."""
    if a >= b or values[a] >= x:
        return a
    lo = a  # invariant: values[lo] < x
    step = 1
    while lo + step < b and values[lo + step] < x:
        lo += step
        step *= 2
    return _lower_bound(values, lo + 1, min(lo + step, b), x)


def lower_bound(ts: np.ndarray, a: int, b: int, x: int) -> int:
    """First index in [a, b) whose value is >= x, in an ascending slice; b when none."""
    return int(_lower_bound(readonly(ts, np.int64), int(a), int(b), int(x)))


def gallop(ts: np.ndarray, a: int, b: int, x: int) -> int:
    """As lower_bound, by exponential search from a (fast when the answer is near a)."""
    return int(_gallop(readonly(ts, np.int64), int(a), int(b), int(x)))

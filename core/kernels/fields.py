"""Field kernels: judge a columnar contact field (core.fields) one contact per slot.

A field column holds, per slot i, a kind code kind[i] (uint8) and, for the kinds that carry
one, a value in a parallel array: a float64 number, an int32 day, a uint16 month-day ordinal
or an int32 dictionary code. Every kernel returns a fresh bool mask with mask[i] True exactly
when kind[i] == want and the slot's value passes the kernel's test; slots of another kind
are never read, so a value array may hold anything there.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.filters import _in_range, _in_sorted
from core.kernels.jit import jit


@jit
def _axis_mask(
    kind: np.ndarray,
    values: np.ndarray,
    want: int,
    ranged: bool,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    members: np.ndarray,
    excluded: np.ndarray,
) -> np.ndarray:
    n = kind.shape[0]
    out = np.zeros(n, np.bool_)
    for i in range(n):
        if kind[i] != want:
            continue
        x = float(values[i])
        if ranged and not _in_range(x, lo, lo_inc, hi, hi_inc):
            continue
        if members.shape[0] and not _in_sorted(x, members):
            continue
        if excluded.shape[0] and _in_sorted(x, excluded):
            continue
        out[i] = True
    return out


def axis_mask(
    kind: np.ndarray,
    values: np.ndarray,
    want: int,
    ranged: bool,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    members: np.ndarray,
    excluded: np.ndarray,
) -> np.ndarray:
    """bool[n]: kind[i] == want and values[i] (as float64) passes every given test.

    The tests: when `ranged`, lo < x (lo <= x when lo_inc) and x < hi (x <= hi when
    hi_inc); when `members` (sorted float64) is not empty, x is one of them; x is none of
    `excluded` (sorted float64). NaN fails the range and membership tests, passes exclusion.
    `values` is float64 or int32 (days), one per slot.
    """
    kind = readonly(kind, np.uint8)
    values = readonly(values, np.int32 if values.dtype == np.int32 else np.float64)
    if values.shape != kind.shape:
        raise KernelArgumentError("values", "must have one entry per slot")
    members = readonly(members, np.float64)
    excluded = readonly(excluded, np.float64)
    return _axis_mask(
        kind, values, int(want), bool(ranged), float(lo), bool(lo_inc), float(hi), bool(hi_inc), members, excluded
    )


@jit
def _code_mask(kind: np.ndarray, code: np.ndarray, want: int, verdict: np.ndarray) -> np.ndarray:
    n = kind.shape[0]
    m = verdict.shape[0]
    out = np.zeros(n, np.bool_)
    for i in range(n):
        if kind[i] == want:
            c = code[i]
            out[i] = 0 <= c < m and verdict[c]
    return out


def code_mask(kind: np.ndarray, code: np.ndarray, want: int, verdict: np.ndarray) -> np.ndarray:
    """bool[n]: kind[i] == want and verdict[code[i]] (False for a code outside verdict)."""
    kind = readonly(kind, np.uint8)
    code = readonly(code, np.int32)
    if code.shape != kind.shape:
        raise KernelArgumentError("code", "must have one entry per slot")
    return _code_mask(kind, code, int(want), readonly(verdict, np.bool_))


@jit
def _month_day_mask(kind: np.ndarray, month_day: np.ndarray, want: int, targets: np.ndarray) -> np.ndarray:
    n = kind.shape[0]
    t = targets.shape[0]
    out = np.zeros(n, np.bool_)
    for i in range(n):
        if kind[i] == want:
            md = month_day[i]
            for j in range(t):
                if targets[j] == md:
                    out[i] = True
                    break
    return out


def month_day_mask(kind: np.ndarray, month_day: np.ndarray, want: int, targets: np.ndarray) -> np.ndarray:
    """bool[n]: kind[i] == want and month_day[i] is one of `targets` (a few uint16 ordinals)."""
    kind = readonly(kind, np.uint8)
    month_day = readonly(month_day, np.uint16)
    if month_day.shape != kind.shape:
        raise KernelArgumentError("month_day", "must have one entry per slot")
    return _month_day_mask(kind, month_day, int(want), readonly(targets, np.uint16))

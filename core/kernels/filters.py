"""Filter kernels: mark the rows (or entries) whose values pass a typed test.

A column is COO: entry e holds a value for row `rows[e]` (int32 ascending). Every kernel
sets out[rows[e]] = True for each entry that passes and never clears a mark, so calling
several kernels on one `out` is "at least one value passes". To mark entries rather than
rows, pass rows = arange(len(values)).

Numeric tests are a closed/open range [lo, hi] plus a sorted set membership; NaN (a string
that is not a number) passes nothing.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError
from core.kernels.jit import jit


@jit
def _in_range(x: float, lo: float, lo_inc: bool, hi: float, hi_inc: bool) -> bool:
    if lo_inc:
        if not x >= lo:
            return False
    elif not x > lo:
        return False
    if hi_inc:
        return x <= hi
    return x < hi


@jit
def _in_sorted(x: float, values: np.ndarray) -> bool:
    lo = 0
    hi = values.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < values.shape[0] and values[lo] == x


@jit
def _mark_range(
    rows: np.ndarray, values: np.ndarray, lo: float, lo_inc: bool, hi: float, hi_inc: bool, out: np.ndarray
) -> None:
    for e in range(rows.shape[0]):
        if _in_range(values[e], lo, lo_inc, hi, hi_inc):
            out[rows[e]] = True


@jit
def _mark_range_coded(
    rows: np.ndarray,
    codes: np.ndarray,
    code_value: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    out: np.ndarray,
) -> None:
    nc = code_value.shape[0]
    for e in range(rows.shape[0]):
        c = codes[e]
        if 0 <= c < nc and _in_range(code_value[c], lo, lo_inc, hi, hi_inc):
            out[rows[e]] = True


@jit
def _mark_set(rows: np.ndarray, values: np.ndarray, members: np.ndarray, negate: bool, out: np.ndarray) -> None:
    for e in range(rows.shape[0]):
        x = values[e]
        if x == x and _in_sorted(x, members) != negate:
            out[rows[e]] = True


@jit
def _mark_set_coded(
    rows: np.ndarray, codes: np.ndarray, code_value: np.ndarray, members: np.ndarray, negate: bool, out: np.ndarray
) -> None:
    nc = code_value.shape[0]
    for e in range(rows.shape[0]):
        c = codes[e]
        if 0 <= c < nc:
            x = code_value[c]
            if x == x and _in_sorted(x, members) != negate:
                out[rows[e]] = True


@jit
def _mark_code(rows: np.ndarray, codes: np.ndarray, code: int, negate: bool, out: np.ndarray) -> None:
    for e in range(rows.shape[0]):
        if (codes[e] == code) != negate:
            out[rows[e]] = True


@jit
def _mark_code_table(rows: np.ndarray, codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    nt = table.shape[0]
    for e in range(rows.shape[0]):
        c = codes[e]
        if 0 <= c < nt and table[c]:
            out[rows[e]] = True


@jit
def _mark_flags(rows: np.ndarray, flags: np.ndarray, accept_false: bool, accept_true: bool, out: np.ndarray) -> None:
    for e in range(rows.shape[0]):
        if accept_true if flags[e] != 0 else accept_false:
            out[rows[e]] = True


@jit
def _mark_all(rows: np.ndarray, out: np.ndarray) -> None:
    for e in range(rows.shape[0]):
        out[rows[e]] = True


def _rows(rows: np.ndarray, values: np.ndarray, out: np.ndarray) -> np.ndarray:
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    if rows.shape != values.shape:
        raise KernelArgumentError("rows", "must have one row per value")
    if out.dtype != np.bool_ or not out.flags.c_contiguous or not out.flags.writeable:
        raise KernelArgumentError("out", "must be a writeable C-contiguous bool array")
    if rows.shape[0] and (rows[0] < 0 or rows[-1] >= out.shape[0]):
        raise KernelArgumentError("rows", "out of range of out")
    return rows


def mark_range(
    rows: np.ndarray, values: np.ndarray, lo: float, lo_inc: bool, hi: float, hi_inc: bool, out: np.ndarray
) -> None:
    """Mark rows with a float64 value in the range (lo, hi; *_inc: bound included)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    _mark_range(_rows(rows, values, out), values, float(lo), bool(lo_inc), float(hi), bool(hi_inc), out)


def mark_range_coded(
    rows: np.ndarray,
    codes: np.ndarray,
    code_value: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    out: np.ndarray,
) -> None:
    """Mark rows whose string code's numeric value (code_value[code], NaN: none) is in range."""
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    code_value = np.ascontiguousarray(code_value, dtype=np.float64)
    _mark_range_coded(
        _rows(rows, codes, out), codes, code_value, float(lo), bool(lo_inc), float(hi), bool(hi_inc), out
    )


def _members(members: np.ndarray) -> np.ndarray:
    return np.unique(np.ascontiguousarray(members, dtype=np.float64))


def mark_set(rows: np.ndarray, values: np.ndarray, members: np.ndarray, negate: bool, out: np.ndarray) -> None:
    """Mark rows with a non-NaN value in `members` (not in it, when negate)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    _mark_set(_rows(rows, values, out), values, _members(members), bool(negate), out)


def mark_set_coded(
    rows: np.ndarray, codes: np.ndarray, code_value: np.ndarray, members: np.ndarray, negate: bool, out: np.ndarray
) -> None:
    """As mark_set, on the numeric values of string codes."""
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    code_value = np.ascontiguousarray(code_value, dtype=np.float64)
    _mark_set_coded(_rows(rows, codes, out), codes, code_value, _members(members), bool(negate), out)


def mark_code(rows: np.ndarray, codes: np.ndarray, code: int, negate: bool, out: np.ndarray) -> None:
    """Mark rows with a code equal to `code` (different from it, when negate)."""
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    _mark_code(_rows(rows, codes, out), codes, int(code), bool(negate), out)


def mark_code_table(rows: np.ndarray, codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """Mark rows whose code c has table[c] True (codes beyond the table pass nothing)."""
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    table = np.ascontiguousarray(table, dtype=np.bool_)
    _mark_code_table(_rows(rows, codes, out), codes, table, out)


def mark_flags(rows: np.ndarray, flags: np.ndarray, accept_false: bool, accept_true: bool, out: np.ndarray) -> None:
    """Mark rows whose boolean (int8 0/1) is accepted."""
    flags = np.ascontiguousarray(flags, dtype=np.int8)
    _mark_flags(_rows(rows, flags, out), flags, bool(accept_false), bool(accept_true), out)


def mark_all(rows: np.ndarray, out: np.ndarray) -> None:
    """Mark every row that has an entry."""
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    _mark_all(_rows(rows, rows, out), out)

"""Filter kernels: mark the rows (or entries) whose values pass a typed test.

A column is COO: entry e holds a value for row `rows[e]` (int32 ascending). Every kernel
sets out[rows[e]] = True for each entry that passes and never clears a mark, so calling
several kernels on one `out` is "at least one value passes". A dense column (entry e is
row e) and entry-level marking pass rows=None.

Numeric tests are a closed/open range [lo, hi] plus a sorted set membership; NaN (a string
that is not a number) passes nothing.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
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


# Each marking kernel has two loops: `dense` (entry e is row e: branch-free, vectorised)
# and scattered (entry e marks row rows[e]).


@jit
def _mark_range(
    rows: np.ndarray,
    dense: bool,
    values: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    out: np.ndarray,
) -> None:
    if dense:  # one loop per kind of bound, so each compiles branch-free
        n = values.shape[0]
        if lo_inc and hi_inc:
            for e in range(n):
                out[e] |= (values[e] >= lo) & (values[e] <= hi)
        elif lo_inc:
            for e in range(n):
                out[e] |= (values[e] >= lo) & (values[e] < hi)
        elif hi_inc:
            for e in range(n):
                out[e] |= (values[e] > lo) & (values[e] <= hi)
        else:
            for e in range(n):
                out[e] |= (values[e] > lo) & (values[e] < hi)
    else:
        for e in range(values.shape[0]):
            if _in_range(values[e], lo, lo_inc, hi, hi_inc):
                out[rows[e]] = True


@jit
def _mark_range_coded(
    rows: np.ndarray,
    dense: bool,
    codes: np.ndarray,
    code_value: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    out: np.ndarray,
) -> None:
    nc = code_value.shape[0]
    for e in range(codes.shape[0]):
        c = codes[e]
        if 0 <= c < nc and _in_range(code_value[c], lo, lo_inc, hi, hi_inc):
            out[e if dense else rows[e]] = True


@jit
def _mark_set(
    rows: np.ndarray, dense: bool, values: np.ndarray, members: np.ndarray, negate: bool, out: np.ndarray
) -> None:
    if dense and members.shape[0] == 1:
        v = members[0]
        if negate:
            for e in range(values.shape[0]):
                x = values[e]
                out[e] |= (x == x) & (x != v)
        else:
            for e in range(values.shape[0]):
                out[e] |= values[e] == v
        return
    for e in range(values.shape[0]):
        x = values[e]
        if x == x and _in_sorted(x, members) != negate:
            out[e if dense else rows[e]] = True


@jit
def _mark_set_coded(
    rows: np.ndarray,
    dense: bool,
    codes: np.ndarray,
    code_value: np.ndarray,
    members: np.ndarray,
    negate: bool,
    out: np.ndarray,
) -> None:
    nc = code_value.shape[0]
    for e in range(codes.shape[0]):
        c = codes[e]
        if 0 <= c < nc:
            x = code_value[c]
            if x == x and _in_sorted(x, members) != negate:
                out[e if dense else rows[e]] = True


@jit
def _mark_code(rows: np.ndarray, dense: bool, codes: np.ndarray, code: int, negate: bool, out: np.ndarray) -> None:
    if dense:
        for e in range(codes.shape[0]):
            out[e] |= (codes[e] == code) != negate
    else:
        for e in range(codes.shape[0]):
            if (codes[e] == code) != negate:
                out[rows[e]] = True


@jit
def _mark_codes(
    rows: np.ndarray, dense: bool, codes: np.ndarray, wanted: np.ndarray, negate: bool, out: np.ndarray
) -> None:
    k = wanted.shape[0]
    if dense:
        for e in range(codes.shape[0]):
            hit = False
            for i in range(k):
                hit |= codes[e] == wanted[i]
            out[e] |= hit != negate
    else:
        for e in range(codes.shape[0]):
            hit = False
            for i in range(k):
                hit |= codes[e] == wanted[i]
            if hit != negate:
                out[rows[e]] = True


@jit
def _mark_code_table(rows: np.ndarray, dense: bool, codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    nt = table.shape[0]
    for e in range(codes.shape[0]):
        c = codes[e]
        if 0 <= c < nt and table[c]:
            out[e if dense else rows[e]] = True


@jit
def _mark_flags(
    rows: np.ndarray, dense: bool, flags: np.ndarray, accept_false: bool, accept_true: bool, out: np.ndarray
) -> None:
    for e in range(flags.shape[0]):
        if accept_true if flags[e] != 0 else accept_false:
            out[e if dense else rows[e]] = True


@jit
def _mark_all(rows: np.ndarray, n_entries: int, dense: bool, out: np.ndarray) -> None:
    if dense:
        for e in range(n_entries):
            out[e] = True
    else:
        for e in range(n_entries):
            out[rows[e]] = True


_NO_ROWS = readonly(np.zeros(0, np.int32), np.int32)


def _rows(rows: np.ndarray | None, n_entries: int, out: np.ndarray) -> tuple[np.ndarray, bool]:
    """(rows, dense): rows None means entry e marks row e."""
    if out.dtype != np.bool_ or out.ndim != 1 or not out.flags.c_contiguous or not out.flags.writeable:
        raise KernelArgumentError("out", "must be a writeable C-contiguous bool array")
    if rows is None:
        if n_entries > out.shape[0]:
            raise KernelArgumentError("out", "needs one flag per entry")
        return _NO_ROWS, True
    rows = readonly(rows, np.int32)
    if rows.shape != (n_entries,):
        raise KernelArgumentError("rows", "must have one row per value")
    if n_entries and (rows[0] < 0 or rows[-1] >= out.shape[0]):
        raise KernelArgumentError("rows", "out of range of out")
    return rows, False


def mark_range(
    rows: np.ndarray | None, values: np.ndarray, lo: float, lo_inc: bool, hi: float, hi_inc: bool, out: np.ndarray
) -> None:
    """Mark rows with a float64 value in the range (lo, hi; *_inc: bound included).

    `rows` (int32 ascending) gives each entry's row; None: entry e is row e."""
    values = readonly(values, np.float64)
    r, dense = _rows(rows, values.shape[0], out)
    _mark_range(r, dense, values, float(lo), bool(lo_inc), float(hi), bool(hi_inc), out)


def mark_range_coded(
    rows: np.ndarray | None,
    codes: np.ndarray,
    code_value: np.ndarray,
    lo: float,
    lo_inc: bool,
    hi: float,
    hi_inc: bool,
    out: np.ndarray,
) -> None:
    """Mark rows whose string code's numeric value (code_value[code], NaN: none) is in range."""
    codes = readonly(codes, np.int32)
    code_value = readonly(code_value, np.float64)
    r, dense = _rows(rows, codes.shape[0], out)
    _mark_range_coded(r, dense, codes, code_value, float(lo), bool(lo_inc), float(hi), bool(hi_inc), out)


def _members(members: np.ndarray) -> np.ndarray:
    return readonly(np.unique(np.asarray(members, np.float64)), np.float64)


def mark_set(rows: np.ndarray | None, values: np.ndarray, members: np.ndarray, negate: bool, out: np.ndarray) -> None:
    """Mark rows with a non-NaN value in `members` (not in it, when negate)."""
    values = readonly(values, np.float64)
    r, dense = _rows(rows, values.shape[0], out)
    _mark_set(r, dense, values, _members(members), bool(negate), out)


def mark_set_coded(
    rows: np.ndarray | None,
    codes: np.ndarray,
    code_value: np.ndarray,
    members: np.ndarray,
    negate: bool,
    out: np.ndarray,
) -> None:
    """As mark_set, on the numeric values of string codes."""
    codes = readonly(codes, np.int32)
    code_value = readonly(code_value, np.float64)
    r, dense = _rows(rows, codes.shape[0], out)
    _mark_set_coded(r, dense, codes, code_value, _members(members), bool(negate), out)


def mark_code(rows: np.ndarray | None, codes: np.ndarray, code: int, negate: bool, out: np.ndarray) -> None:
    """Mark rows with a code equal to `code` (different from it, when negate)."""
    codes = readonly(codes, np.int32)
    r, dense = _rows(rows, codes.shape[0], out)
    _mark_code(r, dense, codes, int(code), bool(negate), out)


def mark_codes(rows: np.ndarray | None, codes: np.ndarray, wanted: np.ndarray, negate: bool, out: np.ndarray) -> None:
    """Mark rows whose code is one of the few `wanted` codes (none of them, when negate)."""
    codes = readonly(codes, np.int32)
    wanted = readonly(wanted, np.int32)
    r, dense = _rows(rows, codes.shape[0], out)
    _mark_codes(r, dense, codes, wanted, bool(negate), out)


def mark_code_table(rows: np.ndarray | None, codes: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """Mark rows whose code c has table[c] True (codes beyond the table pass nothing)."""
    codes = readonly(codes, np.int32)
    table = readonly(table, np.bool_)
    r, dense = _rows(rows, codes.shape[0], out)
    _mark_code_table(r, dense, codes, table, out)


def mark_flags(
    rows: np.ndarray | None, flags: np.ndarray, accept_false: bool, accept_true: bool, out: np.ndarray
) -> None:
    """Mark rows whose boolean (int8 0/1) is accepted."""
    flags = readonly(flags, np.int8)
    r, dense = _rows(rows, flags.shape[0], out)
    _mark_flags(r, dense, flags, bool(accept_false), bool(accept_true), out)


def mark_all(rows: np.ndarray | None, n_entries: int, out: np.ndarray) -> None:
    """Mark the row of every one of `n_entries` entries."""
    r, dense = _rows(rows, int(n_entries), out)
    _mark_all(r, int(n_entries), dense, out)

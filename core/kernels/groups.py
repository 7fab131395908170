"""Element keys and sorted key sets for `any` filters.

An element (one item of an array, or the whole event when the path crosses no array) is
keyed by key = row << 32 | ordinal, where ordinal (int32 >= 0) is the element's position
within its event (0 when the element is the row itself). Key sets are sorted unique int64.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.jit import jit


@jit
def _entry_keys(rows: np.ndarray, ordinals: np.ndarray, use_ordinals: bool) -> np.ndarray:
    n = rows.shape[0]
    out = np.empty(n, np.int64)
    for e in range(n):
        k = np.int64(rows[e]) << 32
        if use_ordinals:
            k |= np.int64(ordinals[e])
        out[e] = k
    return out


def entry_keys(rows: np.ndarray, ordinals: np.ndarray | None) -> np.ndarray:
    """Per entry: the key of the element it lies in (ordinals None: the row is the element)."""
    rows = readonly(rows, np.int32)
    if ordinals is None:
        return _entry_keys(rows, readonly(np.zeros(0, np.int32), np.int32), False)
    ordinals = readonly(ordinals, np.int32)
    if ordinals.shape != rows.shape:
        raise KernelArgumentError("ordinals", "must have one ordinal per row entry")
    if ordinals.shape[0] and ordinals.min() < 0:
        raise KernelArgumentError("ordinals", "must be non-negative")
    return _entry_keys(rows, ordinals, True)


@jit
def _unique_keys(keys: np.ndarray, mask: np.ndarray, use_mask: bool) -> np.ndarray:
    n = keys.shape[0]
    buf = np.empty(n, np.int64)
    k = 0
    for e in range(n):
        if not use_mask or mask[e]:
            buf[k] = keys[e]
            k += 1
    s = np.sort(buf[:k])
    out = np.empty(k, np.int64)
    u = 0
    for i in range(k):
        if i == 0 or s[i] != s[i - 1]:
            out[u] = s[i]
            u += 1
    return out[:u].copy()


def unique_keys(keys: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Sorted unique keys of the entries passing `mask` (None: all)."""
    keys = readonly(keys, np.int64)
    if mask is None:
        return _unique_keys(keys, readonly(np.zeros(0, np.bool_), np.bool_), False)
    mask = readonly(mask, np.bool_)
    if mask.shape != keys.shape:
        raise KernelArgumentError("mask", "must have one flag per key")
    return _unique_keys(keys, mask, True)


@jit
def _merge_sorted(a: np.ndarray, b: np.ndarray, mode: int) -> np.ndarray:
    # mode 0: a & b, 1: a - b, 2: a | b; a and b sorted unique
    out = np.empty(a.shape[0] + b.shape[0], np.int64)
    i = 0
    j = 0
    k = 0
    while i < a.shape[0] or j < b.shape[0]:
        if j >= b.shape[0] or (i < a.shape[0] and a[i] < b[j]):
            if mode != 0:
                out[k] = a[i]
                k += 1
            i += 1
        elif i >= a.shape[0] or b[j] < a[i]:
            if mode == 2:
                out[k] = b[j]
                k += 1
            j += 1
        else:
            if mode != 1:
                out[k] = a[i]
                k += 1
            i += 1
            j += 1
    return out[:k].copy()


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return readonly(a, np.int64), readonly(b, np.int64)


def intersect_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Keys in both sorted unique sets."""
    return _merge_sorted(*_pair(a, b), 0)


def subtract_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Keys of a that are not in b (both sorted unique)."""
    return _merge_sorted(*_pair(a, b), 1)


def union_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Keys in either sorted unique set."""
    return _merge_sorted(*_pair(a, b), 2)


@jit
def _lift_keys(child: np.ndarray, parent: np.ndarray, selected: np.ndarray) -> np.ndarray:
    n = child.shape[0]
    mask = np.zeros(n, np.bool_)
    ns = selected.shape[0]
    for e in range(n):
        x = child[e]
        lo = 0
        hi = ns
        while lo < hi:
            mid = (lo + hi) >> 1
            if selected[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        mask[e] = lo < ns and selected[lo] == x
    return _unique_keys(parent, mask, True)


def lift_keys(child: np.ndarray, parent: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Parent keys (sorted unique) of the entries whose child key is in `selected`:
    maps elements of an inner array to the elements of the outer one holding them."""
    child, parent = _pair(child, parent)
    if child.shape != parent.shape:
        raise KernelArgumentError("parent", "must have one key per child key")
    return _lift_keys(child, parent, readonly(selected, np.int64))


@jit
def _mark_key_rows(keys: np.ndarray, out: np.ndarray) -> None:
    for i in range(keys.shape[0]):
        out[keys[i] >> 32] = True


def mark_key_rows(keys: np.ndarray, out: np.ndarray) -> None:
    """Mark the row of every key."""
    keys = readonly(keys, np.int64)
    if keys.shape[0] and (keys.min() < 0 or (keys.max() >> 32) >= out.shape[0]):
        raise KernelArgumentError("keys", "row out of range of out")
    _mark_key_rows(keys, out)

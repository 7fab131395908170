"""Hash-table kernels for strings held as UTF-8 bytes in one buffer (see `core.texts`).

A table is an int32 array of power-of-two length: each slot holds EMPTY, GONE (a removed id
was there; probes go on past it) or the id of a string. String id c is the bytes
`blob[start[c] : start[c] + length[c]]`; `length[c]` is -1 once c is removed. Probing is
linear from the slot the hash names.
"""

from __future__ import annotations

import numpy as np

from core.kernels import KernelArgumentError, readonly
from core.kernels.jit import jit

EMPTY = -1
GONE = -2

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT = np.uint64(33)
_ONE = np.uint64(1)


@jit
def _hash(data: np.ndarray, a: int, b: int) -> np.uint64:
    """FNV-1a over data[a:b], then the murmur3 finaliser so the low bits mix well."""
    h = _FNV_OFFSET
    for i in range(a, b):
        h = (h ^ np.uint64(data[i])) * _FNV_PRIME
    h ^= h >> _SHIFT
    h *= _MIX
    h ^= h >> _SHIFT
    return h


@jit
def _slot(h: np.uint64, mask: int) -> int:
    """The first slot of hash `h` in a table of mask + 1 slots."""
    return np.int64(h >> _ONE) & mask


@jit
def _probe(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
           data: np.ndarray, a: int, b: int) -> int:
    """The id holding data[a:b], or -1 - s where s is the first EMPTY slot of its probe."""
    mask = table.shape[0] - 1
    s = _slot(_hash(data, a, b), mask)
    n = b - a
    while True:
        c = table[s]
        if c == EMPTY:
            return -1 - s
        # an id past these arrays, or bytes past this blob, were added after the caller
        # read them (a reader racing the writer): not its string yet
        if c >= 0 and c < length.shape[0] and length[c] == n and start[c] + n <= blob.shape[0]:
            at = start[c]
            same = True
            for k in range(n):
                if blob[at + k] != data[a + k]:
                    same = False
                    break
            if same:
                return c
        s = (s + 1) & mask


@jit
def _find_many(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
               data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    for j in range(offsets.shape[0] - 1):
        c = _probe(table, blob, start, length, data, offsets[j], offsets[j + 1])
        out[j] = c if c >= 0 else -1


@jit
def _add_many(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
              size: int, used: int, data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> tuple[int, int]:
    """Ids of the strings data[offsets[j]:offsets[j+1]] into out, new ones from `size` on with
    their bytes from blob[used] on; returns (size, used) after. The caller made room for all."""
    for j in range(offsets.shape[0] - 1):
        a = offsets[j]
        b = offsets[j + 1]
        c = _probe(table, blob, start, length, data, a, b)
        if c < 0:
            n = b - a
            for k in range(n):
                blob[used + k] = data[a + k]
            start[size] = used
            length[size] = n
            used += n
            table[-1 - c] = size
            c = size
            size += 1
        out[j] = c
    return size, used


@jit
def _slot_holding(table: np.ndarray, blob: np.ndarray, at: int, n: int, wanted: int) -> int:
    """The first slot holding `wanted` (an id or EMPTY) on the probe of the bytes blob[at:at+n]."""
    mask = table.shape[0] - 1
    s = _slot(_hash(blob, at, at + n), mask)
    while table[s] != wanted:
        s = (s + 1) & mask
    return s


@jit
def _add_one(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
             size: int, used: int, data: np.ndarray) -> tuple[int, int, int]:
    """`_add_many` of one string: (its id, size after, bytes used after)."""
    c = _probe(table, blob, start, length, data, 0, data.shape[0])
    if c >= 0:
        return c, size, used
    n = data.shape[0]
    for k in range(n):
        blob[used + k] = data[k]
    start[size] = used
    length[size] = n
    table[-1 - c] = size
    return size, size + 1, used + n


@jit
def _fill(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray, size: int) -> None:
    """Puts every live id below `size` into the EMPTY `table`."""
    for c in range(size):
        if length[c] >= 0:
            table[_slot_holding(table, blob, start[c], length[c], EMPTY)] = c


@jit
def _remove_many(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
                 ids: np.ndarray) -> tuple[int, int]:
    """Marks the slots of live `ids` GONE and their length -1; returns (how many, their bytes)."""
    freed = 0
    count = 0
    for j in range(ids.shape[0]):
        c = ids[j]
        n = length[c]
        if n < 0:
            continue
        table[_slot_holding(table, blob, start[c], n, c)] = GONE
        length[c] = -1
        freed += n
        count += 1
    return count, freed


@jit
def _pack(blob: np.ndarray, start: np.ndarray, length: np.ndarray, ids: np.ndarray, out: np.ndarray) -> None:
    """The bytes of `ids` one after another into `out`."""
    at = 0
    for j in range(ids.shape[0]):
        c = ids[j]
        s = start[c]
        for k in range(length[c]):
            out[at + k] = blob[s + k]
        at += length[c]


@jit
def _find_one(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray, data: np.ndarray) -> int:
    c = _probe(table, blob, start, length, data, 0, data.shape[0])
    return c if c >= 0 else -1


@jit
def _hash_all(blob: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    for j in range(offsets.shape[0] - 1):
        out[j] = _hash(blob, offsets[j], offsets[j + 1])


def _checked_offsets(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = readonly(data, np.uint8)
    offsets = readonly(offsets, np.int64)
    if offsets.ndim != 1 or offsets.shape[0] < 1:
        raise KernelArgumentError("offsets", "must be one-dimensional and hold at least one bound")
    if int(offsets[0]) != 0 or int(offsets[-1]) != data.shape[0] or bool((np.diff(offsets) < 0).any()):
        raise KernelArgumentError("offsets", "must cut data from 0 to its end, ascending")
    return data, offsets


def hash_all(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The table's hash (uint64) of each string data[offsets[j]:offsets[j+1]]."""
    data, offsets = _checked_offsets(data, offsets)
    out = np.empty(offsets.shape[0] - 1, dtype=np.uint64)
    _hash_all(data, offsets, out)
    return out


def find_many(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
              data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The id of each string data[offsets[j]:offsets[j+1]], -1 where the table has none."""
    data, offsets = _checked_offsets(data, offsets)
    out = np.empty(offsets.shape[0] - 1, dtype=np.int64)
    _find_many(table, blob, start, length, data, offsets, out)
    return out


def find_one(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray, data: np.ndarray) -> int:
    """The id of the string whose bytes are `data` (uint8), -1 where the table has none."""
    return int(_find_one(table, blob, start, length, data))


def add_many(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
             size: int, used: int, data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(ids of the strings, size after, bytes used after): absent strings get ids from `size`
    on in order of first appearance. The caller has made room for every string to be new
    (start and length beyond size, blob beyond used, table at most half full after)."""
    data, offsets = _checked_offsets(data, offsets)
    out = np.empty(offsets.shape[0] - 1, dtype=np.int64)
    size, used = _add_many(table, blob, start, length, int(size), int(used), data, offsets, out)
    return out, int(size), int(used)


def add_one(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
            size: int, used: int, data: np.ndarray) -> tuple[int, int, int]:
    """`add_many` of the one string whose bytes are `data` (uint8): (its id, size after, bytes
    used after). The caller has made room for it to be new."""
    found, size, used = _add_one(table, blob, start, length, int(size), int(used), data)
    return int(found), int(size), int(used)


def fill(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray, size: int) -> None:
    """Puts every live id below `size` into `table`, which must be all EMPTY and have room."""
    if table.shape[0] & (table.shape[0] - 1) or table.shape[0] <= int((length[:size] >= 0).sum()):
        raise KernelArgumentError("table", "length must be a power of two above the live id count")
    _fill(table, blob, start, length, int(size))


def remove_many(table: np.ndarray, blob: np.ndarray, start: np.ndarray, length: np.ndarray,
                ids: np.ndarray) -> tuple[int, int]:
    """Removes the live ones of `ids` (each a valid id); returns (how many, their bytes)."""
    count, freed = _remove_many(table, blob, start, length, readonly(ids, np.int64))
    return int(count), int(freed)


def pack(blob: np.ndarray, start: np.ndarray, length: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The bytes of the live `ids`, one after another."""
    ids = readonly(ids, np.int64)
    total = int(length[ids].sum()) if ids.shape[0] else 0
    out = np.empty(total, dtype=np.uint8)
    _pack(blob, start, length, ids, out)
    return out

"""A compact table of strings by dense id: UTF-8 bytes in one buffer, found through an
open-addressing hash table of int32 ids (kernels in `core.kernels.texts`).

A string costs its bytes plus about 17 bytes (start, length, table slots at most 70% full),
where a Python str in a dict and a list costs 100 and more. Ids are dense from 0 and never
reused; a removed id gets no string back.

One writer adds and removes; readers may call `find`, `get` and `strings` at any time. The
writer only writes past what it has published (new bytes, new ids, EMPTY slots becoming
ids) or marks removed ids. When it grows or packs any array it publishes a new set with a
new table, so the table a reader holds names only ids and bytes its own arrays hold; a
reader sees a string either whole or not at all.

`add_new` takes a string the caller knows is absent without probing: it waits in a short
pending list (with a dict to find it) and moves into the arrays with the next batch, when
PENDING_MAX have gathered or before any other change. Its id is fixed when it is taken. The
pending list is replaced, never cleared, so a reader holding it still finds its strings.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from core.kernels import texts as kt

MAX_LOAD = 0.7  # table slots in use (ids and GONE marks) per slot, at most
PACK_SHARE = 0.5  # removed bytes over this share of the buffer (and PACK_MIN_BYTES) repack it
PACK_MIN_BYTES = 1 << 20
PENDING_MAX = 1024  # strings taken by add_new before they move into the arrays together


class _Arrays(NamedTuple):
    table: np.ndarray  # int32 slots: EMPTY, GONE or an id
    blob: np.ndarray  # uint8: the strings' UTF-8 bytes
    start: np.ndarray  # int64 per id: where its bytes start in blob
    length: np.ndarray  # int32 per id: its byte count, -1 once removed


class _Pending(NamedTuple):
    base: int  # the id of strings[0]: the ids in the arrays end below it
    strings: list[str]  # taken by add_new, in id order
    ids: dict[str, int]  # string -> its id


def encoded(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets): the UTF-8 bytes of `strings` one after another; string j is
    bytes[offsets[j]:offsets[j+1]]. Lone surrogates pass through."""
    text = "".join(strings)
    lengths = np.empty(len(strings) + 1, dtype=np.int64)
    lengths[0] = 0
    if text.isascii():  # one byte per character: the common case (ids, emails, codes)
        raw = text.encode("ascii")
        lengths[1:] = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    else:
        parts = [s.encode("utf-8", "surrogatepass") for s in strings]
        raw = b"".join(parts)
        lengths[1:] = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    return np.frombuffer(raw, dtype=np.uint8), np.cumsum(lengths, out=lengths)


def check_texts(offsets: np.ndarray, data: np.ndarray, what: str, *, empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64, data uint8) of strings written by `packed`, checked: the offsets cut
    the bytes, every string is UTF-8 (lone surrogates allowed), distinct, and non-empty unless
    `empty`. Raises ValueError naming `what`."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if offsets.ndim != 1 or data.ndim != 1 or offsets.shape[0] < 1:
        raise ValueError(f"{what}: offsets and bytes must be one-dimensional")
    steps = np.diff(offsets)
    if int(offsets[0]) != 0 or int(offsets[-1]) != data.shape[0] or bool((steps < 0).any()):
        raise ValueError(f"{what}: offsets must cut the bytes")
    if not empty and bool((steps == 0).any()):
        raise ValueError(f"{what}: an empty string")
    if data.shape[0] and int(data.max()) >= 0x80:  # not all ASCII: whole UTF-8, cut at characters
        try:
            data.tobytes().decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise ValueError(f"{what}: strings must be UTF-8") from None
        starts = offsets[:-1][steps > 0]
        if bool(((data[starts] & 0xC0) == 0x80).any()):
            raise ValueError(f"{what}: a string starts inside a character")
    hashes = kt.hash_all(data, offsets)
    order = np.argsort(hashes, kind="stable")
    ranked = hashes[order]
    tied = np.flatnonzero(ranked[1:] == ranked[:-1])
    if tied.shape[0]:  # equal hashes: the strings are equal only if their bytes are
        groups: dict[int, set[bytes]] = {}
        for j in np.union1d(tied, tied + 1).tolist():
            i = int(order[j])
            seen = groups.setdefault(int(ranked[j]), set())
            text = data[offsets[i] : offsets[i + 1]].tobytes()
            if text in seen:
                raise ValueError(f"{what}: a string appears twice")
            seen.add(text)
    return offsets, data


def _table_for(count: int) -> np.ndarray:
    slots = 16
    while slots * MAX_LOAD < count + 1:
        slots *= 2
    return np.full(slots, kt.EMPTY, dtype=np.int32)


def _grown(arr: np.ndarray, need: int) -> np.ndarray:
    out = np.empty(max(need, arr.shape[0] + arr.shape[0] // 2, 8), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class TextTable:
    """Strings by dense id (see the module docstring)."""

    __slots__ = ("_arrays", "_size", "_used", "_filled", "_removed_bytes", "_live", "_pending")

    def __init__(self) -> None:
        self._arrays = _Arrays(_table_for(0), np.empty(64, np.uint8), np.empty(8, np.int64), np.empty(8, np.int32))
        self._size = 0  # ids in the arrays: 0.._size-1 (pending ones follow)
        self._used = 0  # bytes of blob written
        self._filled = 0  # table slots holding an id or GONE
        self._removed_bytes = 0  # bytes of blob whose id was removed
        self._live = 0  # ids in the arrays not removed
        self._pending = _Pending(0, [], {})

    def __len__(self) -> int:
        pending = self._pending
        return pending.base + len(pending.strings)

    @property
    def live_count(self) -> int:
        return self._live + len(self._pending.strings)

    def find_many(self, strings: Sequence[str]) -> np.ndarray:
        """The id of each string, -1 where it has none (int64)."""
        pending = self._pending
        data, offsets = encoded(strings)
        found = kt.find_many(*self._arrays, data, offsets)
        if pending.strings:
            for j in np.flatnonzero(found < 0).tolist():
                found[j] = pending.ids.get(strings[j], -1)
        return found

    def find(self, s: str) -> int | None:
        """The id of `s`, None when it has none."""
        pending = self._pending.ids.get(s)
        if pending is not None:
            return pending
        data = np.frombuffer(s.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        found = kt.find_one(*self._arrays, data)
        return None if found < 0 else found

    def add_new(self, s: str) -> int:
        """The next id for `s`, which the caller knows the table does not hold."""
        pending = self._pending
        i = pending.base + len(pending.strings)
        pending.strings.append(s)
        pending.ids[s] = i
        if len(pending.strings) >= PENDING_MAX:
            self._flush()
        return i

    def _flush(self) -> None:
        """Moves the pending strings into the arrays (they keep their ids)."""
        pending = self._pending
        if pending.strings:
            self._add_encoded(*encoded(pending.strings), len(pending.strings))  # ids base.. in order
            if self._size != pending.base + len(pending.strings):
                raise RuntimeError("add_new was given a string the table held")

    def add_many(self, strings: Sequence[str]) -> np.ndarray:
        """The id of each string (int64); absent strings get the next ids in order of first
        appearance."""
        self._flush()
        return self._add_encoded(*encoded(strings), len(strings))

    def _add_encoded(self, data: np.ndarray, offsets: np.ndarray, count: int) -> np.ndarray:
        """`add_many` of `count` strings given as `encoded` gives them (nothing pending)."""
        self._reserve(count, data.shape[0])
        before = self._size
        ids, self._size, self._used = kt.add_many(*self._arrays, self._size, self._used, data, offsets)
        self._added(self._size - before)
        return ids

    def _added(self, count: int) -> None:
        """Counts `count` new ids in the arrays; pending ids (none now) start after them."""
        self._filled += count
        self._live += count
        if count:
            self._pending = _Pending(self._size, [], {})

    def add(self, s: str) -> int:
        """`add_many` of one string."""
        self._flush()
        data = np.frombuffer(s.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        self._reserve(1, data.shape[0])
        before = self._size
        found, self._size, self._used = kt.add_one(*self._arrays, self._size, self._used, data)
        self._added(self._size - before)
        return found

    def _reserve(self, count: int, nbytes: int) -> None:
        """Room for `count` new ids holding `nbytes` more bytes."""
        table, blob, start, length = self._arrays
        grew = False
        if start.shape[0] < self._size + count:
            start, length, grew = _grown(start, self._size + count), _grown(length, self._size + count), True
        if blob.shape[0] < self._used + nbytes:
            blob, grew = _grown(blob, self._used + nbytes), True
        if (self._filled + count) > table.shape[0] * MAX_LOAD:
            table = _table_for(self._live + count)
            kt.fill(table, blob, start, length, self._size)
            self._filled = self._live
        elif grew:  # a reader holding the old arrays must not meet ids written for the new ones
            table = table.copy()
        else:
            return
        self._arrays = _Arrays(table, blob, start, length)

    def get(self, i: int) -> str | None:
        """The string of id `i`, None once removed."""
        pending = self._pending
        if i >= pending.base:
            return pending.strings[i - pending.base]
        _, blob, start, length = self._arrays
        n = int(length[i])
        if n < 0:
            return None
        at = int(start[i])
        return blob[at : at + n].tobytes().decode("utf-8", "surrogatepass")

    def strings(self, ids: np.ndarray) -> list[str | None]:
        """`get` of each id, decoding all of them at once."""
        ids = np.asarray(ids, dtype=np.int64)
        pending = self._pending
        if pending.strings and ids.shape[0] and int(ids.max()) >= pending.base:
            return [self.get(i) for i in ids.tolist()]
        _, blob, start, length = self._arrays
        lengths = length[ids]
        alive = lengths >= 0
        picked = ids[alive] if not alive.all() else ids
        raw = kt.pack(blob, start, length, picked).tobytes()
        bounds = np.zeros(picked.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths[alive], out=bounds[1:])
        cuts = bounds.tolist()
        if raw.isascii():
            text = raw.decode("ascii")
            found = [text[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        else:
            found = [raw[a:b].decode("utf-8", "surrogatepass") for a, b in zip(cuts[:-1], cuts[1:])]
        if picked is ids:
            return found  # type: ignore[return-value]  # list[str] is a list[str | None]
        out: list[str | None] = [None] * ids.shape[0]
        for j, s in zip(np.flatnonzero(alive).tolist(), found):
            out[j] = s
        return out

    def alive(self) -> np.ndarray:
        """bool per id: whether it still holds a string."""
        self._flush()
        return self._arrays.length[: self._size] >= 0

    def remove_many(self, ids: np.ndarray) -> None:
        """Removes the strings of `ids` (removed ones are skipped)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape[0] == 0:
            return
        self._flush()
        count, freed = kt.remove_many(*self._arrays, ids)
        self._live -= count
        self._removed_bytes += freed
        if self._removed_bytes > max(PACK_MIN_BYTES, self._used * PACK_SHARE):
            self._pack()

    def _pack(self) -> None:
        """Moves the live strings' bytes together and rebuilds the table without GONE marks."""
        self._flush()
        _, blob, start, length = self._arrays
        live = np.flatnonzero(length[: self._size] >= 0)
        packed = kt.pack(blob, start, length, live)
        new_start = start.copy()
        bounds = np.zeros(live.shape[0] + 1, dtype=np.int64)
        np.cumsum(length[live], out=bounds[1:])
        new_start[live] = bounds[:-1]
        new_blob = np.empty(max(64, packed.shape[0] + packed.shape[0] // 4), dtype=np.uint8)
        new_blob[: packed.shape[0]] = packed
        table = _table_for(self._live)
        kt.fill(table, new_blob, new_start, length, self._size)
        self._arrays = _Arrays(table, new_blob, new_start, length)
        self._used, self._removed_bytes, self._filled = packed.shape[0], 0, self._live

    def packed(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, bytes) of the live `ids` one after another, in the order given."""
        self._flush()
        ids = np.asarray(ids, dtype=np.int64)
        _, blob, start, length = self._arrays
        offsets = np.zeros(ids.shape[0] + 1, dtype=np.int64)
        np.cumsum(length[ids], out=offsets[1:])
        if ids.shape[0] == self._size and self._removed_bytes == 0 and bool((ids == np.arange(self._size)).all()):
            return offsets, blob[: self._used].copy()  # every id in order, none removed: the buffer as it is
        return offsets, kt.pack(blob, start, length, ids)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays)

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, offsets, bytes) of the live strings: id ids[j] is bytes[offsets[j]:offsets[j+1]]."""
        self._flush()
        ids = np.flatnonzero(self._arrays.length[: self._size] >= 0).astype(np.int64)
        return (ids, *self.packed(ids))

    @classmethod
    def from_arrays(cls, size: int, ids: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> "TextTable":
        """The table `to_arrays` described, with `size` ids assigned. Checks the arrays; keeps
        `data` (a uint8 array) as its buffer."""
        ids = np.asarray(ids, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        data = np.asarray(data, dtype=np.uint8)
        if ids.ndim != 1 or offsets.shape != (ids.shape[0] + 1,) or data.ndim != 1:
            raise ValueError("string table arrays do not match")
        if ids.shape[0] and (int(ids[0]) < 0 or int(ids[-1]) >= size or bool((np.diff(ids) <= 0).any())):
            raise ValueError("string ids must ascend within the size")
        if int(offsets[0]) != 0 or int(offsets[-1]) != data.shape[0] or bool((np.diff(offsets) < 0).any()):
            raise ValueError("string offsets do not cut the bytes")
        out = cls()
        start = np.zeros(max(size, 8), dtype=np.int64)
        length = np.full(max(size, 8), -1, dtype=np.int32)
        start[ids] = offsets[:-1]
        length[ids] = np.diff(offsets)
        if not data.flags.writeable:
            data = data.copy()
        blob = data if data.shape[0] else np.empty(64, np.uint8)
        table = _table_for(ids.shape[0])
        kt.fill(table, blob, start, length, size)
        out._arrays = _Arrays(table, blob, start, length)
        out._size, out._used, out._live, out._filled = size, data.shape[0], ids.shape[0], ids.shape[0]
        out._pending = _Pending(size, [], {})
        return out

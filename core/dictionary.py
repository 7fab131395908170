"""The store-wide string dictionary: dense string codes shared by every table's string
columns, with reference counts (a code no stored entry holds is released) and a lazily
parsed numeric value per code (numeric-string comparisons read it).
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from core.columns import GrowableArray


def _parse_number(s: str) -> float:
    """`s` as a finite number, NaN when it is not one (no underscores, inf or nan words)."""
    if "_" in s:
        return math.nan
    try:
        x = float(s)
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


BUILD_CHUNK = 65_536  # dict entries added per step of a background build


def dict_of(keys: Sequence[Any], values: Sequence[Any]) -> dict[Any, Any]:
    """dict(zip(keys, values)) added a chunk at a time: a thread building a big dict lets the
    others run between chunks (one dict(zip(...)) call holds the GIL to its end)."""
    out: dict[Any, Any] = {}
    for start in range(0, len(keys), BUILD_CHUNK):
        out.update(zip(keys[start : start + BUILD_CHUNK], values[start : start + BUILD_CHUNK]))
    return out


def missing_codes(codes: np.ndarray, known: np.ndarray, known_below: int = 0) -> np.ndarray:
    """The distinct codes of `codes` that `known` (bool per code) does not mark, ascending;
    codes below `known_below` count as known. Sorts a short `codes`, marks a long one."""
    codes = np.asarray(codes)
    if codes.shape[0] * 8 < known.shape[0]:
        distinct = np.unique(codes)
        distinct = distinct[distinct >= known_below]
        return distinct[~known[distinct]]
    used = np.zeros(known.shape[0], dtype=np.bool_)
    used[codes] = True
    used[:known_below] = False
    return np.flatnonzero(used & ~known)


_EMPTY_STR_BYTES = sys.getsizeof("")  # a compact ASCII string of n characters takes this plus n


class StringDictionary:
    """Store-wide string codes: dense from 0, never reused.

    A code whose last referencing entry is removed can be released (erase, retention): its
    string is forgotten and `lookup` no longer finds it; `decode` of a released code gives "".
    The single writer encodes and releases; readers may call decode, lookup and numeric at any
    time.

    A restored dictionary keeps its state (one blob) and builds the string list and the
    string -> code map on first use, or when `finish_restore` is called; whoever
    needs them first builds them under `_build_lock` while the others wait. The writer always
    goes through `_code_map` before it changes anything, so a build never sees a change.
    """

    def __init__(self) -> None:
        self._size = 0  # codes assigned: 0.._size-1
        self._strings: list[str | None] | None = []  # None: still in `_stored`
        self._codes: dict[str, int] | None = {}  # None: still in `_stored`
        self._stored: Mapping[str, Any] | None = None  # the state restored from, until built
        self._build_lock = threading.Lock()
        self._numeric = GrowableArray(np.float64, capacity=64)  # NaN until parsed
        self._parsed = GrowableArray(np.bool_, capacity=64)  # whether _numeric holds the code's value
        self._parsed_below = 0  # every code below this one is parsed
        self._numeric_lock = threading.Lock()
        self._refs = GrowableArray(np.int64, capacity=64)  # stored entries holding each code
        self._text_bytes = 0  # sum of sys.getsizeof of the live strings

    def __len__(self) -> int:
        return self._size

    def _string_list(self) -> list[str | None]:
        """code -> string (None: released), built from the restored state if not yet."""
        strings = self._strings
        if strings is None:
            self._build()
            strings = self._strings
            assert strings is not None
        return strings

    def _code_map(self) -> dict[str, int]:
        """string -> code of the live strings, built from the restored state if not yet."""
        codes = self._codes
        if codes is None:
            self._build()
            codes = self._codes
            assert codes is not None
        return codes

    def _build(self) -> None:
        with self._build_lock:
            state = self._stored
            if state is None:  # built meanwhile by another thread
                return
            strings, live, code_list = _strings_of_state(state, self._size)
            if not state["blob"].tobytes().isascii():
                self._text_bytes = sum(map(sys.getsizeof, live))
            self._strings = strings
            self._codes = dict_of(live, code_list)
            self._stored = None

    def finish_restore(self) -> None:
        """Builds the string list and code map of a restored dictionary now, if that is still
        to be done (any thread)."""
        if self._stored is not None:
            self._build()

    def encode(self, s: str) -> int:
        """The code of `s`, assigning the next one when `s` is new."""
        codes = self._code_map()
        code = codes.get(s)
        if code is None:
            code = self._size
            self._string_list().append(s)
            codes[s] = code
            self._size = code + 1
            self._text_bytes += sys.getsizeof(s)
        return code

    def acquire(self, s: str) -> int:
        """`encode(s)`, counting one more stored entry that holds the code."""
        code = self.encode(s)
        refs = self._refs
        if code >= len(refs):
            refs.fill(0, code + 1 - len(refs))
        refs._buf[code] += 1
        return code

    def acquire_all(self, strings: Sequence[str]) -> list[int]:
        """`acquire` of each string in order (new strings get codes in order of first use)."""
        get = self._code_map().get
        found = [get(s) for s in strings]
        if None in found:
            encode = self.encode
            found = [encode(s) if c is None else c for s, c in zip(strings, found)]
        codes: list[int] = found  # type: ignore[assignment]  # no None left
        if codes:
            refs = self._refs
            if len(refs) < self._size:
                refs.fill(0, self._size - len(refs))
            np.add.at(refs._buf, np.asarray(codes, dtype=np.int64), 1)
        return codes

    def drop_refs(self, codes: np.ndarray) -> int:
        """Counts one entry fewer per item of `codes`; releases codes no entry holds. Returns how many."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape[0] == 0:
            return 0
        uniq, counts = np.unique(codes, return_counts=True)
        refs = self._refs._buf
        refs[uniq] -= counts
        dead = uniq[refs[uniq] <= 0]
        refs[dead] = 0
        self.release(dead)
        return int(dead.shape[0])

    def set_refs(self, refs: np.ndarray) -> None:
        """Replaces the reference counts (after a restore: one count per stored entry)."""
        counts = np.zeros(self._size, dtype=np.int64)
        refs = np.asarray(refs, dtype=np.int64)
        counts[: refs.shape[0]] = refs[: counts.shape[0]]
        self._refs = GrowableArray.of(counts)

    def refs(self, code: int) -> int:
        """How many stored entries hold `code`."""
        return int(self._refs._buf[code]) if code < len(self._refs) else 0

    def decode(self, code: int) -> str:
        """The string of `code` ("" for a released code)."""
        strings = self._strings
        s = (self._string_list() if strings is None else strings)[code]
        return "" if s is None else s

    def lookup(self, s: str) -> int | None:
        """The code of `s` when it is known, else None."""
        codes = self._codes
        return (self._code_map() if codes is None else codes).get(s)

    def live(self, code: int) -> bool:
        """Whether `code` still names a string (it was not released)."""
        return self._string_list()[code] is not None

    def release(self, codes: np.ndarray) -> None:
        """Forgets the strings of `codes` (no stored entry refers to them any more)."""
        code_map = self._code_map()
        strings = self._string_list()
        for code in np.asarray(codes, dtype=np.int64).tolist():
            s = strings[code]
            if s is None:
                continue
            strings[code] = None
            del code_map[s]
            self._text_bytes -= sys.getsizeof(s)

    def numeric(self) -> np.ndarray:
        """float64 per code: the string as a finite number, NaN when it is not one."""
        with self._numeric_lock:
            total = self._grow_numeric()
            if self._parsed_below < total:
                self._parse(self._parsed_below + np.flatnonzero(~self._parsed._buf[self._parsed_below:total]))
                self._parsed_below = total
            return self._numeric.view(total)

    def numeric_of(self, codes: np.ndarray) -> np.ndarray:
        """The `numeric` table, read only for the codes in `codes`: other codes may hold NaN
        where they are numbers. Parses just the strings a column uses, not the dictionary's."""
        codes = np.asarray(codes)
        with self._numeric_lock:
            total = self._grow_numeric()
            if self._parsed_below < total and codes.shape[0]:
                self._parse(missing_codes(codes, self._parsed._buf[:total], self._parsed_below))
            return self._numeric.view(total)

    def _grow_numeric(self) -> int:
        total = self._size
        self._numeric.fill(math.nan, total - len(self._numeric))
        self._parsed.fill(False, total - len(self._parsed))
        return total

    def _parse(self, codes: np.ndarray) -> None:
        strings, values = self._string_list(), self._numeric._buf
        for code in codes.tolist():
            s = strings[code]
            values[code] = math.nan if s is None else _parse_number(s)
        self._parsed._buf[codes] = True

    @property
    def nbytes(self) -> int:
        """Approximate memory: string objects, the code map and the numeric cache."""
        n = self._size
        stored = self._stored
        live = len(stored["codes"]) if stored is not None else len(self._code_map())
        # list slot (8) + dict entry and index (about 3 words plus slack) per code
        return self._text_bytes + n * 8 + live * 40 + self._numeric.nbytes + self._refs.nbytes

    def to_state(self) -> dict[str, Any]:
        """Live strings as one UTF-8 blob with offsets; released codes are left out."""
        stored = self._stored
        if stored is not None:  # unchanged since the restore (a change builds the tables first)
            return {"size": self._size, **{key: stored[key] for key in ("codes", "offsets", "blob")}}
        strings = self._string_list()
        if len(self._code_map()) == len(strings):  # nothing released: every code is live
            live_codes = np.arange(len(strings), dtype=np.int64)
            live: list[str] = strings  # type: ignore[assignment]  # no None in it
        else:
            live_codes = np.flatnonzero(np.fromiter(map(_is_str, strings), dtype=np.bool_, count=len(strings)))
            live = [s for s in strings if s is not None]
        text = "".join(live)
        if text.isascii():  # one byte per character: lengths are the strings' lengths
            data = text.encode("ascii")
            lengths = np.fromiter(map(len, live), dtype=np.int64, count=len(live))
        else:
            encoded = [s.encode("utf-8", "surrogatepass") for s in live]
            data = b"".join(encoded)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(live) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return {
            "size": self._size,
            "codes": live_codes,
            "offsets": offsets,
            "blob": np.frombuffer(data, dtype=np.uint8).copy(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "StringDictionary":
        """The dictionary `to_state` described. The arrays are checked at once; the strings and
        the code map are built on first use (see the class docstring)."""
        out = cls()
        size = int(state["size"])
        codes = np.asarray(state["codes"], dtype=np.int64)
        offsets = np.asarray(state["offsets"], dtype=np.int64)
        blob = np.asarray(state["blob"], dtype=np.uint8)
        if codes.ndim != 1 or offsets.shape != (codes.shape[0] + 1,) or blob.ndim != 1:
            raise ValueError("dictionary state arrays do not match")
        if codes.shape[0] and (int(codes[0]) < 0 or int(codes[-1]) >= size or bool((np.diff(codes) <= 0).any())):
            raise ValueError("dictionary codes must ascend within its size")
        if int(offsets[0]) != 0 or int(offsets[-1]) != blob.shape[0] or bool((np.diff(offsets) < 0).any()):
            raise ValueError("dictionary offsets do not cut the blob")
        out._size = size
        out._stored = {"codes": codes, "offsets": offsets, "blob": blob}
        out._strings = out._codes = None
        out._text_bytes = codes.shape[0] * _EMPTY_STR_BYTES + blob.shape[0]  # exact when ASCII
        return out


def _is_str(s: str | None) -> bool:
    return s is not None


def _strings_of_state(state: Mapping[str, Any], size: int) -> tuple[list[str | None], list[str], list[int]]:
    """(code -> string with None for released codes, the live strings, their codes) of a
    dictionary state. An all-ASCII blob (ids, emails: the common case) is decoded at once and
    cut, otherwise string by string."""
    code_list = state["codes"].tolist()
    bounds = state["offsets"].tolist()
    blob = state["blob"].tobytes()
    if blob.isascii():
        text = blob.decode("ascii")
        live = [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    else:
        live = [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(bounds[:-1], bounds[1:])]
    if len(code_list) == size:  # every code live: codes ascend, so they are 0..size-1
        return live, live, code_list  # type: ignore[return-value]  # no None in it
    strings: list[str | None] = [None] * size
    for code, string in zip(code_list, live):
        strings[code] = string
    return strings, live, code_list

"""The store-wide string dictionary: dense string codes shared by every table's string
columns, with reference counts (a code no stored entry holds is released) and a lazily
parsed numeric value per code (numeric-string comparisons read it).
"""

from __future__ import annotations

import math
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from core.columns import GrowableArray
from core.texts import TextTable


def _parse_number(s: str) -> float:
    """`s` as a finite number, NaN when it is not one (no underscores, inf or nan words)."""
    if "_" in s:
        return math.nan
    try:
        x = float(s)
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


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


class StringDictionary:
    """Store-wide string codes: dense from 0, never reused, held in a `TextTable`.

    A code whose last referencing entry is removed can be released (erase, retention): its
    string is forgotten and `lookup` no longer finds it; `decode` of a released code gives "".
    The single writer encodes and releases; readers may call decode, lookup and numeric at any
    time.
    """

    def __init__(self, texts: TextTable | None = None) -> None:
        self._texts = TextTable() if texts is None else texts
        self._numeric = GrowableArray(np.float64, capacity=64)  # NaN until parsed
        self._parsed = GrowableArray(np.bool_, capacity=64)  # whether _numeric holds the code's value
        self._parsed_below = 0  # every code below this one is parsed
        self._numeric_lock = threading.Lock()
        self._refs = GrowableArray(np.int64, capacity=64)  # stored entries holding each code

    def __len__(self) -> int:
        return len(self._texts)

    def encode(self, s: str) -> int:
        """The code of `s`, assigning the next one when `s` is new."""
        return self._texts.add(s)

    def encode_all(self, strings: Sequence[str]) -> np.ndarray:
        """`encode` of each string in order (int64; new strings get codes in order of first use)."""
        return self._texts.add_many(strings)

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
        if not strings:
            return []
        codes = self._texts.add_many(strings)
        self.add_refs(codes, 1)
        return codes.tolist()  # type: ignore[no-any-return]

    def add_refs(self, codes: np.ndarray, counts: np.ndarray | int) -> None:
        """Counts `counts[i]` stored entries more for `codes[i]` (codes may repeat)."""
        refs = self._refs
        if len(refs) < len(self._texts):
            refs.fill(0, len(self._texts) - len(refs))
        np.add.at(refs._buf, codes, counts)

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
        counts = np.zeros(len(self._texts), dtype=np.int64)
        refs = np.asarray(refs, dtype=np.int64)
        counts[: refs.shape[0]] = refs[: counts.shape[0]]
        self._refs = GrowableArray.of(counts)

    def refs(self, code: int) -> int:
        """How many stored entries hold `code`."""
        return int(self._refs._buf[code]) if code < len(self._refs) else 0

    def decode(self, code: int) -> str:
        """The string of `code` ("" for a released code)."""
        s = self._texts.get(code)
        return "" if s is None else s

    def decode_all(self, codes: np.ndarray) -> list[str]:
        """`decode` of each code, at once."""
        return [("" if s is None else s) for s in self._texts.strings(codes)]

    def lookup(self, s: str) -> int | None:
        """The code of `s` when it is known, else None."""
        return self._texts.find(s)

    def live(self, code: int) -> bool:
        """Whether `code` still names a string (it was not released)."""
        return self._texts.get(code) is not None

    def release(self, codes: np.ndarray) -> None:
        """Forgets the strings of `codes` (no stored entry refers to them any more)."""
        self._texts.remove_many(codes)

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
        total = len(self._texts)
        self._numeric.fill(math.nan, total - len(self._numeric))
        self._parsed.fill(False, total - len(self._parsed))
        return total

    def _parse(self, codes: np.ndarray) -> None:
        values = self._numeric._buf
        for code, s in zip(codes.tolist(), self._texts.strings(codes)):
            values[code] = math.nan if s is None else _parse_number(s)
        self._parsed._buf[codes] = True

    @property
    def nbytes(self) -> int:
        """Memory held: the strings, the numeric cache and the reference counts."""
        return self._texts.nbytes + self._numeric.nbytes + self._parsed.nbytes + self._refs.nbytes

    def to_state(self) -> dict[str, Any]:
        """Live strings as one UTF-8 blob with offsets; released codes are left out."""
        codes, offsets, blob = self._texts.to_arrays()
        return {"size": len(self._texts), "codes": codes, "offsets": offsets, "blob": blob}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "StringDictionary":
        """The dictionary `to_state` described (raises ValueError when its arrays disagree)."""
        texts = TextTable.from_arrays(int(state["size"]), state["codes"], state["offsets"], state["blob"])
        return cls(texts)

"""The membership change log: every entered / exited change under a sequence number.

Changes arrive in chunks (one segment, one instant, one step of the engine), each entry a
contact with an entered flag and a cause. Sequence numbers are consecutive across chunks,
start at 1 and never repeat, so a reader resumes after the last number it saw. Retention is
bounded by entry count and by age; trimming drops the oldest entries only.

A chunk may carry the journal position of the write that caused it: readers see it only once
`durable()` reports that position written, so a watcher is never shown a change that a crash
could take back. Readers wait for new entries on a condition variable.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CAUSES = ("event", "time", "contact", "definition")
CAUSE_CODES = {name: code for code, name in enumerate(CAUSES)}
DEFAULT_MAX_ENTRIES = 10_000_000
DEFAULT_MAX_AGE_MS = 7 * 24 * 3_600_000
STATE_FORMAT = 1
_GATED_POLL_S = 0.002  # how often a reader rechecks a change waiting for its journal record


@dataclass(frozen=True, slots=True)
class Change:
    """One membership change; attribute names are those of the MembershipChange message."""

    sequence: int
    segment: str
    contact_id: int
    entered: bool  # False: exited
    at_ms: int
    cause: str  # one of CAUSES


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive changes of one segment at one instant; entry i has sequence `first + i`."""

    first: int
    segment: str
    contact: np.ndarray  # uint32[n], ascending
    entered: np.ndarray  # bool[n]
    cause: np.ndarray  # uint8[n], indexes CAUSES
    at_ms: int
    position: int = 0  # journal position that must be durable before readers see it (0: none)

    def __len__(self) -> int:
        return int(self.contact.shape[0])

    @property
    def last(self) -> int:
        return self.first + len(self) - 1

    def change(self, i: int) -> Change:
        return Change(
            self.first + i, self.segment, int(self.contact[i]), bool(self.entered[i]), self.at_ms,
            CAUSES[int(self.cause[i])],
        )

    def tail(self, k: int) -> Chunk:
        """The chunk without its first `k` entries."""
        return Chunk(self.first + k, self.segment, self.contact[k:], self.entered[k:], self.cause[k:],
                     self.at_ms, self.position)


class ChangeList(Sequence[Change]):
    """The changes of some chunks as a sequence, built into Change objects only when read."""

    def __init__(self, chunks: Sequence[Chunk] = ()) -> None:
        self.chunks = list(chunks)
        self._ends = np.cumsum([len(c) for c in self.chunks], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __iter__(self) -> Iterator[Change]:
        for chunk in self.chunks:
            for i in range(len(chunk)):
                yield chunk.change(i)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = int(np.searchsorted(self._ends, index, side="right"))
        start = int(self._ends[k - 1]) if k else 0
        return self.chunks[k].change(index - start)


class ChangeLog:
    """Sequenced membership changes with bounded retention; safe to read from any thread."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_ms: int = DEFAULT_MAX_AGE_MS,
        next_sequence: int = 1,
        durable: Callable[[], int | None] | None = None,
    ) -> None:
        if max_entries < 1 or max_age_ms < 1 or next_sequence < 1:
            raise ValueError("max_entries, max_age_ms and next_sequence must be positive")
        self.max_entries = max_entries
        self.max_age_ms = max_age_ms
        self.durable = durable  # the journal position written so far; None: nothing is gated
        self._chunks: list[Chunk] = []
        self._firsts: list[int] = []  # chunk.first of each chunk, for bisect
        self._entries = 0
        self._next = next_sequence
        self._cond = threading.Condition()

    # ------------------------------------------------------------------ writing

    def append(
        self,
        segment: str,
        contacts: np.ndarray,
        entered: np.ndarray,
        causes: np.ndarray,
        at_ms: int,
        position: int = 0,
    ) -> Chunk | None:
        """Adds one chunk (contacts ascending); returns it, or None when it is empty."""
        n = int(contacts.shape[0])
        if n == 0:
            return None
        columns = (
            np.ascontiguousarray(contacts, np.uint32),
            np.ascontiguousarray(entered, np.bool_),
            np.ascontiguousarray(causes, np.uint8),
        )
        with self._cond:
            chunk = Chunk(self._next, segment, *columns, int(at_ms), int(position))
            self._chunks.append(chunk)
            self._firsts.append(chunk.first)
            self._entries += n
            self._next += n
            self._trim_count()
            self._cond.notify_all()
        return chunk

    def trim(self, now_ms: int) -> int:
        """Drops chunks older than the age limit at `now_ms`; returns how many entries went."""
        dropped = 0
        with self._cond:
            while self._chunks and self._chunks[0].at_ms < now_ms - self.max_age_ms:
                dropped += len(self._chunks[0])
                self._drop_first()
        return dropped

    def _drop_first(self) -> None:
        gone = self._chunks.pop(0)
        self._firsts.pop(0)
        self._entries -= len(gone)

    def _trim_count(self) -> None:
        excess = self._entries - self.max_entries
        while excess > 0 and self._chunks:
            head = self._chunks[0]
            if len(head) <= excess:
                excess -= len(head)
                self._drop_first()
            else:
                self._chunks[0] = head.tail(excess)
                self._firsts[0] = self._chunks[0].first
                self._entries -= excess
                excess = 0

    def wake(self) -> None:
        """Wakes every waiting reader (to notice a cancelled stream or another source of news)."""
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ reading

    @property
    def last_sequence(self) -> int:
        """The last sequence number given (0 before the first change)."""
        return self._next - 1

    @property
    def first_sequence(self) -> int:
        """The oldest sequence number still retained (last_sequence + 1 when none is)."""
        with self._cond:
            return self._chunks[0].first if self._chunks else self._next

    def __len__(self) -> int:
        return self._entries

    def published_sequence(self) -> int:
        """The last sequence number readers may see (changes whose journal record is written)."""
        with self._cond:
            return self._published_locked()

    def _published_locked(self) -> int:
        written = self.durable() if self.durable is not None else None
        last = self._next - 1
        if written is None:
            return last
        for chunk in reversed(self._chunks):
            if chunk.position <= written:
                return last
            last = chunk.first - 1
        return last

    def read(self, after: int, segments: frozenset[str] | None = None, limit: int = 1000) -> tuple[list[Change], int]:
        """Up to `limit` published changes with sequence > `after` (of `segments` only, when
        given) and the sequence number read through (pass it as the next `after`)."""
        out: list[Change] = []
        with self._cond:
            top = self._published_locked()
            k = max(0, bisect.bisect_right(self._firsts, after) - 1)
            chunks = self._chunks[k:]
        through = after
        for chunk in chunks:
            if chunk.first > top or len(out) >= limit:
                break
            start = max(0, after + 1 - chunk.first)
            stop = min(len(chunk), top + 1 - chunk.first)
            if start >= stop:
                continue
            if segments is not None and chunk.segment not in segments:
                through = chunk.first + stop - 1
                continue
            stop = min(stop, start + limit - len(out))
            out.extend(chunk.change(i) for i in range(start, stop))
            through = chunk.first + stop - 1
        return out, max(through, after)

    def wait(self, after: int, timeout: float) -> bool:
        """Waits up to `timeout` seconds for a published change past `after`; True when there is one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._published_locked() > after:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # A written change behind an unsynced journal record is not announced again:
                # poll for it briefly instead of waiting for the next append.
                gated = self._next - 1 > after
                self._cond.wait(min(left, _GATED_POLL_S) if gated else left)

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """The log as plain values and flat numpy arrays (one entry per change)."""
        with self._cond:
            chunks = list(self._chunks)
            next_sequence = self._next
        names = sorted({c.segment for c in chunks})
        code = {name: i for i, name in enumerate(names)}
        sizes = np.array([len(c) for c in chunks], dtype=np.int64)

        def joined(field: str, dtype: Any) -> np.ndarray:
            parts = [getattr(c, field) for c in chunks]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        return {
            "format": STATE_FORMAT,
            "next_sequence": next_sequence,
            "max_entries": self.max_entries,
            "max_age_ms": self.max_age_ms,
            "first": chunks[0].first if chunks else next_sequence,
            "names": names,
            "chunk_sizes": sizes,
            "chunk_segment": np.array([code[c.segment] for c in chunks], dtype=np.int32),
            "chunk_at_ms": np.array([c.at_ms for c in chunks], dtype=np.int64),
            "contact": joined("contact", np.uint32),
            "entered": joined("entered", np.uint8),
            "cause": joined("cause", np.uint8),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], durable: Callable[[], int | None] | None = None) -> ChangeLog:
        """The log `to_state` described; every restored change counts as durable."""
        if int(state.get("format", -1)) != STATE_FORMAT:
            raise ValueError(f"unsupported change log state format {state.get('format')!r}")
        log = cls(
            max_entries=int(state["max_entries"]),
            max_age_ms=int(state["max_age_ms"]),
            next_sequence=int(state["next_sequence"]),
            durable=durable,
        )
        names = list(state["names"])
        sizes = np.asarray(state["chunk_sizes"], dtype=np.int64)
        segment = np.asarray(state["chunk_segment"], dtype=np.int64)
        at = np.asarray(state["chunk_at_ms"], dtype=np.int64)
        contact = np.asarray(state["contact"], dtype=np.uint32)
        entered = np.asarray(state["entered"]).astype(np.bool_)
        cause = np.asarray(state["cause"], dtype=np.uint8)
        if int(sizes.sum()) != contact.shape[0] or not contact.shape == entered.shape == cause.shape:
            raise ValueError("change log arrays do not match their chunk sizes")
        first = int(state["first"])
        start = 0
        for size, seg, at_ms in zip(sizes.tolist(), segment.tolist(), at.tolist()):
            stop = start + size
            chunk = Chunk(first, names[seg], contact[start:stop], entered[start:stop], cause[start:stop], at_ms)
            log._chunks.append(chunk)
            log._firsts.append(first)
            log._entries += size
            first += size
            start = stop
        if first != log._next:
            raise ValueError("change log sequence numbers do not reach its next sequence number")
        return log

"""A segment's size, entries and exits over time: sparse buckets, read at any resolution.

Every step that changes a segment adds its entries and exits to the bucket of its instant
(BUCKET_MS wide, epoch-aligned) and records the size at the end of that bucket. Only buckets
with changes are stored. Past `max_buckets`, the older half is merged into coarser buckets
(a minute, an hour, then a day), so old history stays, at a coarser grain.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InvalidArgument

BUCKET_MS = 1000
COARSER_MS = (60_000, 3_600_000, 86_400_000)
DEFAULT_MAX_BUCKETS = 50_000
MAX_POINTS = 10_000  # points in one answer


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    at_ms: int  # start of the bucket
    size: int  # members at the end of the bucket
    entered: int
    exited: int


class SegmentHistory:
    """The history of one segment. Safe to read while another thread records."""

    def __init__(self, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.max_buckets = max(4, max_buckets)
        self._lock = threading.Lock()
        self._n = 0
        self._cols = np.zeros((4, 64), dtype=np.int64)  # rows: start, size, entered, exited

    def __len__(self) -> int:
        return self._n

    def record(self, at_ms: int, entered: int, exited: int, size: int) -> None:
        """Adds one step's entries and exits at `at_ms`, after which the segment has `size` members.

        An instant before the last bucket (the clock went back) counts in the last bucket."""
        start = (at_ms // BUCKET_MS) * BUCKET_MS
        with self._lock:
            n = self._n
            if n and start <= self._cols[0, n - 1]:
                self._cols[1:, n - 1] += (0, entered, exited)
                self._cols[1, n - 1] = size
                return
            if n == self._cols.shape[1]:
                grown = np.zeros((4, 2 * n), dtype=np.int64)
                grown[:, :n] = self._cols
                self._cols = grown
            self._cols[:, n] = (start, size, entered, exited)
            self._n = n + 1
            if self._n > self.max_buckets:
                self._coarsen()

    def _coarsen(self) -> None:
        """Merges the older half into buckets of the next coarser width that changes something."""
        cols = self._cols[:, : self._n]
        half = self._n // 2
        for width in COARSER_MS:
            keys = cols[0, :half] // width
            if np.unique(keys).shape[0] < half:
                break
        else:
            width = 0  # already a day apart: drop the oldest half
        old, rest = cols[:, :half], cols[:, half:]
        if width:
            keys = old[0] // width
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            ends = np.r_[starts[1:], half] - 1
            merged = np.stack([
                keys[starts] * width,
                old[1, ends],
                np.add.reduceat(old[2], starts),
                np.add.reduceat(old[3], starts),
            ])
        else:
            merged = np.zeros((4, 0), dtype=np.int64)
        joined = np.concatenate([merged, rest], axis=1)
        self._n = joined.shape[1]
        self._cols = np.zeros((4, max(64, 2 * self._n)), dtype=np.int64)
        self._cols[:, : self._n] = joined

    def points(self, from_ms: int, to_ms: int, resolution_ms: int) -> list[HistoryPoint]:
        """One point per `resolution_ms` bucket (epoch-aligned) from the one holding `from_ms`
        up to `to_ms` (exclusive): size at the bucket's end, entries and exits in it."""
        if resolution_ms <= 0:
            raise InvalidArgument("resolution_seconds", "must be positive")
        if to_ms <= from_ms:
            return []
        first = from_ms // resolution_ms
        count = (to_ms - 1) // resolution_ms - first + 1
        if count > MAX_POINTS:
            raise InvalidArgument(
                "resolution_seconds", f"the range holds {count} buckets at this resolution, at most {MAX_POINTS}"
            )
        with self._lock:
            cols = self._cols[:, : self._n].copy()
        starts = (first + np.arange(count, dtype=np.int64)) * resolution_ms
        ends = starts + resolution_ms
        # size: that of the last stored bucket starting before each bucket's end (0 before any)
        last = np.searchsorted(cols[0], ends, side="left") - 1
        sizes = np.where(last >= 0, cols[1][np.maximum(last, 0)], 0) if cols.shape[1] else np.zeros(count, np.int64)
        inside = (cols[0] >= starts[0]) & (cols[0] < ends[-1])
        slot = (cols[0][inside] // resolution_ms) - first
        entered = np.bincount(slot, weights=cols[2][inside], minlength=count)
        exited = np.bincount(slot, weights=cols[3][inside], minlength=count)
        return [
            HistoryPoint(int(s), int(z), int(e), int(x))
            for s, z, e, x in zip(starts.tolist(), sizes.tolist(), entered.tolist(), exited.tolist())
        ]

    def totals(self, from_ms: int, to_ms: int) -> tuple[int, int]:
        """(entries, exits) recorded in the buckets starting in [from_ms, to_ms]."""
        with self._lock:
            starts = self._cols[0, : self._n]
            i = int(np.searchsorted(starts, from_ms, side="left"))
            j = int(np.searchsorted(starts, to_ms, side="right"))
            return int(self._cols[2, i:j].sum()), int(self._cols[3, i:j].sum())

    def to_state(self) -> dict[str, Any]:
        with self._lock:
            return {"max_buckets": self.max_buckets, "columns": self._cols[:, : self._n].copy()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SegmentHistory:
        history = cls(int(state["max_buckets"]))
        cols = np.asarray(state["columns"], dtype=np.int64).reshape(4, -1)
        history._n = cols.shape[1]
        history._cols = np.zeros((4, max(64, 2 * history._n)), dtype=np.int64)
        history._cols[:, : history._n] = cols
        return history

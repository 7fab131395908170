"""A table version cut down to the rows of a few contacts, for re-evaluating only them.

The cut keeps the rows of the chosen contacts in their order (so it is contact-sorted and
ts-sorted within each contact like its source) and renumbers them from 0; a column is cut
only when it is first read. Cost: O(k log n) searches plus the rows and entries kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from core.columns import Kind, PathColumn, make_column


def _ranges_to_index(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) over i (all ranges non-empty)."""
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return starts + np.arange(total, dtype=np.int64)


class _CutColumns(Mapping[tuple[str, Kind], PathColumn]):
    """The source's columns restricted to the kept rows, cut on first access."""

    def __init__(self, source: Mapping[tuple[str, Kind], PathColumn], lo: np.ndarray, hi: np.ndarray,
                 offsets: np.ndarray) -> None:
        self._source = source
        self._lo, self._hi, self._offsets = lo, hi, offsets  # kept row ranges; new row of lo[i] is offsets[i]
        self._cut: dict[tuple[str, Kind], PathColumn] = {}

    def __getitem__(self, key: tuple[str, Kind]) -> PathColumn:
        col = self._cut.get(key)
        if col is None:
            col = self._cut[key] = self._cut_column(self._source[key])
        return col

    def __iter__(self) -> Iterator[tuple[str, Kind]]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)

    def _cut_column(self, col: PathColumn) -> PathColumn:
        ea = np.searchsorted(col.row, self._lo, side="left")
        eb = np.searchsorted(col.row, self._hi, side="left")
        keep = eb > ea
        entries = _ranges_to_index(ea[keep], eb[keep])
        shift = np.repeat((self._offsets - self._lo)[keep], (eb - ea)[keep])
        rows = col.row[entries] + shift
        values = col.values if col.kind == Kind.NODE else col.values[entries]
        items = {p: a[entries] for p, a in col.items.items()}
        return make_column(col.path, col.kind, rows, values, items)


class ContactCut:
    """The rows of some contacts of a sorted table version (see module docstring)."""

    def __init__(self, version: object, contact_ids: np.ndarray) -> None:
        contact = version.contact  # type: ignore[attr-defined]
        ids = np.unique(np.asarray(contact_ids, dtype=np.uint32))
        lo = np.searchsorted(contact, ids, side="left").astype(np.int64)
        hi = np.searchsorted(contact, ids, side="right").astype(np.int64)
        present = hi > lo
        lo, hi = lo[present], hi[present]
        offsets = np.concatenate(([0], np.cumsum(hi - lo)[:-1])).astype(np.int64)
        index = _ranges_to_index(lo, hi)
        self.contact = contact[index]
        self.ts_ms = version.ts_ms[index]  # type: ignore[attr-defined]
        self.columns = _CutColumns(version.columns, lo, hi, offsets)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return int(self.contact.shape[0])

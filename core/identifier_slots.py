"""One identifier slot of the contact book (a kind, and a key name for contact keys): which
contact holds each value, and which values each contact holds.

Values live in a `TextTable` (their bytes in one buffer), so an identifier costs its text plus
about 30 bytes rather than two dict entries and a str object (about 190). `owner[v]` is the
contact holding value id v (0 once released). A single-valued slot keeps `held[c]`, the value
id contact c holds (-1: none); a multi-valued one chains a contact's values in the order they
came: `held[c]` is the first, `after[v]` the one after v (-1: the last).

A value released and given again gets a fresh value id: ids are never reused.

Events name the same contacts again and again, and a new identifier is looked up more than
once before it is given, so the slot remembers its latest answers in a bounded dict
(`recent`: value -> owner, 0 for none; emptied when full): a hit costs a dict lookup rather
than encoding the value and probing the table. Giving or releasing a value updates it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.texts import TextTable

NONE = -1
RECENT_MAX = 1 << 15  # values remembered per slot (about 4 MB of dict and strings)


def _room(arr: np.ndarray, index: int, fill: int) -> np.ndarray:
    """`arr`, or a copy grown (by doubling) to hold `index`, new entries `fill`."""
    if index < arr.shape[0]:
        return arr
    size = max(arr.shape[0], 8)
    while size <= index:
        size *= 2
    out = np.full(size, fill, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class IdentifierSlot:
    """Values <-> contacts of one slot (see the module docstring)."""

    __slots__ = ("multi", "_texts", "_owner", "_held", "_after", "_recent")

    def __init__(self, multi: bool) -> None:
        self.multi = multi
        self._texts = TextTable()
        self._owner = np.zeros(8, dtype=np.int32)  # value id -> contact id, 0 once released
        self._held = np.full(8, NONE, dtype=np.int32)  # contact id -> (first) value id
        self._after = np.full(8, NONE, dtype=np.int32)  # multi only: value id -> next value id
        self._recent: dict[str, int] = {}  # value -> its owner, for values found or given lately

    def __len__(self) -> int:
        return self._texts.live_count

    # ------------------------------------------------------------ reading

    def owner(self, value: str) -> int | None:
        """The contact holding `value`, None when no contact does."""
        owner = self._recent.get(value)
        if owner is None:
            vid = self._texts.find(value)
            owner = 0 if vid is None else int(self._owner[vid])
            self._remember(value, owner)
        return owner or None

    def prefetch(self, values: Sequence[str]) -> None:
        """Remembers the owners of `values` (0 for none), found with one probe of the table."""
        if len(values) > RECENT_MAX // 2:
            values = values[: RECENT_MAX // 2]
        if len(self._recent) + len(values) > RECENT_MAX:
            self._recent.clear()
        vids = self._texts.find_many(values)
        owners = np.where(vids >= 0, self._owner[np.maximum(vids, 0)], 0).tolist()
        self._recent.update(zip(values, owners))

    def _remember(self, value: str, owner: int) -> None:
        recent = self._recent
        if len(recent) >= RECENT_MAX:
            recent.clear()
        recent[value] = owner

    def value_of(self, contact_id: int) -> str | None:
        """The (first) value the contact holds, None when it holds none."""
        held = self._held
        vid = int(held[contact_id]) if contact_id < held.shape[0] else NONE
        return None if vid == NONE else self._texts.get(vid)

    def _chain(self, contact_id: int) -> list[int]:
        held = self._held
        vid = int(held[contact_id]) if contact_id < held.shape[0] else NONE
        out = []
        while vid != NONE:
            out.append(vid)
            vid = int(self._after[vid])
        return out

    def values_of(self, contact_id: int) -> list[str]:
        """Every value the contact holds, in the order it got them."""
        if not self.multi:
            value = self.value_of(contact_id)
            return [] if value is None else [value]
        chain = self._chain(contact_id)
        return self._texts.strings(np.array(chain, dtype=np.int64)) if chain else []  # type: ignore[return-value]

    def holders(self, size: int) -> np.ndarray:
        """bool[size]: whether contact c (< size) holds a value."""
        out = np.zeros(size, dtype=np.bool_)
        held = self._held[:size]
        out[: held.shape[0]] = held != NONE
        return out

    # ------------------------------------------------------------ writing

    def put(self, contact_id: int, value: str) -> None:
        """Gives `value` (held by no contact) to the contact; a single-valued slot's contact
        must hold none."""
        vid = self._texts.add_new(value)  # held by no contact: not in the table
        self._remember(value, contact_id)
        if vid >= self._owner.shape[0]:
            self._owner = _room(self._owner, vid, 0)
        self._owner[vid] = contact_id
        held = self._held
        if contact_id >= held.shape[0]:
            self._held = held = _room(held, contact_id, NONE)
        if not self.multi or held[contact_id] == NONE:
            held[contact_id] = vid
        else:
            last = self._chain(contact_id)[-1]
            self._after[last] = vid
        if self.multi:
            self._after = _room(self._after, vid, NONE)
            self._after[vid] = NONE

    def drop(self, contact_id: int) -> list[str]:
        """Releases every value the contact holds; returns them in order."""
        if self.multi:
            chain = self._chain(contact_id)
        else:
            held = self._held
            first = int(held[contact_id]) if contact_id < held.shape[0] else NONE
            chain = [] if first == NONE else [first]
        if not chain:
            return []
        vids = np.array(chain, dtype=np.int64)
        values: list[str] = self._texts.strings(vids)  # type: ignore[assignment]  # all live
        self._held[contact_id] = NONE
        self._owner[vids] = 0
        self._texts.remove_many(vids)
        for value in values:
            self._remember(value, 0)
        return values

    # ------------------------------------------------------------ snapshots

    def _listed(self) -> tuple[np.ndarray, np.ndarray]:
        """(contact ids, value ids): every value with its holder, by contact then in order."""
        if not self.multi:
            ids = np.flatnonzero(self._held != NONE)
            return ids, self._held[ids].astype(np.int64)
        alive = np.flatnonzero(self._texts.alive())
        vids = alive[np.lexsort((alive, self._owner[alive]))]  # by contact; ids ascend in arrival order
        return self._owner[vids].astype(np.int64), vids

    def entries(self) -> tuple[np.ndarray, list[str]]:
        """(contact ids, values): every value with its holder, by contact then in order."""
        ids, vids = self._listed()
        return ids.astype(np.uint32), self._texts.strings(vids)  # type: ignore[return-value]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`entries` with the values as (offsets, bytes): (contact ids, offsets, bytes)."""
        ids, vids = self._listed()
        return (ids.astype(np.uint32), *self._texts.packed(vids))

    @classmethod
    def from_arrays(cls, multi: bool, ids: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> "IdentifierSlot":
        """The slot holding value i (data[offsets[i]:offsets[i+1]], distinct) for contact ids[i]
        (live contacts; a single-valued slot at most one per contact); a contact's values in
        the order given. Keeps `data` as the table's buffer."""
        slot = cls(multi)
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.shape[0]
        slot._texts = TextTable.from_arrays(n, np.arange(n, dtype=np.int64), offsets, data)
        vids = np.arange(n, dtype=np.int64)
        slot._owner = _room(np.zeros(0, dtype=np.int32), max(n - 1, 0), 0)
        slot._owner[:n] = ids
        top = int(ids.max()) if n else 0
        slot._held = _room(np.zeros(0, dtype=np.int32), top, NONE)
        if not multi:
            slot._held[ids] = vids
            return slot
        slot._after = _room(np.zeros(0, dtype=np.int32), max(n - 1, 0), NONE)
        order = np.argsort(ids, kind="stable")  # each contact's values together, in order
        same = ids[order[1:]] == ids[order[:-1]]
        slot._after[order[:-1][same]] = order[1:][same]
        firsts = order[np.concatenate([[True], ~same])] if n else order
        slot._held[ids[firsts]] = firsts
        return slot

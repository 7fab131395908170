"""A batch of events gathered in arrival order and stored at once, one append per table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.blocks import RowBlock
from core.errors import InvalidArgument
from core.event_model import LeafTuple

if TYPE_CHECKING:
    from core.store import EventStore


class EventBatch:
    """Events gathered in arrival order, stored by `commit` with one append per table.

    `commit` leaves the store as appending each event with `EventStore.append`, in the order
    they were added, would: same arrival numbers, string codes, columns and statistics.
    """

    __slots__ = ("_store", "_blocks", "_strings", "_count")

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._blocks: dict[tuple[str, int], RowBlock] = {}  # (type, shard), first-seen order
        self._strings: list[str] = []  # string values in event order
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, type_key: str, contact_id: int, ts_ms: int, leaves: Sequence[LeafTuple]) -> None:
        """Adds one event with its (path, value, items) leaves; raises as `append` would."""
        if not 0 <= contact_id < 2**32:
            raise InvalidArgument("contact_id", "must be between 0 and 2^32-1")
        if not -(2**63) <= ts_ms < 2**63:
            raise InvalidArgument("timestamp", "is out of range")
        where = (type_key, contact_id >> self._store.shard_bits)
        block = self._blocks.get(where)
        if block is None:
            block = self._blocks[where] = RowBlock()
        block.add(contact_id, ts_ms, self._count, leaves, self._strings)
        self._count += 1

    def commit(self) -> int:
        """Stores every event added; returns the arrival number of the first. Empties the batch."""
        store = self._store
        with store._write:
            first = store._next_arrival
            codes = store.dictionary.acquire_all(self._strings)
            for (type_key, shard), block in self._blocks.items():
                state = store._types.get(type_key) or store._type(type_key)
                table = state.tables.get(shard) or store._table(state, shard)
                table.append_block(block, codes, first)
                state.count += len(block)
                lo, hi = min(block.ts_ms), max(block.ts_ms)
                if state.first_ts is None or lo < state.first_ts:
                    state.first_ts = lo
                if state.last_ts is None or hi > state.last_ts:
                    state.last_ts = hi
            store._next_arrival = first + self._count
        self._blocks, self._strings, self._count = {}, [], 0
        return first

"""The event store against a plain-Python model: a dict of lists of (contact, ts, arrival, leaves)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from core.columns import Kind, kind_of
from core.event_model import Leaf, flatten
from core.history import row_leaves
from core.store import EventStore
from core.tables import Table, TableVersion

pytestmark = pytest.mark.property

SHARD_BITS = 2  # contacts 0..15 span four shards
TYPES = ("view", "buy", "login")
CONTACTS = st.integers(0, 15)
TS = st.integers(0, 12)  # a narrow range, so equal timestamps are common

SCALARS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, -2.25, 1e15, 2**53]),
    st.sampled_from(["a", "b", "7", "x.y", ""]),
    st.booleans(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "m", "n.o"]), inner, max_size=2),
    ),
    max_leaves=5,
)
PARAMS = st.dictionaries(st.sampled_from(["id", "price", "tags", "product", "flag"]), VALUES, max_size=3)


def _canonical(leaves: list[Leaf]) -> list[tuple[Any, ...]]:
    """Leaves as comparable tuples, order-free (the store returns them column by column)."""
    out = []
    for leaf in leaves:
        kind = kind_of(leaf.value)
        value = float(leaf.value) if kind == Kind.NUM else leaf.value
        out.append((leaf.path, int(kind), repr(value), leaf.items))
    return sorted(out)


def _frozen_copy(v: TableVersion) -> dict[str, Any]:
    cols = {
        key: (c.row.copy(), c.values.copy(), {p: a.copy() for p, a in c.items.items()})
        for key, c in v.columns.items()
    }
    return {"contact": v.contact.copy(), "ts": v.ts_ms.copy(), "arrival": v.arrival.copy(), "cols": cols}


def _same(v: TableVersion, saved: dict[str, Any]) -> bool:
    if not (
        np.array_equal(v.contact, saved["contact"])
        and np.array_equal(v.ts_ms, saved["ts"])
        and np.array_equal(v.arrival, saved["arrival"])
        and set(v.columns) == set(saved["cols"])
    ):
        return False
    for key, (row, values, items) in saved["cols"].items():
        c = v.columns[key]
        if not (np.array_equal(c.row, row) and np.array_equal(c.values, values, equal_nan=True)):
            return False
        if set(c.items) != set(items) or any(not np.array_equal(c.items[p], a) for p, a in items.items()):
            return False
    return True


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = EventStore(shard_bits=SHARD_BITS)
        self.model: dict[str, list[tuple[int, int, int, list[Leaf]]]] = {}
        self.retention: dict[str, int] = {}
        self.taken: list[tuple[TableVersion, dict[str, Any]]] = []
        self.saved_min = Table.compact_min_rows
        Table.compact_min_rows = 3  # tails merge on append too

    def teardown(self) -> None:
        Table.compact_min_rows = self.saved_min

    @rule(type_key=st.sampled_from(TYPES), contact=CONTACTS, ts=TS, params=PARAMS)
    def append(self, type_key: str, contact: int, ts: int, params: dict[str, Any]) -> None:
        leaves = flatten(params)
        arrival = self.store.append(type_key, contact, ts, leaves)
        self.model.setdefault(type_key, []).append((contact, ts, arrival, leaves))

    @rule(type_key=st.sampled_from(TYPES), shard=st.integers(0, 3), sorted_=st.booleans())
    def take_version(self, type_key: str, shard: int, sorted_: bool) -> None:
        table = self.store.table(type_key, shard)
        if table is not None:
            v = table.version(sorted=sorted_)
            assert v.sorted_rows <= len(v)
            self.taken.append((v, _frozen_copy(v)))

    @rule(type_key=st.sampled_from(TYPES))
    def compact(self, type_key: str) -> None:
        for v in self.store.shards(type_key):
            assert v.is_sorted

    @rule(contact=CONTACTS)
    def erase(self, contact: int) -> None:
        removed = self.store.erase_contact(contact)
        expected = 0
        for key, events in self.model.items():
            kept = [e for e in events if e[0] != contact]
            expected += len(events) - len(kept)
            self.model[key] = kept
        assert removed == expected

    @rule(from_id=CONTACTS, into_id=CONTACTS)
    def move(self, from_id: int, into_id: int) -> None:
        moved = self.store.move_contact(from_id, into_id)
        expected = 0
        if from_id != into_id:
            for key, events in self.model.items():
                expected += sum(1 for e in events if e[0] == from_id)
                self.model[key] = [(into_id, *e[1:]) if e[0] == from_id else e for e in events]
        assert moved == expected

    @rule(type_key=st.sampled_from(TYPES), retention=st.integers(0, 8), now=st.integers(0, 20))
    def retain(self, type_key: str, retention: int, now: int) -> None:
        self.store.set_config(type_key, None, retention)
        self.retention[type_key] = retention
        dropped = self.store.apply_retention(now)
        expected = 0
        for key, events in self.model.items():
            if key in self.retention:
                kept = [e for e in events if e[1] >= now - self.retention[key]]
                expected += len(events) - len(kept)
                self.model[key] = kept
        assert dropped == expected

    @precondition(lambda self: sum(map(len, self.model.values())) > 0)
    @rule()
    def round_trip(self) -> None:
        before = {key: self.store.type_info(key) for key in self.store.type_keys()}
        self.store = EventStore.from_state(self.store.to_state())
        assert {key: self.store.type_info(key) for key in self.store.type_keys()} == before

    @invariant()
    def shards_equal_model(self) -> None:
        for key in TYPES:
            events = self.model.get(key, [])
            expected_shards = sorted({e[0] >> SHARD_BITS for e in events})
            versions = self.store.shards(key)
            assert [int(v.contact[0]) >> SHARD_BITS for v in versions] == expected_shards
            for shard, v in zip(expected_shards, versions):
                rows = sorted((e for e in events if e[0] >> SHARD_BITS == shard), key=lambda e: e[:3])
                assert v.is_sorted
                assert v.contact.tolist() == [e[0] for e in rows]
                assert v.ts_ms.tolist() == [e[1] for e in rows]
                assert v.arrival.tolist() == [e[2] for e in rows]
                got = row_leaves(v, np.arange(len(v)), self.store.column_order(key), self.store.dictionary)
                assert [_canonical(g) for g in got] == [_canonical(e[3]) for e in rows]

    @invariant()
    def stats_equal_model(self) -> None:
        assert self.store.total_events() == sum(map(len, self.model.values()))
        for key in self.store.type_keys():
            info = self.store.type_info(key)
            events = self.model.get(key, [])
            assert info.count == len(events)
            counts: dict[tuple[str, Kind], int] = {}
            values: dict[tuple[str, Kind], set[Any]] = {}
            for e in events:
                for leaf in e[3]:
                    k = (leaf.path, kind_of(leaf.value))
                    values.setdefault(k, set()).add(leaf.value)
                for k in {(leaf.path, kind_of(leaf.value)) for leaf in e[3]}:
                    counts[k] = counts.get(k, 0) + 1
            assert {(p.path, p.kind): p.count for p in info.paths} == counts
            for p in info.paths:
                assert set(p.examples) <= values[(p.path, p.kind)]
                assert len(p.examples) == min(5, len(values[(p.path, p.kind)])) or p.kind == Kind.NODE
            if events:
                assert info.first_ts_ms == min(e[1] for e in events)
                assert info.last_ts_ms == max(e[1] for e in events)

    @invariant()
    def versions_never_change(self) -> None:
        for v, saved in self.taken:
            assert _same(v, saved)


StoreMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=25, deadline=None)
TestStoreModel = StoreMachine.TestCase

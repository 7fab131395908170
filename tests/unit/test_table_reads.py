"""Reads that never compact (parts, rows_of, split) against a compacted version, and the
store's compactor thread."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.columns import Kind
from core.dictionary import StringDictionary
from core.event_model import Leaf, flatten
from core.store import EventStore
from core.tables import Table
from core.versions import TableVersion, concat_versions, sort_rows
from tests.unit.test_tables import (
    _as_rows as _rows,  # each row with its entries, any numbering
)


def _fill(table: Table, d: StringDictionary, rng: random.Random, n: int, arrival0: int) -> None:
    for i in range(n):
        doc: dict = {"n": rng.randrange(4)}
        if rng.random() < 0.4:
            doc["items"] = [{"id": rng.choice("abc"), "q": rng.randrange(3)} for _ in range(rng.randrange(1, 3))]
        if rng.random() < 0.3:
            doc["s"] = rng.choice(["x", "y"])
        table.append(rng.randrange(12), rng.randrange(8), arrival0 + i, flatten(doc), d)


def _reference(table: Table) -> TableVersion:
    """Every row, sorted, built without touching the table's base (concatenate and sort)."""
    base, tail = table.parts()
    return sort_rows(concat_versions([base, tail], 0))


class TestTableReads:
    @settings(max_examples=40, deadline=None)
    @given(seed=st.integers(0, 10**6), before=st.integers(0, 40), after=st.integers(0, 40),
           ids=st.lists(st.integers(0, 13), max_size=6))
    def test_parts_rows_of_and_split_match_compaction(self, seed: int, before: int, after: int, ids: list[int]) -> None:
        rng = random.Random(seed)
        table, d = Table(), StringDictionary()
        _fill(table, d, rng, before, 0)
        table.compact()
        _fill(table, d, rng, after, before)
        base, tail = table.parts()
        assert base.is_sorted and len(base) == before and len(tail) == after
        assert table.parts()[1] is tail  # cached until the next write
        whole = _reference(table)
        rows = _rows(whole)
        # rows_of: exactly the rows of those contacts, sorted
        got = table.rows_of(np.array(ids, dtype=np.uint32))
        assert got.is_sorted
        assert _rows(got) == [r for r in rows if r[0] in set(ids)]
        # split: base minus held contacts, plus fresh = every row once
        split = table.split()
        held = set(split.held.tolist())
        assert held == set(tail.contact.tolist())
        kept = [r for r in _rows(split.base) if r[0] not in held]
        assert sorted(kept + _rows(split.fresh)) == rows
        assert split.fresh.is_sorted and set(split.fresh.contact.tolist()) <= held
        # none of the reads compacted; compaction then gives the same rows
        assert table.parts()[0] is base
        assert _rows(table.version(sorted=True)) == rows

    @settings(max_examples=40, deadline=None)
    @given(seed=st.integers(0, 10**6), before=st.integers(0, 30), after=st.integers(0, 30),
           ids=st.lists(st.integers(0, 13), max_size=6),
           paths=st.frozensets(st.sampled_from(["n", "items", "items.id", "items.q", "s", "it", "nope"]), max_size=3))
    def test_rows_of_with_paths_holds_just_the_columns_at_or_under_them(
        self, seed: int, before: int, after: int, ids: list[int], paths: frozenset[str]
    ) -> None:
        rng = random.Random(seed)
        table, d = Table(), StringDictionary()
        _fill(table, d, rng, before, 0)
        table.compact()
        _fill(table, d, rng, after, before)
        wanted = np.array(ids, dtype=np.uint32)
        whole, some = table.rows_of(wanted), table.rows_of(wanted, paths)
        assert some.is_sorted
        for name in ("contact", "ts_ms", "arrival"):  # the same rows
            assert getattr(some, name).tolist() == getattr(whole, name).tolist()
        kept = {key for key in whole.columns if key[0] in paths or any(key[0].startswith(p + ".") for p in paths)}
        assert set(some.columns) == kept  # "it" is no parent of "items.id"
        for key in kept:
            a, b = whole.columns[key], some.columns[key]
            assert a.row.tolist() == b.row.tolist()
            assert key[1] == Kind.NODE or a.values.tolist() == b.values.tolist()
            assert {p: x.tolist() for p, x in a.items.items()} == {p: x.tolist() for p, x in b.items.items()}

    def test_tail_version_reads_are_views_that_never_change(self) -> None:
        table, d = Table(), StringDictionary()
        table.append(3, 1, 0, [Leaf("a", 1.0, ())], d)
        _, tail = table.parts()
        snapshot = _rows(tail)
        for i in range(1, 3000):
            table.append(i % 7, i, i, [Leaf("a", float(i), ()), Leaf("b", "x", ())], d)
        assert _rows(tail) == snapshot
        with pytest.raises(ValueError):
            tail.contact[0] = 9

    def test_reads_race_appends_and_compactions(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(Table, "compact_min_rows", 64)
        table, d = Table(), StringDictionary()
        n = 3000
        stop = threading.Event()
        errors: list[str] = []

        def reader() -> None:
            while not stop.is_set():
                base, tail = table.parts()
                arrivals = np.concatenate([base.arrival, tail.arrival])
                if not np.array_equal(np.sort(arrivals), np.arange(arrivals.shape[0])):
                    errors.append("parts lost or repeated rows")
                split = table.split()
                kept = ~np.isin(split.base.contact, split.held)
                total = int(kept.sum()) + len(split.fresh)
                if total != arrivals.shape[0] and total < arrivals.shape[0]:
                    errors.append("split lost rows")
                got = table.rows_of(np.array([1, 5], dtype=np.uint32))
                if not got.is_sorted or not set(got.contact.tolist()) <= {1, 5}:
                    errors.append("rows_of")
                col = got.columns.get(("i", Kind.NUM))
                if col is not None and not np.array_equal(col.values, got.arrival[col.row].astype(float)):
                    errors.append("entries left their rows")

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for th in threads:
            th.start()
        for i in range(n):
            table.append((i * 7919) % 11, i % 13, i, [Leaf("i", float(i), ())], d)
        stop.set()
        for th in threads:
            th.join()
        assert not errors, errors[:3]
        got = table.rows_of(np.arange(11, dtype=np.uint32))
        assert sorted(got.arrival.tolist()) == list(range(n))
        assert _rows(got) == _rows(table.version(sorted=True))


class TestStoreReads:
    def test_compactor_merges_off_the_writer_thread(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(Table, "compact_min_rows", 32)
        store = EventStore(shard_bits=4)
        merged_in: list[str] = []
        original = Table.compact_due

        def spy(self: Table) -> None:
            merged_in.append(threading.current_thread().name)
            original(self)

        monkeypatch.setattr(Table, "compact_due", spy)
        for i in range(500):
            store.append("view", i % 40, i, [Leaf("i", float(i), ())])
        store.compactor.wait()
        assert merged_in and set(merged_in) == {"compactor"}
        tables = [store.table("view", s) for s in range(3)]
        assert all(t is not None and t.tail_rows <= 40 for t in tables)
        store.compact_all()
        assert all(t is not None and t.tail_rows == 0 for t in tables)
        assert sorted(int(a) for v in store.shards("view") for a in v.arrival) == list(range(500))
        store.close()
        assert not store.compactor.running
        for i in range(500, 600):  # after close, due tails merge inline
            store.append("view", i % 40, i, [])
        assert sum(len(t) for t in tables if t is not None) == 600

    def test_rows_of_and_splits_span_shards(self) -> None:
        store = EventStore(shard_bits=3)
        rng = random.Random(5)
        for i in range(200):
            store.append("buy", rng.randrange(30), rng.randrange(50), [Leaf("p", float(i), ())])
            if i == 120:
                store.compact_all()
        store.append("buy", 9, 1, [Leaf("p", -1.0, ())])
        bases = [b for b, _ in store.parts("buy")]
        whole = sorted(r for b, t in store.parts("buy") for r in _rows(sort_rows(concat_versions([b, t], 0))))
        ids = [2, 9, 17, 29, 31]
        got = store.rows_of("buy", ids)
        assert all(v.is_sorted for v in got)
        assert [int(v.contact[0]) >> 3 for v in got] == sorted({i >> 3 for i in ids if i < 30})
        assert sorted(r for v in got for r in _rows(v)) == [r for r in whole if r[0] in ids]
        pieces = []
        for split in store.splits("buy"):
            held = set(split.held.tolist())
            pieces += [r for r in _rows(split.base) if r[0] not in held] + _rows(split.fresh)
        assert sorted(pieces) == whole
        assert all(b is old for (b, _), old in zip(store.parts("buy"), bases))  # nothing was merged
        version, lo, hi = store.contact_rows("buy", 9)
        assert _rows(version)[lo:hi] == [r for r in whole if r[0] == 9]
        assert store.rows_of("nope", [1]) == [] and store.splits("nope") == []

    def test_rows_of_answers_follow_writes(self) -> None:
        store = EventStore(shard_bits=3)
        store.append("buy", 9, 5, [])
        first = store.rows_of("buy", [9, 9])
        assert store.rows_of("buy", [9])[0] is first[0]  # kept while the table is unchanged
        store.append("buy", 9, 1, [])
        assert [v.ts_ms.tolist() for v in store.rows_of("buy", [9])] == [[1, 5]]
        store.compact_all()
        store.append("buy", 10, 0, [])
        assert [v.ts_ms.tolist() for v in store.rows_of("buy", [9])] == [[1, 5]]
        store.erase_contact(9)
        assert store.rows_of("buy", [9]) == []

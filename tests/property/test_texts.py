"""The string table against a plain model (a dict and a list), and readers racing its writer."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core import texts
from core.kernels import KernelArgumentError
from core.kernels.texts import add_many, find_many
from core.texts import TextTable, check_texts, encoded

words = st.text(max_size=8) | st.sampled_from(["", "a", "ab", "é", "\ud800", "User1@Example.com"])


class TableModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = TextTable()
        self.by_id: list[str | None] = []
        self.ids: dict[str, int] = {}

    @rule(batch=st.lists(words, max_size=12))
    def add(self, batch: list[str]) -> None:
        got = self.table.add_many(batch).tolist()
        want = []
        for s in batch:
            if s not in self.ids:
                self.ids[s] = len(self.by_id)
                self.by_id.append(s)
            want.append(self.ids[s])
        assert got == want

    @rule(batch=st.lists(words, max_size=8))
    def add_new(self, batch: list[str]) -> None:
        for s in batch:
            if s in self.ids:
                continue
            assert self.table.add_new(s) == len(self.by_id)
            self.ids[s] = len(self.by_id)
            self.by_id.append(s)

    @rule()
    def flush(self) -> None:
        self.table._flush()

    @rule(picks=st.lists(st.integers(0, 200), max_size=6))
    def remove(self, picks: list[int]) -> None:
        if not self.by_id:
            return
        ids = [p % len(self.by_id) for p in picks]
        self.table.remove_many(np.array(ids, dtype=np.int64))
        for i in ids:
            s = self.by_id[i]
            if s is not None:
                del self.ids[s]
                self.by_id[i] = None

    @rule()
    def pack(self) -> None:
        self.table._pack()

    @rule()
    def restore(self) -> None:
        self.table = TextTable.from_arrays(len(self.table), *self.table.to_arrays())

    @rule(probes=st.lists(words, max_size=6))
    def find(self, probes: list[str]) -> None:
        assert self.table.find_many(probes).tolist() == [self.ids.get(s, -1) for s in probes]
        assert [self.table.find(s) for s in probes] == [self.ids.get(s) for s in probes]

    @invariant()
    def same_strings(self) -> None:
        assert len(self.table) == len(self.by_id)
        assert self.table.live_count == len(self.ids)
        assert [self.table.get(i) for i in range(len(self.by_id))] == self.by_id
        assert self.table.strings(np.arange(len(self.by_id))) == self.by_id
        assert self.table.alive().tolist() == [s is not None for s in self.by_id]


TestTableModel = TableModel.TestCase


def test_removed_bytes_are_packed_away_and_the_table_stays_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(texts, "PACK_MIN_BYTES", 64)
    table = TextTable()
    strs = [f"string-{i:05d}" for i in range(3000)]
    table.add_many(strs)
    used_before = table._used
    table.remove_many(np.arange(0, 3000, 3))
    table.remove_many(np.arange(1, 3000, 3))
    assert table._used < used_before // 2  # packed: only the live third's bytes remain
    assert table.find_many(strs).tolist() == [i if i % 3 == 2 else -1 for i in range(3000)]
    assert table.add_many(["string-00000", "string-00002"]).tolist() == [3000, 2]


def test_encoded_cuts_ascii_and_other_text_alike() -> None:
    for strs in (["ab", "", "c"], ["é", "", "x\ud800"]):
        data, offsets = encoded(strs)
        cut = [bytes(data[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
        assert cut == [s.encode("utf-8", "surrogatepass") for s in strs]


def test_add_new_of_a_held_string_is_refused_when_it_moves_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(texts, "PENDING_MAX", 2)
    table = TextTable()
    table.add_many(["a"])
    assert table.add_new("b") == 1 and table.find("b") == 1 and len(table) == 2 and table.get(1) == "b"
    with pytest.raises(RuntimeError, match="held"):
        table.add_new("a")


def test_kernel_wrappers_refuse_offsets_that_do_not_cut_the_bytes() -> None:
    arrays = TextTable()._arrays
    with pytest.raises(KernelArgumentError, match="offsets"):
        find_many(*arrays, np.zeros(3, np.uint8), np.array([0, 2], np.int64))
    with pytest.raises(KernelArgumentError, match="offsets"):
        add_many(*arrays, 0, 0, np.zeros(3, np.uint8), np.array([0, 3, 2, 3], np.int64))


@given(st.lists(words, max_size=30))
def test_restore_checks_and_keeps_every_string(strs: list[str]) -> None:
    table = TextTable()
    table.add_many(strs)
    ids, offsets, data = table.to_arrays()
    back = TextTable.from_arrays(len(table), ids, offsets, data)
    assert back.find_many(strs).tolist() == table.find_many(strs).tolist()
    if ids.shape[0]:
        with pytest.raises(ValueError):
            TextTable.from_arrays(len(table), ids[::-1].copy() if ids.shape[0] > 1 else ids + len(table), offsets, data)
    with pytest.raises(ValueError):
        TextTable.from_arrays(len(table), ids, offsets, np.concatenate([data, np.zeros(1, np.uint8)]))


def test_readers_racing_the_writer_never_see_a_wrong_string() -> None:
    """Four threads look strings up and decode ids while the writer adds, removes and packs."""
    table = TextTable()
    strs = [f"w{i}" for i in range(60_000)]
    table.add_many(strs[:1000])
    removed: set[int] = set()
    stop = threading.Event()
    wrong: list[str] = []

    def read(offset: int) -> None:
        try:
            while not stop.is_set():
                for i in range(offset, 60_000, 389):
                    found = table.find(strs[i])
                    if found is not None and found != i:
                        wrong.append(f"find {strs[i]} -> {found}")
                    s = table.get(i) if i < len(table) else None
                    if s is not None and s != strs[i]:
                        wrong.append(f"get {i} -> {s}")
        except Exception as exc:  # an index past an array the reader holds, say
            wrong.append(repr(exc))

    readers = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in readers:
        t.start()
    try:
        for start in range(1000, 60_000, 500):
            if start % 1000:
                table.add_many(strs[start : start + 500])
            else:  # known new: taken without a probe, moved into the arrays in batches
                for s in strs[start : start + 500]:
                    table.add_new(s)
            gone = np.arange(start - 1000, start - 500, 2)
            table.remove_many(gone)
            removed.update(gone.tolist())
            if start % 10_000 == 0:
                table._pack()
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not wrong
    assert [table.find(strs[i]) is None for i in range(0, 60_000, 97)] == [i in removed for i in range(0, 60_000, 97)]


def _cut(strs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    data, offsets = encoded(strs)
    return offsets, data


def test_check_texts_accepts_what_packed_writes_and_refuses_each_flaw() -> None:
    table = TextTable()
    table.add_many(["a", "bé", "\ud800x", "C-17"])
    offsets, data = table.packed(np.array([3, 1, 0, 2]))
    assert check_texts(offsets, data, "v")[0].tolist() == offsets.tolist()
    assert check_texts(*_cut(["", "x"]), "v", empty=True)[0].tolist() == [0, 0, 1]
    raw = "éa".encode()
    flaws = {
        "empty string": _cut(["", "x"]),
        "cut the bytes": (np.array([0, 1, 5]), np.frombuffer(b"abc", np.uint8)),
        "UTF-8": (np.array([0, 2]), np.frombuffer(b"\xff\xfe", np.uint8)),
        "inside a character": (np.array([0, 1, 3]), np.frombuffer(raw, np.uint8)),
        "twice": _cut(["ab", "c", "ab"]),
    }
    for reason, (bad_offsets, bad_data) in flaws.items():
        with pytest.raises(ValueError, match=reason):
            check_texts(bad_offsets, bad_data, "v")


def test_check_texts_tells_colliding_hashes_from_equal_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(texts.kt, "hash_all", lambda data, offsets: np.zeros(offsets.shape[0] - 1, np.uint64))
    check_texts(*_cut(["a", "b", "c"]), "v")  # every hash equal, every string different
    with pytest.raises(ValueError, match="twice"):
        check_texts(*_cut(["a", "b", "a"]), "v")

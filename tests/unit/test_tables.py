"""Tables: tail appends, immutable versions, compaction (also under concurrent appends), row blocks."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.columns import ITEM_DTYPE, NO_ITEM, VALUE_DTYPES, Kind, kind_of
from core.dictionary import StringDictionary
from core.errors import FailedPrecondition, InvalidArgument
from core.event_model import Leaf, flatten
from core.tables import Table
from core.versions import (
    TableVersion,
    concat_versions,
    filter_rows,
    make_version,
    merge_sorted,
    slice_rows,
    sort_rows,
    take_rows,
)


def leaf(path: str, value: object, *items: tuple[str, int]) -> Leaf:
    return Leaf(path, value, tuple(items))  # type: ignore[arg-type]


def rows_of(v: TableVersion) -> list[tuple[int, int, int]]:
    return list(zip(v.contact.tolist(), v.ts_ms.tolist(), v.arrival.tolist()))


def entries(v: TableVersion, path: str, kind: Kind) -> list[tuple[int, object]]:
    """(contact, value) per entry of a column, following each entry's row."""
    col = v.columns[(path, kind)]
    vals = col.values.tolist() if kind != Kind.NODE else [None] * len(col)
    return [(int(v.contact[r]), x) for r, x in zip(col.row.tolist(), vals)]


@pytest.fixture
def small_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Table, "compact_min_rows", 10**9)


class TestAppendAndVersions:
    def test_tail_rows_keep_arrival_order(self, small_tail: None) -> None:
        t, d = Table(), StringDictionary()
        for arrival, (c, ts) in enumerate([(5, 10), (1, 30), (5, 5)]):
            t.append(c, ts, arrival, [leaf("n", arrival)], d)
        v = t.version()
        assert v.sorted_rows == 0 and not v.is_sorted
        assert rows_of(v) == [(5, 10, 0), (1, 30, 1), (5, 5, 2)]
        assert v.columns[("n", Kind.NUM)].row.tolist() == [0, 1, 2]

    def test_one_column_per_path_and_kind(self) -> None:
        t, d = Table(), StringDictionary()
        t.append(1, 0, 0, [leaf("x", 3)], d)
        t.append(1, 1, 1, [leaf("x", "3")], d)
        t.append(1, 2, 2, [leaf("x", True)], d)
        t.append(1, 3, 3, [leaf("x", 2**53)], d)
        v = t.version(sorted=True)
        assert set(v.columns) == {("x", Kind.NUM), ("x", Kind.STR), ("x", Kind.BOOL)}
        num = v.columns[("x", Kind.NUM)]
        assert num.values.dtype == np.float64 and num.values.tolist() == [3.0, float(2**53)]
        assert int(num.values[1]) == 2**53  # exact
        assert v.columns[("x", Kind.BOOL)].values.dtype == np.int8
        assert d.decode(int(v.columns[("x", Kind.STR)].values[0])) == "3"

    def test_array_paths_have_entries_with_items(self) -> None:
        t, d = Table(), StringDictionary()
        t.append(1, 0, 0, flatten({"products": [{"id": "a", "p": 1}, {"id": "b"}], "tags": ["x", "y"]}), d)
        v = t.version()
        ids = v.columns[("products.id", Kind.STR)]
        assert ids.row.tolist() == [0, 0]
        assert [d.decode(c) for c in ids.values.tolist()] == ["a", "b"]
        assert ids.items["products"].tolist() == [0, 1]
        nodes = v.columns[("products", Kind.NODE)]
        assert len(nodes) == 2 and nodes.values.shape == (0,)
        assert v.columns[("tags", Kind.STR)].items["tags"].tolist() == [0, 1]

    def test_prefix_seen_late_is_filled_with_no_item(self) -> None:
        t, d = Table(), StringDictionary()
        t.append(1, 0, 0, flatten({"p": {"q": 1}}), d)
        t.append(1, 1, 1, flatten({"p": [{"q": 2}, {"q": 3}]}), d)
        t.append(1, 2, 2, flatten({"p": {"q": 4}}), d)
        for v in (t.version(), t.version(sorted=True)):
            col = v.columns[("p.q", Kind.NUM)]
            assert col.values.tolist() == [1.0, 2.0, 3.0, 4.0]
            assert col.items["p"].tolist() == [NO_ITEM, 0, 1, NO_ITEM]

    def test_version_is_cached_until_next_write(self) -> None:
        t, d = Table(), StringDictionary()
        t.append(1, 0, 0, [leaf("a", 1)], d)
        v1 = t.version()
        assert t.version() is v1
        t.append(2, 0, 1, [leaf("a", 1)], d)
        assert t.version() is not v1
        s = t.version(sorted=True)
        assert t.version(sorted=True) is s and t.version() is s

    def test_version_never_changes_after_later_writes(self, small_tail: None) -> None:
        t, d = Table(), StringDictionary()
        for i in range(20):
            t.append(20 - i, i, i, [leaf("v", i), leaf("s", f"s{i}")], d)
        early = t.version()
        snapshot = (rows_of(early), early.columns[("v", Kind.NUM)].values.tolist())
        sorted_early = t.version(sorted=True)
        sorted_snapshot = rows_of(sorted_early)
        for i in range(20, 200):
            t.append(i % 7, i, i, [leaf("v", i), leaf("w", True)], d)
            if i % 50 == 0:
                t.compact()
        t.compact()
        assert (rows_of(early), early.columns[("v", Kind.NUM)].values.tolist()) == snapshot
        assert rows_of(sorted_early) == sorted_snapshot
        assert ("w", Kind.BOOL) not in early.columns
        with pytest.raises(ValueError):
            early.ts_ms[0] = 0

    def test_bad_number_stores_nothing(self) -> None:
        t, d = Table(), StringDictionary()
        with pytest.raises(InvalidArgument):
            t.append(1, 0, 0, [leaf("s", "kept?"), leaf("n", 10**400)], d)
        assert len(t) == 0 and d.lookup("kept?") is None


class TestCompaction:
    def test_sorted_by_contact_ts_then_arrival(self) -> None:
        t, d = Table(), StringDictionary()
        spec = [(3, 5), (1, 9), (3, 1), (1, 9), (2, 0), (3, 5)]
        for arrival, (c, ts) in enumerate(spec):
            t.append(c, ts, arrival, [leaf("i", arrival)], d)
        v = t.version(sorted=True)
        assert v.is_sorted
        expected = sorted((c, ts, a) for a, (c, ts) in enumerate(spec))
        assert rows_of(v) == expected
        # every entry followed its row
        assert v.columns[("i", Kind.NUM)].values.tolist() == [float(a) for _, _, a in expected]
        assert v.contact_range(3) == (3, 6)
        assert v.contact_range(4) == (6, 6)
        assert v.contact_range(2**40) == (0, 0)

    def test_tail_merges_into_base_on_repeated_compaction(self, small_tail: None) -> None:
        rng = random.Random(7)
        t, d = Table(), StringDictionary()
        expected = []
        for arrival in range(300):
            c, ts = rng.randrange(20), rng.randrange(30)
            ls = [leaf("k", rng.choice(["a", "b"]))] if arrival % 3 else [leaf("l", arrival, ("l", 0)), leaf("l", -arrival, ("l", 1))]
            t.append(c, ts, arrival, ls, d)
            expected.append((c, ts, arrival))
            if arrival % 37 == 0:
                t.compact()
        v = t.version(sorted=True)
        assert rows_of(v) == sorted(expected)
        col = v.columns[("l", Kind.NUM)]
        arrivals = v.arrival[col.row]
        assert np.array_equal(np.abs(col.values), arrivals.astype(float))
        assert np.all(np.diff(col.row) >= 0)
        assert col.items["l"].tolist() == [0, 1] * (len(col) // 2)

    def test_long_tail_compacts_on_append(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(Table, "compact_min_rows", 8)
        t, d = Table(), StringDictionary()
        for i in range(50):
            t.append(50 - i, 0, i, [], d)
        v = t.version()
        assert v.sorted_rows >= 40
        assert len(v) - v.sorted_rows <= max(8, 0.25 * v.sorted_rows)

    def test_contact_range_needs_a_sorted_version(self, small_tail: None) -> None:
        t, d = Table(), StringDictionary()
        t.append(1, 0, 0, [], d)
        with pytest.raises(FailedPrecondition):
            t.version().contact_range(1)

    def test_compaction_races_appends_without_losing_rows(self, small_tail: None) -> None:
        t, d = Table(), StringDictionary()
        n = 4000
        stop = threading.Event()
        seen_sorted: list[bool] = []

        def reader() -> None:
            while not stop.is_set():
                v = t.version(sorted=True)
                seen_sorted.append(bool(np.all(np.diff(v.contact.astype(np.int64)) >= 0)))

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for th in threads:
            th.start()
        for i in range(n):
            t.append((i * 7919) % 101, i % 13, i, [leaf("i", i)], d)
        stop.set()
        for th in threads:
            th.join()
        v = t.version(sorted=True)
        assert sorted(v.arrival.tolist()) == list(range(n))
        assert rows_of(v) == sorted(rows_of(v))
        assert np.array_equal(v.columns[("i", Kind.NUM)].values, v.arrival.astype(float))
        assert seen_sorted and all(seen_sorted)

    def test_rebuild_is_copy_on_write(self) -> None:
        t, d = Table(), StringDictionary()
        for i in range(10):
            t.append(i % 3, i, i, [leaf("i", i)], d)
        old = t.version(sorted=True)
        before, after = t.rebuild(lambda full: filter_rows(full, full.contact != 1))
        assert before is old and len(old) == 10
        assert 1 not in after.contact.tolist() and len(after) == 7
        assert t.version() is after


def _random_version(rng: random.Random, n: int, arrival0: int, ts_span: int = 20) -> TableVersion:
    t, d = Table(), StringDictionary()
    for i in range(n):
        ls = [leaf("a", rng.randrange(5))] if rng.random() < 0.7 else []
        if rng.random() < 0.5:
            ls += [leaf("b", "x", ("b", 0)), leaf("b", "y", ("b", 1))]
        t.append(rng.randrange(6), rng.randrange(ts_span) - ts_span // 2, arrival0 + i, ls, d)
    return t.version(sorted=True)


def _as_rows(v: TableVersion) -> list[tuple]:
    """Each row with its entries, for comparing versions whatever the row numbering."""
    per_row: list[list] = [[] for _ in range(len(v))]
    for key, col in sorted(v.columns.items()):
        for e, r in enumerate(col.row.tolist()):
            value = col.values[e].item() if key[1] != Kind.NODE else None
            per_row[r].append((key, value, tuple((p, int(a[e])) for p, a in sorted(col.items.items()))))
    return [(c, t, a, tuple(es)) for c, t, a, es in zip(v.contact.tolist(), v.ts_ms.tolist(), v.arrival.tolist(), per_row)]


class TestRowBlocks:
    @pytest.mark.parametrize("seed", range(6))
    def test_merge_equals_sorting_the_concatenation(self, seed: int) -> None:
        rng = random.Random(seed)
        a = _random_version(rng, rng.randrange(0, 40), 0)
        b = _random_version(rng, rng.randrange(0, 40), 1000)
        merged = merge_sorted(a, b)
        reference = sort_rows(concat_versions([a, b], 0))
        assert merged.is_sorted
        assert _as_rows(merged) == _as_rows(reference)

    def test_merge_falls_back_when_keys_do_not_pack(self) -> None:
        rng = random.Random(1)
        a = _random_version(rng, 30, 0)
        far = _random_version(rng, 30, 1000)
        far = concat_versions([far], len(far))
        far = type(far)(far.contact, far.ts_ms * (2**58), far.arrival, len(far), far.columns)
        merged = merge_sorted(a, sort_rows(far))
        assert _as_rows(merged) == _as_rows(sort_rows(concat_versions([a, far], 0)))

    def test_slice_take_filter(self) -> None:
        v = _random_version(random.Random(3), 30, 0)
        whole = _as_rows(v)
        assert _as_rows(slice_rows(v, 5, 12)) == whole[5:12]
        assert _as_rows(concat_versions([slice_rows(v, 0, 9), slice_rows(v, 9, 30)], 30)) == whole
        order = list(range(29, -1, -2))
        assert _as_rows(take_rows(v, np.array(order), 0)) == [whole[i] for i in order]
        keep = v.ts_ms > 0
        assert _as_rows(filter_rows(v, keep)) == [r for r, k in zip(whole, keep.tolist()) if k]
        empty = filter_rows(v, np.zeros(len(v), dtype=bool))
        assert len(empty) == 0 and not empty.columns


def test_dense_columns_share_one_row_array() -> None:
    t, d = Table(), StringDictionary()
    for i in range(50):
        t.append(i % 4, i, i, [leaf("a", i), leaf("b", "x"), leaf("c", True)] if i % 2 else [leaf("a", i), leaf("b", "y")], d)
    v = t.version(sorted=True)
    a, b, c = (v.columns[k] for k in [("a", Kind.NUM), ("b", Kind.STR), ("c", Kind.BOOL)])
    assert a.row is b.row and a.row.tolist() == list(range(50))
    assert c.row is not a.row and len(c) == 25
    unshared = sum(x.nbytes for x in (v.contact, v.ts_ms, v.arrival_offset)) + sum(col.nbytes for col in v.columns.values())
    assert v.nbytes == unshared - a.row.nbytes


def test_columns_of_one_array_share_rows_and_items() -> None:
    """Every element of `products` has an id and a price: their columns (and the elements' own
    object column) hold one row array and one items array between them; `tags` does not."""
    t, d = Table(), StringDictionary()
    for i in range(40):
        products = [{"id": f"p{j}", "price": float(j)} for j in range(i % 3 + 1)]
        t.append(i % 5, i, i, flatten({"products": products, "tags": ["a", "b"][: i % 2 + 1]}), d)
    v = t.version(sorted=True)
    ids, price, node = (v.columns[k] for k in [("products.id", Kind.STR), ("products.price", Kind.NUM),
                                                ("products", Kind.NODE)])
    assert ids.row is price.row is node.row
    assert ids.items["products"] is price.items["products"] is node.items["products"]
    tags = v.columns[("tags", Kind.STR)]
    assert tags.row is not ids.row and tags.row.tolist() != ids.row.tolist()
    # the values still belong to their own rows
    assert sorted(zip(price.row.tolist(), price.values.tolist())) == sorted(
        (r, float(j)) for r in range(40) for j in range(int(v.ts_ms[r]) % 3 + 1))
    unshared = sum(x.nbytes for x in (v.contact, v.ts_ms, v.arrival_offset)) + sum(col.nbytes for col in v.columns.values())
    assert v.nbytes == unshared - 2 * (ids.row.nbytes + ids.items["products"].nbytes)


# ----------------------------------------------------------------- columnar appends

_scalars = st.one_of(
    st.integers(-3, 3), st.sampled_from([0.5, -1.25, 2.0]), st.sampled_from(["x", "y", "zz"]), st.booleans(), st.none()
)
_docs = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.recursive(
        _scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["p", "q"]), inner, max_size=2),
        max_leaves=6,
    ),
    max_size=3,
)
_events = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9), _docs), max_size=12)


def _columns(leaves_per_row: list[list[Leaf]], d: StringDictionary) -> list[tuple]:
    """The (key, rows, values, items) columns of these rows, as a columnar loader builds them."""
    cols: dict[tuple[str, Kind], tuple[list[int], list[object], list[dict[str, int]]]] = {}
    for r, leaves in enumerate(leaves_per_row):
        for lf in leaves:
            kind = kind_of(lf.value)
            value: object = lf.value
            if kind == Kind.STR:
                value = d.acquire(lf.value)  # type: ignore[arg-type]
            elif kind == Kind.BOOL:
                value = int(lf.value)  # type: ignore[arg-type]
            rows, values, items = cols.setdefault((lf.path, kind), ([], [], []))
            rows.append(r)
            values.append(value)
            items.append(dict(lf.items))
    out = []
    for key, (rows, values, items) in cols.items():
        prefixes = dict.fromkeys(p for it in items for p in it)
        ordinals = {p: np.array([it.get(p, NO_ITEM) for it in items], dtype=ITEM_DTYPE) for p in prefixes}
        if len(out) % 3 == 1:
            ordinals["none"] = np.full(len(items), NO_ITEM, dtype=ITEM_DTYPE)  # crosses no array anywhere
        vals = np.array(values if key[1] != Kind.NODE else [], dtype=VALUE_DTYPES[key[1]])
        arrays = (key, np.array(rows, dtype=np.int32), vals)
        out.append((*arrays, ordinals) if ordinals or len(out) % 2 else arrays)  # both tuple forms
    return out


def _same_version(a: TableVersion, b: TableVersion) -> None:
    assert rows_of(a) == rows_of(b) and a.sorted_rows == b.sorted_rows
    assert set(a.columns) == set(b.columns)
    for key, ca in a.columns.items():
        cb = b.columns[key]
        assert ca.row.tolist() == cb.row.tolist()
        assert ca.values.tolist() == cb.values.tolist()
        assert {p: x.tolist() for p, x in ca.items.items()} == {p: x.tolist() for p, x in cb.items.items()}


class TestAppendArrays:
    @settings(max_examples=60, deadline=None)
    @given(events=_events, cuts=st.lists(st.integers(0, 12), max_size=3), compact_at=st.sampled_from([None, 0, 1]))
    def test_equals_appending_one_by_one(self, events: list, cuts: list[int], compact_at: int | None) -> None:
        one, d1 = Table(), StringDictionary()
        many, d2 = Table(), StringDictionary()
        for arrival, (c, ts, doc) in enumerate(events):
            one.append(c, ts, arrival, flatten(doc), d1)
        bounds = sorted({0, len(events), *(min(x, len(events)) for x in cuts)})
        for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            part = events[lo:hi]
            many.append_arrays(
                np.array([c for c, _, _ in part], dtype=np.uint32),
                np.array([ts for _, ts, _ in part], dtype=np.int64),
                np.arange(lo, hi, dtype=np.int64),
                _columns([flatten(doc) for _, _, doc in part], d2),
            )
            if compact_at == i:
                many.compact()
        if compact_at is not None and compact_at < len(bounds) - 1:
            one.compact()
            many.compact()
        _same_version(one.version(), many.version())
        assert one.stats() == many.stats()
        _same_version(one.version(sorted=True), many.version(sorted=True))
        assert one.stats() == many.stats()

    def test_repeated_rows_count_once(self) -> None:
        t = Table()
        rows = np.array([0, 0, 0, 2, 2], dtype=np.int32)
        t.append_arrays(
            np.array([1, 2, 3], dtype=np.uint32), np.zeros(3, np.int64), np.arange(3, dtype=np.int64),
            [(("tags", Kind.NUM), rows, np.array([1.0, 2.0, 1.0, 3.0, 4.0]),
              {"tags": np.array([0, 1, 2, 0, 1], dtype=np.int32)})],
        )
        stats = t.stats()[("tags", Kind.NUM)]
        assert stats.count == 2 and stats.examples == [1.0, 2.0, 3.0, 4.0]
        col = t.version(sorted=True).columns[("tags", Kind.NUM)]
        assert col.row.tolist() == rows.tolist() and col.items["tags"].tolist() == [0, 1, 2, 0, 1]


def test_arrivals_are_held_as_offsets_when_they_span_less_than_four_bytes() -> None:
    near = np.array([2**40 + 5, 2**40, 2**40 + 2**32 - 1], dtype=np.int64)
    far = np.array([7, 2**32 + 7, 3], dtype=np.int64)
    for arrival, dtype in ((near, np.uint32), (far, np.int64)):
        v = make_version(np.zeros(3, np.uint32), np.arange(3), arrival, 0, {})
        assert v.arrival_offset.dtype == dtype
        assert v.arrival.dtype == np.int64 and v.arrival.tolist() == arrival.tolist()
        assert [v.arrivals(i) for i in range(3)] == arrival.tolist() and v.arrival_max() == int(arrival.max())
        assert v.arrivals(np.array([2, 0])).tolist() == [int(arrival[2]), int(arrival[0])]
    assert make_version(np.zeros(0, np.uint32), np.zeros(0), np.zeros(0), 0, {}).arrival.shape == (0,)

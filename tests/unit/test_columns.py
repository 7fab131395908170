"""Growable buffers, the string dictionary (codes, numeric view, references, state) and path columns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.columns import NO_ITEM, GrowableArray, Kind, empty_column, kind_of, make_column
from core.dictionary import StringDictionary


class TestGrowableArray:
    def test_append_extend_fill_keep_order(self) -> None:
        g = GrowableArray(np.int64, capacity=1)
        for i in range(5):
            g.append(i)
        g.extend(np.arange(5, 9))
        g.extend([])
        g.fill(-1, 3)
        g.fill(7, 0)
        assert len(g) == 12
        assert g.view().tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1]

    def test_capacity_doubles(self) -> None:
        g = GrowableArray(np.int32, capacity=4)
        capacities = set()
        for i in range(1000):
            g.append(i)
            capacities.add(g.nbytes // 4)
        # doubling: a logarithmic number of distinct buffer sizes, never more than 2x the length
        assert len(capacities) <= 10
        assert g.nbytes // 4 < 2 * 1000 + 4

    def test_views_are_read_only(self) -> None:
        g = GrowableArray(np.float64)
        g.extend([1.0, 2.0])
        v = g.view()
        with pytest.raises(ValueError):
            v[0] = 5.0

    def test_old_views_survive_growth_and_appends(self) -> None:
        g = GrowableArray(np.int64, capacity=2)
        g.extend([10, 20])
        before = g.view()
        partial = g.view(1)
        for i in range(100):
            g.append(i)
        assert before.tolist() == [10, 20]
        assert partial.tolist() == [10]
        assert g.view(2).tolist() == [10, 20]

    def test_view_within_bounds_only(self) -> None:
        g = GrowableArray(np.int64)
        g.append(1)
        with pytest.raises(IndexError):
            g.view(2)

    def test_of_and_copy_are_independent(self) -> None:
        src = np.array([1, 2, 3], dtype=np.int32)
        g = GrowableArray.of(src)
        src[0] = 99
        assert g.view().tolist() == [1, 2, 3]
        c = g.copy(1)
        c[0] = 0
        assert g.view().tolist() == [1, 2, 3]
        assert g.dtype == np.int32


class TestStringDictionary:
    def test_codes_are_dense_and_stable(self) -> None:
        d = StringDictionary()
        assert [d.encode(s) for s in ["a", "b", "a", "c"]] == [0, 1, 0, 2]
        assert len(d) == 3
        assert d.decode(1) == "b"
        assert d.lookup("c") == 2
        assert d.lookup("zzz") is None

    def test_numeric_parses_finite_numbers_only(self) -> None:
        d = StringDictionary()
        texts = ["12", " 3.5 ", "-1e3", "abc", "", "inf", "nan", "1_000", "0x10", "1e400"]
        for s in texts:
            d.encode(s)
        num = d.numeric()
        assert num.shape == (len(texts),)
        assert num[:3].tolist() == [12.0, 3.5, -1000.0]
        assert all(math.isnan(x) for x in num[3:])

    def test_numeric_extends_incrementally(self) -> None:
        d = StringDictionary()
        d.encode("1")
        first = d.numeric()
        d.encode("x")
        d.encode("2.5")
        second = d.numeric()
        assert first.tolist() == [1.0]
        assert second[0] == 1.0 and math.isnan(second[1]) and second[2] == 2.5
        with pytest.raises(ValueError):
            second[0] = 3.0

    def test_numeric_of_parses_only_the_codes_asked_for(self) -> None:
        d = StringDictionary()
        for s in ("1", "x", "2.5", "7", "8"):
            d.encode(s)
        few = d.numeric_of(np.array([2, 2, 0], np.int32))
        assert few[[0, 2]].tolist() == [1.0, 2.5]
        assert math.isnan(few[3])  # not asked for: not parsed yet
        many = d.numeric_of(np.arange(5, dtype=np.int32).repeat(3))  # long: the marking path
        assert many[[0, 2, 3, 4]].tolist() == [1.0, 2.5, 7.0, 8.0] and math.isnan(many[1])
        d.encode("9")
        assert d.numeric()[5] == 9.0 and d.numeric_of(np.array([5], np.int32))[5] == 9.0

    def test_references_release_codes_at_zero(self) -> None:
        d = StringDictionary()
        a = d.acquire("alice@example.com")
        assert d.acquire("alice@example.com") == a
        b = d.acquire("bob")
        assert d.drop_refs(np.array([a])) == 0
        assert d.lookup("alice@example.com") == a
        assert d.drop_refs(np.array([a, b])) == 2
        assert d.lookup("alice@example.com") is None and not d.live(a)
        assert d.decode(a) == ""
        # codes are never reused: the same text gets a fresh code
        assert d.encode("alice@example.com") == 2

    def test_state_round_trip_leaves_released_strings_out(self) -> None:
        d = StringDictionary()
        codes = [d.acquire(s) for s in ["keep", "secret", "ünïcødé", "\ud800 lone", ""]]
        d.drop_refs(np.array([codes[1]]))
        state = d.to_state()
        assert b"secret" not in state["blob"].tobytes()
        back = StringDictionary.from_state(state)
        assert len(back) == len(d)
        for code in (0, 2, 3, 4):
            assert back.decode(code) == d.decode(code)
            assert back.lookup(d.decode(code)) == code
        assert back.lookup("secret") is None
        assert back.encode("new") == 5

    def test_state_round_trip_of_ascii_strings_keeps_codes_and_sizes(self) -> None:
        d = StringDictionary()
        codes = [d.acquire(s) for s in ["a@x.io", "gone", "", "C-17", "a@x.io2"]]
        d.drop_refs(np.array([codes[1]]))
        back = StringDictionary.from_state(d.to_state())
        assert [back.decode(c) for c in range(len(d))] == [d.decode(c) for c in range(len(d))]
        assert [back.lookup(s) for s in ["a@x.io", "gone", "", "C-17", "a@x.io2"]] == [0, None, 2, 3, 4]
        whole = StringDictionary()
        for s in ["x", "yy", "zzz"]:
            whole.encode(s)
        again = StringDictionary.from_state(whole.to_state())
        assert [again.decode(c) for c in range(3)] == ["x", "yy", "zzz"] and again.lookup("yy") == 1

    def test_set_refs_after_restore(self) -> None:
        d = StringDictionary.from_state(StringDictionary().to_state())
        assert len(d) == 0
        d.encode("a")
        d.set_refs(np.array([2]))
        assert d.refs(0) == 2
        d.drop_refs(np.array([0, 0]))
        assert d.lookup("a") is None


class TestPathColumn:
    def test_kinds_of_values(self) -> None:
        assert kind_of(True) == Kind.BOOL
        assert kind_of(3) == Kind.NUM
        assert kind_of(2.5) == Kind.NUM
        assert kind_of("x") == Kind.STR
        assert kind_of(None) == Kind.NODE

    def test_make_column_coerces_and_freezes(self) -> None:
        col = make_column("a.b", Kind.NUM, [0, 0, 2], [1, 2, 3], {"a": [0, 1, NO_ITEM]})
        assert col.row.dtype == np.int32 and col.values.dtype == np.float64
        assert col.items["a"].dtype == np.int32
        assert len(col) == 3
        assert col.entries(0, 1) == (0, 2)
        assert col.entries(1, 3) == (2, 3)
        with pytest.raises(ValueError):
            col.values[0] = 0.0
        with pytest.raises(TypeError):
            col.items["b"] = np.zeros(3)  # type: ignore[index]

    def test_node_columns_carry_no_values(self) -> None:
        col = make_column("obj", Kind.NODE, [0, 1], [5, 6])
        assert col.values.shape == (0,)
        assert len(empty_column("x", Kind.STR)) == 0
        assert empty_column("x", Kind.STR).values.dtype == np.int32

    def test_misaligned_columns_are_refused(self) -> None:
        with pytest.raises(ValueError):
            make_column("a", Kind.NUM, [0, 1], [1.0])
        with pytest.raises(ValueError):
            make_column("a", Kind.NUM, [0, 1], [1.0, 2.0], {"a": [0]})

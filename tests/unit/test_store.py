"""The event store (shards, types, stats, erase/move/retention, state) and history read-back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.columns import Kind, kind_of
from core.errors import InvalidArgument, NotFound
from core.event_model import Leaf, flatten
from core.history import contact_events, recent_events, unflatten
from core.identifiers import TypeMapping
from core.store import EventStore


def add(store: EventStore, key: str, contact: int, ts: int, params: dict[str, Any]) -> int:
    return store.append(key, contact, ts, flatten(params))


class TestShards:
    def test_rows_land_in_their_contact_shard(self) -> None:
        s = EventStore(shard_bits=2)
        for c in [0, 1, 5, 6, 13, 3]:
            add(s, "view", c, 100 - c, {"c": c})
        versions = s.shards("view")
        assert [v.contact.tolist() for v in versions] == [[0, 1, 3], [5, 6], [13]]
        assert all(v.is_sorted for v in versions)
        assert s.shards("unknown") == []

    def test_contact_rows(self) -> None:
        s = EventStore(shard_bits=3)
        for ts in [30, 10, 20]:
            add(s, "buy", 9, ts, {"ts": ts})
        add(s, "buy", 10, 5, {})
        v, lo, hi = s.contact_rows("buy", 9)
        assert v.ts_ms[lo:hi].tolist() == [10, 20, 30]
        v, lo, hi = s.contact_rows("buy", 1)
        assert lo == hi
        v, lo, hi = s.contact_rows("nope", 9)
        assert (len(v), lo, hi) == (0, 0, 0)

    def test_arrival_is_global_and_increasing(self) -> None:
        s = EventStore()
        arrivals = [add(s, k, 1, 0, {}) for k in ["a", "b", "a", "c"]]
        assert arrivals == [0, 1, 2, 3]

    def test_bad_contact_or_number_is_refused_whole(self) -> None:
        s = EventStore()
        with pytest.raises(InvalidArgument):
            s.append("a", 2**32, 0, [])
        with pytest.raises(InvalidArgument):
            s.append("a", 1, 0, [Leaf("s", "text", ()), Leaf("n", 10**400, ())])
        assert s.total_events() == 0 and s.dictionary.lookup("text") is None
        assert s.append("a", 1, 0, []) == 0

    def test_append_many(self) -> None:
        s = EventStore(shard_bits=1)
        arrivals = s.append_many("a", [3, 0, 2], [1, 2, 3], [flatten({"x": i}) for i in range(3)])
        assert arrivals == [0, 1, 2]
        assert [v.contact.tolist() for v in s.shards("a")] == [[0], [2, 3]]


class TestTypes:
    def test_more_than_a_thousand_types(self) -> None:
        s = EventStore()
        keys = [f"type{i:04d}" for i in range(1200)]
        for i, key in enumerate(keys):
            add(s, key, 1 + i % 5, i, {"n": i, "name": key})
        assert s.type_keys() == sorted(keys)
        assert len(s.types()) == 1200
        assert s.total_events() == 1200
        info = s.type_info("type0777")
        assert info.count == 1 and info.first_ts_ms == info.last_ts_ms == 777
        assert {(p.path, p.examples) for p in info.paths} == {("n", (777,)), ("name", ("type0777",))}
        assert len(contact_events(s, 3, 10_000)) == 240

    def test_path_stats(self) -> None:
        s = EventStore()
        for i in range(8):
            add(s, "v", 1, i, {"p": {"price": i * 1.5, "tags": ["t0", f"t{i}"]}, "x": i if i % 2 else str(i)})
        add(s, "v", 1, 9, {"ok": True})
        info = s.type_info("v")
        paths = {(p.path, p.kind): p for p in info.paths}
        assert set(paths) == {
            ("p", Kind.NODE), ("p.price", Kind.NUM), ("p.tags", Kind.STR),
            ("x", Kind.NUM), ("x", Kind.STR), ("ok", Kind.BOOL),
        }
        assert paths[("p.tags", Kind.STR)].count == 8  # events, not values
        assert paths[("p.tags", Kind.STR)].examples == ("t0", "t1", "t2", "t3", "t4")
        assert paths[("p.price", Kind.NUM)].examples == (0, 1.5, 3, 4.5, 6)
        assert paths[("x", Kind.NUM)].count == 4 and paths[("x", Kind.STR)].count == 4
        assert paths[("ok", Kind.BOOL)].examples == (True,)
        assert paths[("p", Kind.NODE)].examples == ()
        assert (info.first_ts_ms, info.last_ts_ms) == (0, 9)
        with pytest.raises(NotFound):
            s.type_info("missing")

    def test_config_creates_the_type(self) -> None:
        s = EventStore()
        mapping = TypeMapping(params={"cardNo": "key:loyalty"}, contact_key_name="loyalty")
        s.set_config("Fresh", mapping, 86_400_000)
        info = s.type_info("Fresh")
        assert info.count == 0 and info.first_ts_ms is None
        assert info.mapping == mapping and info.retention_ms == 86_400_000
        assert s.mapping("Fresh") == mapping
        assert s.mapping("never") == TypeMapping()
        s.set_config("Fresh", None, None)
        assert s.type_info("Fresh").mapping == TypeMapping() and s.type_info("Fresh").retention_ms is None
        with pytest.raises(InvalidArgument):
            s.set_config("Fresh", None, -1)


class TestErase:
    def test_erase_removes_every_type_and_forgets_strings(self) -> None:
        s = EventStore(shard_bits=2)
        add(s, "login", 5, 1, {"email": "gone@example.com", "os": "iOS"})
        add(s, "login", 6, 2, {"email": "stays@example.com", "os": "iOS"})
        add(s, "buy", 5, 3, {"total": 12345.5})
        add(s, "buy", 9, 4, {"total": 1})
        before = s.shards("login")
        assert s.erase_contact(5) == 2
        assert s.total_events() == 2
        assert [v.contact.tolist() for v in s.shards("login")] == [[6]]
        assert [v.contact.tolist() for v in s.shards("buy")] == [[9]]
        # earlier versions stay as they were
        assert before[0].contact.tolist() == [5, 6]
        assert s.dictionary.lookup("gone@example.com") is None
        assert s.dictionary.lookup("iOS") is not None
        state = s.to_state()
        assert b"gone@example.com" not in state["dictionary"]["blob"].tobytes()
        buy = {p.path: p for p in s.type_info("buy").paths}
        assert buy["total"].examples == (1,) and buy["total"].count == 1
        login = {p.path: p for p in s.type_info("login").paths}
        assert login["email"].examples == ("stays@example.com",)
        assert s.type_info("buy").first_ts_ms == 4
        assert s.erase_contact(5) == 0

    def test_erase_last_event_of_a_path_drops_the_path(self) -> None:
        s = EventStore()
        add(s, "t", 1, 1, {"rare": "x", "common": 1})
        add(s, "t", 2, 2, {"common": 2})
        s.erase_contact(1)
        assert [p.path for p in s.type_info("t").paths] == ["common"]


class TestMove:
    def test_move_across_shards_keeps_ts_params_and_arrival(self) -> None:
        s = EventStore(shard_bits=2)
        a1 = add(s, "view", 2, 50, {"page": "a"})
        a2 = add(s, "view", 2, 10, {"page": "b"})
        add(s, "view", 13, 30, {"page": "c"})
        add(s, "view", 13, 30, {"page": "d"})
        old = s.shards("view")
        assert s.move_contact(2, 13) == 2
        versions = s.shards("view")
        assert [v.contact.tolist() for v in versions] == [[13, 13, 13, 13]]
        v = versions[0]
        assert v.ts_ms.tolist() == [10, 30, 30, 50]
        assert v.arrival.tolist()[0] == a2 and v.arrival.tolist()[3] == a1
        pages = [e.params["page"] for e in contact_events(s, 13, 10)]
        assert pages == ["a", "d", "c", "b"]
        assert [x.contact.tolist() for x in old] == [[2, 2], [13, 13]]
        assert s.type_info("view").count == 4
        assert s.move_contact(2, 13) == 0

    def test_move_within_a_shard(self) -> None:
        s = EventStore(shard_bits=4)
        for c, ts in [(1, 5), (2, 1), (3, 9), (1, 2)]:
            add(s, "e", c, ts, {"c": c})
        assert s.move_contact(1, 3) == 2
        v = s.shards("e")[0]
        assert list(zip(v.contact.tolist(), v.ts_ms.tolist())) == [(2, 1), (3, 2), (3, 5), (3, 9)]


class TestRetention:
    def test_drops_only_old_events_of_types_with_retention(self) -> None:
        s = EventStore(shard_bits=1)
        for ts in range(10):
            add(s, "short", ts % 4, ts, {"ts": ts, "tag": f"t{ts}"})
            add(s, "forever", ts % 4, ts, {"ts": ts})
        s.set_config("short", None, 3)
        assert s.apply_retention(10) == 7  # keeps ts >= 7
        assert sorted(int(x) for v in s.shards("short") for x in v.ts_ms) == [7, 8, 9]
        assert s.type_info("forever").count == 10
        info = s.type_info("short")
        assert info.first_ts_ms == 7 and info.count == 3
        assert {p.path: p.examples for p in info.paths}["tag"] == ("t7", "t8", "t9") or sorted(
            {p.path: p.examples for p in info.paths}["tag"]
        ) == ["t7", "t8", "t9"]
        assert s.dictionary.lookup("t0") is None
        assert s.apply_retention(10) == 0


def _walk_plain(value: Any) -> None:
    """Raises unless `value` is made of dicts, lists, str, int, float, bool and numpy arrays."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _walk_plain(v)
    elif isinstance(value, list):
        for v in value:
            _walk_plain(v)
    else:
        assert isinstance(value, (str, int, float, bool, np.ndarray)), type(value)


class TestState:
    def test_round_trip(self) -> None:
        s = EventStore(shard_bits=2)
        s.set_config("t", TypeMapping(params={"cid": "externalId"}), 10**9)
        for i in range(40):
            add(s, "t" if i % 3 else "u", i % 11, i // 2, {"i": i, "s": f"v{i % 4}", "a": [{"b": i % 2 == 0}]})
        s.erase_contact(4)
        state = s.to_state()
        _walk_plain(state)
        back = EventStore.from_state(state)
        assert back.types() == s.types()
        assert back.total_events() == s.total_events()
        for key in s.type_keys():
            assert [v.arrival.tolist() for v in back.shards(key)] == [v.arrival.tolist() for v in s.shards(key)]
            assert recent_events(back, key, 100, None) == recent_events(s, key, 100, None)
        # numbering and string references continue
        assert add(back, "t", 1, 0, {"s": "v1"}) == add(s, "t", 1, 0, {"s": "v1"})
        back.erase_contact(1)
        s.erase_contact(1)
        assert back.dictionary.lookup("v1") == s.dictionary.lookup("v1")
        with pytest.raises(InvalidArgument):
            EventStore.from_state({**state, "format": 99})

    def test_sizes(self) -> None:
        s = EventStore()
        empty = s.nbytes()
        for i in range(1000):
            add(s, "t", i, i, {"a": i, "b": "x"})
        assert s.total_events() == 1000
        assert s.nbytes() > empty + 1000 * (4 + 8 + 8 + 12)


# ---------------------------------------------------------------------------- history

SCALARS = st.one_of(
    st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3), st.booleans(),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab", min_size=1, max_size=3), inner, max_size=3),
    max_leaves=12,
)


def _kinds(leaves: list[Leaf]) -> list[tuple[str, Kind, tuple]]:
    return [(leaf.path, kind_of(leaf.value), leaf.items) for leaf in leaves]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("xy", min_size=1, max_size=3), JSON, max_size=4))
def test_unflatten_round_trip(params: dict[str, Any]) -> None:
    # keys without dots: a key holding the path separator is ambiguous by construction
    leaves = flatten(params)
    again = flatten(unflatten(leaves))
    assert again == leaves
    assert _kinds(again) == _kinds(leaves)


def test_unflatten_rebuilds_nested_documents() -> None:
    doc = {
        "product": {"productId": "WS01", "price": 45.5, "isInStock": 1},
        "products": [{"id": "a", "q": [1, 2]}, {"id": "b", "flag": True}, 7],
        "empty": {},
        "dotted.key": "v",
    }
    assert unflatten(flatten(doc)) == doc


class TestHistory:
    def test_pages_newest_first_without_gaps(self) -> None:
        s = EventStore(shard_bits=1)
        expected = []
        for i in range(57):
            ts = (i * 37) % 11  # many equal timestamps: arrival breaks ties
            arrival = add(s, "view", i % 6, ts, {"i": i, "p": {"tags": ["x", str(i)]}})
            expected.append((ts, arrival, i))
        expected.sort(reverse=True)
        got, cursor, pages = [], None, 0
        while True:
            page, cursor = recent_events(s, "view", 10, cursor)
            got += page
            pages += 1
            if cursor is None:
                break
        assert pages == 6
        assert [(e.ts_ms, e.arrival) for e in got] == [(ts, a) for ts, a, _ in expected]
        assert [e.params for e in got] == [{"i": i, "p": {"tags": ["x", str(i)]}} for _, _, i in expected]
        assert all(e.type == "view" and e.contact_id == e.params["i"] % 6 for e in got)

    def test_exact_page_and_unknown_type(self) -> None:
        s = EventStore()
        for i in range(4):
            add(s, "t", 1, i, {})
        page, cursor = recent_events(s, "t", 4, None)
        assert len(page) == 4 and cursor is None
        assert recent_events(s, "missing", 5, None) == ([], None)

    def test_bad_cursor_and_limit(self) -> None:
        s = EventStore()
        add(s, "t", 1, 0, {})
        with pytest.raises(InvalidArgument) as err:
            recent_events(s, "t", 5, "not-a-cursor")
        assert err.value.field == "page_token"
        with pytest.raises(InvalidArgument):
            recent_events(s, "t", 0, None)

    def test_contact_events_over_types(self) -> None:
        s = EventStore()
        add(s, "a", 1, 10, {"n": 1})
        add(s, "b", 1, 30, {"n": 2})
        add(s, "a", 2, 40, {"n": 3})
        add(s, "c", 1, 20, {"n": 4, "big": 2**53, "half": 0.5})
        add(s, "b", 1, 30, {"n": 5})
        events = contact_events(s, 1, 3)
        assert [(e.type, e.params["n"]) for e in events] == [("b", 5), ("b", 2), ("c", 4)]
        assert events[2].params == {"n": 4, "big": 2**53, "half": 0.5}
        assert isinstance(events[2].params["big"], int)
        assert contact_events(s, 1, 0) == []
        assert contact_events(s, 99, 5) == []

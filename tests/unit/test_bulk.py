"""The bulk loader's leaf columns: input checks, and nested events giving the same segments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.bulk import Coded, LeafColumn, append_leaves, leaf_columns
from core.columns import NO_ITEM, Kind
from core.engine import Engine
from core.errors import InvalidArgument
from core.event_model import flatten, leaf_tuples
from core.store import EventStore

NOW = 1_000_000_000
CARTS = [
    {"products": [{"id": "p1", "q": 2}, {"id": "p2", "q": "3", "tags": ["x", ["y"]]}], "total": 9.5},
    {"products": [], "total": 0},
    {"products": {"id": "p1", "q": 1}, "coupon": True},
    {"products": [None, {"id": "p3"}], "total": "n/a"},
]


def test_leaf_columns_number_items_as_flatten_does() -> None:
    cols = {(c.path, c.kind): c for c in leaf_columns([leaf_tuples(d) for d in CARTS])}
    ids = cols[("products.id", Kind.STR)]
    assert ids.rows.tolist() == [0, 0, 2, 3]
    assert ids.items["products"].tolist() == [0, 1, NO_ITEM, 0]  # an object, not an array, in event 2
    tags = cols[("products.tags", Kind.STR)]
    assert tags.values.tolist() == ["x", "y"]  # type: ignore[union-attr]
    assert tags.items["products.tags"].tolist() == [0, 1] and tags.items["products"].tolist() == [1, 1]
    assert cols[("total", Kind.STR)].rows.tolist() == [3] and cols[("total", Kind.NUM)].rows.tolist() == [0, 1]
    flat = [lf for lf in flatten(CARTS[0])]
    assert ids.order is not None and ids.order[:2].tolist() == [
        i for i, lf in enumerate(flat) if lf.path == "products.id"]


def _engine_with(loader: str) -> Engine:
    engine = Engine(clock=lambda: NOW)
    engine.upsert_contacts([{"externalId": f"C-{i}"} for i in range(1, 5)])
    contacts, stamps = [1, 2, 3, 1], [NOW - 1000, NOW - 2000, NOW - 3000, NOW - 4000]
    if loader == "columns":
        append_leaves(engine.store, "cart", np.array(contacts), np.array(stamps),
                      leaf_columns([leaf_tuples(d) for d in CARTS]))
    else:
        docs = [{"eventTypeKey": "cart", "timestamp": t, "params": {"externalCustomerId": f"C-{c}", **d}}
                for c, t, d in zip(contacts, stamps, CARTS)]
        assert engine.ingest(docs).accepted == 4
    return engine


DEFINITIONS: list[dict[str, Any]] = [
    {"event": {"type": "cart", "period": {"allTime": {}}, "count": {"gte": 2}}},
    {"event": {"type": "cart", "period": {"allTime": {}},
               "where": [{"param": "products.id", "op": "eq", "value": "p1"}], "count": {"gte": 1}}},
    {"event": {"type": "cart", "period": {"allTime": {}},
               "where": [{"param": "products.tags", "op": "eq", "value": "y"}], "count": {"gte": 1}}},
    {"event": {"type": "cart", "period": {"allTime": {}}, "sum": {"param": "products.q", "gte": 3}}},
]


def test_nested_columns_give_the_segments_documents_give() -> None:
    by_columns, by_docs = _engine_with("columns"), _engine_with("docs")
    # the documents also carry externalCustomerId: compare the paths both hold
    cols_info = {(p.path, p.kind): p for p in by_columns.store.type_info("cart").paths}
    docs_info = {(p.path, p.kind): p for p in by_docs.store.type_info("cart").paths}
    assert cols_info.items() <= docs_info.items()
    nonempty = 0
    for cond in DEFINITIONS:
        got = by_columns.evaluate({"name": "s", "condition": cond}, NOW)
        assert got == by_docs.evaluate({"name": "s", "condition": cond}, NOW), cond
        nonempty += bool(len(got))
    assert nonempty >= 3


def _one(**kw: Any) -> LeafColumn:
    base: dict[str, Any] = {"path": "a", "kind": Kind.NUM, "rows": np.array([0, 1]), "values": np.array([1.0, 2.0])}
    base.update(kw)
    return LeafColumn(**base)


GOOD = LeafColumn("s", Kind.STR, np.array([0]), np.array(["new"], dtype=object))
GOOD_ORDERED = LeafColumn("s", Kind.STR, np.array([0]), np.array(["new"], dtype=object), order=np.array([5]))


@pytest.mark.parametrize("columns", [
    [GOOD, _one(rows=np.array([1, 0]))],  # rows must ascend
    [GOOD, _one(rows=np.array([0, 2]))],  # beyond the bulk
    [GOOD, _one(values=np.array([1.0]))],  # one value per entry
    [GOOD, _one(values=np.array(["x", "y"]))],  # not numbers
    [GOOD, _one(kind=Kind.BOOL, values=np.array([0, 2]))],
    [GOOD, _one(kind=Kind.STR, values=Coded(np.array([0, 5]), np.array(["s"], dtype=object)))],
    [GOOD, _one(kind=Kind.STR, values=np.array(["s", 3], dtype=object))],  # found after "new" is seen
    [GOOD, _one(items={"b": np.array([0, 0])})],  # not a prefix of the path
    [GOOD, _one(items={"a": np.array([0, -2])})],
    [GOOD, _one(order=np.array([0, 0]))],  # leaf order from some columns only
    [GOOD_ORDERED, _one(rows=np.array([0, 0]), order=np.array([1, 0]))],  # one event's entries out of order
])
def test_bad_columns_are_refused_whole(columns: list[LeafColumn]) -> None:
    store = EventStore()
    store.append("t", 1, 1, flatten({"s": "kept"}))
    before = (len(store.dictionary), store.total_events(), store.dictionary.refs(0))
    with pytest.raises(InvalidArgument) as info:
        append_leaves(store, "t", np.array([1, 2]), np.array([5, 6]), columns)
    assert info.value.field in ("params.a", "params")
    assert (len(store.dictionary), store.total_events(), store.dictionary.refs(0)) == before
    assert store.dictionary.lookup("new") is None


def test_refused_contacts_and_duplicate_columns() -> None:
    store = EventStore()
    with pytest.raises(InvalidArgument):
        append_leaves(store, "t", np.array([1, -2]), np.array([5, 6]), [])
    with pytest.raises(InvalidArgument):
        append_leaves(store, "t", np.array([1, 2]), np.array([5.0, 6.0]), [])
    with pytest.raises(InvalidArgument):
        append_leaves(store, "t", np.array([1, 2]), np.array([5, 6]), [_one(), _one()])
    assert store.total_events() == 0 and not store.has_type("t")
    assert append_leaves(store, "t", np.zeros(0, np.int64), np.zeros(0, np.int64), []) == 0

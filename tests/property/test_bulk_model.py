"""Bulk loading nested events as leaf columns stores exactly what appending each event does.

Random nested documents (objects, arrays, arrays in arrays, mixed kinds at one path, paths
that are arrays in some events and objects in others) are flattened, turned into leaf columns
(`core.bulk.leaf_columns`, optionally with strings as codes into a shuffled vocabulary), and
bulk-loaded into one store; the other store gets the same events one `EventStore.append` at a
time. Versions, statistics, dictionary codes and reference counts, arrival numbers and the
snapshot state must be equal.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.bulk import Coded, LeafColumn, append_leaves, leaf_columns
from core.columns import Kind
from core.event_model import flatten, leaf_tuples
from core.store import EventStore

SCALARS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, -0.0, 1e15, 2.0**53]),
    st.sampled_from(["a", "b", "7", "x.y", ""]),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["k", "m", "n.o"]), inner, max_size=3),
    ),
    max_leaves=8,
)
PARAMS = st.dictionaries(st.sampled_from(["id", "price", "tags", "product", "products"]), VALUES, max_size=4)
EVENTS = st.lists(st.tuples(st.integers(0, 15), st.integers(0, 12), PARAMS), max_size=20)
OTHER = st.lists(st.tuples(st.sampled_from(["view", "buy"]), st.integers(0, 15), st.integers(0, 12), PARAMS),
                 max_size=6)


def comparable(value: Any) -> Any:
    """A form that tells 1, 1.0 and True apart and compares arrays by dtype and bytes."""
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), comparable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [comparable(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    return (type(value).__name__, value)


def observed(store: EventStore, tails: bool = True) -> Any:
    """Everything a reader can see: per table the unsorted version (tails in arrival order,
    when `tails`) with column order, statistics, dictionary refs, types, the state."""
    out = []
    for key in store.type_keys():
        for shard in range(4):
            table = store.table(key, shard)
            if table is None:
                continue
            if tails:
                v = table.version()
                cols = [(k, comparable(c.row), comparable(c.values), comparable(dict(c.items)))
                        for k, c in v.columns.items()]
                out.append((key, shard, comparable(v.contact), comparable(v.ts_ms), comparable(v.arrival), cols))
            out.append([(k, s.count, comparable(s.examples)) for k, s in table.stats().items()])
    d = store.dictionary
    out.append([(d.decode(c), d.refs(c), d.live(c)) for c in range(len(d))])
    out.append(comparable([info.__dict__ for info in store.types()]))
    out.append(comparable(store.to_state()))
    return out


def coded(columns: list[LeafColumn], seed: int) -> list[LeafColumn]:
    """The columns with strings as codes into one shared, shuffled vocabulary with extras."""
    words = sorted({s for c in columns if c.kind == Kind.STR for s in c.values.tolist()})  # type: ignore[union-attr]
    vocab = np.array(words + ["unused", "spare"], dtype=object)
    np.random.default_rng(seed).shuffle(vocab)
    index = {s: i for i, s in enumerate(vocab.tolist())}
    out = []
    for c in columns:
        if c.kind == Kind.STR:
            codes = np.array([index[s] for s in c.values.tolist()], dtype=np.int64)  # type: ignore[union-attr]
            c = LeafColumn(c.path, c.kind, c.rows, Coded(codes, vocab), c.items, c.order)
        out.append(c)
    return out


@settings(max_examples=120, deadline=None)
@given(OTHER, EVENTS, OTHER, st.booleans(), st.integers(0, 3), st.integers(0, 2**16))
def test_leaf_columns_store_what_appending_each_event_stores(
    before: list[Any], events: list[Any], after: list[Any], as_codes: bool, shuffle: int, seed: int
) -> None:
    bulk, one_by_one = EventStore(shard_bits=2), EventStore(shard_bits=2)
    for store in (bulk, one_by_one):
        for type_key, contact, ts, params in before:
            store.append(type_key, contact, ts, flatten(params))
    columns = leaf_columns([leaf_tuples(p) for _, _, p in events])
    if as_codes:
        columns = coded(columns, seed)
    # the column order given does not matter when every column gives leaf order
    columns = [columns[i] for i in np.random.default_rng(seed + shuffle).permutation(len(columns))]
    contacts = np.array([c for c, _, _ in events], dtype=np.int64)
    stamps = np.array([t for _, t, _ in events], dtype=np.int64)
    first = append_leaves(bulk, "view", contacts, stamps, columns)
    arrivals = [one_by_one.append("view", c, t, flatten(p)) for c, t, p in events]
    assert first == (arrivals[0] if arrivals else one_by_one._next_arrival)
    for store in (bulk, one_by_one):
        for type_key, contact, ts, params in after:
            store.append(type_key, contact, ts, flatten(params))
    assert observed(bulk) == observed(one_by_one)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16))
def test_long_bulks_merge_tails_as_appends_do(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000  # past the tail limit: tails merge into bases at other moments than one by one
    docs = []
    for i in range(n):
        k = int(rng.integers(0, 3))
        items = [{"id": f"p{int(rng.integers(0, 40))}", "q": int(rng.integers(0, 3)) if rng.random() < 0.8 else "2",
                  "tags": ["t"] * int(rng.integers(0, 2))} for _ in range(k)]
        docs.append({"c": f"C-{i % 97}", "products": items, "total": float(i % 7)})
    contacts = rng.integers(0, 16, size=n)
    stamps = rng.integers(0, 1000, size=n)
    bulk, one_by_one = EventStore(shard_bits=2), EventStore(shard_bits=2)
    append_leaves(bulk, "cart", contacts[:3000], stamps[:3000], leaf_columns([leaf_tuples(d) for d in docs[:3000]]))
    append_leaves(bulk, "cart", contacts[3000:], stamps[3000:], leaf_columns([leaf_tuples(d) for d in docs[3000:]]))
    for c, t, d in zip(contacts.tolist(), stamps.tolist(), docs):
        one_by_one.append("cart", c, t, flatten(d))
    assert observed(bulk, tails=False) == observed(one_by_one, tails=False)

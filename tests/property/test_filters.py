"""Row masks of parameter filters (core.segments.filters) equal the reference reading of
SEGMENTS.md section 5 (tests/reference.py), event by event, on random nested parameters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.reference as ref
from core.event_model import flatten
from core.segments.filters import row_mask
from core.segments.plan import Filter
from core.store import EventStore

pytestmark = pytest.mark.property

KEYS = ["a", "b"]
STRINGS = ["x", "ab", "b", "1", "2.5", "-3", "1e1", "nan", "", "Ab"]
SCALARS = st.one_of(
    st.sampled_from(STRINGS),
    st.integers(-3, 3),
    st.sampled_from([0.5, 2.5, -0.0, 10.0]),
    st.booleans(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
PARAMS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)
PATHS = st.sampled_from(["a", "b", "a.b", "b.a", "a.b.a", "c"])
ORDER_VALUES = st.one_of(st.sampled_from(STRINGS), st.integers(-3, 3).map(float))  # the parser's types for gt/lt
FILTER_SCALARS = st.one_of(st.sampled_from(STRINGS), st.integers(-3, 3).map(float), st.sampled_from([2.5, 10.0]), st.booleans())


@st.composite
def filters(draw, depth: int = 0) -> tuple[Filter, dict[str, Any]]:
    """A plan Filter and the same filter as reference JSON."""
    ops = ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains",
           "not_contains", "starts_with", "ends_with", "exists", "not_exists"]
    if depth < 2:
        ops.append("any")
    op = draw(st.sampled_from(ops))
    param = draw(PATHS if depth == 0 else st.sampled_from(KEYS + ["a.b", "c"]))
    if op in ("exists", "not_exists"):
        return Filter(param, op), {"param": param, "op": op}
    if op == "any":
        nested = draw(st.lists(filters(depth + 1), min_size=1, max_size=3))
        return (Filter(param, op, None, tuple(f for f, _ in nested)),
                {"param": param, "op": op, "where": [j for _, j in nested]})
    if op in ("eq", "ne"):
        value: Any = draw(FILTER_SCALARS)
    elif op in ("gt", "gte", "lt", "lte"):
        value = draw(ORDER_VALUES)
    elif op == "between":
        value = draw(st.one_of(
            st.tuples(st.integers(-3, 3), st.integers(0, 4)).map(lambda p: (float(min(p)), float(max(p)))),
            st.tuples(st.sampled_from(STRINGS), st.sampled_from(STRINGS)).map(lambda p: tuple(sorted(p))),
        ))
    elif op in ("in", "not_in"):
        value = tuple(draw(st.lists(FILTER_SCALARS, min_size=1, max_size=3)))
    else:
        value = draw(st.sampled_from(STRINGS))
    return Filter(param, op, value), {"param": param, "op": op, "value": list(value) if isinstance(value, tuple) else value}


@settings(max_examples=300, deadline=None)
@given(st.lists(PARAMS, min_size=1, max_size=8), st.lists(filters(), min_size=1, max_size=2))
def test_row_mask_matches_reference(docs, chosen):
    store = EventStore()
    for i, params in enumerate(docs):
        store.append("t", 1, 1000 + i, flatten(params))
    (view,) = store.shards("t")
    mask = row_mask(view, tuple(f for f, _ in chosen), store.dictionary)
    want = [all(ref.filter_holds(j, params) for _, j in chosen) for params in docs]
    assert mask is not None and mask.tolist() == want


ITEM = st.dictionaries(st.sampled_from(["p", "q"]), st.one_of(SCALARS, st.lists(SCALARS, max_size=2)), max_size=2)
ITEM_PARAMS = st.fixed_dictionaries(
    {"a": st.one_of(st.lists(st.one_of(ITEM, SCALARS), max_size=4), ITEM)},
    optional={"b": st.lists(st.fixed_dictionaries({"a": st.lists(ITEM, max_size=3)}), max_size=2)},
)
NESTED = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["eq", "ne", "exists", "not_exists"]), FILTER_SCALARS),
        st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["gt", "lt"]), ORDER_VALUES),
    ),
    min_size=1,
    max_size=3,
)


def _nested(spec) -> tuple[tuple[Filter, ...], list[dict[str, Any]]]:
    plan, doc = [], []
    for param, op, value in spec:
        if op in ("exists", "not_exists"):
            plan.append(Filter(param, op))
            doc.append({"param": param, "op": op})
        else:
            plan.append(Filter(param, op, value))
            doc.append({"param": param, "op": op, "value": value})
    return tuple(plan), doc


@settings(max_examples=300, deadline=None)
@given(st.lists(ITEM_PARAMS, min_size=1, max_size=6), NESTED, st.sampled_from(["a", "b.a"]), st.booleans())
def test_any_ties_filters_to_one_element(docs, spec, path, wrap):
    nested, nested_doc = _nested(spec)
    flt, doc = Filter(path, "any", None, nested), {"param": path, "op": "any", "where": nested_doc}
    if wrap:  # `any` inside `any`: an element of b whose `a` has a passing element
        flt = Filter("b", "any", None, (Filter("a", "any", None, nested),))
        doc = {"param": "b", "op": "any", "where": [{"param": "a", "op": "any", "where": nested_doc}]}
    store = EventStore()
    for i, params in enumerate(docs):
        store.append("t", 1, 1000 + i, flatten(params))
    (view,) = store.shards("t")
    mask = row_mask(view, (flt,), store.dictionary)
    assert mask is not None and mask.tolist() == [ref.filter_holds(doc, params) for params in docs]

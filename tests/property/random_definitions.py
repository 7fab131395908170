"""Random condition trees of every form (filters, periods, measures, attributes,
identifiers, references, all/any/not), for property tests that need whole definitions
rather than the focused single-leaf scenarios of `strategies.scenarios`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from tests.property.strategies import (
    ANY_PATHS,
    BOOLS,
    COMPARISON_OPS,
    DAY_MS,
    DISTINCT_PARAMS,
    ELEMENT_PATHS,
    EVENT_TYPES,
    FILTER_PATHS,
    NUMERIC_PARAMS,
)

FILTER_NUMBERS = st.one_of(st.sampled_from([0, 1, 2, 1.0, 5, 10, 45.5, 50, 100, 120, 500, -3, 0.25]), st.integers(-5, 600))
FILTER_STRINGS = st.sampled_from(["London", "london", "Lon", "on", "sneakers", "jacket", "a", "b", "1", "45.5",
                                  "P1", "p", "hello", "world", "", "abc"])


@st.composite
def filter_values(draw: st.DrawFn, op: str, numbers: st.SearchStrategy | None = FILTER_NUMBERS,
                  strings: st.SearchStrategy | None = FILTER_STRINGS, bools: bool = True) -> Any:
    """A value for `op` of one kind (lists are of one kind); None kinds are not drawn."""
    kinds = [k for k in (numbers, strings, BOOLS if bools else None) if k is not None]
    ordered = [k for k in (numbers, strings) if k is not None]
    if op in ("eq", "ne"):
        return draw(st.one_of(*kinds))
    if op in ("gt", "gte", "lt", "lte"):
        return draw(st.one_of(*ordered))
    if op == "between":
        return sorted(draw(st.lists(draw(st.sampled_from(ordered)), min_size=2, max_size=2)))
    if op in ("in", "not_in"):
        return draw(st.lists(draw(st.sampled_from(kinds)), min_size=1, max_size=3))
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        return draw(strings if strings is not None else FILTER_STRINGS)
    return None


# Values each path actually carries, so that filters often split the contacts.
PATH_NUMBERS: dict[str, list[Any]] = {
    "totalPrice": [45.5, 100, 500, 10], "product.price": [45.5, 50, 100], "items.price": [50, 100, 120],
    "price": [50, 100, 120, 45.5], "qty": [0, 1, 3, 5], "contactId": [1, 2, 3, 4], "tags": [1, 1.0],
    "productId": [1], "product.productId": [1, 1.0],
}
PATH_STRINGS: dict[str, list[str]] = {
    "totalPrice": ["45.5", "abc", "100"], "city": ["London", "london", "Lon", "on", "Paris"],
    "product.productId": ["P1", "p1", "P", "1"], "productId": ["P1", "p1", "1"], "items.title": ["sneakers", "jacket", "sn", "ers"],
    "title": ["sneakers", "jacket", "socks", "s"], "tags": ["a", "b", "1"], "product.tags": ["a", "b"],
    "note": ["hello", "world", "hello world"], "contactId": ["1", "2", "3"],
}


@st.composite
def filters(draw: st.DrawFn, paths: tuple[str, ...] = FILTER_PATHS, depth: int = 0) -> dict[str, Any]:
    """A parameter filter of any op, `any` included (nested at most twice)."""
    if depth < 2 and draw(st.integers(0, 5)) == 0:
        path = draw(st.sampled_from(ANY_PATHS if depth == 0 else ("tags", "missing")))
        where = draw(st.lists(filters(ELEMENT_PATHS, depth + 1), min_size=1, max_size=2))
        return {"param": path, "op": "any", "where": where}
    op = draw(st.sampled_from(COMPARISON_OPS))
    path = draw(st.sampled_from(paths))
    flt: dict[str, Any] = {"param": path, "op": op}
    if op not in ("exists", "not_exists"):
        if draw(st.booleans()) and (path in PATH_NUMBERS or path in PATH_STRINGS):
            numbers = st.sampled_from(PATH_NUMBERS[path]) if path in PATH_NUMBERS else None
            strings = st.sampled_from(PATH_STRINGS[path]) if path in PATH_STRINGS else None
            flt["value"] = draw(filter_values(op, numbers=numbers, strings=strings))
        else:
            flt["value"] = draw(filter_values(op))
    return flt


PERIODS_FIXED = st.sampled_from([{"today": {}}, {"yesterday": {}}, {"thisWeek": {}}, {"thisMonth": {}}, {"allTime": {}}])


@st.composite
def periods(draw: st.DrawFn, now_ms: int) -> dict[str, Any]:
    """Any period kind of SEGMENTS.md §7."""
    kind = draw(st.sampled_from(["fixed", "last", "previous", "between", "before"]))
    if kind == "fixed":
        return draw(PERIODS_FIXED)
    if kind == "last":
        unit = draw(st.sampled_from(["minutes", "hours", "days", "weeks", "months"]))
        top = {"minutes": 600, "hours": 72, "days": 40, "weeks": 10, "months": 14}[unit]
        return {"last": {unit: draw(st.integers(1, top))}}
    if kind == "previous":
        return {"previous": {"unit": draw(st.sampled_from(["day", "week", "month"])), "count": draw(st.integers(1, 3))}}
    if kind == "between":
        a = now_ms - draw(st.integers(-DAY_MS, 60 * DAY_MS))
        b = a + draw(st.integers(1, 30 * DAY_MS))
        return {"between": {"from": a, "to": b}}
    unit = draw(st.sampled_from(["hours", "days", "weeks", "months"]))
    top = {"hours": 72, "days": 40, "weeks": 10, "months": 14}[unit]
    return {"before": {unit: draw(st.integers(1, top))}}


@st.composite
def comparisons(draw: st.DrawFn, numbers: st.SearchStrategy) -> dict[str, Any]:
    """A cmp object: one or two of eq/ne/gt/gte/lt/lte/between."""
    order = ["gte", "lt", "between", "gt", "lte", "ne", "eq"]
    keys = draw(st.lists(st.sampled_from(order), min_size=1, max_size=draw(st.sampled_from([1, 1, 2])), unique=True))
    cmp: dict[str, Any] = {}
    for key in keys:
        if key == "between":
            cmp[key] = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
        else:
            cmp[key] = draw(numbers)
    return cmp


COUNTS = st.integers(0, 4)
AMOUNTS = st.one_of(st.sampled_from([50, 0, 1, 45.5, 100, 120, 250, 500, 1000]), st.integers(-10, 2000).map(lambda q: q / 2))
DAYS = st.one_of(st.integers(0, 5), st.integers(0, 60), st.integers(0, 800))


@st.composite
def event_conditions(draw: st.DrawFn, now_ms: int) -> dict[str, Any]:
    """An event condition with any measure (or none), filters and period."""
    body: dict[str, Any] = {"type": draw(st.sampled_from(EVENT_TYPES + ("purchase", "never")))}
    where = draw(st.lists(filters(), max_size=draw(st.sampled_from([0, 1, 0, 1, 2]))))
    if where:
        body["where"] = where
    measure = draw(st.sampled_from(["count", "none", "sum", "avg", "min", "max", "distinct",
                                    "first", "last", "daysSinceLast", "streak"]))
    if measure == "streak":
        unit = draw(st.sampled_from(["day", "week", "month"]))
        body["streak"] = {"unit": unit, "count": draw(st.integers(1, {"day": 4, "week": 3, "month": 2}[unit]))}
        return body
    # daysSinceLast looks at all time: a period given with it must change nothing
    if draw(st.sampled_from([True, True, True, False] if measure != "daysSinceLast" else [False, False, True])):
        body["period"] = draw(periods(now_ms))
    if measure == "count":
        body["count"] = draw(comparisons(COUNTS))
    elif measure in ("sum", "avg", "min", "max"):
        body[measure] = {"param": draw(st.sampled_from(NUMERIC_PARAMS)), **draw(comparisons(AMOUNTS))}
    elif measure == "distinct":
        body[measure] = {"param": draw(st.sampled_from(DISTINCT_PARAMS)), **draw(comparisons(COUNTS))}
    elif measure in ("first", "last"):
        body[measure] = {}
    elif measure == "daysSinceLast":
        body[measure] = draw(comparisons(DAYS))
    return body


DATE_STRINGS = st.one_of(
    st.sampled_from(["1990-03-12", "1996-02-29", "1980-01-01", "2000-06-15"]),
    st.dates(dt.date(1950, 1, 1), dt.date(2010, 12, 31)).map(dt.date.isoformat),
)
DATE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists", "anniversaryInDays")


@st.composite
def attribute_conditions(draw: st.DrawFn, now_ms: int) -> dict[str, Any]:
    """An attribute condition: typed ops on fields, dates as dates, createdAt and source."""
    name = draw(st.sampled_from(["city", "firstName", "score", "vip", "birthday", "joined", "missing",
                                 "source", "createdAt"]))
    if name in ("birthday", "joined"):
        op = draw(st.sampled_from(DATE_OPS))
        spec: dict[str, Any] = {"field": name, "op": op}
        if op == "anniversaryInDays":
            spec["value"] = draw(st.one_of(st.integers(0, 3), st.sampled_from([7, 30, 364, 365, 366])))
        elif op not in ("exists", "not_exists"):
            spec["value"] = draw(filter_values(op, numbers=None, strings=DATE_STRINGS, bools=False))
        return spec
    if name == "createdAt":
        op = draw(st.sampled_from(["gt", "gte", "lt", "lte", "between", "exists", "not_exists"]))
        spec = {"field": name, "op": op}
        if op not in ("exists", "not_exists"):
            instants = st.integers(now_ms - 400 * DAY_MS, now_ms)
            spec["value"] = draw(filter_values(op, numbers=instants, strings=None, bools=False))
        return spec
    op = draw(st.sampled_from(COMPARISON_OPS))
    spec = {"field": name, "op": op}
    if op not in ("exists", "not_exists"):
        strings = st.one_of(FILTER_STRINGS, st.sampled_from(["Api", "Import", "Event", "Ann", "ann", "high", "10"]))
        spec["value"] = draw(filter_values(op, strings=strings))
    return spec


IDENTIFIERS = st.fixed_dictionaries({
    "kind": st.sampled_from(["externalId", "email", "phone", "pushToken", "loyaltyCard", "otherKey"]),
    "present": BOOLS,
})


def conditions(now_ms: int, segment_names: tuple[str, ...] = ()) -> st.SearchStrategy:
    """Condition trees of every form, at most three levels of all/any/not."""
    leaves = [
        event_conditions(now_ms).map(lambda b: {"event": b}),
        event_conditions(now_ms).map(lambda b: {"event": b}),
        attribute_conditions(now_ms).map(lambda b: {"attribute": b}),
        IDENTIFIERS.map(lambda b: {"identifier": b}),
    ]
    if segment_names:
        leaves.append(st.sampled_from(segment_names).map(lambda n: {"segment": n}))
    leaf = st.one_of(*leaves)
    return leaf | st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=5,
    )

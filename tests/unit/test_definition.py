"""Segment definitions: validation paths, the spec examples, limits, canonical JSON, references."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidArgument
from core.segments.definition import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    definition_to_json,
    find_cycle,
    parse_definition,
    references,
)
from core.segments.plan import (
    All,
    AnyOf,
    AttrCond,
    Cmp,
    Definition,
    EventCond,
    Filter,
    IdentCond,
    Not,
    Period,
    SegmentRef,
    paths,
    paths_by_type,
    paths_read,
)

# The contract lives in shared/ beside the repository (where CI puts its copy too).
SPEC = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / "spec" / "SEGMENTS.md",
                         Path("/work/shared/spec/SEGMENTS.md")) if p.exists()), Path("/work/shared/spec/SEGMENTS.md"))

# The ten examples of SEGMENTS.md section 8, as written there.
EXAMPLES: list[dict[str, Any]] = [
    {"event": {"type": "first purchase", "where": [
        {"param": "totalPrice", "op": "gt", "value": 500},
        {"param": "items.title", "op": "eq", "value": "sneakers"},
        {"param": "city", "op": "eq", "value": "London"}]}},
    {"event": {"type": "WorkoutStarted", "where": [
        {"param": "workoutType", "op": "eq", "value": "Strength"},
        {"param": "deviceCategory", "op": "eq", "value": "Mobile"},
        {"param": "osType", "op": "eq", "value": "iOS"}]}},
    {"event": {"type": "WorkoutStarted", "streak": {"unit": "week", "count": 4}}},
    {"event": {"type": "AppInstall", "period": {"last": {"days": 7}}, "first": {}}},
    {"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {}}},
    {"all": [{"event": {"type": "purchase", "period": {"before": {"months": 12}}, "first": {}}},
             {"event": {"type": "purchase", "period": {"previous": {"unit": "week", "count": 1}}}}]},
    {"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 1}},
    {"all": [{"identifier": {"kind": "pushToken", "present": True}},
             {"identifier": {"kind": "email", "present": False}}]},
    {"all": [{"event": {"type": "emailOpened", "streak": {"unit": "month", "count": 3}}},
             {"any": [
                 {"event": {"type": "productCategoryViewed", "period": {"last": {"days": 30}},
                            "where": [{"param": "category.productCategoryId", "op": "eq", "value": "iPhone"}]}},
                 {"event": {"type": "AppLaunched", "period": {"last": {"days": 30}},
                            "where": [{"param": "osType", "op": "eq", "value": "iOS"}]}},
                 {"event": {"type": "webPushSubscribed", "period": {"allTime": {}},
                            "where": [{"param": "os", "op": "eq", "value": "iOS"}]}}]}]},
    {"all": [{"event": {"type": "productViewed", "period": {"last": {"hours": 24}},
                        "distinct": {"param": "product.productId", "gte": 3}}},
             {"event": {"type": "cartUpdated", "period": {"allTime": {}}, "count": {"eq": 0}}}]},
]


def seg(condition: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "s", "condition": condition, **extra}


def ev(**body: Any) -> dict[str, Any]:
    return {"event": {"type": "t", **body}}


def rejected(doc: Any, **kw: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        parse_definition(doc, **kw)
    return info.value


def nested_not(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = ev()
    for _ in range(levels):
        node = {"not": node}
    return node


# --- the examples ----------------------------------------------------------------------

def test_examples_match_the_spec_text() -> None:
    section = SPEC.read_text().split("## 8. Examples", 1)[1] if SPEC.exists() else None
    if section is None:
        pytest.skip("spec not available")
    found = [json.loads(m) for m in re.findall(r"`(\{.*?\})`(?:\n|$)", section, flags=re.M)]
    assert found == EXAMPLES


@pytest.mark.parametrize("index", range(10))
def test_examples_parse_and_round_trip(index: int) -> None:
    defn = parse_definition(seg(EXAMPLES[index]))
    assert defn.condition is not None and defn.contacts is None
    assert parse_definition(definition_to_json(defn)) == defn


def test_example_shapes() -> None:
    first = parse_definition(seg(EXAMPLES[0])).condition
    assert isinstance(first, EventCond)
    assert first.period == Period("today") and first.measure == "count" and first.cmp == Cmp(gte=1.0)
    assert first.where[0] == Filter("totalPrice", "gt", 500.0)
    streak = parse_definition(seg(EXAMPLES[2])).condition
    assert isinstance(streak, EventCond)
    assert (streak.period, streak.measure, streak.streak_unit, streak.streak_count) == (None, "streak", "week", 4)
    returning = parse_definition(seg(EXAMPLES[5])).condition
    assert isinstance(returning, All)
    assert returning.children[0].period == Period("before", unit="months", n=12)  # type: ignore[union-attr]
    assert returning.children[1].period == Period("previous", unit="week", n=1)  # type: ignore[union-attr]
    assert parse_definition(seg(EXAMPLES[6])).condition == AttrCond("birthday", "anniversaryInDays", 1)
    idents = parse_definition(seg(EXAMPLES[7])).condition
    assert idents == All((IdentCond("pushToken", present=True), IdentCond("email", present=False)))
    browse = parse_definition(seg(EXAMPLES[9])).condition
    assert isinstance(browse, All)
    distinct = browse.children[0]
    assert isinstance(distinct, EventCond)
    assert (distinct.measure, distinct.param, distinct.cmp) == ("distinct", "product.productId", Cmp(gte=3.0))
    assert browse.children[1].cmp == Cmp(eq=0.0)  # type: ignore[union-attr]


def test_spec_section_1_segment() -> None:
    doc = {"name": "big-spenders-90d", "description": "Spent 1000 or more in the last 3 months",
           "purpose": "promo", "tags": ["vip"], "timezone": "UTC",
           "condition": {"event": {"type": "purchase", "period": {"last": {"months": 3}},
                                   "sum": {"param": "totalPrice", "gte": 1000}}}}
    defn = parse_definition(doc)
    assert (defn.name, defn.purpose, defn.tags, defn.timezone) == ("big-spenders-90d", "promo", ("vip",), "UTC")
    assert defn.condition == EventCond("purchase", Period("last", "months", 3), (), "sum",
                                       param="totalPrice", cmp=Cmp(gte=1000.0))
    assert definition_to_json(defn) == doc


# --- accepted forms --------------------------------------------------------------------

def test_static_segment_contacts_sorted_and_unique() -> None:
    defn = parse_definition({"name": "fixed", "contacts": [5, 3.0, 5, 1]})
    assert defn.condition is None and defn.contacts == (1, 3, 5)
    assert references(defn) == set() and paths(defn) == []
    assert parse_definition(definition_to_json(defn)) == defn


def test_defaults() -> None:
    defn = parse_definition({"name": "a.b-c_9", "condition": ev()})
    assert (defn.description, defn.purpose, defn.tags, defn.timezone) == ("", "", (), "UTC")
    assert parse_definition({"name": "x", "timezone": "", "condition": ev()}).timezone == "UTC"
    ident = parse_definition(seg({"identifier": {"kind": "email"}})).condition
    assert ident == IdentCond("email", present=True)


def test_named_contact_key_identifier() -> None:
    ident = parse_definition(seg({"identifier": {"kind": "loyaltyCard", "present": False}})).condition
    assert ident == IdentCond("key", key_name="loyaltyCard", present=False)
    back = definition_to_json(parse_definition(seg({"identifier": {"kind": "loyaltyCard"}})))
    assert back["condition"] == {"identifier": {"kind": "loyaltyCard", "present": True}}


def test_integral_floats_accepted_where_integers_are_required() -> None:
    cond = parse_definition(seg(ev(period={"last": {"days": 30.0}}))).condition
    assert isinstance(cond, EventCond) and cond.period == Period("last", "days", 30)
    assert isinstance(cond.period.n, int)
    streak = parse_definition(seg(ev(streak={"unit": "day", "count": 3.0}))).condition
    assert isinstance(streak, EventCond) and streak.streak_count == 3 and isinstance(streak.streak_count, int)
    attr = parse_definition(seg({"attribute": {"field": "b", "op": "anniversaryInDays", "value": 2.0}})).condition
    assert attr == AttrCond("b", "anniversaryInDays", 2) and isinstance(attr.value, int)  # type: ignore[union-attr]


def test_filter_values_are_typed() -> None:
    where = [
        {"param": "a", "op": "in", "value": [1, "x", True]},
        {"param": "b", "op": "between", "value": [1, 2]},
        {"param": "c", "op": "between", "value": ["2024-01-01", "2024-02-01"]},
        {"param": "d", "op": "exists"},
        {"param": "e", "op": "gte", "value": "45.5"},
        {"param": "items", "op": "any", "where": [
            {"param": "title", "op": "eq", "value": "sneakers"},
            {"param": "price", "op": "gt", "value": 100}]},
    ]
    cond = parse_definition(seg(ev(where=where))).condition
    assert isinstance(cond, EventCond)
    assert cond.where == (
        Filter("a", "in", (1.0, "x", True)),
        Filter("b", "between", (1.0, 2.0)),
        Filter("c", "between", ("2024-01-01", "2024-02-01")),
        Filter("d", "exists"),
        Filter("e", "gte", "45.5"),
        Filter("items", "any", None, (Filter("title", "eq", "sneakers"), Filter("price", "gt", 100.0))),
    )
    assert isinstance(cond.where[0].value[1], str) and cond.where[0].value[2] is True
    assert isinstance(cond.where[0].value[0], float)


def test_between_period_accepts_rfc3339_and_epoch_ms() -> None:
    period = {"between": {"from": "2024-01-01T01:00:00+01:00", "to": 1704153600000.0}}
    cond = parse_definition(seg(ev(period=period))).condition
    assert isinstance(cond, EventCond)
    assert cond.period == Period("between", from_ms=1704067200000, to_ms=1704153600000)
    assert definition_to_json(parse_definition(seg(ev(period=period))))["condition"]["event"]["period"] == {
        "between": {"from": "2024-01-01T00:00:00.000Z", "to": "2024-01-02T00:00:00.000Z"}}


def test_every_period_kind_parses() -> None:
    cases = {
        "last": ({"hours": 3}, Period("last", "hours", 3)),
        "before": ({"minutes": 5}, Period("before", "minutes", 5)),
        "today": ({}, Period("today")),
        "yesterday": ({}, Period("yesterday")),
        "thisWeek": ({}, Period("thisWeek")),
        "thisMonth": ({}, Period("thisMonth")),
        "previous": ({"unit": "month", "count": 2}, Period("previous", "month", 2)),
        "allTime": ({}, Period("allTime")),
    }
    for kind, (body, expected) in cases.items():
        cond = parse_definition(seg(ev(period={kind: body}))).condition
        assert isinstance(cond, EventCond) and cond.period == expected, kind


def test_every_measure_parses() -> None:
    for measure in ("sum", "avg", "min", "max", "distinct"):
        cond = parse_definition(seg(ev(**{measure: {"param": "p.q", "between": [1, 2]}}))).condition
        assert cond == EventCond("t", Period("today"), (), measure, param="p.q", cmp=Cmp(between=(1.0, 2.0)))
    cond = parse_definition(seg(ev(daysSinceLast={"gt": 3, "lte": 10}))).condition
    assert cond == EventCond("t", Period("today"), (), "daysSinceLast", cmp=Cmp(gt=3.0, lte=10.0))
    for measure in ("first", "last"):
        cond = parse_definition(seg(ev(**{measure: {}}))).condition
        assert cond == EventCond("t", Period("today"), (), measure)


def test_preview_may_have_no_name() -> None:
    assert parse_definition({"condition": ev()}, require_name=False).name == ""
    assert rejected({"condition": ev()}).field == "name"
    assert rejected({"name": "bad name", "condition": ev()}, require_name=False).field == "name"


def test_known_segment_is_consulted() -> None:
    known = {"vip"}
    doc = seg({"any": [{"segment": "vip"}, {"not": {"segment": "ghost"}}]})
    err = rejected(doc, known_segment=known.__contains__)
    assert err.field == "condition.any[1].not.segment" and "ghost" in err.reason
    known.add("ghost")
    defn = parse_definition(doc, known_segment=known.__contains__)
    assert references(defn) == {"vip", "ghost"}


def test_null_optional_fields_count_as_absent() -> None:
    defn = parse_definition({"name": "x", "description": None, "tags": None, "timezone": None,
                             "contacts": None, "condition": ev(period=None, where=None)})
    assert defn.timezone == "UTC" and defn.tags == ()
    assert isinstance(defn.condition, EventCond) and defn.condition.period == Period("today")


# --- rejected forms --------------------------------------------------------------------

BAD_ROOTS: list[tuple[Any, str]] = [
    ([], ""),
    ({"name": "x"}, "condition"),
    ({"name": "x", "condition": ev(), "contacts": [1]}, "condition"),
    ({"name": "", "condition": ev()}, "name"),
    ({"name": "a b", "condition": ev()}, "name"),
    ({"name": "x" * 129, "condition": ev()}, "name"),
    ({"name": "é", "condition": ev()}, "name"),
    ({"name": 7, "condition": ev()}, "name"),
    ({"name": "x", "colour": "red", "condition": ev()}, "colour"),
    ({"name": "x", "timezone": "Mars/Olympus", "condition": ev()}, "timezone"),
    ({"name": "x", "timezone": "localtime", "condition": ev()}, "timezone"),
    ({"name": "x", "timezone": 3, "condition": ev()}, "timezone"),
    ({"name": "x", "tags": "vip", "condition": ev()}, "tags"),
    ({"name": "x", "tags": ["ok", ""], "condition": ev()}, "tags[1]"),
    ({"name": "x", "description": 1, "condition": ev()}, "description"),
    ({"name": "x", "purpose": [], "condition": ev()}, "purpose"),
    ({"name": "x", "contacts": [1, 0]}, "contacts[1]"),
    ({"name": "x", "contacts": [1, -4]}, "contacts[1]"),
    ({"name": "x", "contacts": [2.5]}, "contacts[0]"),
    ({"name": "x", "contacts": [True]}, "contacts[0]"),
    ({"name": "x", "contacts": ["7"]}, "contacts[0]"),
    ({"name": "x", "contacts": 7}, "contacts"),
]

BAD_CONDITIONS: list[tuple[Any, str]] = [
    # condition objects
    ("event", "condition"),
    ({}, "condition"),
    ({"event": {"type": "t"}, "attribute": {"field": "f", "op": "exists"}}, "condition"),
    ({"every": []}, "condition.every"),
    ({"all": []}, "condition.all"),
    ({"any": {}}, "condition.any"),
    ({"all": [ev(), ev(), {"nope": 1}]}, "condition.all[2].nope"),
    ({"not": [ev()]}, "condition.not"),
    ({"segment": ""}, "condition.segment"),
    ({"segment": "has space"}, "condition.segment"),
    ({"segment": 5}, "condition.segment"),
    # events
    ({"event": {}}, "condition.event.type"),
    ({"event": {"type": ""}}, "condition.event.type"),
    ({"event": {"type": 3}}, "condition.event.type"),
    (ev(colour=1), "condition.event.colour"),
    (ev(count={"gte": 1}, sum={"param": "p", "gt": 1}), "condition.event.sum"),
    (ev(first={}, last={}), "condition.event.last"),
    (ev(count={}), "condition.event.count"),
    (ev(count=3), "condition.event.count"),
    (ev(count={"gte": "1"}), "condition.event.count.gte"),
    (ev(count={"gte": True}), "condition.event.count.gte"),
    (ev(count={"gte": float("nan")}), "condition.event.count.gte"),
    (ev(count={"gte": 1, "param": "p"}), "condition.event.count.param"),
    (ev(count={"between": [3]}), "condition.event.count.between"),
    (ev(count={"between": [3, 1]}), "condition.event.count.between"),
    (ev(count={"between": [1, "2"]}), "condition.event.count.between[1]"),
    (ev(count={"between": 2}), "condition.event.count.between"),
    (ev(count={"gte": 1, "about": 2}), "condition.event.count.about"),
    (ev(sum={"gte": 1}), "condition.event.sum.param"),
    (ev(avg={"param": "", "gte": 1}), "condition.event.avg.param"),
    (ev(max={"param": "a..b", "gte": 1}), "condition.event.max.param"),
    (ev(min={"param": "p"}), "condition.event.min"),
    (ev(distinct={"param": 4, "gte": 1}), "condition.event.distinct.param"),
    (ev(daysSinceLast={"param": "p", "gt": 1}), "condition.event.daysSinceLast.param"),
    (ev(first={"x": 1}), "condition.event.first.x"),
    (ev(last=True), "condition.event.last"),
    # streaks
    (ev(streak={"unit": "week", "count": 2}, period={"today": {}}), "condition.event.period"),
    (ev(streak={"unit": "year", "count": 2}), "condition.event.streak.unit"),
    (ev(streak={"unit": "day"}), "condition.event.streak.count"),
    (ev(streak={"unit": "day", "count": 0}), "condition.event.streak.count"),
    (ev(streak={"unit": "day", "count": 2.5}), "condition.event.streak.count"),
    (ev(streak={"unit": "day", "count": 1001}), "condition.event.streak.count"),
    (ev(streak={"unit": "day", "count": 2, "gap": 1}), "condition.event.streak.gap"),
    # periods
    (ev(period={}), "condition.event.period"),
    (ev(period={"today": {}, "yesterday": {}}), "condition.event.period"),
    (ev(period={"tomorrow": {}}), "condition.event.period.tomorrow"),
    (ev(period="today"), "condition.event.period"),
    (ev(period={"today": {"x": 1}}), "condition.event.period.today.x"),
    (ev(period={"allTime": []}), "condition.event.period.allTime"),
    (ev(period={"last": {}}), "condition.event.period.last"),
    (ev(period={"last": {"days": 1, "hours": 2}}), "condition.event.period.last"),
    (ev(period={"last": {"fortnights": 1}}), "condition.event.period.last.fortnights"),
    (ev(period={"last": {"days": 0}}), "condition.event.period.last.days"),
    (ev(period={"last": {"days": -3}}), "condition.event.period.last.days"),
    (ev(period={"last": {"days": 1.5}}), "condition.event.period.last.days"),
    (ev(period={"last": {"days": "7"}}), "condition.event.period.last.days"),
    (ev(period={"before": {"months": 0}}), "condition.event.period.before.months"),
    (ev(period={"previous": {"unit": "weeks", "count": 1}}), "condition.event.period.previous.unit"),
    (ev(period={"previous": {"unit": "week"}}), "condition.event.period.previous.count"),
    (ev(period={"previous": {"unit": "week", "count": 0}}), "condition.event.period.previous.count"),
    (ev(period={"previous": {"unit": "week", "count": 1, "x": 0}}), "condition.event.period.previous.x"),
    (ev(period={"between": {"from": "2024-01-01T00:00:00Z"}}), "condition.event.period.between.to"),
    (ev(period={"between": {"to": "2024-01-01T00:00:00Z"}}), "condition.event.period.between.from"),
    (ev(period={"between": {"from": "yesterday", "to": 5}}), "condition.event.period.between.from"),
    (ev(period={"between": {"from": "2024-01-01T00:00:00", "to": 5}}), "condition.event.period.between.from"),
    (ev(period={"between": {"from": 10, "to": 10}}), "condition.event.period.between.to"),
    (ev(period={"between": {"from": 10, "to": 5.5}}), "condition.event.period.between.to"),
    (ev(period={"between": {"from": 10, "to": 20, "tz": "UTC"}}), "condition.event.period.between.tz"),
    # filters
    (ev(where={"param": "p", "op": "exists"}), "condition.event.where"),
    (ev(where=[{"param": "p", "op": "exists"}, "p"]), "condition.event.where[1]"),
    (ev(where=[{"op": "exists"}]), "condition.event.where[0].param"),
    (ev(where=[{"param": "", "op": "exists"}]), "condition.event.where[0].param"),
    (ev(where=[{"param": "p"}]), "condition.event.where[0].op"),
    (ev(where=[{"param": "p", "op": "like", "value": "x"}]), "condition.event.where[0].op"),
    (ev(where=[{"param": "p", "op": "anniversaryInDays", "value": 1}]), "condition.event.where[0].op"),
    (ev(where=[{"param": "p", "op": "eq"}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "eq", "value": [1]}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "eq", "value": {"a": 1}}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "gt", "value": True}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "contains", "value": 3}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "in", "value": []}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "in", "value": "abc"}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "not_in", "value": [1, [2]]}]), "condition.event.where[0].value[1]"),
    (ev(where=[{"param": "p", "op": "between", "value": [1]}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "between", "value": [5, 1]}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "between", "value": [1, "z"]}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "exists", "value": 1}]), "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "eq", "value": 1, "where": [{"param": "q", "op": "exists"}]}]),
     "condition.event.where[0].where"),
    (ev(where=[{"param": "p", "op": "any"}]), "condition.event.where[0].where"),
    (ev(where=[{"param": "p", "op": "any", "where": []}]), "condition.event.where[0].where"),
    (ev(where=[{"param": "p", "op": "any", "value": 1, "where": [{"param": "q", "op": "exists"}]}]),
     "condition.event.where[0].value"),
    (ev(where=[{"param": "p", "op": "any", "where": [{"param": "q", "op": "eq"}]}]),
     "condition.event.where[0].where[0].value"),
    (ev(where=[{"param": "p", "op": "exists", "unit": "kg"}]), "condition.event.where[0].unit"),
    # attributes
    ({"attribute": {"op": "exists"}}, "condition.attribute.field"),
    ({"attribute": {"field": "", "op": "exists"}}, "condition.attribute.field"),
    ({"attribute": {"field": "f"}}, "condition.attribute.op"),
    ({"attribute": {"field": "f", "op": "any", "value": 1}}, "condition.attribute.op"),
    ({"attribute": {"field": "f", "op": "eq"}}, "condition.attribute.value"),
    ({"attribute": {"field": "f", "op": "anniversaryInDays", "value": 367}}, "condition.attribute.value"),
    ({"attribute": {"field": "f", "op": "anniversaryInDays", "value": -1}}, "condition.attribute.value"),
    ({"attribute": {"field": "f", "op": "anniversaryInDays", "value": 1.5}}, "condition.attribute.value"),
    ({"attribute": {"field": "f", "op": "anniversaryInDays", "value": "1"}}, "condition.attribute.value"),
    ({"attribute": {"field": "f", "op": "exists", "where": []}}, "condition.attribute.where"),
    # identifiers
    ({"identifier": {}}, "condition.identifier.kind"),
    ({"identifier": {"kind": ""}}, "condition.identifier.kind"),
    ({"identifier": {"kind": "email", "present": "yes"}}, "condition.identifier.present"),
    ({"identifier": {"kind": "email", "present": 1}}, "condition.identifier.present"),
    ({"identifier": {"kind": "email", "value": "a@b"}}, "condition.identifier.value"),
    # nesting
    ({"any": [ev(), {"all": [ev(), {"not": ev(period={"last": {"days": 0}})}]}]},
     "condition.any[1].all[1].not.event.period.last.days"),
    ({"all": [ev(), ev(), ev(period={"last": {"weeks": 2}, "today": {}})]}, "condition.all[2].event.period"),
]


@pytest.mark.parametrize(("doc", "path"), BAD_ROOTS, ids=[p or "root" for _, p in BAD_ROOTS])
def test_bad_definition_names_its_path(doc: Any, path: str) -> None:
    err = rejected(doc)
    assert err.field == path, err
    assert err.reason


@pytest.mark.parametrize(("cond", "path"), BAD_CONDITIONS, ids=[f"{i}:{p}" for i, (_, p) in enumerate(BAD_CONDITIONS)])
def test_bad_condition_names_its_path(cond: Any, path: str) -> None:
    err = rejected(seg(cond))
    assert err.field == path, err
    assert err.reason


# --- limits ----------------------------------------------------------------------------

def test_depth_limit_at_the_edge() -> None:
    # the root condition is level 1: MAX_DEPTH - 1 nots around a leaf is MAX_DEPTH levels
    assert MAX_DEPTH == 16
    ok = parse_definition(seg(nested_not(MAX_DEPTH - 1)))
    assert max(path.count(".not") for path, _ in paths(ok)) == MAX_DEPTH - 1
    err = rejected(seg(nested_not(MAX_DEPTH)))
    assert err.field == "condition" + ".not" * MAX_DEPTH
    assert "16" in err.reason


def test_depth_limit_with_lists() -> None:
    node: dict[str, Any] = ev()
    for level in range(MAX_DEPTH):  # MAX_DEPTH composites around the leaf: one level too many
        node = {"all": [ev(), node]} if level % 2 else {"any": [node]}
    err = rejected(seg(node))
    assert err.field.startswith("condition.all[1].any[0]") and err.field.count("[") == MAX_DEPTH


def test_condition_count_limit_at_the_edge() -> None:
    assert MAX_CONDITIONS == 256
    ok = parse_definition(seg({"any": [ev() for _ in range(MAX_CONDITIONS - 1)]}))
    assert len(paths(ok)) == MAX_CONDITIONS
    err = rejected(seg({"any": [ev() for _ in range(MAX_CONDITIONS)]}))
    assert err.field == f"condition.any[{MAX_CONDITIONS - 1}]"


def test_condition_count_includes_composites() -> None:
    # 85 groups of not(not(leaf)) = 255 conditions, plus the root any = 256
    group = {"not": {"not": ev()}}
    assert len(paths(parse_definition(seg({"any": [group] * 85})))) == 256
    err = rejected(seg({"any": [group] * 85 + [ev()]}))
    assert err.field == "condition.any[85]"
    err = rejected(seg({"any": [group] * 86}))
    assert err.field == "condition.any[85]"


def test_deep_any_filters_are_bounded() -> None:
    leaf: dict[str, Any] = {"param": "v", "op": "exists"}
    for _ in range(16):
        leaf = {"param": "p", "op": "any", "where": [leaf]}
    err = rejected(seg(ev(where=[leaf])))
    assert err.field == "condition.event.where[0]" + ".where[0]" * 16


def test_huge_documents_fail_fast() -> None:
    err = rejected(seg(nested_not(5000)))
    assert err.field.count(".not") == MAX_DEPTH
    err = rejected(seg({"all": [ev()] * 100_000}))
    assert err.field == "condition.all[255]"


# --- paths, references, cycles ---------------------------------------------------------

def test_paths_are_pre_order_and_address_leaves_by_key() -> None:
    defn = parse_definition(seg({"all": [ev(), {"not": {"segment": "x"}},
                                         {"any": [{"attribute": {"field": "f", "op": "exists"}},
                                                  {"identifier": {"kind": "email"}}]}]}))
    assert [p for p, _ in paths(defn)] == [
        "condition", "condition.all[0].event", "condition.all[1]", "condition.all[1].not.segment",
        "condition.all[2]", "condition.all[2].any[0].attribute", "condition.all[2].any[1].identifier"]
    kinds = [type(n) for _, n in paths(defn)]
    assert kinds == [All, EventCond, Not, SegmentRef, AnyOf, AttrCond, IdentCond]


def test_references_collects_every_segment() -> None:
    defn = parse_definition(seg({"any": [{"segment": "a"}, {"all": [{"not": {"segment": "b"}}, {"segment": "a"}]}]}))
    assert references(defn) == {"a", "b"}
    assert references(parse_definition(seg(ev()))) == set()


def graph(edges: dict[str, set[str]]) -> Any:
    return lambda name: edges.get(name, set())


def test_find_cycle() -> None:
    assert find_cycle("a", graph({"a": {"b"}, "b": {"c"}})) is None
    assert find_cycle("a", graph({"a": {"a"}})) == ["a", "a"]
    assert find_cycle("a", graph({"a": {"b"}, "b": {"c"}, "c": {"a"}})) == ["a", "b", "c", "a"]
    # diamond without a cycle
    assert find_cycle("a", graph({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()})) is None
    # a cycle further down the graph is reported from where it starts
    assert find_cycle("a", graph({"a": {"b"}, "b": {"c"}, "c": {"b"}})) == ["b", "c", "b"]


def test_find_cycle_on_long_chains_does_not_recurse() -> None:
    edges = {f"s{i}": {f"s{i + 1}"} for i in range(5000)}
    assert find_cycle("s0", graph(edges)) is None
    edges["s5000"] = {"s0"}
    cycle = find_cycle("s0", graph(edges))
    assert cycle is not None and cycle[0] == cycle[-1] == "s0" and len(cycle) == 5002


# --- round trips -----------------------------------------------------------------------

def test_canonical_json_is_stable() -> None:
    for cond in EXAMPLES:
        once = definition_to_json(parse_definition(seg(cond)))
        assert definition_to_json(parse_definition(once)) == once
        assert json.loads(json.dumps(once)) == once


def test_round_trip_through_the_proto_json_mapping() -> None:
    json_format = pytest.importorskip("google.protobuf.json_format")
    pb = pytest.importorskip("server.pb.segmentd_pb2")
    docs = [seg(c, tags=["a"], timezone="Europe/London") for c in EXAMPLES]
    docs.append(seg(ev(period={"between": {"from": "2024-01-01T00:00:00Z", "to": 1704153600000}},
                       where=[{"param": "items", "op": "any",
                               "where": [{"param": "p", "op": "in", "value": [1, "a", True]}]}])))
    docs.append({"name": "static", "contacts": [3, 1]})
    for doc in docs:
        defn = parse_definition(doc)
        wire = json_format.MessageToDict(json_format.ParseDict(definition_to_json(defn), pb.Segment()))
        assert parse_definition(wire) == defn


_names = st.sampled_from(["a", "b.c", "x-y_z"])
_scalars = st.one_of(st.text(max_size=5), st.integers(-1000, 1000), st.booleans(),
                     st.floats(allow_nan=False, allow_infinity=False, width=32))


def _filters(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    plain = st.one_of(
        st.builds(lambda p, op, v: {"param": p, "op": op, "value": v}, _names, st.sampled_from(["eq", "ne"]), _scalars),
        st.builds(lambda p, v: {"param": p, "op": "in", "value": v}, _names, st.lists(_scalars, min_size=1, max_size=3)),
        st.builds(lambda p, op: {"param": p, "op": op}, _names, st.sampled_from(["exists", "not_exists"])),
        st.builds(lambda p, v: {"param": p, "op": "starts_with", "value": v}, _names, st.text(max_size=4)),
    )
    if depth == 0:
        return plain
    nested = st.builds(lambda p, w: {"param": p, "op": "any", "where": w}, _names,
                       st.lists(_filters(depth - 1), min_size=1, max_size=2))
    return st.one_of(plain, nested)


_periods = st.one_of(
    st.builds(lambda k, u, n: {k: {u: n}}, st.sampled_from(["last", "before"]),
              st.sampled_from(["minutes", "hours", "days", "weeks", "months"]), st.integers(1, 10**6)),
    st.sampled_from([{"today": {}}, {"yesterday": {}}, {"thisWeek": {}}, {"thisMonth": {}}, {"allTime": {}}]),
    st.builds(lambda u, n: {"previous": {"unit": u, "count": n}}, st.sampled_from(["day", "week", "month"]),
              st.integers(1, 50)),
    st.builds(lambda a, d: {"between": {"from": a, "to": a + d}}, st.integers(0, 2**41), st.integers(1, 2**30)),
)
_measures = st.one_of(
    st.just({}),
    st.builds(lambda v: {"count": {"gte": v}}, st.integers(0, 9)),
    st.builds(lambda m, p, a, b: {m: {"param": p, "between": [min(a, b), max(a, b)]}},
              st.sampled_from(["sum", "avg", "min", "max", "distinct"]), _names,
              st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)),
    st.sampled_from([{"first": {}}, {"last": {}}, {"daysSinceLast": {"lt": 3, "ne": 1}}]),
)
_leaves = st.one_of(
    st.builds(lambda t, per, w, m: {"event": {"type": t, "period": per, "where": w, **m}},
              st.sampled_from(["purchase", "view"]), _periods, st.lists(_filters(2), max_size=3), _measures),
    st.builds(lambda u, n: {"event": {"type": "x", "streak": {"unit": u, "count": n}}},
              st.sampled_from(["day", "week", "month"]), st.integers(1, 30)),
    st.builds(lambda f, d: {"attribute": {"field": f, "op": "anniversaryInDays", "value": d}}, _names,
              st.integers(0, 366)),
    st.builds(lambda f, v: {"attribute": {"field": f, "op": "between", "value": sorted(v)}}, _names,
              st.lists(st.integers(-5, 5), min_size=2, max_size=2)),
    st.builds(lambda k, pr: {"identifier": {"kind": k, "present": pr}},
              st.sampled_from(["email", "phone", "pushToken", "externalId", "card"]), st.booleans()),
    st.builds(lambda n: {"segment": n}, _names),
)
_conditions = st.recursive(
    _leaves,
    lambda kids: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, kids),
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(_conditions, st.sampled_from(["UTC", "Europe/London", "Australia/Lord_Howe"]))
def test_generated_definitions_round_trip(cond: dict[str, Any], tz: str) -> None:
    defn = parse_definition(seg(cond, timezone=tz))
    once = definition_to_json(defn)
    assert parse_definition(once) == defn
    assert definition_to_json(parse_definition(once)) == once
    assert references(defn) == {n.name for _, n in paths(defn) if isinstance(n, SegmentRef)}


def test_between_instants_round_trip_at_the_ends_of_the_calendar() -> None:
    period = {"between": {"from": "0001-01-01T00:00:00Z", "to": "0999-05-01T10:00:00.1239+00:00"}}
    defn = parse_definition(seg(ev(period=period)))
    written = definition_to_json(defn)["condition"]["event"]["period"]["between"]
    assert written == {"from": "0001-01-01T00:00:00.000Z", "to": "0999-05-01T10:00:00.123Z"}
    assert parse_definition(definition_to_json(defn)) == defn
    assert rejected(seg(ev(period={"between": {"from": "0001-01-01T00:00:00+01:00", "to": 5}}))).field == \
        "condition.event.period.between.from"


def test_hand_built_definitions_serialise() -> None:
    cond = All((EventCond("t", Period("last", "days", 2), (Filter("n", "in", (1, "a")),), "count", cmp=Cmp(gte=2)),
                AttrCond("age", "between", (18, 30))))
    doc = definition_to_json(Definition("h", "", "", (), "UTC", cond, None))
    assert doc["condition"] == {"all": [
        {"event": {"type": "t", "period": {"last": {"days": 2}}, "where": [{"param": "n", "op": "in", "value": [1, "a"]}],
                   "count": {"gte": 2}}},
        {"attribute": {"field": "age", "op": "between", "value": [18, 30]}}]}
    assert parse_definition(doc).condition == cond


def test_paths_read_by_event_conditions_and_by_type() -> None:
    buy = parse_definition(seg({"all": [
        {"event": {"type": "purchase", "sum": {"param": "totalPrice", "gte": 10}, "where": [
            {"param": "city", "op": "eq", "value": "London"},
            {"param": "items", "op": "any", "where": [{"param": "price", "op": "gt", "value": 5}]}]}},
        {"not": {"event": {"type": "cart", "count": {"gte": 1}}}},
        {"attribute": {"field": "city", "op": "eq", "value": "Paris"}}]}))
    view = parse_definition(seg({"any": [
        {"event": {"type": "purchase", "distinct": {"param": "items.title", "gte": 2}}},
        {"event": {"type": "view", "where": [{"param": "product.price", "op": "exists"}]}}]}))
    conds = [node for _, node in paths(buy) if isinstance(node, EventCond)]
    # an `any` filter's element paths ("price") lie under its own ("items")
    assert [paths_read(c) for c in conds] == [frozenset({"totalPrice", "city", "items"}), frozenset()]
    assert paths_by_type([buy, view]) == {
        "purchase": frozenset({"totalPrice", "city", "items", "items.title"}),
        "cart": frozenset(),
        "view": frozenset({"product.price"}),
    }

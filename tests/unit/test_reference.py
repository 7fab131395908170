"""The reference evaluator on small cases whose answers are argued from SEGMENTS.md."""

from __future__ import annotations

import datetime as dt

import pytest

from tests import reference as ref
from tests.reference import RefContact, RefEvent

UTC = dt.timezone.utc


def ms(text: str) -> int:
    """Epoch ms of an ISO 8601 instant such as "2026-03-11T12:00:00Z"."""
    return ref.parse_instant(text)


# Wednesday 11 March 2026, noon UTC.
NOW = ms("2026-03-11T12:00:00Z")


def contacts(n: int, **extra: dict) -> dict[int, RefContact]:
    """Contacts 1..n, each with an externalId; `extra[cN]` updates contact N's attributes."""
    book = {cid: RefContact(cid, {"externalId": [f"X-{cid}"]}, {}, 0, "Api") for cid in range(1, n + 1)}
    for name, attrs in extra.items():
        contact = book[int(name[1:])]
        for key, value in attrs.items():
            setattr(contact, key, value)
    return book


def members(condition: dict, events: list[RefEvent], book: dict[int, RefContact], now: int = NOW,
            tz: str = "UTC", segments: dict | None = None) -> set[int]:
    return ref.evaluate({"name": "t", "timezone": tz, "condition": condition}, events, book, now, segments)


def ev(cid: int, when: str | int, etype: str = "purchase", **params) -> RefEvent:
    ts = when if isinstance(when, int) else ms(when)
    return RefEvent(etype, cid, ts, {"contactId": str(cid), **params})


# ------------------------------------------------------------------ values_at


def test_values_at_follows_objects_and_passes_arrays():
    params = {
        "product": {"price": 45.5, "tags": ["a", "b"]},
        "items": [{"title": "sneakers", "price": 120}, {"title": "jacket"}, {"title": None}],
        "empty": [],
        "gone": None,
        "nested": [[1, 2], [3]],
    }
    assert ref.values_at(params, "product.price") == [45.5]
    assert ref.values_at(params, "product.tags") == ["a", "b"]
    assert ref.values_at(params, "items.title") == ["sneakers", "jacket"]  # null is absent
    assert ref.values_at(params, "items.price") == [120]
    assert ref.values_at(params, "product") == [{"price": 45.5, "tags": ["a", "b"]}]  # objects are values
    assert ref.values_at(params, "empty") == []  # an empty array has no values
    assert ref.values_at(params, "gone") == []
    assert ref.values_at(params, "missing") == []
    assert ref.values_at(params, "product.price.deeper") == []
    assert ref.values_at(params, "nested") == [1, 2, 3]
    assert ref.values_at(params, "Product.price") == []  # names match exactly


# ------------------------------------------------------------------ filters and typing


def holds(op: str, value, x_params: dict, param: str = "x", where=None) -> bool:
    flt = {"param": param, "op": op}
    if where is not None:
        flt["where"] = where
    elif op not in ("exists", "not_exists"):
        flt["value"] = value
    return ref.filter_holds(flt, x_params)


def test_numeric_filter_values_take_numbers_and_numeric_strings_only():
    assert holds("eq", 45.5, {"x": "45.5"})
    assert holds("eq", 45.5, {"x": 45.5})
    assert holds("eq", 3, {"x": 3.0})  # 3 and 3.0 are the same number
    assert holds("gt", 10, {"x": "10.5"})
    assert not holds("eq", 1, {"x": True})  # booleans are not numbers
    assert not holds("eq", 45, {"x": "forty-five"})
    assert not holds("ne", 45, {"x": "forty-five"})  # another kind fails every op, ne included
    assert not holds("lt", 45, {"x": {"a": 1}})
    assert holds("ne", 45, {"x": "44"})


def test_numeric_text_is_a_plain_finite_number():
    for text in ("45.5", "-3", "+2", "0.25", ".5", "5.", "1e3", "1E-2"):
        assert ref.as_number(text) == float(text), text
    for text in ("", "abc", "1_000", "1,000", "Infinity", "NaN", "inf", "0x10", " 12", "12 ", "\uff11\uff12", "1e999"):
        assert ref.as_number(text) is None, text
    assert ref.as_number(True) is None
    assert ref.as_number(7) == 7.0


def test_string_filter_values_take_strings_only_case_sensitively():
    assert holds("eq", "London", {"x": "London"})
    assert not holds("eq", "London", {"x": "london"})
    assert holds("ne", "London", {"x": "london"})
    assert not holds("eq", "10", {"x": 10})  # a string value compares with strings only
    assert not holds("ne", "10", {"x": 10})
    assert holds("gt", "b", {"x": "c"})
    assert not holds("gt", "b", {"x": "B"})  # ordered by character code
    assert holds("lte", "b", {"x": "abc"})


def test_boolean_filter_values_take_booleans_only():
    assert holds("eq", True, {"x": True})
    assert not holds("eq", True, {"x": 1})
    assert not holds("eq", True, {"x": "true"})
    assert holds("ne", True, {"x": False})
    assert not holds("ne", True, {"x": 0})


def test_missing_values_fail_every_op_except_not_exists():
    for op, value in [("eq", 1), ("ne", 1), ("ne", "a"), ("gt", 0), ("lt", 0), ("between", [0, 1]),
                      ("in", [1]), ("not_in", [1]), ("contains", "a"), ("not_contains", "a"),
                      ("starts_with", "a"), ("ends_with", "a")]:
        assert not holds(op, value, {}), op
        assert not holds(op, value, {"x": None}), op
        assert not holds(op, value, {"x": []}), op
    assert not holds("exists", None, {"x": None})
    assert holds("not_exists", None, {"x": None})
    assert holds("not_exists", None, {"x": []})
    assert holds("exists", None, {"x": {"any": "object"}})
    assert holds("exists", None, {"x": False})
    assert not holds("not_exists", None, {"x": 0})


def test_between_is_inclusive_and_typed():
    assert holds("between", [1, 3], {"x": 1})
    assert holds("between", [1, 3], {"x": "3"})
    assert not holds("between", [1, 3], {"x": 3.25})
    assert holds("between", ["b", "d"], {"x": "c"})
    assert not holds("between", ["b", "d"], {"x": 2})


def test_in_and_not_in():
    assert holds("in", ["a", "b"], {"x": "b"})
    assert not holds("in", ["a", "b"], {"x": "c"})
    assert holds("not_in", ["a", "b"], {"x": "c"})
    assert not holds("not_in", ["a", "b"], {"x": 3})  # another kind
    assert holds("in", [1, 2], {"x": "2.0"})
    assert holds("not_in", [1, 2], {"x": "2.5"})
    assert holds("in", [True], {"x": True})
    assert not holds("in", [True], {"x": 1})


def test_substring_ops_take_strings_only():
    assert holds("contains", "ea", {"x": "sneakers"})
    assert not holds("contains", "EA", {"x": "sneakers"})
    assert holds("not_contains", "z", {"x": "sneakers"})
    assert not holds("not_contains", "z", {"x": 5})
    assert holds("starts_with", "sn", {"x": "sneakers"})
    assert holds("ends_with", "ers", {"x": "sneakers"})
    assert not holds("ends_with", "5", {"x": 45})
    assert holds("contains", "5.", {"x": "45.5"})


def test_several_values_hold_when_one_does():
    params = {"items": [{"title": "jacket", "price": 300}, {"title": "sneakers", "price": 50}]}
    assert holds("eq", "sneakers", params, "items.title")
    assert holds("ne", "sneakers", params, "items.title")  # the jacket is not sneakers
    assert holds("gt", 100, params, "items.price")
    assert not holds("gt", 500, params, "items.price")
    assert holds("not_in", ["jacket"], params, "items.title")
    assert not holds("not_exists", None, params, "items.title")
    assert holds("not_exists", None, params, "items.colour")


def test_any_ties_nested_filters_to_one_element():
    cheap_sneakers = {"items": [{"title": "sneakers", "price": 50}, {"title": "jacket", "price": 300}]}
    dear_sneakers = {"items": [{"title": "sneakers", "price": 150}]}
    where = [{"param": "title", "op": "eq", "value": "sneakers"}, {"param": "price", "op": "gt", "value": 100}]
    assert not holds("any", None, cheap_sneakers, "items", where)
    assert holds("any", None, dear_sneakers, "items", where)
    # two separate filters would accept the cheap sneakers beside the expensive jacket
    assert holds("eq", "sneakers", cheap_sneakers, "items.title") and holds("gt", 100, cheap_sneakers, "items.price")
    # an object at the path is its own single element
    product = {"product": {"productId": "P1", "price": "45.5"}}
    assert holds("any", None, product, "product", [{"param": "price", "op": "lt", "value": 50},
                                                  {"param": "productId", "op": "eq", "value": "P1"}])
    # nested not_exists is relative to the element; no element at all never holds
    assert holds("any", None, cheap_sneakers, "items", [{"param": "colour", "op": "not_exists"}])
    assert not holds("any", None, {}, "items", [{"param": "colour", "op": "not_exists"}])
    assert not holds("any", None, {"items": []}, "items", [{"param": "colour", "op": "not_exists"}])


# ------------------------------------------------------------------ periods


def interval(period: dict, now: int = NOW, tz: str = "UTC") -> tuple[int, int]:
    return ref.period_interval(period, now, tz)


def test_fixed_duration_periods():
    assert interval({"last": {"minutes": 5}}) == (NOW - 300_000, NOW + 1)
    assert interval({"last": {"hours": 2}}) == (NOW - 7_200_000, NOW + 1)
    assert interval({"last": {"days": 30}}) == (NOW - 30 * ref.DAY_MS, NOW + 1)
    assert interval({"last": {"weeks": 1}}) == (NOW - 7 * ref.DAY_MS, NOW + 1)
    assert interval({"before": {"days": 30}}) == (ref.NO_LOWER_BOUND, NOW - 30 * ref.DAY_MS)
    assert interval({"before": {"hours": 1}}) == (ref.NO_LOWER_BOUND, NOW - 3_600_000)
    assert interval({"allTime": {}}) == (ref.NO_LOWER_BOUND, NOW + 1)


def test_calendar_periods_in_utc():
    # now is Wednesday 2026-03-11 12:00 UTC
    assert interval({"today": {}}) == (ms("2026-03-11T00:00:00Z"), NOW + 1)
    assert interval({"yesterday": {}}) == (ms("2026-03-10T00:00:00Z"), ms("2026-03-11T00:00:00Z"))
    assert interval({"thisWeek": {}}) == (ms("2026-03-09T00:00:00Z"), NOW + 1)  # Monday
    assert interval({"thisMonth": {}}) == (ms("2026-03-01T00:00:00Z"), NOW + 1)
    assert interval({"previous": {"unit": "day", "count": 2}}) == (ms("2026-03-09T00:00:00Z"), ms("2026-03-11T00:00:00Z"))
    assert interval({"previous": {"unit": "week", "count": 1}}) == (ms("2026-03-02T00:00:00Z"), ms("2026-03-09T00:00:00Z"))
    assert interval({"previous": {"unit": "month", "count": 3}}) == (ms("2025-12-01T00:00:00Z"), ms("2026-03-01T00:00:00Z"))
    assert interval({"last": {"months": 1}}) == (ms("2026-02-11T12:00:00Z"), NOW + 1)
    assert interval({"before": {"months": 12}}) == (ref.NO_LOWER_BOUND, ms("2025-03-11T12:00:00Z"))
    assert interval({"between": {"from": ms("2026-01-01T00:00:00Z"), "to": "2026-02-01T00:00:00Z"}}) == (
        ms("2026-01-01T00:00:00Z"), ms("2026-02-01T00:00:00Z"))


def test_last_months_clamps_the_day():
    now = ms("2026-03-31T08:30:00Z")
    assert interval({"last": {"months": 1}}, now) == (ms("2026-02-28T08:30:00Z"), now + 1)
    assert interval({"last": {"months": 13}}, now) == (ms("2025-02-28T08:30:00Z"), now + 1)
    leap = ms("2024-03-31T08:30:00Z")
    assert interval({"last": {"months": 1}}, leap) == (ms("2024-02-29T08:30:00Z"), leap + 1)


def test_days_follow_the_zone_across_dst():
    # London springs forward on Sunday 2026-03-29 at 01:00 UTC: that day has 23 hours.
    now = ms("2026-03-30T12:00:00Z")  # Monday, 13:00 BST
    tz = "Europe/London"
    assert interval({"today": {}}, now, tz) == (ms("2026-03-29T23:00:00Z"), now + 1)
    assert interval({"yesterday": {}}, now, tz) == (ms("2026-03-29T00:00:00Z"), ms("2026-03-29T23:00:00Z"))
    assert interval({"thisWeek": {}}, now, tz) == (ms("2026-03-29T23:00:00Z"), now + 1)
    assert interval({"previous": {"unit": "week", "count": 1}}, now, tz) == (
        ms("2026-03-23T00:00:00Z"), ms("2026-03-29T23:00:00Z"))  # 7 days minus one hour
    # "last 1 days" is a fixed 24 hours, not a calendar day
    assert interval({"last": {"days": 1}}, now, tz) == (now - ref.DAY_MS, now + 1)
    # a month back keeps the local time of day: 13:00 GMT on 28 Feb is 13:00 UTC
    assert interval({"last": {"months": 1}}, now, tz) == (ms("2026-02-28T13:00:00Z"), now + 1)
    # New York falls back on Sunday 2026-11-01: that day has 25 hours
    ny = "America/New_York"
    now = ms("2026-11-02T15:00:00Z")  # Monday 10:00 EST
    assert interval({"yesterday": {}}, now, ny) == (ms("2026-11-01T04:00:00Z"), ms("2026-11-02T05:00:00Z"))
    assert interval({"thisMonth": {}}, now, ny) == (ms("2026-11-01T04:00:00Z"), now + 1)


def test_half_hour_zone_and_date_line_of_today():
    # 20:00 UTC on 10 March is already 11 March 01:30 in Kolkata
    now = ms("2026-03-10T20:00:00Z")
    assert interval({"today": {}}, now, "Asia/Kolkata") == (ms("2026-03-10T18:30:00Z"), now + 1)
    assert interval({"today": {}}, now, "UTC") == (ms("2026-03-10T00:00:00Z"), now + 1)


def test_streak_units_are_previous_complete_units():
    assert ref.streak_units("day", 2, NOW, "UTC") == [
        (ms("2026-03-10T00:00:00Z"), ms("2026-03-11T00:00:00Z")),
        (ms("2026-03-09T00:00:00Z"), ms("2026-03-10T00:00:00Z"))]
    assert ref.streak_units("week", 1, NOW, "UTC") == [(ms("2026-03-02T00:00:00Z"), ms("2026-03-09T00:00:00Z"))]
    assert ref.streak_units("month", 2, NOW, "UTC") == [
        (ms("2026-02-01T00:00:00Z"), ms("2026-03-01T00:00:00Z")),
        (ms("2026-01-01T00:00:00Z"), ms("2026-02-01T00:00:00Z"))]


# ------------------------------------------------------------------ measures


def test_count_includes_contacts_without_events():
    book = contacts(3)
    events = [ev(1, "2026-03-11T09:00:00Z"), ev(1, "2026-03-11T10:00:00Z"), ev(2, "2026-03-11T11:00:00Z")]
    assert members({"event": {"type": "purchase"}}, events, book) == {1, 2}  # default: today, count >= 1
    assert members({"event": {"type": "purchase", "count": {"gte": 2}}}, events, book) == {1}
    assert members({"event": {"type": "purchase", "count": {"eq": 0}}}, events, book) == {3}
    assert members({"event": {"type": "purchase", "count": {"between": [1, 1]}}}, events, book) == {2}
    assert members({"event": {"type": "purchase", "count": {"gt": 0, "lt": 2}}}, events, book) == {2}
    assert members({"event": {"type": "refund", "count": {"eq": 0}}}, events, book) == {1, 2, 3}


def test_events_after_now_do_not_exist():
    book = contacts(2)
    events = [ev(1, NOW + 1), ev(2, NOW)]
    cond = {"event": {"type": "purchase", "period": {"allTime": {}}}}
    assert members(cond, events, book) == {2}
    assert members(cond, events, book, now=NOW + 1) == {1, 2}
    assert members({"event": {"type": "purchase", "period": {"allTime": {}}, "last": {}}}, events, book) == {2}


def test_sum_avg_min_max_over_array_elements_and_numeric_strings():
    book = contacts(4)
    today = "2026-03-11T08:00:00Z"
    events = [
        ev(1, today, items=[{"price": 100}, {"price": "50.5"}, {"price": "n/a"}, {"price": True}]),
        ev(1, today, items=[{"price": 10}]),
        ev(2, today, items=[{"title": "no price"}]),
        ev(3, today, items=[{"price": -5}]),
    ]

    def m(measure, **cmp):
        return members({"event": {"type": "purchase", measure: {"param": "items.price", **cmp}}}, events, book)

    assert m("sum", eq=160.5) == {1}
    assert m("sum", eq=0) == {2, 4}  # no values: 0, with or without events
    assert m("avg", eq=53.5) == {1}  # (100 + 50.5 + 10) / 3
    assert m("avg", lte=0) == {3}  # contacts with no values do not hold
    assert m("min", eq=10) == {1}
    assert m("max", gte=-5) == {1, 3}
    assert m("max", lt=1000) == {1, 3}


def test_distinct_counts_kind_and_value():
    book = contacts(3)
    today = "2026-03-11T08:00:00Z"
    events = [
        ev(1, today, tag=1), ev(1, today, tag=1.0), ev(1, today, tag="1"), ev(1, today, tag=True),
        ev(2, today, tag=["a", "b", "a"]), ev(2, today, tag=None),
    ]

    def m(**cmp):
        return members({"event": {"type": "purchase", "distinct": {"param": "tag", **cmp}}}, events, book)

    assert m(eq=3) == {1}  # 1 == 1.0; "1" and true are other values
    assert m(eq=2) == {2}
    assert m(eq=0) == {3}


def test_first_and_last_look_at_all_time_then_the_period():
    book = contacts(3)
    events = [
        ev(1, "2026-03-11T08:00:00Z"),                       # only today
        ev(2, "2025-01-01T00:00:00Z"), ev(2, "2026-03-11T09:00:00Z"),  # old and today
        ev(3, "2025-01-01T00:00:00Z"),                       # only old
    ]
    assert members({"event": {"type": "purchase", "first": {}}}, events, book) == {1}
    assert members({"event": {"type": "purchase", "last": {}}}, events, book) == {1, 2}
    assert members({"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {}}}, events, book) == {3}
    assert members({"event": {"type": "purchase", "period": {"before": {"days": 30}}, "first": {}}}, events, book) == {2, 3}
    # filters decide which events are "such" events
    events.append(ev(3, "2026-03-11T10:00:00Z", city="Paris"))
    cond = {"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {},
                      "where": [{"param": "city", "op": "not_exists"}]}}
    assert members(cond, events, book) == {3}


def test_days_since_last_floors_whole_days():
    book = contacts(4)
    events = [
        ev(1, NOW - ref.DAY_MS + 1),         # 0 days (23:59:59.999 ago)
        ev(2, NOW - ref.DAY_MS),             # exactly 1 day
        ev(3, NOW - 3 * ref.DAY_MS - 5), ev(3, NOW - 40 * ref.DAY_MS),
    ]
    def m(**cmp):
        return members({"event": {"type": "purchase", "daysSinceLast": cmp}}, events, book)
    assert m(eq=0) == {1}
    assert m(eq=1) == {2}
    assert m(eq=3) == {3}
    assert m(gte=0) == {1, 2, 3}  # no such event: does not hold


def test_streaks_need_every_previous_complete_unit():
    book = contacts(4)
    events = [
        # 1: each of the last 3 days, nothing today
        ev(1, "2026-03-10T23:59:59Z"), ev(1, "2026-03-09T00:00:00Z"), ev(1, "2026-03-08T12:00:00Z"),
        # 2: today and two previous days only
        ev(2, "2026-03-11T01:00:00Z"), ev(2, "2026-03-10T01:00:00Z"), ev(2, "2026-03-09T01:00:00Z"),
        # 3: weeks of 2 Mar and 23 Feb, and a gap in the week of 16 Feb
        ev(3, "2026-03-08T23:00:00Z"), ev(3, "2026-02-23T00:00:00Z"), ev(3, "2026-02-14T00:00:00Z"),
    ]
    def m(unit, count):
        return members({"event": {"type": "purchase", "streak": {"unit": unit, "count": count}}}, events, book)
    assert m("day", 3) == {1}
    assert m("day", 2) == {1, 2}
    assert m("week", 1) == {1, 3}  # contact 1's 8 March is the week of 2 March; 9 and 10 March are this week
    assert m("week", 2) == {3}
    assert m("week", 3) == set()
    assert m("month", 1) == {3}


# ------------------------------------------------------------------ attributes and identifiers


def test_attributes_with_typing_and_dates():
    book = contacts(4,
                    c1={"fields": {"city": "London", "score": 12, "birthday": "1990-03-12", "vip": True}},
                    c2={"fields": {"city": "london", "score": "7.5", "birthday": "1985-12-01"}},
                    c3={"fields": {"score": "high"}, "source": "Import"},
                    c4={"created_at_ms": NOW - 10})
    def m(field, op, value=None):
        spec = {"field": field, "op": op}
        if op not in ("exists", "not_exists"):
            spec["value"] = value
        return members({"attribute": spec}, [], book)
    assert m("city", "eq", "London") == {1}
    assert m("city", "not_exists") == {3, 4}
    assert m("score", "gt", 7) == {1, 2}
    assert m("score", "ne", 12) == {2}  # "high" is not a number: fails
    assert m("vip", "eq", True) == {1}
    assert m("birthday", "lt", "1990-01-01") == {2}
    assert m("birthday", "between", ["1990-03-01", "1990-03-31"]) == {1}
    assert m("source", "eq", "Import") == {3}
    assert m("source", "eq", "Api") == {1, 2, 4}
    assert m("createdAt", "gt", NOW - 100) == {4}
    assert m("createdAt", "exists") == {1, 2, 3, 4}


def test_anniversary_in_days():
    book = contacts(5,
                    c1={"fields": {"birthday": "1990-03-12"}},
                    c2={"fields": {"birthday": "2000-03-11"}},
                    c3={"fields": {"birthday": "1996-02-29"}},
                    c4={"fields": {"birthday": "1999-02-28"}},
                    c5={"fields": {"birthday": "not a date"}})
    def m(n, now=NOW, tz="UTC"):
        return members({"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": n}}, [], book, now, tz)
    assert m(0) == {2}
    assert m(1) == {1}
    # 2027 is not a leap year: 29 Feb counts as 28 Feb
    assert m(0, now=ms("2027-02-28T10:00:00Z")) == {3, 4}
    # 2028 is: each on its own day
    assert m(0, now=ms("2028-02-28T10:00:00Z")) == {4}
    assert m(1, now=ms("2028-02-28T10:00:00Z")) == {3}
    assert m(365, now=ms("2027-02-28T10:00:00Z")) == {4}  # 2028-02-28
    # "today" is the segment zone's date: late on 10 March in New York is 11 March UTC
    late = ms("2026-03-11T03:00:00Z")
    assert m(0, now=late, tz="America/New_York") == set()
    assert m(1, now=late, tz="America/New_York") == {2}


def test_identifiers_present_and_absent():
    book = contacts(3)
    book[1].identifiers.update(email=["a@x.io"], pushToken=["wp:1"], **{"key:loyaltyCard": ["LC-1"]})
    book[2].identifiers.update(pushToken=["wp:2", "wp:3"])
    book[3].identifiers.update(email=[])
    def m(kind, present=True):
        return members({"identifier": {"kind": kind, "present": present}}, [], book)
    assert m("email") == {1}
    assert m("email", False) == {2, 3}
    assert m("pushToken") == {1, 2}
    assert m("loyaltyCard") == {1}
    assert m("externalId", False) == set()
    assert m("phone") == set()


# ------------------------------------------------------------------ composition


def test_all_any_not_over_the_known_contacts():
    book = contacts(4)
    book[0] = RefContact(0)  # system events' owner is never a member
    events = [ev(0, "2026-03-11T01:00:00Z"), ev(1, "2026-03-11T01:00:00Z"), ev(2, "2026-03-11T01:00:00Z", "view")]
    bought = {"event": {"type": "purchase"}}
    viewed = {"event": {"type": "view"}}
    assert members(bought, events, book) == {1}
    assert members({"not": bought}, events, book) == {2, 3, 4}
    assert members({"any": [bought, viewed]}, events, book) == {1, 2}
    assert members({"all": [{"not": bought}, {"not": viewed}]}, events, book) == {3, 4}
    assert members({"all": []}, events, book) == {1, 2, 3, 4}
    assert members({"any": []}, events, book) == set()


def test_segment_references_use_their_own_zone_and_the_same_now():
    book = contacts(3)
    # 02:00 UTC on 11 March is still 10 March in New York
    events = [ev(1, "2026-03-11T02:00:00Z"), ev(2, "2026-03-11T11:00:00Z")]
    saved = {
        "today-ny": {"name": "today-ny", "timezone": "America/New_York", "condition": {"event": {"type": "purchase"}}},
        "static": {"name": "static", "contacts": [3, 99]},
        "chain": {"name": "chain", "condition": {"any": [{"segment": "today-ny"}, {"segment": "static"}]}},
    }
    assert members({"segment": "today-ny"}, events, book, segments=saved) == {2}
    assert members({"event": {"type": "purchase"}}, events, book) == {1, 2}
    assert members({"segment": "chain"}, events, book, segments=saved) == {2, 3}
    assert members({"not": {"segment": "static"}}, events, book, segments=saved) == {1, 2}
    with pytest.raises(ValueError):
        members({"segment": "loop"}, events, book, segments={"loop": {"condition": {"segment": "loop"}}})


# ------------------------------------------------------------------ SEGMENTS.md §8


# Friday 20 November 2026, 10:15 UTC (a Friday; week started Monday 16 November).
EX_NOW = ms("2026-11-20T10:15:00Z")


def example(condition: dict, events: list[RefEvent], book: dict[int, RefContact]) -> set[int]:
    return members(condition, events, book, now=EX_NOW)


def test_example_1_sneakers_in_london_over_500_today():
    cond = {"event": {"type": "first purchase", "where": [
        {"param": "totalPrice", "op": "gt", "value": 500},
        {"param": "items.title", "op": "eq", "value": "sneakers"},
        {"param": "city", "op": "eq", "value": "London"}]}}
    sneakers = [{"title": "sneakers", "price": 400}, {"title": "socks", "price": 150}]
    events = [
        ev(1, "2026-11-20T09:00:00Z", "first purchase", totalPrice=550, items=sneakers, city="London"),
        ev(2, "2026-11-19T09:00:00Z", "first purchase", totalPrice=550, items=sneakers, city="London"),  # yesterday
        ev(3, "2026-11-20T09:00:00Z", "first purchase", totalPrice="600", items=sneakers, city="london"),  # city case
        ev(4, "2026-11-20T09:00:00Z", "first purchase", totalPrice="600", items=sneakers, city="London"),  # "600" is numeric
        ev(5, "2026-11-20T09:00:00Z", "first purchase", totalPrice=500, items=sneakers, city="London"),  # not over 500
        ev(6, "2026-11-20T09:00:00Z", "purchase", totalPrice=900, items=sneakers, city="London"),  # other type
    ]
    assert example(cond, events, contacts(6)) == {1, 4}


def test_example_2_strength_workout_today_on_ios_phone():
    cond = {"event": {"type": "WorkoutStarted", "where": [
        {"param": "workoutType", "op": "eq", "value": "Strength"},
        {"param": "deviceCategory", "op": "eq", "value": "Mobile"},
        {"param": "osType", "op": "eq", "value": "iOS"}]}}
    good = {"workoutType": "Strength", "deviceCategory": "Mobile", "osType": "iOS"}
    events = [
        ev(1, "2026-11-20T00:00:00Z", "WorkoutStarted", **good),  # first instant of today
        ev(2, "2026-11-19T23:59:59Z", "WorkoutStarted", **good),
        ev(3, "2026-11-20T08:00:00Z", "WorkoutStarted", **{**good, "osType": "Android"}),
        ev(4, "2026-11-20T08:00:00Z", "WorkoutStarted", **{**good, "deviceCategory": None}),
    ]
    assert example(cond, events, contacts(4)) == {1}


def test_example_3_active_each_of_the_last_4_complete_weeks():
    cond = {"event": {"type": "WorkoutStarted", "streak": {"unit": "week", "count": 4}}}
    weeks = ["2026-11-09T10:00:00Z", "2026-11-02T10:00:00Z", "2026-10-26T10:00:00Z", "2026-10-19T10:00:00Z"]
    events = [ev(1, w, "WorkoutStarted") for w in weeks]
    events += [ev(2, w, "WorkoutStarted") for w in weeks[:3]] + [ev(2, "2026-11-18T10:00:00Z", "WorkoutStarted")]
    # 3: Sunday 15 Nov 23:30 belongs to the week of 9 Nov
    events += [ev(3, "2026-11-15T23:30:00Z", "WorkoutStarted")] + [ev(3, w, "WorkoutStarted") for w in weeks[1:]]
    assert example(cond, events, contacts(3)) == {1, 3}


def test_example_4_first_install_in_the_last_7_days():
    cond = {"event": {"type": "AppInstall", "period": {"last": {"days": 7}}, "first": {}}}
    events = [
        ev(1, EX_NOW - 7 * ref.DAY_MS, "AppInstall"),  # exactly 7 days: included
        ev(2, EX_NOW - 7 * ref.DAY_MS - 1, "AppInstall"),
        ev(3, EX_NOW - 90 * ref.DAY_MS, "AppInstall"), ev(3, EX_NOW - ref.DAY_MS, "AppInstall"),  # reinstall
        ev(4, EX_NOW + 1, "AppInstall"),  # after now
    ]
    assert example(cond, events, contacts(4)) == {1}


def test_example_5_last_purchase_more_than_30_days_ago():
    cond = {"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {}}}
    events = [
        ev(1, EX_NOW - 31 * ref.DAY_MS),
        ev(2, EX_NOW - 31 * ref.DAY_MS), ev(2, EX_NOW - ref.DAY_MS),
        ev(3, EX_NOW - 30 * ref.DAY_MS),  # exactly 30 days: not before
    ]
    assert example(cond, events, contacts(4)) == {1}


def test_example_6_returning_buyers():
    cond = {"all": [
        {"event": {"type": "purchase", "period": {"before": {"months": 12}}, "first": {}}},
        {"event": {"type": "purchase", "period": {"previous": {"unit": "week", "count": 1}}}}]}
    last_week = "2026-11-12T10:00:00Z"  # previous week: Mon 9 Nov .. Sun 15 Nov
    events = [
        ev(1, "2025-11-20T10:14:59Z"), ev(1, last_week),  # first purchase just over 12 months ago
        ev(2, "2025-11-20T10:15:00Z"), ev(2, last_week),  # exactly 12 months ago: not before
        ev(3, "2024-01-01T00:00:00Z"), ev(3, "2026-11-16T00:00:00Z"),  # bought this week, not last
        ev(4, "2024-01-01T00:00:00Z"), ev(4, "2026-11-09T00:00:00Z"),
    ]
    assert example(cond, events, contacts(4)) == {1, 4}


def test_example_7_birthday_tomorrow():
    book = contacts(3, c1={"fields": {"birthday": "1990-11-21"}}, c2={"fields": {"birthday": "1990-11-20"}})
    assert example({"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 1}}, [], book) == {1}


def test_example_8_push_subscribers_without_email():
    book = contacts(3)
    book[1].identifiers.update(pushToken=["wp:a"])
    book[2].identifiers.update(pushToken=["wp:b"], email=["b@x.io"])
    book[3].identifiers.update(email=["c@x.io"])
    cond = {"all": [{"identifier": {"kind": "pushToken", "present": True}},
                    {"identifier": {"kind": "email", "present": False}}]}
    assert example(cond, [], book) == {1}


def test_example_9_apple_fans():
    cond = {"all": [
        {"event": {"type": "emailOpened", "streak": {"unit": "month", "count": 3}}},
        {"any": [
            {"event": {"type": "productCategoryViewed", "period": {"last": {"days": 30}},
                       "where": [{"param": "category.productCategoryId", "op": "eq", "value": "iPhone"}]}},
            {"event": {"type": "AppLaunched", "period": {"last": {"days": 30}},
                       "where": [{"param": "osType", "op": "eq", "value": "iOS"}]}},
            {"event": {"type": "webPushSubscribed", "period": {"allTime": {}},
                       "where": [{"param": "os", "op": "eq", "value": "iOS"}]}}]}]}
    months = ["2026-10-31T23:00:00Z", "2026-09-01T00:00:00Z", "2026-08-15T00:00:00Z"]  # Oct, Sep, Aug
    events = []
    for cid in (1, 2, 3, 4):
        events += [ev(cid, m, "emailOpened") for m in months]
    events += [
        ev(1, "2026-11-01T00:00:00Z", "productCategoryViewed", category={"productCategoryId": "iPhone"}),
        ev(2, "2026-10-01T00:00:00Z", "AppLaunched", osType="iOS"),  # 50 days ago: too old
        ev(3, "2020-01-01T00:00:00Z", "webPushSubscribed", os="iOS"),
        ev(4, "2026-11-10T00:00:00Z", "AppLaunched", osType="Android"),
        ev(5, "2026-11-10T00:00:00Z", "AppLaunched", osType="iOS"),  # no email streak
    ]
    assert example(cond, events, contacts(5)) == {1, 3}


def test_example_10_browsed_three_products_and_never_updated_a_cart():
    cond = {"all": [
        {"event": {"type": "productViewed", "period": {"last": {"hours": 24}},
                   "distinct": {"param": "product.productId", "gte": 3}}},
        {"event": {"type": "cartUpdated", "period": {"allTime": {}}, "count": {"eq": 0}}}]}
    hour = 3_600_000
    def view(cid, pid, ago):
        return ev(cid, EX_NOW - ago * hour, "productViewed", product={"productId": pid})
    events = [
        view(1, "A", 1), view(1, "B", 2), view(1, "C", 23),
        view(2, "A", 1), view(2, "A", 2), view(2, "B", 3), view(2, "C", 25),  # C is too old
        view(3, "A", 1), view(3, "B", 2), view(3, "C", 3), ev(3, "2025-01-01T00:00:00Z", "cartUpdated"),
        view(4, "1", 1), view(4, 1, 2), view(4, 1.0, 3),  # "1" and 1 differ, 1 and 1.0 do not
    ]
    assert example(cond, events, contacts(4)) == {1}

"""Every example of SEGMENTS.md section 8, end to end over a real server.

Each example gets contacts and events sent over gRPC, some of which qualify and some of
which miss for one stated reason. The saved segment's members — at the server clock (the
materialised bitmap) and at an `asOf` — must equal tests/reference.py's `evaluate` over the
same data, and CheckMembership, CountMembers and ExplainMembership must agree with them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from core.events import parse_timestamp
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from tests import reference
from tests.e2e.harness import NOW_MS

NOW = NOW_MS  # Thursday 2026-01-15T12:00:00Z
MS = 1
HOUR = 3_600_000
DAY = 24 * HOUR


def at(text: str) -> int:
    """An RFC 3339 instant as epoch ms."""
    return parse_timestamp(text)


class World:
    """Contacts and events sent to the server, mirrored for the reference evaluator."""

    def __init__(self, stub: pb_grpc.SegmentdStub) -> None:
        self.stub = stub
        self.contacts: dict[int, reference.RefContact] = {}
        self.events: list[reference.RefEvent] = []
        self.ids: dict[str, int] = {}
        self._pending: list[dict[str, Any]] = []

    def person(self, name: str, *, email: str = "", push: str = "", **fields: Any) -> int:
        """A contact with externalId `name` (and the given email, push token, fields)."""
        doc: dict[str, Any] = {"externalId": name, "fields": fields}
        identifiers: dict[str, list[Any]] = {"externalId": [name]}
        if email:
            doc["email"] = email
            identifiers["email"] = [email]
        if push:
            doc["pushTokens"] = [push]
            identifiers["pushToken"] = [push]
        reply = self.stub.UpsertContacts(pb.UpsertContactsRequest(jsonl=json.dumps(doc).encode()))
        assert (reply.created, reply.rejected) == (1, 0), reply.results
        cid = reply.results[0].contact_id
        self.contacts[cid] = reference.RefContact(cid, identifiers, dict(fields), created_at_ms=NOW, source="Api")
        self.ids[name] = cid
        return cid

    def event(self, type_: str, who: str, ts_ms: int, **params: Any) -> None:
        cid = self.ids[who] if who in self.ids else self.person(who)
        body = {"contactId": str(cid), **params}
        self._pending.append({"eventTypeKey": type_, "timestamp": ts_ms, "params": body})
        self.events.append(reference.RefEvent(type_, cid, ts_ms, json.loads(json.dumps(body))))

    def flush(self) -> None:
        if not self._pending:
            return
        data = "\n".join(json.dumps(d) for d in self._pending).encode()
        reply = self.stub.IngestEvents(pb.IngestEventsRequest(jsonl=data))
        assert (reply.accepted, reply.rejected) == (len(self._pending), 0), reply.results
        self._pending.clear()

    def names(self, ids: set[int]) -> set[str]:
        by_id = {cid: name for name, cid in self.ids.items()}
        return {by_id[c] for c in ids}

    # ------------------------------------------------------------------ checks

    def members(self, name: str, as_of: int | None) -> list[int]:
        request = pb.ListMembersRequest(name=name, page_size=2, as_of=as_of_value(as_of))
        return [cid for page in self.stub.ListMembers(request) for cid in page.contact_ids]

    def verify(self, condition: dict[str, Any], *, as_of: int | None = None, timezone: str = "UTC") -> set[str]:
        """Saves `condition` as a segment and holds its members at `as_of` (None: the server
        clock) to the reference; returns the members' names."""
        self.flush()
        doc = {"name": "example", "timezone": timezone, "condition": condition}
        self.stub.PutSegment(pb.PutSegmentRequest(segment=json_format.ParseDict(doc, pb.Segment())))
        instant = NOW if as_of is None else as_of
        expected = reference.evaluate(doc, self.events, self.contacts, instant)
        got = self.members("example", as_of)
        assert got == sorted(got) and set(got) == expected, (self.names(set(got)), self.names(expected))
        count = self.stub.CountMembers(pb.CountMembersRequest(name="example", as_of=as_of_value(as_of)))
        assert (count.count, count.as_of_ms) == (len(expected), instant)
        for cid in self.contacts:
            why = self.stub.ExplainMembership(
                pb.ExplainMembershipRequest(name="example", contact=pb.ContactRef(contact_id=cid), as_of=as_of_value(as_of))
            )
            assert why.member == (cid in expected), (self.names({cid}), why)
        if as_of is None:
            ids = sorted(self.contacts)
            check = self.stub.CheckMembership(
                pb.CheckMembershipRequest(contacts=[pb.ContactRef(contact_id=c) for c in ids], segments=["example"])
            )
            assert list(check.results) == [c in expected for c in ids]
        return self.names(expected)


def as_of_value(as_of: int | None) -> struct_pb2.Value | None:
    return None if as_of is None else struct_pb2.Value(number_value=as_of)


@pytest.fixture
def world(stub: pb_grpc.SegmentdStub) -> Iterator[World]:
    yield World(stub)


# --------------------------------------------------------------------------- the examples


EXAMPLE_1 = {"event": {"type": "first purchase", "where": [
    {"param": "totalPrice", "op": "gt", "value": 500},
    {"param": "items.title", "op": "eq", "value": "sneakers"},
    {"param": "city", "op": "eq", "value": "London"}]}}


def test_1_sneakers_in_london_over_500_today(world: World) -> None:
    sneakers = [{"title": "sneakers"}, {"title": "socks"}]
    world.event("first purchase", "ann", NOW - 2 * HOUR, totalPrice=650, items=sneakers, city="London")
    world.event("first purchase", "fay", NOW - 3 * HOUR, totalPrice="700", items=sneakers, city="London")  # numeric text
    world.event("first purchase", "bob", NOW - 2 * HOUR, totalPrice=650, items=sneakers, city="Paris")  # wrong city
    world.event("first purchase", "cat", NOW - 2 * HOUR, totalPrice=450, items=sneakers, city="London")  # too cheap
    world.event("first purchase", "dan", NOW - 13 * HOUR, totalPrice=650, items=sneakers, city="London")  # yesterday
    world.event("first purchase", "eve", NOW - 2 * HOUR, totalPrice=650, items=[{"title": "boots"}], city="London")  # no sneakers
    world.event("first purchase", "gus", NOW + HOUR, totalPrice=650, items=sneakers, city="London")  # not yet happened
    world.event("purchase", "hal", NOW - 2 * HOUR, totalPrice=650, items=sneakers, city="London")  # another type
    assert world.verify(EXAMPLE_1) == {"ann", "fay"}
    assert world.verify(EXAMPLE_1, as_of=NOW - 12 * HOUR - 30 * 60_000) == {"dan"}  # 23:30 the day before
    assert world.verify(EXAMPLE_1, as_of=NOW + 2 * HOUR) == {"ann", "fay", "gus"}


EXAMPLE_2 = {"event": {"type": "WorkoutStarted", "where": [
    {"param": "workoutType", "op": "eq", "value": "Strength"},
    {"param": "deviceCategory", "op": "eq", "value": "Mobile"},
    {"param": "osType", "op": "eq", "value": "iOS"}]}}


def test_2_strength_workout_today_on_an_ios_phone(world: World) -> None:
    ios = {"deviceCategory": "Mobile", "osType": "iOS"}
    world.event("WorkoutStarted", "ann", NOW - 4 * HOUR, workoutType="Strength", **ios)
    world.event("WorkoutStarted", "bob", NOW - 4 * HOUR, workoutType="Strength", deviceCategory="Mobile", osType="Android")
    world.event("WorkoutStarted", "cat", NOW - 4 * HOUR, workoutType="Cardio", **ios)  # wrong workout
    world.event("WorkoutStarted", "dan", NOW - 4 * HOUR, workoutType="Strength", deviceCategory="Tablet", osType="iOS")
    world.event("WorkoutStarted", "eve", NOW - 7 * DAY, workoutType="Strength", **ios)  # wrong day
    # each filter is met by some event, but no single event meets them all
    world.event("WorkoutStarted", "fay", NOW - 3 * HOUR, workoutType="Strength", deviceCategory="Mobile", osType="Android")
    world.event("WorkoutStarted", "fay", NOW - 2 * HOUR, workoutType="Cardio", **ios)
    world.event("WorkoutStarted", "gus", NOW - 4 * HOUR, workoutType="strength", **ios)  # case matters
    assert world.verify(EXAMPLE_2) == {"ann"}
    assert world.verify(EXAMPLE_2, as_of=NOW - 7 * DAY + HOUR) == {"eve"}


EXAMPLE_3 = {"event": {"type": "WorkoutStarted", "streak": {"unit": "week", "count": 4}}}


def test_3_active_every_one_of_the_last_4_complete_weeks(world: World) -> None:
    # Complete weeks before Monday 2026-01-12: from Mondays Dec 15, Dec 22, Dec 29 and Jan 5.
    for day in ("2025-12-17", "2025-12-24", "2025-12-31", "2026-01-07"):
        world.event("WorkoutStarted", "steady", at(f"{day}T12:00:00Z"))
    for day in ("2025-12-17", "2025-12-24", "2026-01-07"):  # the week of Dec 29 is missing
        world.event("WorkoutStarted", "gap", at(f"{day}T12:00:00Z"))
    for ts in ("2025-12-15T00:00:00Z", "2025-12-22T08:00:00Z", "2025-12-29T08:00:00Z", "2026-01-11T23:59:59.999Z"):
        world.event("WorkoutStarted", "edges", at(ts))  # first and last instants of the span
    for ts in ("2025-12-14T23:59:59.999Z", "2025-12-22T08:00:00Z", "2025-12-29T08:00:00Z", "2026-01-05T00:00:00Z"):
        world.event("WorkoutStarted", "early", at(ts))  # a Sunday, one millisecond too early
    for day in ("2025-12-24", "2025-12-31", "2026-01-07", "2026-01-13"):  # the week in progress does not count
        world.event("WorkoutStarted", "recent", at(f"{day}T12:00:00Z"))
    for hour in range(10):
        world.event("WorkoutStarted", "binge", at("2026-01-07T00:00:00Z") + hour * HOUR)  # one week only
    assert world.verify(EXAMPLE_3) == {"steady", "edges"}
    # The next Monday the window moves: Dec 22 .. Jan 18.
    assert world.verify(EXAMPLE_3, as_of=at("2026-01-19T00:00:01Z")) == {"recent"}


EXAMPLE_4 = {"event": {"type": "AppInstall", "period": {"last": {"days": 7}}, "first": {}}}


def test_4_first_install_in_the_last_7_days(world: World) -> None:
    world.event("AppInstall", "fresh", NOW - 3 * DAY)
    world.event("AppInstall", "reinstall", NOW - 40 * DAY)  # the first install is old
    world.event("AppInstall", "reinstall", NOW - 2 * DAY)
    world.event("AppInstall", "week", NOW - 7 * DAY)  # the window's first instant
    world.event("AppInstall", "older", NOW - 7 * DAY - MS)
    world.event("AppLaunched", "never", NOW - DAY)  # no install at all
    world.event("AppInstall", "future", NOW + DAY)  # does not exist yet
    assert world.verify(EXAMPLE_4) == {"fresh", "week"}
    assert world.verify(EXAMPLE_4, as_of=NOW + 5 * DAY) == {"future"}


EXAMPLE_5 = {"event": {"type": "purchase", "period": {"before": {"days": 30}}, "last": {}}}


def test_5_lapsed_buyers(world: World) -> None:
    world.event("purchase", "lapsed", NOW - 45 * DAY)
    world.event("purchase", "back", NOW - 45 * DAY)
    world.event("purchase", "back", NOW - 10 * DAY)  # bought again since
    world.event("purchase", "edge", NOW - 30 * DAY)  # exactly 30 days: not before
    world.event("purchase", "just", NOW - 30 * DAY - MS)
    world.event("pageView", "never", NOW - 45 * DAY)  # never bought
    assert world.verify(EXAMPLE_5) == {"lapsed", "just"}
    assert world.verify(EXAMPLE_5, as_of=NOW + 25 * DAY) == {"lapsed", "just", "edge", "back"}


EXAMPLE_6 = {"all": [
    {"event": {"type": "purchase", "period": {"before": {"months": 12}}, "first": {}}},
    {"event": {"type": "purchase", "period": {"previous": {"unit": "week", "count": 1}}}}]}


def test_6_returning_buyers(world: World) -> None:
    def buys(who: str, *times: str) -> None:
        for ts in times:
            world.event("purchase", who, at(ts))

    buys("loyal", "2024-11-01T10:00:00Z", "2026-01-07T10:00:00Z")
    buys("newbie", "2025-06-01T10:00:00Z", "2026-01-07T10:00:00Z")  # first purchase within the year
    buys("thisweek", "2024-11-01T10:00:00Z", "2026-01-13T10:00:00Z")  # bought this week, not last week
    buys("edgeold", "2025-01-15T11:59:59.999Z", "2026-01-05T00:00:00Z")  # just over 12 months; Monday 00:00
    buys("edgenew", "2025-01-15T12:00:00Z", "2026-01-11T23:59:59.999Z")  # exactly 12 months: not before
    buys("sunday", "2024-11-01T10:00:00Z", "2026-01-04T23:59:59.999Z")  # the week before last
    assert world.verify(EXAMPLE_6) == {"loyal", "edgeold"}
    assert world.verify(EXAMPLE_6, as_of=at("2026-01-19T00:00:01Z")) == {"thisweek"}


EXAMPLE_7 = {"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 1}}


def test_7_birthday_tomorrow(world: World) -> None:
    world.person("tomorrow", birthday="1990-01-16")
    world.person("today", birthday="1985-01-15")
    world.person("later", birthday="2000-01-17")
    world.person("leap", birthday="2004-02-29")
    world.person("feb28", birthday="1999-02-28")
    world.person("nobody", city="London")  # no birthday
    assert world.verify(EXAMPLE_7) == {"tomorrow"}
    # In Auckland (UTC+13) it is already 16 January: tomorrow is the 17th.
    assert world.verify(EXAMPLE_7, timezone="Pacific/Auckland") == {"later"}
    # 2027 has no 29 February: it counts as the 28th.
    assert world.verify(EXAMPLE_7, as_of=at("2027-02-27T12:00:00Z")) == {"leap", "feb28"}


EXAMPLE_8 = {"all": [
    {"identifier": {"kind": "pushToken", "present": True}},
    {"identifier": {"kind": "email", "present": False}}]}


def test_8_web_push_subscribers_without_an_email(world: World) -> None:
    world.person("pushonly", push="wp:1")
    world.person("both", push="wp:2", email="both@example.com")  # has an email
    world.person("emailonly", email="emailonly@example.com")  # no push token
    world.person("plain")  # neither
    assert world.verify(EXAMPLE_8) == {"pushonly"}


EXAMPLE_9 = {"all": [
    {"event": {"type": "emailOpened", "streak": {"unit": "month", "count": 3}}},
    {"any": [
        {"event": {"type": "productCategoryViewed", "period": {"last": {"days": 30}},
                   "where": [{"param": "category.productCategoryId", "op": "eq", "value": "iPhone"}]}},
        {"event": {"type": "AppLaunched", "period": {"last": {"days": 30}},
                   "where": [{"param": "osType", "op": "eq", "value": "iOS"}]}},
        {"event": {"type": "webPushSubscribed", "period": {"allTime": {}},
                   "where": [{"param": "os", "op": "eq", "value": "iOS"}]}}]}]}


def test_9_apple_fans(world: World) -> None:
    def reads(who: str, *months: str) -> None:
        for month in months:
            world.event("emailOpened", who, at(f"{month}-10T09:00:00Z"))

    quarter = ("2025-10", "2025-11", "2025-12")  # the 3 complete months before January 2026
    iphone = {"productCategoryId": "iPhone"}
    reads("viewer", *quarter)
    world.event("productCategoryViewed", "viewer", NOW - 5 * DAY, category=iphone)
    reads("launcher", *quarter)
    world.event("AppLaunched", "launcher", NOW - 2 * DAY, osType="iOS")
    reads("subscriber", *quarter)
    world.event("webPushSubscribed", "subscriber", at("2024-03-01T00:00:00Z"), os="iOS")
    reads("gappy", "2025-10", "2025-12")  # skipped November
    world.event("productCategoryViewed", "gappy", NOW - 5 * DAY, category=iphone)
    reads("android", *quarter)
    world.event("AppLaunched", "android", NOW - DAY, osType="Android")  # not iOS
    reads("stale", *quarter)
    world.event("productCategoryViewed", "stale", NOW - 40 * DAY, category=iphone)  # too long ago
    reads("samsung", *quarter)
    world.event("productCategoryViewed", "samsung", NOW - 5 * DAY, category={"productCategoryId": "Galaxy"})
    reads("january", "2025-11", "2025-12", "2026-01")  # the month in progress does not count
    world.event("productCategoryViewed", "january", NOW - 5 * DAY, category=iphone)
    assert world.verify(EXAMPLE_9) == {"viewer", "launcher", "subscriber"}
    # On 1 February the months are November to January.
    assert world.verify(EXAMPLE_9, as_of=at("2026-02-01T00:00:01Z")) == {"january"}


EXAMPLE_10 = {"all": [
    {"event": {"type": "productViewed", "period": {"last": {"hours": 24}},
               "distinct": {"param": "product.productId", "gte": 3}}},
    {"event": {"type": "cartUpdated", "period": {"allTime": {}}, "count": {"eq": 0}}}]}


def test_10_browsed_3_products_and_never_updated_a_cart(world: World) -> None:
    def views(who: str, *products: Any, start: int = NOW - HOUR) -> None:
        for i, product in enumerate(products):
            world.event("productViewed", who, start - i * HOUR, product={"productId": product})

    views("browser", "p1", "p2", "p3")
    views("repeater", "p1", "p1", "p2", "p2")  # 2 distinct products
    views("carted", "p1", "p2", "p3")
    world.event("cartUpdated", "carted", NOW - 300 * DAY)  # once, long ago
    views("slow", "p2", "p3")
    world.event("productViewed", "slow", NOW - 25 * HOUR, product={"productId": "p1"})  # outside the 24 hours
    views("kinds", 1, "1", 2)  # the number 1 and the string "1" are two values
    views("floats", 1, 1.0, 2)  # 1 and 1.0 are one
    views("later", "p1", "p2", "p3")
    world.event("cartUpdated", "later", NOW + HOUR)  # not yet
    assert world.verify(EXAMPLE_10) == {"browser", "kinds", "later"}
    assert world.verify(EXAMPLE_10, as_of=NOW + 2 * HOUR) == {"browser", "kinds"}

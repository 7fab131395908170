"""Hypothesis strategies for segment scenarios: contacts, events and definitions.

A scenario is one evaluation instant and zone, a few contacts (ids 1..N, created in id order),
events of a few types whose params mix every value kind the filters distinguish, and a list
of definitions covering every condition form, measure, filter op and period kind. Timestamps
cluster on the calendar boundaries of the chosen zone, and `now` sits near DST changes,
month ends and leap days, where evaluators tend to disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests import reference as ref

TIME_ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Kolkata")
EVENT_TYPES = ("purchase", "view", "login")
HOUR_MS = 3_600_000
DAY_MS = ref.DAY_MS


def _ms(text: str) -> int:
    return ref.parse_instant(text)


# Instants where calendars are awkward: DST changes in London and New York (both ways),
# month and year ends, a leap day, a Monday midnight.
NOW_ANCHORS = tuple(_ms(t) for t in (
    "2026-03-08T07:00:00Z",   # New York springs forward (02:00 EST)
    "2026-03-29T01:00:00Z",   # London springs forward
    "2026-10-25T01:00:00Z",   # London falls back
    "2026-11-01T06:00:00Z",   # New York falls back
    "2026-03-31T23:30:00Z",   # month end (already April in London and Kolkata)
    "2026-12-31T23:59:00Z",   # year end
    "2028-02-29T12:00:00Z",   # leap day
    "2027-03-01T00:10:00Z",   # the day after 28 Feb in a common year
    "2026-11-16T00:00:00Z",   # Monday midnight UTC
    "2026-05-31T18:45:00Z",   # Kolkata midnight (00:15 on 1 June)
    # a month before these, the same local time was skipped or repeated by a DST change
    "2026-04-29T00:30:00Z",   # 01:30 BST; 29 March 01:30 did not exist in London
    "2026-04-08T06:30:00Z",   # 02:30 EDT; 8 March 02:30 did not exist in New York
    "2026-11-25T01:30:00Z",   # 01:30 GMT; 25 October 01:30 happened twice in London
    "2026-12-01T06:30:00Z",   # 01:30 EST; 1 November 01:30 happened twice in New York
))
NOW_NUDGES = (0, 0, 1, -1, HOUR_MS, -HOUR_MS, 23 * HOUR_MS, -23 * HOUR_MS, DAY_MS, -DAY_MS, 2 * DAY_MS, -2 * DAY_MS)


@st.composite
def nows(draw: st.DrawFn) -> int:
    """An evaluation instant near an awkward calendar moment."""
    anchor = draw(st.sampled_from(NOW_ANCHORS))
    nudge = draw(st.one_of(st.sampled_from(NOW_NUDGES), st.integers(-3 * DAY_MS, 3 * DAY_MS)))
    return anchor + nudge


# ------------------------------------------------------------------ values

NUMBERS = st.one_of(
    st.sampled_from([0, 1, 1.0, 2.5, 5, 10, 45.5, 50, 100, 120, 500, 501, -3]),
    st.integers(-5, 1000),
    st.integers(-20, 4000).map(lambda q: q / 4),  # quarters: sums stay exact in binary
)
NUMERIC_TEXT = st.sampled_from(["45.5", "100", "-3", "0.25", "1", "500", "10"])
PLAIN_TEXT = st.sampled_from(["London", "london", "Paris", "sneakers", "jacket", "abc", "P1", "p1", "a", "b", ""])
STRINGS = st.one_of(NUMERIC_TEXT, PLAIN_TEXT)
BOOLS = st.booleans()
SCALARS = st.one_of(NUMBERS, STRINGS, BOOLS)


def _maybe(strategy: st.SearchStrategy, p_absent: float = 0.4) -> st.SearchStrategy:
    """The strategy's value, or None (the parameter is left out)."""
    return st.one_of(st.none(), strategy) if p_absent else strategy


ITEM = st.fixed_dictionaries({}, optional={
    "title": st.one_of(st.sampled_from(["sneakers", "jacket", "socks"]), st.none()),
    "price": st.one_of(NUMBERS, NUMERIC_TEXT, st.none(), st.just("n/a")),
})
PRODUCT = st.fixed_dictionaries({}, optional={
    "productId": st.sampled_from(["P1", "P2", "p1", 1, 1.0, "1", True]),
    "price": st.one_of(NUMBERS, NUMERIC_TEXT),
    "tags": st.lists(st.sampled_from(["a", "b", 1]), max_size=2),
})


@st.composite
def event_params(draw: st.DrawFn) -> dict[str, Any]:
    """Event params (contactId excluded) as they are sent: some objects JSON-encoded."""
    params: dict[str, Any] = {}
    choices = {
        "totalPrice": st.one_of(NUMBERS, NUMERIC_TEXT, PLAIN_TEXT, BOOLS, st.none()),
        "city": st.one_of(st.sampled_from(["London", "london", "Paris", "Lon"]), st.just(5), st.just(True)),
        "product": PRODUCT,
        "items": st.lists(ITEM, max_size=3),
        "tags": st.lists(st.one_of(st.sampled_from(["a", "b", "1", 1, 1.0, True]), st.none()), max_size=3),
        "qty": st.one_of(st.integers(0, 5), BOOLS),
        "flag": BOOLS,
        "note": st.one_of(st.none(), st.just("hello world")),
    }
    for name, strategy in choices.items():
        if draw(st.sampled_from([True, True, False])):
            params[name] = draw(strategy)
    if "product" in params and draw(st.integers(0, 3)) == 0:
        params["product"] = json.dumps(params["product"])  # the v2 shape: an object as a JSON string
    return params


def parsed(params: dict[str, Any]) -> dict[str, Any]:
    """The params as stored: JSON object/array strings become the parsed value."""
    out = {}
    for name, value in params.items():
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[name] = value
    return out


# ------------------------------------------------------------------ scenarios


@dataclass
class Scenario:
    """Everything one property example feeds to both evaluators."""

    now_ms: int
    tz: str
    contact_docs: list[dict[str, Any]]        # EVENTS.md §2 contact JSON, in id order
    contact_created_ms: list[int]
    contact_sources: list[str]
    events: list[tuple[str, int, int, dict[str, Any]]]  # (type, contact id, ts ms, params as sent)
    definitions: list[dict[str, Any]] = field(default_factory=list)
    batch_ends: list[int] = field(default_factory=list)   # events[prev:end] go in one ingest call
    changes: list[tuple[str, int, int]] = field(default_factory=list)  # ("erase", c, 0) | ("merge", into, from)
    other_nows: list[int] = field(default_factory=list)   # further as-of instants (all events are stored)

    def owners(self) -> dict[int, int | None]:
        """Where each original contact's events live after the changes (None: erased)."""
        owner: dict[int, int | None] = {cid: cid for cid in range(1, len(self.contact_docs) + 1)}
        for kind, a, b in self.changes:
            for cid, now_at in owner.items():
                if kind == "erase" and now_at == a:
                    owner[cid] = None
                if kind == "merge" and now_at == b:
                    owner[cid] = a
        return owner

    def reference_contacts(self) -> dict[int, ref.RefContact]:
        book = self._created_contacts()
        for kind, a, b in self.changes:
            if kind == "erase":
                del book[a]
                continue
            into, gone = book[a], book.pop(b)
            for key, values in gone.identifiers.items():
                into.identifiers[key] = into.identifiers.get(key, []) + values
            into.fields = {**gone.fields, **into.fields}  # the surviving contact's fields win
        return book

    def _created_contacts(self) -> dict[int, ref.RefContact]:
        book = {}
        for i, doc in enumerate(self.contact_docs):
            cid = i + 1
            identifiers: dict[str, list[Any]] = {"externalId": [doc["externalId"]]}
            if "email" in doc:
                identifiers["email"] = [doc["email"].strip().lower()]
            if "phone" in doc:
                identifiers["phone"] = [doc["phone"]]
            if doc.get("pushTokens"):
                identifiers["pushToken"] = list(doc["pushTokens"])
            for name, value in doc.get("keys", {}).items():
                identifiers[f"key:{name}"] = [value]
            book[cid] = ref.RefContact(cid, identifiers, dict(doc.get("fields", {})),
                                       self.contact_created_ms[i], self.contact_sources[i])
        return book

    def reference_events(self, upto: int | None = None, changed: bool = True) -> list[ref.RefEvent]:
        """The first `upto` events (all by default) as stored, after the contact changes or before."""
        owner = self.owners() if changed else {cid: cid for cid in range(1, len(self.contact_docs) + 1)}
        out = []
        for etype, cid, ts, params in self.events[:upto]:
            if owner[cid] is not None:
                out.append(ref.RefEvent(etype, owner[cid], ts, {"contactId": str(cid), **parsed(params)}))
        return out

    def reference_contacts_before_changes(self) -> dict[int, ref.RefContact]:
        return self._created_contacts()


def boundary_instants(now_ms: int, tz: str) -> list[int]:
    """Calendar and duration edges of every period kind around `now` in `tz`."""
    today = ref.local_date(now_ms, tz)
    edges = [now_ms]
    for k in range(0, 9):
        edges.append(ref.day_start_ms(today - dt.timedelta(days=k), tz))
        edges.append(now_ms - k * DAY_MS)
    week = ref.unit_start_date(today, "week")
    month = ref.unit_start_date(today, "month")
    for k in range(0, 5):
        edges.append(ref.day_start_ms(week - dt.timedelta(days=7 * k), tz))
    for k in range(0, 15):
        edges.append(ref.day_start_ms(ref.add_months(month, -k), tz))
        edges.append(ref.months_before_ms(now_ms, k, tz))
    return edges


@st.composite
def timestamps(draw: st.DrawFn, now_ms: int, tz: str) -> int:
    """An event time: on or next to a period edge, recent, or anywhere in about two years."""
    kind = draw(st.sampled_from(["recent", "edge", "hours", "years", "days"]))
    if kind == "edge":
        edge = draw(st.sampled_from(boundary_instants(now_ms, tz)))
        return edge + draw(st.sampled_from([0, 1, -1, 0, HOUR_MS, -HOUR_MS, 59_999]))
    if kind == "recent":
        return now_ms - draw(st.integers(-HOUR_MS, 45 * DAY_MS))
    if kind == "hours":
        return now_ms - draw(st.integers(-HOUR_MS, 3 * DAY_MS))
    if kind == "years":
        return now_ms - draw(st.integers(-2 * DAY_MS, 800 * DAY_MS))
    return now_ms - draw(st.integers(0, 120)) * DAY_MS - draw(st.integers(0, 3)) * HOUR_MS


@st.composite
def habits(draw: st.DrawFn, now_ms: int, tz: str) -> list[int]:
    """Event times of a habit: about one per day, week or month going back from now, some
    units skipped, so that streaks and calendar periods split contacts."""
    unit = draw(st.sampled_from(["day", "week", "month"]))
    current = ref.unit_start_date(ref.local_date(now_ms, tz), unit)
    out = []
    for k in range(draw(st.integers(1, 5)) + 1):
        if draw(st.sampled_from([True, True, True, False])):
            lo = ref.day_start_ms(ref.shift_units(current, unit, -k), tz)
            hi = ref.day_start_ms(ref.shift_units(current, unit, 1 - k), tz)
            out.append(draw(st.one_of(st.sampled_from([lo, hi - 1]), st.integers(lo, hi - 1))))
    return out


@st.composite
def birthdays(draw: st.DrawFn, now_ms: int, tz: str) -> str:
    """A YYYY-MM-DD date, often within a few days of now's month and day, or 29 Feb."""
    today = ref.local_date(now_ms, tz)
    year = draw(st.integers(1950, 2010))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        near = today + dt.timedelta(days=draw(st.integers(-2, 4)))
        if (near.month, near.day) == (2, 29):
            return f"{year - year % 4}-02-29"
        return dt.date(year, near.month, near.day).isoformat()
    if kind == 1:
        return draw(st.sampled_from(["1996-02-29", "1999-02-28", "2000-03-01", "1990-12-31", "1980-01-01"]))
    return draw(st.dates(dt.date(1950, 1, 1), dt.date(2010, 12, 31))).isoformat()


@st.composite
def contact_docs(draw: st.DrawFn, cid: int, now_ms: int, tz: str) -> dict[str, Any]:
    """Contact JSON with a unique externalId and some of every other identifier and field."""
    doc: dict[str, Any] = {"externalId": f"X-{cid}"}
    if draw(st.booleans()):
        doc["email"] = draw(st.sampled_from([f"user{cid}@example.com", f" User{cid}@Example.com"]))
    if draw(st.booleans()):
        doc["phone"] = f"+44207946{cid:04d}"
    tokens = draw(st.integers(0, 2))
    if tokens:
        doc["pushTokens"] = [f"wp:{cid}:{k}" for k in range(tokens)]
    if draw(st.booleans()):
        doc["keys"] = {"loyaltyCard": f"LC-{cid}"}
    fields: dict[str, Any] = {}
    optional = {
        "firstName": st.sampled_from(["Ann", "Bob", "ann"]),
        "city": st.sampled_from(["London", "london", "Paris", "10"]),
        "birthday": birthdays(now_ms, tz),
        "score": st.one_of(NUMBERS, NUMERIC_TEXT, st.just("high")),
        "vip": BOOLS,
        "joined": birthdays(now_ms, tz),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    if fields:
        doc["fields"] = fields
    return doc


# ------------------------------------------------------------------ definitions

FILTER_PATHS = ("totalPrice", "city", "product", "product.productId", "product.price", "product.tags",
                "items", "items.title", "items.price", "tags", "qty", "flag", "note", "contactId", "missing.path")
ANY_PATHS = ("items", "product", "tags", "missing")
ELEMENT_PATHS = ("title", "price", "productId", "tags", "missing")
NUMERIC_PARAMS = ("totalPrice", "items.price", "product.price", "qty", "totalPrice", "items.price", "tags", "city",
                  "missing")
DISTINCT_PARAMS = ("product.productId", "tags", "city", "items.title", "totalPrice", "flag", "qty", "missing",
                   "product.price", "items.price")
FILTER_NUMBERS = st.one_of(st.sampled_from([0, 1, 2, 1.0, 5, 10, 45.5, 50, 100, 120, 500, -3, 0.25]), st.integers(-5, 600))
FILTER_STRINGS = st.sampled_from(["London", "london", "Lon", "on", "sneakers", "jacket", "a", "b", "1", "45.5",
                                  "P1", "p", "hello", "world", "", "abc"])
COMPARISON_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in",
                  "contains", "not_contains", "starts_with", "ends_with", "exists", "not_exists")


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


@st.composite
def focused_conditions(draw: st.DrawFn, now_ms: int) -> dict[str, Any]:
    """An event condition over a wide period with one filter, or one measure and no filter:
    such leaves split the contacts far more often than random trees do."""
    etype = draw(st.sampled_from(EVENT_TYPES))
    period = draw(st.sampled_from([{"allTime": {}}, {"last": {"days": 45}}, {"thisMonth": {}}]))
    if draw(st.booleans()):
        return {"event": {"type": etype, "period": period, "where": [draw(filters())]}}
    body = draw(event_conditions(now_ms))
    body.pop("where", None)
    body["type"] = etype
    if "period" in body:
        body["period"] = period
    return {"event": body}


@st.composite
def scenarios(draw: st.DrawFn, n_definitions: int = 6, n_focused: int = 6) -> Scenario:
    """A full scenario with `n_definitions` random and `n_focused` single-leaf definitions,
    all in the scenario's zone."""
    now_ms = draw(nows())
    tz = draw(st.sampled_from(TIME_ZONES))
    n = draw(st.integers(2, 6))
    docs = [draw(contact_docs(cid, now_ms, tz)) for cid in range(1, n + 1)]
    created = [now_ms - draw(st.integers(0, 400 * DAY_MS)) for _ in docs]
    sources = [draw(st.sampled_from(["Api", "Import"])) for _ in docs]
    n_events = draw(st.integers(3 * n, 8 * n))
    events = []
    for _ in range(n_events):
        etype = draw(st.sampled_from(EVENT_TYPES))
        cid = draw(st.integers(1, n))
        events.append((etype, cid, draw(timestamps(now_ms, tz)), draw(event_params())))
    for _ in range(draw(st.integers(1, 3))):
        etype = draw(st.sampled_from(EVENT_TYPES))
        cid = draw(st.integers(1, n))
        events += [(etype, cid, ts, draw(event_params())) for ts in draw(habits(now_ms, tz))]
    order = draw(st.permutations(range(len(events))))
    events = [events[i] for i in order]
    cuts = sorted(draw(st.sets(st.integers(1, len(events) - 1), max_size=2))) if len(events) > 1 else []
    changes: list[tuple[str, int, int]] = []
    if draw(st.sampled_from([False, False, True])):
        a, b, c = draw(st.permutations(range(1, n + 1)))[:3] + [0, 0, 0][: max(0, 3 - n)]
        kinds = draw(st.sampled_from([["erase"], ["merge"], ["erase", "merge"], ["merge", "erase"]]))
        for kind in kinds:
            if kind == "erase":
                changes.append(("erase", a, 0))
            elif c:
                changes.append(("merge", b, c))
    other_nows = [now_ms - draw(st.sampled_from([1, HOUR_MS, DAY_MS, 3 * DAY_MS, 40 * DAY_MS]))]
    definitions = [
        {"name": f"adhoc-{k}", "timezone": tz, "condition": draw(conditions(now_ms))} for k in range(n_definitions)
    ] + [
        {"name": f"leaf-{k}", "timezone": tz, "condition": draw(focused_conditions(now_ms))} for k in range(n_focused)
    ]
    return Scenario(now_ms, tz, docs, created, sources, events, definitions, cuts + [len(events)], changes,
                    other_nows)

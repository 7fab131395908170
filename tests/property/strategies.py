"""Scenarios for the segment property tests: contacts, events and definitions.

A scenario is one evaluation instant and zone, a few contacts (ids 1..N, created in id order),
events of a few types whose params mix every value kind the filters tell apart, and a list of
definitions. The data is drawn by Hypothesis: timestamps cluster on the calendar edges of the
zone, and `now` sits near DST changes, month ends and leap days. The definitions are then
built from a drawn seed by `DefinitionMaker` (plain `random`, so that dozens per scenario cost
little): random condition trees of every form, and "focused" leaves that pick one to three
events by their `seq` parameter and put a period edge, a comparison bound or a filter value
right on what those events hold, so that one wrong rule in an evaluator flips the result.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from hypothesis import strategies as st

from tests import reference as ref

TIME_ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Kolkata")
EVENT_TYPES = ("purchase", "view", "login")
HOUR_MS = 3_600_000
DAY_MS = ref.DAY_MS
Event = tuple[str, int, int, dict[str, Any]]  # (type, contact id, ts ms, params as sent)


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
    "2027-02-27T15:00:00Z",   # 29 February birthdays fall tomorrow in a common year
    "2026-02-28T10:00:00Z",   # ... and today
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


# ------------------------------------------------------------------ event params

NUMBERS = st.one_of(
    st.sampled_from([0, 1, 1.0, 2.5, 5, 10, 45.5, 50, 100, 120, 500, 501, -3]),
    st.integers(-5, 1000),
    st.integers(-20, 4000).map(lambda q: q / 4),  # quarters: sums stay exact in binary
)
NUMERIC_TEXT = st.sampled_from(["45.5", "100", "-3", "0.25", "1", "500", "10"])
PLAIN_TEXT = st.sampled_from(["London", "london", "Paris", "sneakers", "jacket", "abc", "P1", "p1", "a", "b", ""])
BOOLS = st.booleans()
ITEM = st.fixed_dictionaries({}, optional={
    "title": st.one_of(st.sampled_from(["sneakers", "jacket", "socks"]), st.none()),
    "price": st.one_of(NUMBERS, NUMERIC_TEXT, st.none(), st.just("n/a")),
})
PRODUCT = st.fixed_dictionaries({}, optional={
    "productId": st.sampled_from(["P1", "P2", "p1", 1, 1.0, "1", True]),
    "price": st.one_of(NUMBERS, NUMERIC_TEXT),
    "tags": st.lists(st.sampled_from(["a", "b", 1]), max_size=2),
})
PARAM_VALUES = {
    "totalPrice": st.one_of(NUMBERS, NUMERIC_TEXT, PLAIN_TEXT, BOOLS, st.none()),
    "city": st.one_of(st.sampled_from(["London", "london", "Paris", "Lon"]), st.just(5), st.just(True)),
    "product": PRODUCT,
    "items": st.lists(ITEM, max_size=3),
    "tags": st.lists(st.one_of(st.sampled_from(["a", "b", "1", 1, 1.0, True]), st.none()), max_size=3),
    "qty": st.one_of(st.integers(0, 5), BOOLS),
    "flag": BOOLS,
    "note": st.one_of(st.none(), st.just("hello world")),
}
MARKS = st.integers(0, 3)
CODES = st.sampled_from([1, "1", 1.0, True, 2, "a", False, 0])
PRESENT = st.sampled_from([True, True, False])


@st.composite
def event_params(draw: st.DrawFn) -> dict[str, Any]:
    """Event params (contactId excluded) as they are sent: some objects JSON-encoded.

    `seq` (numbered by the scenario, unique) lets a filter pick out single events; `mark`
    (0..3) picks a sparse subset; `code` is a scalar of easily confused kinds (1, "1", 1.0,
    true). No name is one of the identifier parameters of EVENTS.md §3.
    """
    params: dict[str, Any] = {"seq": 0, "mark": draw(MARKS), "code": draw(CODES)}
    for name, strategy in PARAM_VALUES.items():
        if draw(PRESENT):
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
    events: list[Event]
    definitions: list[dict[str, Any]] = field(default_factory=list)
    batch_ends: list[int] = field(default_factory=list)   # events[prev:end] go in one ingest call
    changes: list[tuple[str, int, int]] = field(default_factory=list)  # ("erase", c, 0) | ("merge", into, from)
    other_nows: list[int] = field(default_factory=list)   # further as-of instants (all events are stored)
    seed: int = 0                                         # of the definitions

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

    def reference_contacts(self, changed: bool = True) -> dict[int, ref.RefContact]:
        """The contacts as the reference sees them, after the merges and erasures or before."""
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
        for kind, a, b in self.changes if changed else ():
            if kind == "erase":
                del book[a]
                continue
            into, gone = book[a], book.pop(b)
            for key, values in gone.identifiers.items():
                into.identifiers[key] = into.identifiers.get(key, []) + values
            into.fields = {**gone.fields, **into.fields}  # the surviving contact's fields win
        return book

    def reference_events(self, upto: int | None = None, changed: bool = True) -> list[ref.RefEvent]:
        """The first `upto` events (all by default) as stored, after the contact changes or before."""
        owner = self.owners() if changed else {cid: cid for cid in range(1, len(self.contact_docs) + 1)}
        out = []
        for etype, cid, ts, params in self.events[:upto]:
            if owner[cid] is not None:
                out.append(ref.RefEvent(etype, owner[cid], ts, {"contactId": str(cid), **parsed(params)}))
        return out


# Period lengths the definitions mostly use; events are placed on exactly these edges too.
ALIGNED_N = {"minutes": [30, 90], "hours": [1, 6, 24], "days": [1, 2, 3, 7], "weeks": [1, 2], "months": [1, 3, 12]}


@functools.lru_cache(maxsize=64)
def boundary_instants(now_ms: int, tz: str) -> tuple[int, ...]:
    """Calendar and duration edges of every period kind around `now` in `tz`."""
    today = ref.local_date(now_ms, tz)
    edges = [now_ms]
    for k in range(0, 9):
        edges.append(ref.day_start_ms(today - dt.timedelta(days=k), tz))
        edges.append(now_ms - k * DAY_MS)
    for unit in ("minutes", "hours", "weeks"):
        edges += [now_ms - n * ref.UNIT_MS[unit] for n in ALIGNED_N[unit]]
    week = ref.unit_start_date(today, "week")
    month = ref.unit_start_date(today, "month")
    for k in range(0, 5):
        edges.append(ref.day_start_ms(week - dt.timedelta(days=7 * k), tz))
    for k in range(0, 15):
        edges.append(ref.day_start_ms(ref.add_months(month, -k), tz))
        edges.append(ref.months_before_ms(now_ms, k, tz))
    return tuple(edges)


@st.composite
def timestamps(draw: st.DrawFn, now_ms: int, tz: str) -> int:
    """An event time: on or next to a period edge, recent, or anywhere in about two years."""
    kind = draw(st.sampled_from(["edge", "recent", "edge", "hours", "years", "days"]))
    if kind == "edge":
        edge = draw(st.sampled_from(boundary_instants(now_ms, tz)))
        return edge + draw(st.sampled_from([0, -1, 0, 1, -1, HOUR_MS, -HOUR_MS, 59_999]))
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
    kind = draw(st.sampled_from([0, 1, 2, 0, 1]))
    if kind == 0:
        near = today + dt.timedelta(days=draw(st.integers(-2, 4)))
        if (near.month, near.day) == (2, 29):
            return f"{year - year % 4}-02-29"
        return dt.date(year, near.month, near.day).isoformat()
    if kind == 1:
        return draw(st.sampled_from(["1996-02-29", "1996-02-29", "1999-02-28", "2000-03-01", "1990-12-31",
                                     "1980-01-01"]))
    return draw(st.dates(dt.date(1950, 1, 1), dt.date(2010, 12, 31))).isoformat()


CONTACT_FIELDS = {
    "firstName": st.sampled_from(["Ann", "Bob", "ann"]),
    "city": st.sampled_from(["London", "london", "Paris", "10"]),
    "score": st.one_of(NUMBERS, NUMERIC_TEXT, st.just("high")),
    "vip": BOOLS,
}


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
    for name, strategy in {**CONTACT_FIELDS, "birthday": birthdays(now_ms, tz), "joined": birthdays(now_ms, tz)}.items():
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    if fields:
        doc["fields"] = fields
    return doc


# ------------------------------------------------------------------ definitions

FILTER_PATHS = ("code", "totalPrice", "city", "product", "product.productId", "product.price", "product.tags",
                "items", "items.title", "items.price", "tags", "qty", "flag", "note", "contactId", "missing.path")
ANY_PATHS = ("items", "product", "tags", "missing")
ELEMENT_PATHS = ("title", "price", "productId", "tags", "missing")
NUMERIC_PARAMS = ("code", "totalPrice", "items.price", "product.price", "qty", "totalPrice", "items.price", "tags",
                  "city", "missing")
DISTINCT_PARAMS = ("code", "product.productId", "tags", "city", "items.title", "totalPrice", "flag", "qty", "missing",
                   "product.price", "items.price")
TEXT_OPS = ("contains", "not_contains", "starts_with", "ends_with")
ORDER_OPS = ("gt", "gte", "lt", "lte", "between")
COMPARISON_OPS = ("eq", "ne") + ORDER_OPS + ("in", "not_in") + TEXT_OPS + ("exists", "not_exists")
DATE_OPS = ("eq", "ne") + ORDER_OPS + ("in", "not_in", "exists", "not_exists")
CMP_KEYS = ("gte", "lt", "between", "gt", "lte", "ne", "eq")
FILTER_NUMBERS = (0, 1, 2, 1.0, 5, 10, 45.5, 50, 100, 120, 500, -3, 0.25)
FILTER_STRINGS = ("London", "london", "Lon", "on", "sneakers", "jacket", "a", "b", "1", "45.5", "P1", "p",
                  "hello", "world", "", "abc")
ATTRIBUTE_STRINGS = FILTER_STRINGS + ("Api", "Import", "Event", "Ann", "ann", "high", "10")
# Values each path actually carries, so that filters often split the contacts.
PATH_NUMBERS: dict[str, tuple[Any, ...]] = {
    "totalPrice": (45.5, 100, 500, 10), "product.price": (45.5, 50, 100), "items.price": (50, 100, 120),
    "price": (50, 100, 120, 45.5), "qty": (0, 1, 3, 5), "contactId": (1, 2, 3, 4), "tags": (1, 1.0),
    "productId": (1,), "product.productId": (1, 1.0), "code": (1, 2, 0, 1.0),
}
PATH_STRINGS: dict[str, tuple[str, ...]] = {
    "totalPrice": ("45.5", "abc", "100"), "city": ("London", "london", "Lon", "on", "Paris"),
    "product.productId": ("P1", "p1", "P", "1"), "productId": ("P1", "p1", "1"),
    "items.title": ("sneakers", "jacket", "sn", "ers"), "title": ("sneakers", "jacket", "socks", "s"),
    "tags": ("a", "b", "1"), "product.tags": ("a", "b"), "note": ("hello", "world", "hello world"),
    "contactId": ("1", "2", "3"), "code": ("1", "a", "true"),
}
AMOUNTS = (50, 0, 1, 45.5, 100, 120, 250, 500, 1000)
FIXED_PERIODS = ({"today": {}}, {"yesterday": {}}, {"thisWeek": {}}, {"thisMonth": {}}, {"allTime": {}})
CALENDAR_PERIODS = tuple(
    list(FIXED_PERIODS)
    + [{"previous": {"unit": u, "count": n}} for u in ("day", "week", "month") for n in (1, 2, 3)]
    + [{kind: {unit: n}} for kind in ("last", "before") for unit, ns in ALIGNED_N.items() for n in ns
       if not (kind == "before" and unit == "minutes")]
)
DATE_STRINGS = ("1990-03-12", "1996-02-29", "1980-01-01", "2000-06-15")


@functools.lru_cache(maxsize=64)
def _months_before(now_ms: int, tz: str) -> dict[int, int]:
    """Instant -> n for the instants n = 1..14 calendar months before now."""
    return {ref.months_before_ms(now_ms, k, tz): k for k in range(14, 0, -1)}


@functools.lru_cache(maxsize=64)
def _calendar_intervals(now_ms: int, tz: str) -> tuple[tuple[dict[str, Any], int, int], ...]:
    return tuple((p, *ref.period_interval(p, now_ms, tz)) for p in CALENDAR_PERIODS)


def calendar_edges(now_ms: int, tz: str, ts: int) -> list[dict[str, Any]]:
    """Calendar periods with an edge on `ts` or 1 ms from it (placed by the reference's own
    calendar: a wrong edge in either evaluator then flips the event in or out)."""
    return [p for p, lo, hi in _calendar_intervals(now_ms, tz) if ts - lo in (-1, 0, 1) or hi - ts in (-1, 0, 1)]


def sharp_periods(now_ms: int, tz: str, ts: int) -> list[dict[str, Any]]:
    """Periods with an edge on or next to `ts`: calendar ones, durations, absolute instants."""
    out = calendar_edges(now_ms, tz, ts)
    for edge in (ts, ts + 1):
        age = now_ms - edge
        if age > 0:
            for unit, size in ref.UNIT_MS.items():
                if age % size == 0 and age // size <= 800:
                    out.append({"last": {unit: age // size}})
                    if unit != "minutes":
                        out.append({"before": {unit: age // size}})
            k = _months_before(now_ms, tz).get(edge)
            if k:
                out += [{"last": {"months": k}}, {"before": {"months": k}}]
    return out + [{"between": {"from": ts - DAY_MS, "to": ts}}, {"between": {"from": ts, "to": ts + DAY_MS}},
                  {"between": {"from": ts + 1, "to": ts + DAY_MS}}, {"between": {"from": ts - DAY_MS, "to": ts + 1}}]


def _group(period: dict[str, Any]) -> str:
    kind = next(iter(period))
    return kind if kind in ("previous", "last", "before") else "fixed"


def _kind(x: Any) -> str:
    return "bool" if isinstance(x, bool) else "number" if ref.is_number(x) else "string" if isinstance(x, str) else "other"


def near_values(x: Any) -> list[Any]:
    """Filter values close to a value: itself, its other spellings and kinds, neighbours."""
    day = ref.as_date(x)
    if day is not None:
        return [x] + [(day + dt.timedelta(days=d)).isoformat() for d in (-1, 1, 366)]
    if isinstance(x, bool):
        return [x, not x, int(x), str(x).lower()]
    if ref.is_number(x):
        return [x, x + 1, x - 1, float(x), str(x), True] + ([int(x)] if float(x).is_integer() else [])
    if isinstance(x, str):
        out = [x, x.upper(), x.lower(), x.capitalize(), x[:2], x[-2:], x[1:-1], x + "s"]
        number = ref.as_number(x)
        return out + ([number, number + 0.5] if number is not None else [])
    return []


def measured(measure: str, params: list[dict[str, Any]], param: str) -> float | None:
    """sum/avg/min/max/distinct of `param` over some events' params, by the reference's rules."""
    if measure == "distinct":
        keys = {ref.distinct_key(x) for p in params for x in ref.values_at(p, param)}
        return float(len(keys - {None}))
    numbers = [n for p in params for n in (ref.as_number(x) for x in ref.values_at(p, param)) if n is not None]
    if measure == "sum":
        return float(sum(numbers))
    if not numbers:
        return None
    return {"avg": sum(numbers) / len(numbers), "min": min(numbers), "max": max(numbers)}[measure]


class DefinitionMaker:
    """Builds condition JSON for one scenario from a seeded `random.Random`."""

    def __init__(self, rnd: random.Random, now_ms: int, tz: str, events: Sequence[Event] = (),
                 docs: Sequence[dict[str, Any]] = (), created: Sequence[int] = ()) -> None:
        self.rnd, self.now_ms, self.tz = rnd, now_ms, tz
        self.events, self.docs, self.created = list(events), list(docs), list(created)
        self.stored = [parsed(p) for _, _, _, p in self.events]

    # -------------------------------------------------------------- primitives

    def pick(self, options: Sequence[Any]) -> Any:
        return options[self.rnd.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def number(self) -> Any:
        return self.pick(FILTER_NUMBERS) if self.chance(0.7) else self.rnd.randint(-5, 600)

    def amount(self) -> float:
        return self.pick(AMOUNTS) if self.chance(0.6) else self.rnd.randint(-10, 2000) / 2

    def value(self, op: str, numbers: Sequence[Any] | None, strings: Sequence[Any] | None, bools: bool = True) -> Any:
        """A value for `op` of one kind (lists of one kind) from the given pools."""
        kinds = [k for k in (numbers, strings, (True, False) if bools else None) if k]
        ordered = [k for k in (numbers, strings) if k]
        if op in ("eq", "ne"):
            return self.pick(self.pick(kinds))
        if op in ("gt", "gte", "lt", "lte"):
            return self.pick(self.pick(ordered))
        if op == "between":
            pool = self.pick(ordered)
            return sorted([self.pick(pool), self.pick(pool)])
        if op in ("in", "not_in"):
            pool = self.pick(kinds)
            return [self.pick(pool) for _ in range(self.rnd.randint(1, 3))]
        if op in TEXT_OPS:
            return self.pick(strings or FILTER_STRINGS)
        return None

    def filter(self, paths: Sequence[str] = FILTER_PATHS, depth: int = 0, aware: bool = False) -> dict[str, Any]:
        """A parameter filter of any op, `any` included (nested at most twice); `aware`
        filters take their values from what the path carries."""
        if depth < 2 and self.chance(1 / 6):
            path = self.pick(ANY_PATHS if depth == 0 else ("tags", "missing"))
            where = [self.filter(ELEMENT_PATHS, depth + 1, aware) for _ in range(self.rnd.randint(1, 2))]
            return {"param": path, "op": "any", "where": where}
        op, path = self.pick(COMPARISON_OPS), self.pick(paths)
        flt: dict[str, Any] = {"param": path, "op": op}
        if op not in ("exists", "not_exists"):
            if (aware or self.chance(0.5)) and (path in PATH_NUMBERS or path in PATH_STRINGS):
                flt["value"] = self.value(op, PATH_NUMBERS.get(path), PATH_STRINGS.get(path))
            else:
                flt["value"] = self.value(op, FILTER_NUMBERS + (self.rnd.randint(-5, 600),), FILTER_STRINGS)
        return flt

    def period(self) -> dict[str, Any]:
        """Any period kind of SEGMENTS.md §7, its edges mostly where events were placed."""
        kind = self.pick(["fixed", "last", "previous", "between", "before"])
        if kind == "fixed":
            return self.pick(FIXED_PERIODS)
        if kind == "previous":
            return {"previous": {"unit": self.pick(["day", "week", "month"]), "count": self.rnd.randint(1, 3)}}
        if kind == "between":
            if self.chance(0.5):
                a, b = sorted(self.rnd.sample(sorted(set(boundary_instants(self.now_ms, self.tz))), 2))
            else:
                a = self.now_ms - self.rnd.randint(-DAY_MS, 60 * DAY_MS)
                b = a + self.rnd.randint(1, 30 * DAY_MS)
            return {"between": {"from": a, "to": b}}
        units = ["minutes", "hours", "days", "weeks", "months"] if kind == "last" else ["hours", "days", "weeks", "months"]
        unit = self.pick(units)
        top = {"minutes": 600, "hours": 72, "days": 40, "weeks": 10, "months": 14}[unit]
        n = self.pick(ALIGNED_N[unit]) if self.chance(0.5) else self.rnd.randint(1, top)
        return {kind: {unit: n}}

    def cmp(self, draw_number: Any) -> dict[str, Any]:
        """A cmp object: one or two of eq/ne/gt/gte/lt/lte/between."""
        keys = self.rnd.sample(CMP_KEYS, 2 if self.chance(1 / 3) else 1)
        return {k: sorted([draw_number(), draw_number()]) if k == "between" else draw_number() for k in keys}

    # -------------------------------------------------------------- random trees

    def event_condition(self) -> dict[str, Any]:
        """An event condition with any measure (or none), filters and period."""
        body: dict[str, Any] = {"type": self.pick(EVENT_TYPES + ("purchase", "never"))}
        where = [self.filter() for _ in range(self.pick([0, 1, 0, 1, 2]))]
        if where:
            body["where"] = where
        measure = self.pick(["count", "none", "sum", "avg", "min", "max", "distinct", "first", "last",
                             "daysSinceLast", "streak"])
        if measure == "streak":
            unit = self.pick(["day", "week", "month"])
            body["streak"] = {"unit": unit, "count": self.rnd.randint(1, {"day": 4, "week": 3, "month": 2}[unit])}
            return body
        # daysSinceLast looks at all time: a period given with it must change nothing
        if self.chance(0.75 if measure != "daysSinceLast" else 0.3):
            body["period"] = self.period()
        if measure == "count":
            body["count"] = self.cmp(lambda: self.rnd.randint(0, 4))
        elif measure in ("sum", "avg", "min", "max"):
            body[measure] = {"param": self.pick(NUMERIC_PARAMS), **self.cmp(self.amount)}
        elif measure == "distinct":
            body[measure] = {"param": self.pick(DISTINCT_PARAMS), **self.cmp(lambda: self.rnd.randint(0, 4))}
        elif measure in ("first", "last"):
            body[measure] = {}
        elif measure == "daysSinceLast":
            top = self.pick([8, 60, 800])
            body[measure] = self.cmp(lambda: self.rnd.randint(0, top))
        return body

    def attribute_condition(self) -> dict[str, Any]:
        """An attribute condition: typed ops on fields, dates as dates, createdAt and source."""
        name = self.pick(["birthday", "city", "firstName", "score", "vip", "birthday", "joined", "missing",
                          "source", "createdAt"])
        if name in ("birthday", "joined"):
            op = "anniversaryInDays" if self.chance(0.5) else self.pick(DATE_OPS)
            spec: dict[str, Any] = {"field": name, "op": op}
            if op == "anniversaryInDays":
                spec["value"] = self.rnd.randint(0, 3) if self.chance(0.6) else self.pick([7, 30, 364, 365, 366])
            elif op not in ("exists", "not_exists"):
                some_day = dt.date(1950, 1, 1) + dt.timedelta(days=self.rnd.randint(0, 22000))
                spec["value"] = self.value(op, None, DATE_STRINGS + (some_day.isoformat(),), bools=False)
            return spec
        if name == "createdAt":
            op = self.pick(ORDER_OPS + ("exists", "not_exists"))
            spec = {"field": name, "op": op}
            if op not in ("exists", "not_exists"):
                instants = [self.now_ms - self.rnd.randint(0, 400 * DAY_MS) for _ in range(3)]
                spec["value"] = self.value(op, instants, None, bools=False)
            return spec
        op = self.pick(COMPARISON_OPS)
        spec = {"field": name, "op": op}
        if op not in ("exists", "not_exists"):
            spec["value"] = self.value(op, FILTER_NUMBERS, ATTRIBUTE_STRINGS)
        return spec

    def identifier_condition(self) -> dict[str, Any]:
        kind = self.pick(["externalId", "email", "phone", "pushToken", "loyaltyCard", "otherKey"])
        return {"kind": kind, "present": self.chance(0.5)}

    def condition(self, segment_names: Sequence[str] = (), depth: int = 0) -> dict[str, Any]:
        """A condition tree of every form, at most three levels of all/any/not."""
        if depth >= 3 or self.chance(0.45):
            leaf = self.pick(["event", "event", "attribute", "identifier"] + (["segment"] if segment_names else []))
            if leaf == "event":
                return {"event": self.event_condition()}
            if leaf == "attribute":
                return {"attribute": self.attribute_condition()}
            if leaf == "identifier":
                return {"identifier": self.identifier_condition()}
            return {"segment": self.pick(list(segment_names))}
        form = self.pick(["all", "any", "not"])
        if form == "not":
            return {"not": self.condition(segment_names, depth + 1)}
        return {form: [self.condition(segment_names, depth + 1) for _ in range(self.rnd.randint(1, 3))]}

    # -------------------------------------------------------------- focused leaves

    def value_filter(self, params: Any, paths: Sequence[str] = FILTER_PATHS) -> dict[str, Any] | None:
        """A filter from a value the params hold: the same or another kind, other case, a
        prefix, a neighbour... None when no path reaches a scalar."""
        reached = [(path, x) for path in paths for x in ref.values_at(params, path) if near_values(x)]
        if not reached:
            return None
        path, x = self.pick(reached)
        op = self.pick(COMPARISON_OPS if ref.as_date(x) is None else DATE_OPS)  # dates: no substring tests
        flt: dict[str, Any] = {"param": path, "op": op}
        if op in ("exists", "not_exists"):
            return flt
        near = near_values(x)
        if op in TEXT_OPS:
            near = [v for v in near if isinstance(v, str)] or ["a"]
        elif op in ORDER_OPS:
            near = [v for v in near if not isinstance(v, bool)] or [0]
        first = self.pick(near)
        same = [v for v in near if _kind(v) == _kind(first)]
        if op == "between":
            flt["value"] = sorted([first, self.pick(same)])
        elif op in ("in", "not_in"):
            flt["value"] = [first] + ([self.pick(same)] if self.chance(0.5) else [])
        else:
            flt["value"] = first
        return flt

    def element_filter(self, params: dict[str, Any]) -> dict[str, Any]:
        """`any` over the event's items: the title of one item with the price of the same
        item or of another; or over the product object."""
        items = [x for x in ref.values_at(params, "items") if isinstance(x, dict)]
        if not items:
            where = [self.filter(("productId", "price", "tags", "missing"), 1, True) for _ in range(self.rnd.randint(1, 2))]
            return {"param": "product", "op": "any", "where": where}
        where = []
        for name in ("title", "price"):
            flt = self.value_filter(self.pick(items), (name,))
            where.append(flt or {"param": name, "op": self.pick(["not_exists", "exists"])})
        self.rnd.shuffle(where)
        return {"param": "items", "op": "any", "where": where}

    def contact_attribute(self) -> dict[str, Any]:
        """An attribute condition from one contact's own field: an anniversary that falls on
        its date (or a day off), or a value near the field's."""
        index = self.rnd.randrange(len(self.docs))
        fields = {**self.docs[index].get("fields", {}), "createdAt": self.created[index]}
        dates = [n for n in sorted(fields) if ref.as_date(fields[n]) is not None]
        name = self.pick(dates) if dates and self.chance(0.6) else self.pick(sorted(fields))
        day = ref.as_date(fields[name])
        if day is not None and self.chance(0.5):
            today = ref.local_date(self.now_ms, self.tz)
            for year in (today.year, today.year + 1):
                leap = (dt.date(year, 3, 1) - dt.timedelta(days=1)).day == 29
                mday = 28 if (day.month, day.day) == (2, 29) and not leap else day.day
                n = (dt.date(year, day.month, mday) - today).days
                if n >= 0:
                    break
            return {"field": name, "op": "anniversaryInDays", "value": max(0, n + self.pick([0, 0, -1, 1]))}
        flt = self.value_filter({name: fields[name]}, (name,))
        if flt is None:
            return self.attribute_condition()
        return {"field": name, **{k: v for k, v in flt.items() if k != "param"}}

    def add_event(self, etype: str, cid: int, ts: int) -> dict[str, Any]:
        """A new event for the scenario (the caller stores it with the others); its params."""
        params = {"seq": len(self.events), "mark": self.rnd.randint(0, 3), "code": self.pick([1, "1", 1.0, True]),
                  "tags": [self.pick([1, "1", 1.0, True, "a"]) for _ in range(self.rnd.randint(0, 2))]}
        self.events.append((etype, cid, ts, params))
        self.stored.append(parsed(params))
        return params

    def period_edge(self) -> dict[str, Any]:
        """A calendar or duration period and one event on (or 1 ms off) one of its edges;
        mostly a new event placed there for this condition."""
        group = self.pick(["fixed", "previous", "last", "before"])  # each kind as likely, whatever its size
        period, lo, hi = self.pick([c for c in _calendar_intervals(self.now_ms, self.tz) if _group(c[0]) == group])
        edges = [t for t in (lo - 1, lo, hi - 1, hi) if lo != ref.NO_LOWER_BOUND or t >= hi - 1]
        if self.docs and self.chance(0.7):
            etype = self.pick(EVENT_TYPES)
            params = self.add_event(etype, self.rnd.randint(1, len(self.docs)), self.pick(edges))
        else:
            near = [i for i, e in enumerate(self.events) if e[2] in edges]
            etype, _, _, params = self.events[self.pick(near) if near else self.rnd.randrange(len(self.events))]
        measure = self.pick(["count", "first", "last"])
        return {"event": {"type": etype, "period": period, "where": [{"param": "seq", "op": "eq", "value": params["seq"]}],
                          measure: {"gte": 1} if measure == "count" else {}}}

    def focused_tree(self) -> dict[str, Any]:
        """A focused leaf, sometimes negated or joined with another by all/any."""
        roll = self.rnd.random()
        if roll < 0.15:
            return {"not": self.focused()}
        if roll < 0.25:
            return {self.pick(["all", "any"]): [self.focused(), self.focused_tree()]}
        return self.focused()

    def focused(self) -> dict[str, Any]:
        """A single leaf aimed at one rule (a period edge, a filter op, `any`, a measure, a
        sequence measure, a streak, an attribute) on one to three events of one contact
        picked out by their `seq` parameter, so each of them decides the condition."""
        family = self.pick(["edge", "filter", "measure", "any", "attribute", "sequence", "distinct", "streak",
                            "period", "filter"])
        if family == "attribute" or not self.events:
            return {"attribute": self.contact_attribute() if self.chance(0.5) else self.attribute_condition()}
        first = self.rnd.randrange(len(self.events))
        param = ""
        if family == "period":
            return self.period_edge()
        if family in ("edge", "sequence"):
            for _ in range(4):  # prefer an event on a calendar period's edge
                if calendar_edges(self.now_ms, self.tz, self.events[first][2]):
                    break
                first = self.rnd.randrange(len(self.events))
        elif family in ("measure", "distinct", "any"):
            param = self.pick({"measure": ["totalPrice", "items.price", "product.price", "qty", "code"],
                               "distinct": ["code", "tags", "code", "product.productId", "city", "items.title", "flag"],
                               "any": ["items"]}[family])
            having = [i for i, p in enumerate(self.stored) if len(ref.values_at(p, param)) >= (2 if family == "any" else 1)]
            if having:
                first = self.pick(having)
        etype, cid, ts, _ = self.events[first]
        picks = [first]
        if family not in ("edge", "sequence"):
            siblings = [i for i, e in enumerate(self.events) if e[0] == etype and e[1] == cid and i != first]
            if family in ("measure", "distinct") and len(siblings) < 2 and self.chance(0.6):
                # more events of that contact and type, with values of easily confused kinds
                for _ in range(self.rnd.randint(1, 2)):
                    self.add_event(etype, cid, self.now_ms - self.rnd.randint(0, 30 * DAY_MS))
                    siblings.append(len(self.events) - 1)
            picks += self.rnd.sample(siblings, min(len(siblings), self.rnd.randint(1 if family in ("measure", "distinct") else 0, 2)))
        seqs = [self.events[i][3]["seq"] for i in picks]
        by_seq = {"param": "seq", "op": "eq", "value": seqs[0]} if len(seqs) == 1 else {"param": "seq", "op": "in", "value": seqs}
        body: dict[str, Any] = {"type": etype, "where": [by_seq]}
        stored = self.stored[first]
        if family == "edge":
            body["period"] = self.pick(sharp_periods(self.now_ms, self.tz, ts))
            measure = self.pick(["count", "first", "last", "count"])
            body[measure] = {"gte": 1} if measure == "count" else {}
        elif family == "filter":
            body.update(period={"allTime": {}}, where=[by_seq, self.value_filter(stored) or self.filter(aware=True)])
        elif family == "any":
            body.update(period={"allTime": {}}, where=[by_seq, self.element_filter(stored)])
        elif family in ("measure", "distinct"):
            measure = self.pick(["sum", "avg", "min", "max"]) if family == "measure" else "distinct"
            value = measured(measure, [self.stored[i] for i in picks], param)
            if value is None or self.chance(0.2):
                bound = self.amount() if family == "measure" else self.rnd.randint(0, 4)
            else:
                bound = value + self.pick([0, 0, 1, -1, 0.5])
            body.update(period={"allTime": {}}, **{measure: {"param": param, self.pick(["eq", "gte", "lte", "gt", "lt", "ne"]): bound}})
        elif family == "sequence":
            measure = self.pick(["first", "last", "daysSinceLast"])
            if measure == "daysSinceLast":
                days = max(0, (self.now_ms - ts) // DAY_MS + self.pick([0, 0, -1, 1]))
                body[measure] = {self.pick(["eq", "gte", "lt", "lte", "gt"]): days}
            else:
                body.update(period=self.pick(sharp_periods(self.now_ms, self.tz, ts)), **{measure: {}})
        else:
            choice = self.pick(["none", "mark", "value"])
            extra = {"none": None, "mark": {"param": "mark", "op": "eq", "value": stored["mark"]},
                     "value": self.value_filter(stored)}[choice]
            body["where"] = [extra] if extra else []
            body["streak"] = {"unit": self.pick(["day", "week", "month"]), "count": self.rnd.randint(1, 3)}
            if not body["where"]:
                del body["where"]
        return {"event": body}


@st.composite
def scenarios(draw: st.DrawFn, n_random: int = 6, n_focused: int = 100) -> Scenario:
    """A full scenario with `n_random` random condition trees and `n_focused` focused leaves,
    all in the scenario's zone."""
    now_ms = draw(nows())
    tz = draw(st.sampled_from(TIME_ZONES))
    n = draw(st.integers(2, 6))
    docs = [draw(contact_docs(cid, now_ms, tz)) for cid in range(1, n + 1)]
    created = [now_ms - draw(st.integers(0, 400 * DAY_MS)) for _ in docs]
    sources = [draw(st.sampled_from(["Api", "Import"])) for _ in docs]
    active = draw(st.sampled_from([n, n - 1]))  # the last contact may have no events at all
    events: list[Event] = []
    for _ in range(draw(st.integers(3 * n, 8 * n))):
        etype = draw(st.sampled_from(EVENT_TYPES))
        cid = draw(st.integers(1, active))
        events.append((etype, cid, draw(timestamps(now_ms, tz)), draw(event_params())))
    for _ in range(draw(st.integers(1, 3))):
        etype = draw(st.sampled_from(EVENT_TYPES))
        cid = draw(st.integers(1, active))
        events += [(etype, cid, ts, draw(event_params())) for ts in draw(habits(now_ms, tz))]
    order = draw(st.permutations(range(len(events))))
    events = [events[i] for i in order]
    for seq, (_, _, _, params) in enumerate(events):
        params["seq"] = seq
    cuts = sorted(draw(st.sets(st.integers(1, len(events) - 1), max_size=2))) if len(events) > 1 else []
    changes: list[tuple[str, int, int]] = []
    if draw(st.sampled_from([False, False, True])):
        a, b, c = (draw(st.permutations(range(1, n + 1))) + [0, 0])[:3]
        for kind in draw(st.sampled_from([["erase"], ["merge"], ["erase", "merge"], ["merge", "erase"]])):
            if kind == "erase":
                changes.append(("erase", a, 0))
            elif c:
                changes.append(("merge", b, c))
    other_nows = [now_ms - draw(st.sampled_from([1, HOUR_MS, DAY_MS, 3 * DAY_MS, 40 * DAY_MS]))]
    seed = draw(st.integers(0, 2**32 - 1))
    maker = DefinitionMaker(random.Random(seed), now_ms, tz, events, docs, created)
    conditions = [maker.condition() for _ in range(n_random)] + [maker.focused_tree() for _ in range(n_focused)]
    definitions = [{"name": f"adhoc-{k}", "timezone": tz, "condition": c} for k, c in enumerate(conditions)]
    events = maker.events  # with the events placed on period edges, ingested in the last batch
    return Scenario(now_ms, tz, docs, created, sources, events, definitions, cuts + [len(events)], changes,
                    other_nows, seed)

"""Reference evaluator for segment definitions, written from SEGMENTS.md alone.

Plain Python, no numpy, one obvious loop per rule: it is slow on purpose and exists so that
property tests can hold the real engine to the contract. Nothing here imports the engine.

Data model: events carry JSON-parsed params (nested dicts and lists); contacts carry their
identifiers (kind -> values; contact keys as ``key:<name>``), their fields, ``created_at_ms``
and ``source``. Times are int epoch milliseconds; calendar periods are computed in the
segment's IANA zone with zoneinfo.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
UNIT_MS = {"minutes": 60_000, "hours": 3_600_000, "days": DAY_MS, "weeks": 7 * DAY_MS}
NO_LOWER_BOUND = -(2**62)
MEASURES = ("count", "sum", "avg", "min", "max", "distinct", "first", "last", "daysSinceLast", "streak")
CMP_KEYS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
IDENTIFIER_KINDS = ("externalId", "email", "phone", "pushToken")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Numeric text: ASCII digits, optional sign, fraction and exponent, nothing around it.
_NUMERIC_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class RefEvent:
    """One stored event: its type key, owning contact, timestamp (epoch ms) and parsed params."""

    type: str
    contact_id: int
    ts_ms: int
    params: dict[str, Any]


@dataclass
class RefContact:
    """A contact: identifiers (kind -> values; keys as ``key:<name>``), fields, creation, source."""

    contact_id: int
    identifiers: dict[str, list[Any]] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    created_at_ms: int = 0
    source: str = "Api"


# --------------------------------------------------------------------------- parameter values


def values_at(root: Any, path: str) -> list[Any]:
    """Every value the dotted `path` reaches in `root`.

    Arrays are passed through at every step (including the last: an array of scalars yields
    its elements); null is absent; an empty array yields nothing. Objects are values.
    """
    current = [root]
    for name in path.split("."):
        reached: list[Any] = []
        for value in current:
            if isinstance(value, dict) and name in value:
                reached.extend(_spread(value[name]))
        current = reached
    return current


def _spread(value: Any) -> list[Any]:
    """A value as a list of values: arrays contribute their elements, null nothing."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[Any] = []
        for element in value:
            out.extend(_spread(element))
        return out
    return [value]


def is_number(x: Any) -> bool:
    """A JSON number (booleans are not numbers)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def as_number(x: Any) -> float | None:
    """x as a float when it is a number or a string that parses as a finite number."""
    if is_number(x):
        return float(x)
    if isinstance(x, str) and _NUMERIC_TEXT.fullmatch(x):
        parsed = float(x)
        return parsed if math.isfinite(parsed) else None
    return None


def as_date(x: Any) -> dt.date | None:
    """x as a calendar date when it is a ``YYYY-MM-DD`` string naming a real date."""
    if isinstance(x, dt.date) and not isinstance(x, dt.datetime):
        return x
    if isinstance(x, str) and _DATE_TEXT.fullmatch(x):
        try:
            return dt.date.fromisoformat(x)
        except ValueError:
            return None
    return None


def _operand(x: Any, like: Any) -> Any:
    """x in the kind of the filter value `like`, or None when the kinds do not compare.

    Numeric filter values take numbers and numeric strings; strings take strings (dates
    compare with date strings as dates); booleans take booleans only.
    """
    if isinstance(like, bool):
        return x if isinstance(x, bool) else None
    if is_number(like):
        return as_number(x)
    if isinstance(like, str):
        if isinstance(x, dt.date):
            return x if as_date(like) is not None else None
        return x if isinstance(x, str) else None
    return None


def _norm(like: Any, x: Any) -> Any:
    """The filter value in the form its operand takes (floats for numbers, dates for dates)."""
    if isinstance(like, bool):
        return like
    if is_number(like):
        return float(like)
    if isinstance(x, dt.date):
        return as_date(like)
    return like


def _equal(x: Any, like: Any) -> bool | None:
    """x == like under the typing rules; None when x is of another kind."""
    operand = _operand(x, like)
    if operand is None:
        return None
    return operand == _norm(like, operand)


def value_passes(op: str, value: Any, x: Any) -> bool:
    """One reached value x against one filter (ops other than exists/not_exists/any)."""
    if op in ("eq", "ne"):
        same = _equal(x, value)
        return same is not None and (same if op == "eq" else not same)
    if op in ("gt", "gte", "lt", "lte"):
        operand = _operand(x, value)
        if operand is None:
            return False
        bound = _norm(value, operand)
        return {"gt": operand > bound, "gte": operand >= bound, "lt": operand < bound, "lte": operand <= bound}[op]
    if op == "between":
        low, high = value
        a, b = _operand(x, low), _operand(x, high)
        if a is None or b is None or type(a) is not type(b):  # bounds of two kinds: nothing is between
            return False
        return _norm(low, a) <= a <= _norm(high, b)
    if op in ("in", "not_in"):
        verdicts = [v for v in (_equal(x, item) for item in value) if v is not None]
        if not verdicts:
            return False
        return any(verdicts) if op == "in" else not any(verdicts)
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        if not isinstance(x, str) or not isinstance(value, str):
            return False
        if op == "contains":
            return value in x
        if op == "not_contains":
            return value not in x
        if op == "starts_with":
            return x.startswith(value)
        return x.endswith(value)
    raise ValueError(f"unknown filter op {op!r}")


def filter_holds(flt: dict[str, Any], root: Any) -> bool:
    """A parameter filter (SEGMENTS.md §5) against an event's params (or an `any` element)."""
    op = flt["op"]
    reached = values_at(root, flt["param"])
    return values_pass(op, flt.get("value"), reached, flt.get("where", ()))


def values_pass(op: str, value: Any, reached: list[Any], where: Iterable[dict[str, Any]] = ()) -> bool:
    """A filter op over the values one path reached: at least one satisfies; not_exists: none."""
    if op == "exists":
        return bool(reached)
    if op == "not_exists":
        return not reached
    if op == "any":
        nested = list(where)
        return any(all(filter_holds(g, element) for g in nested) for element in reached)
    return any(value_passes(op, value, x) for x in reached)


# --------------------------------------------------------------------------- calendar


def local_datetime(ms: int, tz: str) -> dt.datetime:
    """The zone's wall clock at instant `ms`."""
    return (_EPOCH + dt.timedelta(milliseconds=ms)).astimezone(ZoneInfo(tz))


def instant_ms(local: dt.datetime, tz: str) -> int:
    """The instant of a naive wall-clock time in `tz` (fold=0 for repeated or skipped times)."""
    aware = local.replace(tzinfo=ZoneInfo(tz))
    return (aware - _EPOCH) // dt.timedelta(milliseconds=1)


def local_date(ms: int, tz: str) -> dt.date:
    return local_datetime(ms, tz).date()


def day_start_ms(day: dt.date, tz: str) -> int:
    """The first instant of calendar day `day` in `tz` (local midnight)."""
    return instant_ms(dt.datetime.combine(day, dt.time()), tz)


def add_months(day: dt.date, n: int) -> dt.date:
    """The same day of the month n months later (n may be negative), clamped to the month's end."""
    months = day.year * 12 + (day.month - 1) + n
    year, month = divmod(months, 12)
    month += 1
    last = _month_length(year, month)
    return dt.date(year, month, min(day.day, last))


def _month_length(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def unit_start_date(day: dt.date, unit: str) -> dt.date:
    """The first day of the day / week (Monday) / month containing `day`."""
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown unit {unit!r}")


def shift_units(day: dt.date, unit: str, n: int) -> dt.date:
    """`day` moved by n calendar days / weeks / months."""
    if unit == "day":
        return day + dt.timedelta(days=n)
    if unit == "week":
        return day + dt.timedelta(days=7 * n)
    return add_months(day, n)


def months_before_ms(now_ms: int, n: int, tz: str) -> int:
    """The same local date n months before now (day clamped), at now's local time of day."""
    now_local = local_datetime(now_ms, tz)
    day = add_months(now_local.date(), -n)
    return instant_ms(dt.datetime.combine(day, now_local.time().replace(tzinfo=None)), tz)


def _amount(spec: dict[str, Any]) -> tuple[str, int]:
    """The single (unit, n) of `{"days": 3}`-style period bodies."""
    (unit, n), = spec.items()
    return unit, int(n)


def parse_instant(value: Any) -> int:
    """An absolute instant given as epoch milliseconds or an RFC 3339 string."""
    if is_number(value):
        return int(value)
    if isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value):
        return int(float(value))
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    return (dt.datetime.fromisoformat(text) - _EPOCH) // dt.timedelta(milliseconds=1)


def period_interval(period: dict[str, Any], now_ms: int, tz: str) -> tuple[int, int]:
    """The half-open interval [lo, hi) of a period (SEGMENTS.md §7), never past now."""
    (kind, body), = period.items()
    end = now_ms + 1  # "≤ now"
    today = local_date(now_ms, tz)
    if kind == "last":
        unit, n = _amount(body)
        if unit == "months":
            return months_before_ms(now_ms, n, tz), end
        return now_ms - n * UNIT_MS[unit], end
    if kind == "today":
        return day_start_ms(today, tz), end
    if kind == "thisWeek":
        return day_start_ms(unit_start_date(today, "week"), tz), end
    if kind == "thisMonth":
        return day_start_ms(unit_start_date(today, "month"), tz), end
    if kind == "yesterday":
        return day_start_ms(today - dt.timedelta(days=1), tz), day_start_ms(today, tz)
    if kind == "previous":
        unit, n = body["unit"], int(body["count"])
        current = unit_start_date(today, unit)
        return day_start_ms(shift_units(current, unit, -n), tz), day_start_ms(current, tz)
    if kind == "between":
        lo, hi = parse_instant(body["from"]), parse_instant(body["to"])
        return lo, min(hi, end)
    if kind == "before":
        unit, n = _amount(body)
        if unit == "months":
            return NO_LOWER_BOUND, months_before_ms(now_ms, n, tz)
        return NO_LOWER_BOUND, now_ms - n * UNIT_MS[unit]
    if kind == "allTime":
        return NO_LOWER_BOUND, end
    raise ValueError(f"unknown period {kind!r}")


def streak_units(unit: str, count: int, now_ms: int, tz: str) -> list[tuple[int, int]]:
    """The `count` previous complete units before the one in progress, as [lo, hi) intervals."""
    current = unit_start_date(local_date(now_ms, tz), unit)
    out = []
    for k in range(1, count + 1):
        lo = day_start_ms(shift_units(current, unit, -k), tz)
        hi = day_start_ms(shift_units(current, unit, -k + 1), tz)
        out.append((lo, hi))
    return out


# --------------------------------------------------------------------------- measures


def cmp_holds(cmp: dict[str, Any], x: float) -> bool:
    """Every comparison given in `cmp` holds for x (between inclusive)."""
    checks = {
        "eq": lambda v: x == v,
        "ne": lambda v: x != v,
        "gt": lambda v: x > v,
        "gte": lambda v: x >= v,
        "lt": lambda v: x < v,
        "lte": lambda v: x <= v,
        "between": lambda v: v[0] <= x <= v[1],
    }
    return all(checks[key](cmp[key]) for key in CMP_KEYS if key in cmp)


def distinct_key(x: Any) -> tuple[str, Any] | None:
    """The identity of a value for `distinct`: kind and value (1 == 1.0, 1 != "1")."""
    if isinstance(x, bool):
        return ("bool", x)
    if is_number(x):
        return ("number", float(x))
    if isinstance(x, str):
        return ("string", x)
    return None


def _numbers(events: list[RefEvent], param: str) -> list[float]:
    out = []
    for event in events:
        for x in values_at(event.params, param):
            number = as_number(x)
            if number is not None:
                out.append(number)
    return out


def measure_holds(spec: dict[str, Any], measure: str, matched: list[RefEvent], in_period: list[RefEvent],
                  now_ms: int, tz: str) -> bool:
    """One contact's event condition, given its events of the type that pass the filters
    (`matched`, all time up to now, sorted by time) and those of them in the period."""
    body = spec.get(measure, {})
    if measure == "count":
        return cmp_holds(body, float(len(in_period)))
    if measure in ("sum", "avg", "min", "max"):
        numbers = _numbers(in_period, body["param"])
        if measure == "sum":
            return cmp_holds(body, float(sum(numbers)))
        if not numbers:
            return False
        value = {"avg": lambda: sum(numbers) / len(numbers), "min": lambda: min(numbers), "max": lambda: max(numbers)}
        return cmp_holds(body, value[measure]())
    if measure == "distinct":
        keys = set()
        for event in in_period:
            for x in values_at(event.params, body["param"]):
                key = distinct_key(x)
                if key is not None:
                    keys.add(key)
        return cmp_holds(body, float(len(keys)))
    if measure in ("first", "last"):
        if not matched:
            return False
        lo, hi = period_interval(spec.get("period") or {"today": {}}, now_ms, tz)
        t = matched[0].ts_ms if measure == "first" else matched[-1].ts_ms
        return lo <= t < hi
    if measure == "daysSinceLast":
        if not matched:
            return False
        return cmp_holds(body, float((now_ms - matched[-1].ts_ms) // DAY_MS))
    if measure == "streak":
        for lo, hi in streak_units(body["unit"], int(body["count"]), now_ms, tz):
            if not any(lo <= e.ts_ms < hi for e in matched):
                return False
        return True
    raise ValueError(f"unknown measure {measure!r}")


def measure_of(spec: dict[str, Any]) -> str:
    """The event condition's measure; `count` when none is given."""
    given = [m for m in MEASURES if m in spec]
    if len(given) > 1:
        raise ValueError(f"several measures: {given}")
    return given[0] if given else "count"


# --------------------------------------------------------------------------- attributes


def attribute_value(contact: RefContact, name: str, tz: str) -> Any:
    """A contact field as a filter operand: dates become dates, createdAt is epoch ms."""
    if name == "createdAt":
        return contact.created_at_ms
    if name == "source":
        return contact.source
    value = contact.fields.get(name)
    date = as_date(value)
    return date if date is not None else value


def anniversary_holds(day: dt.date, n: int, now_ms: int, tz: str) -> bool:
    """The date's month and day fall n days after now's local date (29 Feb -> 28 Feb
    when the target year is not a leap year)."""
    target = local_date(now_ms, tz) + dt.timedelta(days=n)
    month, mday = day.month, day.day
    if (month, mday) == (2, 29) and _month_length(target.year, 2) == 28:
        mday = 28
    return (target.month, target.day) == (month, mday)


def attribute_holds(spec: dict[str, Any], contact: RefContact, now_ms: int, tz: str) -> bool:
    op, value = spec["op"], spec.get("value")
    x = attribute_value(contact, spec["field"], tz)
    if op == "anniversaryInDays":
        if spec["field"] == "createdAt":
            day = local_date(x, tz)
        else:
            day = x if isinstance(x, dt.date) else None
        return day is not None and anniversary_holds(day, int(value), now_ms, tz)
    return values_pass(op, value, _spread(x))


def identifier_holds(spec: dict[str, Any], contact: RefContact) -> bool:
    kind = spec["kind"]
    key = kind if kind in IDENTIFIER_KINDS else f"key:{kind}"
    has = bool(contact.identifiers.get(key))
    return has if spec.get("present", True) else not has


# --------------------------------------------------------------------------- evaluation


class _Evaluation:
    """One evaluation at `now_ms`: the contacts, their events up to now, the saved segments."""

    def __init__(self, events: list[RefEvent], contacts: dict[int, RefContact], now_ms: int,
                 segments: dict[str, dict[str, Any]]) -> None:
        self.contacts = {cid: c for cid, c in contacts.items() if cid != 0}
        self.universe = set(self.contacts)
        self.now_ms = now_ms
        self.segments = segments
        self.events: dict[int, list[RefEvent]] = {cid: [] for cid in self.universe}
        for event in events:
            if event.ts_ms <= now_ms and event.contact_id in self.events:
                self.events[event.contact_id].append(event)
        for rows in self.events.values():
            rows.sort(key=lambda e: e.ts_ms)

    def segment(self, doc: dict[str, Any], stack: tuple[str, ...] = ()) -> set[int]:
        if "contacts" in doc and doc.get("condition") is None:
            return {int(c) for c in doc["contacts"]} & self.universe
        return self.node(doc["condition"], doc.get("timezone") or "UTC", stack)

    def node(self, cond: dict[str, Any], tz: str, stack: tuple[str, ...]) -> set[int]:
        (form, body), = cond.items()
        if form == "all":
            out = set(self.universe)
            for child in body:
                out &= self.node(child, tz, stack)
            return out
        if form == "any":
            out = set()
            for child in body:
                out |= self.node(child, tz, stack)
            return out
        if form == "not":
            return self.universe - self.node(body, tz, stack)
        if form == "event":
            return {c for c in self.universe if self.event_holds(body, c, tz)}
        if form == "attribute":
            return {c for c in self.universe if attribute_holds(body, self.contacts[c], self.now_ms, tz)}
        if form == "identifier":
            return {c for c in self.universe if identifier_holds(body, self.contacts[c])}
        if form == "segment":
            if body in stack:
                raise ValueError(f"segment cycle through {body!r}")
            return self.segment(self.segments[body], stack + (body,))
        raise ValueError(f"unknown condition {form!r}")

    def event_holds(self, spec: dict[str, Any], contact_id: int, tz: str) -> bool:
        where = spec.get("where", [])
        matched = [
            e for e in self.events[contact_id]
            if e.type == spec["type"] and all(filter_holds(f, e.params) for f in where)
        ]
        measure = measure_of(spec)
        in_period: list[RefEvent] = []
        if measure not in ("first", "last", "daysSinceLast", "streak"):
            lo, hi = period_interval(spec.get("period") or {"today": {}}, self.now_ms, tz)
            in_period = [e for e in matched if lo <= e.ts_ms < hi]
        body = dict(spec)
        if measure == "count" and "count" not in spec:
            body["count"] = {"gte": 1}
        return measure_holds(body, measure, matched, in_period, self.now_ms, tz)


def evaluate(definition: dict[str, Any], events: list[RefEvent], contacts: dict[int, RefContact], now_ms: int,
             segments: dict[str, dict[str, Any]] | None = None) -> set[int]:
    """Members of a segment definition (SEGMENTS.md JSON) at `now_ms`.

    `segments` maps names to the definitions that `{"segment": name}` refers to. Events
    stamped after now do not exist; contact 0 (system events) is never a member.
    """
    return _Evaluation(events, contacts, now_ms, segments or {}).segment(definition)

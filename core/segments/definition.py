"""Segment definitions: JSON (SEGMENTS.md) to core.segments.plan, and reference checks.

The way back (canonical JSON) is core/segments/canonical.py; its functions are re-exported here.

Every rejection is InvalidArgument(path, reason) with the path from the definition root, e.g.
``condition.all[2].event.period``. Numbers arrive as JSON numbers; integral floats (3.0, as the
proto JSON mapping produces) are accepted wherever an integer is required.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.errors import InvalidArgument
from core.periods import zone
from core.segments.canonical import CMP_KEYS, condition_to_json, definition_to_json, format_instant
from core.segments.plan import (
    ATTRIBUTE_OPS,
    CALENDAR_UNITS,
    DURATION_UNITS,
    FILTER_OPS,
    IDENTIFIER_KINDS,
    MEASURES,
    PARAM_MEASURES,
    All,
    AnyOf,
    AttrCond,
    Cmp,
    Definition,
    EventCond,
    Filter,
    IdentCond,
    Node,
    Not,
    Period,
    SegmentRef,
    node_paths,
)

MAX_DEPTH = 16  # levels of conditions; the root condition is level 1
MAX_CONDITIONS = 256  # condition objects in all, composites and leaves
MAX_FILTER_DEPTH = 16  # nesting of `any` filters; a top-level filter is level 1
MAX_AMOUNT = 10**9  # period amounts and counts; keeps every bound inside int64 ms
MAX_STREAK = 1000
MAX_CONTACT_ID = 2**63 - 1

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_EPOCH_DIGITS = re.compile(r"-?[0-9]+")
_SCALAR_OPS = frozenset({"eq", "ne"})
_ORDER_OPS = frozenset({"gt", "gte", "lt", "lte"})
_TEXT_OPS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
_SET_OPS = frozenset({"in", "not_in"})
_PRESENCE_OPS = frozenset({"exists", "not_exists"})
_CONDITION_KEYS = ("all", "any", "not", "event", "attribute", "identifier", "segment")
_ROOT_KEYS = frozenset({"name", "description", "purpose", "tags", "timezone", "condition", "contacts"})
_MIN_MS = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# --- scalar checks ---------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number(v: Any, path: str) -> float:
    if not _is_number(v):
        raise InvalidArgument(path, "must be a finite number")
    return float(v)


def _integer(v: Any, path: str, lo: int, hi: int) -> int:
    if not _is_number(v) or v != int(v):
        raise InvalidArgument(path, "must be an integer")
    n = int(v)
    if not lo <= n <= hi:
        raise InvalidArgument(path, f"must be between {lo} and {hi}")
    return n


def _text(v: Any, path: str, *, empty_ok: bool = False) -> str:
    if not isinstance(v, str):
        raise InvalidArgument(path, "must be a string")
    if not v and not empty_ok:
        raise InvalidArgument(path, "must not be empty")
    return v


def _get(obj: Mapping[str, Any], key: str, default: Any) -> Any:
    """obj[key], or `default` when absent or null."""
    v = obj.get(key)
    return default if v is None else v


def _object(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise InvalidArgument(path, "must be an object")
    return v


def _array(v: Any, path: str) -> list[Any]:
    if not isinstance(v, (list, tuple)):
        raise InvalidArgument(path, "must be a list")
    return list(v)


def _only_keys(obj: Mapping[str, Any], allowed: frozenset[str] | tuple[str, ...], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidArgument(f"{path}.{key}" if path else str(key), "unknown key")


def _one_key(obj: Mapping[str, Any], allowed: tuple[str, ...], path: str, what: str) -> str:
    """The single key of `obj`, which must be one of `allowed`."""
    _only_keys(obj, allowed, path)
    if len(obj) != 1:
        raise InvalidArgument(path, f"needs exactly one of {', '.join(allowed)}" if not obj
                              else f"{what} takes exactly one of {', '.join(allowed)}")
    return next(iter(obj))


def _scalar(v: Any, path: str) -> str | float | bool:
    """A filter value: string, boolean, or number (as float)."""
    if isinstance(v, (str, bool)):
        return v
    if _is_number(v):
        return float(v)
    raise InvalidArgument(path, "must be a string, number or boolean")


def _path(v: Any, path: str) -> str:
    text = _text(v, path)
    if any(part == "" for part in text.split(".")):
        raise InvalidArgument(path, "has an empty path segment")
    return text


def _instant_ms(v: Any, path: str) -> int:
    """RFC 3339 text or epoch ms (number or digit string) as epoch ms."""
    if isinstance(v, str) and _EPOCH_DIGITS.fullmatch(v):
        v = int(v)
    if isinstance(v, str):
        try:
            moment = dt.datetime.fromisoformat(v)
        except ValueError:
            raise InvalidArgument(path, "must be RFC 3339 or epoch milliseconds") from None
        if moment.tzinfo is None:
            raise InvalidArgument(path, "RFC 3339 time needs an offset or Z")
        ms = (moment - _EPOCH) // dt.timedelta(milliseconds=1)
        if not _MIN_MS <= ms <= _MAX_MS:
            raise InvalidArgument(path, "outside years 1-9999")
        return ms
    return _integer(v, path, _MIN_MS, _MAX_MS)


__all__ = ["condition_to_json", "definition_to_json", "find_cycle", "format_instant", "parse_definition", "references"]


# --- conditions ------------------------------------------------------------------------

@dataclass(slots=True)
class _Parser:
    known_segment: Callable[[str], bool] | None
    count: int = 0  # condition objects seen so far

    def condition(self, doc: Any, path: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise InvalidArgument(path, f"conditions nested deeper than {MAX_DEPTH}")
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise InvalidArgument(path, f"more than {MAX_CONDITIONS} conditions")
        obj = _object(doc, path)
        key = _one_key(obj, _CONDITION_KEYS, path, "a condition")
        body = obj[key]
        at = f"{path}.{key}"
        if key in ("all", "any"):
            items = _array(body, at)
            if not items:
                raise InvalidArgument(at, "must not be empty")
            kids = tuple(self.condition(item, f"{at}[{i}]", depth + 1) for i, item in enumerate(items))
            return All(kids) if key == "all" else AnyOf(kids)
        if key == "not":
            return Not(self.condition(body, at, depth + 1))
        if key == "event":
            return _event(_object(body, at), at)
        if key == "attribute":
            return _attribute(_object(body, at), at)
        if key == "identifier":
            return _identifier(_object(body, at), at)
        name = _text(body, at)
        if not _NAME.fullmatch(name):
            raise InvalidArgument(at, "not a valid segment name")
        if self.known_segment is not None and not self.known_segment(name):
            raise InvalidArgument(at, f"unknown segment {name!r}")
        return SegmentRef(name)


def _cmp(obj: Mapping[str, Any], path: str, extra: tuple[str, ...] = ()) -> Cmp:
    _only_keys(obj, CMP_KEYS + extra, path)
    bounds: dict[str, Any] = {}
    for key in CMP_KEYS:
        v = obj.get(key)
        if v is None or (key == "between" and isinstance(v, (list, tuple)) and not v):
            continue  # proto JSON leaves unset bounds out; an empty `between` is unset
        if key == "between":
            pair = _array(v, f"{path}.between")
            if len(pair) != 2:
                raise InvalidArgument(f"{path}.between", "must be [a, b]")
            a = _number(pair[0], f"{path}.between[0]")
            b = _number(pair[1], f"{path}.between[1]")
            if a > b:
                raise InvalidArgument(f"{path}.between", "needs a <= b")
            bounds[key] = (a, b)
        else:
            bounds[key] = _number(v, f"{path}.{key}")
    if not bounds:
        raise InvalidArgument(path, "needs at least one of " + ", ".join(CMP_KEYS))
    return Cmp(**bounds)


def _amount(obj: Mapping[str, Any], path: str, what: str) -> tuple[str, int]:
    unit = _one_key(obj, DURATION_UNITS, path, what)
    return unit, _integer(obj[unit], f"{path}.{unit}", 1, MAX_AMOUNT)


def _empty(v: Any, path: str) -> None:
    _only_keys(_object(v, path), (), path)


def _period(doc: Any, path: str) -> Period:
    obj = _object(doc, path)
    kind = _one_key(obj, ("last", "today", "yesterday", "thisWeek", "thisMonth", "previous",
                          "between", "before", "allTime"), path, "a period")
    at = f"{path}.{kind}"
    body = obj[kind]
    if kind in ("last", "before"):
        unit, n = _amount(_object(body, at), at, "an amount")
        return Period(kind, unit=unit, n=n)
    if kind == "previous":
        spec = _object(body, at)
        _only_keys(spec, ("unit", "count"), at)
        unit = spec.get("unit")
        if unit not in CALENDAR_UNITS:
            raise InvalidArgument(f"{at}.unit", "must be day, week or month")
        if spec.get("count") is None:
            raise InvalidArgument(f"{at}.count", "required")
        return Period(kind, unit=unit, n=_integer(spec["count"], f"{at}.count", 1, MAX_AMOUNT))
    if kind == "between":
        spec = _object(body, at)
        _only_keys(spec, ("from", "to"), at)
        for end in ("from", "to"):
            if spec.get(end) is None:
                raise InvalidArgument(f"{at}.{end}", "required")
        lo = _instant_ms(spec["from"], f"{at}.from")
        hi = _instant_ms(spec["to"], f"{at}.to")
        if not lo < hi:
            raise InvalidArgument(f"{at}.to", "must be after from")
        return Period(kind, from_ms=lo, to_ms=hi)
    _empty(body, at)
    return Period(kind)


def _filter_value(op: str, obj: Mapping[str, Any], path: str) -> Any:
    """The typed value of a filter or attribute condition for `op` (None when it takes none)."""
    v = obj.get("value")
    at = f"{path}.value"
    if op in _PRESENCE_OPS or op == "any":
        if v is not None:
            raise InvalidArgument(at, f"op {op} takes no value")
        return None
    if v is None:
        raise InvalidArgument(at, "required")
    if op in _SCALAR_OPS:
        return _scalar(v, at)
    if op in _ORDER_OPS:
        if isinstance(v, str):
            return v
        if _is_number(v):
            return float(v)
        raise InvalidArgument(at, "must be a number or a string")
    if op in _TEXT_OPS:
        return _text(v, at, empty_ok=True)
    if op in _SET_OPS:
        items = _array(v, at)
        if not items:
            raise InvalidArgument(at, "must not be empty")
        return tuple(_scalar(item, f"{at}[{i}]") for i, item in enumerate(items))
    if op == "between":
        pair = _array(v, at)
        if len(pair) != 2:
            raise InvalidArgument(at, "must be [a, b]")
        if all(_is_number(x) for x in pair):
            a, b = float(pair[0]), float(pair[1])
            if a > b:
                raise InvalidArgument(at, "needs a <= b")
            return (a, b)
        if all(isinstance(x, str) for x in pair):
            return (pair[0], pair[1])
        raise InvalidArgument(at, "must be two numbers or two strings")
    if op == "anniversaryInDays":
        return _integer(v, at, 0, 366)
    raise InvalidArgument(f"{path}.op", f"unknown op {op!r}")  # pragma: no cover - ops checked first


def _op(obj: Mapping[str, Any], path: str, ops: frozenset[str]) -> str:
    op = obj.get("op")
    if op is None:
        raise InvalidArgument(f"{path}.op", "required")
    if not isinstance(op, str) or op not in ops:
        raise InvalidArgument(f"{path}.op", f"unknown op {op!r}")
    return op


def _filter(doc: Any, path: str, depth: int) -> Filter:
    if depth > MAX_FILTER_DEPTH:
        raise InvalidArgument(path, f"filters nested deeper than {MAX_FILTER_DEPTH}")
    obj = _object(doc, path)
    _only_keys(obj, ("param", "op", "value", "where"), path)
    if obj.get("param") is None:
        raise InvalidArgument(f"{path}.param", "required")
    param = _path(obj["param"], f"{path}.param")
    op = _op(obj, path, FILTER_OPS)
    value = _filter_value(op, obj, path)
    where_doc = obj.get("where")
    where_list = [] if where_doc is None else _array(where_doc, f"{path}.where")
    if op != "any":
        if where_list:
            raise InvalidArgument(f"{path}.where", "only op any takes where")
        return Filter(param, op, value)
    if not where_list:
        raise InvalidArgument(f"{path}.where", "op any needs a non-empty where")
    return Filter(param, op, None, _filters(where_list, f"{path}.where", depth + 1))


def _filters(items: list[Any], path: str, depth: int) -> tuple[Filter, ...]:
    return tuple(_filter(item, f"{path}[{i}]", depth) for i, item in enumerate(items))


def _event(obj: Mapping[str, Any], path: str) -> EventCond:
    _only_keys(obj, ("type", "period", "where") + MEASURES, path)
    if obj.get("type") is None:
        raise InvalidArgument(f"{path}.type", "required")
    etype = _text(obj["type"], f"{path}.type")
    where_doc = obj.get("where")
    where = () if where_doc is None else _filters(_array(where_doc, f"{path}.where"), f"{path}.where", 1)
    given = [m for m in MEASURES if obj.get(m) is not None]
    if len(given) > 1:
        raise InvalidArgument(f"{path}.{given[1]}", f"only one measure allowed (already {given[0]})")
    measure = given[0] if given else "count"
    body = obj.get(measure)
    at = f"{path}.{measure}"
    period_doc = obj.get("period")
    if measure == "streak":
        if period_doc is not None:
            raise InvalidArgument(f"{path}.period", "streak takes no period")
        spec = _object(body, at)
        _only_keys(spec, ("unit", "count"), at)
        unit = spec.get("unit")
        if unit not in CALENDAR_UNITS:
            raise InvalidArgument(f"{at}.unit", "must be day, week or month")
        if spec.get("count") is None:
            raise InvalidArgument(f"{at}.count", "required")
        count = _integer(spec["count"], f"{at}.count", 1, MAX_STREAK)
        return EventCond(etype, None, where, "streak", streak_unit=unit, streak_count=count)
    period = Period("today") if period_doc is None else _period(period_doc, f"{path}.period")
    if body is None:  # no measure given: count >= 1
        return EventCond(etype, period, where, "count", cmp=Cmp(gte=1.0))
    spec = _object(body, at)
    if measure in ("first", "last"):
        _empty(spec, at)
        return EventCond(etype, period, where, measure)
    param = ""
    if measure in PARAM_MEASURES:
        if spec.get("param") is None:
            raise InvalidArgument(f"{at}.param", "required")
        param = _path(spec["param"], f"{at}.param")
    # every remaining measure (CMP_MEASURES) compares a number
    cmp = _cmp(spec, at, ("param",) if measure in PARAM_MEASURES else ())
    return EventCond(etype, period, where, measure, param=param, cmp=cmp)


def _attribute(obj: Mapping[str, Any], path: str) -> AttrCond:
    _only_keys(obj, ("field", "op", "value"), path)
    if obj.get("field") is None:
        raise InvalidArgument(f"{path}.field", "required")
    field = _path(obj["field"], f"{path}.field")
    op = _op(obj, path, ATTRIBUTE_OPS)
    return AttrCond(field, op, _filter_value(op, obj, path))


def _identifier(obj: Mapping[str, Any], path: str) -> IdentCond:
    _only_keys(obj, ("kind", "present"), path)
    if obj.get("kind") is None:
        raise InvalidArgument(f"{path}.kind", "required")
    kind = _text(obj["kind"], f"{path}.kind")
    present = obj.get("present")
    if present is None:
        present = True
    elif not isinstance(present, bool):
        raise InvalidArgument(f"{path}.present", "must be a boolean")
    if kind in IDENTIFIER_KINDS:
        return IdentCond(kind, present=present)
    return IdentCond("key", key_name=kind, present=present)


# --- definitions -----------------------------------------------------------------------

def parse_definition(
    doc: Mapping[str, Any],
    *,
    known_segment: Callable[[str], bool] | None = None,
    require_name: bool = True,
) -> Definition:
    """A validated Definition from SEGMENTS.md JSON; InvalidArgument(path, reason) otherwise.

    `known_segment` tells whether a referenced segment name exists (unchecked when None);
    `require_name=False` accepts an empty name (ad-hoc previews)."""
    root = _object(doc, "")
    _only_keys(root, _ROOT_KEYS, "")
    name = _text(_get(root, "name", ""), "name", empty_ok=True)
    if name or require_name:
        if not name:
            raise InvalidArgument("name", "required")
        if not _NAME.fullmatch(name):
            raise InvalidArgument("name", "must be 1-128 of letters, digits, _, -, .")
    description = _text(_get(root, "description", ""), "description", empty_ok=True)
    purpose = _text(_get(root, "purpose", ""), "purpose", empty_ok=True)
    tags_doc = root.get("tags")
    tags_list = [] if tags_doc is None else _array(tags_doc, "tags")
    tags = tuple(_text(t, f"tags[{i}]") for i, t in enumerate(tags_list))
    # proto3 JSON drops empty strings, so an empty timezone is the default too
    timezone = _text(_get(root, "timezone", "") or "UTC", "timezone")
    zone(timezone)  # raises InvalidArgument("timezone", ...) for unknown names
    cond_doc = root.get("condition")
    contacts_doc = root.get("contacts")
    if (cond_doc is None) == (contacts_doc is None):
        raise InvalidArgument("condition", "exactly one of condition or contacts is required")
    if cond_doc is not None:
        node = _Parser(known_segment).condition(cond_doc, "condition", 1)
        return Definition(name, description, purpose, tags, timezone, node, None)
    ids = _array(contacts_doc, "contacts")
    contacts = tuple(sorted({_integer(c, f"contacts[{i}]", 1, MAX_CONTACT_ID) for i, c in enumerate(ids)}))
    return Definition(name, description, purpose, tags, timezone, None, contacts)


def references(defn: Definition) -> set[str]:
    """Names of the segments the definition refers to anywhere."""
    return {node.name for _, node in node_paths(defn.condition, "condition")
            if isinstance(node, SegmentRef)} if defn.condition is not None else set()


def find_cycle(name: str, refs_of: Callable[[str], set[str]]) -> list[str] | None:
    """A reference cycle reachable from `name`, as [a, b, ..., a], or None.

    `refs_of(n)` gives the names segment n refers to."""
    on_path: dict[str, int] = {}  # name -> index in `trail`
    trail: list[str] = []
    done: set[str] = set()
    stack: list[tuple[str, list[str]]] = [(name, sorted(refs_of(name)))]
    on_path[name] = 0
    trail.append(name)
    while stack:
        current, pending = stack[-1]
        if not pending:
            stack.pop()
            trail.pop()
            del on_path[current]
            done.add(current)
            continue
        nxt = pending.pop()
        if nxt in on_path:
            return trail[on_path[nxt]:] + [nxt]
        if nxt in done:
            continue
        on_path[nxt] = len(trail)
        trail.append(nxt)
        stack.append((nxt, sorted(refs_of(nxt))))
    return None

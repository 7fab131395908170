"""Canonical JSON of segment definitions: core.segments.plan back to SEGMENTS.md JSON.

`parse_definition(definition_to_json(d)) == d` for every parsed definition `d`; integral
numbers are written as JSON integers and instants as RFC 3339 UTC text with milliseconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.segments.plan import All, AnyOf, AttrCond, Cmp, Definition, EventCond, Filter, IdentCond, Node, Not, Period

CMP_KEYS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def format_instant(ms: int) -> str:
    """Epoch ms as RFC 3339 UTC text with milliseconds."""
    m = _EPOCH + dt.timedelta(milliseconds=ms)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
            f".{m.microsecond // 1000:03d}Z")


def _num(x: float) -> int | float:
    """Integral floats as ints so the JSON reads as written."""
    if isinstance(x, int):
        return x
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def _value_json(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_value_json(x) for x in v]
    if isinstance(v, float):
        return _num(v)
    return v


def _cmp_json(cmp: Cmp) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in CMP_KEYS:
        v = getattr(cmp, key)
        if v is not None:
            out[key] = [_num(v[0]), _num(v[1])] if key == "between" else _num(v)
    return out


def _period_json(p: Period) -> dict[str, Any]:
    if p.kind in ("last", "before"):
        return {p.kind: {p.unit: p.n}}
    if p.kind == "previous":
        return {p.kind: {"unit": p.unit, "count": p.n}}
    if p.kind == "between":
        return {p.kind: {"from": format_instant(p.from_ms), "to": format_instant(p.to_ms)}}
    return {p.kind: {}}


def _filter_json(f: Filter) -> dict[str, Any]:
    out: dict[str, Any] = {"param": f.param, "op": f.op}
    if f.op == "any":
        out["where"] = [_filter_json(w) for w in f.where]
    elif f.value is not None:
        out["value"] = _value_json(f.value)
    return out


def _event_json(e: EventCond) -> dict[str, Any]:
    out: dict[str, Any] = {"type": e.type}
    if e.period is not None:
        out["period"] = _period_json(e.period)
    if e.where:
        out["where"] = [_filter_json(f) for f in e.where]
    if e.measure == "streak":
        out["streak"] = {"unit": e.streak_unit, "count": e.streak_count}
    elif e.measure in ("first", "last"):
        out[e.measure] = {}
    else:
        spec: dict[str, Any] = {"param": e.param} if e.param else {}
        spec.update(_cmp_json(e.cmp or Cmp(gte=1.0)))
        out[e.measure] = spec
    return out


def condition_to_json(node: Node) -> dict[str, Any]:
    """The JSON of one condition tree."""
    if isinstance(node, All):
        return {"all": [condition_to_json(c) for c in node.children]}
    if isinstance(node, AnyOf):
        return {"any": [condition_to_json(c) for c in node.children]}
    if isinstance(node, Not):
        return {"not": condition_to_json(node.child)}
    if isinstance(node, EventCond):
        return {"event": _event_json(node)}
    if isinstance(node, AttrCond):
        attr: dict[str, Any] = {"field": node.field, "op": node.op}
        if node.value is not None:
            attr["value"] = _value_json(node.value)
        return {"attribute": attr}
    if isinstance(node, IdentCond):
        kind = node.key_name if node.kind == "key" else node.kind
        return {"identifier": {"kind": kind, "present": node.present}}
    return {"segment": node.name}


def definition_to_json(defn: Definition) -> dict[str, Any]:
    """Canonical SEGMENTS.md JSON of a definition; parse_definition of it gives it back."""
    out: dict[str, Any] = {
        "name": defn.name,
        "description": defn.description,
        "purpose": defn.purpose,
        "tags": list(defn.tags),
        "timezone": defn.timezone,
    }
    if defn.condition is not None:
        out["condition"] = condition_to_json(defn.condition)
    else:
        out["contacts"] = list(defn.contacts or ())
    return out

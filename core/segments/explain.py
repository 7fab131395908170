"""Why one contact is (or is not) in a segment: every condition's value for that contact.

Each event leaf is computed over the contact's own rows only (its slice of the shard) with the
same kernels as a full evaluation, so the explanation and the membership always agree.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from core import periods
from core.identifiers import IdKind
from core.segments import measures
from core.segments.attributes import field_holds
from core.segments.plan import All, AnyOf, AttrCond, Definition, EventCond, IdentCond, Node, Not, SegmentRef, node_paths
from core.versions import slice_rows


@dataclass(frozen=True, slots=True)
class Explanation:
    """One condition of a definition, judged for one contact."""

    path: str  # e.g. "condition.all[0].event"
    kind: str  # all | any | not | event | attribute | identifier | segment | static
    holds: bool
    value: Any  # event: the measure's value (None: no value); attribute: the field value;
    # identifier: whether the contact has one; segment: membership; composites: None
    detail: str


def _iso(ms: int) -> str:
    if ms <= periods.NO_LOWER:
        return "-inf"
    try:
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    except OverflowError:
        return str(ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_value(cond: EventCond, ctx: Any, contact_id: int) -> tuple[float | None, bool, str]:
    """(value, holds, detail) of an event condition for one contact."""
    plan = measures.plan_event(cond, ctx.now_ms, ctx.tz)
    version, lo, hi = ctx.store.contact_rows(cond.type, contact_id)
    value = plan.absent_value
    if hi > lo:
        _, values = measures.run_values(plan, slice_rows(version, lo, hi), ctx.store.dictionary)
        value = float(values[0])
    holds = plan.test.holds(value)
    shown: float | int | None = None if math.isnan(value) else value
    if shown is not None and float(shown).is_integer():
        shown = int(shown)
    m = cond.measure
    if m in ("first", "last"):
        when = "none" if shown is None else _iso(int(shown))
        detail = f"{m} {cond.type} event at {when}; period [{_iso(plan.lo_ms)}, {_iso(plan.hi_ms)})"
    elif m == "streak":
        detail = f"{shown} of the {cond.streak_count} previous {cond.streak_unit}s hold a {cond.type} event"
    elif m == "daysSinceLast":
        detail = f"{'no' if shown is None else shown} days since the last {cond.type} event; needs {_cmp_text(plan)}"
    else:
        about = f" of {cond.param}" if cond.param else ""
        shown_text = "no value" if shown is None else str(shown)
        detail = (f"{m}{about} over {cond.type} events in [{_iso(plan.lo_ms)}, {_iso(plan.hi_ms)}) = "
                  f"{shown_text}; needs {_cmp_text(plan)}")
    return shown, holds, detail


def _cmp_text(plan: measures.EventPlan) -> str:
    t = plan.test
    parts = []
    if t.lo == t.hi and t.lo_inc and t.hi_inc:
        parts.append(f"= {_num(t.lo)}")
    else:
        if t.lo != -math.inf:
            parts.append(f"{'>=' if t.lo_inc else '>'} {_num(t.lo)}")
        if t.hi != math.inf:
            parts.append(f"{'<=' if t.hi_inc else '<'} {_num(t.hi)}")
    parts += [f"!= {_num(x)}" for x in t.excluded]
    return " and ".join(parts) or "any value"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _attribute(cond: AttrCond, ctx: Any, contact_id: int) -> tuple[Any, bool, str]:
    present, x = ctx.contacts.field_of(contact_id, cond.field)
    if cond.op == "not_exists":
        holds = not present
    else:
        holds = present and field_holds(cond, x, ctx.now_ms, ctx.tz)
    shown = "absent" if not present else repr(x)
    return x, holds, f"{cond.field} is {shown}; op {cond.op} {'' if cond.value is None else repr(cond.value)}".rstrip()


def _identifier(cond: IdentCond, ctx: Any, contact_id: int) -> tuple[bool, bool, str]:
    mask = ctx.contacts.has_identifier_mask(IdKind(cond.kind), cond.key_name)
    has = bool(contact_id < mask.shape[0] and mask[contact_id])
    name = cond.key_name if cond.kind == "key" else cond.kind
    return has, has == cond.present, f"{'has' if has else 'has no'} {name}; needs {'one' if cond.present else 'none'}"


def explain(defn: Definition, ctx: Any, contact_id: int) -> list[Explanation]:
    """Every condition of `defn` (pre-order, as plan.paths) judged for `contact_id`."""
    live = ctx.contacts.exists(contact_id)
    if defn.condition is None:
        member = live and contact_id in set(defn.contacts or ())
        return [Explanation("contacts", "static", member, member, "listed" if member else "not listed")]
    judged: dict[str, tuple[bool, Any, str]] = {}
    entries = node_paths(defn.condition, "condition")
    # children come after their parent in pre-order: judge bottom-up
    for path, node in reversed(entries):
        judged[path] = _judge(node, path, ctx, contact_id, judged, live)
    out = []
    for path, node in entries:
        holds, value, detail = judged[path]
        out.append(Explanation(path, _kind(node), holds, value, detail))
    return out


def _kind(node: Node) -> str:
    return {All: "all", AnyOf: "any", Not: "not", EventCond: "event", AttrCond: "attribute",
            IdentCond: "identifier", SegmentRef: "segment"}[type(node)]


def _judge(node: Node, path: str, ctx: Any, contact_id: int, judged: dict[str, tuple[bool, Any, str]],
           live: bool) -> tuple[bool, Any, str]:
    if isinstance(node, All | AnyOf):
        key = "all" if isinstance(node, All) else "any"
        kids = [judged[_child_path(f"{path}.{key}[{i}]", c)][0] for i, c in enumerate(node.children)]
        holds = all(kids) if key == "all" else any(kids)
        return holds, None, f"{sum(kids)} of {len(kids)} hold"
    if isinstance(node, Not):
        inner = judged[_child_path(f"{path}.not", node.child)][0]
        return live and not inner, None, "inner condition holds" if inner else "inner condition does not hold"
    if isinstance(node, EventCond):
        value, holds, detail = event_value(node, ctx, contact_id)
    elif isinstance(node, AttrCond):
        value, holds, detail = _attribute(node, ctx, contact_id)
    elif isinstance(node, IdentCond):
        value, holds, detail = _identifier(node, ctx, contact_id)
    else:
        member = contact_id in ctx.resolve_segment(node.name, ctx.now_ms)
        value, holds, detail = member, member, f"{'in' if member else 'not in'} segment {node.name}"
    return live and holds, value, detail


def _child_path(pos: str, child: Node) -> str:
    if isinstance(child, All | AnyOf | Not):
        return pos
    return f"{pos}.{_kind(child)}"

"""The parsed form of a segment definition: frozen dataclasses, one per condition kind.

Nothing here validates; core.segments.definition builds these from JSON and guarantees the
invariants stated in the field comments. Numbers in comparisons and filter values are floats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

FILTER_OPS = frozenset(
    {
        "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in",
        "contains", "not_contains", "starts_with", "ends_with", "exists", "not_exists", "any",
    }
)
ATTRIBUTE_OPS = (FILTER_OPS - {"any"}) | {"anniversaryInDays"}
MEASURES = ("count", "sum", "avg", "min", "max", "distinct", "first", "last", "daysSinceLast", "streak")
PARAM_MEASURES = frozenset({"sum", "avg", "min", "max", "distinct"})
CMP_MEASURES = frozenset({"count", "sum", "avg", "min", "max", "distinct", "daysSinceLast"})
IDENTIFIER_KINDS = frozenset({"externalId", "email", "phone", "pushToken"})
PERIOD_KINDS = ("last", "today", "yesterday", "thisWeek", "thisMonth", "previous", "between", "before", "allTime")
DURATION_UNITS = ("minutes", "hours", "days", "weeks", "months")
CALENDAR_UNITS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class Cmp:
    """A numeric test; every bound given must hold; `between` is inclusive (a <= b)."""

    eq: float | None = None
    ne: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    between: tuple[float, float] | None = None

    def holds(self, x: float) -> bool:
        """True when `x` satisfies every bound that is set."""
        if self.eq is not None and not x == self.eq:
            return False
        if self.ne is not None and not x != self.ne:
            return False
        if self.gt is not None and not x > self.gt:
            return False
        if self.gte is not None and not x >= self.gte:
            return False
        if self.lt is not None and not x < self.lt:
            return False
        if self.lte is not None and not x <= self.lte:
            return False
        if self.between is not None and not (self.between[0] <= x <= self.between[1]):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Filter:
    """A test on an event parameter (or, inside `any`, on a path relative to one element)."""

    param: str  # dotted path
    op: str  # one of FILTER_OPS
    # str | float | bool for scalar ops; tuple of those for in/not_in; (a, b) for between;
    # None for exists/not_exists/any. Numbers are always float.
    value: Any = None
    where: tuple["Filter", ...] = ()  # non-empty exactly when op == "any"


@dataclass(frozen=True, slots=True)
class Period:
    """An interval of event timestamps relative to `now` (see core.periods.interval)."""

    kind: str  # one of PERIOD_KINDS
    unit: str = ""  # last/before: one of DURATION_UNITS; previous: one of CALENDAR_UNITS
    n: int = 0  # last/before/previous: >= 1
    from_ms: int = 0  # between only: from_ms < to_ms, epoch ms
    to_ms: int = 0


@dataclass(frozen=True, slots=True)
class EventCond:
    """A condition on a contact's events of one type."""

    type: str
    period: Period | None  # None exactly when measure == "streak"
    where: tuple[Filter, ...]
    measure: str  # one of MEASURES
    param: str = ""  # set exactly for PARAM_MEASURES
    cmp: Cmp | None = None  # set exactly for CMP_MEASURES
    streak_unit: str = ""  # streak only: day | week | month
    streak_count: int = 0  # streak only: >= 1


def paths_read(cond: EventCond) -> frozenset[str]:
    """The parameter paths an event condition reads: its measure's and its filters' (an `any`
    filter's element paths lie under its own). Columns at or under these are all it needs."""
    read = {f.param for f in cond.where}
    if cond.param:
        read.add(cond.param)
    return frozenset(read)


@dataclass(frozen=True, slots=True)
class AttrCond:
    """A condition on a contact field; op is one of ATTRIBUTE_OPS, value typed as in Filter
    (anniversaryInDays: int 0..366)."""

    field: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class IdentCond:
    """Presence (or absence) of an identifier; kind is one of IDENTIFIER_KINDS or "key"
    (then key_name names the contact key)."""

    kind: str
    key_name: str = ""
    present: bool = True


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """Membership of another saved segment at the same `now`."""

    name: str


@dataclass(frozen=True, slots=True)
class All:
    children: tuple["Node", ...]  # non-empty


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple["Node", ...]  # non-empty


@dataclass(frozen=True, slots=True)
class Not:
    child: "Node"


Node = Union[All, AnyOf, Not, EventCond, AttrCond, IdentCond, SegmentRef]

# The JSON key each leaf kind is written under; composites are addressed by their position.
_LEAF_KEYS: dict[type, str] = {EventCond: "event", AttrCond: "attribute", IdentCond: "identifier", SegmentRef: "segment"}


@dataclass(frozen=True, slots=True)
class Definition:
    """A segment: exactly one of `condition` (dynamic) and `contacts` (static) is set."""

    name: str
    description: str
    purpose: str
    tags: tuple[str, ...]
    timezone: str
    condition: Node | None
    contacts: tuple[int, ...] | None


def node_paths(node: Node, at: str) -> list[tuple[str, Node]]:
    """Pre-order (path, node) pairs of the tree rooted at position `at`.

    A composite's path is its position (``condition.all[2]``); a leaf's path is its position
    plus its JSON key (``condition.all[2].event``). Children of all/any sit at
    ``<pos>.all[i]`` / ``<pos>.any[i]``, the child of not at ``<pos>.not``.
    """
    out: list[tuple[str, Node]] = []
    stack: list[tuple[str, Node]] = [(at, node)]
    while stack:
        pos, cur = stack.pop()
        if isinstance(cur, (All, AnyOf)):
            out.append((pos, cur))
            key = "all" if isinstance(cur, All) else "any"
            for i in range(len(cur.children) - 1, -1, -1):
                stack.append((f"{pos}.{key}[{i}]", cur.children[i]))
        elif isinstance(cur, Not):
            out.append((pos, cur))
            stack.append((f"{pos}.not", cur.child))
        else:
            out.append((f"{pos}.{_LEAF_KEYS[type(cur)]}", cur))
    return out


def paths(definition: Definition) -> list[tuple[str, Node]]:
    """Pre-order (path, node) pairs of a definition's condition; empty for a static segment."""
    if definition.condition is None:
        return []
    return node_paths(definition.condition, "condition")


def paths_by_type(definitions: Iterable[Definition]) -> dict[str, frozenset[str]]:
    """Per event type, the parameter paths any event condition of `definitions` reads."""
    read: dict[str, set[str]] = {}
    for definition in definitions:
        for _, node in paths(definition):
            if isinstance(node, EventCond):
                read.setdefault(node.type, set()).update(paths_read(node))
    return {type_key: frozenset(p) for type_key, p in read.items()}

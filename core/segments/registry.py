"""Saved segments: definitions, materialised members and the reference graph.

A saved segment's members are kept as a bitmap valid for one instant (`evaluated_at_ms`).
Writes mark the segments that read what changed as stale; a membership question at "now"
re-evaluates a stale segment once and answers every later question from the bitmap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pyroaring import BitMap

from core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from core.segments.definition import definition_to_json, find_cycle, parse_definition, references
from core.segments.plan import AttrCond, Definition, EventCond, IdentCond, Node, paths

if TYPE_CHECKING:
    from core.engine import Engine

# A segment whose answer depends on the clock is re-evaluated when its bitmap is older than this.
TIME_RESOLUTION_MS = 1000


@dataclass(slots=True)
class SavedSegment:
    definition: Definition
    created_at_ms: int
    updated_at_ms: int
    members: BitMap = field(default_factory=BitMap)
    evaluated_at_ms: int | None = None  # None: stale
    last_build_ms: float = 0.0
    event_types: frozenset[str] = frozenset()
    reads_contacts: bool = False
    time_dependent: bool = False


def _reads(defn: Definition) -> tuple[frozenset[str], bool, bool]:
    """(event types read, reads contact fields/identifiers, depends on the clock)."""
    types: set[str] = set()
    reads_contacts = False
    timed = False
    for _, node in paths(defn):
        if isinstance(node, EventCond):
            # Any event condition can change with the clock alone: windows move, and events
            # stamped in the future start to count when `now` reaches them.
            types.add(node.type)
            timed = True
        elif isinstance(node, AttrCond):
            reads_contacts = True
            timed = timed or node.op == "anniversaryInDays"
        elif isinstance(node, IdentCond):
            reads_contacts = True
    return frozenset(types), reads_contacts, timed


class SegmentRegistry:
    """Named segments of one engine. Callers hold the engine's writer lock for writes."""

    def __init__(self, engine: "Engine") -> None:
        self._engine = engine
        self._saved: dict[str, SavedSegment] = {}
        self._eval_lock = threading.RLock()

    # -------------------------------------------------------------- definitions

    def has(self, name: str) -> bool:
        return name in self._saved

    def names(self) -> list[str]:
        return sorted(self._saved)

    def get(self, name: str) -> SavedSegment:
        try:
            return self._saved[name]
        except KeyError:
            raise NotFound(f"segment {name!r} does not exist") from None

    def parse(self, doc: Mapping[str, Any] | Definition, *, require_name: bool = True) -> Definition:
        if isinstance(doc, Definition):
            return doc
        return parse_definition(doc, known_segment=self.has, require_name=require_name)

    def put(self, doc: Mapping[str, Any], now_ms: int, *, create_only: bool = False) -> tuple[SavedSegment, bool]:
        """Creates or replaces a segment and evaluates it at `now_ms`."""
        defn = self.parse(doc)
        existing = self._saved.get(defn.name)
        if existing is not None and create_only:
            raise AlreadyExists(f"segment {defn.name!r} already exists")
        refs = references(defn)
        if defn.name in refs:
            raise InvalidArgument("condition", f"segment {defn.name!r} refers to itself")

        def refs_of(name: str) -> set[str]:
            if name == defn.name:
                return refs
            saved = self._saved.get(name)
            return references(saved.definition) if saved else set()

        cycle = find_cycle(defn.name, refs_of)
        if cycle:
            raise InvalidArgument("condition", "reference cycle: " + " -> ".join(cycle))
        types, reads_contacts, timed = _reads(defn)
        for ref in refs:
            dep = self._saved[ref]
            types |= dep.event_types
            reads_contacts |= dep.reads_contacts
            timed |= dep.time_dependent
        saved = SavedSegment(
            definition=defn,
            created_at_ms=existing.created_at_ms if existing else now_ms,
            updated_at_ms=now_ms,
            event_types=types,
            reads_contacts=reads_contacts,
            time_dependent=timed,
        )
        self._saved[defn.name] = saved
        self._invalidate_dependents(defn.name)
        self._refresh(saved, now_ms)
        return saved, existing is None

    def delete(self, name: str) -> None:
        self.get(name)
        users = sorted(n for n, s in self._saved.items() if name in references(s.definition))
        if users:
            raise FailedPrecondition(f"segment {name!r} is referenced by {', '.join(users)}")
        del self._saved[name]

    def to_json(self, name: str) -> dict[str, Any]:
        return definition_to_json(self.get(name).definition)

    # -------------------------------------------------------------- evaluation

    def evaluate(self, doc: Mapping[str, Any] | Definition, now_ms: int) -> BitMap:
        """Members of a definition (saved or ad hoc) at `now_ms`."""
        defn = self.parse(doc, require_name=False)
        return self._evaluate(defn, now_ms)

    def _evaluate(self, defn: Definition, now_ms: int) -> BitMap:
        universe = BitMap(self._engine.contacts.ids())
        if defn.condition is None:
            return BitMap(defn.contacts or ()) & universe
        from core.segments.evaluate import EvalContext, evaluate

        ctx = EvalContext(
            store=self._engine.store,
            contacts=self._engine.contacts,
            now_ms=now_ms,
            tz=defn.timezone,
            resolve_segment=self.members_at,
        )
        return evaluate(defn.condition, ctx)

    def context(self, defn: Definition, now_ms: int) -> Any:
        from core.segments.evaluate import EvalContext

        return EvalContext(
            store=self._engine.store,
            contacts=self._engine.contacts,
            now_ms=now_ms,
            tz=defn.timezone,
            resolve_segment=self.members_at,
        )

    def members_at(self, name: str, now_ms: int) -> BitMap:
        """A saved segment's members at `now_ms`, from the materialised bitmap when it is current."""
        saved = self.get(name)
        with self._eval_lock:
            if saved.evaluated_at_ms is not None and (
                saved.evaluated_at_ms == now_ms
                or (not saved.time_dependent and now_ms >= saved.evaluated_at_ms)
            ):
                return saved.members
        return self._evaluate(saved.definition, now_ms)

    def current(self, name: str, now_ms: int) -> BitMap:
        """Members at "now": re-evaluates only a stale or expired materialisation."""
        saved = self.get(name)
        with self._eval_lock:
            fresh = saved.evaluated_at_ms is not None and (
                not saved.time_dependent or now_ms - saved.evaluated_at_ms < TIME_RESOLUTION_MS
            )
            if not fresh:
                self._refresh(saved, now_ms)
            return saved.members

    def _refresh(self, saved: SavedSegment, now_ms: int) -> None:
        with self._eval_lock:
            started = time.perf_counter()
            saved.members = self._evaluate(saved.definition, now_ms)
            saved.last_build_ms = (time.perf_counter() - started) * 1000
            saved.evaluated_at_ms = now_ms

    # -------------------------------------------------------------- staleness

    def _invalidate_dependents(self, name: str) -> None:
        for other_name, other in self._saved.items():
            if other_name != name and name in references(other.definition):
                other.evaluated_at_ms = None
                self._invalidate_dependents(other_name)

    def _mark(self, predicate: Any) -> None:
        for saved in self._saved.values():
            if predicate(saved):
                saved.evaluated_at_ms = None

    def on_events(self, touched: Mapping[str, Iterable[int]], now_ms: int) -> list[Any]:
        types = set(touched)
        self._mark(lambda s: bool(s.event_types & types))
        return []

    def on_contacts(self, changed: Iterable[int], now_ms: int, cause: str) -> list[Any]:
        self._mark(lambda s: s.reads_contacts or s.definition.condition is not None)
        return []

    def on_merge(self, into_id: int, from_id: int, now_ms: int) -> list[Any]:
        self._mark(lambda s: True)
        return []

    def on_erase(self, contact_id: int, now_ms: int) -> list[Any]:
        self._mark(lambda s: True)
        return []

    def contact_segments(self, contact_id: int, now_ms: int) -> list[str]:
        return [name for name in self.names() if contact_id in self.current(name, now_ms)]

    def condition_paths(self, defn: Definition) -> list[tuple[str, Node]]:
        return paths(defn)

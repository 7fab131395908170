"""A segment registry as plain state (snapshots) and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyroaring import BitMap

from core.changes import ChangeLog
from core.segments.alerts import rules_of
from core.segments.definition import definition_to_json, parse_definition
from core.segments.history import SegmentHistory

if TYPE_CHECKING:
    from core.engine import Engine
    from core.segments.registry import SegmentRegistry

STATE_FORMAT = 1


def registry_state(registry: SegmentRegistry) -> dict[str, Any]:
    """Definitions, members, instants, change log and histories (run under the writer lock)."""
    segments = []
    for name in registry._order:
        saved = registry._saved[name]
        segments.append({
            "doc": definition_to_json(saved.definition),
            "created_ms": saved.created_at_ms,
            "updated_ms": saved.updated_at_ms,
            "members": saved.members,
            "evaluated_ms": -1 if saved.evaluated_at_ms is None else saved.evaluated_at_ms,
        })
    return {
        "format": STATE_FORMAT,
        "at_ms": registry._at,
        "high_ms": registry._high,
        "max_id": registry._max_id,
        "segments": segments,
        "changes": registry.changes.to_state(),
        "histories": {name: h.to_state() for name, h in registry._histories.items()},
    }


def restore_registry(cls: type[SegmentRegistry], engine: Engine, state: Mapping[str, Any]) -> SegmentRegistry:
    """The registry `registry_state` described, over `engine`'s restored contacts and events."""
    if int(state.get("format", -1)) != STATE_FORMAT:
        raise ValueError(f"unsupported segment registry state format {state.get('format')!r}")
    registry = cls(engine, changes=ChangeLog.from_state(state["changes"]))
    registry._at = None if state["at_ms"] is None else int(state["at_ms"])
    registry._high = None if state["high_ms"] is None else int(state["high_ms"])
    registry._max_id = int(state["max_id"])
    for entry in state["segments"]:  # in reference order: every reference is known
        defn = parse_definition(entry["doc"], known_segment=registry.has)
        saved = registry._make_saved(defn, int(entry["created_ms"]), int(entry["updated_ms"]), rules_of(defn.tags))
        saved.members = BitMap(entry["members"])
        evaluated = int(entry["evaluated_ms"])
        saved.evaluated_at_ms = None if evaluated < 0 else evaluated
        registry._install({**registry._saved, defn.name: saved})
    for name, doc in state["histories"].items():
        registry._histories[name] = SegmentHistory.from_state(doc)
    for saved in registry._saved.values():
        registry._histories.setdefault(saved.definition.name, SegmentHistory())
        at = registry._at if registry._at is not None else engine.clock()
        registry._times.track(engine.store, saved.timing, registry._floor(at))
    return registry

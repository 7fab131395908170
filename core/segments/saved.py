"""Saved segments as the registry keeps them, what each reads, and one step's pending changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from pyroaring import BitMap

from core.segments.alerts import AlertRule
from core.segments.plan import AttrCond, Definition, EventCond, IdentCond, paths
from core.segments.timing import Timing


@dataclass(slots=True)
class SavedSegment:
    definition: Definition
    created_at_ms: int
    updated_at_ms: int
    members: BitMap = field(default_factory=BitMap)  # replaced on change, never mutated
    evaluated_at_ms: int | None = None  # the instant `members` holds at
    last_build_ms: float = 0.0
    # what it reads, through the segments it refers to as well
    event_types: frozenset[str] = frozenset()
    reads_contacts: bool = False
    time_dependent: bool = False
    # what its own conditions read
    own_types: frozenset[str] = frozenset()
    own_reads_contacts: bool = False
    refs: frozenset[str] = frozenset()
    timing: Timing | None = None
    rules: tuple[AlertRule, ...] = ()
    marks: list[int] | None = None  # timing.marks(marks_at), kept between steps
    marks_at: int | None = None


def reads_of(defn: Definition) -> tuple[frozenset[str], bool, bool]:
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


def reference_order(saved: Mapping[str, SavedSegment]) -> tuple[str, ...]:
    """Names with every segment after the segments it refers to (then by name)."""
    order: list[str] = []
    done: set[str] = set()
    for root in sorted(saved):
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                order.append(name)
                continue
            if name in done or name not in saved:
                continue
            done.add(name)
            stack.append((name, True))
            stack.extend((ref, False) for ref in sorted(saved[name].refs, reverse=True) if ref not in done)
    return tuple(order)


@dataclass(slots=True)
class Pending:
    """One segment's changes of a step, before they are logged."""

    segment: str
    contacts: np.ndarray  # uint32, ascending
    entered: np.ndarray  # bool
    causes: np.ndarray  # uint8 cause codes
    size: int  # members after the step


def pending_change(
    name: str, entered: BitMap, exited: BitMap, default: int, parts: list[tuple[int, BitMap]], size: int
) -> Pending:
    """One segment's changes of a step: each changed contact with its direction and cause (the
    cause of the last part holding it, else `default`)."""
    diff = entered | exited
    contacts = np.array(diff.to_array(), dtype=np.uint32)
    flags = np.zeros(contacts.shape[0], np.bool_)
    if entered:
        flags[np.searchsorted(contacts, np.array(entered.to_array(), dtype=np.uint32))] = True
    causes = np.full(contacts.shape[0], default, np.uint8)
    for code, part in parts:
        hit = diff & part
        if hit:
            causes[np.searchsorted(contacts, np.array(hit.to_array(), dtype=np.uint32))] = code
    return Pending(name, contacts, flags, causes, size)

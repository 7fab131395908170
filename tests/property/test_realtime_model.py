"""Kept membership against full evaluation, step by step, as events arrive and time passes.

A program is a few contacts, a few saved segments (rolling windows, calendar periods, first /
last / daysSinceLast, streaks, anniversaries, references, a static list) and a sequence of
steps: ingests (events in the past, near window edges and in the future), clock advances
(with or without the time-driven step), contact upserts and creations, merges, erasures,
redefinitions and deletions. After every step:

- each saved segment's kept members equal a full evaluation at the registry's instant;
- the changes the step logged are exactly the differences between the full evaluations
  before and after it, once each, at the step's instant, under consecutive numbers.

At the end the journal is replayed into a fresh engine, which must log the same changes
under the same numbers and keep the same members.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import Engine
from core.errors import InvalidArgument
from core.segments.registry import SegmentRegistry
from snapshots.snapshot import decode_tree, encode_tree
from tests.property import random_definitions as trees
from tests.property import strategies as gen

pytestmark = pytest.mark.property

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
ADVANCES = (1, 999, 1000, MINUTE, 5 * MINUTE, HOUR, 5 * HOUR, DAY - 1, DAY, 3 * DAY, -HOUR)
OFFSETS = (0, -1, 1, -MINUTE, -5 * MINUTE - 1, -HOUR, -HOUR + 1, -DAY, -DAY - 1, -2 * DAY, MINUTE, HOUR, 2 * HOUR)


class Recorder:
    """A journal that keeps its records (op, payload) for replay."""

    class _Done:
        def wait(self) -> None:
            return None

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def append(self, op: str, payload: dict[str, Any]) -> Recorder._Done:
        self.records.append((op, copy.deepcopy(payload)))
        return Recorder._Done()


# ----------------------------------------------------------------------------- programs


@st.composite
def timed_leaves(draw: st.DrawFn) -> dict[str, Any]:
    """An event condition whose verdict moves with the clock within the program's span."""
    body: dict[str, Any] = {"type": draw(st.sampled_from(gen.EVENT_TYPES))}
    kind = draw(st.sampled_from(["last", "last", "before", "calendar", "since", "streak", "first", "months"]))
    if kind == "last":
        unit, top = draw(st.sampled_from([("minutes", 180), ("hours", 48), ("days", 3)]))
        body["period"] = {"last": {unit: draw(st.integers(1, top))}}
        if draw(st.booleans()):
            body["count"] = {"gte": draw(st.integers(1, 3))}
    elif kind == "months":
        body["period"] = {"last": {"months": 1}}
    elif kind == "before":
        body["period"] = {"before": {"hours": draw(st.integers(1, 30))}}
        body[draw(st.sampled_from(["last", "first"]))] = {}
    elif kind == "calendar":
        body["period"] = draw(st.sampled_from([{"today": {}}, {"yesterday": {}}, {"thisWeek": {}},
                                               {"previous": {"unit": "day", "count": 2}}]))
    elif kind == "since":
        body["daysSinceLast"] = {draw(st.sampled_from(["gte", "lt", "eq"])): draw(st.integers(0, 3))}
    elif kind == "streak":
        body["streak"] = {"unit": "day", "count": draw(st.integers(1, 3))}
    else:
        body["period"] = {"last": {"hours": draw(st.integers(1, 30))}}
        body["first"] = {}
    if draw(st.integers(0, 7)) == 0:
        body["where"] = [draw(trees.filters())]
    return body


def random_conditions(now_ms: int, tz: str, names: tuple[str, ...]) -> st.SearchStrategy:
    """The shared strategy's condition trees (whose zone argument is newer than the rest)."""
    if "tz" in inspect.signature(trees.conditions).parameters:
        return trees.conditions(now_ms, tz, names)
    return trees.conditions(now_ms, names)  # type: ignore[call-arg]


def segment_conditions(now_ms: int, tz: str, names: tuple[str, ...]) -> st.SearchStrategy:
    leaf = st.one_of(
        timed_leaves().map(lambda b: {"event": b}),
        timed_leaves().map(lambda b: {"event": b}),
        random_conditions(now_ms, tz, names),
    )
    return st.one_of(
        leaf,
        st.lists(leaf, min_size=2, max_size=3).map(lambda cs: {"all": cs}),
        st.lists(leaf, min_size=2, max_size=3).map(lambda cs: {"any": cs}),
        leaf.map(lambda c: {"not": c}),
    )


@dataclass
class Program:
    now_ms: int
    tz: str
    contacts: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    steps: list[tuple[Any, ...]]


@st.composite
def programs(draw: st.DrawFn) -> Program:
    now = draw(gen.nows())
    tz = draw(st.sampled_from(gen.TIME_ZONES))
    n = draw(st.integers(2, 5))
    contacts = [draw(gen.contact_docs(cid, now, tz)) for cid in range(1, n + 1)]
    segments: list[dict[str, Any]] = []
    names: tuple[str, ...] = ()
    for k in range(draw(st.integers(1, 3))):
        name = f"seg-{k}"
        # the first is one timed leaf, so that every program sees time move membership
        condition = {"event": draw(timed_leaves())} if k == 0 else draw(segment_conditions(now, tz, names))
        segments.append({"name": name, "timezone": tz, "condition": condition})
        names += (name,)
    if draw(st.booleans()):
        listed = sorted(draw(st.sets(st.integers(1, n + 2), min_size=1, max_size=4)))  # n + 1, n + 2: not yet
        segments.append({"name": "listed", "contacts": listed})
    steps: list[tuple[Any, ...]] = []
    first = segments[0]["condition"]["event"]
    near = st.one_of(st.sampled_from(OFFSETS), st.integers(-HOUR, HOUR))
    anywhere = st.one_of(st.sampled_from(OFFSETS), st.integers(-2 * HOUR, HOUR), st.integers(-3 * DAY, 2 * HOUR))
    for _ in range(draw(st.integers(1, 2))):  # events the first segment reads, then time passing over them
        events = [(first["type"], draw(st.integers(0, 9)), draw(near), draw(gen.event_params()))
                  for _ in range(draw(st.integers(1, 2)))]
        steps.append(("ingest", events))
        steps.append(("advance", draw(st.one_of(st.sampled_from(ADVANCES), st.integers(1, DAY))), draw(st.booleans())))
    for _ in range(draw(st.integers(4, 12))):
        kind = draw(st.sampled_from(["ingest"] * 4 + ["advance"] * 4 + ["upsert", "create", "merge", "erase",
                                                                       "redefine", "delete"]))
        if kind == "ingest":
            events = [
                (draw(st.sampled_from(gen.EVENT_TYPES)), draw(st.integers(0, 9)), draw(anywhere), draw(gen.event_params()))
                for _ in range(draw(st.integers(1, 4)))
            ]
            steps.append(("ingest", events))
        elif kind == "advance":
            delta = draw(st.one_of(st.sampled_from(ADVANCES), st.integers(1, 2 * DAY)))
            steps.append(("advance", delta, draw(st.booleans())))
        elif kind == "upsert":
            steps.append(("upsert", draw(st.integers(0, 9)), draw(gen.contact_docs(99, now, tz))))
        elif kind == "create":
            steps.append(("create",))
        elif kind in ("merge", "erase"):
            steps.append((kind, draw(st.integers(0, 9)), draw(st.integers(0, 9))))
        elif kind == "redefine":
            name = draw(st.sampled_from(names + ("seg-new",)))
            earlier = names[: names.index(name)] if name in names else names
            steps.append(("redefine", {"name": name, "timezone": tz,
                                       "condition": draw(segment_conditions(now, tz, earlier))}))
        else:
            steps.append(("delete", draw(st.sampled_from(names))))
    return Program(now, tz, contacts, segments, steps)


# ----------------------------------------------------------------------------- running


class Run:
    """An engine driven by a program, with the model of what it must hold after each step."""

    def __init__(self, program: Program) -> None:
        self.clock = program.now_ms
        self.journal = Recorder()
        self.engine = Engine(clock=lambda: self.clock, shard_bits=2, journal=self.journal)
        self.live: list[int] = []
        self.created = 0
        for doc in program.contacts:
            self.live.append(self.engine.upsert_contacts([doc]).outcomes[0].contact_id)
        for doc in program.segments:
            self.engine.put_segment(doc)
        self.previous: dict[str, set[int]] = {}
        self.seen = 0
        self.check("setup")

    def full(self) -> dict[str, set[int]]:
        registry = self.engine.segments
        at = registry.at_ms
        assert at is not None
        return {name: set(registry.evaluate(registry.get(name).definition, at)) for name in registry._order}

    def check(self, step: Any) -> None:
        registry = self.engine.segments
        now = self.full()
        for name, members in now.items():
            kept = set(registry.get(name).members)
            assert kept == members, f"{name} after {step}: kept {sorted(kept)} full {sorted(members)}"
        expected = set()
        for name in set(now) | set(self.previous):
            after, before = now.get(name, set()), self.previous.get(name, set())
            expected |= {(name, c, True) for c in after - before} | {(name, c, False) for c in before - after}
        changes, through = registry.changes.read(self.seen, limit=10**9)
        emitted = [(c.segment, c.contact_id, c.entered) for c in changes]
        assert len(set(emitted)) == len(emitted), f"after {step}: a change logged twice: {emitted}"
        assert set(emitted) == expected, f"after {step}: logged {sorted(emitted)} expected {sorted(expected)}"
        assert [c.sequence for c in changes] == list(range(self.seen + 1, self.seen + 1 + len(changes)))
        assert all(c.at_ms == registry.at_ms for c in changes)
        kind = step[0] if isinstance(step, tuple) else step
        if kind == "advance":
            assert {c.cause for c in changes} <= {"time"}, f"after {step}: {changes}"
        if kind in ("redefine", "delete"):
            name = step[1]["name"] if kind == "redefine" else step[1]
            assert {c.cause for c in changes if c.segment == name} <= {"definition"}, f"after {step}: {changes}"
        if kind == "ingest":
            assert {c.cause for c in changes} <= {"event", "time"}, f"after {step}: {changes}"
        self.previous, self.seen = now, max(self.seen, through)

    def pick(self, i: int) -> int:
        return self.live[i % len(self.live)]

    def apply(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        e = self.engine
        if kind == "ingest":
            docs = [{"eventTypeKey": t, "timestamp": self.clock + offset, "params": {"contactId": str(self.pick(i)),
                     **params}} for t, i, offset, params in step[1]]
            report = e.ingest(docs)
            assert report.accepted == len(docs), report.outcomes
        elif kind == "advance":
            self.clock += step[1]
            if step[2]:
                e.segments.tick()
        elif kind == "upsert":
            doc = dict(step[2])
            doc["externalId"] = e.contacts.get(self.pick(step[1])).external_id
            doc.pop("email", None)  # another contact may hold it
            doc.pop("phone", None)
            doc.pop("pushTokens", None)
            doc.pop("keys", None)
            assert e.upsert_contacts([doc]).rejected == 0
        elif kind == "create":
            self.created += 1
            self.live.append(e.upsert_contacts([{"externalId": f"new-{self.created}"}]).outcomes[0].contact_id)
        elif kind == "merge":
            into, source = self.pick(step[1]), self.pick(step[2])
            if into != source and len(self.live) > 1:
                e.merge_contacts(into, source)
                self.live.remove(source)
        elif kind == "erase":
            if len(self.live) > 1:
                cid = self.pick(step[1])
                e.erase_contact(cid)
                self.live.remove(cid)
        elif kind == "redefine":
            try:
                e.put_segment(step[1])
            except InvalidArgument:  # it refers to a segment deleted meanwhile: nothing changes
                pass
        elif kind == "delete":
            name = step[1]
            if e.segments.has(name) and not any(name in s.refs for s in e.segments._saved.values()):
                e.delete_segment(name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_kept_membership_and_changes_follow_full_evaluation(program: Program) -> None:
    run = Run(program)
    for step in program.steps:
        run.apply(step)
        run.check(step)
    # the journal replays to the same change log and the same members
    replayed = Engine(clock=lambda: 0, shard_bits=2)
    for op, payload in run.journal.records:
        replayed.replay(op, payload)
    logged = run.engine.segments.changes.read(0, limit=10**9)[0]
    # trimming by age is retention, not a journalled write: a replay keeps what a live log may
    # already have dropped, and agrees on everything the live log still holds
    kept_from = run.engine.segments.changes.first_sequence
    again = replayed.segments.changes.read(0, limit=10**9)[0]
    assert [c.sequence for c in again[: len(again) - len(logged)]] == list(range(1, kept_from))
    assert again[len(again) - len(logged):] == logged
    for name in run.engine.segments.names():
        assert replayed.segments.get(name).members == run.engine.segments.get(name).members
    # the registry's state, through the snapshot codec, carries on the same log on the replayed data
    data, arrays = encode_tree(run.engine.segments.to_state())
    tree, holes = decode_tree(data)
    for hole, array in zip(holes, arrays):
        hole[...] = array
    replayed.segments = SegmentRegistry.from_state(replayed, tree)
    later = run.clock + DAY + 1
    for engine in (run.engine, replayed):
        engine.segments.advance(later)
    assert replayed.segments.changes.read(0, limit=10**9)[0] == run.engine.segments.changes.read(0, limit=10**9)[0]
    for name in run.engine.segments.names():
        points = run.engine.segments.history(name, program.now_ms - DAY, later + 1, HOUR)
        assert replayed.segments.history(name, program.now_ms - DAY, later + 1, HOUR) == points

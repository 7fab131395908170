"""Saved segments: definitions, members kept current as writes and time go by, their changes.

Every saved segment's members are a bitmap valid at the registry's instant `at_ms` (members of
a segment whose conditions do not read the clock hold at any instant). Each write, and each
tick of the time-driven worker, is one *step* to an instant `now`. A step re-evaluates, per
segment and in reference order, only the contacts that can have changed (`evaluate_among`):

- time: when `now` differs from `at_ms`, the contacts with an event between the old and new
  position of one of the segment's thresholds (core.segments.timing);
- the write's own contacts: those an ingest touched (for the segments reading those types,
  or every touched contact for segments reading contact fields and identifiers), upserted
  contacts, both sides of a merge, an erased contact, and contacts new to the universe;
- references: the contacts that changed in a segment this one refers to, in this step.

A redefined segment, a new local day for anniversaries, or too many candidates evaluate the
segment in full instead. The differences are the step's changes: appended to the change log
(core.changes) under consecutive sequence numbers, added to the segment's history, judged
by its alert rules. After every step each segment's members equal a full evaluation at
`now`, so the changes a step emits are exactly the differences between two evaluations.

Determinism: a step's result depends only on the state and on `now`, so replaying the
journal gives the same change log. Steps of the time-driven worker that change something
are journalled as "tick" records; the others change nothing and need no record.
Readers never wait for a step: a members bitmap is replaced, never mutated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from pyroaring import BitMap

from core.changes import CAUSE_CODES, ChangeList, ChangeLog
from core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from core.segments.alerts import AlertBook, AlertRule, rules_of
from core.segments.definition import (
    definition_to_json,
    find_cycle,
    parse_definition,
    references,
)
from core.segments.evaluate import (
    FEW_CONTACTS,
    EvalContext,
    bitmap_of,
    evaluate,
    evaluate_among,
)
from core.segments.history import HistoryPoint, SegmentHistory
from core.segments.plan import Definition, Node, paths, paths_by_type
from core.segments.registry_state import registry_state, restore_registry
from core.segments.saved import (
    Pending,
    SavedSegment,
    pending_change,
    reads_of,
    reference_order,
)
from core.segments.timing import EXISTS, EventTimes, next_change, timing_of

if TYPE_CHECKING:
    from core.engine import Engine

# A time-dependent segment read at "now" is brought to now when its members are this old.
TIME_RESOLUTION_MS = 1000
MAX_TICK_WAIT_S = 1.0  # the time-driven worker looks at least this often
MIN_TICK_WAIT_S = 0.02  # and at most 50 times a second
FULL_FRACTION = 4  # more candidates than live contacts / FULL_FRACTION: evaluate in full

EVENT, TIME, CONTACT, DEFINITION = (CAUSE_CODES[c] for c in ("event", "time", "contact", "definition"))

Seeds = Callable[["SavedSegment"], BitMap | None]


class SegmentRegistry:
    """Named segments of one engine. Writes run under the engine's writer lock."""

    def __init__(self, engine: Engine, *, changes: ChangeLog | None = None) -> None:
        self._engine = engine
        self._saved: dict[str, SavedSegment] = {}  # replaced on put/delete: readers iterate safely
        self._order: tuple[str, ...] = ()
        self._type_paths: dict[str, frozenset[str]] = {}  # per event type: the paths saved segments read
        self.changes = changes or ChangeLog(durable=self._durable_position)
        self.changes.durable = self._durable_position
        self.alerts = AlertBook(notify=self.changes.wake)
        self._histories: dict[str, SegmentHistory] = {}
        self._times = EventTimes()  # where stored events lie in time, for the time-driven steps
        self._at: int | None = None  # the instant members hold at (None before the first step)
        self._high: int | None = None  # the highest instant reached
        self._max_id = engine.contacts.max_id  # contacts above it are new to the universe

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
        """Creates or replaces a segment; its members at `now_ms` enter (cause "definition").

        The engine journals the put right after this returns."""
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
            return set(saved.refs) if saved else set()

        cycle = find_cycle(defn.name, refs_of)
        if cycle:
            raise InvalidArgument("condition", "reference cycle: " + " -> ".join(cycle))
        saved = self._make_saved(defn, existing.created_at_ms if existing else now_ms, now_ms, rules_of(defn.tags))
        if existing is not None:
            saved.members = existing.members
            self.alerts.forget(defn.name)
        self._install({**self._saved, defn.name: saved})
        self._histories.setdefault(defn.name, SegmentHistory())
        self._times.track(self._engine.store, saved.timing, self._floor(now_ms))
        pending = self._step(now_ms, DEFINITION, redefined=defn.name)
        self._publish(pending, now_ms, self._position(after_record=False))
        return saved, existing is None

    def _make_saved(self, defn: Definition, created: int, updated: int, rules: tuple[AlertRule, ...]) -> SavedSegment:
        types, reads_contacts, timed = reads_of(defn)
        refs = frozenset(references(defn))
        all_types, all_contacts, all_timed = set(types), reads_contacts, timed
        for ref in refs:
            dep = self._saved[ref]
            all_types |= dep.event_types
            all_contacts |= dep.reads_contacts
            all_timed |= dep.time_dependent
        return SavedSegment(
            definition=defn,
            created_at_ms=created,
            updated_at_ms=updated,
            event_types=frozenset(all_types),
            reads_contacts=all_contacts,
            time_dependent=all_timed,
            own_types=types,
            own_reads_contacts=reads_contacts,
            refs=refs,
            timing=timing_of(defn),
            rules=rules,
        )

    def _install(self, saved: dict[str, SavedSegment]) -> None:
        """Makes `saved` the segments; what each reads through its references is recomputed
        (a replaced definition may read other things than before)."""
        order = reference_order(saved)
        for name in order:
            s = saved[name]
            deps = [saved[r] for r in s.refs if r in saved]
            s.event_types = s.own_types.union(*(d.event_types for d in deps))
            s.reads_contacts = s.own_reads_contacts or any(d.reads_contacts for d in deps)
            s.time_dependent = s.timing is not None or any(d.time_dependent for d in deps)
        self._saved = saved
        self._order = order
        self._type_paths = paths_by_type(s.definition for s in saved.values())

    def delete(self, name: str, now_ms: int | None = None) -> None:
        """Deletes a segment no other refers to; its members exit (cause "definition").

        The engine journals the delete right after this returns."""
        gone = self.get(name)
        users = sorted(n for n, s in self._saved.items() if name in s.refs)
        if users:
            raise FailedPrecondition(f"segment {name!r} is referenced by {', '.join(users)}")
        at = now_ms if now_ms is not None else (self._at if self._at is not None else gone.evaluated_at_ms or 0)
        self._install({n: s for n, s in self._saved.items() if n != name})
        self._histories.pop(name, None)
        self.alerts.forget(name)
        pending = self._step(at, DEFINITION, removed=(name, gone.members))
        self._publish(pending, at, self._position(after_record=False))

    def to_json(self, name: str) -> dict[str, Any]:
        return definition_to_json(self.get(name).definition)

    def condition_paths(self, defn: Definition) -> list[tuple[str, Node]]:
        return paths(defn)

    # -------------------------------------------------------------- evaluation

    def context(self, defn: Definition, now_ms: int) -> EvalContext:
        return EvalContext(
            store=self._engine.store,
            contacts=self._engine.contacts,
            now_ms=now_ms,
            tz=defn.timezone,
            resolve_segment=self.members_at,
            type_paths=self._type_paths,
        )

    def evaluate(self, doc: Mapping[str, Any] | Definition, now_ms: int) -> BitMap:
        """Members of a definition (saved or ad hoc) at `now_ms`, evaluated in full."""
        defn = self.parse(doc, require_name=False)
        return evaluate(defn, self.context(defn, now_ms))

    def members_at(self, name: str, now_ms: int) -> BitMap:
        """A saved segment's members at `now_ms`: the kept bitmap when it holds there."""
        saved = self.get(name)
        if saved.evaluated_at_ms is not None and (saved.evaluated_at_ms == now_ms or not saved.time_dependent):
            return saved.members
        return evaluate(saved.definition, self.context(saved.definition, now_ms))

    def current(self, name: str, now_ms: int) -> BitMap:
        """Members at "now": brings the registry to `now_ms` first when its members are older
        than TIME_RESOLUTION_MS and may have changed with time (normally the worker has)."""
        saved = self.get(name)
        at = self._at
        if saved.time_dependent and at is not None and abs(now_ms - at) >= TIME_RESOLUTION_MS:
            # concurrent readers queue on the writer lock; the first brings everyone to now
            self.advance(now_ms, tolerance_ms=TIME_RESOLUTION_MS - 1, forward_only=True)
        return self.get(name).members

    def contact_segments(self, contact_id: int, now_ms: int) -> list[str]:
        return [name for name in self.names() if contact_id in self.current(name, now_ms)]

    # -------------------------------------------------------------- writes

    def on_events(self, touched: Mapping[str, Iterable[int]], now_ms: int) -> ChangeList:
        """After an ingest stored events (contacts per type): the step to `now_ms`."""
        if not self._saved:
            return self._idle(now_ms)
        by_type = {t: BitMap(ids) for t, ids in touched.items()}
        everyone = BitMap.union(*by_type.values()) if by_type else BitMap()
        self._times.absorb(self._engine.store, by_type, self._floor(now_ms))
        fresh = self._fresh_contacts()

        def seeds(saved: SavedSegment) -> BitMap | None:
            found = [by_type[t] for t in saved.own_types if t in by_type]
            if saved.own_reads_contacts:
                found.append(everyone)  # an event may attach identifiers to its contact
            if fresh:
                found.append(fresh)
            return BitMap.union(*found) if found else None

        pending = self._step(now_ms, EVENT, seeds)
        return self._publish(pending, now_ms, self._position(after_record=True))

    def on_contacts(self, changed: Iterable[int], now_ms: int, cause: str = "contact") -> ChangeList:
        """After contacts were created or changed: the step to `now_ms`."""
        if not self._saved:
            return self._idle(now_ms)
        ids = BitMap(changed)
        fresh = self._fresh_contacts()

        def seeds(saved: SavedSegment) -> BitMap | None:
            found = (ids if saved.own_reads_contacts else BitMap()) | fresh
            return found or None

        pending = self._step(now_ms, CAUSE_CODES[cause], seeds)
        return self._publish(pending, now_ms, self._position(after_record=True))

    def on_merge(self, into_id: int, from_id: int, now_ms: int | None = None) -> ChangeList:
        """After `from_id` was merged into `into_id` (events moved, `from_id` gone)."""
        now = self._instant(now_ms)
        if not self._saved:
            return self._idle(now)
        both = BitMap([into_id, from_id])
        self._times.add_contacts(self._engine.store, np.array([into_id], dtype=np.uint32), self._floor(now))
        pending = self._step(now, CONTACT, lambda saved: both)
        return self._publish(pending, now, self._position(after_record=True))

    def on_erase(self, contact_id: int, now_ms: int | None = None) -> ChangeList:
        """After a contact and its events were erased: it leaves every segment."""
        now = self._instant(now_ms)
        if not self._saved:
            return self._idle(now)
        one = BitMap([contact_id])
        pending = self._step(now, CONTACT, lambda saved: one)
        return self._publish(pending, now, self._position(after_record=True))

    def on_retention(self, now_ms: int) -> ChangeList:
        """After events older than their type's retention were dropped: event segments in full."""
        if not self._saved:
            return self._idle(now_ms)
        self._times.rebuild_rolling(self._engine.store)
        pending = self._step(now_ms, TIME, whole=lambda saved: bool(saved.own_types))
        return self._publish(pending, now_ms, self._position(after_record=True))

    def advance(self, now_ms: int, *, tolerance_ms: int = 0, forward_only: bool = False) -> ChangeList:
        """Brings every segment to `now_ms` with no other write (the time-driven step). When it
        changes something it is journalled as a "tick" record, so replay gives the same log.

        Staleness is judged under the writer lock: when the registry already is within
        `tolerance_ms` of `now_ms` (another thread stepped meanwhile), nothing happens; with
        `forward_only`, neither does it when a write stepped past `now_ms` meanwhile (a clock
        read before the lock must not take members back to before that write's events)."""
        with self._engine._lock:
            if not self._saved:
                return self._idle(now_ms)
            if self._at is None or abs(now_ms - self._at) <= tolerance_ms:
                return ChangeList()
            if forward_only and now_ms < self._at:
                return ChangeList()
            pending = self._step(now_ms, TIME)
            position = 0
            if pending:
                self._engine.journal.append("tick", {"now_ms": now_ms})
                position = self._position(after_record=True)
            return self._publish(pending, now_ms, position)

    def tick(self) -> float:
        """One round of the time-driven worker: advance to the clock, judge windowed alert
        rules, trim the change log; returns the seconds until something may change next."""
        now = self._engine.clock()
        if any(s.time_dependent for s in self._saved.values()):
            self.advance(now, forward_only=True)
        with self._engine._lock:
            for name, saved in list(self._saved.items()):
                if any(rule.metric != "size" for rule in saved.rules):
                    self.alerts.check(name, saved.rules, now, len(saved.members), self._histories.get(name))
            if self._high is not None:
                self._times.forget_future_through(self._high)
        self.changes.trim(now)
        due = self.next_change()
        if due is None:
            return MAX_TICK_WAIT_S
        return min(MAX_TICK_WAIT_S, max(MIN_TICK_WAIT_S, (due - self._engine.clock()) / 1000.0))

    def next_change(self) -> int | None:
        """The next instant at which a segment may change with time alone (None: none known)."""
        at = self._at
        if at is None:
            return None
        found = [next_change(s.timing, at, self._times.rolling, self._times.future)
                 for s in self._saved.values() if s.timing is not None]
        due = [d for d in found if d is not None]
        return min(due) if due else None

    @property
    def at_ms(self) -> int | None:
        """The instant the members of time-dependent segments hold at (None before any step)."""
        return self._at

    def history(self, name: str, from_ms: int, to_ms: int, resolution_ms: int) -> list[HistoryPoint]:
        """Size, entries and exits of a saved segment per `resolution_ms` bucket."""
        self.get(name)
        history = self._histories.get(name)
        if history is None:
            return []
        return history.points(from_ms, to_ms, resolution_ms)

    # -------------------------------------------------------------- steps

    def _floor(self, now_ms: int) -> int:
        """Events stamped after this instant may start to exist in a later forward step."""
        return now_ms if self._high is None else max(self._high, now_ms)

    def _instant(self, now_ms: int | None) -> int:
        if now_ms is not None:
            return now_ms
        return self._at if self._at is not None else self._engine.clock()

    def _idle(self, now_ms: int) -> ChangeList:
        """A step with no segment to change: only the instant and the universe move on."""
        if not self._saved:
            self._at = now_ms
            self._high = now_ms if self._high is None else max(self._high, now_ms)
            self._max_id = self._engine.contacts.max_id
        return ChangeList()

    def _fresh_contacts(self) -> BitMap:
        """Contacts created since the last step (ids only grow)."""
        top = self._engine.contacts.max_id
        fresh = BitMap(range(self._max_id + 1, top + 1)) if top > self._max_id else BitMap()
        self._max_id = top
        return fresh

    def _step(
        self,
        now: int,
        cause: int,
        seeds: Seeds | None = None,
        *,
        redefined: str | None = None,
        removed: tuple[str, BitMap] | None = None,
        whole: Callable[[SavedSegment], bool] | None = None,
    ) -> list[Pending]:
        """Brings every segment to `now` (see the module docstring); returns its changes."""
        a = self._at
        moved = a is not None and now != a
        from_top = moved and a is not None and now > a and self._high is not None and a >= self._high
        pending: list[Pending] = []
        if removed is not None and len(removed[1]):
            ids = np.array(removed[1].to_array(), dtype=np.uint32)
            pending.append(Pending(removed[0], ids, np.zeros(ids.shape[0], np.bool_),
                                    np.full(ids.shape[0], DEFINITION, np.uint8), 0))
        changed: dict[str, list[tuple[int, BitMap]]] = {}
        live = len(self._engine.contacts)
        for name in self._order:
            saved = self._saved[name]
            full = name == redefined or (whole is not None and whole(saved))
            parts: list[tuple[int, BitMap]] = []  # later parts take precedence for the cause
            if saved.timing is not None and not full and moved:
                found = self._time_candidates(saved, a, now, from_top)  # type: ignore[arg-type]
                if found is None:
                    full = True
                elif found:
                    parts.append((TIME, found))
            for ref in saved.refs:
                parts.extend(changed.get(ref, ()))
            seed = seeds(saved) if seeds is not None else None
            if seed:
                parts.append((cause, seed))
            if not full and not parts:
                saved.evaluated_at_ms = now
                continue
            candidates = BitMap.union(*(p for _, p in parts)) if parts else BitMap()
            if len(candidates) > max(FEW_CONTACTS, live // FULL_FRACTION):
                full = True
            entered, exited = self._reevaluate(saved, now, None if full else candidates)
            if not entered and not exited:
                continue
            if name == redefined:  # every change of the segment put is down to its definition,
                default, parts = DEFINITION, []  # whatever moved the segments it refers to
            else:
                default = TIME if moved else cause
            change = pending_change(name, entered, exited, default, parts, len(saved.members))
            pending.append(change)
            changed[name] = [(int(code), bitmap_of(change.contacts[change.causes == code]))
                             for code in np.unique(change.causes)]
        self._at = now
        self._high = now if self._high is None else max(self._high, now)
        return pending

    def _time_candidates(self, saved: SavedSegment, a: int, b: int, from_top: bool) -> BitMap | None:
        """Contacts whose membership may differ between instants a and b through the segment's
        own thresholds; None when only a full evaluation can tell."""
        timing = saved.timing
        assert timing is not None
        if timing.daily_zones and timing.new_day(a, b):
            return None
        before = saved.marks if saved.marks_at == a and saved.marks is not None else timing.marks(a)
        after = timing.marks(b)
        saved.marks, saved.marks_at = after, b
        found: list[np.ndarray] = []
        for th, x, y in zip(timing.thresholds, before, after):
            if x == y:
                continue
            lo, hi = (x, y) if x < y else (y, x)
            if from_top and th.kind == "shift" and th.offset == EXISTS:
                found.append(self._times.future.query(th.type, lo, hi))
            elif self._times.rolling.has(th.type):
                found.append(self._times.rolling.query(th.type, lo, hi))
            else:
                return None
        if not found:
            return BitMap()
        return bitmap_of(np.concatenate(found) if len(found) > 1 else found[0])

    def _reevaluate(self, saved: SavedSegment, now: int, candidates: BitMap | None) -> tuple[BitMap, BitMap]:
        """Re-evaluates `candidates` (None: everyone) at `now`; returns (entered, exited)."""
        started = time.perf_counter()
        old = saved.members
        ctx = self.context(saved.definition, now)
        if candidates is None:
            new = evaluate(saved.definition, ctx)
            entered, exited = new - old, old - new
        else:
            got = evaluate_among(saved.definition, ctx, candidates)
            before = old & candidates
            entered, exited = got - before, before - got
            new = (old - exited) | entered if entered or exited else old
        saved.members = new
        saved.evaluated_at_ms = now
        saved.last_build_ms = (time.perf_counter() - started) * 1000
        return entered, exited

    def _publish(self, pending: list[Pending], now: int, position: int) -> ChangeList:
        """Logs a step's changes, records them in history and judges the alert rules."""
        chunks = []
        for change in pending:
            chunk = self.changes.append(change.segment, change.contacts, change.entered, change.causes, now, position)
            if chunk is not None:
                chunks.append(chunk)
            history = self._histories.get(change.segment)
            saved = self._saved.get(change.segment)
            if history is None or saved is None:
                continue  # deleted
            n_in = int(np.count_nonzero(change.entered))
            history.record(now, n_in, change.contacts.shape[0] - n_in, change.size)
            if saved.rules:
                self.alerts.check(change.segment, saved.rules, now, change.size, history)
        return ChangeList(chunks)

    def _position(self, *, after_record: bool) -> int:
        """The journal position whose record carries this step's write (0: not journalled).
        Records go in order, so the write being journalled next is last_seq + 1."""
        last = getattr(self._engine.journal, "last_seq", None)
        if last is None:
            return 0
        return int(last) + (0 if after_record else 1)

    def _durable_position(self) -> int | None:
        written = getattr(self._engine.journal, "written_seq", None)
        return None if written is None else int(written)

    # -------------------------------------------------------------- state

    def to_state(self) -> dict[str, Any]:
        """Definitions, members, instants, change log and histories (run under the writer lock)."""
        return registry_state(self)

    @classmethod
    def from_state(cls, engine: Engine, state: Mapping[str, Any]) -> SegmentRegistry:
        """The registry `to_state` described, over `engine`'s restored contacts and events."""
        return restore_registry(cls, engine, state)

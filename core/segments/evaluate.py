"""Segment evaluation: one bitmap per leaf, bitmap algebra for all / any / not.

Event leaves run kernels over every shard of their type (shards in parallel threads: the
kernels release the GIL); attribute and identifier leaves read contact columns; segment
references ask `resolve_segment` at the same instant. The universe is the live contacts.
"""

from __future__ import annotations

import array
import itertools
import os
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from pyroaring import BitMap

from core.cancel import checkpoint
from core.contacts import Contact, ContactBook
from core.fields import built_identifier_holders, identifier_holders
from core.identifiers import IdKind
from core.segments import derived, measures
from core.segments.attributes import attribute_bitmap, attribute_members_among
from core.segments.explain import Explanation
from core.segments.explain import explain as explain_contact
from core.segments.plan import (
    All,
    AnyOf,
    AttrCond,
    Definition,
    EventCond,
    IdentCond,
    Node,
    Not,
    SegmentRef,
    paths,
    paths_read,
)
from core.store import EventStore

__all__ = ["EvalContext", "Explanation", "bitmap_of", "condition_counts", "evaluate", "evaluate_among", "explain"]

_CPUS = os.cpu_count() or 1
FEW_CONTACTS = 2048  # evaluate_among reads contacts one by one up to this many
SHARE_AFTER_S = 0.0003  # the shards of a leaf are shared with threads when the first took this long
NARROW_FRACTION = 64  # a negation under `all` judges only the contacts left when fewer than universe / this
_pool: ThreadPoolExecutor | None = None


_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_CPUS, thread_name_prefix="shard")
        return _pool


def bitmap_of(ids: np.ndarray) -> BitMap:
    """A BitMap of uint32 ids (via array('I'), far faster than iterating numpy). Ids are sorted
    first when they are not: a bitmap takes sorted ids about ten times faster, which pays for
    the sort (period kernels list their contacts in the order they met them)."""
    ids = np.ascontiguousarray(ids, dtype=np.uint32)
    if ids.shape[0] > 1 and not bool(np.all(ids[1:] >= ids[:-1])):
        ids = np.sort(ids)
    return BitMap(array.array("I", ids.tobytes()))


@dataclass
class EvalContext:
    """Everything one evaluation reads; `now_ms` is the evaluation instant."""

    store: EventStore
    contacts: ContactBook
    now_ms: int
    tz: str
    resolve_segment: Callable[[str, int], BitMap]
    parallel: bool = True  # run the shards of an event leaf in threads
    among: BitMap | None = None  # judge only these contacts (see evaluate_among)
    # Per event type, the parameter paths whose columns the contacts' rows are read with
    # under `among` (a superset of what any one leaf reads, so the leaves of one type share
    # a read); a type not in it reads what its leaf needs (plan.paths_read).
    type_paths: Mapping[str, frozenset[str]] | None = None
    _universe: BitMap | None = field(default=None, init=False, repr=False)

    def universe(self) -> BitMap:
        """The live contacts, or those of them in `among` (computed once; never mutate it)."""
        if self._universe is None:
            live = live_contacts(self.contacts)
            self._universe = live if self.among is None else live & self.among
        return self._universe

    def few(self) -> bool:
        """Whether only a few contacts are judged: leaves then read those contacts one by one."""
        return self.among is not None and len(self.universe()) <= FEW_CONTACTS


_universes: "weakref.WeakKeyDictionary[ContactBook, tuple[tuple[int, int], BitMap]]" = weakref.WeakKeyDictionary()
_universe_lock = threading.Lock()


def live_contacts(contacts: ContactBook) -> BitMap:
    """The live contact ids as a bitmap, shared between evaluations while it stays current.

    Ids are never reused and a contact never comes back, so (highest id, live count) changes
    whenever the set does: creating raises the first, erasing and merging lower the second.
    """
    key = (contacts.max_id, len(contacts))
    with _universe_lock:
        hit = _universes.get(contacts)
    if hit is not None and hit[0] == key:
        return hit[1]
    members = bitmap_of(contacts.ids())
    with _universe_lock:
        _universes[contacts] = (key, members)
    return members


_shard_seconds: dict[Any, float] = {}  # per leaf: seconds a shard took when it last ran
_SHARD_SECONDS_KEPT = 10_000


def _map_shards(ctx: EvalContext, fn: Callable[[Any], BitMap], views: list[Any], key: Any = None) -> list[BitMap]:
    """`fn` over every shard; `checkpoint()` between shard results stops a cancelled call.

    The calling thread and up to cpu_count - 1 pool threads take the shards from one counter.
    Waking a thread costs more than a short read, so the helpers join only for shards taking
    SHARE_AFTER_S or more: at once when the leaf `key` took that long per shard last time,
    otherwise once the caller has read the first shard alone and found it that slow (shards
    are alike in size)."""
    n = len(views)
    results: list[BitMap | None] = [None] * n
    taken = itertools.count()  # next() on a count is atomic under the GIL
    helpers = min(n - 1, _CPUS - 1) if ctx.parallel else 0
    futures: list[Future[None]] = []

    def work() -> None:
        for i in taken:
            if i >= n:
                return
            results[i] = fn(views[i])

    def share() -> None:
        futures.extend(_executor().submit(work) for _ in range(helpers))

    t0 = time.perf_counter()
    try:
        if helpers > 0 and _shard_seconds.get(key, 0.0) >= SHARE_AFTER_S:
            share()
        for i in taken:
            if i >= n:
                break
            checkpoint()
            results[i] = fn(views[i])
            if i == 0 and helpers > 0 and not futures and time.perf_counter() - t0 >= SHARE_AFTER_S:
                share()
        for future in futures:
            if not future.cancel():  # a helper that never started has nothing to wait for
                future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    if key is not None and n:
        if len(_shard_seconds) >= _SHARD_SECONDS_KEPT:
            _shard_seconds.clear()
        _shard_seconds[key] = (time.perf_counter() - t0) * (1 + len(futures)) / n
    return results  # type: ignore[return-value]  # every index taken once


def _present(view: Any) -> BitMap:
    """The contacts with rows in a table version (cached with the version's arrays)."""
    run_contact, _ = measures.contact_runs(view)
    return derived.cache.get("present", [run_contact], lambda: bitmap_of(run_contact))


def _held(held: np.ndarray) -> BitMap:
    """The contacts a split's base rows are not read for (cached with the array)."""
    return derived.cache.get("held", [held], lambda: bitmap_of(held))


def _pieces(cond: EventCond, ctx: EvalContext) -> list[tuple[Any, BitMap | None]]:
    """Contact-disjoint sorted versions holding every row the condition may read, each with the
    contacts whose rows in it are to be ignored (None: none). Nothing is merged or compacted."""
    if ctx.among is not None:
        ids = np.array(ctx.universe().to_array(), dtype=np.uint32)
        read = ctx.type_paths.get(cond.type) if ctx.type_paths is not None else None
        return [(v, None) for v in ctx.store.rows_of(cond.type, ids, read if read is not None else paths_read(cond))]
    out: list[tuple[Any, BitMap | None]] = []
    for split in ctx.store.splits(cond.type):
        if len(split.base):
            out.append((split.base, _held(split.held) if split.held.shape[0] else None))
        if len(split.fresh):
            out.append((split.fresh, None))
    return out


def event_members(cond: EventCond, ctx: EvalContext) -> BitMap:
    """Members of one event condition."""
    plan = measures.plan_event(cond, ctx.now_ms, ctx.tz)
    pieces = _pieces(cond, ctx)
    dictionary = ctx.store.dictionary
    absent = measures.absent_holds(plan)

    # With absent contacts holding, collect those that fail and subtract them.
    def shard(piece: tuple[Any, BitMap | None]) -> BitMap:
        view, ignored = piece
        ids, complemented = measures.select(plan, view, dictionary, not absent)
        part = bitmap_of(ids)
        got = _present(view) - part if complemented else part
        return got - ignored if ignored is not None else got

    parts = _map_shards(ctx, shard, pieces, cond)
    picked = BitMap.union(*parts) if len(parts) > 1 else (parts[0] if parts else BitMap())
    if absent:
        return ctx.universe() - picked
    return picked & ctx.universe()


def _has_identifier(contact: Contact, cond: IdentCond) -> bool:
    if cond.kind == "key":
        return cond.key_name in contact.keys
    if cond.kind == "pushToken":
        return bool(contact.push_tokens)
    value = {"externalId": contact.external_id, "email": contact.email, "phone": contact.phone}[cond.kind]
    return value is not None


def identifier_members(cond: IdentCond, ctx: EvalContext) -> BitMap:
    """Members of an identifier condition."""
    if ctx.few() and built_identifier_holders(ctx.contacts, IdKind(cond.kind), cond.key_name) is None \
            and len(ctx.universe()) * 512 < ctx.contacts.max_id + 1:
        return BitMap(c for c in ctx.universe() if _has_identifier(ctx.contacts.get(c), cond) == cond.present)
    having = identifier_holders(ctx.contacts, IdKind(cond.kind), cond.key_name) & ctx.universe()
    return having if cond.present else ctx.universe() - having


def leaf_members(node: Node, ctx: EvalContext) -> BitMap:
    """Members of one leaf condition."""
    if isinstance(node, EventCond):
        return event_members(node, ctx)
    if isinstance(node, AttrCond):
        if ctx.few():
            candidates = np.array(ctx.universe().to_array(), dtype=np.uint32)
            return bitmap_of(attribute_members_among(node, ctx.contacts, candidates, ctx.now_ms, ctx.tz))
        return attribute_bitmap(node, ctx.contacts, ctx.now_ms, ctx.tz) & ctx.universe()
    if isinstance(node, IdentCond):
        return identifier_members(node, ctx)
    if isinstance(node, SegmentRef):
        return ctx.resolve_segment(node.name, ctx.now_ms) & ctx.universe()
    raise TypeError(f"not a leaf condition: {type(node).__name__}")


def _evaluate(node: Node, ctx: EvalContext, at: str, sink: dict[str, BitMap] | None) -> BitMap:
    checkpoint()
    if isinstance(node, All):
        result = _evaluate_all(node, ctx, at, sink)
    elif isinstance(node, AnyOf):
        result = BitMap()
        for i, child in enumerate(node.children):
            result |= _evaluate(child, ctx, f"{at}.any[{i}]", sink)
    elif isinstance(node, Not):
        result = ctx.universe() - _evaluate(node.child, ctx, f"{at}.not", sink)
    else:
        result = leaf_members(node, ctx)
        at = f"{at}.{_leaf_key(node)}"
    if sink is not None:
        sink[at] = result
    return result


def _narrowed(ctx: EvalContext, among: BitMap) -> EvalContext:
    """`ctx` judging only `among` (a subset of ctx's universe)."""
    out = EvalContext(ctx.store, ctx.contacts, ctx.now_ms, ctx.tz, ctx.resolve_segment, ctx.parallel, among)
    out._universe = among
    return out


def _evaluate_all(node: All, ctx: EvalContext, at: str, sink: dict[str, BitMap] | None) -> BitMap:
    """The intersection of the children. Without a sink, negations go last and subtract their
    inner result from what the others left (never universe - inner); when that is a small part
    of the universe, the inner condition is judged for those contacts only."""
    if sink is not None:  # every condition's own members are wanted: no shortcuts
        out: BitMap | None = None
        for i, child in enumerate(node.children):
            got = _evaluate(child, ctx, f"{at}.all[{i}]", sink)
            out = got if out is None else out & got
        return out if out is not None else BitMap()
    order = sorted(range(len(node.children)), key=lambda i: isinstance(node.children[i], Not))
    out = None
    for i in order:
        child = node.children[i]
        if out is not None and isinstance(child, Not):
            inner_ctx = _narrowed(ctx, out) if len(out) * NARROW_FRACTION <= len(ctx.universe()) else ctx
            out = out - _evaluate(child.child, inner_ctx, f"{at}.all[{i}].not", None)
        else:
            got = _evaluate(child, ctx, f"{at}.all[{i}]", None)
            out = got if out is None else out & got
        if not out:
            break
    return out if out is not None else BitMap()


def _leaf_key(node: Node) -> str:
    return {EventCond: "event", AttrCond: "attribute", IdentCond: "identifier", SegmentRef: "segment"}[type(node)]


def evaluate(defn_or_node: Definition | Node, ctx: EvalContext) -> BitMap:
    """Members of a definition (static: its listed live contacts) or of a condition node."""
    if isinstance(defn_or_node, Definition):
        if defn_or_node.condition is None:
            return BitMap(defn_or_node.contacts or ()) & ctx.universe()
        return _evaluate(defn_or_node.condition, ctx, "condition", None)
    return _evaluate(defn_or_node, ctx, "condition", None)


def evaluate_among(defn_or_node: Definition | Node, ctx: EvalContext, contact_ids: Any) -> BitMap:
    """The members among `contact_ids` only (a subset of them), reading just their rows:
    re-evaluating the contacts an ingest touched costs their events, not the whole store."""
    among = contact_ids if isinstance(contact_ids, BitMap) else bitmap_of(np.asarray(contact_ids, dtype=np.uint32))
    narrowed = EvalContext(ctx.store, ctx.contacts, ctx.now_ms, ctx.tz, ctx.resolve_segment, ctx.parallel, among,
                           ctx.type_paths)
    return evaluate(defn_or_node, narrowed)


def condition_counts(defn: Definition, ctx: EvalContext) -> list[tuple[str, int]]:
    """Members per condition path (pre-order, the paths of plan.paths), for previews."""
    if defn.condition is None:
        return []
    sink: dict[str, BitMap] = {}
    _evaluate(defn.condition, ctx, "condition", sink)
    return [(path, len(sink[path])) for path, _ in paths(defn)]


def explain(defn: Definition, ctx: EvalContext, contact_id: int) -> list[Explanation]:
    """Every condition's value for one contact (see core.segments.explain.Explanation)."""
    return explain_contact(defn, ctx, contact_id)

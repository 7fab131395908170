"""evaluate(), explain() and condition_counts() on small hand-built stores, held to the
reference evaluator of tests/reference.py; sharded stores give the single-shard answer."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from pyroaring import BitMap

import tests.reference as ref
from core.contacts import ContactBook
from core.event_model import flatten
from core.identifiers import IdKind, make_identifier
from core.segments import evaluate as evaluation
from core.segments.definition import parse_definition
from core.segments.evaluate import (
    EvalContext,
    condition_counts,
    evaluate,
    evaluate_among,
    explain,
)
from core.store import EventStore

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z, a Tuesday
DAY = 86_400_000
TZ = "Europe/London"


class World:
    """The same contacts and events in the engine's structures and in reference form."""

    def __init__(self, shard_bits: int, seed: int = 7, contacts: int = 14, events: int = 260) -> None:
        rnd = random.Random(seed)
        self.store = EventStore(shard_bits=shard_bits)
        self.book = ContactBook()
        self.ref_contacts: dict[int, ref.RefContact] = {}
        self.ref_events: list[ref.RefEvent] = []
        for i in range(1, contacts + 1):
            fields: dict[str, Any] = {"city": rnd.choice(["London", "Paris", "Lyon"]), "age": rnd.choice([20, 30, "40", 41.5])}
            if i % 3:
                fields["birthday"] = rnd.choice(["1990-11-15", "1988-11-14", "2000-02-29", "1975-03-01"])
            if i % 4 == 0:
                fields["vip"] = True
            idents = [make_identifier(IdKind.EMAIL, f"c{i}@x.io")] if i % 2 else []
            cid = self.book.create(idents, rnd.choice(["Api", "Import", "Event"]), NOW - rnd.randint(0, 900) * DAY, fields)
            c = self.book.get(cid)
            self.ref_contacts[cid] = ref.RefContact(
                cid, {"email": [c.email]} if c.email else {}, dict(c.fields), c.created_at_ms, c.source
            )
        for _ in range(events):
            cid = rnd.randint(0, contacts)  # 0: system events, never members
            ts = NOW - rnd.randint(-2, 45) * DAY + rnd.randint(-12, 12) * 3_600_000
            params = {
                "totalPrice": rnd.choice([10, 99.5, "250", 600, "x", True, "-7.5e0"]),
                "items": [
                    {"title": rnd.choice(["sneakers", "hat", "Sneakers"]), "price": rnd.choice([50, 150, "120"])}
                    for _ in range(rnd.randint(0, 3))
                ],
                "city": rnd.choice(["London", "Paris", None]),
                "tags": rnd.choice([["a", "b"], ["b"], [], "a"]),
            }
            etype = rnd.choice(["purchase", "view"])
            self.store.append(etype, cid, ts, flatten({k: v for k, v in params.items() if v is not None}))
            self.ref_events.append(ref.RefEvent(etype, cid, ts, {k: v for k, v in params.items() if v is not None}))
        self.saved: dict[str, dict[str, Any]] = {
            "buyers": {"name": "buyers", "timezone": TZ, "condition": {"event": {"type": "purchase", "period": {"allTime": {}}}}}
        }

    def ctx(self, parallel: bool = True) -> EvalContext:
        def resolve(name: str, now_ms: int) -> BitMap:
            return evaluate(parse_definition(self.saved[name]), self.ctx_at(now_ms))

        return EvalContext(self.store, self.book, NOW, TZ, resolve, parallel=parallel)

    def ctx_at(self, now_ms: int) -> EvalContext:
        ctx = self.ctx()
        ctx.now_ms = now_ms
        return ctx

    def reference(self, cond: dict[str, Any]) -> set[int]:
        doc = {"name": "t", "timezone": TZ, "condition": cond}
        return ref.evaluate(doc, self.ref_events, self.ref_contacts, NOW, self.saved)


def E(**body: Any) -> dict[str, Any]:
    return {"event": body}


CONDITIONS = [
    E(type="purchase", period={"last": {"days": 30}}, where=[{"param": "totalPrice", "op": "gt", "value": 50}], count={"gte": 2}),
    E(type="purchase", period={"last": {"days": 10}}, sum={"param": "totalPrice", "lte": 300}),
    E(type="purchase", period={"allTime": {}}, avg={"param": "items.price", "gt": 90}),
    E(type="purchase", period={"allTime": {}}, min={"param": "items.price", "lt": 100}),
    E(type="purchase", period={"thisMonth": {}}, max={"param": "totalPrice", "gte": 250}),
    E(type="purchase", period={"allTime": {}}, distinct={"param": "items.title", "gte": 2}),
    E(type="view", period={"allTime": {}}, distinct={"param": "totalPrice", "eq": 0}),
    E(type="purchase", period={"last": {"days": 7}}, first={}),
    E(type="view", period={"before": {"days": 5}}, last={}),
    E(type="view", daysSinceLast={"lte": 3}),
    E(type="view", streak={"unit": "week", "count": 3}),
    E(type="purchase", streak={"unit": "day", "count": 2}),
    E(type="purchase", period={"allTime": {}}, where=[{"param": "items", "op": "any", "where": [
        {"param": "title", "op": "eq", "value": "sneakers"}, {"param": "price", "op": "gt", "value": 100}]}]),
    E(type="purchase", period={"allTime": {}}, where=[{"param": "items", "op": "any", "where": [
        {"param": "title", "op": "starts_with", "value": "S"}, {"param": "price", "op": "not_exists"}]}]),
    E(type="purchase", period={"last": {"days": 3}}, count={"eq": 0}),
    E(type="nothing", period={"allTime": {}}, count={"lt": 1}),
    E(type="purchase", period={"allTime": {}}, where=[{"param": "totalPrice", "op": "not_in", "value": [10, "x"]}], count={"gte": 3}),
    E(type="purchase", period={"allTime": {}}, where=[{"param": "totalPrice", "op": "in", "value": [600, "x", True]}]),
    E(type="purchase", period={"allTime": {}}, where=[{"param": "items.title", "op": "not_exists"}]),
    E(type="purchase", period={"yesterday": {}}, where=[{"param": "city", "op": "ne", "value": "Paris"}]),
    E(type="view", period={"previous": {"unit": "week", "count": 2}}, where=[{"param": "tags", "op": "eq", "value": "a"}]),
    E(type="view", period={"allTime": {}}, where=[{"param": "items.price", "op": "between", "value": [100, 130]}]),
    E(type="view", period={"allTime": {}}, where=[{"param": "city", "op": "lt", "value": "M"}, {"param": "totalPrice", "op": "exists"}]),
    E(type="view", period={"allTime": {}}, where=[{"param": "items.title", "op": "contains", "value": "neak"}]),
    E(type="view", period={"allTime": {}}, where=[{"param": "totalPrice", "op": "eq", "value": True}], count={"gte": 2}),
    {"not": {"attribute": {"field": "city", "op": "eq", "value": "London"}}},
    {"attribute": {"field": "birthday", "op": "gte", "value": "1988-11-14"}},
    {"attribute": {"field": "birthday", "op": "anniversaryInDays", "value": 1}},
    {"attribute": {"field": "age", "op": "in", "value": [20, "40"]}},
    {"attribute": {"field": "age", "op": "gt", "value": 35}},
    {"attribute": {"field": "vip", "op": "not_exists"}},
    {"attribute": {"field": "createdAt", "op": "gte", "value": NOW - 400 * DAY}},
    {"attribute": {"field": "createdAt", "op": "anniversaryInDays", "value": 3}},
    {"attribute": {"field": "source", "op": "in", "value": ["Api", "Import"]}},
    {"all": [{"identifier": {"kind": "email", "present": True}}, {"identifier": {"kind": "phone", "present": False}}]},
    {"any": [{"segment": "buyers"}, {"attribute": {"field": "city", "op": "eq", "value": "Lyon"}}]},
    {"all": [E(type="view", period={"last": {"days": 30}}), {"not": E(type="purchase", period={"last": {"days": 30}})}]},
]

# negations inside `all`, in every position, next to a small attribute result
NEGATIONS = [
    {"all": [{"attribute": {"field": "vip", "op": "eq", "value": True}}, {"not": E(type="purchase", period={"last": {"days": 2}})}]},
    {"all": [{"not": E(type="purchase", period={"last": {"days": 1}})}, {"attribute": {"field": "city", "op": "eq", "value": "Paris"}}]},
    {"all": [{"not": E(type="view", period={"allTime": {}}, count={"gte": 12})},
             {"not": {"attribute": {"field": "city", "op": "eq", "value": "London"}}},
             {"not": E(type="purchase", period={"last": {"days": 1}})}]},
    {"all": [{"not": E(type="view", period={"allTime": {}}, count={"gte": 12})},
             {"not": {"any": [E(type="purchase", period={"last": {"days": 1}}), {"segment": "buyers"}]}}]},
    {"all": [{"not": E(type="nothing", period={"allTime": {}})}, {"attribute": {"field": "vip", "op": "exists"}}]},
]


@pytest.fixture(scope="module")
def world() -> World:
    return World(shard_bits=20)


@pytest.fixture(scope="module")
def sharded() -> World:
    return World(shard_bits=2)  # contacts spread over several shards


@pytest.mark.parametrize("cond", CONDITIONS, ids=[str(i) for i in range(len(CONDITIONS))])
def test_members_match_reference(world: World, sharded: World, cond: dict[str, Any]) -> None:
    defn = parse_definition({"name": "t", "timezone": TZ, "condition": cond}, known_segment=lambda n: n == "buyers")
    want = world.reference(cond)
    assert set(evaluate(defn, world.ctx())) == want
    assert set(evaluate(defn, sharded.ctx(parallel=True))) == want
    assert set(evaluate(defn, sharded.ctx(parallel=False))) == want


@pytest.mark.parametrize("cond", CONDITIONS, ids=[str(i) for i in range(len(CONDITIONS))])
def test_explain_agrees_with_members(sharded: World, cond: dict[str, Any]) -> None:
    defn = parse_definition({"name": "t", "timezone": TZ, "condition": cond}, known_segment=lambda n: n == "buyers")
    ctx = sharded.ctx()
    members = evaluate(defn, ctx)
    counts = dict(condition_counts(defn, ctx))
    held: dict[str, int] = {}
    for cid in [*sharded.book.ids().tolist(), 0, 999]:
        lines = explain(defn, ctx, cid)
        assert lines[0].holds == (cid in members)
        for line in lines:
            held[line.path] = held.get(line.path, 0) + int(line.holds)
    assert counts == held


def test_static_definition_lists_live_contacts(world: World) -> None:
    defn = parse_definition({"name": "s", "contacts": [1, 2, 999]})
    assert set(evaluate(defn, world.ctx())) == {1, 2}
    assert condition_counts(defn, world.ctx()) == []
    assert [e.holds for e in explain(defn, world.ctx(), 2)] == [True]


def test_events_after_now_do_not_exist(world: World) -> None:
    defn = parse_definition({"name": "t", "condition": E(type="purchase", period={"allTime": {}}, count={"gte": 1})})
    early = world.ctx_at(NOW - 60 * DAY)
    assert set(evaluate(defn, early)) == set()
    late = {e.contact_id for e in world.ref_events if e.type == "purchase" and e.ts_ms <= NOW} - {0}
    assert set(evaluate(defn, world.ctx())) == late


def test_explain_reports_values(world: World) -> None:
    cond = E(type="purchase", period={"allTime": {}}, count={"gte": 1})
    defn = parse_definition({"name": "t", "condition": cond})
    cid = next(e.contact_id for e in world.ref_events if e.type == "purchase" and e.contact_id and e.ts_ms <= NOW)
    (line,) = explain(defn, world.ctx(), cid)
    n = sum(1 for e in world.ref_events if e.type == "purchase" and e.contact_id == cid and e.ts_ms <= NOW)
    assert (line.kind, line.value, line.holds) == ("event", n, True)


def test_universe_excludes_system_contact(world: World) -> None:
    defn = parse_definition({"name": "t", "condition": {"not": E(type="nothing")}})
    members = evaluate(defn, world.ctx())
    assert 0 not in members and set(members) == set(world.book.ids().tolist())


def test_no_new_specialisations_after_warm_up(sharded: World) -> None:
    import numba

    from core.kernels import aggregates, compare, filters, groups, runs, sequences
    from core.segments.warmup import warm_up

    def signatures() -> dict[str, int]:
        out = {}
        for mod in (aggregates, compare, filters, groups, runs, sequences):
            for name, obj in vars(mod).items():
                if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == mod.__name__:
                    out[f"{mod.__name__}.{name}"] = len(obj.signatures)
        return out

    if not hasattr(aggregates._count_in_window, "signatures"):
        pytest.skip("jit disabled")
    assert warm_up() >= 0.0
    before = signatures()
    for cond in CONDITIONS:
        defn = parse_definition({"name": "t", "timezone": TZ, "condition": cond}, known_segment=lambda n: n == "buyers")
        evaluate(defn, sharded.ctx())
    assert signatures() == before
    assert np.all(np.array(list(before.values())) >= 0)


def test_universe_follows_creates_and_erasures() -> None:
    store, book = EventStore(), ContactBook()
    first = [book.create((), "Api", NOW) for _ in range(3)]
    defn = parse_definition({"name": "t", "condition": {"not": E(type="nothing")}})

    def members() -> set[int]:
        return set(evaluate(defn, EvalContext(store, book, NOW, "UTC", lambda n, t: BitMap())))

    assert members() == set(first)
    book.erase(first[1])
    assert members() == {first[0], first[2]}
    extra = book.create((), "Api", NOW)
    assert members() == {first[0], first[2], extra}


@pytest.mark.parametrize("few", [True, False])
@pytest.mark.parametrize("cond", CONDITIONS, ids=[str(i) for i in range(len(CONDITIONS))])
def test_evaluating_some_contacts_matches_full_evaluation(
    sharded: World, cond: dict[str, Any], few: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not few:
        monkeypatch.setattr(evaluation, "FEW_CONTACTS", 0)
    defn = parse_definition({"name": "t", "timezone": TZ, "condition": cond}, known_segment=lambda n: n == "buyers")
    full = evaluate(defn, sharded.ctx())
    rnd = random.Random(len(str(cond)))
    for _ in range(3):
        ids = rnd.sample(range(0, 18), rnd.randint(0, 8))  # includes 0 and unknown ids
        got = evaluate_among(defn, sharded.ctx(), ids)
        assert set(got) == set(full) & set(ids)


@pytest.mark.parametrize("narrow", [1, 10**9])  # always / never judge a negation among the contacts left
@pytest.mark.parametrize("cond", NEGATIONS, ids=[str(i) for i in range(len(NEGATIONS))])
def test_negations_under_all_match_reference(
    world: World, sharded: World, cond: dict[str, Any], narrow: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation, "NARROW_FRACTION", narrow)
    defn = parse_definition({"name": "t", "timezone": TZ, "condition": cond}, known_segment=lambda n: n == "buyers")
    want = world.reference(cond)
    assert set(evaluate(defn, world.ctx())) == want
    assert set(evaluate(defn, sharded.ctx())) == want
    assert set(evaluate_among(defn, sharded.ctx(), list(range(0, 18)))) == want


# ------------------------------------------------------------------ shards and threads


def _shard_run(key: object, seconds: float, n: int = 6) -> tuple[list[BitMap], set[str]]:
    """`_map_shards` over n shards each taking `seconds`: results, and the threads that ran them."""
    import threading
    import time

    ctx = EvalContext(EventStore(), ContactBook(), 0, "UTC", lambda name, now: BitMap())
    threads: set[str] = set()

    def fn(i: int) -> BitMap:
        threads.add(threading.current_thread().name)
        if seconds:
            time.sleep(seconds)
        return BitMap([i, 100 + i])

    return evaluation._map_shards(ctx, fn, list(range(n)), key), threads


@pytest.mark.skipif((__import__("os").cpu_count() or 1) < 2, reason="one core: shards never go to threads")
def test_short_shards_stay_in_the_calling_thread_long_ones_are_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    # a threshold far above what a busy machine may add to a short shard, far below a long one
    monkeypatch.setattr(evaluation, "SHARE_AFTER_S", 0.05)
    me = threading.current_thread().name
    key = object()
    results, threads = _shard_run(key, 0.0)
    assert results == [BitMap([i, 100 + i]) for i in range(6)]
    assert threads == {me}
    # slow shards: the first alone, then helpers join; the leaf's time is remembered
    results, threads = _shard_run(key, 0.1)
    assert results == [BitMap([i, 100 + i]) for i in range(6)]
    assert me in threads and len(threads) > 1
    assert evaluation._shard_seconds[key] >= evaluation.SHARE_AFTER_S
    # the next call shares at once (a helper may take the first shard); still every result in place
    results, threads = _shard_run(key, 0.1)
    assert results == [BitMap([i, 100 + i]) for i in range(6)]
    assert len(threads) > 1


def test_a_failing_shard_fails_the_call() -> None:
    ctx = EvalContext(EventStore(), ContactBook(), 0, "UTC", lambda name, now: BitMap())

    def fn(i: int) -> BitMap:
        if i == 4:
            raise ValueError("shard 4")
        return BitMap([i])

    with pytest.raises(ValueError, match="shard 4"):
        evaluation._map_shards(ctx, fn, list(range(6)), None)

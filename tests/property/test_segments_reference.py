"""The engine's members equal the reference evaluator's on random data and definitions.

Both sides get the same contacts (created in id order through the public facade), the same
events (mapped by their contactId parameter) and the same `now`; every definition must give
exactly the same set of contact ids. Shards are tiny so that several are exercised.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as HypothesisInvalidArgument

from core.engine import Engine
from tests import reference as ref
from tests.property import strategies as gen

pytestmark = pytest.mark.property


def _bounded() -> settings:
    """The HYPOTHESIS_PROFILE profile when it is registered, else a quick bounded run."""
    name = os.environ.get("HYPOTHESIS_PROFILE")
    if name:
        try:
            return settings(settings.get_profile(name), deadline=None)
        except HypothesisInvalidArgument:
            pass
    return settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


BOUNDED = _bounded()


def build_engine(scenario: gen.Scenario, probe: dict[str, Any] | None = None,
                 segments: list[dict[str, Any]] = ()) -> Engine:
    """An engine holding the scenario's contacts (ids 1..N in order), then its saved
    `segments`, then its events in the scenario's batches, then its merges and erasures.

    Between batches the `probe` definition is checked against the events stored so far, so
    that evaluation also runs over partly ingested data.
    """
    engine = Engine(clock=lambda: scenario.now_ms, shard_bits=2)
    for i, doc in enumerate(scenario.contact_docs):
        report = engine.upsert_contacts([doc], source=scenario.contact_sources[i],
                                        now_ms=scenario.contact_created_ms[i])
        assert report.created == 1 and report.outcomes[0].contact_id == i + 1, report
    for doc in segments:
        engine.put_segment(doc)
    start = 0
    for end in scenario.batch_ends:
        batch = scenario.events[start:end]
        docs = [{"eventTypeKey": etype, "params": {"contactId": str(cid), **params}, "timestamp": ts}
                for etype, cid, ts, params in batch]
        report = engine.ingest(docs)
        rejected = [o for o in report.outcomes if o.status != "accepted"]
        assert not rejected, rejected
        assert [o.contact_id for o in report.outcomes] == [cid for _, cid, _, _ in batch]
        if end < len(scenario.events) and probe is not None:
            definition = probe
            expected = ref.evaluate(definition, scenario.reference_events(end, changed=False),
                                    scenario.reference_contacts(changed=False), scenario.now_ms)
            got = set(engine.evaluate(definition, as_of_ms=scenario.now_ms))
            assert got == expected, f"after {end} events\n" + describe(scenario, definition, expected, got)
        start = end
    for kind, a, b in scenario.changes:
        if kind == "erase":
            engine.erase_contact(a)
        else:
            engine.merge_contacts(a, b)
    return engine


def _iso(ms: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)).isoformat()


def describe(scenario: gen.Scenario, definition: dict[str, Any], expected: set[int], got: set[int],
             segments: dict[str, dict[str, Any]] | None = None, now_ms: int | None = None) -> str:
    """A readable account of a mismatch: the definition, and the data of the contacts in dispute."""
    disputed = sorted(expected ^ got)
    now_ms = scenario.now_ms if now_ms is None else now_ms
    lines = [
        f"now={now_ms} ({_iso(now_ms)}) tz={scenario.tz} changes={scenario.changes} seed={scenario.seed}",
        f"definition={json.dumps(definition)}",
        f"reference={sorted(expected)} engine={sorted(got)} disputed={disputed}",
    ]
    if segments:
        lines.append(f"segments={json.dumps(segments)}")
    owners = scenario.owners()
    for cid in disputed:
        lines.append(f"contact {cid}: {json.dumps(scenario.contact_docs[cid - 1])} "
                     f"created={scenario.contact_created_ms[cid - 1]} source={scenario.contact_sources[cid - 1]}")
        for etype, sender, ts, params in scenario.events:
            if owners[sender] == cid:
                lines.append(f"  {etype} ts={ts} ({_iso(ts)}) params={json.dumps(params)} (sent for {sender})")
    return "\n".join(lines)


def assert_same_members(engine: Engine, scenario: gen.Scenario, definition: dict[str, Any],
                        segments: dict[str, dict[str, Any]] | None = None, now_ms: int | None = None) -> None:
    now_ms = scenario.now_ms if now_ms is None else now_ms
    expected = ref.evaluate(definition, scenario.reference_events(), scenario.reference_contacts(), now_ms, segments)
    got = set(engine.evaluate(definition, as_of_ms=now_ms))
    assert got == expected, describe(scenario, definition, expected, got, segments, now_ms)


@BOUNDED
@given(gen.scenarios())
def test_adhoc_definitions_match_the_reference(scenario: gen.Scenario) -> None:
    engine = build_engine(scenario, probe=scenario.definitions[0])
    for definition in scenario.definitions:
        assert_same_members(engine, scenario, definition)
    # an earlier as-of: later events are stored but do not exist for that evaluation
    for now_ms in scenario.other_nows:
        for definition in scenario.definitions[:6] + scenario.definitions[6::5]:
            assert_same_members(engine, scenario, definition, now_ms=now_ms)


@st.composite
def referencing_scenarios(draw: st.DrawFn) -> tuple[gen.Scenario, dict[str, dict[str, Any]]]:
    """A scenario whose definitions refer to saved segments (dynamic in any zone, and static)."""
    scenario = draw(gen.scenarios(n_random=0, n_focused=0))
    maker = gen.DefinitionMaker(random.Random(scenario.seed), scenario.now_ms, scenario.tz, scenario.events,
                                scenario.contact_docs, scenario.contact_created_ms)
    saved: dict[str, dict[str, Any]] = {}
    n_contacts = len(scenario.contact_docs)
    saved["static-0"] = {"name": "static-0", "contacts": sorted(draw(st.sets(st.integers(1, n_contacts))))}
    for k in range(draw(st.integers(1, 4))):
        name = f"saved-{k}"
        tz = draw(st.sampled_from(gen.TIME_ZONES))
        maker.tz = tz
        condition = maker.condition(tuple(saved)) if k % 2 else maker.focused()
        saved[name] = {"name": name, "timezone": tz, "condition": condition}
    names = tuple(saved)
    maker.tz = scenario.tz
    scenario.definitions = [
        {"name": f"adhoc-{k}", "timezone": scenario.tz, "condition": maker.condition(names)} for k in range(6)
    ] + [{"name": "direct", "timezone": scenario.tz, "condition": {"segment": name}} for name in names]
    scenario.events = maker.events  # with any event placed on a period edge, in the last batch
    scenario.batch_ends[-1] = len(maker.events)
    return scenario, saved


@pytest.mark.skipif(not hasattr(Engine, "put_segment"), reason="Engine.put_segment is not there yet")
@BOUNDED
@given(referencing_scenarios())
def test_segment_references_match_the_reference(case: tuple[gen.Scenario, dict[str, dict[str, Any]]]) -> None:
    """Saved before the events arrive, referred to at the evaluation's own `now`."""
    scenario, saved = case
    engine = build_engine(scenario, segments=list(saved.values()))
    for now_ms in [scenario.now_ms] + scenario.other_nows:
        for definition in scenario.definitions:
            assert_same_members(engine, scenario, definition, saved, now_ms)

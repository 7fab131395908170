"""The engine's members equal the reference evaluator's on random data and definitions.

Both sides get the same contacts (created in id order through the public facade), the same
events (mapped by their contactId parameter) and the same `now`; every definition must give
exactly the same set of contact ids. Shards are tiny so that several are exercised.
"""

from __future__ import annotations

import datetime as dt
import json
import os
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


def build_engine(scenario: gen.Scenario) -> Engine:
    """An engine holding the scenario's contacts (ids 1..N in order) and events."""
    engine = Engine(clock=lambda: scenario.now_ms, shard_bits=2)
    for i, doc in enumerate(scenario.contact_docs):
        report = engine.upsert_contacts([doc], source=scenario.contact_sources[i],
                                        now_ms=scenario.contact_created_ms[i])
        assert report.created == 1 and report.outcomes[0].contact_id == i + 1, report
    docs = [
        {"eventTypeKey": etype, "params": {"contactId": str(cid), **params}, "timestamp": ts}
        for etype, cid, ts, params in scenario.events
    ]
    if docs:
        report = engine.ingest(docs)
        rejected = [o for o in report.outcomes if o.status != "accepted"]
        assert not rejected, rejected
        assert [o.contact_id for o in report.outcomes] == [cid for _, cid, _, _ in scenario.events]
    return engine


def _iso(ms: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)).isoformat()


def describe(scenario: gen.Scenario, definition: dict[str, Any], expected: set[int], got: set[int],
             segments: dict[str, dict[str, Any]] | None = None) -> str:
    """A readable account of a mismatch: the definition, and the data of the contacts in dispute."""
    disputed = sorted(expected ^ got)
    lines = [
        f"now={scenario.now_ms} ({_iso(scenario.now_ms)}) tz={scenario.tz}",
        f"definition={json.dumps(definition)}",
        f"reference={sorted(expected)} engine={sorted(got)} disputed={disputed}",
    ]
    if segments:
        lines.append(f"segments={json.dumps(segments)}")
    for cid in disputed:
        lines.append(f"contact {cid}: {json.dumps(scenario.contact_docs[cid - 1])} "
                     f"created={scenario.contact_created_ms[cid - 1]} source={scenario.contact_sources[cid - 1]}")
        for etype, owner, ts, params in scenario.events:
            if owner == cid:
                lines.append(f"  {etype} ts={ts} ({_iso(ts)}) params={json.dumps(params)}")
    return "\n".join(lines)


def assert_same_members(engine: Engine, scenario: gen.Scenario, definition: dict[str, Any],
                        segments: dict[str, dict[str, Any]] | None = None) -> None:
    expected = ref.evaluate(definition, scenario.reference_events(), scenario.reference_contacts(),
                            scenario.now_ms, segments)
    got = set(engine.evaluate(definition, as_of_ms=scenario.now_ms))
    assert got == expected, describe(scenario, definition, expected, got, segments)


@BOUNDED
@given(gen.scenarios())
def test_adhoc_definitions_match_the_reference(scenario: gen.Scenario) -> None:
    engine = build_engine(scenario)
    for definition in scenario.definitions:
        assert_same_members(engine, scenario, definition)


@st.composite
def referencing_scenarios(draw: st.DrawFn) -> tuple[gen.Scenario, dict[str, dict[str, Any]]]:
    """A scenario whose definitions refer to saved segments (dynamic in any zone, and static)."""
    scenario = draw(gen.scenarios(n_definitions=0, n_focused=0))
    saved: dict[str, dict[str, Any]] = {}
    n_contacts = len(scenario.contact_docs)
    saved["static-0"] = {"name": "static-0", "contacts": sorted(draw(st.sets(st.integers(1, n_contacts))))}
    for k in range(draw(st.integers(1, 3))):
        name = f"saved-{k}"
        tz = draw(st.sampled_from(gen.TIME_ZONES))
        condition = draw(gen.conditions(scenario.now_ms, tuple(saved)))
        saved[name] = {"name": name, "timezone": tz, "condition": condition}
    names = tuple(saved)
    scenario.definitions = [
        {"name": f"adhoc-{k}", "timezone": scenario.tz, "condition": draw(gen.conditions(scenario.now_ms, names))}
        for k in range(3)
    ] + [{"name": "direct", "timezone": scenario.tz, "condition": {"segment": draw(st.sampled_from(names))}}]
    return scenario, saved


@pytest.mark.skipif(not hasattr(Engine, "put_segment"), reason="Engine.put_segment is not there yet")
@BOUNDED
@given(referencing_scenarios())
def test_segment_references_match_the_reference(case: tuple[gen.Scenario, dict[str, dict[str, Any]]]) -> None:
    scenario, saved = case
    engine = build_engine(scenario)
    for doc in saved.values():
        engine.put_segment(doc)
    for definition in scenario.definitions:
        assert_same_members(engine, scenario, definition, saved)

"""Event measures read through time buckets (only the rows of the period) equal the reference.

The engine switches to that path for periods holding few rows of a version it has read
before; here the switch is set to take it for every period and every version, and the
reference scenarios of test_segments_reference run again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given

from core.kernels import windows
from core.segments import measures
from tests.property import strategies as gen
from tests.property.test_segments_reference import BOUNDED, assert_same_members, build_engine

pytestmark = pytest.mark.property


@pytest.fixture(autouse=True, scope="module")
def every_period_through_buckets() -> Iterator[None]:
    share, after = measures.WINDOW_SHARE, measures.BUCKETS_AFTER
    measures.WINDOW_SHARE, measures.BUCKETS_AFTER = 1.0, 1
    try:
        yield
    finally:
        measures.WINDOW_SHARE, measures.BUCKETS_AFTER = share, after


# The kernels' own path choices, each forced one way then the other: runs noted on first touch
# or found by a pass over the slots; min/max through one value per run or window_stats;
# distinct through the hash table or the bitset.
KERNEL_PATHS = {
    "default": {},
    "sparse-dense-hash": {"SPARSE_SHARE": 0, "EXTREME_SHARE": 2**40, "BITSET_WORDS": 0, "BITSET_PER_ENTRY": 0},
    "scan-stats-bits": {"SPARSE_SHARE": 2**40, "EXTREME_SHARE": 0, "BITSET_WORDS": 2**40},
}


@pytest.mark.parametrize("paths", sorted(KERNEL_PATHS))
@BOUNDED
@given(gen.scenarios())
def test_bucketed_measures_match_the_reference(paths: str, scenario: gen.Scenario) -> None:
    with windows.forced(**KERNEL_PATHS[paths]):
        check_scenario(scenario)


def check_scenario(scenario: gen.Scenario) -> None:
    engine = build_engine(scenario)
    for definition in scenario.definitions:
        assert_same_members(engine, scenario, definition)
    for now_ms in scenario.other_nows:
        for definition in scenario.definitions[:6]:
            assert_same_members(engine, scenario, definition, now_ms=now_ms)

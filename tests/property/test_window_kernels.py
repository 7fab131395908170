"""The kernels of period reads (core.kernels.windows) and of distinct ids equal their twins."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.reference_kernels as ref
from core.kernels import KernelArgumentError, aggregates, runs, windows

pytestmark = pytest.mark.property

BOUNDED = settings(max_examples=80, deadline=None)
HOUR_MS = 3_600_000


@st.composite
def tables(draw):
    """A contact-sorted table (ts sorted per contact), a mask and an id per entry (-1: none)."""
    sizes = draw(st.lists(st.integers(1, 6), max_size=6))
    contact: list[int] = []
    ts: list[int] = []
    for cid, size in enumerate(sizes):
        contact += [cid] * size
        ts += sorted(draw(st.lists(st.integers(0, 40), min_size=size, max_size=size)))
    n = len(contact)
    mask = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    per_row = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    entry_row = [r for r in range(n) for _ in range(per_row[r])]
    ids = draw(st.lists(st.integers(-1, 4), min_size=len(entry_row), max_size=len(entry_row)))
    _, rs = runs.contact_runs(np.array(contact, np.uint32))
    return dict(run_start=rs, ts=np.array(ts, np.int64), mask=None if mask is None else np.array(mask, bool),
                entry_row=np.array(entry_row, np.int32), ids=np.array(ids, np.int32))


@BOUNDED
@given(tables(), st.integers(0, 40), st.integers(0, 42), st.booleans())
def test_distinct_ids_in_window(t, lo, hi, dense):
    rows, ids, ref_rows = t["entry_row"], t["ids"], t["entry_row"].tolist()
    if dense:  # one entry per row
        n = t["ts"].shape[0]
        ids = np.resize(ids, n) if ids.shape[0] else np.full(n, -1, np.int32)
        rows, ref_rows = None, list(range(n))
    got = aggregates.distinct_ids_in_window(t["run_start"], t["ts"], t["mask"], lo, hi, rows, ids, 5)
    want = ref.distinct_ids_in_window(t["run_start"], t["ts"], t["mask"], lo, hi, ref_rows, ids.tolist())
    assert got.tolist() == want


@BOUNDED
@given(st.lists(st.integers(0, 3), max_size=12), st.data())
def test_row_offsets_and_entries_of_rows(per_row, data):
    n = len(per_row)
    entry_row = np.array([r for r in range(n) for _ in range(per_row[r])], np.int32)
    offsets = windows.row_offsets(entry_row, n)
    assert offsets.tolist() == ref.row_offsets(entry_row.tolist(), n)
    chosen = sorted(data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n))) if n else []
    entry, local = windows.entries_of_rows(offsets, np.array(chosen, np.int64))
    want_entry, want_local = ref.entries_of_rows(entry_row.tolist(), chosen)
    assert entry.tolist() == want_entry and local.tolist() == want_local


@BOUNDED
@given(st.lists(st.integers(-5 * HOUR_MS, 30 * HOUR_MS), max_size=40), st.integers(-6 * HOUR_MS, 31 * HOUR_MS),
       st.integers(0, 40 * HOUR_MS), st.sampled_from([0, 10**12]))
def test_window_rows(ts, lo, length, spread):
    # spread 10**12 ms per row: more hours than bucket numbers, so buckets widen
    ts_ms = np.array(ts, np.int64) + np.arange(len(ts), dtype=np.int64) * spread
    buckets = windows.time_buckets(ts_ms)
    hi = lo + length
    got = windows.window_rows(ts_ms, buckets, lo, hi)
    want = ref.window_rows(ts_ms.tolist(), lo, hi)
    assert got.tolist() == want
    assert windows.window_size(buckets, lo, hi) >= len(want)


def test_wrappers_name_bad_arguments() -> None:
    with pytest.raises(KernelArgumentError, match="n_ids"):
        aggregates.distinct_ids_in_window(np.array([0, 1]), np.array([0]), None, 0, 9, None, np.array([3]), 3)
    with pytest.raises(KernelArgumentError, match="entry_row"):
        windows.row_offsets(np.array([0, 5], np.int32), 3)
    with pytest.raises(KernelArgumentError, match="rows"):
        windows.entries_of_rows(np.array([0, 1, 2]), np.array([2]))

"""The kernels of period reads (core.kernels.windows) and of distinct ids equal their twins."""

from __future__ import annotations

import math

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
@given(tables(), st.integers(0, 40), st.integers(0, 42), st.booleans(), st.integers(0, 6))
def test_distinct_ids_in_window(t, lo, hi, dense, n_ids):
    rows, ids, ref_rows = t["entry_row"], t["ids"], t["entry_row"].tolist()
    if dense:  # one entry per row
        n = t["ts"].shape[0]
        ids = np.resize(ids, n) if ids.shape[0] else np.full(n, -1, np.int32)
        rows, ref_rows = None, list(range(n))
    got = aggregates.distinct_ids_in_window(t["run_start"], t["ts"], t["mask"], lo, hi, rows, ids, n_ids)
    want = ref.distinct_ids_in_window(t["run_start"], t["ts"], t["mask"], lo, hi, ref_rows, ids.tolist(), n_ids)
    assert got.tolist() == want


@BOUNDED
@given(st.lists(st.integers(0, 3), max_size=12))
def test_row_offsets(per_row):
    n = len(per_row)
    entry_row = np.array([r for r in range(n) for _ in range(per_row[r])], np.int32)
    assert windows.row_offsets(entry_row, n).tolist() == ref.row_offsets(entry_row.tolist(), n)


@BOUNDED
@given(st.lists(st.integers(-5 * HOUR_MS, 30 * HOUR_MS), max_size=40), st.integers(-6 * HOUR_MS, 31 * HOUR_MS),
       st.integers(0, 40 * HOUR_MS), st.sampled_from([0, 10**12]))
def test_bucket_span_covers_the_window(ts, lo, length, spread):
    # spread 10**12 ms per row: more hours than bucket numbers, so buckets widen
    ts_ms = np.array(ts, np.int64) + np.arange(len(ts), dtype=np.int64) * spread
    order, starts, _, _ = buckets = windows.time_buckets(ts_ms)
    hi = lo + length
    start, stop = windows.bucket_span(buckets, lo, hi)
    assert sorted(order.tolist()) == list(range(len(ts)))
    assert sorted(r for r in order[start:stop].tolist() if lo <= ts_ms[r] < hi) == ref.window_rows(ts_ms.tolist(), lo, hi)
    assert windows.window_size(buckets, lo, hi) == stop - start
    for b in range(starts.shape[0] - 1):  # rows ascend within a bucket
        part = order[starts[b]:starts[b + 1]].tolist()
        assert part == sorted(part)


@BOUNDED
@given(st.lists(st.integers(0, 3), max_size=12), st.data())
def test_reorder_entries(per_row, data):
    n = len(per_row)
    entry_row = np.array([r for r in range(n) for _ in range(per_row[r])], np.int32)
    offsets = windows.row_offsets(entry_row, n)
    order = data.draw(st.permutations(list(range(n))))
    got_offsets, got_entry = windows.reorder_entries(offsets, np.array(order, np.int32))
    want_offsets, want_entry = ref.reorder_entries(offsets.tolist(), order)
    assert got_offsets.tolist() == want_offsets and got_entry.tolist() == want_entry


# SPARSE_SHARE forcing each way of collecting the touched runs: 0 notes runs on first touch
# in every call, 2**40 scans the per-run slots in every call with rows, 4 is the default.
SHARES = st.sampled_from([0, windows.SPARSE_SHARE, 2**40])


@BOUNDED
@given(tables(), st.integers(0, 40), st.integers(0, 42), SHARES, st.data())
def test_window_kernels(t, lo, hi, share, data):
    """On a table's rows as they stand (any order serves: the kernels read rows as given)."""
    with windows.forced(SPARSE_SHARE=share):
        check_window_kernels(t, lo, hi, data)


def check_window_kernels(t, lo, hi, data):
    n = t["ts"].shape[0]
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    runs_of = windows.run_of_row(t["run_start"])
    m = t["run_start"].shape[0] - 1
    common = (start, stop, runs_of, m, t["ts"], t["mask"], lo, hi)
    plain = (start, stop, runs_of.tolist(), t["ts"].tolist(), t["mask"], lo, hi)
    group, count = windows.window_count(*common)
    assert len(set(group.tolist())) == group.shape[0]  # each run once
    assert dict(zip(group.tolist(), count.tolist())) == ref.window_count(*plain)
    offsets = windows.row_offsets(t["entry_row"], n)
    dense = data.draw(st.booleans())
    k = n if dense else len(t["entry_row"])
    values = data.draw(st.lists(st.sampled_from([0.0, -0.0, 1.5, 0.1, 0.2, -3.0, math.nan]), min_size=k, max_size=k))
    values = np.array(values, np.float64)
    offs = None if dense else offsets
    got = windows.window_stats(*common, offs, values)
    want = ref.window_stats(*plain, offs, values)
    assert set(got[0].tolist()) == set(want)
    for q, j in enumerate(got[0].tolist()):
        c, s, lo_v, hi_v = want[j]
        assert got[1][q] == c and got[2][q] == s
        assert (math.isnan(lo_v) and math.isnan(got[3][q])) or got[3][q] == lo_v
        assert (math.isnan(hi_v) and math.isnan(got[4][q])) or got[4][q] == hi_v
    for share in (0, 2**40):  # through window_stats, one value per run in place
        with windows.forced(EXTREME_SHARE=share):
            got_min = windows.window_extreme(*common, offs, values, False)
            got_max = windows.window_extreme(*common, offs, values, True)
        for (group, extreme), want_max in ((got_min, False), (got_max, True)):
            assert len(set(group.tolist())) == group.shape[0]
            assert dict(zip(group.tolist(), extreme.tolist())) == ref.window_extreme(*plain, offs, values, want_max)
    ids = t["ids"] if not dense else (np.resize(t["ids"], n) if t["ids"].shape[0] else np.full(n, -1, np.int32))
    # few ids (one bitset word a run) or up to 140 (three words; ids spread over them)
    n_ids = data.draw(st.one_of(st.integers(0, 6), st.integers(60, 140)))
    if n_ids > 64:
        ids = np.where(ids < 0, ids, (ids * 31 + ids // 2) % (n_ids + 3)).astype(np.int32)
    want = ref.window_distinct(*plain, offs, ids.tolist(), n_ids)
    group, distinct = windows.window_distinct(*common, offs, ids, n_ids)
    assert len(set(group.tolist())) == group.shape[0]
    assert dict(zip(group.tolist(), distinct.tolist())) == want
    entry_rows = None if offs is None else windows.entry_rows(offs)  # as a caller holding them passes
    # the hash table; the bitset by its size; the bitset by the entries read (hash table when none)
    for words, per_entry in ((0, 0), (2**40, 0), (0, 2**40)):
        with windows.forced(BITSET_WORDS=words, BITSET_PER_ENTRY=per_entry):
            group, distinct = windows.window_distinct(*common, offs, ids, n_ids, entry_rows)
        assert len(set(group.tolist())) == group.shape[0]
        assert dict(zip(group.tolist(), distinct.tolist())) == want


@BOUNDED
@given(tables(), st.lists(st.integers(0, 42), min_size=2, max_size=8, unique=True), SHARES, st.data())
def test_window_units(t, bounds, share, data):
    n = t["ts"].shape[0]
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    runs_of = windows.run_of_row(t["run_start"])
    bounds = sorted(bounds)
    with windows.forced(SPARSE_SHARE=share):
        group, units = windows.window_units(start, stop, runs_of, t["run_start"].shape[0] - 1, t["ts"], t["mask"],
                                            np.array(bounds, np.int64))
    assert len(set(group.tolist())) == group.shape[0]
    want = ref.window_units(start, stop, runs_of.tolist(), t["ts"].tolist(), t["mask"], bounds)
    assert dict(zip(group.tolist(), units.tolist())) == want


def test_wrappers_name_bad_arguments() -> None:
    with pytest.raises(KernelArgumentError, match="entry_id"):
        aggregates.distinct_ids_in_window(np.array([0, 1]), np.array([0]), None, 0, 9, None, np.array([3, 1]), 3)
    with pytest.raises(KernelArgumentError, match="entry_row"):
        windows.row_offsets(np.array([0, 5], np.int32), 3)
    with pytest.raises(KernelArgumentError, match="start"):
        windows.window_count(0, 2, np.array([0], np.int32), 1, np.array([5]), None, 0, 9)
    with pytest.raises(KernelArgumentError, match="offsets"):
        windows.window_stats(0, 1, np.array([0], np.int32), 1, np.array([5]), None, 0, 9, np.array([0, 2]), np.array([1.0]))
    with pytest.raises(KernelArgumentError, match="bounds_ms"):
        windows.window_units(0, 1, np.array([0], np.int32), 1, np.array([5]), None, np.arange(66))
    with pytest.raises(KernelArgumentError, match="order"):
        windows.reorder_entries(np.array([0, 1]), np.array([1], np.int32))


@BOUNDED
@given(tables(), st.integers(0, 40), st.integers(0, 42), st.sampled_from([0, 2**40]), st.booleans(), st.data())
def test_window_extreme_with_infinities(t, lo, hi, share, want_max, data):
    """Both ways of window_extreme on values that include both infinities (and NaN: no value)."""
    n = t["ts"].shape[0]
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    runs_of = windows.run_of_row(t["run_start"])
    dense = data.draw(st.booleans())
    k = n if dense else len(t["entry_row"])
    pool = [math.inf, -math.inf, 0.0, -0.0, 2.5, -1.0, math.nan]
    values = np.array(data.draw(st.lists(st.sampled_from(pool), min_size=k, max_size=k)), np.float64)
    offs = None if dense else windows.row_offsets(t["entry_row"], n)
    with windows.forced(EXTREME_SHARE=share):
        group, extreme = windows.window_extreme(start, stop, runs_of, t["run_start"].shape[0] - 1, t["ts"], t["mask"],
                                                lo, hi, offs, values, want_max)
    plain = (start, stop, runs_of.tolist(), t["ts"].tolist(), t["mask"], lo, hi)
    assert dict(zip(group.tolist(), extreme.tolist())) == ref.window_extreme(*plain, offs, values, want_max)

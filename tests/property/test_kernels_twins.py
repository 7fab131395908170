"""Every kernel equals its plain-Python twin (tests/reference_kernels.py) on random tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.reference_kernels as ref
from core.kernels import aggregates, compare, filters, groups, runs, sequences

pytestmark = pytest.mark.property

BOUNDED = settings(max_examples=60, deadline=None)
TS = st.integers(min_value=0, max_value=40)
NUM = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, math.nan]), st.floats(-5, 5, allow_nan=False, width=16)
)


@st.composite
def tables(draw):
    """A contact-sorted table (ts sorted within each contact), a row mask and an entry stream."""
    sizes = draw(st.lists(st.integers(1, 6), max_size=6))
    ids = sorted(draw(st.lists(st.integers(1, 50), min_size=len(sizes), max_size=len(sizes), unique=True)))
    contact: list[int] = []
    ts: list[int] = []
    for cid, size in zip(ids, sizes):
        contact += [cid] * size
        ts += sorted(draw(st.lists(TS, min_size=size, max_size=size)))
    n = len(contact)
    mask = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    per_row = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    entry_row = [r for r in range(n) for _ in range(per_row[r])]
    values = draw(st.lists(NUM, min_size=len(entry_row), max_size=len(entry_row)))
    c = np.array(contact, np.uint32)
    rc, rs = runs.contact_runs(c)
    return dict(
        contact=c,
        run_contact=rc,
        run_start=rs,
        ts=np.array(ts, np.int64),
        mask=None if mask is None else np.array(mask, bool),
        entry_row=np.array(entry_row, np.int32),
        values=np.array(values, np.float64),
    )


def window(draw_lo, draw_hi):
    return min(draw_lo, draw_hi), max(draw_lo, draw_hi)


def same_floats(a, b) -> bool:
    return len(a) == len(b) and all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b))


@BOUNDED
@given(tables())
def test_contact_runs(t):
    rc, rs = ref.contact_runs(t["contact"].tolist())
    assert t["run_contact"].tolist() == rc and t["run_start"].tolist() == rs


@BOUNDED
@given(st.lists(TS, max_size=20).map(sorted), st.data())
def test_lower_bound(ts, data):
    a = data.draw(st.integers(0, len(ts)))
    b = data.draw(st.integers(a, len(ts)))
    x = data.draw(st.integers(-2, 42))
    assert runs.lower_bound(np.array(ts, np.int64), a, b, x) == ref.lower_bound(ts, a, b, x)


@BOUNDED
@given(tables(), TS, TS)
def test_count_in_window(t, x, y):
    lo, hi = window(x, y)
    got = aggregates.count_in_window(t["run_start"], t["ts"], t["mask"], lo, hi)
    assert got.tolist() == ref.count_in_window(t["run_start"], t["ts"], t["mask"], lo, hi)


def dense_entries(t, data):
    """The table's entry stream, or a one-entry-per-row stream passed as rows None."""
    if data.draw(st.booleans()):
        return t["entry_row"], t["values"], t["entry_row"]
    n = len(t["ts"])
    values = np.array(data.draw(st.lists(NUM, min_size=n, max_size=n)), np.float64)
    return None, values, np.arange(n, dtype=np.int32)


@BOUNDED
@given(st.lists(TS, max_size=20).map(sorted), st.data())
def test_gallop(ts, data):
    a = data.draw(st.integers(0, len(ts)))
    b = data.draw(st.integers(a, len(ts)))
    x = data.draw(st.integers(-2, 42))
    assert runs.gallop(np.array(ts, np.int64), a, b, x) == ref.lower_bound(ts, a, b, x)


@BOUNDED
@given(tables(), TS, TS, st.data())
def test_value_stats(t, x, y, data):
    lo, hi = window(x, y)
    rows, values, ref_rows = dense_entries(t, data)
    args = (t["run_start"], t["ts"], t["mask"], lo, hi, rows, values)
    got = aggregates.value_stats(*args)
    want = ref.value_stats(*args[:5], ref_rows, values)
    assert got[0].tolist() == want[0]
    for g, w in zip(got[1:], want[1:]):
        assert same_floats(g.tolist(), w)


@BOUNDED
@given(tables(), TS, TS, st.data())
def test_distinct_in_window(t, x, y, data):
    lo, hi = window(x, y)
    rows, values, ref_rows = dense_entries(t, data)
    got = aggregates.distinct_in_window(t["run_start"], t["ts"], t["mask"], lo, hi, rows, values)
    assert got.tolist() == ref.distinct_in_window(t["run_start"], t["ts"], t["mask"], lo, hi, ref_rows, values)


@BOUNDED
@given(tables(), st.integers(-1, 42))
def test_first_and_last(t, hi):
    args = (t["run_start"], t["ts"], t["mask"], hi)
    assert sequences.first_ts(*args).tolist() == ref.first_ts(*args)
    assert sequences.last_ts(*args).tolist() == ref.last_ts(*args)


@BOUNDED
@given(tables(), st.lists(st.integers(-2, 44), min_size=1, max_size=6, unique=True).map(sorted))
def test_streak_units(t, bounds):
    args = (t["run_start"], t["ts"], t["mask"], np.array(bounds, np.int64))
    assert sequences.streak_units(*args).tolist() == ref.streak_units(*args)


RANGES = st.tuples(
    st.sampled_from([-math.inf, -1.0, 0.0, 1.0, 2.5]), st.booleans(), st.sampled_from([math.inf, 0.0, 1.0, 3.0]), st.booleans()
)


def codes_and_table(t, data):
    ncodes = data.draw(st.integers(0, 5))
    codes = data.draw(st.lists(st.integers(0, 6), min_size=len(t["entry_row"]), max_size=len(t["entry_row"])))
    code_value = data.draw(st.lists(NUM, min_size=ncodes, max_size=ncodes))
    return np.array(codes, np.int32), np.array(code_value, np.float64)


def targets(t, dense):
    """(rows, n): the table's entry rows, or None (entry e is row e) over one flag per entry."""
    if dense:
        return None, len(t["entry_row"])
    return t["entry_row"], len(t["ts"])


@BOUNDED
@given(tables(), RANGES, st.booleans(), st.data())
def test_mark_range(t, rng, dense, data):
    rows, n = targets(t, dense)
    out = np.zeros(n, bool)
    filters.mark_range(rows, t["values"], *rng, out)
    assert out.tolist() == ref.mark_range(rows, t["values"], *rng, n)
    codes, code_value = codes_and_table(t, data)
    out = np.zeros(n, bool)
    filters.mark_range_coded(rows, codes, code_value, *rng, out)
    assert out.tolist() == ref.mark_range_coded(rows, codes, code_value, *rng, n)


@BOUNDED
@given(tables(), st.lists(NUM.filter(lambda v: not math.isnan(v)), max_size=4), st.booleans(), st.booleans(), st.data())
def test_mark_set(t, members, negate, dense, data):
    rows, n = targets(t, dense)
    out = np.zeros(n, bool)
    filters.mark_set(rows, t["values"], np.array(members), negate, out)
    assert out.tolist() == ref.mark_set(rows, t["values"], members, negate, n)
    codes, code_value = codes_and_table(t, data)
    out = np.zeros(n, bool)
    filters.mark_set_coded(rows, codes, code_value, np.array(members), negate, out)
    assert out.tolist() == ref.mark_set_coded(rows, codes, code_value, members, negate, n)


@BOUNDED
@given(tables(), st.integers(0, 6), st.booleans(), st.lists(st.booleans(), max_size=6), st.booleans(), st.data())
def test_mark_codes_flags_all(t, code, negate, table, dense, data):
    rows, n = targets(t, dense)
    codes, _ = codes_and_table(t, data)
    out = np.zeros(n, bool)
    filters.mark_code(rows, codes, code, negate, out)
    assert out.tolist() == ref.mark_code(rows, codes, code, negate, n)
    wanted = data.draw(st.lists(st.integers(0, 6), max_size=4))
    out = np.zeros(n, bool)
    filters.mark_codes(rows, codes, np.array(wanted, np.int32), negate, out)
    assert out.tolist() == ref.mark_codes(rows, codes, wanted, negate, n)
    out = np.zeros(n, bool)
    filters.mark_code_table(rows, codes, np.array(table, bool), out)
    assert out.tolist() == ref.mark_code_table(rows, codes, table, n)
    flags = (codes % 2).astype(np.int8)
    accept = data.draw(st.tuples(st.booleans(), st.booleans()))
    out = np.zeros(n, bool)
    filters.mark_flags(rows, flags, *accept, out)
    assert out.tolist() == ref.mark_flags(rows, flags, *accept, n)
    out = np.zeros(n, bool)
    filters.mark_all(rows, len(codes), out)
    assert out.tolist() == ref.mark_all(rows, len(codes), n)


@BOUNDED
@given(tables(), st.booleans(), st.data())
def test_marks_accumulate(t, dense, data):
    """Marks are only ever added: a second kernel on the same flags keeps the first one's."""
    rows, n = targets(t, dense)
    first = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    out = first.copy()
    filters.mark_set(rows, t["values"], np.array([1.0]), False, out)
    assert np.all(out[first])


KEYS = st.lists(st.integers(0, 2**40), max_size=12)


@BOUNDED
@given(tables(), st.booleans(), st.data())
def test_entry_and_unique_keys(t, with_ordinals, data):
    ne = len(t["entry_row"])
    ordinals = np.array(data.draw(st.lists(st.integers(0, 4), min_size=ne, max_size=ne)), np.int32) if with_ordinals else None
    keys = groups.entry_keys(t["entry_row"], ordinals)
    assert keys.tolist() == ref.entry_keys(t["entry_row"], ordinals)
    mask = data.draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=ne, max_size=ne)))
    got = groups.unique_keys(keys, None if mask is None else np.array(mask, bool))
    assert got.tolist() == ref.unique_keys(keys.tolist(), mask)
    out = np.zeros(len(t["ts"]), bool)
    groups.mark_key_rows(got, out)
    assert out.tolist() == ref.mark_key_rows(got.tolist(), len(t["ts"]))


@BOUNDED
@given(KEYS, KEYS)
def test_key_set_algebra(a, b):
    sa, sb = np.array(sorted(set(a)), np.int64), np.array(sorted(set(b)), np.int64)
    assert groups.intersect_keys(sa, sb).tolist() == ref.intersect_keys(a, b)
    assert groups.subtract_keys(sa, sb).tolist() == ref.subtract_keys(a, b)
    assert groups.union_keys(sa, sb).tolist() == ref.union_keys(a, b)


@BOUNDED
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=15), KEYS.map(lambda k: [x % 10 for x in k]))
def test_lift_keys(pairs, selected):
    child = np.array([p[0] for p in pairs], np.int64)
    parent = np.array([p[1] for p in pairs], np.int64)
    sel = np.array(sorted(set(selected)), np.int64)
    assert groups.lift_keys(child, parent, sel).tolist() == ref.lift_keys(child.tolist(), parent.tolist(), selected)


@BOUNDED
@given(st.lists(NUM, max_size=10), RANGES, st.lists(NUM.filter(lambda v: not math.isnan(v)), max_size=3), st.booleans())
def test_select_runs_and_holds(values, rng, excluded, want):
    contacts = np.arange(1, len(values) + 1, dtype=np.uint32)
    vals = np.array(values, np.float64)
    got = compare.select_runs(contacts, vals, *rng, np.array(excluded), want)
    want_ids = ref.select_runs(contacts.tolist(), values, *rng, excluded, want)
    assert got.tolist() == want_ids
    fewer, complemented = compare.select_runs_smaller(contacts, vals, *rng, np.array(excluded), want)
    other = [c for c in contacts.tolist() if c not in want_ids]
    assert (fewer.tolist(), complemented) == ((other, True) if len(want_ids) > len(other) else (want_ids, False))
    assert compare.holds_each(vals, *rng, np.array(excluded)).tolist() == ref.holds_each(values, *rng, excluded)

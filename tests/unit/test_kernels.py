"""Kernel wrappers: argument checks, edge cases, the jit configuration, and the pieces of the
evaluator built directly on kernels (comparisons, string tables, derived-array cache)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.reference as spec_ref
import tests.reference_kernels as ref
from core.dictionary import StringDictionary
from core.kernels import KernelArgumentError, aggregates, compare, filters, groups, readonly, runs, sequences, windows
from core.segments import derived
from core.segments.measures import CmpRange, compile_cmp
from core.segments.plan import Cmp
from core.segments.strings import code_table


def _kernels() -> list:
    import numba

    out = []
    for mod in (aggregates, compare, filters, groups, runs, sequences, windows):
        out += [f for f in vars(mod).values() if isinstance(f, numba.core.registry.CPUDispatcher)]
    return out


def test_every_kernel_uses_the_one_jit_configuration() -> None:
    kernels = _kernels()
    if not kernels:
        pytest.skip("jit disabled")
    for kernel in kernels:
        opts = kernel.targetoptions
        assert opts.get("nogil") is True and not opts.get("fastmath"), kernel
        assert type(kernel._cache).__name__ == "FunctionCache", kernel  # cache=True


def test_readonly_makes_one_kind_of_input() -> None:
    a = np.arange(4)
    ro = readonly(a, np.int64)
    assert not ro.flags.writeable and ro.flags.c_contiguous and a.flags.writeable
    assert readonly(ro, np.int64) is ro
    assert readonly(a[::2], np.int32).flags.c_contiguous


def test_empty_tables() -> None:
    rc, rs = runs.contact_runs(np.zeros(0, np.uint32))
    assert rc.shape == (0,) and rs.tolist() == [0]
    ts = np.zeros(0, np.int64)
    assert aggregates.count_in_window(rs, ts, None, 0, 10).shape == (0,)
    assert sequences.first_ts(rs, ts, None, 10).shape == (0,)
    assert sequences.streak_units(rs, ts, None, np.array([0, 5])).shape == (0,)
    assert compare.select_runs(rc, np.zeros(0), 0, True, 1, True, np.zeros(0)).shape == (0,)
    assert groups.unique_keys(np.zeros(0, np.int64)).shape == (0,)


def test_wrappers_name_bad_arguments() -> None:
    rs = np.array([0, 2], np.int64)
    ts = np.array([1, 2], np.int64)
    with pytest.raises(KernelArgumentError) as err:
        aggregates.count_in_window(np.array([0, 3]), ts, None, 0, 5)
    assert err.value.argument == "run_start"
    with pytest.raises(KernelArgumentError, match="row_mask"):
        aggregates.count_in_window(rs, ts, np.ones(3, bool), 0, 5)
    with pytest.raises(KernelArgumentError, match="entry_value"):
        aggregates.value_stats(rs, ts, None, 0, 5, np.array([0, 1], np.int32), np.zeros(3))
    with pytest.raises(KernelArgumentError, match="entry_value"):
        aggregates.value_stats(rs, ts, None, 0, 5, None, np.zeros(3))
    with pytest.raises(KernelArgumentError, match="out"):
        filters.mark_code(np.array([0], np.int32), np.array([1], np.int32), 1, False, np.zeros(1, np.int8))
    with pytest.raises(KernelArgumentError, match="rows"):
        filters.mark_code(np.array([5], np.int32), np.array([1], np.int32), 1, False, np.zeros(2, bool))
    with pytest.raises(KernelArgumentError, match="bounds_ms"):
        sequences.streak_units(rs, ts, None, np.array([5, 5]))
    with pytest.raises(KernelArgumentError, match="ordinals"):
        groups.entry_keys(np.array([0], np.int32), np.array([-1], np.int32))
    with pytest.raises(KernelArgumentError, match="values"):
        compare.select_runs(np.array([1], np.uint32), np.zeros(2), 0, True, 1, True, np.zeros(0))


def test_values_that_are_not_numbers_are_skipped() -> None:
    rc, rs = runs.contact_runs(np.array([4, 4, 9], np.uint32))
    ts = np.array([1, 2, 3], np.int64)
    count, total, low, high = aggregates.value_stats(
        rs, ts, None, 0, 10, np.array([0, 1, 2], np.int32), np.array([np.nan, 2.5, np.nan])
    )
    assert count.tolist() == [1, 0] and total.tolist() == [2.5, 0.0]
    assert low[0] == 2.5 and math.isnan(low[1]) and math.isnan(high[1])


def test_distinct_counts_signed_zero_once() -> None:
    rc, rs = runs.contact_runs(np.array([1, 1], np.uint32))
    got = aggregates.distinct_in_window(rs, np.array([1, 2], np.int64), None, 0, 5, None, np.array([0.0, -0.0]))
    assert got.tolist() == [1]


def test_long_runs_take_the_searching_path() -> None:
    n = 500  # longer than the branch-free scan limit
    rc, rs = runs.contact_runs(np.ones(n, np.uint32))
    ts = np.arange(n, dtype=np.int64)
    mask = np.arange(n) % 3 == 0
    args = (rs, ts, mask, 100, 400)
    assert aggregates.count_in_window(*args).tolist() == ref.count_in_window(*args)
    values = np.arange(n, dtype=np.float64)
    got = aggregates.value_stats(*args, None, values)
    want = ref.value_stats(*args, np.arange(n), values)
    assert [g.tolist() for g in got] == [list(w) for w in want]


@settings(max_examples=80, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            k: st.integers(-3, 3).map(float) for k in ("eq", "ne", "gt", "gte", "lt", "lte")
        }
        | {"between": st.tuples(st.integers(-3, 0), st.integers(0, 3)).map(lambda p: (float(p[0]), float(p[1])))},
    ),
    st.lists(st.integers(-4, 4).map(float), max_size=9),
)
def test_compiled_comparison_matches_cmp(bounds, xs) -> None:
    cmp = Cmp(**bounds)
    rng = compile_cmp(cmp)
    for x in xs:
        assert rng.holds(x) == cmp.holds(x) == spec_ref.cmp_holds(dict(bounds), x)
    held = compare.holds_each(np.array(xs), rng.lo, rng.lo_inc, rng.hi, rng.hi_inc, np.array(rng.excluded))
    assert held.tolist() == [cmp.holds(x) for x in xs]


def test_comparison_never_holds_for_no_value() -> None:
    assert not CmpRange().holds(math.nan)
    assert compare.holds_each(np.array([math.nan]), -math.inf, True, math.inf, True, np.zeros(0)).tolist() == [False]


def test_string_tables_grow_with_the_dictionary() -> None:
    d = StringDictionary()
    for s in ("apple", "banana"):
        d.encode(s)
    first = code_table(d, ("contains", "an"), lambda s, x: "an" in s, np.array([0, 1, 1], np.int32))
    assert first.tolist() == [False, True]
    d.encode("mango")
    d.encode("12")
    grown = code_table(d, ("contains", "an"), lambda s, x: "an" in s, np.array([2, 3], np.int32))
    assert grown.tolist() == [False, True, True, False]
    numeric = code_table(d, ("num",), lambda s, x: x == x, np.arange(4, dtype=np.int32))
    assert numeric.tolist() == [False, False, False, True]


def test_string_tables_test_only_the_codes_asked_about() -> None:
    d = StringDictionary()
    for s in ("a1", "b2", "a3", "b4", "a5"):
        d.encode(s)
    tested: list[str] = []

    def starts_with_a(s: str, x: float) -> bool:
        tested.append(s)
        return s.startswith("a")

    table = code_table(d, ("starts_with", "a"), starts_with_a, np.array([4, 1, 4], np.int32))
    assert sorted(tested) == ["a5", "b2"]
    assert table[[1, 4]].tolist() == [False, True]
    tested.clear()
    table = code_table(d, ("starts_with", "a"), starts_with_a, np.array([0, 1, 2, 3, 4], np.int32))
    assert sorted(tested) == ["a1", "a3", "b4"]  # 1 and 4 were already known
    assert table.tolist() == [True, False, True, False, True]


def test_derived_cache_follows_array_identity() -> None:
    contact = np.array([1, 1, 2], np.uint32)
    first = derived.contact_runs(contact)
    assert derived.contact_runs(contact) is first
    other = contact.copy()
    assert derived.contact_runs(other) is not first
    assert derived.dense(np.array([0, 1, 2], np.int32), 3) is None
    skewed = np.array([0, 0, 2], np.int32)
    assert derived.dense(skewed, 3) is skewed


def test_derived_values_go_when_their_arrays_go() -> None:
    cache = derived.DerivedCache(capacity=100)
    arrays = [np.arange(5) for _ in range(10)]
    for a in arrays:
        cache.get("sum", [a], lambda a=a: int(a.sum()))
    assert len(cache) == 10
    del a
    arrays.clear()
    assert len(cache) == 0


def test_warm_up_compiles_the_string_table_kernels() -> None:
    import numba

    from core.kernels import texts
    from core.segments.warmup import warm_up

    helpers = {"_hash", "_slot", "_probe", "_slot_holding"}  # compiled into the kernels that call them
    kernels = [f for name, f in vars(texts).items()
               if isinstance(f, numba.core.registry.CPUDispatcher) and name not in helpers]
    if not kernels:
        pytest.skip("jit disabled")
    warm_up()
    assert all(k.signatures for k in kernels), [k.__name__ for k in kernels if not k.signatures]


def test_warm_up_compiles_the_period_kernels() -> None:
    import numba

    from core.segments.warmup import warm_up

    # compiled into the kernels that call them
    helpers = {"_nonzero_runs", "_bits", "_passes", "_row_entries", "_popcount", "_bit_counts"}
    kernels = [f for name, f in vars(windows).items()
               if isinstance(f, numba.core.registry.CPUDispatcher) and name not in helpers]
    if not kernels:
        pytest.skip("jit disabled")
    assert warm_up() >= 0.0
    compiled = {k.__name__: len(k.signatures) for k in kernels}
    assert all(n >= 1 for n in compiled.values()), compiled
    rng = np.random.default_rng(3)  # evaluation-like inputs: no specialisation beyond the warm-up's
    ts = np.sort(rng.integers(0, 100, 20)).astype(np.int64)
    _, run_start = runs.contact_runs(np.repeat(np.arange(4, dtype=np.uint32), 5))
    run_of = windows.run_of_row(run_start)
    windows.window_stats(0, 20, run_of, 4, ts, rng.random(20) < 0.5, 10, 90, None, rng.random(20))
    windows.window_distinct(0, 20, run_of, 4, ts, None, 10, 90, None, np.zeros(20, np.int32), 1)
    assert {k.__name__: len(k.signatures) for k in kernels} == compiled

"""Compile (or load from the on-disk cache) every kernel before the service says SERVING.

Each kernel is called once through its wrapper on tiny arrays, so the specialisations built
here are exactly those evaluation uses; the string tables (dictionary, identifier slots) are
put through each of their operations once.
"""

from __future__ import annotations

import time

import numpy as np

from core.kernels import aggregates, compare, filters, groups, runs, sequences, windows
from core.texts import TextTable


def warm_up() -> float:
    """Compiles every kernel once; returns the seconds it took."""
    start = time.perf_counter()
    contact = np.array([1, 1, 2], np.uint32)
    ts = np.array([10, 20, 15], np.int64)
    mask = np.array([True, False, True])
    run_contact, run_start = runs.contact_runs(contact)
    runs.lower_bound(ts, 0, 2, 12)
    runs.gallop(ts, 0, 2, 12)
    entry_row = np.array([0, 0, 2], np.int32)
    values = np.array([1.0, 2.0, np.nan])
    codes = np.array([0, 1, 1], np.int32)
    code_value = np.array([5.0, np.nan])
    for m in (None, mask):
        aggregates.count_in_window(run_start, ts, m, 0, 30)
        aggregates.value_stats(run_start, ts, m, 0, 30, entry_row, values)
        aggregates.value_stats(run_start, ts, m, 0, 30, None, values)
        aggregates.distinct_in_window(run_start, ts, m, 0, 30, None, values)
        aggregates.distinct_in_window(run_start, ts, m, 0, 30, entry_row, values)
        sequences.first_ts(run_start, ts, m, 30)
        sequences.last_ts(run_start, ts, m, 30)
        sequences.streak_units(run_start, ts, m, np.array([0, 12, 30], np.int64))
    ids = np.array([0, 1, -1], np.int32)
    offsets = windows.row_offsets(entry_row, 3)
    order, _, _, _ = windows.time_buckets(ts)
    windows.reorder_entries(offsets, order)
    run_of = windows.run_of_row(run_start)
    for m in (None, mask):
        aggregates.distinct_ids_in_window(run_start, ts, m, 0, 30, None, ids, 2)
        aggregates.distinct_ids_in_window(run_start, ts, m, 0, 30, entry_row, ids, 2)
        windows.window_count(0, 3, run_of, 2, ts, m, 0, 30)
        windows.window_units(0, 3, run_of, 2, ts, m, np.array([0, 12, 30], np.int64))
        for offs in (None, offsets):
            windows.window_stats(0, 3, run_of, 2, ts, m, 0, 30, offs, values)
            windows.window_extreme(0, 3, run_of, 2, ts, m, 0, 30, offs, values, True)
            windows.window_distinct(0, 3, run_of, 2, ts, m, 0, 30, offs, ids, 2)
    out = np.zeros(3, np.bool_)
    filters.mark_range(entry_row, values, 0.0, True, 3.0, False, out)
    filters.mark_range_coded(entry_row, codes, code_value, 0.0, True, 3.0, False, out)
    filters.mark_set(entry_row, values, np.array([1.0]), False, out)
    filters.mark_set_coded(entry_row, codes, code_value, np.array([5.0]), True, out)
    filters.mark_code(entry_row, codes, 1, False, out)
    filters.mark_codes(entry_row, codes, np.array([1], np.int32), False, out)
    filters.mark_codes(None, codes, np.array([1], np.int32), True, out)
    filters.mark_code_table(entry_row, codes, np.array([True, False]), out)
    filters.mark_flags(entry_row, codes.astype(np.int8), False, True, out)
    filters.mark_all(entry_row, 3, out)
    filters.mark_all(None, 3, out)
    filters.mark_code(None, codes, 1, False, out)
    filters.mark_range(None, values, 0.0, True, 3.0, False, out)
    filters.mark_set(None, values, np.array([1.0]), False, out)
    keys = groups.entry_keys(entry_row, np.array([0, 1, 0], np.int32))
    groups.entry_keys(entry_row, None)
    unique = groups.unique_keys(keys, mask)
    groups.unique_keys(keys)
    groups.intersect_keys(unique, keys[:1])
    groups.subtract_keys(unique, keys[:1])
    groups.union_keys(unique, keys[:1])
    groups.lift_keys(keys, keys, unique)
    groups.mark_key_rows(unique, out)
    compare.select_runs(run_contact, np.array([1.0, 2.0]), 1.0, True, np.inf, True, np.zeros(0), True)
    compare.select_runs_smaller(run_contact, np.array([1.0, 2.0]), 1.0, True, np.inf, True, np.zeros(0), True)
    compare.holds_each(np.array([1.0, 2.0]), 1.0, True, np.inf, True, np.zeros(0))
    _warm_texts()
    return time.perf_counter() - start


def _warm_texts() -> None:
    table = TextTable()
    table.add_many(["a", "b"])
    table.add("c")
    table.find("a")
    table.find_many(["b", "d"])
    table.strings(np.arange(3))
    table.remove_many(np.array([0]))
    table._pack()
    TextTable.from_arrays(len(table), *table.to_arrays())

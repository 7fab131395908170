"""Kernel twins: slow, obviously correct plain-Python versions of every kernel in core.kernels.

Each twin takes and returns plain lists/scalars (numpy arrays are accepted as inputs) and
follows the kernel's docstring, not its code. Property tests hold kernel and twin equal.
"""

from __future__ import annotations

import math
from typing import Sequence

NO_EVENT = -(2**63)


def _mask(row_mask: Sequence[bool] | None, n: int) -> list[bool]:
    return [True] * n if row_mask is None else [bool(x) for x in row_mask]


# ---------------------------------------------------------------- runs


def contact_runs(contact: Sequence[int]) -> tuple[list[int], list[int]]:
    run_contact: list[int] = []
    run_start: list[int] = []
    for i, c in enumerate(contact):
        if not run_contact or run_contact[-1] != c:
            run_contact.append(int(c))
            run_start.append(i)
    run_start.append(len(contact))
    return run_contact, run_start


def lower_bound(ts: Sequence[int], a: int, b: int, x: int) -> int:
    for i in range(a, b):
        if ts[i] >= x:
            return i
    return b


def _runs(run_start: Sequence[int]) -> list[range]:
    return [range(run_start[j], run_start[j + 1]) for j in range(len(run_start) - 1)]


# ---------------------------------------------------------------- aggregates


def count_in_window(run_start, ts_ms, row_mask, lo_ms, hi_ms) -> list[int]:
    mask = _mask(row_mask, len(ts_ms))
    return [sum(1 for r in run if lo_ms <= ts_ms[r] < hi_ms and mask[r]) for run in _runs(run_start)]


def _window_values(run, ts_ms, mask, lo_ms, hi_ms, entry_row, entry_value) -> list[float]:
    rows = {r for r in run if lo_ms <= ts_ms[r] < hi_ms and mask[r]}
    return [float(v) for r, v in zip(entry_row, entry_value) if r in rows and not math.isnan(v)]


def value_stats(run_start, ts_ms, row_mask, lo_ms, hi_ms, entry_row, entry_value):
    mask = _mask(row_mask, len(ts_ms))
    count, total, low, high = [], [], [], []
    for run in _runs(run_start):
        vals = _window_values(run, ts_ms, mask, lo_ms, hi_ms, entry_row, entry_value)
        s = 0.0
        for v in vals:  # entry order, like the kernel: sums compare exactly
            s += v
        count.append(len(vals))
        total.append(s)
        low.append(min(vals) if vals else math.nan)
        high.append(max(vals) if vals else math.nan)
    return count, total, low, high


def distinct_in_window(run_start, ts_ms, row_mask, lo_ms, hi_ms, entry_row, entry_key) -> list[int]:
    mask = _mask(row_mask, len(ts_ms))
    return [len(set(_window_values(run, ts_ms, mask, lo_ms, hi_ms, entry_row, entry_key))) for run in _runs(run_start)]


# ---------------------------------------------------------------- sequences


def first_ts(run_start, ts_ms, row_mask, hi_ms) -> list[int]:
    mask = _mask(row_mask, len(ts_ms))
    out = []
    for run in _runs(run_start):
        hits = [ts_ms[r] for r in run if ts_ms[r] < hi_ms and mask[r]]
        out.append(min(hits) if hits else NO_EVENT)
    return out


def last_ts(run_start, ts_ms, row_mask, hi_ms) -> list[int]:
    mask = _mask(row_mask, len(ts_ms))
    out = []
    for run in _runs(run_start):
        hits = [ts_ms[r] for r in run if ts_ms[r] < hi_ms and mask[r]]
        out.append(max(hits) if hits else NO_EVENT)
    return out


def streak_units(run_start, ts_ms, row_mask, bounds_ms) -> list[int]:
    mask = _mask(row_mask, len(ts_ms))
    units = list(zip(bounds_ms[:-1], bounds_ms[1:]))
    return [
        sum(1 for a, b in units if any(a <= ts_ms[r] < b and mask[r] for r in run)) for run in _runs(run_start)
    ]


# ---------------------------------------------------------------- filters


def in_range(x: float, lo: float, lo_inc: bool, hi: float, hi_inc: bool) -> bool:
    if math.isnan(x):
        return False
    above = x >= lo if lo_inc else x > lo
    below = x <= hi if hi_inc else x < hi
    return above and below


def _marked(n: int, rows, passes) -> list[bool]:
    """rows None: entry e marks row e."""
    passes = list(passes)
    rows = range(len(passes)) if rows is None else rows
    out = [False] * n
    for r, ok in zip(rows, passes):
        if ok:
            out[r] = True
    return out


def mark_range(rows, values, lo, lo_inc, hi, hi_inc, n) -> list[bool]:
    return _marked(n, rows, [in_range(float(v), lo, lo_inc, hi, hi_inc) for v in values])


def mark_range_coded(rows, codes, code_value, lo, lo_inc, hi, hi_inc, n) -> list[bool]:
    vals = [float(code_value[c]) if 0 <= c < len(code_value) else math.nan for c in codes]
    return mark_range(rows, vals, lo, lo_inc, hi, hi_inc, n)


def mark_set(rows, values, members, negate, n) -> list[bool]:
    ms = {float(x) for x in members}
    return _marked(n, rows, [not math.isnan(v) and ((float(v) in ms) != negate) for v in values])


def mark_set_coded(rows, codes, code_value, members, negate, n) -> list[bool]:
    vals = [float(code_value[c]) if 0 <= c < len(code_value) else math.nan for c in codes]
    return mark_set(rows, vals, members, negate, n)


def mark_code(rows, codes, code, negate, n) -> list[bool]:
    return _marked(n, rows, [(c == code) != negate for c in codes])


def mark_codes(rows, codes, wanted, negate, n) -> list[bool]:
    return _marked(n, rows, [(c in set(wanted)) != negate for c in codes])


def mark_code_table(rows, codes, table, n) -> list[bool]:
    return _marked(n, rows, [0 <= c < len(table) and bool(table[c]) for c in codes])


def mark_flags(rows, flags, accept_false, accept_true, n) -> list[bool]:
    return _marked(n, rows, [accept_true if f else accept_false for f in flags])


def mark_all(rows, n_entries, n) -> list[bool]:
    return _marked(n, rows, [True] * n_entries)


# ---------------------------------------------------------------- groups


def entry_keys(rows, ordinals) -> list[int]:
    if ordinals is None:
        return [int(r) * 2**32 for r in rows]
    return [int(r) * 2**32 + int(o) for r, o in zip(rows, ordinals)]


def unique_keys(keys, mask=None) -> list[int]:
    return sorted({int(k) for i, k in enumerate(keys) if mask is None or mask[i]})


def intersect_keys(a, b) -> list[int]:
    return sorted(set(map(int, a)) & set(map(int, b)))


def subtract_keys(a, b) -> list[int]:
    return sorted(set(map(int, a)) - set(map(int, b)))


def union_keys(a, b) -> list[int]:
    return sorted(set(map(int, a)) | set(map(int, b)))


def lift_keys(child, parent, selected) -> list[int]:
    sel = set(map(int, selected))
    return sorted({int(p) for c, p in zip(child, parent) if int(c) in sel})


def mark_key_rows(keys, n) -> list[bool]:
    out = [False] * n
    for k in keys:
        out[int(k) // 2**32] = True
    return out


# ---------------------------------------------------------------- compare


def holds(x: float, lo, lo_inc, hi, hi_inc, excluded) -> bool:
    return in_range(x, lo, lo_inc, hi, hi_inc) and float(x) not in {float(e) for e in excluded}


def select_runs(run_contact, values, lo, lo_inc, hi, hi_inc, excluded, want=True) -> list[int]:
    return [int(c) for c, v in zip(run_contact, values) if holds(float(v), lo, lo_inc, hi, hi_inc, excluded) == want]


def holds_each(values, lo, lo_inc, hi, hi_inc, excluded) -> list[bool]:
    return [holds(float(v), lo, lo_inc, hi, hi_inc, excluded) for v in values]


# ---------------------------------------------------------------- fields (core.kernels.fields)


def field_axis_mask(kind, values, want, ranged, lo, lo_inc, hi, hi_inc, members, excluded) -> list[bool]:
    out = []
    for k, v in zip(kind, values):
        x = float(v)
        ok = int(k) == want
        if ok and ranged:
            ok = (x >= lo if lo_inc else x > lo) and (x <= hi if hi_inc else x < hi)
        if ok and len(members):
            ok = any(x == float(m) for m in members)
        if ok and len(excluded):
            ok = not any(x == float(e) for e in excluded)
        out.append(bool(ok))
    return out


def field_code_mask(kind, code, want, verdict) -> list[bool]:
    return [int(k) == want and 0 <= int(c) < len(verdict) and bool(verdict[int(c)]) for k, c in zip(kind, code)]


def field_month_day_mask(kind, month_day, want, targets) -> list[bool]:
    wanted = {int(t) for t in targets}
    return [int(k) == want and int(md) in wanted for k, md in zip(kind, month_day)]


def distinct_ids_in_window(run_start, ts_ms, row_mask, lo_ms, hi_ms, entry_row, entry_id, n_ids) -> list[int]:
    mask = _mask(row_mask, len(ts_ms))
    out = []
    for run in _runs(run_start):
        rows = {r for r in run if lo_ms <= ts_ms[r] < hi_ms and mask[r]}
        out.append(len({int(k) for r, k in zip(entry_row, entry_id) if r in rows and 0 <= k < n_ids}))
    return out


# ---------------------------------------------------------------- windows


def row_offsets(entry_row, n_rows) -> list[int]:
    return [sum(1 for r in entry_row if r < k) for k in range(n_rows + 1)]


def _window_rows(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms) -> dict[int, list[int]]:
    """run -> its rows among [start, stop) in the window passing the mask, ascending."""
    mask = _mask(row_mask, len(ts_ms))
    out: dict[int, list[int]] = {}
    for r in range(start, stop):
        if lo_ms <= ts_ms[r] < hi_ms and mask[r]:
            out.setdefault(int(run_of_row[r]), []).append(int(r))
    return {j: sorted(rows) for j, rows in out.items()}


def _row_entries(offsets, r) -> range:
    return range(r, r + 1) if offsets is None else range(int(offsets[r]), int(offsets[r + 1]))


def window_count(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms) -> dict[int, int]:
    return {j: len(rows) for j, rows in _window_rows(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms).items()}


def window_stats(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms, offsets, entry_value):
    out = {}
    for j, rows in _window_rows(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms).items():
        vals = [float(entry_value[e]) for r in rows for e in _row_entries(offsets, r) if not math.isnan(entry_value[e])]
        s = 0.0
        for v in vals:  # entry order within the run
            s += v
        if vals:  # runs with at least one value
            out[j] = (len(vals), s, min(vals), max(vals))
    return out


def window_extreme(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms, offsets, entry_value, want_max):
    stats = window_stats(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms, offsets, entry_value)
    return {j: (high if want_max else low) for j, (_, _, low, high) in stats.items()}


def window_distinct(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms, offsets, entry_id, n_ids) -> dict[int, int]:
    out = {j: len({int(entry_id[e]) for r in rows for e in _row_entries(offsets, r) if 0 <= entry_id[e] < n_ids})
           for j, rows in _window_rows(start, stop, run_of_row, ts_ms, row_mask, lo_ms, hi_ms).items()}
    return {j: d for j, d in out.items() if d}  # runs with at least one id


def window_rows(ts_ms, lo_ms, hi_ms) -> list[int]:
    return [r for r, t in enumerate(ts_ms) if lo_ms <= t < hi_ms]


def reorder_entries(offsets, order) -> tuple[list[int], list[int]]:
    new_offsets, entry = [0], []
    for r in order:
        entry += list(range(int(offsets[r]), int(offsets[r + 1])))
        new_offsets.append(len(entry))
    return new_offsets, entry


def window_units(start, stop, run_of_row, ts_ms, row_mask, bounds_ms) -> dict[int, int]:
    units = list(zip(bounds_ms[:-1], bounds_ms[1:]))
    rows = _window_rows(start, stop, run_of_row, ts_ms, row_mask, bounds_ms[0], bounds_ms[-1])
    return {j: sum(1 for a, b in units if any(a <= ts_ms[r] < b for r in rs)) for j, rs in rows.items()}

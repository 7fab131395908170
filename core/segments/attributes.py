"""Attribute conditions (SEGMENTS.md section 6): tests on contact fields.

Field values are strings, numbers, booleans or dates (a "YYYY-MM-DD" string naming a real
date); `createdAt` is epoch ms and `source` a string. Typing is that of parameter filters,
plus: a date compares only with a filter value that is itself a date (as a date), and is not
a string for the substring ops. Fields are read through their cached columns (core.fields)
and judged by the field kernels; non-date strings once per distinct value.
"""

from __future__ import annotations

import array
import bisect
import datetime as dt
import math
import re
from typing import Any, Callable

import numpy as np
from pyroaring import BitMap

from core import fields, periods
from core.contacts import ContactBook
from core.kernels import fields as field_kernels
from core.segments.plan import AttrCond

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")  # ASCII digits only


def as_date(x: Any) -> dt.date | None:
    """x as a date when it is a YYYY-MM-DD string naming a real calendar date."""
    return fields.text_date(x)


def _as_number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int | float):
        return float(x)
    if isinstance(x, str) and _NUMBER.fullmatch(x):
        v = float(x)
        return v if math.isfinite(v) else None
    return None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _operands(x: Any, like: Any) -> tuple[Any, Any] | None:
    """(field value, filter value) in a common comparable form, or None when kinds differ."""
    if isinstance(like, bool):
        return (x, like) if isinstance(x, bool) else None
    if _is_num(like):
        n = _as_number(x)
        return None if n is None else (n, float(like))
    if isinstance(like, str):
        day = as_date(x)
        if day is not None:
            other = as_date(like)
            return None if other is None else (day, other)
        return (x, like) if isinstance(x, str) else None
    return None


def _equal(x: Any, like: Any) -> bool | None:
    pair = _operands(x, like)
    return None if pair is None else pair[0] == pair[1]


def value_passes(op: str, value: Any, x: Any) -> bool:
    """One field value against an op of section 5 (not exists/not_exists)."""
    if op in ("eq", "ne"):
        same = _equal(x, value)
        return same is not None and same == (op == "eq")
    if op in ("gt", "gte", "lt", "lte"):
        pair = _operands(x, value)
        if pair is None:
            return False
        a, b = pair
        return a > b if op == "gt" else a >= b if op == "gte" else a < b if op == "lt" else a <= b
    if op == "between":
        low, high = _operands(x, value[0]), _operands(x, value[1])
        return low is not None and high is not None and low[1] <= low[0] <= high[1]
    if op in ("in", "not_in"):
        verdicts = [v for v in (_equal(x, item) for item in value) if v is not None]
        return bool(verdicts) and (any(verdicts) if op == "in" else not any(verdicts))
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        if not isinstance(x, str) or as_date(x) is not None or not isinstance(value, str):
            return False
        if op == "contains":
            return value in x
        if op == "not_contains":
            return value not in x
        return x.startswith(value) if op == "starts_with" else x.endswith(value)
    return False


def _anniversary_days(now_ms: int, n: int, tz: str) -> tuple[dt.date, set[tuple[int, int]]]:
    """The target date and the (month, day) pairs celebrated on it (29 Feb on 28 Feb of
    years that are not leap years)."""
    target = periods.local_date(now_ms, tz) + dt.timedelta(days=n)
    pairs = {(target.month, target.day)}
    if (target.month, target.day) == (2, 28) and not _leap(target.year):
        pairs.add((2, 29))
    return target, pairs


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _midnight_ms(day: dt.date, tz: str) -> int:
    return periods.to_ms(dt.datetime(day.year, day.month, day.day, tzinfo=periods.zone(tz)))


def _created_anniversary(created_ms: np.ndarray, pairs: set[tuple[int, int]], tz: str) -> np.ndarray:
    """bool per instant: its local date in `tz` has a (month, day) in `pairs`."""
    if created_ms.shape[0] == 0:
        return np.zeros(0, np.bool_)
    first = periods.local_date(int(created_ms.min()), tz).year
    last = periods.local_date(int(created_ms.max()), tz).year
    bounds: list[int] = []
    for year in range(first, last + 1):
        for month, day in sorted(pairs):
            if (month, day) == (2, 29) and not _leap(year):
                continue
            start = dt.date(year, month, day)
            bounds += [_midnight_ms(start, tz), _midnight_ms(start + dt.timedelta(days=1), tz)]
    edges = np.array(sorted(bounds), dtype=np.int64)
    # inside a celebrated day exactly when an odd number of edges are <= t
    return (np.searchsorted(edges, created_ms, side="right") % 2) == 1


def attribute_members(cond: AttrCond, contacts: ContactBook, now_ms: int, tz: str) -> np.ndarray:
    """Ids (uint32, ascending, read-only) of the live contacts whose field satisfies the
    condition; computed once per state of the contact book (and, for anniversaries, per day)."""

    def build() -> np.ndarray:
        column = fields.field_column(contacts, cond.field)
        if cond.op == "not_exists":
            live = contacts.ids()
            return np.ascontiguousarray(live[column.kind[live] == fields.NONE], np.uint32)
        return np.flatnonzero(column_mask(cond, column, now_ms, tz)).astype(np.uint32)

    return fields.book_result(contacts, _result_key(cond, now_ms, tz), build)


def attribute_bitmap(cond: AttrCond, contacts: ContactBook, now_ms: int, tz: str) -> BitMap:
    """`attribute_members` as a BitMap, kept per state of the contact book like the ids.
    Shared: never mutate it."""

    def build() -> BitMap:
        ids = attribute_members(cond, contacts, now_ms, tz)
        out = BitMap(array.array("I", np.ascontiguousarray(ids, np.uint32).tobytes()))
        out.shrink_to_fit()
        return out

    return fields.book_value(contacts, ("bitmap",) + _result_key(cond, now_ms, tz), build)  # type: ignore[no-any-return]


def _typed(value: Any) -> Any:
    """`value` with its type spelled out: True and 1.0 are equal in Python, not as values here."""
    if isinstance(value, tuple | list):
        return ("seq", tuple(map(_typed, value)))
    return (type(value).__name__, value)


def _result_key(cond: AttrCond, now_ms: int, tz: str) -> tuple[Any, ...]:
    """What a condition's members depend on besides the book: for anniversaries, the
    celebrated days (and the zone, which places createdAt instants on days)."""
    when: Any = None
    if cond.op == "anniversaryInDays":
        _, pairs = _anniversary_days(now_ms, int(cond.value), tz)
        when = (tuple(sorted(pairs)), tz if cond.field == "createdAt" else "")
    return ("attribute", cond.field, cond.op, _typed(cond.value), when)


# Judged among candidates, a field's column is built when there are at least this share of
# the book's ids (or 64) of them: cheaper than reading that many contacts one by one.
_BUILD_SHARE = 1 / 512


def attribute_members_among(
    cond: AttrCond, contacts: ContactBook, candidates: np.ndarray, now_ms: int, tz: str
) -> np.ndarray:
    """As attribute_members, judging only `candidates` (live ids): through the field's column
    when it is built for the book as it is, else one contact at a time (no rebuild for a few)."""
    column = fields.cached_column(contacts, cond.field)
    if column is None and candidates.shape[0] >= max(64, (contacts.max_id + 1) * _BUILD_SHARE):
        column = fields.field_column(contacts, cond.field)
    if column is not None:
        cut = column.take(candidates.astype(np.int64))
        if cond.op == "not_exists":
            return candidates[cut.kind == fields.NONE].astype(np.uint32)
        return candidates[column_mask(cond, cut, now_ms, tz)].astype(np.uint32)
    keep = []
    x: Any
    for cid in candidates.tolist():
        contact = contacts.get(cid)
        if cond.field == "createdAt":
            present, x = True, contact.created_at_ms
        elif cond.field == "source":
            present, x = True, contact.source
        else:
            present, x = cond.field in contact.fields, contact.fields.get(cond.field)
        if cond.op == "not_exists":
            ok = not present
        else:
            ok = present and field_holds(cond, x, now_ms, tz)
        if ok:
            keep.append(cid)
    return np.array(keep, dtype=np.uint32)


def column_mask(cond: AttrCond, column: fields.FieldColumn, now_ms: int, tz: str) -> np.ndarray:
    """bool per slot of `column`: the slot has the field and its value satisfies the
    condition (any op but not_exists)."""
    kind = column.kind
    if cond.op == "exists":
        return kind != fields.NONE
    if cond.op == "anniversaryInDays":
        _, pairs = _anniversary_days(now_ms, int(cond.value), tz)
        if cond.field == "createdAt":
            mask = np.zeros(kind.shape[0], np.bool_)
            at = np.flatnonzero(kind == fields.NUMBER)
            mask[at] = _created_anniversary(column.number[at].astype(np.int64), pairs, tz)
            return mask
        if column.day.shape[0] == 0:
            return np.zeros(kind.shape[0], np.bool_)
        targets = np.array(sorted(fields.month_day(m, d) for m, d in pairs), np.uint16)
        return field_kernels.month_day_mask(kind, column.month_day, fields.DATE, targets)
    mask = np.zeros(kind.shape[0], np.bool_)
    for want, values, coordinate in (
        (fields.NUMBER, column.number, _number_coordinate),
        (fields.BOOL, column.number, _bool_coordinate),
        (fields.DATE, column.day, _date_coordinate),
    ):
        test = _axis_test(cond.op, cond.value, coordinate) if values.shape[0] else None
        if test is not None:
            mask |= field_kernels.axis_mask(kind, values, want, *test)
    if column.strings:
        verdict = _string_verdict(cond.op, cond.value, column.strings, column.string_number)
        if verdict.any():
            mask |= field_kernels.code_mask(kind, column.code, fields.STRING, verdict)
    return mask


def _number_coordinate(like: Any) -> float | None:
    return float(like) if _is_num(like) else None


def _bool_coordinate(like: Any) -> float | None:
    return float(like) if isinstance(like, bool) else None


def _date_coordinate(like: Any) -> float | None:
    day = as_date(like)
    return None if day is None else float(day.toordinal() - fields.EPOCH_ORDINAL)


_AxisTest = tuple[bool, float, bool, float, bool, np.ndarray, np.ndarray]  # as kernels.fields.axis_mask
_NO_VALUES = np.zeros(0, np.float64)


def _axis_test(op: str, value: Any, coordinate: Callable[[Any], float | None]) -> _AxisTest | None:
    """The op as a test on one value axis (coordinate: a filter value's place on the axis,
    None when the axis's values are not comparable with it); None: nothing on it passes."""
    inf = math.inf
    if op in ("eq", "ne", "gt", "gte", "lt", "lte"):
        c = coordinate(value)
        if c is None:
            return None
        one = np.array([c], np.float64)
        return {
            "eq": (False, -inf, True, inf, True, one, _NO_VALUES),
            "ne": (False, -inf, True, inf, True, _NO_VALUES, one),
            "gt": (True, c, False, inf, True, _NO_VALUES, _NO_VALUES),
            "gte": (True, c, True, inf, True, _NO_VALUES, _NO_VALUES),
            "lt": (True, -inf, True, c, False, _NO_VALUES, _NO_VALUES),
            "lte": (True, -inf, True, c, True, _NO_VALUES, _NO_VALUES),
        }[op]
    if op == "between":
        low, high = coordinate(value[0]), coordinate(value[1])
        if low is None or high is None:
            return None
        return (True, low, True, high, True, _NO_VALUES, _NO_VALUES)
    if op in ("in", "not_in"):
        found = [c for c in map(coordinate, value) if c is not None]
        if not found:
            return None
        items = np.array(sorted(found), np.float64)
        if op == "in":
            return (False, -inf, True, inf, True, items, _NO_VALUES)
        return (False, -inf, True, inf, True, _NO_VALUES, items)
    return None


def _string_verdict(op: str, value: Any, strings: tuple[str, ...], numbers: np.ndarray) -> np.ndarray:
    """bool per dictionary string (sorted, none a date): it satisfies the op."""
    m = len(strings)
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        if not isinstance(value, str):
            return np.zeros(m, np.bool_)
        if op == "contains":
            test: Callable[[str], bool] = lambda s: value in s
        elif op == "not_contains":
            test = lambda s: value not in s
        elif op == "starts_with":
            test = lambda s: s.startswith(value)
        else:
            test = lambda s: s.endswith(value)
        return np.fromiter(map(test, strings), np.bool_, count=m)
    likes = list(value) if op in ("between", "in", "not_in") else [value]
    if not likes or all(isinstance(like, bool) for like in likes):
        return np.zeros(m, np.bool_)
    if all(isinstance(like, str) for like in likes):
        return _lexical_verdict(op, value, strings)
    if all(_is_num(like) for like in likes):
        test_n = _axis_test(op, value, _number_coordinate)
        if test_n is None:
            return np.zeros(m, np.bool_)
        numeric = np.where(np.isnan(numbers), fields.NONE, fields.NUMBER).astype(np.uint8)  # NaN: no number
        return field_kernels.axis_mask(numeric, numbers, fields.NUMBER, *test_n)
    return np.fromiter((value_passes(op, value, s) for s in strings), np.bool_, count=m)


def _lexical_verdict(op: str, value: Any, strings: tuple[str, ...]) -> np.ndarray:
    """bool per sorted string against string filter values (code-point order)."""
    m = len(strings)
    rank = np.arange(m)

    def found(like: str) -> int:
        i = bisect.bisect_left(strings, like)
        return i if i < m and strings[i] == like else -1

    if op in ("eq", "ne", "in", "not_in"):
        hits = np.zeros(m, np.bool_)
        for like in (value,) if op in ("eq", "ne") else value:
            i = found(like)
            if i >= 0:
                hits[i] = True
        return hits if op in ("eq", "in") else ~hits
    if op == "gt":
        return rank >= bisect.bisect_right(strings, value)
    if op == "gte":
        return rank >= bisect.bisect_left(strings, value)
    if op == "lt":
        return rank < bisect.bisect_left(strings, value)
    if op == "lte":
        return rank < bisect.bisect_right(strings, value)
    if op == "between":
        return (rank >= bisect.bisect_left(strings, value[0])) & (rank < bisect.bisect_right(strings, value[1]))
    return np.zeros(m, np.bool_)


def field_holds(cond: AttrCond, x: Any, now_ms: int, tz: str) -> bool:
    """Whether one contact's field value satisfies the condition (the value is present)."""
    if cond.op == "exists":
        return True
    if cond.op == "not_exists":
        return False
    if cond.op == "anniversaryInDays":
        day = periods.local_date(int(x), tz) if cond.field == "createdAt" else as_date(x)
        if day is None:
            return False
        _, pairs = _anniversary_days(now_ms, int(cond.value), tz)
        return (day.month, day.day) in pairs
    return value_passes(cond.op, cond.value, x)

"""Attribute conditions (SEGMENTS.md section 6): tests on contact fields.

Field values are strings, numbers, booleans or dates (a "YYYY-MM-DD" string naming a real
date); `createdAt` is epoch ms and `source` a string. Typing is that of parameter filters,
plus: a date compares only with a filter value that is itself a date (as a date), and is not
a string for the substring ops. Every distinct field value is judged once.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Callable

import numpy as np

from core import periods
from core.contacts import ContactBook
from core.segments.plan import AttrCond

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")  # ASCII digits only
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def as_date(x: Any) -> dt.date | None:
    """x as a date when it is a YYYY-MM-DD string naming a real calendar date."""
    if isinstance(x, str) and _DATE.fullmatch(x):
        try:
            return dt.date.fromisoformat(x)
        except ValueError:
            return None
    return None


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
    """Ids (uint32) of the live contacts whose field satisfies the condition."""
    values = contacts.field_values(cond.field)
    ids = np.fromiter(values.keys(), dtype=np.int64, count=len(values))
    if cond.op == "exists":
        return ids.astype(np.uint32)
    if cond.op == "not_exists":
        live = contacts.ids()
        return live[~np.isin(live, ids)]
    if cond.field == "createdAt":
        created = np.fromiter(values.values(), dtype=np.int64, count=len(values))
        return ids[_created_passes(cond, created, now_ms, tz)].astype(np.uint32)
    verdict = _memo(lambda x: field_holds(cond, x, now_ms, tz))
    keep = np.fromiter((verdict(x) for x in values.values()), dtype=np.bool_, count=len(values))
    return ids[keep].astype(np.uint32)


def attribute_members_among(
    cond: AttrCond, contacts: ContactBook, candidates: np.ndarray, now_ms: int, tz: str
) -> np.ndarray:
    """As attribute_members, judging only `candidates` (live ids), one contact at a time."""
    keep = []
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


def _created_passes(cond: AttrCond, created: np.ndarray, now_ms: int, tz: str) -> np.ndarray:
    if cond.op == "anniversaryInDays":
        _, pairs = _anniversary_days(now_ms, int(cond.value), tz)
        return _created_anniversary(created, pairs, tz)
    verdict = _memo(lambda x: value_passes(cond.op, cond.value, x))
    uniq, inverse = np.unique(created, return_inverse=True)
    judged = np.fromiter((verdict(int(x)) for x in uniq), dtype=np.bool_, count=uniq.shape[0])
    return judged[inverse]


def field_holds(cond: AttrCond, x: Any, now_ms: int, tz: str) -> bool:
    """Whether one contact's field value satisfies the condition (the value is present)."""
    if cond.op == "exists":
        return True
    if cond.op == "not_exists":
        return False
    if cond.op == "anniversaryInDays":
        if cond.field == "createdAt":
            day = periods.local_date(int(x), tz)
        else:
            day = as_date(x)
            if day is None:
                return False
        _, pairs = _anniversary_days(now_ms, int(cond.value), tz)
        return (day.month, day.day) in pairs
    return value_passes(cond.op, cond.value, x)


def _memo(fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
    seen: dict[tuple[type, Any], bool] = {}

    def judged(x: Any) -> bool:
        key = (type(x), x)
        hit = seen.get(key)
        if hit is None:
            hit = seen[key] = fn(x)
        return hit

    return judged

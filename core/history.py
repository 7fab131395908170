"""Stored events read back: leaves of table rows, nested params rebuilt, newest-first paging."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.columns import NO_ITEM, Kind
from core.dictionary import StringDictionary
from core.errors import InvalidArgument
from core.event_model import Leaf
from core.store import EventStore
from core.versions import ColumnKey, TableVersion

_EXACT_INT = 2**53


@dataclass(frozen=True)
class StoredEvent:
    type: str
    contact_id: int  # 0 for a system event
    ts_ms: int
    arrival: int  # global arrival sequence; (ts_ms, arrival) orders events
    params: dict[str, Any]


# ---------------------------------------------------------------------------- unflatten


class _Elements(dict):  # type: ignore[type-arg]
    """Array elements by ordinal while an object is rebuilt; becomes a list at the end."""


def _containers(leaves: Sequence[Leaf]) -> set[str]:
    """Paths at which an object or an array is present."""
    out = {leaf.path for leaf in leaves if leaf.value is None}
    for leaf in leaves:
        out.update(prefix for prefix, _ in leaf.items)
    return out


def _place(root: dict[str, Any], leaf: Leaf, containers: set[str]) -> None:
    path = leaf.path
    ordinals = dict(leaf.items)
    node: Any = root
    pos = 0
    while True:
        # the key ends at the first dot whose prefix is a container (keys may hold dots)
        end = path.find(".", pos)
        while end != -1 and path[:end] not in containers:
            end = path.find(".", end + 1)
        last = end == -1
        stop = len(path) if last else end
        key = path[pos:stop]
        prefix = path[:stop]
        if prefix in ordinals:
            elements = node.get(key)
            if not isinstance(elements, _Elements):
                elements = node[key] = _Elements()
            node, key = elements, ordinals[prefix]
        if last:
            if leaf.value is None:
                if not isinstance(node.get(key), dict) or isinstance(node.get(key), _Elements):
                    node[key] = {}
            else:
                node[key] = leaf.value
            return
        child = node.get(key)
        if not isinstance(child, dict) or isinstance(child, _Elements):
            child = node[key] = {}
        node = child
        pos = end + 1


def _finish(value: Any) -> Any:
    if isinstance(value, _Elements):
        return [_finish(value[k]) for k in sorted(value)]
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    return value


def unflatten(leaves: Sequence[Leaf]) -> dict[str, Any]:
    """The nested params object of `leaves`: objects from container leaves, arrays from ordinals.

    flatten(unflatten(flatten(p))) == flatten(p) whenever no key of p contains a dot; a dotted
    path is split only where a container exists at the prefix, so a key like "a.b" comes back
    as a literal key unless an object or array is present at "a".
    """
    containers = _containers(leaves)
    root: dict[str, Any] = {}
    for leaf in leaves:
        _place(root, leaf, containers)
    return _finish(root)


# ---------------------------------------------------------------------------- row leaves


def _value(kind: Kind, raw: Any, dictionary: StringDictionary) -> Any:
    if kind == Kind.NUM:
        x = float(raw)
        return int(x) if x.is_integer() and abs(x) <= _EXACT_INT else x
    if kind == Kind.STR:
        return dictionary.decode(int(raw))
    if kind == Kind.BOOL:
        return bool(raw)
    return None


def row_leaves(
    version: TableVersion, rows: np.ndarray, order: Sequence[ColumnKey], dictionary: StringDictionary
) -> list[list[Leaf]]:
    """The leaves of each row in `rows`, column by column in `order` (then any other column)."""
    rows = np.asarray(rows, dtype=np.int64)
    out: list[list[Leaf]] = [[] for _ in range(rows.shape[0])]
    keys = [k for k in order if k in version.columns]
    keys += [k for k in version.columns if k not in set(keys)]
    for key in keys:
        col = version.columns[key]
        lo = np.searchsorted(col.row, rows, side="left")
        hi = np.searchsorted(col.row, rows, side="right")
        prefixes = sorted(col.items, key=len)  # an outer array's path is a prefix of an inner one
        for i in np.flatnonzero(hi > lo).tolist():
            for e in range(int(lo[i]), int(hi[i])):
                raw = col.values[e] if key[1] != Kind.NODE else None
                items = tuple(
                    (p, int(col.items[p][e])) for p in prefixes if col.items[p][e] != NO_ITEM
                )
                out[i].append(Leaf(key[0], _value(key[1], raw, dictionary), items))
    return out


def _events(
    store: EventStore, picks: Sequence[tuple[str, TableVersion, int]]
) -> list[StoredEvent]:
    """StoredEvents of (type, version, row) picks, in the order given."""
    out: list[StoredEvent | None] = [None] * len(picks)
    groups: dict[tuple[str, int], list[int]] = {}
    versions: dict[int, TableVersion] = {}
    for i, (key, version, _) in enumerate(picks):
        groups.setdefault((key, id(version)), []).append(i)
        versions[id(version)] = version
    for (key, vid), indices in groups.items():
        version = versions[vid]
        rows = np.asarray([picks[i][2] for i in indices], dtype=np.int64)
        leaves = row_leaves(version, rows, store.column_order(key), store.dictionary)
        for i, row, row_leaf in zip(indices, rows.tolist(), leaves):
            out[i] = StoredEvent(
                key,
                int(version.contact[row]),
                int(version.ts_ms[row]),
                version.arrivals(row),
                unflatten(row_leaf),
            )
    return [e for e in out if e is not None]


# ---------------------------------------------------------------------------- paging


def _cursor(ts_ms: int, arrival: int) -> str:
    return base64.urlsafe_b64encode(f"h1:{ts_ms}:{arrival}".encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, ts, arrival = text.split(":")
        if tag != "h1":
            raise ValueError(tag)
        return int(ts), int(arrival)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("page_token", "is not a page token of this listing") from None


def recent_events(
    store: EventStore, type_key: str, limit: int, cursor: str | None
) -> tuple[list[StoredEvent], str | None]:
    """A page of the type's events, newest first by (ts_ms, arrival); the cursor of the next page."""
    if limit <= 0:
        raise InvalidArgument("page_size", "must be positive")
    bound = _parse_cursor(cursor) if cursor else None
    versions = [v for pair in store.parts(type_key) for v in pair if len(v)]  # any row order will do
    found = 0
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for vi, v in enumerate(versions):
        ts, arrival = v.ts_ms, v.arrival
        if bound is None:
            idx = np.arange(len(v), dtype=np.int64)
        else:
            idx = np.flatnonzero((ts < bound[0]) | ((ts == bound[0]) & (arrival < bound[1])))
        found += idx.shape[0]
        if idx.shape[0] > limit:
            cut = idx.shape[0] - limit
            kth = np.partition(ts[idx], cut)[cut]  # the limit-th newest ts
            idx = idx[ts[idx] >= kth]
        parts.append((ts[idx], arrival[idx], np.full(idx.shape[0], vi), idx))
    if not parts:
        return [], None
    ts_all, arr_all, vi_all, row_all = (np.concatenate(p) for p in zip(*parts))
    order = np.lexsort((arr_all, ts_all))[::-1][:limit]
    picks = [(type_key, versions[int(vi_all[i])], int(row_all[i])) for i in order.tolist()]
    events = _events(store, picks)
    more = found > limit
    next_cursor = _cursor(events[-1].ts_ms, events[-1].arrival) if more and events else None
    return events, next_cursor


def contact_events(store: EventStore, contact_id: int, limit: int) -> list[StoredEvent]:
    """The contact's most recent events of every type, newest first."""
    if limit <= 0:
        return []
    candidates: list[tuple[int, int, str, TableVersion, int]] = []
    for key in store.type_keys():
        version, lo, hi = store.contact_rows(key, contact_id)
        # rows of one contact are sorted by (ts, arrival): its newest are the last ones
        for row in range(max(lo, hi - limit), hi):
            candidates.append((int(version.ts_ms[row]), version.arrivals(row), key, version, row))
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    return _events(store, [(key, v, row) for _, _, key, v, row in candidates[:limit]])

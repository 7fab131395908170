"""The event store: per event type, one table per contact shard, plus per-type path statistics.

Shard k of a type holds the events of contacts [k << shard_bits, (k+1) << shard_bits); contact
0 holds system events. One writer at a time changes the store (a store lock enforces it);
readers take immutable table versions and never wait for ingest.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from core.batch import EventBatch
from core.bulk import append_columns
from core.columns import Kind, PathColumn, PathStats, make_column
from core.dictionary import StringDictionary
from core.compactor import Compactor
from core.errors import InvalidArgument, NotFound
from core.identifiers import TypeMapping
from core.tables import Table, TableSplit
from core.versions import (
    ColumnKey,
    TableVersion,
    concat_versions,
    empty_version,
    filter_rows,
    lost_codes,
    make_version,
    slice_rows,
    sort_rows,
)

STATE_FORMAT = 1
_DEFAULT_MAPPING = TypeMapping()  # immutable: shared by every type without a config
_EXACT_INT = 2**53
STORE_COMPACT_FRACTION = 1 / 16  # a store table's tail is due past max(4096, this x base rows)
ROWS_CACHE_ENTRIES = 16  # rows_of answers kept (see EventStore.rows_of)
ROWS_CACHE_MAX_ROWS = 100_000  # larger answers are not kept


@dataclass(frozen=True)
class PathInfo:
    path: str
    kind: Kind
    count: int  # events carrying the path with this kind
    examples: tuple[Any, ...]  # up to 5 distinct values, decoded


@dataclass(frozen=True)
class EventTypeInfo:
    key: str
    count: int
    paths: tuple[PathInfo, ...]
    mapping: TypeMapping
    retention_ms: int | None  # None: kept forever
    first_ts_ms: int | None  # None when the type holds no events
    last_ts_ms: int | None


class _TypeState:
    """One event type: config, tables by shard (replaced, never mutated, so readers may iterate)."""

    __slots__ = ("key", "mapping", "retention_ms", "tables", "count", "first_ts", "last_ts")

    def __init__(self, key: str) -> None:
        self.key = key
        self.mapping = TypeMapping()
        self.retention_ms: int | None = None
        self.tables: dict[int, Table] = {}
        self.count = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def stats(self) -> dict[ColumnKey, PathStats]:
        """Path statistics over every shard (shard order, then first-seen order)."""
        out: dict[ColumnKey, PathStats] = {}
        for _, table in sorted(self.tables.items()):
            for key, stats in table.stats().items():
                out[key] = out[key].merged(stats) if key in out else stats
        return out


class EventStore:
    """Every stored event, by type and contact shard, as immutable numpy columns."""

    def __init__(self, shard_bits: int = 20) -> None:
        if not 0 <= shard_bits <= 32:
            raise InvalidArgument("shard_bits", "must be between 0 and 32")
        self.shard_bits = shard_bits
        self.dictionary = StringDictionary()
        self._types: dict[str, _TypeState] = {}  # replaced on growth: readers iterate safely
        self._next_arrival = 0
        self._write = threading.RLock()
        self.compactor = Compactor()  # merges due tails off the writers' threads
        self._rows_cache: OrderedDict[tuple[str, bytes], tuple[tuple, tuple[TableVersion, ...]]] = OrderedDict()
        self._rows_lock = threading.Lock()

    def _new_table(self, base: TableVersion | None = None,
                   stats: Mapping[ColumnKey, PathStats] | None = None) -> Table:
        table = Table(base, stats, on_due=self.compactor.submit)
        # merges run off the writers' threads, so tails are kept short: reads scan them
        table.compact_fraction = STORE_COMPACT_FRACTION
        table.refresh_limit()
        return table

    # ------------------------------------------------------------------ writes

    def _type(self, key: str) -> _TypeState:
        state = self._types.get(key)
        if state is None:
            state = _TypeState(key)
            self._types = {**self._types, key: state}
        return state

    def _table(self, state: _TypeState, shard: int) -> Table:
        table = state.tables.get(shard)
        if table is None:
            table = self._new_table()
            state.tables = {**state.tables, shard: table}
        return table

    def append(self, type_key: str, contact_id: int, ts_ms: int, leaves: Sequence[Any]) -> int:
        """Stores one event; returns its arrival sequence number. Amortised O(1) + O(len(leaves))."""
        if not 0 <= contact_id < 2**32:
            raise InvalidArgument("contact_id", "must be between 0 and 2^32-1")
        if not -(2**63) <= ts_ms < 2**63:
            raise InvalidArgument("timestamp", "is out of range")
        with self._write:
            state = self._types.get(type_key)
            if state is None:
                state = self._type(type_key)
            table = state.tables.get(contact_id >> self.shard_bits)
            if table is None:
                table = self._table(state, contact_id >> self.shard_bits)
            arrival = self._next_arrival
            table.append(contact_id, ts_ms, arrival, leaves, self.dictionary)  # raises before storing
            self._next_arrival = arrival + 1
            state.count += 1
            if state.first_ts is None or ts_ms < state.first_ts:
                state.first_ts = ts_ms
            if state.last_ts is None or ts_ms > state.last_ts:
                state.last_ts = ts_ms
            return arrival

    def append_many(
        self, type_key: str, contact_ids: Sequence[int], ts_ms: Sequence[int], leaves: Sequence[Sequence[Any]]
    ) -> list[int]:
        """Stores several events of one type in order; returns their arrival numbers."""
        batch = self.batch()
        try:
            for c, t, ls in zip(contact_ids, ts_ms, leaves):
                batch.add(type_key, c, t, [(leaf.path, leaf.value, leaf.items) for leaf in ls])
        finally:
            count = len(batch)
            first = batch.commit()  # the events before a failing one are stored, as by `append`
        return list(range(first, first + count))

    def append_columns(self, type_key: str, contact: Any, ts_ms: Any, params: Mapping[str, Any]) -> int:
        """Stores many events of one type given as columns (core/bulk.py); returns the first
        arrival number. The same store as appending each event in order."""
        return append_columns(self, type_key, contact, ts_ms, params)

    def batch(self) -> EventBatch:
        """An empty batch of events to gather and then store at once (`EventBatch.commit`)."""
        return EventBatch(self)

    def set_config(self, key: str, mapping: TypeMapping | None, retention_ms: int | None) -> None:
        """Sets a type's custom mapping and retention (None: forever); creates the type if unknown."""
        if retention_ms is not None and retention_ms < 0:
            raise InvalidArgument("retention_ms", "must not be negative")
        with self._write:
            state = self._type(key)
            state.mapping = mapping if mapping is not None else TypeMapping()
            state.retention_ms = retention_ms

    def _drop_rows(self, state: _TypeState, table: Table, keep_of: Callable[[TableVersion], np.ndarray | None]) -> int:
        """Removes the rows `keep_of(sorted rows)` leaves out; releases their strings."""
        lost: dict[str, np.ndarray] = {}

        def change(full: TableVersion) -> TableVersion:
            keep = keep_of(full)
            if keep is None or keep.all():
                return full
            lost["codes"] = lost_codes(full, keep)
            lost["ts"] = full.ts_ms[~keep]
            return filter_rows(full, keep)

        table.rebuild(change)
        if not lost:
            return 0
        ts = lost["ts"]
        self.dictionary.drop_refs(lost["codes"])
        state.count -= int(ts.shape[0])
        if state.count == 0:
            state.first_ts = state.last_ts = None
        elif (state.first_ts is not None and int(ts.min()) <= state.first_ts) or (
            state.last_ts is not None and int(ts.max()) >= state.last_ts
        ):
            versions = self.shards(state.key)
            state.first_ts = min(int(v.ts_ms.min()) for v in versions)
            state.last_ts = max(int(v.ts_ms.max()) for v in versions)
        return int(ts.shape[0])

    def erase_contact(self, contact_id: int) -> int:
        """Removes every event of the contact, of every type; returns how many."""
        shard = contact_id >> self.shard_bits
        removed = 0

        def keep_of(full: TableVersion) -> np.ndarray | None:
            lo, hi = full.contact_range(contact_id)
            if lo == hi:
                return None
            keep = np.ones(len(full), dtype=bool)
            keep[lo:hi] = False
            return keep

        with self._write:
            for state in self._types.values():
                table = state.tables.get(shard)
                if table is not None and len(table):
                    removed += self._drop_rows(state, table, keep_of)
        return removed

    def move_contact(self, from_id: int, into_id: int) -> int:
        """Gives every event of `from_id` to `into_id` (ts, params and arrival kept); returns how many."""
        if from_id == into_id:
            return 0
        if not 0 <= into_id < 2**32:
            raise InvalidArgument("into", "must be between 0 and 2^32-1")
        moved = 0
        with self._write:
            for state in self._types.values():
                source = state.tables.get(from_id >> self.shard_bits)
                if source is None or not len(source):
                    continue
                cut: list[TableVersion] = []

                def without(full: TableVersion) -> TableVersion:
                    lo, hi = full.contact_range(from_id)
                    if lo == hi:
                        return full
                    cut.append(slice_rows(full, lo, hi))
                    keep = np.ones(len(full), dtype=bool)
                    keep[lo:hi] = False
                    return filter_rows(full, keep)

                source.rebuild(without)
                if not cut:
                    continue
                block = replace(cut[0], contact=np.full(len(cut[0]), into_id, dtype=np.uint32))

                def with_block(full: TableVersion) -> TableVersion:
                    lo, hi = full.contact_range(into_id)
                    mid = sort_rows(concat_versions([slice_rows(full, lo, hi), block], 0))
                    parts = [slice_rows(full, 0, lo), mid, slice_rows(full, hi, len(full))]
                    return concat_versions(parts, len(full) + len(block))

                self._table(state, into_id >> self.shard_bits).rebuild(with_block)
                moved += len(block)
        return moved

    def apply_retention(self, now_ms: int) -> int:
        """Drops the events older than their type's retention; returns how many."""
        dropped = 0
        with self._write:
            for state in self._types.values():
                if state.retention_ms is None or state.first_ts is None:
                    continue
                cutoff = now_ms - state.retention_ms
                if state.first_ts >= cutoff:
                    continue
                for table in state.tables.values():
                    if len(table):
                        dropped += self._drop_rows(state, table, lambda full: full.ts_ms >= cutoff)
        return dropped

    # ------------------------------------------------------------------- reads

    def _tables(self, type_key: str) -> list[tuple[int, Table]]:
        state = self._types.get(type_key)
        return [] if state is None else sorted(state.tables.items())

    def shards(self, type_key: str) -> list[TableVersion]:
        """A fully sorted version per shard holding rows of the type, by shard; [] for an unknown
        type. Merges every tail first (maintenance and tests; hot reads use parts/rows_of/splits)."""
        out = []
        for _, table in self._tables(type_key):
            if len(table):
                version = table.version(sorted=True)
                if len(version):
                    out.append(version)
        return out

    def parts(self, type_key: str) -> list[tuple[TableVersion, TableVersion]]:
        """Per shard holding rows of the type: (sorted base, unsorted tail rows); merges nothing."""
        return [table.parts() for _, table in self._tables(type_key) if len(table)]

    def rows_of(self, type_key: str, contact_ids: Any, paths: frozenset[str] | None = None) -> list[TableVersion]:
        """Small fully sorted versions holding only the rows of `contact_ids`, one per shard with
        any; base rows by binary search, tail rows by a scan of the tail. Merges nothing. With
        `paths`, the versions hold only the columns at or under them (None: every column).

        The last few answers are kept while their tables do not change: the segments of one
        real-time step read the same contacts of the same type one after another."""
        ids = np.asarray(contact_ids, dtype=np.uint32)
        if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            ids = np.unique(ids)
        if ids.shape[0] == 0:
            return []
        tables = self._tables(type_key)
        stamp = tuple((shard, id(table), table.generation) for shard, table in tables)
        key = (type_key, ids.tobytes(), paths)
        with self._rows_lock:
            hit = self._rows_cache.get(key)
            if hit is not None and hit[0] == stamp:
                self._rows_cache.move_to_end(key)
                return list(hit[1])
        out = []
        shard_of = ids >> np.uint32(self.shard_bits) if self.shard_bits < 32 else np.zeros(ids.shape[0], np.uint32)
        for shard, table in tables:
            lo = int(np.searchsorted(shard_of, shard, side="left"))
            hi = int(np.searchsorted(shard_of, shard, side="right"))
            if hi > lo and len(table):
                version = table.rows_of(ids[lo:hi], paths)
                if len(version):
                    out.append(version)
        if sum(len(v) for v in out) <= ROWS_CACHE_MAX_ROWS:
            with self._rows_lock:
                self._rows_cache[key] = (stamp, tuple(out))
                while len(self._rows_cache) > ROWS_CACHE_ENTRIES:
                    self._rows_cache.popitem(last=False)
        return out

    def splits(self, type_key: str) -> list[TableSplit]:
        """Every row of the type as contact-disjoint sorted pieces per shard (see TableSplit):
        a whole-store read that merges nothing."""
        return [table.split() for _, table in self._tables(type_key) if len(table)]

    def compact_all(self) -> None:
        """Merges every tail into its base now, in this thread, and returns when done."""
        for state in list(self._types.values()):
            for table in list(state.tables.values()):
                table.compact()
        self.compactor.wait()

    def close(self) -> None:
        """Stops the compactor thread (later due tails merge in the appending thread)."""
        self.compactor.stop()

    def contact_rows(self, type_key: str, contact_id: int) -> tuple[TableVersion, int, int]:
        """A sorted version holding the contact's rows and their range [lo, hi) in it."""
        if not 0 <= contact_id < 2**32:
            return empty_version(), 0, 0
        found = self.rows_of(type_key, np.array([contact_id], dtype=np.uint32))
        if not found:
            return empty_version(), 0, 0
        return found[0], 0, len(found[0])

    def table(self, type_key: str, shard: int) -> Table | None:
        """The table of one type in one shard, if it exists."""
        state = self._types.get(type_key)
        return state.tables.get(shard) if state is not None else None

    def has_type(self, key: str) -> bool:
        return key in self._types

    def type_keys(self) -> list[str]:
        """Every known event type key, sorted."""
        return sorted(self._types)

    def mapping(self, key: str) -> TypeMapping:
        """The type's custom mapping (the default mapping for an unknown type)."""
        state = self._types.get(key)
        return state.mapping if state is not None else _DEFAULT_MAPPING

    def column_order(self, key: str) -> list[ColumnKey]:
        """The type's (path, kind) columns in the order they were first seen."""
        state = self._types.get(key)
        return list(state.stats()) if state is not None else []

    def _example(self, kind: Kind, value: Any) -> Any:
        if kind == Kind.STR:
            return self.dictionary.decode(int(value))
        if kind == Kind.BOOL:
            return bool(value)
        x = float(value)
        return int(x) if x.is_integer() and abs(x) <= _EXACT_INT else x

    def type_info(self, key: str) -> EventTypeInfo:
        """What the type holds: counts, paths with kinds and examples, config. NotFound if unknown."""
        state = self._types.get(key)
        if state is None:
            raise NotFound(f"event type {key!r} does not exist")
        paths = []
        for (path, kind), stats in sorted(state.stats().items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
            examples = tuple(
                self._example(kind, x)
                for x in list(stats.examples)
                if kind != Kind.STR or self.dictionary.live(int(x))
            )
            paths.append(PathInfo(path, kind, stats.count, examples))
        return EventTypeInfo(
            key, state.count, tuple(paths), state.mapping, state.retention_ms, state.first_ts, state.last_ts
        )

    def types(self) -> list[EventTypeInfo]:
        """`type_info` of every type, by key."""
        return [self.type_info(key) for key in self.type_keys()]

    def total_events(self) -> int:
        return sum(state.count for state in self._types.values())

    def nbytes(self) -> int:
        """Memory held by columns, tails, the string dictionary and per-type statistics (approximate)."""
        tables = sum(t.nbytes for s in self._types.values() for t in s.tables.values())
        stats = sum(200 + 150 * len(t.stats()) for s in self._types.values() for t in s.tables.values())
        return int(tables + self.dictionary.nbytes + stats)

    # ------------------------------------------------------------------- state

    def to_state(self) -> dict[str, Any]:
        """Everything as plain dicts, lists, str, int, float and numpy arrays (no pickle)."""
        with self._write:
            types = []
            for key in self.type_keys():
                state = self._types[key]
                shards = []
                for shard, table in sorted(state.tables.items()):
                    v = table.version(sorted=True)
                    if len(v):
                        shards.append({"shard": shard, **_version_state(v, table.stats())})
                types.append(
                    {
                        "key": key,
                        "mapping": {
                            "params": dict(state.mapping.params),
                            "contact_key_name": state.mapping.contact_key_name,
                        },
                        "retention_ms": -1 if state.retention_ms is None else state.retention_ms,
                        "count": state.count,
                        "first_ts_ms": 0 if state.first_ts is None else state.first_ts,
                        "last_ts_ms": 0 if state.last_ts is None else state.last_ts,
                        "shards": shards,
                    }
                )
            return {
                "format": STATE_FORMAT,
                "shard_bits": self.shard_bits,
                "next_arrival": self._next_arrival,
                "dictionary": self.dictionary.to_state(),
                "types": types,
            }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], dictionary: StringDictionary | None = None) -> "EventStore":
        """The store `to_state` described; `dictionary`: its dictionary, already restored."""
        if int(state.get("format", -1)) != STATE_FORMAT:
            raise InvalidArgument("format", f"unsupported event store state format {state.get('format')!r}")
        store = cls(shard_bits=int(state["shard_bits"]))
        store._next_arrival = int(state["next_arrival"])
        store.dictionary = StringDictionary.from_state(state["dictionary"]) if dictionary is None else dictionary
        refs = np.zeros(len(store.dictionary), dtype=np.int64)
        types: dict[str, _TypeState] = {}
        for doc in state["types"]:
            ts = _TypeState(str(doc["key"]))
            m = doc["mapping"]
            ts.mapping = TypeMapping(params=dict(m["params"]), contact_key_name=str(m["contact_key_name"]))
            retention = int(doc["retention_ms"])
            ts.retention_ms = None if retention < 0 else retention
            ts.count = int(doc["count"])
            ts.first_ts = int(doc["first_ts_ms"]) if ts.count else None
            ts.last_ts = int(doc["last_ts_ms"]) if ts.count else None
            tables = {}
            for sdoc in doc["shards"]:
                version, stats = _version_from_state(sdoc)
                for (_, kind), col in version.columns.items():
                    if kind == Kind.STR and len(col):
                        _count_refs(refs, col.values)
                tables[int(sdoc["shard"])] = store._new_table(version, stats)
            ts.tables = tables
            types[ts.key] = ts
        store._types = types
        store.dictionary.set_refs(refs)
        return store


def _count_refs(refs: np.ndarray, codes: np.ndarray) -> None:
    """Adds to `refs[c]` how often code c occurs in `codes`: counted in one pass when the codes
    are many for the dictionary's size, else by sorting them. ValueError on a code out of range."""
    if codes.shape[0] * 4 >= refs.shape[0]:
        counts = np.bincount(codes, minlength=refs.shape[0])  # ValueError on a negative code
        if counts.shape[0] != refs.shape[0]:
            raise ValueError("a string code beyond the dictionary")
        refs += counts
    else:
        uniq, counts = np.unique(codes, return_counts=True)
        refs[uniq] += counts


def _version_state(v: TableVersion, stats: Mapping[ColumnKey, PathStats]) -> dict[str, Any]:
    columns = []
    for key, col in v.columns.items():
        st = stats.get(key, PathStats(0, []))
        columns.append(
            {
                "path": col.path,
                "kind": int(col.kind),
                "row": col.row,
                "values": col.values,
                "items": dict(col.items),
                "count": st.count,
                "examples": list(st.examples),
            }
        )
    return {"contact": v.contact, "ts_ms": v.ts_ms, "arrival": v.arrival, "columns": columns}


def _version_from_state(doc: Mapping[str, Any]) -> tuple[TableVersion, dict[ColumnKey, PathStats]]:
    cols: dict[ColumnKey, PathColumn] = {}
    stats: dict[ColumnKey, PathStats] = {}
    for c in doc["columns"]:
        kind = Kind(int(c["kind"]))
        # arrays from a snapshot are owned by the state (read into their own buffers): no copies
        col = make_column(str(c["path"]), kind, np.asarray(c["row"]), np.asarray(c["values"]), c["items"])
        cols[(col.path, kind)] = col
        stats[(col.path, kind)] = PathStats(int(c["count"]), list(c["examples"]))
    contact = np.asarray(doc["contact"], dtype=np.uint32)
    return make_version(contact, doc["ts_ms"], doc["arrival"], contact.shape[0], cols), stats

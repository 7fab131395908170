"""Bulk loading of one event type from columns: numpy arrays in, table tails extended at once.

For loaders that already hold events column-wise (benchmark data, imports, rebuilding a
store): contact ids, timestamps and one array per flat parameter, one entry per event. The
store ends up exactly as if each event had been appended with `EventStore.append` in order
with the parameters it carries: same arrival numbers, string codes, columns and statistics.

Parameter arrays and the values they hold:
- integer or float arrays: numbers (stored as float64); NaN means the event lacks it;
- bool arrays: booleans;
- str or object arrays: strings; None means the event lacks it (anything else is refused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from core.columns import Kind
from core.errors import InvalidArgument

if TYPE_CHECKING:
    from core.store import EventStore

_U32_MAX = 2**32 - 1


def _prepared(name: Any, raw: Any, n: int) -> tuple[str, Kind, np.ndarray, np.ndarray]:
    """(name, kind, present mask, values) of one parameter column, or InvalidArgument."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument("params", "parameter names must be non-empty strings")
    field = f"params.{name}"
    arr = np.asarray(raw)
    if arr.shape != (n,):
        raise InvalidArgument(field, f"must hold one value per event ({n}), got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return name, Kind.BOOL, np.ones(n, dtype=bool), arr.astype(np.int8)
    if arr.dtype.kind in "iu":
        return name, Kind.NUM, np.ones(n, dtype=bool), arr.astype(np.float64)
    if arr.dtype.kind == "f":
        values = arr.astype(np.float64)
        return name, Kind.NUM, ~np.isnan(values), values
    if arr.dtype.kind == "U":
        return name, Kind.STR, np.ones(n, dtype=bool), arr.astype(object)
    if arr.dtype.kind == "O":
        present = np.fromiter((v is not None for v in arr.tolist()), dtype=bool, count=n)
        if not all(type(v) is str for v in arr[present].tolist()):
            raise InvalidArgument(field, "an object array may hold only strings and None")
        return name, Kind.STR, present, arr
    raise InvalidArgument(field, f"unsupported dtype {arr.dtype}")


def append_columns(
    store: EventStore, type_key: str, contact: Any, ts_ms: Any, params: Mapping[str, Any]
) -> int:
    """Stores len(contact) events of `type_key`, event i made of contact[i], ts_ms[i] and the
    i-th entry of every parameter array; returns the arrival number of the first."""
    if not isinstance(type_key, str) or not type_key:
        raise InvalidArgument("type_key", "must be a non-empty string")
    contact_arr = np.asarray(contact)
    ts_arr = np.asarray(ts_ms)
    if contact_arr.ndim != 1 or ts_arr.shape != contact_arr.shape:
        raise InvalidArgument("ts_ms", "contact and ts_ms must be 1-D arrays of one length")
    n = int(contact_arr.shape[0])
    if n and (contact_arr.dtype.kind not in "iu" or contact_arr.min() < 0 or contact_arr.max() > _U32_MAX):
        raise InvalidArgument("contact_id", "must be integers between 0 and 2^32-1")
    if n and ts_arr.dtype.kind not in "iu":
        raise InvalidArgument("timestamp", "must be integer epoch milliseconds")
    if n and ts_arr.dtype.kind == "u" and ts_arr.max() >= 2**63:
        raise InvalidArgument("timestamp", "is out of range")
    columns = [_prepared(name, raw, n) for name, raw in params.items()]
    contact_arr = contact_arr.astype(np.uint32)
    ts_arr = ts_arr.astype(np.int64)
    with store._write:
        first = store._next_arrival
        if n == 0:
            return first
        # strings are coded in event order, parameters in order within an event, as
        # appending one event at a time does
        texts = [(j, c) for j, c in enumerate(columns) if c[1] is Kind.STR]
        codes: dict[int, np.ndarray] = {}
        if texts:
            present = np.stack([c[2] for _, c in texts], axis=1)
            matrix = np.empty((n, len(texts)), dtype=object)
            for k, (_, c) in enumerate(texts):
                matrix[:, k] = c[3]
            coded = np.full((n, len(texts)), -1, dtype=np.int32)
            coded[present] = store.dictionary.acquire_all(matrix[present].tolist())
            codes = {j: coded[:, k] for k, (j, _) in enumerate(texts)}
        values = [codes.get(j, c[3]) for j, c in enumerate(columns)]
        arrival = np.arange(first, first + n, dtype=np.int64)
        shards = contact_arr >> np.uint32(store.shard_bits) if store.shard_bits < 32 else np.zeros(n, np.uint32)
        state = store._types.get(type_key) or store._type(type_key)
        uniq, first_at = np.unique(shards, return_index=True)
        for shard in uniq[np.argsort(first_at)].tolist():  # tables in order of their first event
            rows = np.arange(n) if uniq.shape[0] == 1 else np.flatnonzero(shards == shard)
            blocks = []
            for (name, kind, mask, _), vals in zip(columns, values):
                here = mask[rows]
                local = np.flatnonzero(here).astype(np.int32)
                if local.shape[0]:
                    blocks.append((int(local[0]), (name, kind), local, vals[rows][here]))
            blocks.sort(key=lambda b: b[0])  # columns in order of first use (stable: param order)
            table = state.tables.get(int(shard)) or store._table(state, int(shard))
            table.append_arrays(contact_arr[rows], ts_arr[rows], arrival[rows], [b[1:] for b in blocks])
        state.count += n
        lo, hi = int(ts_arr.min()), int(ts_arr.max())
        if state.first_ts is None or lo < state.first_ts:
            state.first_ts = lo
        if state.last_ts is None or hi > state.last_ts:
            state.last_ts = hi
        store._next_arrival = first + n
        return first

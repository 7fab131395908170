"""Bulk loading of one event type from columns: numpy arrays in, table tails extended at once.

For loaders that already hold events column-wise (benchmark data, imports, rebuilding a
store). The store ends up exactly as if each event had been appended with `EventStore.append`
in order with the leaves it carries: same arrival numbers, string codes and reference counts,
columns, item ordinals and statistics.

Two forms:

- `append_columns`: flat parameters, one array per parameter with one entry per event
  (integer or float arrays: numbers, NaN where absent; bool arrays: booleans; str or object
  arrays: strings, None where absent).
- `append_leaves`: any parameters, already flattened the way `core.event_model.flatten` flattens a
  document, as one `LeafColumn` per (path, kind): the event of every entry, its value, the
  ordinal of every array element it lies in (per array prefix), and optionally its position
  among its event's leaves, which fixes the order strings are first seen in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from core.columns import ITEM_DTYPE, NO_ITEM, ROW_DTYPE, VALUE_DTYPES, Kind
from core.dictionary import StringDictionary
from core.errors import InvalidArgument

if TYPE_CHECKING:
    from core.event_model import LeafTuple
    from core.store import EventStore

_U32_MAX = 2**32 - 1
_NO_ITEMS: Mapping[str, np.ndarray] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Coded:
    """Strings given as codes into a vocabulary: entry i is `vocab[codes[i]]`.

    The vocabulary may be shared by many columns and calls (a loader's id table); only the
    entries a call uses are read.
    """

    codes: np.ndarray  # integer, one per entry, 0 <= code < len(vocab)
    vocab: np.ndarray  # object array of str


@dataclass(frozen=True, slots=True)
class LeafColumn:
    """Every entry of one (path, kind) in a bulk of events, in event order.

    `rows[i]` is the event (0-based within the bulk) of entry i; rows never decrease, and an
    event has several entries where its path crosses an array (in document order). `values`:
    NUM float64, STR str/object array or `Coded`, BOOL bool or 0/1, NODE None.
    `items[prefix][i]` is the ordinal of the array element entry i lies in at `prefix` (an
    array path that is `path` or a dotted prefix of it), NO_ITEM where it crosses no array
    there, exactly as `core.event_model.flatten` numbers elements. `order[i]`, when given, is the
    position of entry i among its event's leaves (the index in `flatten`'s list).
    """

    path: str
    kind: Kind
    rows: np.ndarray
    values: np.ndarray | Coded | None = None
    items: Mapping[str, np.ndarray] = field(default_factory=lambda: _NO_ITEMS)
    order: np.ndarray | None = None

    def __len__(self) -> int:
        return int(np.asarray(self.rows).shape[0])


@dataclass(slots=True)
class _Checked:
    """A validated column: int64 rows, values in store dtype (STR: indices into the call's
    combined vocabulary until codes are known), items per prefix, ordering keys."""

    path: str
    kind: Kind
    rows: np.ndarray  # int64
    values: np.ndarray | None
    items: dict[str, np.ndarray]
    key: np.ndarray  # int64, (event, leaf position) packed; ascends within the column


# ------------------------------------------------------------------------ flat columns


def _flat_column(name: Any, raw: Any, n: int) -> LeafColumn:
    """The LeafColumn of one flat parameter array, or InvalidArgument."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument("params", "parameter names must be non-empty strings")
    field_name = f"params.{name}"
    arr = np.asarray(raw)
    if arr.shape != (n,):
        raise InvalidArgument(field_name, f"must hold one value per event ({n}), got shape {arr.shape}")
    every = np.arange(n, dtype=np.int64)
    if arr.dtype == np.bool_:
        return LeafColumn(name, Kind.BOOL, every, arr.astype(np.int8))
    if arr.dtype.kind in "iu":
        return LeafColumn(name, Kind.NUM, every, arr.astype(np.float64))
    if arr.dtype.kind == "f":
        values = arr.astype(np.float64)
        present = np.flatnonzero(~np.isnan(values))
        return LeafColumn(name, Kind.NUM, present, values[present])
    if arr.dtype.kind == "U":
        return LeafColumn(name, Kind.STR, every, arr.astype(object))
    if arr.dtype.kind == "O":
        listed = arr.tolist()
        present = np.fromiter((v is not None for v in listed), dtype=bool, count=n)
        if not all(type(v) is str for v in arr[present].tolist()):
            raise InvalidArgument(field_name, "an object array may hold only strings and None")
        rows = np.flatnonzero(present)
        return LeafColumn(name, Kind.STR, rows, arr[rows])
    raise InvalidArgument(field_name, f"unsupported dtype {arr.dtype}")


def append_columns(
    store: EventStore, type_key: str, contact: Any, ts_ms: Any, params: Mapping[str, Any]
) -> int:
    """Stores len(contact) events of `type_key`, event i made of contact[i], ts_ms[i] and the
    i-th entry of every parameter array (parameters in mapping order); returns the arrival
    number of the first."""
    contact_arr, ts_arr = _events(type_key, contact, ts_ms)
    n = int(contact_arr.shape[0])
    columns = [_flat_column(name, raw, n) for name, raw in params.items()]
    return append_leaves(store, type_key, contact_arr, ts_arr, columns)


# ------------------------------------------------------------------------ leaf columns


def _events(type_key: Any, contact: Any, ts_ms: Any) -> tuple[np.ndarray, np.ndarray]:
    """(contact uint32, ts_ms int64) of a bulk, or InvalidArgument."""
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
    return contact_arr.astype(np.uint32), ts_arr.astype(np.int64)


def _int_array(raw: Any, k: int, field_name: str, what: str) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.shape != (k,) or (k and arr.dtype.kind not in "iu"):
        raise InvalidArgument(field_name, f"{what} must be an integer array of one item per entry ({k})")
    return arr.astype(np.int64)


def _checked_values(col: LeafColumn, k: int, field_name: str) -> np.ndarray | None:
    """NUM and BOOL values in the store's dtype; None for NODE and STR (strings are coded
    with the call's other strings, `_acquire`)."""
    kind, raw = col.kind, col.values
    if kind == Kind.NODE:
        if raw is not None and np.asarray(raw).shape[0] not in (0, k):
            raise InvalidArgument(field_name, "an object column carries no values")
        return None
    if raw is None:
        raise InvalidArgument(field_name, "values are missing")
    if kind == Kind.STR:
        return None
    arr = np.asarray(raw)
    if arr.shape != (k,):
        raise InvalidArgument(field_name, f"must hold one value per entry ({k}), got shape {arr.shape}")
    if kind == Kind.NUM:
        if k and arr.dtype.kind not in "iuf":
            raise InvalidArgument(field_name, f"numbers expected, got dtype {arr.dtype}")
        return arr.astype(np.float64)
    if k and arr.dtype != np.bool_ and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 1):
        raise InvalidArgument(field_name, "booleans must be a bool array or 0/1")
    return arr.astype(VALUE_DTYPES[Kind.BOOL])


def _string_parts(col: LeafColumn, k: int, field_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes, object vocabulary) of a STR column."""
    raw = col.values
    if isinstance(raw, Coded):
        codes = _int_array(raw.codes, k, field_name, "string codes")
        vocab = np.asarray(raw.vocab, dtype=object)
        if vocab.ndim != 1 or (k and (codes.min() < 0 or codes.max() >= vocab.shape[0])):
            raise InvalidArgument(field_name, "string codes must index the vocabulary")
        return codes, vocab
    arr = np.asarray(raw)
    if arr.shape != (k,):
        raise InvalidArgument(field_name, f"must hold one value per entry ({k}), got shape {arr.shape}")
    if arr.dtype.kind not in "UO":
        raise InvalidArgument(field_name, f"strings expected, got dtype {arr.dtype}")
    return np.arange(k, dtype=np.int64), arr.astype(object)


def _checked_items(col: LeafColumn, k: int, field_name: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for prefix, raw in col.items.items():
        if not isinstance(prefix, str) or not (prefix == col.path or col.path.startswith(prefix + ".")):
            raise InvalidArgument(field_name, f"item prefix {prefix!r} is not a prefix of the path")
        arr = _int_array(raw, k, field_name, f"items[{prefix!r}]")
        if k and (arr.min() < NO_ITEM or arr.max() >= 2**31):
            raise InvalidArgument(field_name, f"items[{prefix!r}] must be ordinals >= 0 or NO_ITEM")
        out[prefix] = arr.astype(ITEM_DTYPE)
    return out


def _leaf_orders(columns: Sequence[LeafColumn], rows: list[np.ndarray]) -> list[np.ndarray]:
    """Per column, each entry's position among its event's leaves when no column gives one:
    columns in the given order, entries of one event in a column in their order."""
    out = []
    offset = 0
    for rs in rows:
        k = rs.shape[0]
        if k:
            starts = np.flatnonzero(np.r_[True, rs[1:] != rs[:-1]])
            within = np.arange(k, dtype=np.int64) - np.repeat(starts, np.diff(np.r_[starts, k]))
        else:
            within = np.zeros(0, dtype=np.int64)
        out.append(within + offset)
        offset += int(within.max()) + 1 if k else 0
    return out


def _validated(columns: Sequence[LeafColumn], n: int) -> tuple[list[_Checked], list[tuple[np.ndarray, np.ndarray]]]:
    """Checked columns plus, per STR column in order, its (codes, vocab); InvalidArgument names
    the column (`params.<path>`) of the first problem."""
    given = [c.order is not None for c in columns]
    if any(given) and not all(given):
        raise InvalidArgument("params", "either every column gives leaf order or none does")
    rows_of: list[np.ndarray] = []
    for col in columns:
        if not isinstance(col, LeafColumn) or not isinstance(col.path, str) or not col.path:
            raise InvalidArgument("params", "columns must be LeafColumns with non-empty paths")
        field_name = f"params.{col.path}"
        if not isinstance(col.kind, Kind):
            raise InvalidArgument(field_name, "kind must be a Kind")
        rs = np.asarray(col.rows)
        k = rs.shape[0] if rs.ndim == 1 else -1
        rs = _int_array(rs, k, field_name, "rows")
        if k and (rs[0] < 0 or rs[-1] >= n or bool((np.diff(rs) < 0).any())):
            raise InvalidArgument(field_name, f"rows must ascend within 0..{n - 1}")
        rows_of.append(rs)
    if all(given) and columns:
        orders = [_int_array(c.order, r.shape[0], f"params.{c.path}", "order") for c, r in zip(columns, rows_of)]
    else:
        orders = _leaf_orders(columns, rows_of)
    width = max((int(o.max()) + 1 for o in orders if o.shape[0]), default=1)
    if any(o.shape[0] and o.min() < 0 for o in orders) or n * width >= 2**62:
        raise InvalidArgument("params", "leaf order must be small non-negative positions")
    checked: list[_Checked] = []
    strings: list[tuple[np.ndarray, np.ndarray]] = []
    seen: set[tuple[str, Kind]] = set()
    for col, rs, order in zip(columns, rows_of, orders):
        field_name = f"params.{col.path}"
        if (col.path, col.kind) in seen:
            raise InvalidArgument(field_name, f"two columns of kind {col.kind.name}")
        seen.add((col.path, col.kind))
        k = rs.shape[0]
        key = rs * width + order
        if k > 1 and bool((np.diff(key) <= 0).any()):
            raise InvalidArgument(field_name, "entries of one event must be in leaf order")
        values = _checked_values(col, k, field_name)
        if col.kind == Kind.STR:
            strings.append(_string_parts(col, k, field_name))
        checked.append(_Checked(col.path, col.kind, rs, values, _checked_items(col, k, field_name), key))
    return checked, strings


def _acquire(dictionary: StringDictionary, checked: list[_Checked],
             strings: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Fills the STR columns' values with dictionary codes, assigning new codes in the order
    one-event-at-a-time appends first meet the strings: by event, then by leaf position.
    Raises InvalidArgument before changing the dictionary when a used value is not a str."""
    text = [c for c in checked if c.kind == Kind.STR]
    # per column: the vocabulary entries it uses, where each is first used (a column's keys
    # ascend, so its first entry holding a word is its first use), how often, and per entry
    # which used word it holds
    used, first_key, counts, inverse, owner = [], [], [], [], []
    for j, (c, (codes, _)) in enumerate(zip(text, strings)):
        u, first, inv, cnt = np.unique(codes, return_index=True, return_inverse=True, return_counts=True)
        used.append(u)
        first_key.append(c.key[first])
        counts.append(cnt)
        inverse.append(inv)
        owner.append(np.full(u.shape[0], j, dtype=np.int64))
    if not text or not any(u.shape[0] for u in used):
        for c in text:
            c.values = np.zeros(c.rows.shape[0], dtype=VALUE_DTYPES[Kind.STR])
        return
    appearance = np.argsort(np.concatenate(first_key), kind="stable")  # distinct (column, word) by first use
    words = np.concatenate([strings[j][1][u] for j, u in enumerate(used)])[appearance]
    listed = words.tolist()
    for s, j in zip(listed, np.concatenate(owner)[appearance].tolist()):
        if type(s) is not str:
            raise InvalidArgument(f"params.{text[j].path}", "string values must be str")
    code_of = np.empty(len(listed), dtype=np.int64)
    code_of[appearance] = dictionary.encode_all(listed)  # one code per (column, word), in used order
    dictionary.add_refs(code_of, np.concatenate(counts))  # a string may be in two vocabularies
    start = 0
    for c, u, inv in zip(text, used, inverse):
        c.values = code_of[start:start + u.shape[0]][inv.reshape(-1)].astype(VALUE_DTYPES[Kind.STR])
        start += u.shape[0]


def _ordered_items(items: dict[str, np.ndarray], sel: np.ndarray | None) -> dict[str, np.ndarray]:
    """The prefixes some selected entry crosses, in the order appends meet them (first
    crossing entry, outermost first), with their ordinals for the selected entries."""
    firsts = []
    for prefix, arr in items.items():
        part = arr if sel is None else arr[sel]
        hit = np.flatnonzero(part != NO_ITEM)
        if hit.shape[0]:
            firsts.append((int(hit[0]), len(prefix), prefix, part))
    firsts.sort(key=lambda t: (t[0], t[1]))
    return {prefix: part for _, _, prefix, part in firsts}


def append_leaves(
    store: EventStore, type_key: str, contact: Any, ts_ms: Any, columns: Sequence[LeafColumn]
) -> int:
    """Stores len(contact) events of `type_key`, event i made of contact[i], ts_ms[i] and
    the entries of `columns` whose row is i; returns the arrival number of the first.

    Without `order` on the columns, an event's leaves are taken column by column in the order
    given. Refused whole (InvalidArgument naming the column) before anything is stored.
    """
    contact_arr, ts_arr = _events(type_key, contact, ts_ms)
    n = int(contact_arr.shape[0])
    checked, strings = _validated(columns, n)
    with store._write:
        first = store._next_arrival
        if n == 0:
            return first
        _acquire(store.dictionary, checked, strings)
        arrival = np.arange(first, first + n, dtype=np.int64)
        bits = store.shard_bits
        shards = contact_arr >> np.uint32(bits) if bits < 32 else np.zeros(n, np.uint32)
        state = store._types.get(type_key) or store._type(type_key)
        uniq, first_at = np.unique(shards, return_index=True)
        single = uniq.shape[0] == 1
        for shard in uniq[np.argsort(first_at)].tolist():  # tables in order of their first event
            if single:
                rows, local_of = None, None
            else:
                here = shards == shard
                rows = np.flatnonzero(here)
                local_of = np.cumsum(here, dtype=np.int64) - 1
            blocks = []
            for c in checked:
                sel = None if single else np.flatnonzero(shards[c.rows] == shard)
                if (c.rows.shape[0] if sel is None else sel.shape[0]) == 0:
                    continue
                r = c.rows if sel is None else local_of[c.rows[sel]]  # type: ignore[index]
                vals = c.values if c.values is None or sel is None else c.values[sel]
                if vals is None:
                    vals = np.zeros(0, dtype=VALUE_DTYPES[c.kind])
                first_key = int(c.key[0] if sel is None else c.key[sel[0]])
                items = _ordered_items(c.items, sel)
                blocks.append((first_key, ((c.path, c.kind), r.astype(ROW_DTYPE), vals, items)))
            blocks.sort(key=lambda b: b[0])  # columns in order of first use
            table = state.tables.get(int(shard)) or store._table(state, int(shard))
            if single:
                table.append_arrays(contact_arr, ts_arr, arrival, [b[1] for b in blocks])
            else:
                table.append_arrays(contact_arr[rows], ts_arr[rows], arrival[rows], [b[1] for b in blocks])
        state.count += n
        lo, hi = int(ts_arr.min()), int(ts_arr.max())
        if state.first_ts is None or lo < state.first_ts:
            state.first_ts = lo
        if state.last_ts is None or hi > state.last_ts:
            state.last_ts = hi
        store._next_arrival = first + n
        return first


# ------------------------------------------------------------------ from leaves


def leaf_columns(events: Sequence[Sequence[LeafTuple]]) -> list[LeafColumn]:
    """The LeafColumns (with `order`) of events given as (path, value, items) leaf lists, as
    `core.event_model.leaf_tuples` makes them: the plain, per-leaf way to build bulk input."""
    cols: dict[tuple[str, Kind], dict[str, Any]] = {}
    for row, leaves in enumerate(events):
        for pos, (path, value, items) in enumerate(leaves):
            t = type(value)
            if t is bool:
                kind, v = Kind.BOOL, int(value)
            elif t is int or t is float:
                kind, v = Kind.NUM, float(value)
            elif t is str:
                kind, v = Kind.STR, value
            elif value is None:
                kind, v = Kind.NODE, None
            else:
                raise InvalidArgument(f"params.{path}", f"unsupported value type {t.__name__}")
            col = cols.get((path, kind))
            if col is None:
                col = cols[(path, kind)] = {"rows": [], "values": [], "order": [], "items": {}}
            k = len(col["rows"])
            col["rows"].append(row)
            col["order"].append(pos)
            if v is not None:
                col["values"].append(v)
            for prefix, ordinal in items:
                ordinals = col["items"].get(prefix)
                if ordinals is None:
                    ordinals = col["items"][prefix] = [NO_ITEM] * k
                ordinals.append(ordinal)
            for ordinals in col["items"].values():
                if len(ordinals) == k:
                    ordinals.append(NO_ITEM)
    out = []
    for (path, kind), col in cols.items():
        if kind == Kind.STR:
            values: Any = np.array(col["values"], dtype=object)
        elif kind == Kind.NODE:
            values = None
        else:
            values = np.array(col["values"], dtype=VALUE_DTYPES[kind])
        items = {p: np.array(o, dtype=ITEM_DTYPE) for p, o in col["items"].items()}
        out.append(LeafColumn(path, kind, np.array(col["rows"], dtype=np.int64), values, items,
                              np.array(col["order"], dtype=np.int64)))
    return out

"""The fast ingest paths against the plain ones they stand in for.

- `parse_event` (fast path first) against the checked parse alone: same event, same error;
- `EventBatch` (one append per table) against `EventStore.append` of each event in order;
- `Engine.ingest` of a batch against storing each event on its own as it is mapped;
- RFC 3339 timestamps (read through remembered parts) against datetime arithmetic.

Every comparison is type-aware (1, 1.0 and True differ) and covers the store's columns,
statistics, string codes and arrival numbers, and the contact book.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine import Engine
from core.errors import InvalidArgument
from core.event_model import MAX_DEPTH, flatten, leaf_tuples
from core.events import _parse_event_checked, parse_event, parse_timestamp
from core.store import EventStore

pytestmark = pytest.mark.property

NOW = 1_795_000_000_000

TEXT = st.one_of(
    st.sampled_from(["", "a", "USD", " x ", "é", "a\ud800b", "\x01", "x" * 70_000, "  {", "{}", "7", "C-1"]),
    st.text(max_size=6),
)
JSON_TEXT = st.sampled_from(
    [
        '{"productId":"WS01","price":45.5,"isInStock":1}',
        '[{"id": 1}, {"id": 2}]',
        '  [1, 2]',
        "\n{\"a\": null}",
        "{not json",
        "[1, 2",
        "{} trailing",
        "[NaN]",
        "[1e400]",
        '{"": 1}',
        '{"a": "\\ud800"}',
        json.dumps([[[[[[[[[1]]]]]]]]]),
        json.dumps([[[[[[[[1]]]]]]]]),
        "\x0b{\"a\": 1}",
        "\u00a0[1]",
        '{"a": 1, "a": 2}',
        '{"x": 12345678901234567890123}',
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**53, 2**63, -(2**63), 10**400, 2**1023, -(2**1023)]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    JSON_TEXT,
)
KEYS = st.one_of(st.sampled_from(["k", "m", "", "n.o", "é", "email", "Phone"]), st.text(max_size=3))


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


VALUES = st.one_of(
    st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(KEYS, inner, max_size=3),
            st.tuples(inner),
        ),
        max_leaves=8,
    ),
    st.sampled_from([_nested(MAX_DEPTH), _nested(MAX_DEPTH + 1)]),
)
NAMES = st.one_of(
    st.sampled_from(["email", "Email", "externalCustomerId", "phone", "PushToken", "product", "price", "", "é"]),
    st.text(max_size=4),
    st.integers(0, 3),
)
ITEM = st.one_of(
    st.fixed_dictionaries({"name": NAMES, "value": VALUES}),
    st.fixed_dictionaries({"name": NAMES}),
    st.fixed_dictionaries({"name": NAMES, "value": VALUES, "vaule": st.just(1)}),
    st.just("a"),
)
PARAMS = st.one_of(
    st.none(),
    st.lists(ITEM, max_size=5),
    st.dictionaries(st.one_of(NAMES, st.just("")), VALUES, max_size=5),
    st.sampled_from(["a=1", 3]),
)
TIMESTAMPS = st.one_of(
    st.none(),
    st.just(""),
    st.integers(-(2**64), 2**64),
    st.sampled_from(
        [
            "2026-11-20T10:15:00Z",
            "2026-11-20t10:15:00.5+02:00",
            "2016-12-31T23:59:60Z",
            "2026-02-30T00:00:00Z",
            "2026-11-20T25:00:00Z",
            "2026-11-20T10:15:00+24:00",
            "1795169700000",
            " 17 ",
            "yesterday",
            1.7951697e12,
            1.5,
            True,
        ]
    ),
)
WILD_DOCS = st.fixed_dictionaries(
    {},
    optional={
        "eventTypeKey": st.one_of(st.sampled_from(["view", "buy", "", "x" * 129, "é"]), st.integers()),
        "keyValue": st.one_of(st.none(), TEXT, st.integers(-5, 5), st.just(["k"])),
        "eventId": st.one_of(st.none(), st.sampled_from(["", "e1", "e2", "é"]), st.integers(0, 3)),
        "timestamp": TIMESTAMPS,
        "system": st.one_of(st.booleans(), st.none(), st.just("yes")),
        "params": PARAMS,
        "colour": st.just("red"),
    },
)
# Mostly well-formed documents, so both paths accept most of them and the values compared
# are real ones; a few values in them are still out of bounds.
GOOD_TEXT = st.one_of(st.sampled_from(["", "a", "USD", " x ", "é", "C-1", "a@x.com"]), st.text(max_size=5))
GOOD_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        GOOD_TEXT,
        JSON_TEXT,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)
GOOD_NAMES = st.one_of(st.sampled_from(["email", "externalCustomerId", "product", "price", "é"]), st.text(min_size=1, max_size=4))
GOOD_DOCS = st.fixed_dictionaries(
    {"eventTypeKey": st.sampled_from(["view", "buy", "é"])},
    optional={
        "keyValue": st.one_of(st.none(), GOOD_TEXT, st.integers(-5, 5)),
        "eventId": st.one_of(st.none(), st.sampled_from(["", "e1", "é"])),
        "timestamp": TIMESTAMPS,
        "system": st.booleans(),
        "params": st.one_of(
            st.lists(st.fixed_dictionaries({"name": GOOD_NAMES, "value": GOOD_VALUES}), max_size=5),
            st.dictionaries(GOOD_NAMES, GOOD_VALUES, max_size=5),
        ),
    },
)
DOCS = st.one_of(GOOD_DOCS, GOOD_DOCS, GOOD_DOCS, WILD_DOCS)


def typed(value: Any) -> Any:
    """A comparable form that tells 1, 1.0 and True apart and keeps key order."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    return (type(value).__name__, value)


def outcome_of(parse: Any, doc: Any) -> Any:
    try:
        event = parse(doc)
    except InvalidArgument as exc:
        return ("error", exc.field, str(exc))
    return ("event", event.type, event.key_value, event.event_id, event.ts_ms, event.system, typed(event.params))


@settings(max_examples=400, deadline=None)
@given(DOCS)
def test_fast_parse_agrees_with_the_checked_parse(doc: dict[str, Any]) -> None:
    assert outcome_of(parse_event, doc) == outcome_of(_parse_event_checked, doc)
    try:
        event = parse_event(doc)
    except InvalidArgument:
        return
    if event.leaves is not None:  # flattened on the way: exactly what flattening gives
        assert [(p, typed(v), i) for p, v, i in event.leaves] == [
            (p, typed(v), i) for p, v, i in leaf_tuples(event.params)
        ]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=3), VALUES, max_size=4))
def test_leaf_tuples_are_flatten(params: dict[str, Any]) -> None:
    leaves = flatten(params)
    assert [(lf.path, typed(lf.value), lf.items) for lf in leaves] == [
        (p, typed(v), i) for p, v, i in leaf_tuples(params)
    ]


# ------------------------------------------------------------------ the store

STORE_VALUES = st.recursive(
    st.one_of(
        st.integers(-3, 3),
        st.sampled_from([0.5, -0.0, 1e15, 2**53]),
        st.sampled_from(["a", "b", "7", "x.y", ""]),
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["k", "m", "n.o"]), inner, max_size=2)
    ),
    max_leaves=6,
)
STORE_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["view", "buy", "login"]),
        st.integers(0, 15),
        st.integers(0, 12),
        st.dictionaries(st.sampled_from(["id", "price", "tags", "product", "flag"]), STORE_VALUES, max_size=3),
    ),
    max_size=25,
)


def store_state(store: EventStore, tails: bool = True) -> Any:
    """Everything observable: unsorted versions (tails in arrival order; left out when
    `tails` is False, as when tails merge into bases at different moments), statistics,
    the sorted state."""
    versions = []
    for key in store.type_keys():
        for shard in (0, 1, 2, 3):  # the tests' contacts 0..15 with shard_bits 2 (or 0 with 20)
            table = store.table(key, shard)
            if table is not None:
                v = table.version()
                cols = [(k, typed(c.row), typed(c.values), typed(dict(c.items))) for k, c in v.columns.items()]
                if tails:
                    versions.append((key, shard, typed(v.contact), typed(v.ts_ms), typed(v.arrival), cols))
                versions.append(sorted((k, s.count, typed(s.examples)) for k, s in table.stats().items()))
    return versions, typed(store.to_state()), [typed(info.__dict__) for info in store.types()]


@settings(max_examples=150, deadline=None)
@given(STORE_EVENTS, st.integers(1, 30))
def test_a_batch_stores_what_appending_each_event_stores(events: list[Any], chunk: int) -> None:
    one_by_one, batched = EventStore(shard_bits=2), EventStore(shard_bits=2)
    for type_key, contact, ts, params in events:
        one_by_one.append(type_key, contact, ts, flatten(params))
    for start in range(0, len(events), chunk):
        batch = batched.batch()
        for type_key, contact, ts, params in events[start : start + chunk]:
            batch.add(type_key, contact, ts, leaf_tuples(params))
        batch.commit()
    assert store_state(batched) == store_state(one_by_one)


def test_a_failing_event_leaves_the_batch_as_it_was() -> None:
    store = EventStore()
    batch = store.batch()
    batch.add("t", 1, 1, leaf_tuples({"s": "kept", "n": 1}))
    with pytest.raises(InvalidArgument):
        batch.add("t", 2, 2, [("s", "gone", ()), ("n", 10**400, ())])
    batch.commit()
    reference = EventStore()
    reference.append("t", 1, 1, flatten({"s": "kept", "n": 1}))
    assert store_state(store) == store_state(reference)
    assert store.dictionary.lookup("gone") is None


# ------------------------------------------------------------------ the engine

IDENTS = st.one_of(
    st.fixed_dictionaries({"email": st.sampled_from(["A@x.com", "a@x.com", "b@x.com", " B@X.COM"])}),
    st.fixed_dictionaries({"externalCustomerId": st.sampled_from(["C-1", "C-2", "c-1"])}),
    st.fixed_dictionaries({"phone": st.sampled_from(["+44 1", "441", "(2) 2"])}),
    st.fixed_dictionaries({"ContactId": st.sampled_from(["1", "2", "9", 3])}),
    st.fixed_dictionaries({"PushToken": st.sampled_from(["p1", "p2"])}),
    st.just({}),
)
ENGINE_DOCS = st.lists(
    st.builds(
        lambda t, kv, eid, ts, ids, extra, shape, system: _event_doc(t, kv, eid, ts, {**ids, **extra}, shape, system),
        st.sampled_from(["view", "buy"]),
        st.sampled_from([None, "ck-1", "ck-2", "a@x.com", "C-1"]),
        st.sampled_from([None, "e1", "e2"]),
        st.sampled_from([None, NOW - 5, "2026-11-20T10:15:00Z", "bad"]),
        IDENTS,
        st.dictionaries(st.sampled_from(["price", "product", "tags"]), STORE_VALUES, max_size=2),
        st.booleans(),
        st.sampled_from([False, False, False, True]),
    ),
    max_size=30,
)


def _event_doc(type_key: str, kv: Any, eid: Any, ts: Any, params: dict[str, Any], as_list: bool, system: bool) -> Any:
    doc: dict[str, Any] = {"eventTypeKey": type_key}
    if kv is not None:
        doc["keyValue"] = kv
    if eid is not None:
        doc["eventId"] = eid
    if ts is not None:
        doc["timestamp"] = ts
    if system:
        doc["system"] = True
    doc["params"] = [{"name": k, "value": v} for k, v in params.items()] if as_list else params
    return doc


def engine_state(engine: Engine) -> Any:
    return typed(engine.contacts.to_state()), store_state(engine.store)


@settings(max_examples=150, deadline=None)
@given(ENGINE_DOCS)
def test_a_batch_ingests_as_storing_each_event_at_once(docs: list[dict[str, Any]]) -> None:
    batched, one_by_one = Engine(clock=lambda: NOW), Engine(clock=lambda: NOW)
    report = batched.ingest(docs)
    stored: list[dict[str, Any]] = []
    expected = [one_by_one._ingest_one(i, doc, NOW, False, stored, {}, None) for i, doc in enumerate(docs)]
    assert report.outcomes == expected
    assert engine_state(batched) == engine_state(one_by_one)


# ------------------------------------------------------------------ timestamps

RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def reference_ms(text: str) -> int | None:
    """Epoch ms of an RFC 3339 text by datetime arithmetic, None when invalid or out of range."""
    m = RFC3339.fullmatch(text.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        moment = datetime(y, mo, d, h, mi, 59 if s == 60 else s, tzinfo=timezone.utc)
    except ValueError:
        return None
    if m.group(9) and (int(m.group(10)) > 23 or int(m.group(11)) > 59):
        return None
    offset = (int(m.group(10)) * 60 + int(m.group(11))) * (1 if m.group(9) == "+" else -1) if m.group(9) else 0
    ms = (
        round(moment.timestamp()) * 1000
        + int(((m.group(7) or "") + "000")[:3])
        + (1000 if s == 60 else 0)
        - offset * 60_000
    )
    return ms if -62_135_596_800_000 <= ms <= 253_402_300_799_999 else None


TIMESTAMP_TEXTS = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone, pad: f"{pad}{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{zone}{pad}",
    st.sampled_from([1, 1970, 2016, 2024, 2026, 9999]),
    st.sampled_from([1, 2, 12, 13]),
    st.sampled_from([1, 28, 29, 30, 31]),
    st.sampled_from(["T", "t", " ", "x"]),
    st.sampled_from([0, 23, 24]),
    st.sampled_from([0, 59, 60]),
    st.sampled_from([0, 59, 60, 61]),
    st.sampled_from(["", ".5", ".123", ".123456789", ".", ".x"]),
    st.sampled_from(["Z", "z", "+02:00", "-05:30", "+23:59", "-23:59", "+24:00", "+01:60", "", "+0200"]),
    st.sampled_from(["", " ", "\t"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(TIMESTAMP_TEXTS, min_size=1, max_size=8))
def test_timestamps_agree_with_datetime_arithmetic_cold_and_warm(texts: list[str]) -> None:
    for _ in range(2):  # the second round reads the remembered parts
        for text in texts:
            try:
                got: int | None = parse_timestamp(text)
            except InvalidArgument as exc:
                assert exc.field == "timestamp"
                got = None
            assert got == reference_ms(text), text


# ------------------------------------------------------------------ the columnar loader

BULK_COLUMNS = st.integers(0, 25).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.integers(0, 15), min_size=n, max_size=n),
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
        st.dictionaries(
            st.sampled_from(["price", "qty", "flag", "city", "os"]),
            st.one_of(
                st.lists(st.one_of(st.floats(allow_nan=False), st.just(math.nan)), min_size=n, max_size=n).map(
                    lambda v: np.array(v, dtype=np.float64)
                ),
                st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n).map(lambda v: np.array(v, dtype=np.int64)),
                st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: np.array(v, dtype=bool)),
                st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", "x.y"])), min_size=n, max_size=n).map(
                    lambda v: np.array(v, dtype=object)
                ),
                st.lists(st.sampled_from(["iOS", "Android"]), min_size=n, max_size=n).map(np.array),
            ),
            max_size=4,
        ),
    )
)


def _row_params(params: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, arr in params.items():
        value = arr[i]
        if isinstance(value, float) and math.isnan(value):
            continue
        if value is None:
            continue
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


@settings(max_examples=150, deadline=None)
@given(STORE_EVENTS, BULK_COLUMNS, STORE_EVENTS)
def test_columns_store_what_appending_each_event_stores(before: list[Any], columns: Any, after: list[Any]) -> None:
    n, contacts, stamps, params = columns
    bulk, one_by_one = EventStore(shard_bits=2), EventStore(shard_bits=2)
    for store in (bulk, one_by_one):
        for type_key, contact, ts, p in before:
            store.append(type_key, contact, ts, flatten(p))
    bulk.append_columns("view", np.array(contacts, dtype=np.int64), np.array(stamps, dtype=np.int64), params)
    for i in range(n):
        one_by_one.append("view", contacts[i], stamps[i], flatten(_row_params(params, i)))
    for store in (bulk, one_by_one):
        for type_key, contact, ts, p in after:
            store.append(type_key, contact, ts, flatten(p))
    assert store_state(bulk) == store_state(one_by_one)


def test_columns_are_refused_whole_when_one_is_bad() -> None:
    store = EventStore()
    with pytest.raises(InvalidArgument) as info:
        store.append_columns("t", np.array([1, 2]), np.array([5, 6]), {"a": np.array([1, 2]), "b": np.array([1, "x"], dtype=object)})
    assert info.value.field == "params.b"
    with pytest.raises(InvalidArgument):
        store.append_columns("t", np.array([1, -2]), np.array([5, 6]), {})
    with pytest.raises(InvalidArgument):
        store.append_columns("t", np.array([1, 2]), np.array([5, 6]), {"a": np.array([1.0])})
    assert store.total_events() == 0 and not store.has_type("t")


def test_large_columns_and_batches_compact_as_appends_do() -> None:
    rng = np.random.default_rng(5)
    n = 6000  # past the tail limit: tails merge into bases while loading
    contacts = rng.integers(0, 16, size=n)
    stamps = rng.integers(0, 50, size=n)
    price = np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 9, size=n).astype(np.float64))
    city = np.array([None if x == 3 else f"c{x}" for x in rng.integers(0, 4, size=n)], dtype=object)
    params = {"price": price, "city": city}
    bulk, batched, one_by_one = EventStore(shard_bits=20), EventStore(shard_bits=20), EventStore(shard_bits=20)
    bulk.append_columns("view", contacts, stamps, params)
    batch = batched.batch()
    for i in range(n):
        row = _row_params(params, i)
        one_by_one.append("view", int(contacts[i]), int(stamps[i]), flatten(row))
        batch.add("view", int(contacts[i]), int(stamps[i]), leaf_tuples(row))
    batch.commit()
    assert store_state(bulk, tails=False) == store_state(one_by_one, tails=False) == store_state(batched, tails=False)

"""core.intake against Engine.ingest: same outcomes, same state; its log records replay to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.profile_ingest import EventMaker, jsonl_block
from core import intake
from core.columnar import (
    ColumnBatch,
    ParamValues,
    column_batch,
    events_of_record,
    record_of,
)
from core.columns import Kind
from core.engine import Engine
from core.errors import InvalidArgument
from core.jsonl import jsonl_docs
from snapshots.digest import state_lines
from snapshots.wal import WriteAheadLog, decode_record, list_segments, scan_segment

NOW = 1_795_000_000_000


def _same(a: Any, b: Any, where: str = "") -> None:
    """Deep, type-aware equality of two store/contact states (numpy arrays by dtype and value)."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _assert_same_state(a: Engine, b: Engine) -> None:
    assert state_lines(a, NOW) == state_lines(b, NOW)
    _same(a.store.to_state(), b.store.to_state(), "store")
    _same(a.contacts.to_state(), b.contacts.to_state(), "contacts")
    assert a.seen_window() == b.seen_window()


def _odd_lines() -> list[bytes]:
    """Lines every batch mixes in: rejected, duplicated, system and anonymous events."""
    return [
        b"not json\n",
        b"[1, 2]\n",
        b"\n",
        json.dumps({"eventTypeKey": "x", "params": {"osType": "iOS"}}).encode() + b"\n",  # no identifier
        json.dumps({"eventTypeKey": "", "keyValue": "k"}).encode() + b"\n",
        json.dumps({"eventTypeKey": "purchase", "keyValue": "C-1", "eventId": "o-1"}).encode() + b"\n",
        json.dumps({"eventTypeKey": "stock", "system": True, "params": {"sku": "A"}}).encode() + b"\n",
        json.dumps({"eventTypeKey": "pv", "keyValue": "ck-9", "params": [{"name": "n", "value": 2**70}]}).encode()
        + b"\n",
        json.dumps({"eventTypeKey": "pv", "keyValue": "ck-9", "params": {"contactId": "999999"}}).encode() + b"\n",
    ]


def _blocks(count: int, size: int) -> list[bytes]:
    maker = EventMaker(contacts=size // 3, seed=3)
    blocks = []
    for i in range(count):
        lines = jsonl_block(maker.batch(size)).splitlines(keepends=True)
        odd = _odd_lines()
        for j, line in enumerate(odd):
            lines.insert((j * 7 + i) % len(lines), line)
        blocks.append(b"".join(lines))
    return blocks


def test_outcomes_and_state_equal_the_engines() -> None:
    plain, fast = Engine(clock=lambda: NOW), Engine(clock=lambda: NOW)
    for block in _blocks(4, 300):
        docs = jsonl_docs(block)
        expected = plain.ingest(docs)
        report, ticket = intake.ingest_prepared(fast, intake.prepare(jsonl_docs(block), block))
        ticket.wait()
        assert (report.accepted, report.duplicates, report.rejected) == (
            expected.accepted,
            expected.duplicates,
            expected.rejected,
        )
        assert report.rejected >= 5 and report.duplicates >= 1
        assert report.outcomes == expected.outcomes
    _assert_same_state(plain, fast)


def test_without_all_results_only_rejections_and_conflicts_are_listed() -> None:
    engine = Engine(clock=lambda: NOW)
    block = _blocks(1, 200)[0]
    full = Engine(clock=lambda: NOW).ingest(jsonl_docs(block))
    report, _ = intake.ingest_prepared(engine, intake.prepare(jsonl_docs(block)), all_results=False)
    assert report.outcomes == [o for o in full.outcomes if o.status == "rejected" or o.conflicts]
    assert (report.accepted, report.rejected) == (full.accepted, full.rejected)


def test_dry_run_stores_nothing_and_journals_nothing(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1, fsync_mode="none")
    engine = Engine(clock=lambda: NOW, journal=wal)
    try:
        block = _blocks(1, 50)[0]
        report, ticket = intake.ingest_prepared(engine, intake.prepare(jsonl_docs(block), block), dry_run=True)
        ticket.wait()
        assert report.accepted > 0 and engine.store.total_events() == 0 and len(engine.contacts) == 0
        assert wal.last_seq == 0
    finally:
        wal.close()


def _replayed(directory: Path) -> tuple[Engine, list[dict[str, Any]]]:
    engine = Engine(clock=lambda: NOW)
    payloads = []
    for _, path in list_segments(directory):
        for frame in scan_segment(path.read_bytes()).records:
            op, payload = decode_record(frame)
            payloads.append(payload)
            engine.replay(op, payload)
    return engine, payloads


@pytest.mark.parametrize("with_bytes", [True, False])
def test_log_records_replay_to_the_same_state(tmp_path: Path, with_bytes: bool) -> None:
    wal = WriteAheadLog(tmp_path, 1, fsync_mode="none")
    live = Engine(clock=lambda: NOW, journal=wal)
    try:
        for block in _blocks(3, 200):
            intake.ingest(live, jsonl_docs(block), jsonl=block if with_bytes else None)
    finally:
        wal.close()
    again, payloads = _replayed(tmp_path)
    _assert_same_state(live, again)
    # a record of bytes decodes to exactly the documents that were stored
    assert all("docs" in p and "jsonl" not in p for p in payloads)
    assert sum(len(p["docs"]) for p in payloads) == live.store.total_events()


# --------------------------------------------------------------------------- column batches


def _people(engine: Engine, count: int) -> None:
    docs = [{"externalId": f"C-{k}"} for k in range(1, count + 1)]
    assert engine.upsert_contacts(docs, now_ms=NOW).created == count


def _column_batch(n: int, contacts: int, seed: int) -> ColumnBatch:
    rng = np.random.default_rng(seed)
    price = rng.uniform(1, 100, n)
    price[rng.random(n) < 0.2] = np.nan  # absent
    vocab = ["iOS", "Android", "Web", "  {not json", ""]
    os_codes = rng.integers(-1, len(vocab), n).astype(np.int32)
    indoor = rng.integers(0, 3, n).astype(np.uint8)  # 2: absent
    contact = rng.integers(0, contacts + 1, n).astype(np.uint32)  # 0: system events
    ts = NOW - rng.integers(0, 86_400_000, n)
    return column_batch(
        "WorkoutStarted",
        contact,
        ts,
        [
            ParamValues("price", Kind.NUM, price),
            ParamValues("osType", Kind.STR, os_codes, vocab),
            ParamValues("device.indoor", Kind.BOOL, indoor),
        ],
    )


def test_column_batches_store_what_their_rows_as_events_store(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1, fsync_mode="none")
    live, plain = Engine(clock=lambda: NOW, journal=wal), Engine(clock=lambda: NOW)
    try:
        _people(live, 50)
        _people(plain, 50)
        for seed in range(3):
            batch = _column_batch(400, 50, seed)
            report, ticket = intake.ingest_columns(live, batch, all_results=False)
            ticket.wait()
            assert (report.accepted, report.rejected, report.outcomes) == (400, 0, [])
            plain.ingest(events_of_record(record_of(batch, np.ones(400, dtype=bool))), now_ms=NOW)
    finally:
        wal.close()
    _assert_same_state(live, plain)
    again, _ = _replayed(tmp_path)
    _assert_same_state(live, again)
    assert again.store.total_events() == 1200


def test_bad_rows_are_rejected_by_position_naming_the_field() -> None:
    engine = Engine(clock=lambda: NOW)
    _people(engine, 3)
    vocab = ["ok", '{"a": 1}', "a\ud800b", "x" * 70_000]
    batch = column_batch(
        "t",
        np.array([1, 2, 3, 9, 1, 2, 3, 0], dtype=np.uint32),
        np.array([NOW] * 6 + [10**17, NOW], dtype=np.int64),
        [
            ParamValues("n", Kind.NUM, np.array([1, np.inf, 2, 3, 4, 5, 6, 7], dtype=np.float64)),
            ParamValues("s", Kind.STR, np.array([0, 0, 1, 0, 2, 3, -1, 0], dtype=np.int32), vocab),
        ],
    )
    report, _ = intake.ingest_columns(engine, batch, all_results=True)
    fields = {o.index: o.field for o in report.outcomes if o.status == "rejected"}
    assert fields == {1: "params.n", 2: "params.s", 3: "contact_ids", 4: "params.s", 5: "params.s", 6: "timestamp"}
    assert (report.accepted, report.rejected) == (2, 6)
    accepted = [o for o in report.outcomes if o.status == "accepted"]
    assert [(o.index, o.contact_id, o.identifier) for o in accepted] == [(0, 1, "contactId:1"), (7, 0, "")]
    assert engine.store.total_events() == 2


def test_malformed_columns_refuse_the_whole_batch() -> None:
    with pytest.raises(InvalidArgument, match="one entry per event"):
        column_batch("t", np.zeros(2, np.uint32), np.zeros(2, np.int64), [ParamValues("n", Kind.NUM, np.zeros(3))])
    with pytest.raises(InvalidArgument, match="codes"):
        column_batch(
            "t", np.zeros(2, np.uint32), np.zeros(2, np.int64), [ParamValues("s", Kind.STR, np.array([0, 1]), ["a"])]
        )
    with pytest.raises(InvalidArgument, match="two columns"):
        numbers = ParamValues("n", Kind.NUM, np.zeros(2))
        column_batch("t", np.zeros(2, np.uint32), np.zeros(2, np.int64), [numbers, numbers])

"""core.intake against Engine.ingest: same outcomes, same state; its log records replay to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.profile_ingest import EventMaker, jsonl_block
from core import intake
from core.engine import Engine
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

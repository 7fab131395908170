"""The change log: sequence numbers, reads from any retained point, retention, waiting readers,
durability gating and snapshots of its state."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.changes import CAUSE_CODES, ChangeList, ChangeLog


def add(log: ChangeLog, segment: str, contacts: list[int], entered: bool = True, at_ms: int = 1000,
        cause: str = "event", position: int = 0) -> None:
    n = len(contacts)
    log.append(segment, np.array(contacts, np.uint32), np.full(n, entered), np.full(n, CAUSE_CODES[cause], np.uint8),
               at_ms, position)


def test_sequences_are_consecutive_across_chunks_and_reads_resume_exactly() -> None:
    log = ChangeLog()
    add(log, "a", [1, 2, 3])
    add(log, "b", [7], entered=False, cause="time", at_ms=2000)
    add(log, "a", [4, 5])
    assert log.last_sequence == 6 and log.first_sequence == 1 and len(log) == 6
    everything, through = log.read(0)
    assert [c.sequence for c in everything] == [1, 2, 3, 4, 5, 6] and through == 6
    assert [(c.segment, c.contact_id, c.entered, c.at_ms, c.cause) for c in everything[2:4]] == [
        ("a", 3, True, 1000, "event"), ("b", 7, False, 2000, "time")]
    # resuming after any number gives exactly the rest
    for k in range(7):
        rest, _ = log.read(k)
        assert [c.sequence for c in rest] == list(range(k + 1, 7))
    # limits split a chunk; the next read continues inside it
    first, at = log.read(0, limit=2)
    second, at = log.read(at, limit=2)
    assert [c.sequence for c in first + second] == [1, 2, 3, 4]


def test_segment_filter_skips_other_segments_but_reads_past_them() -> None:
    log = ChangeLog()
    add(log, "a", [1])
    add(log, "b", [2, 3])
    add(log, "a", [4])
    add(log, "b", [5])
    got, through = log.read(0, frozenset({"a"}))
    assert [(c.sequence, c.contact_id) for c in got] == [(1, 1), (4, 4)]
    assert through == 5  # the b change after it was looked at too
    assert log.read(through, frozenset({"a"})) == ([], 5)


def test_retention_by_count_drops_the_oldest_entries_and_keeps_numbering() -> None:
    log = ChangeLog(max_entries=4)
    add(log, "a", [1, 2, 3])
    add(log, "a", [4, 5, 6])
    assert len(log) == 4 and log.first_sequence == 3 and log.last_sequence == 6
    got, _ = log.read(0)
    assert [c.sequence for c in got] == [3, 4, 5, 6] and [c.contact_id for c in got] == [3, 4, 5, 6]
    add(log, "a", list(range(10, 20)))  # one chunk bigger than the limit keeps its newest entries
    assert log.first_sequence == 13 and [c.contact_id for c in log.read(0)[0]] == [16, 17, 18, 19]


def test_retention_by_age() -> None:
    log = ChangeLog(max_age_ms=1000)
    add(log, "a", [1], at_ms=1000)
    add(log, "a", [2], at_ms=1500)
    add(log, "a", [3], at_ms=2600)
    assert log.trim(2400) == 1  # the change at 1000 is older than 2400 - 1000
    assert [c.contact_id for c in log.read(0)[0]] == [2, 3] and log.first_sequence == 2


def test_a_waiting_reader_wakes_when_a_change_arrives() -> None:
    log = ChangeLog()
    assert log.wait(0, 0.05) is False
    started = time.monotonic()
    timer = threading.Timer(0.1, lambda: add(log, "a", [9]))
    timer.start()
    try:
        assert log.wait(0, 5.0) is True
    finally:
        timer.join()
    assert time.monotonic() - started < 4.0
    assert log.wait(1, 0.01) is False


def test_changes_wait_for_their_journal_record_to_be_written() -> None:
    written = [10]
    log = ChangeLog(durable=lambda: written[0])
    add(log, "a", [1], position=10)
    add(log, "a", [2, 3], position=11)
    assert log.published_sequence() == 1
    assert [c.sequence for c in log.read(0)[0]] == [1]
    waiter: list[bool] = []
    thread = threading.Thread(target=lambda: waiter.append(log.wait(1, 5.0)))
    thread.start()
    time.sleep(0.05)
    assert not waiter  # still gated
    written[0] = 11  # the journal wrote record 11: no new append announces it
    thread.join(5.0)
    assert waiter == [True]
    assert [c.sequence for c in log.read(1)[0]] == [2, 3]


def test_state_round_trip_continues_the_numbering() -> None:
    log = ChangeLog(max_entries=5, max_age_ms=10_000)
    add(log, "a", [1, 2, 3])
    add(log, "b", [4], entered=False, cause="definition", at_ms=1500)
    add(log, "a", [5, 6], cause="contact", at_ms=1700)  # trims sequence 1
    state = log.to_state()
    back = ChangeLog.from_state(state)
    assert back.read(0) == log.read(0)
    assert (back.first_sequence, back.last_sequence, back.max_entries, back.max_age_ms) == (2, 6, 5, 10_000)
    add(back, "a", [7])
    assert back.last_sequence == 7
    empty = ChangeLog.from_state(ChangeLog(next_sequence=40).to_state())
    assert empty.first_sequence == 40 and empty.last_sequence == 39 and empty.read(0) == ([], 0)
    broken = dict(state, chunk_sizes=np.array([1], np.int64))
    with pytest.raises(ValueError):
        ChangeLog.from_state(broken)


def test_change_list_reads_lazily_as_a_sequence() -> None:
    log = ChangeLog()
    chunks = []
    for segment, ids in (("a", [1, 2]), ("b", [3]), ("c", [4, 5, 6])):
        add(log, segment, ids)
        chunks.append(log._chunks[-1])
    changes = ChangeList(chunks)
    assert len(changes) == 6 and bool(changes)
    assert [c.contact_id for c in changes] == [1, 2, 3, 4, 5, 6]
    assert changes[2].segment == "b" and changes[-1].sequence == 6 and [c.sequence for c in changes[1:3]] == [2, 3]
    with pytest.raises(IndexError):
        changes[6]
    assert not ChangeList() and list(ChangeList()) == []

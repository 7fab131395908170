"""The write-ahead log: group commit, ordering, segment rolling, fsync modes, failure."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.errors import Unavailable
from snapshots.wal import WriteAheadLog, decode_record, list_segments, scan_segment, segment_name


class CountingSync:
    """The real fdatasync, counted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        os.fdatasync(fd)


def read_log(directory: Path) -> list[tuple[int, str, dict[str, Any]]]:
    out = []
    for base, path in list_segments(directory):
        scan = scan_segment(path.read_bytes())
        assert scan.damage is None, (path, scan.damage)
        assert scan.base_seq == base
        for frame in scan.records:
            op, payload = decode_record(frame)
            out.append((frame.seq, op, payload))
    return out


def test_concurrent_appends_are_all_in_the_file_in_order(tmp_path: Path) -> None:
    sync = CountingSync()
    wal = WriteAheadLog(tmp_path, 1, fsync=sync)
    engine_lock = threading.Lock()  # appends happen under the engine's writer lock
    applied: list[tuple[int, int]] = []  # apply order, as the engine would see it
    acked: list[tuple[int, int]] = []
    threads, per_thread = 6, 150

    def client(worker: int) -> None:
        for n in range(per_thread):
            with engine_lock:
                ticket = wal.append("ingest", {"worker": worker, "n": n, "docs": [{"k": [1, 2.5, None]}]})
                applied.append((worker, n))
            ticket.wait()
            acked.append((worker, n))

    pool = [threading.Thread(target=client, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wal.close()
    records = read_log(tmp_path)
    assert [seq for seq, _, _ in records] == list(range(1, threads * per_thread + 1))
    assert [(p["worker"], p["n"]) for _, _, p in records] == applied
    assert set(acked) == set(applied)
    assert records[0][2]["docs"] == [{"k": [1, 2.5, None]}]
    # group commit: one sync per group, far fewer than one per record
    assert 0 < sync.calls < threads * per_thread


def test_segments_roll_and_are_named_by_first_sequence(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 41, segment_bytes=600)
    for n in range(60):
        wal.append("op", {"n": n, "pad": "x" * 40}).wait()
    wal.close()
    segments = list_segments(tmp_path)
    assert len(segments) > 3
    assert segments[0][0] == 41
    assert all(path.name == segment_name(base) for base, path in segments)
    records = read_log(tmp_path)
    assert [seq for seq, _, _ in records] == list(range(41, 101))
    assert [p["n"] for _, _, p in records] == list(range(60))


def test_fsync_none_never_syncs(tmp_path: Path) -> None:
    sync = CountingSync()
    wal = WriteAheadLog(tmp_path, 1, fsync_mode="none", fsync=sync)
    for n in range(20):
        wal.append("op", {"n": n}).wait()
    wal.close()
    assert sync.calls == 0
    assert len(read_log(tmp_path)) == 20


def test_fsync_everysec_releases_before_syncing_and_syncs_within_a_second(tmp_path: Path) -> None:
    sync = CountingSync()
    wal = WriteAheadLog(tmp_path, 1, fsync_mode="everysec", fsync=sync)
    at_open = sync.calls  # the new segment's header
    for n in range(20):
        wal.append("op", {"n": n}).wait()
    assert wal.written_seq == 20
    released = sync.calls - at_open
    deadline = time.monotonic() + 3
    while sync.calls - at_open == released and time.monotonic() < deadline:
        time.sleep(0.05)
    assert released <= 1  # tickets did not wait for a sync each
    assert sync.calls - at_open >= 1
    wal.close()
    assert len(read_log(tmp_path)) == 20


def test_fsync_always_syncs_before_release(tmp_path: Path) -> None:
    sync = CountingSync()
    wal = WriteAheadLog(tmp_path, 1, fsync=sync)
    before = sync.calls
    wal.append("op", {"n": 1}).wait()
    assert sync.calls == before + 1
    wal.close()


def test_failed_fsync_fails_the_log_for_good(tmp_path: Path) -> None:
    # A disk failure cannot be produced on demand here: the injected sync reports EIO once.
    calls: list[int] = []

    def failing_sync(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 1:  # the segment header's sync succeeds
            raise OSError(errno.EIO, "Input/output error")

    wal = WriteAheadLog(tmp_path, 1, fsync=failing_sync)
    ticket = wal.append("op", {"n": 1})
    with pytest.raises(Unavailable, match="storage failed"):
        ticket.wait()
    with pytest.raises(Unavailable, match="storage failed"):
        wal.append("op", {"n": 2})
    assert wal.failed is not None and "Input/output error" in wal.failed
    wal.close()
    assert len(calls) == 2  # never retried


def test_failed_write_fails_waiting_and_later_writes(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1)
    wal.append("op", {"n": 1}).wait()
    os.close(wal._fd)  # the file descriptor goes away under the log: writes fail with EBADF
    ticket = wal.append("op", {"n": 2})
    with pytest.raises(Unavailable, match="storage failed"):
        ticket.wait()
    with pytest.raises(Unavailable):
        wal.append("op", {"n": 3})
    wal._fd = -1
    wal.close()
    assert [seq for seq, _, _ in read_log(tmp_path)] == [1]


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1)
    wal.append("op", {}).wait()
    wal.close()
    with pytest.raises(Unavailable, match="closed"):
        wal.append("op", {})
    assert wal.last_seq == 1


def test_sync_waits_for_everything_appended(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1, fsync_mode="none")
    for n in range(50):
        wal.append("op", {"n": n})
    wal.sync()
    assert wal.written_seq == 50
    wal.close()


def test_unencodable_record_fails_the_log(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1)
    wal.append("op", {"n": 1}).wait()
    with pytest.raises(Unavailable, match="cannot be encoded"):
        wal.append("op", {"bad": object()})
    with pytest.raises(Unavailable, match="storage failed"):
        wal.append("op", {"n": 2})
    wal.close()
    assert [seq for seq, _, _ in read_log(tmp_path)] == [1]

"""The write-ahead log: the engine's journal, with group commit.

`append` runs under the engine's writer lock: it gives the record the next sequence number,
encodes it and queues it. One writer thread takes everything queued, writes it with one
write() and (in `always` mode) one fdatasync, then releases the tickets of that group.

Invariants:
- sequence numbers are consecutive from the first record of the log; a segment file is named
  by its first record's number and holds consecutive records after its header;
- a ticket is released only after its record is written (and, in `always` mode, synced);
- after a failed write or sync the log is failed for good: waiting tickets and every later
  append raise Unavailable, and nothing is retried as if it had worked.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import msgpack

from core.columnar import events_of_record
from core.errors import InvalidArgument, Unavailable
from core.jsonl import RECORD_BYTES, RECORD_COLUMNS, RECORD_SKIP, jsonl_docs
from snapshots.crash import crash_point
from snapshots.frames import (
    FILE_HEADER_BYTES,
    KIND_RECORD,
    WAL_MAGIC,
    Frame,
    FrameError,
    decode_file_header,
    decode_frame,
    encode_file_header,
    encode_frame,
    find_frame,
)

log = logging.getLogger(__name__)

FSYNC_MODES = ("always", "everysec", "none")
SEGMENT_BYTES = 64 * 1024 * 1024
EVERYSEC_S = 1.0
_PREFIX, _SUFFIX = "wal-", ".log"


def segment_name(first_seq: int) -> str:
    """File name of the log segment whose first record is `first_seq`."""
    return f"{_PREFIX}{first_seq:020d}{_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first sequence number, path) of every log segment in `directory`, in order."""
    found = []
    for path in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        digits = path.name[len(_PREFIX) : -len(_SUFFIX)]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def fsync_directory(directory: Path) -> None:
    """Makes creations, renames and deletions in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    raise TypeError(f"cannot journal a {type(value).__name__}")


def encode_record(seq: int, op: str, payload: Mapping[str, Any]) -> bytes:
    """One framed log record: msgpack [op, payload] under sequence number `seq`."""
    body = msgpack.packb([op, payload], use_bin_type=True, default=_plain)
    return encode_frame(KIND_RECORD, seq, body)


def decode_record(frame: Frame) -> tuple[str, dict[str, Any]]:
    """(op, payload) of a record frame; raises FrameError if the body is not a record.

    An "ingest" record that holds a request's JSON Lines bytes (core/intake.py) comes back
    as the usual one with its stored documents: the bytes decoded by `jsonl_docs`, the
    positions it lists as not stored left out. One that holds a column batch comes back
    with its rows as events tied to their contacts (core/columnar.py).
    """
    try:
        op, payload = msgpack.unpackb(frame.payload, raw=False, strict_map_key=False)
    except Exception as exc:  # any malformed body is damage, whatever msgpack calls it
        raise FrameError(frame.offset, f"record {frame.seq} does not decode: {exc}") from None
    if not isinstance(op, str) or not isinstance(payload, dict):
        raise FrameError(frame.offset, f"record {frame.seq} is not [op, payload]")
    if op == "ingest" and RECORD_BYTES in payload:
        payload = _jsonl_payload(frame, payload)
    elif op == "ingest" and RECORD_COLUMNS in payload:
        payload = _columns_payload(frame, payload)
    return op, payload


def _columns_payload(frame: Frame, payload: dict[str, Any]) -> dict[str, Any]:
    """The events an "ingest" record of a column batch stored, each tied to its contact."""
    try:
        events = events_of_record(payload[RECORD_COLUMNS])
    except (InvalidArgument, KeyError, TypeError, ValueError) as exc:
        raise FrameError(frame.offset, f"record {frame.seq} holds no column batch: {exc}") from None
    return {"now_ms": payload["now_ms"], "docs": events}


def _jsonl_payload(frame: Frame, payload: dict[str, Any]) -> dict[str, Any]:
    """The documents an "ingest" record of JSON Lines bytes stored, in order."""
    data, skip = payload[RECORD_BYTES], payload.get(RECORD_SKIP, [])
    if not isinstance(data, bytes) or not isinstance(skip, list):
        raise FrameError(frame.offset, f"record {frame.seq} holds no JSON Lines bytes")
    docs = jsonl_docs(data)
    left_out = set(skip)
    kept = [doc for i, doc in enumerate(docs) if i not in left_out]
    if len(docs) - len(kept) != len(left_out) or any(not isinstance(doc, dict) for doc in kept):
        raise FrameError(frame.offset, f"record {frame.seq}: its positions do not match its JSON Lines")
    return {"now_ms": payload["now_ms"], "docs": kept}


@dataclass(slots=True)
class SegmentScan:
    """What a log segment holds: its valid records in order, and the first damage if any."""

    base_seq: int | None
    records: list[Frame] = field(default_factory=list)
    damage: FrameError | None = None
    valid_after_damage: bool = False  # a valid record follows the damage: not a torn tail
    valid_bytes: int = 0  # length of the undamaged prefix (header + whole records)


def scan_segment(data: bytes) -> SegmentScan:
    """Decodes a segment's bytes up to the first damaged or out-of-sequence record."""
    try:
        header = decode_file_header(data, WAL_MAGIC)
    except FrameError as exc:
        after = find_frame(data, 0, KIND_RECORD) is not None
        return SegmentScan(None, damage=exc, valid_after_damage=after)
    scan = SegmentScan(header.seq, valid_bytes=FILE_HEADER_BYTES)
    offset, expected = FILE_HEADER_BYTES, header.seq
    while offset < len(data):
        try:
            frame = decode_frame(data, offset)
            if frame.kind != KIND_RECORD:
                raise FrameError(offset, f"frame kind {frame.kind} in a log segment")
            if frame.seq != expected:
                scan.damage = FrameError(offset, f"sequence gap: expected record {expected}, found {frame.seq}")
                scan.valid_after_damage = True
                return scan
        except FrameError as exc:
            scan.damage = exc
            scan.valid_after_damage = find_frame(data, offset + 1, KIND_RECORD) is not None
            return scan
        scan.records.append(frame)
        offset, expected = frame.end, expected + 1
        scan.valid_bytes = offset
    return scan


class _Group:
    """The tickets released together by one write (+ sync)."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None


class WalTicket:
    """Returned by `append`; `wait` returns once the record is durable per the fsync mode."""

    __slots__ = ("seq", "_group")

    def __init__(self, seq: int, group: _Group) -> None:
        self.seq = seq
        self._group = group

    def wait(self) -> None:
        self._group.done.wait()
        if self._group.error is not None:
            raise Unavailable(f"storage failed: {self._group.error}")


class WriteAheadLog:
    """Appends records to segment files in `directory`, starting at sequence `next_seq`."""

    def __init__(
        self,
        directory: Path,
        next_seq: int,
        *,
        fsync_mode: str = "always",
        segment_bytes: int = SEGMENT_BYTES,
        fsync: Callable[[int], None] = os.fdatasync,
    ) -> None:
        if fsync_mode not in FSYNC_MODES:
            raise InvalidArgument("fsync", f"must be one of {', '.join(FSYNC_MODES)}, not {fsync_mode!r}")
        self.directory = directory
        self.fsync_mode = fsync_mode
        self.segment_bytes = segment_bytes
        self._fsync = fsync
        self._cond = threading.Condition()
        self._queue: list[bytes] = []
        self._queue_first = next_seq  # sequence number of _queue[0]
        self._group = _Group()
        self._next_seq = next_seq
        self._written_seq = next_seq - 1  # last record written (and synced in always mode)
        self._appended_bytes = 0
        self._failed: str | None = None
        self._closing = False
        self._fd = -1
        self._segment_path = directory
        self._file_bytes = 0
        self._dirty = False  # written but not yet synced (everysec)
        self._last_sync = time.monotonic()
        self._open_segment(next_seq)
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- appending

    def append(self, op: str, payload: dict[str, Any]) -> WalTicket:
        """Queues one record; raises Unavailable once the log has failed or closed."""
        with self._cond:
            if self._failed is not None:
                raise Unavailable(f"storage failed: {self._failed}")
            if self._closing:
                raise Unavailable("the write-ahead log is closed")
            seq = self._next_seq
            try:
                record = encode_record(seq, op, payload)
            except (TypeError, ValueError, FrameError) as exc:
                # The engine has applied this write already: without its record the log would
                # no longer replay to the state in memory, so the log stops taking writes.
                self._fail_locked(f"record {seq} ({op}) cannot be encoded: {exc}")
                raise Unavailable(f"storage failed: {self._failed}") from None
            self._next_seq = seq + 1
            self._queue.append(record)
            self._appended_bytes += len(record)
            ticket = WalTicket(seq, self._group)
            self._cond.notify()
        return ticket

    @property
    def last_seq(self) -> int:
        """Sequence number of the last record appended (0 before the first)."""
        return self._next_seq - 1

    @property
    def written_seq(self) -> int:
        """Last record written (and synced, in `always` mode)."""
        return self._written_seq

    @property
    def appended_bytes(self) -> int:
        """Bytes of records appended since this log was opened."""
        return self._appended_bytes

    @property
    def failed(self) -> str | None:
        """Why the log failed, or None while it works."""
        return self._failed

    def sync(self) -> None:
        """Waits until everything appended so far is written and synced (unless mode `none`)."""
        with self._cond:
            target = self._next_seq - 1
            while self._written_seq < target and self._failed is None:
                self._cond.wait(0.05)
            if self._failed is not None:
                raise Unavailable(f"storage failed: {self._failed}")
            if self.fsync_mode == "everysec" and self._dirty:
                self._sync_or_fail()
                if self._failed is not None:
                    raise Unavailable(f"storage failed: {self._failed}")

    def close(self) -> None:
        """Writes what is queued, syncs (unless mode `none`), stops the writer, closes the file."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        with self._cond:
            if self._fd >= 0:
                if self._dirty and self._failed is None and self.fsync_mode != "none":
                    self._sync_locked()
                os.close(self._fd)
                self._fd = -1

    # ---------------------------------------------------------------- writer thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing and not self._sync_due():
                    self._cond.wait(self._wait_s())
                if self._failed is not None:
                    return
                if not self._queue:
                    if self._sync_due():
                        self._sync_or_fail()
                        continue
                    return  # closing, nothing left
                batch, first = self._queue, self._queue_first
                group = self._group
                self._queue, self._queue_first = [], first + len(batch)
                self._group = _Group()
            if not self._write_group(batch, first, group):
                return

    def _wait_s(self) -> float | None:
        if self.fsync_mode == "everysec" and self._dirty:
            return max(0.0, EVERYSEC_S - (time.monotonic() - self._last_sync))
        return None

    def _sync_due(self) -> bool:
        return self.fsync_mode == "everysec" and self._dirty and time.monotonic() - self._last_sync >= EVERYSEC_S

    def _write_group(self, batch: list[bytes], first: int, group: _Group) -> bool:
        try:
            if self._file_bytes >= self.segment_bytes:
                self._roll(first)
            crash_point("wal.before_write")
            data = b"".join(batch)
            self._write_all(data)
            crash_point("wal.after_write_before_sync")
            if self.fsync_mode == "always":
                self._fsync(self._fd)
                crash_point("wal.after_sync")
            else:
                self._dirty = True
        except OSError as exc:
            self._fail(f"{exc.strerror or exc} ({self._segment_path.name})", group)
            return False
        with self._cond:
            self._written_seq = first + len(batch) - 1
            self._cond.notify_all()
        group.done.set()
        return True

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._file_bytes += written

    def _sync_or_fail(self) -> None:
        try:
            self._sync_locked()
        except OSError as exc:
            self._fail_locked(f"{exc.strerror or exc} ({self._segment_path.name})")

    def _sync_locked(self) -> None:
        self._fsync(self._fd)
        self._dirty = False
        self._last_sync = time.monotonic()

    def _fail(self, reason: str, group: _Group) -> None:
        with self._cond:
            self._fail_locked(reason)
        group.error = self._failed
        group.done.set()

    def _fail_locked(self, reason: str) -> None:
        if self._failed is None:
            log.error("write-ahead log failed, no further writes are acknowledged: %s", reason)
            self._failed = reason
        self._group.error = self._failed
        self._group.done.set()
        self._cond.notify_all()

    # ---------------------------------------------------------------- segment files

    def _open_segment(self, first_seq: int) -> None:
        path = self.directory / segment_name(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._fd, self._segment_path, self._file_bytes = fd, path, 0
        self._write_all(encode_file_header(WAL_MAGIC, first_seq))
        if self.fsync_mode != "none":
            self._fsync(fd)
            fsync_directory(self.directory)

    def _roll(self, first_seq: int) -> None:
        with self._cond:  # sync() may fsync the current file from another thread
            if self._dirty and self.fsync_mode != "none":
                self._sync_locked()
            os.close(self._fd)
            self._fd = -1
            self._open_segment(first_seq)

"""A durable engine: recovery at start, the log as journal, snapshots, clean shutdown.

Data directory layout::

    LOCK                           held (flock) by the one process serving the directory
    MANIFEST                       current snapshot + where the log resumes (the commit point)
    snap-<seq>.snap                snapshots, named by the last sequence number they cover
    wal-<first seq>.log            log segments, named by their first record's sequence number

Retention: after a snapshot commits, the current and the previous snapshot are kept, and the
log from the previous snapshot on, so a forced recovery can fall back to the previous snapshot
without losing records. Older snapshots and wholly covered log segments are removed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from core.engine import Engine
from core.errors import FailedPrecondition, Unavailable
from snapshots.crash import crash_point
from snapshots.image import capture, to_tree
from snapshots.manifest import Manifest, write_manifest
from snapshots.recovery import RecoveryReport, recover
from snapshots.snapshot import list_snapshots, snapshot_name, write_snapshot
from snapshots.wal import SEGMENT_BYTES, WriteAheadLog, fsync_directory, list_segments

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_BYTES = 256 * 1024 * 1024  # log bytes since the last snapshot
SNAPSHOT_EVERY_S = 3600.0  # seconds since the last snapshot (if anything was written)
_TRIGGER_POLL_S = 0.25


class Durability:
    """Owns the log and the snapshots of one data directory; see `open_durable`."""

    def __init__(
        self,
        data_dir: Path,
        engine: Engine,
        wal: WriteAheadLog,
        report: RecoveryReport,
        lock_fd: int,
        *,
        snapshot_every_bytes: int = SNAPSHOT_EVERY_BYTES,
        snapshot_every_s: float = SNAPSHOT_EVERY_S,
    ) -> None:
        self.data_dir = data_dir
        self.engine = engine
        self.wal = wal
        self.recovery = report
        self.snapshot_every_bytes = snapshot_every_bytes
        self.snapshot_every_s = snapshot_every_s
        self._manifest = report.manifest
        self._lock_fd = lock_fd
        self._snapshot_lock = threading.Lock()  # one snapshot at a time
        self._last_bytes = 0  # wal.appended_bytes at the last snapshot's cut
        self._last_time = time.monotonic()
        self._last_seq = report.snapshot_seq
        self.last_snapshot: tuple[str, int, float] | None = None
        self._closed = False
        self._stop = threading.Event()
        self._trigger = threading.Thread(target=self._run_trigger, name="snapshot-trigger", daemon=True)
        self._trigger.start()

    # ---------------------------------------------------------------- snapshots

    def snapshot_now(self, *, rewrite: bool = False) -> tuple[str, int, float]:
        """Takes and commits a snapshot; returns (path, bytes, seconds).

        Without `rewrite`, a snapshot already covering the current log position is reused.
        """
        with self._snapshot_lock:
            if self._closed:
                raise Unavailable("the durability layer is closed")
            if self.wal.failed is not None:
                raise Unavailable(f"storage failed: {self.wal.failed}")
            started = time.perf_counter()
            appended = self.wal.appended_bytes
            cut = capture(self.engine, lambda: self.wal.last_seq)
            current = self._manifest
            if (
                not rewrite
                and current is not None
                and current.seq == cut.seq
                and (self.data_dir / current.snapshot).exists()
            ):
                path = self.data_dir / current.snapshot
                result = (str(path), path.stat().st_size, time.perf_counter() - started)
                self.last_snapshot = result
                return result  # nothing was written since: the current snapshot is this one
            try:
                written = write_snapshot(self.data_dir, cut.seq, to_tree(cut))
                del cut
                if current is None:
                    previous, previous_seq = None, None
                elif current.seq == written.seq:  # rewritten at the same position: keep its fallback
                    previous, previous_seq = current.previous, current.previous_seq
                else:
                    previous, previous_seq = current.snapshot, current.seq
                manifest = Manifest(written.path.name, written.seq, previous, previous_seq)
                write_manifest(self.data_dir, manifest)
            except OSError as exc:
                log.error("snapshot failed: %s", exc)
                _remove_temp_files(self.data_dir)
                raise Unavailable(f"snapshot failed: {exc.strerror or exc}") from None
            self._manifest = manifest
            self._last_bytes, self._last_time, self._last_seq = appended, time.monotonic(), written.seq
            self._remove_obsolete(manifest)
            seconds = time.perf_counter() - started
            log.info("snapshot %s: %d bytes, seq %d, %.2fs", written.path.name, written.bytes, written.seq, seconds)
            self.last_snapshot = (str(written.path), written.bytes, seconds)
            return self.last_snapshot

    def _remove_obsolete(self, manifest: Manifest) -> None:
        """Snapshots older than the previous one, and log segments the previous one covers."""
        keep = {manifest.snapshot, manifest.previous}
        for _, path in list_snapshots(self.data_dir):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                crash_point("cleanup.mid")
        covered = manifest.previous_seq
        if covered is not None:
            segments = list_segments(self.data_dir)
            for (_, path), (next_base, _) in zip(segments, segments[1:]):
                if next_base <= covered + 1:  # every record of it is <= covered
                    path.unlink(missing_ok=True)
                    crash_point("cleanup.mid")
        fsync_directory(self.data_dir)

    def _snapshot_due(self) -> bool:
        if self.wal.last_seq == self._last_seq:
            return False
        if self.snapshot_every_bytes and self.wal.appended_bytes - self._last_bytes >= self.snapshot_every_bytes:
            return True
        return bool(self.snapshot_every_s) and time.monotonic() - self._last_time >= self.snapshot_every_s

    def _run_trigger(self) -> None:
        while not self._stop.wait(_TRIGGER_POLL_S):
            if self.wal.failed is not None or not self._snapshot_due():
                continue
            try:
                self.snapshot_now()
            except Exception:  # keep serving; the next trigger tries again
                log.exception("background snapshot failed")

    # ---------------------------------------------------------------- shutdown

    def close(self, *, snapshot: bool = True) -> None:
        """Stops triggers, takes a final snapshot (if anything changed), drains and closes the log."""
        if self._closed:
            return
        self._stop.set()
        self._trigger.join()
        try:
            if snapshot and self.wal.failed is None and self.wal.last_seq != self._last_seq:
                self.snapshot_now()
        finally:
            with self._snapshot_lock:
                self._closed = True
            self.wal.close()
            os.close(self._lock_fd)


def _remove_temp_files(data_dir: Path) -> None:
    for path in data_dir.glob("*.tmp"):
        path.unlink(missing_ok=True)


def _lock_directory(data_dir: Path) -> int:
    fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FailedPrecondition(f"data directory {data_dir} is in use by another process") from None
    return fd


def open_durable(
    data_dir: Path,
    *,
    fsync: str = "always",
    force_recovery: bool = False,
    clock: Callable[[], int] | None = None,
    shard_bits: int = 20,
    snapshot_every_bytes: int = SNAPSHOT_EVERY_BYTES,
    snapshot_every_s: float = SNAPSHOT_EVERY_S,
    segment_bytes: int = SEGMENT_BYTES,
    fsync_fn: Callable[[int], None] = os.fdatasync,
    engine: Engine | None = None,
) -> tuple[Engine, Durability]:
    """Recovers the engine stored in `data_dir` and attaches the log as its journal.

    `engine`: an empty engine to recover into (a server builds it first so that health checks
    answer NOT_SERVING during recovery); by default a new one with `clock` and `shard_bits`.
    `fsync_fn` replaces fdatasync for the log (tests that simulate a failing disk).
    Raises RecoveryError (naming file and offset) on damage other than a torn log tail,
    unless `force_recovery`; FailedPrecondition if another process holds the directory.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = _lock_directory(data_dir)
    try:
        _remove_temp_files(data_dir)
        if engine is None:
            engine = Engine(clock=clock, shard_bits=shard_bits)
        report = recover(data_dir, engine, force=force_recovery)
        wal = WriteAheadLog(
            data_dir, report.next_seq, fsync_mode=fsync, segment_bytes=segment_bytes, fsync=fsync_fn
        )
    except BaseException:
        os.close(lock_fd)
        raise
    engine.journal = wal
    durability = Durability(
        data_dir,
        engine,
        wal,
        report,
        lock_fd,
        snapshot_every_bytes=snapshot_every_bytes,
        snapshot_every_s=snapshot_every_s,
    )
    if report.needs_snapshot:
        path, size, seconds = durability.snapshot_now(rewrite=True)
        log.warning("forced recovery committed snapshot %s (%d bytes, %.2fs)", path, size, seconds)
    return engine, durability

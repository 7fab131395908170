"""Recovery: the snapshot the MANIFEST names, then every log record after it.

A torn tail of the last log segment (incomplete or checksum-failing final records with nothing
valid after them) is cut off and logged. Any other damage (MANIFEST, snapshot, a record in the
middle of the log, a gap in sequence numbers) raises RecoveryError naming the file and byte
offset, unless `force`: then the previous snapshot (or, failing that, any readable one) and
the log up to the damage are used, and what was lost is logged and reported.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.engine import Engine
from snapshots.frames import FILE_HEADER_BYTES, FrameError, RecoveryError
from snapshots.image import ImageError, reset, restore
from snapshots.manifest import Manifest, read_manifest
from snapshots.snapshot import SnapshotReader, list_snapshots
from snapshots.wal import decode_record, fsync_directory, list_segments, scan_segment

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RecoveryReport:
    """What recovery found and did."""

    manifest: Manifest | None = None
    snapshot: Path | None = None  # the snapshot loaded, None: started empty
    snapshot_seq: int = 0
    replayed: int = 0  # log records applied after the snapshot
    next_seq: int = 1  # sequence number the log continues with
    truncated: list[str] = field(default_factory=list)  # torn tails cut off
    lost: list[str] = field(default_factory=list)  # damage skipped under force
    seconds: float = 0.0

    @property
    def needs_snapshot(self) -> bool:
        """Forced recovery left the MANIFEST or the log behind the state: commit a snapshot."""
        return bool(self.lost)


def recover(data_dir: Path, engine: Engine, *, force: bool = False) -> RecoveryReport:
    """Loads the recovered state of `data_dir` into `engine` (empty, with a null journal)."""
    started = time.perf_counter()
    report = RecoveryReport()
    _load_snapshot(data_dir, engine, force, report)
    _replay_log(data_dir, engine, force, report)
    report.seconds = time.perf_counter() - started
    log.info(
        "recovered %s: snapshot %s (seq %d), %d log records replayed in %.2fs",
        data_dir,
        report.snapshot.name if report.snapshot else "none",
        report.snapshot_seq,
        report.replayed,
        report.seconds,
    )
    return report


def _lose(report: RecoveryReport, what: str) -> None:
    log.error("forced recovery: %s", what)
    report.lost.append(what)


def _load_snapshot(data_dir: Path, engine: Engine, force: bool, report: RecoveryReport) -> None:
    candidates: list[tuple[str, int]] = []
    try:
        manifest = read_manifest(data_dir)
    except RecoveryError as exc:
        if not force:
            raise
        _lose(report, f"MANIFEST unreadable ({exc}); trying every snapshot file, newest first")
        candidates = [(path.name, seq) for seq, path in reversed(list_snapshots(data_dir))]
    else:
        report.manifest = manifest
        if manifest is not None:
            candidates.append((manifest.snapshot, manifest.seq))
            if manifest.previous is not None and manifest.previous_seq is not None:
                candidates.append((manifest.previous, manifest.previous_seq))
    for index, (name, seq) in enumerate(candidates):
        path = data_dir / name
        try:
            _load_one(engine, path, seq)
        except RecoveryError as exc:
            reset(engine)  # a failed restore may have left part of the state behind
            # Only the current snapshot is required; the previous one is a fallback for force.
            if not force:
                raise
            _lose(report, f"snapshot unusable: {exc}")
            continue
        if index > 0:
            log.warning("forced recovery: using older snapshot %s (seq %d)", name, seq)
        report.snapshot, report.snapshot_seq = path, seq
        return
    if candidates:
        _lose(report, "no usable snapshot; starting from an empty state and the log from sequence 1")


def _load_one(engine: Engine, path: Path, seq: int) -> None:
    if not path.exists():
        raise RecoveryError(path, 0, "snapshot named by the MANIFEST does not exist")
    with SnapshotReader(path) as snapshot:
        if snapshot.seq != seq:
            snapshot.finish()  # damage is reported before a disagreement with the MANIFEST
            raise RecoveryError(path, 12, f"snapshot covers sequence {snapshot.seq}, the MANIFEST says {seq}")
        try:
            restore(engine, snapshot.tree, snapshot)
        except ImageError as exc:
            snapshot.finish()  # damage is reported before what it made unrestorable
            raise RecoveryError(path, 0, str(exc)) from None
        snapshot.finish()


def _replay_log(data_dir: Path, engine: Engine, force: bool, report: RecoveryReport) -> None:
    expected = report.snapshot_seq + 1  # the next record to apply
    segments = list_segments(data_dir)
    for index, (base, path) in enumerate(segments):
        last = index == len(segments) - 1
        if not last and segments[index + 1][0] <= expected:
            continue  # every record here precedes the snapshot
        if base > expected:
            damage = RecoveryError(path, 0, f"log gap: records {expected}..{base - 1} are missing")
            if not force:
                raise damage
            _lose(report, f"{damage}; the log from there on is skipped")
            _set_aside(data_dir, segments[index:])
            break
        expected, stop = _replay_segment(data_dir, engine, path, base, last, expected, force, report)
        if stop:
            _set_aside(data_dir, segments[index + 1 :])
            break
    report.next_seq = expected
    _drop_empty_last_segment(data_dir, expected)


def _replay_segment(
    data_dir: Path,
    engine: Engine,
    path: Path,
    base: int,
    last: bool,
    expected: int,
    force: bool,
    report: RecoveryReport,
) -> tuple[int, bool]:
    """Applies the needed records of one segment; returns (next expected seq, stop here)."""
    data = path.read_bytes()
    scan = scan_segment(data)
    if scan.base_seq is not None and scan.base_seq != base:
        scan.damage = FrameError(12, f"segment header says it starts at {scan.base_seq}, its name says {base}")
        scan.valid_after_damage, scan.records = True, []
    for frame in scan.records:
        if frame.seq < expected:
            continue
        try:
            op, payload = decode_record(frame)
        except FrameError as exc:
            scan.damage, scan.valid_after_damage = exc, True
            break
        try:
            engine.replay(op, payload)
        except Exception as exc:  # a record the engine refuses means the files disagree
            reason = f"record {frame.seq} ({op}) cannot be replayed: {type(exc).__name__}: {exc}"
            scan.damage, scan.valid_after_damage = FrameError(frame.offset, reason), True
            break
        expected = frame.seq + 1
        report.replayed += 1
    if scan.damage is None:
        return expected, False
    if last and not scan.valid_after_damage:
        _cut_torn_tail(path, scan.base_seq is not None, scan.valid_bytes, len(data), scan.damage, report)
        return expected, False
    damage = scan.damage.at(path)
    if not force:
        raise damage
    _lose(report, f"{damage}; records from sequence {expected} on are skipped")
    keep = scan.damage.offset if scan.damage.offset >= FILE_HEADER_BYTES else 0
    _keep_valid_prefix(data_dir, path, data[:keep])
    return expected, True


def _cut_torn_tail(path: Path, header_ok: bool, keep: int, size: int, damage: FrameError, report: RecoveryReport) -> None:
    what = f"{path} at byte {damage.offset}: {damage.reason}"
    if not header_ok:
        path.unlink()
        fsync_directory(path.parent)
        message = f"torn log segment removed ({what}, {size} bytes)"
    else:
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
        message = f"torn log tail cut off: {what}; {size - keep} bytes dropped"
    log.warning(message)
    report.truncated.append(message)


def _keep_valid_prefix(data_dir: Path, path: Path, prefix: bytes) -> None:
    """Under force: the damaged segment is kept as *.damaged and its valid prefix replaces it."""
    os.replace(path, path.with_name(path.name + ".damaged"))
    if prefix:
        temp = path.with_name(path.name + ".tmp")
        with open(temp, "wb") as out:
            out.write(prefix)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    fsync_directory(data_dir)


def _set_aside(data_dir: Path, segments: list[tuple[int, Path]]) -> None:
    """Under force: log segments after the damage are renamed *.damaged, never deleted."""
    for _, path in segments:
        os.replace(path, path.with_name(path.name + ".damaged"))
    if segments:
        fsync_directory(data_dir)


def _drop_empty_last_segment(data_dir: Path, next_seq: int) -> None:
    """A segment holding no record, named by the next sequence, is removed so the log can start it."""
    segments = list_segments(data_dir)
    if segments and segments[-1][0] >= next_seq:
        base, path = segments[-1]
        if not scan_segment(path.read_bytes()).records:
            path.unlink()
            fsync_directory(data_dir)

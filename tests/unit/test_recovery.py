"""Recovery of a data directory: snapshot + log replay, torn tails, refusals, forced recovery."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import pytest

from core.engine import Engine
from core.errors import FailedPrecondition, NotFound, Unavailable
from snapshots.digest import state_digest
from snapshots.durable import Durability, open_durable
from snapshots.frames import FILE_HEADER_BYTES, RecoveryError
from snapshots.manifest import MANIFEST_NAME, read_manifest
from snapshots.snapshot import list_snapshots, snapshot_name
from snapshots.wal import list_segments, scan_segment
from tests.data.workload import BASE_MS, StepClock, run, steps

AT = BASE_MS + 3_600_000  # the instant digests evaluate segments at
STEPS = len(steps())


@lru_cache(maxsize=None)
def model_digest(count: int) -> str:
    """Digest of an engine that applied the first `count` steps without any durability."""
    clock = StepClock()
    engine = Engine(clock=clock)
    run(engine, clock, count)
    return state_digest(engine, AT)


def open_dir(path: Path, **options: object) -> tuple[Engine, Durability, StepClock]:
    clock = StepClock()
    engine, durability = open_durable(path, clock=clock, **options)  # type: ignore[arg-type]
    return engine, durability, clock


def populate(path: Path, *, snapshot_after: tuple[int, ...] = (), **options: object) -> None:
    """Runs the workload on a durable engine in `path`, snapshotting after the given steps, and
    stops without a final snapshot (as a crash after the last acknowledgement would)."""
    engine, durability, clock = open_dir(path, **options)
    for index, step in enumerate(steps()):
        clock.now_ms = BASE_MS + index * 60_000
        step(engine)
        if index + 1 in snapshot_after:
            durability.snapshot_now()
    durability.close(snapshot=False)


def reopen_digest(path: Path, **options: object) -> tuple[str, Durability]:
    engine, durability, _ = open_dir(path, **options)
    digest = state_digest(engine, AT)
    durability.close(snapshot=False)
    return digest, durability


def overwrite(path: Path, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate(len(data))


def test_log_only_recovery_replays_every_record(tmp_path: Path) -> None:
    populate(tmp_path)
    digest, durability = reopen_digest(tmp_path)
    assert digest == model_digest(STEPS)
    assert durability.recovery.replayed == STEPS
    assert durability.recovery.snapshot is None


def test_snapshot_then_log(tmp_path: Path) -> None:
    populate(tmp_path, snapshot_after=(5, 11))
    digest, durability = reopen_digest(tmp_path)
    assert digest == model_digest(STEPS)
    assert durability.recovery.snapshot == tmp_path / snapshot_name(11)
    assert durability.recovery.replayed == STEPS - 11


def test_clean_close_takes_a_final_snapshot(tmp_path: Path) -> None:
    engine, durability, clock = open_dir(tmp_path)
    run(engine, clock)
    durability.close()
    digest, again = reopen_digest(tmp_path)
    assert digest == model_digest(STEPS)
    assert again.recovery.replayed == 0
    assert again.recovery.snapshot_seq == STEPS


def test_torn_tail_is_cut_off_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    populate(tmp_path)
    _, last = list_segments(tmp_path)[-1]
    good = last.read_bytes()
    records = scan_segment(good).records
    # the last record half written, then zeros a filesystem could leave behind
    overwrite(last, good[: records[-1].offset + 11] + bytes(300))
    with caplog.at_level(logging.WARNING, logger="snapshots.recovery"):
        digest, durability = reopen_digest(tmp_path)
    assert digest == model_digest(STEPS - 1)
    assert durability.recovery.truncated and str(last) in durability.recovery.truncated[0]
    assert any("torn log tail" in r.message for r in caplog.records)
    assert last.stat().st_size == records[-1].offset
    # the log continues after the cut, and the next start finds nothing to cut
    engine, durability, clock = open_dir(tmp_path)
    clock.now_ms = BASE_MS + (STEPS - 1) * 60_000
    steps()[-1](engine)
    durability.close(snapshot=False)
    digest, durability = reopen_digest(tmp_path)
    assert digest == model_digest(STEPS)
    assert not durability.recovery.truncated


def test_damage_in_the_middle_names_file_and_offset(tmp_path: Path) -> None:
    populate(tmp_path)
    _, last = list_segments(tmp_path)[-1]
    data = bytearray(last.read_bytes())
    target = scan_segment(bytes(data)).records[3]
    data[target.offset + 25] ^= 0x04
    overwrite(last, bytes(data))
    with pytest.raises(RecoveryError) as info:
        open_dir(tmp_path)
    assert info.value.path == str(last)
    assert info.value.offset == target.offset
    assert str(last) in str(info.value) and f"byte {target.offset}" in str(info.value)


def test_forced_recovery_keeps_the_prefix_and_sets_the_rest_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    populate(tmp_path, segment_bytes=700)
    segments = list_segments(tmp_path)
    assert len(segments) > 3
    base, victim = segments[1]
    data = bytearray(victim.read_bytes())
    data[FILE_HEADER_BYTES + 30] ^= 0xFF  # first record of the second segment
    overwrite(victim, bytes(data))
    with pytest.raises(RecoveryError) as info:
        open_dir(tmp_path)
    assert (info.value.path, info.value.offset) == (str(victim), FILE_HEADER_BYTES)
    with caplog.at_level(logging.ERROR, logger="snapshots.recovery"):
        digest, durability = reopen_digest(tmp_path, force_recovery=True)
    assert digest == model_digest(base - 1)
    assert durability.recovery.lost
    assert any("forced recovery" in r.message for r in caplog.records)
    assert (tmp_path / (victim.name + ".damaged")).exists()
    # the forced start committed a snapshot; an ordinary start now works and keeps that state
    digest_again, again = reopen_digest(tmp_path)
    assert digest_again == digest
    assert not again.recovery.lost


def test_a_missing_segment_is_a_gap(tmp_path: Path) -> None:
    populate(tmp_path, segment_bytes=700)
    segments = list_segments(tmp_path)
    base, missing = segments[2]
    missing.unlink()
    with pytest.raises(RecoveryError, match="log gap") as info:
        open_dir(tmp_path)
    assert info.value.path == str(segments[3][1])
    digest, _ = reopen_digest(tmp_path, force_recovery=True)
    assert digest == model_digest(base - 1)


def test_damaged_snapshot_refuses_and_force_falls_back_to_the_previous(tmp_path: Path) -> None:
    populate(tmp_path, snapshot_after=(4, 9))
    current = tmp_path / snapshot_name(9)
    data = bytearray(current.read_bytes())
    data[200] ^= 0x01
    overwrite(current, bytes(data))
    with pytest.raises(RecoveryError) as info:
        open_dir(tmp_path)
    assert info.value.path == str(current)
    assert info.value.offset <= 200
    # the log from the previous snapshot on is kept, so nothing is lost
    digest, durability = reopen_digest(tmp_path, force_recovery=True)
    assert digest == model_digest(STEPS)
    assert durability.recovery.snapshot == tmp_path / snapshot_name(4)
    assert reopen_digest(tmp_path)[0] == model_digest(STEPS)


def test_damaged_manifest_refuses_and_force_uses_snapshot_files(tmp_path: Path) -> None:
    populate(tmp_path, snapshot_after=(6,))
    manifest = tmp_path / MANIFEST_NAME
    data = bytearray(manifest.read_bytes())
    data[-2] ^= 0x80
    overwrite(manifest, bytes(data))
    with pytest.raises(RecoveryError) as info:
        open_dir(tmp_path)
    assert info.value.path == str(manifest)
    assert info.value.offset == FILE_HEADER_BYTES
    digest, durability = reopen_digest(tmp_path, force_recovery=True)
    assert digest == model_digest(STEPS)
    assert read_manifest(tmp_path) is not None
    assert reopen_digest(tmp_path)[0] == model_digest(STEPS)


def test_missing_snapshot_named_by_manifest_refuses(tmp_path: Path) -> None:
    populate(tmp_path, snapshot_after=(6,))
    (tmp_path / snapshot_name(6)).unlink()
    with pytest.raises(RecoveryError, match="does not exist"):
        open_dir(tmp_path)


def test_erased_contacts_stay_erased_and_event_ids_stay_deduplicated(tmp_path: Path) -> None:
    populate(tmp_path, snapshot_after=(13,))  # erase (step 12) is inside the snapshot
    engine, durability, clock = open_dir(tmp_path)
    with pytest.raises(NotFound):
        engine.resolve_ref("externalId:C-2")
    report = engine.ingest([{"eventTypeKey": "pageView", "eventId": "pageView-7", "keyValue": "cookie-9", "params": {}}])
    assert report.duplicates == 1
    durability.close(snapshot=False)
    # erase replayed from the log rather than loaded from a snapshot
    other = tmp_path / "log-only"
    populate(other)
    engine, durability, _ = open_dir(other)
    with pytest.raises(NotFound):
        engine.resolve_ref("phone:442079460001")
    durability.close(snapshot=False)


def test_orphans_and_temp_files_are_ignored_and_removed(tmp_path: Path) -> None:
    populate(tmp_path, snapshot_after=(6,))
    (tmp_path / "snap-00000000000000000099.tmp").write_bytes(b"half a snapshot")
    (tmp_path / "MANIFEST.tmp").write_bytes(b"half a manifest")
    orphan = tmp_path / snapshot_name(12)  # renamed into place, MANIFEST never updated
    orphan.write_bytes((tmp_path / snapshot_name(6)).read_bytes())
    engine, durability, _ = open_dir(tmp_path)
    assert state_digest(engine, AT) == model_digest(STEPS)
    assert durability.recovery.snapshot == tmp_path / snapshot_name(6)
    assert not list(tmp_path.glob("*.tmp"))
    durability.close()
    assert [seq for seq, _ in list_snapshots(tmp_path)] == [6, STEPS]


def test_retention_keeps_two_snapshots_and_the_log_after_the_older(tmp_path: Path) -> None:
    engine, durability, clock = open_dir(tmp_path, segment_bytes=500)
    for index, step in enumerate(steps()):
        clock.now_ms = BASE_MS + index * 60_000
        step(engine)
        if index in (4, 8, 12):
            durability.snapshot_now()
    manifest = read_manifest(tmp_path)
    assert manifest is not None and (manifest.seq, manifest.previous_seq) == (13, 9)
    assert [seq for seq, _ in list_snapshots(tmp_path)] == [9, 13]
    segments = list_segments(tmp_path)
    assert segments[0][0] <= 10 < segments[1][0]  # the first segment holds record 10
    durability.close(snapshot=False)
    assert reopen_digest(tmp_path)[0] == model_digest(STEPS)


def test_snapshots_trigger_on_log_bytes(tmp_path: Path) -> None:
    engine, durability, clock = open_dir(tmp_path, snapshot_every_bytes=400)
    run(engine, clock, 6)
    durability._stop.wait(1.0)  # the trigger polls every 0.25 s
    assert list_snapshots(tmp_path)
    durability.close()


def test_repeated_snapshot_without_writes_reuses_the_current(tmp_path: Path) -> None:
    engine, durability, clock = open_dir(tmp_path)
    run(engine, clock, 3)
    first = durability.snapshot_now()
    second = durability.snapshot_now()
    assert (first[0], first[1]) == (second[0], second[1])
    assert read_manifest(tmp_path).previous is None  # type: ignore[union-attr]
    durability.close()


def test_a_second_process_cannot_open_the_directory(tmp_path: Path) -> None:
    _, durability, _ = open_dir(tmp_path)
    with pytest.raises(FailedPrecondition, match="in use"):
        open_dir(tmp_path)
    durability.close()
    _, again, _ = open_dir(tmp_path)
    again.close()


def test_failed_log_stops_writes_and_snapshots(tmp_path: Path) -> None:
    calls: list[int] = []

    def sync_then_fail(fd: int) -> None:  # a disk failure cannot be produced on demand here
        calls.append(fd)
        if len(calls) > 4:  # the segment header and three records are synced
            raise OSError(5, "Input/output error")

    engine, durability, clock = open_dir(tmp_path, fsync_fn=sync_then_fail)
    run(engine, clock, 3)
    with pytest.raises(Unavailable, match="storage failed"):
        run(engine, clock, 5)
    with pytest.raises(Unavailable, match="storage failed"):
        engine.upsert_contacts([{"externalId": "late"}])
    with pytest.raises(Unavailable, match="storage failed"):
        durability.snapshot_now()
    durability.close()
    # what was acknowledged is there after a restart
    digest, _ = reopen_digest(tmp_path)
    assert digest == model_digest(3)

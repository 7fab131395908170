"""Damaged files: every truncation, zero-filled tail and bit flip recovers exactly a prefix of
the acknowledged records, or is refused with a RecoveryError naming the file and offset."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine import Engine
from snapshots.digest import state_digest
from snapshots.durable import open_durable
from snapshots.frames import FILE_HEADER_BYTES, RecoveryError
from snapshots.manifest import MANIFEST_NAME
from snapshots.recovery import recover
from snapshots.snapshot import snapshot_name
from snapshots.wal import list_segments, scan_segment, segment_name
from tests.data.workload import BASE_MS, StepClock, run, steps

pytestmark = pytest.mark.property

AT = BASE_MS + 3_600_000
STEPS = len(steps())


@lru_cache(maxsize=None)
def model_digest(count: int) -> str:
    clock = StepClock()
    engine = Engine(clock=clock)
    run(engine, clock, count)
    return state_digest(engine, AT)


@dataclass(frozen=True)
class Workspace:
    log: bytes  # one segment holding every record
    record_ends: tuple[int, ...]  # byte offset after each record
    snap_dir: Path  # MANIFEST + two snapshots (after steps 5 and 10) + the whole log
    scratch: Path  # where damaged variants are recovered


@pytest.fixture(scope="module")
def workspace() -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="segmentd-damage-"))
    clock = StepClock()
    engine, durability = open_durable(root / "log", clock=clock)
    run(engine, clock)
    durability.close(snapshot=False)
    ((_, segment),) = list_segments(root / "log")
    log = segment.read_bytes()
    ends = tuple(frame.end for frame in scan_segment(log).records)
    engine, durability = open_durable(root / "snap", clock=clock)
    for index, step in enumerate(steps()):
        clock.now_ms = BASE_MS + index * 60_000
        step(engine)
        if index + 1 in (5, 10):
            durability.snapshot_now()
    durability.close(snapshot=False)
    (root / "scratch").mkdir()
    yield Workspace(log, ends, root / "snap", root / "scratch")
    shutil.rmtree(root)


def recover_log(ws: Workspace, data: bytes, *, force: bool = False) -> tuple[str, Path]:
    """Recovers a directory holding only `data` as its one log segment; (digest, segment path)."""
    for leftover in ws.scratch.iterdir():
        leftover.unlink()
    path = ws.scratch / segment_name(1)
    path.write_bytes(data)
    engine = Engine(clock=StepClock())
    recover(ws.scratch, engine, force=force)
    return state_digest(engine, AT), path


def complete_records(ws: Workspace, length: int) -> int:
    return sum(1 for end in ws.record_ends if end <= length)


def test_every_truncation_of_the_last_records(workspace: Workspace) -> None:
    start = workspace.record_ends[-3]
    for cut in range(start, len(workspace.log) + 1):
        digest, _ = recover_log(workspace, workspace.log[:cut])
        assert digest == model_digest(complete_records(workspace, cut)), cut


@settings(max_examples=40, deadline=None)
@given(fraction=st.floats(0, 1), zeros=st.integers(0, 600))
def test_truncated_or_zero_filled_anywhere(workspace: Workspace, fraction: float, zeros: int) -> None:
    cut = int(fraction * len(workspace.log))
    digest, _ = recover_log(workspace, workspace.log[:cut] + bytes(zeros))
    assert digest == model_digest(complete_records(workspace, cut))


@settings(max_examples=60, deadline=None)
@given(bit=st.integers(0, 10**9))
def test_log_bit_flip_recovers_a_prefix_or_names_the_damage(workspace: Workspace, bit: int) -> None:
    bit %= len(workspace.log) * 8
    flipped = bytearray(workspace.log)
    flipped[bit // 8] ^= 1 << (bit % 8)
    byte = bit // 8
    record = complete_records(workspace, byte)  # index of the record holding the byte
    starts = (FILE_HEADER_BYTES,) + workspace.record_ends[:-1]
    if record == STEPS - 1:  # the last record: indistinguishable from a torn write, cut off
        digest, _ = recover_log(workspace, bytes(flipped))
        assert digest == model_digest(STEPS - 1)
        return
    with pytest.raises(RecoveryError) as info:
        recover_log(workspace, bytes(flipped))
    assert info.value.path.endswith(segment_name(1))
    assert info.value.offset == (0 if byte < FILE_HEADER_BYTES else starts[record])
    # forced: exactly the records before the damage
    digest, _ = recover_log(workspace, bytes(flipped), force=True)
    assert digest == model_digest(record if byte >= FILE_HEADER_BYTES else 0)


def test_damage_at_the_end_of_a_segment_that_is_not_the_last_is_refused(tmp_path: Path) -> None:
    clock = StepClock()
    engine, durability = open_durable(tmp_path, clock=clock, segment_bytes=600)
    run(engine, clock)
    durability.close(snapshot=False)
    (_, first), (second_base, _) = list_segments(tmp_path)[:2]
    data = first.read_bytes()
    last_start = scan_segment(data).records[-1].offset
    first.write_bytes(data[: last_start + 5])
    with pytest.raises(RecoveryError) as info:
        open_durable(tmp_path, clock=clock)
    assert (info.value.path, info.value.offset) == (str(first), last_start)
    assert second_base == len(scan_segment(data).records) + 1


def copy_snapshot_dir(ws: Workspace) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="segmentd-variant-"))
    shutil.rmtree(directory)
    shutil.copytree(ws.snap_dir, directory)
    return directory


@settings(max_examples=25, deadline=None)
@given(where=st.floats(0, 1), bit=st.integers(0, 7))
def test_snapshot_bit_flip_is_refused_and_force_uses_the_previous(workspace: Workspace, where: float, bit: int) -> None:
    directory = copy_snapshot_dir(workspace)
    try:
        path = directory / snapshot_name(10)
        data = bytearray(path.read_bytes())
        byte = min(int(where * len(data)), len(data) - 1)
        data[byte] ^= 1 << bit
        path.write_bytes(bytes(data))
        with pytest.raises(RecoveryError) as info:
            recover(directory, Engine(clock=StepClock()))
        assert info.value.path == str(path)
        assert info.value.offset <= byte
        engine = Engine(clock=StepClock())
        report = recover(directory, engine, force=True)
        assert report.snapshot == directory / snapshot_name(5)
        assert state_digest(engine, AT) == model_digest(STEPS)
    finally:
        shutil.rmtree(directory)


@settings(max_examples=25, deadline=None)
@given(bit=st.integers(0, 10**6))
def test_manifest_bit_flip_is_refused_and_force_recovers(workspace: Workspace, bit: int) -> None:
    directory = copy_snapshot_dir(workspace)
    try:
        path = directory / MANIFEST_NAME
        data = bytearray(path.read_bytes())
        bit %= len(data) * 8
        data[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))
        with pytest.raises(RecoveryError) as info:
            recover(directory, Engine(clock=StepClock()))
        assert info.value.path == str(path)
        engine = Engine(clock=StepClock())
        report = recover(directory, engine, force=True)
        assert report.snapshot == directory / snapshot_name(10)
        assert state_digest(engine, AT) == model_digest(STEPS)
    finally:
        shutil.rmtree(directory)


# ---------------------------------------------------------------------------- committed corpus

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
CORPUS_CASES = sorted(p.name for p in CORPUS.iterdir()) if CORPUS.exists() else []


def test_corpus_is_present() -> None:
    assert len(CORPUS_CASES) >= 10, "run python tests/data/make_corpus.py"


@pytest.mark.parametrize("case", CORPUS_CASES)
def test_corpus_case(case: str, tmp_path: Path) -> None:
    """Each damaged directory is refused as expected (file, offset, reason) or recovers the
    expected prefix; forced recovery gives the expected prefix. A failure after a deliberate
    format change means: regenerate with `python tests/data/make_corpus.py`."""
    expected = json.loads((CORPUS / case / "expect.json").read_text())
    for force in (False, True):
        directory = tmp_path / f"force-{force}"
        shutil.copytree(CORPUS / case / "data", directory)
        error = expected["error"]
        records = expected["force_records" if force else "records"]
        if error is not None and not force:
            with pytest.raises(RecoveryError) as info:
                recover(directory, Engine(clock=StepClock()))
            assert Path(info.value.path).name == error["file"]
            if error["offset"] is not None:
                assert info.value.offset == error["offset"]
            assert error["match"] in info.value.reason
            continue
        engine = Engine(clock=StepClock())
        report = recover(directory, engine, force=force)
        assert state_digest(engine, AT) == model_digest(records)
        assert bool(report.lost) == (force and error is not None)

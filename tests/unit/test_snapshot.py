"""Snapshot files and the MANIFEST: round trips of trees with arrays and bitmaps, and damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyroaring import BitMap

from snapshots.frames import FILE_HEADER_BYTES, RecoveryError
from snapshots.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from snapshots.snapshot import list_snapshots, read_snapshot, snapshot_name, write_snapshot


def overwrite(path: Path, data: bytes) -> None:
    """Replaces a file's bytes in place (an O_TRUNC rewrite makes ext4 flush, slowly)."""
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate(len(data))


def sample_tree() -> dict:
    rng = np.random.default_rng(7)
    return {
        "format": 1,
        "ints": np.arange(1000, dtype=np.int64),
        "floats": rng.random((30, 4)),
        "mask": rng.random(77) > 0.5,
        "codes": np.array([3, -1, 2], dtype=np.int32),
        "empty": np.zeros(0, dtype=np.uint32),
        "scalar": np.float64(2.5),
        "members": BitMap([1, 5, 1 << 20, 7_000_000]),
        "nested": {"a": [1, "two", None, True, {"deep": np.arange(5, dtype=np.uint8)}], 3: "int key"},
        "text": "ünïcode",
        "blob": b"\x00\x01",
    }


def assert_tree_equal(a: object, b: object) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_tree_equal(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_tree_equal(x, y)
    elif isinstance(a, np.generic):
        assert a.item() == b
    else:
        assert a == b


@pytest.mark.parametrize("frame_bytes", [64, 1000, 1 << 20])
def test_round_trip_across_frame_sizes(tmp_path: Path, frame_bytes: int) -> None:
    tree = sample_tree()
    written = write_snapshot(tmp_path, 42, tree, frame_bytes=frame_bytes)
    assert written.path == tmp_path / snapshot_name(42)
    assert written.bytes == written.path.stat().st_size
    seq, loaded = read_snapshot(written.path)
    assert seq == 42
    assert_tree_equal(tree, loaded)
    assert loaded["ints"].flags.writeable
    assert list_snapshots(tmp_path) == [(42, written.path)]
    assert not list(tmp_path.glob("*.tmp"))


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dtype object"):
        write_snapshot(tmp_path, 1, {"bad": np.array([object()])})


def test_truncation_anywhere_is_refused_with_offset(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 3, sample_tree(), frame_bytes=500).path
    data = path.read_bytes()
    for cut in list(range(0, 80)) + list(range(80, len(data), 37)) + [len(data) - 1]:
        overwrite(path, data[:cut])
        with pytest.raises(RecoveryError) as info:
            read_snapshot(path)
        assert info.value.path == str(path)
        assert 0 <= info.value.offset <= cut


def test_bit_flips_are_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 3, sample_tree(), frame_bytes=700).path
    data = path.read_bytes()
    rng = np.random.default_rng(1)
    for bit in rng.choice(len(data) * 8, size=150, replace=False):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        overwrite(path, bytes(flipped))
        with pytest.raises(RecoveryError) as info:
            read_snapshot(path)
        assert info.value.offset <= bit // 8


def test_trailing_bytes_are_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 3, {"x": 1}).path
    overwrite(path, path.read_bytes() + b"\x00")
    with pytest.raises(RecoveryError, match="after the END frame"):
        read_snapshot(path)


def test_manifest_round_trip_and_replace(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) is None
    first = Manifest(snapshot_name(10), 10)
    write_manifest(tmp_path, first)
    assert read_manifest(tmp_path) == first
    second = Manifest(snapshot_name(20), 20, previous=first.snapshot, previous_seq=10)
    write_manifest(tmp_path, second)
    assert read_manifest(tmp_path) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]


def test_manifest_damage_is_refused_with_offset(tmp_path: Path) -> None:
    write_manifest(tmp_path, Manifest(snapshot_name(10), 10, snapshot_name(5), 5))
    path = tmp_path / MANIFEST_NAME
    data = path.read_bytes()
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        overwrite(path, bytes(flipped))
        with pytest.raises(RecoveryError) as info:
            read_manifest(tmp_path)
        assert info.value.path == str(path)
        assert info.value.offset in (0, 8, FILE_HEADER_BYTES)
    for cut in range(len(data)):
        overwrite(path, data[:cut])
        with pytest.raises(RecoveryError):
            read_manifest(tmp_path)


# ---------------------------------------------------------------------------- a real engine

from core.engine import Engine  # noqa: E402
from snapshots.digest import state_digest, state_lines  # noqa: E402
from snapshots.image import capture, restore, to_tree  # noqa: E402
from tests.data.workload import BASE_MS, StepClock, run  # noqa: E402


def test_engine_round_trip_through_a_snapshot_file(tmp_path: Path) -> None:
    clock = StepClock()
    engine = Engine(clock=clock)
    run(engine, clock)
    cut = capture(engine, lambda: 16)
    written = write_snapshot(tmp_path, cut.seq, to_tree(cut), frame_bytes=256)
    seq, tree = read_snapshot(written.path)
    restored = Engine(clock=clock)
    assert restore(restored, tree) == 16 == seq
    assert state_lines(restored) == state_lines(engine)
    assert state_digest(restored) == state_digest(engine)
    # the restored engine keeps working: dedup window, segments, new contacts
    report = restored.ingest([{"eventTypeKey": "purchase", "eventId": "purchase-5", "keyValue": "x", "params": {}}])
    assert report.duplicates == 1
    assert restored.segments.current("members", clock()) == engine.segments.current("members", clock())
    assert restored.segments.get("members").created_at_ms == BASE_MS + 5 * 60_000
    assert restored.upsert_contacts([{"externalId": "C-9"}]).outcomes[0].contact_id == engine.contacts.max_id + 1


def test_capture_is_an_immutable_cut(tmp_path: Path) -> None:
    clock = StepClock()
    engine = Engine(clock=clock)
    run(engine, clock, 8)
    at = clock()
    before = state_digest(engine, at)
    cut = capture(engine, lambda: 8)
    run(engine, clock)  # writes continue after the cut, before the file is written
    written = write_snapshot(tmp_path, cut.seq, to_tree(cut))
    restored = Engine(clock=clock)
    restore(restored, read_snapshot(written.path)[1])
    assert state_digest(restored, at) != state_digest(engine, at)
    reference = Engine(clock=clock)
    run(reference, clock, 8)
    assert state_digest(restored, at) == state_digest(reference, at) == before

"""Writes tests/data/corpus/: small data directories with damaged files, and what each must do.

Run from the repository root: `python tests/data/make_corpus.py`. Each case is a directory
holding a data directory (`data/`) and `expect.json`:

    {"error": {"file": name, "offset": n, "match": text} | null,   # an ordinary start
     "records": k | null,        # workload steps in the state after an ordinary start
     "force_records": k | null}  # ... after a forced start (null: refused even then)

Regenerate after a deliberate change of the file formats or of the engine's state layout.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from snapshots.durable import open_durable  # noqa: E402
from snapshots.frames import FILE_HEADER_BYTES, SNAPSHOT_MAGIC, encode_file_header  # noqa: E402
from snapshots.manifest import MANIFEST_NAME  # noqa: E402
from snapshots.snapshot import snapshot_name  # noqa: E402
from snapshots.wal import list_segments, scan_segment, segment_name  # noqa: E402
from tests.data.workload import BASE_MS, StepClock, steps  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
STEPS = len(steps())


def build(directory: Path, *, snapshot_after: tuple[int, ...] = (), segment_bytes: int = 64 << 20) -> None:
    """The workload in a fresh data directory, stopped without a final snapshot."""
    clock = StepClock()
    engine, durability = open_durable(directory, clock=clock, segment_bytes=segment_bytes)
    for index, step in enumerate(steps()):
        clock.now_ms = BASE_MS + index * 60_000
        step(engine)
        if index + 1 in snapshot_after:
            durability.snapshot_now()
    durability.close(snapshot=False)
    (directory / "LOCK").unlink()


def only_segment(directory: Path) -> Path:
    ((_, path),) = list_segments(directory)
    return path


def flip(path: Path, byte: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[byte] ^= mask
    path.write_bytes(bytes(data))


def expect(error: tuple[str, int | None, str] | None, records: int | None, force_records: int | None) -> dict[str, Any]:
    return {
        "error": None if error is None else {"file": error[0], "offset": error[1], "match": error[2]},  # offset None: any
        "records": records,
        "force_records": force_records,
    }


def wal_torn_record(d: Path) -> dict[str, Any]:
    build(d)
    path = only_segment(d)
    data = path.read_bytes()
    last = scan_segment(data).records[-1]
    path.write_bytes(data[: last.offset + 13])
    return expect(None, STEPS - 1, STEPS - 1)


def wal_zero_tail(d: Path) -> dict[str, Any]:
    build(d)
    path = only_segment(d)
    path.write_bytes(path.read_bytes() + bytes(512))
    return expect(None, STEPS, STEPS)


def wal_torn_header(d: Path) -> dict[str, Any]:
    (d / segment_name(1)).write_bytes(b"SEGDWAL\x00\x01")
    return expect(None, 0, 0)


def wal_last_record_bit_flip(d: Path) -> dict[str, Any]:
    build(d)
    path = only_segment(d)
    flip(path, scan_segment(path.read_bytes()).records[-1].offset + 30)
    return expect(None, STEPS - 1, STEPS - 1)


def wal_middle_bit_flip(d: Path) -> dict[str, Any]:
    build(d)
    path = only_segment(d)
    record = scan_segment(path.read_bytes()).records[5]
    flip(path, record.offset + 40, 0x20)
    return expect((path.name, record.offset, "checksum"), None, 5)


def wal_bad_magic(d: Path) -> dict[str, Any]:
    build(d)
    path = only_segment(d)
    flip(path, 2, 0xFF)
    return expect((path.name, 0, "bad magic"), None, 0)


def wal_gap(d: Path) -> dict[str, Any]:
    build(d, segment_bytes=600)
    segments = list_segments(d)
    segments[1][1].unlink()
    return expect((segments[2][1].name, 0, "log gap"), None, segments[1][0] - 1)


def wal_renamed_segment(d: Path) -> dict[str, Any]:
    build(d, segment_bytes=600)
    segments = list_segments(d)
    base, path = segments[-1]
    path.rename(d / segment_name(base + 1))  # header says `base`, name says base + 1
    return expect((segment_name(base + 1), 0, "log gap"), None, base - 1)


def snapshot_truncated(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    path = d / snapshot_name(10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 9])
    return expect((path.name, None, "cut short"), None, STEPS)


def snapshot_bit_flip(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    path = d / snapshot_name(10)
    flip(path, FILE_HEADER_BYTES + 100, 0x08)
    return expect((path.name, FILE_HEADER_BYTES, "checksum"), None, STEPS)


def snapshot_future_version(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    path = d / snapshot_name(10)
    data = path.read_bytes()
    path.write_bytes(encode_file_header(SNAPSHOT_MAGIC, 10, version=2) + data[FILE_HEADER_BYTES:])
    return expect((path.name, 8, "unsupported format version 2"), None, STEPS)


def manifest_bit_flip(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    flip(d / MANIFEST_NAME, FILE_HEADER_BYTES + 25, 0x40)
    return expect((MANIFEST_NAME, FILE_HEADER_BYTES, "checksum"), None, STEPS)


def manifest_truncated(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    path = d / MANIFEST_NAME
    path.write_bytes(path.read_bytes()[:30])
    return expect((MANIFEST_NAME, FILE_HEADER_BYTES, "cut short"), None, STEPS)


def manifest_names_missing_snapshot(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    (d / snapshot_name(10)).unlink()
    return expect((snapshot_name(10), 0, "does not exist"), None, STEPS)


def intact_snapshot_and_log(d: Path) -> dict[str, Any]:
    build(d, snapshot_after=(5, 10))
    return expect(None, STEPS, STEPS)


CASES: dict[str, Callable[[Path], dict[str, Any]]] = {
    fn.__name__: fn
    for fn in (
        wal_torn_record,
        wal_zero_tail,
        wal_torn_header,
        wal_last_record_bit_flip,
        wal_middle_bit_flip,
        wal_bad_magic,
        wal_gap,
        wal_renamed_segment,
        snapshot_truncated,
        snapshot_bit_flip,
        snapshot_future_version,
        manifest_bit_flip,
        manifest_truncated,
        manifest_names_missing_snapshot,
        intact_snapshot_and_log,
    )
}


def main() -> None:
    staging = Path(tempfile.mkdtemp(prefix="segmentd-corpus-"))
    for name, make in CASES.items():
        data = staging / name / "data"
        data.mkdir(parents=True)
        (staging / name / "expect.json").write_text(json.dumps(make(data), indent=1, sort_keys=True) + "\n")
    shutil.rmtree(CORPUS, ignore_errors=True)
    shutil.move(str(staging), CORPUS)
    print(f"wrote {len(CASES)} cases to {CORPUS}")


if __name__ == "__main__":
    main()

"""The MANIFEST: the commit point naming the current snapshot and where the log resumes.

File: the header (magic SEGDMAN, seq = the sequence the current snapshot covers) and one
MANIFEST frame holding msgpack {"snapshot": name, "seq": n, "previous": name | None,
"previous_seq": n | None}. A snapshot counts only once a MANIFEST names it; the file is
replaced atomically (temp file, fsync, rename, fsync the directory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgpack

from snapshots.crash import crash_point
from snapshots.frames import (
    FILE_HEADER_BYTES,
    KIND_MANIFEST,
    MANIFEST_MAGIC,
    FrameError,
    RecoveryError,
    decode_file_header,
    decode_frame,
    encode_file_header,
    encode_frame,
)
from snapshots.wal import fsync_directory

MANIFEST_NAME = "MANIFEST"


@dataclass(frozen=True, slots=True)
class Manifest:
    snapshot: str  # file name of the current snapshot, in the data directory
    seq: int  # last log sequence number the current snapshot covers
    previous: str | None = None  # the snapshot before it, kept for forced recovery
    previous_seq: int | None = None


def encode_manifest(manifest: Manifest) -> bytes:
    """The bytes of a MANIFEST file."""
    body = msgpack.packb(
        {
            "snapshot": manifest.snapshot,
            "seq": manifest.seq,
            "previous": manifest.previous,
            "previous_seq": manifest.previous_seq,
        }
    )
    return encode_file_header(MANIFEST_MAGIC, manifest.seq) + encode_frame(KIND_MANIFEST, manifest.seq, body)


def decode_manifest(data: bytes) -> Manifest:
    """The manifest in `data`; raises FrameError naming the offset of any damage."""
    header = decode_file_header(data, MANIFEST_MAGIC)
    frame = decode_frame(data, FILE_HEADER_BYTES)
    if frame.kind != KIND_MANIFEST:
        raise FrameError(FILE_HEADER_BYTES, f"frame kind {frame.kind} in a MANIFEST")
    if frame.end != len(data):
        raise FrameError(frame.end, f"{len(data) - frame.end} bytes after the MANIFEST frame")
    try:
        body = msgpack.unpackb(frame.payload, raw=False)
        manifest = Manifest(
            snapshot=str(body["snapshot"]),
            seq=int(body["seq"]),
            previous=None if body["previous"] is None else str(body["previous"]),
            previous_seq=None if body["previous_seq"] is None else int(body["previous_seq"]),
        )
    except Exception as exc:  # a body that passed its checksum but is not a manifest
        raise FrameError(FILE_HEADER_BYTES, f"MANIFEST body does not decode: {exc}") from None
    if manifest.seq != header.seq or frame.seq != header.seq:
        raise FrameError(FILE_HEADER_BYTES, "MANIFEST header and body disagree on the sequence number")
    if "/" in manifest.snapshot or (manifest.previous and "/" in manifest.previous):
        raise FrameError(FILE_HEADER_BYTES, "MANIFEST names a file outside the data directory")
    return manifest


def read_manifest(directory: Path) -> Manifest | None:
    """The committed manifest of `directory`, None if there is none; raises RecoveryError."""
    path = directory / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return decode_manifest(data)
    except FrameError as exc:
        raise exc.at(path) from None


def write_manifest(directory: Path, manifest: Manifest, *, fsync: bool = True) -> Path:
    """Atomically replaces the MANIFEST of `directory`: this is the commit of a snapshot."""
    path = directory / MANIFEST_NAME
    temp = directory / (MANIFEST_NAME + ".tmp")
    with open(temp, "wb") as out:
        out.write(encode_manifest(manifest))
        out.flush()
        if fsync:
            os.fsync(out.fileno())
    crash_point("manifest.before_rename")
    os.rename(temp, path)
    if fsync:
        fsync_directory(directory)
    crash_point("manifest.after_rename")
    return path

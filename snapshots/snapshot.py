"""Snapshot files: a tree of plain values and numpy arrays, framed and checksummed.

A snapshot file is the file header (magic SEGDSNP, the last log sequence number it covers)
followed by DATA frames (seq = frame index 0, 1, ...) of at most `frame_bytes` each, and one
END frame. The DATA payloads concatenated form one byte stream::

    u64 tree_bytes | tree (msgpack) | raw bytes of array 0 | raw bytes of array 1 | ...

In the tree a numpy array is the ext type EXT_NDARRAY holding msgpack [dtype str, shape];
its raw bytes (C order) follow the tree in the order arrays appear in it. A bitmap is the ext
type EXT_BITMAP holding pyroaring's portable serialisation. No pickle anywhere.
The END payload is msgpack {"frames": DATA frame count, "bytes": stream length, "arrays": n}.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import numpy as np
from pyroaring import BitMap, FrozenBitMap

from snapshots.crash import crash_point
from snapshots.frames import (
    FILE_HEADER_BYTES,
    FRAME_HEADER_BYTES,
    KIND_DATA,
    KIND_END,
    MAX_FRAME_BYTES,
    SNAPSHOT_MAGIC,
    FrameError,
    RecoveryError,
    decode_file_header,
    decode_frame,
    encode_file_header,
    encode_frame,
    frame_header,
)
from snapshots.wal import fsync_directory

EXT_NDARRAY = 1
EXT_BITMAP = 2
_U64 = struct.Struct("<Q")
_PREFIX, _SUFFIX = "snap-", ".snap"


def snapshot_name(seq: int) -> str:
    """File name of the snapshot covering the log up to sequence number `seq`."""
    return f"{_PREFIX}{seq:020d}{_SUFFIX}"


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    """(covered sequence number, path) of every committed snapshot file in `directory`."""
    found = []
    for path in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        digits = path.name[len(_PREFIX) : -len(_SUFFIX)]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


# ------------------------------------------------------------------------ tree codec


def encode_tree(tree: Any) -> tuple[bytes, list[np.ndarray]]:
    """msgpack bytes of `tree` with arrays replaced by descriptors, and those arrays in order."""
    arrays: list[np.ndarray] = []

    def hook(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"cannot snapshot an array of dtype {value.dtype}")
            arrays.append(np.ascontiguousarray(value))
            return msgpack.ExtType(EXT_NDARRAY, msgpack.packb([value.dtype.str, list(value.shape)]))
        if isinstance(value, (BitMap, FrozenBitMap)):
            return msgpack.ExtType(EXT_BITMAP, value.serialize())
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Mapping):
            return dict(value)
        raise TypeError(f"cannot snapshot a {type(value).__name__}")

    return msgpack.packb(tree, use_bin_type=True, default=hook), arrays


def decode_tree(data: bytes | bytearray | memoryview) -> tuple[Any, list[np.ndarray]]:
    """The tree of `encode_tree` with empty arrays in place of descriptors, and those arrays."""
    arrays: list[np.ndarray] = []

    def hook(code: int, data: bytes) -> Any:
        if code == EXT_NDARRAY:
            dtype, shape = msgpack.unpackb(data)
            array = np.empty(tuple(shape), dtype=np.dtype(dtype))
            if array.dtype.hasobject:
                raise ValueError(f"array dtype {dtype} is not allowed")
            arrays.append(array)
            return array
        if code == EXT_BITMAP:
            return BitMap.deserialize(data)
        raise ValueError(f"unknown ext type {code}")

    tree = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=hook, use_list=True)
    return tree, arrays


def _array_bytes(array: np.ndarray) -> memoryview:
    """The array's bytes in C order, without a copy (the array is C-contiguous)."""
    return memoryview(array.reshape(-1).view(np.uint8).data)


# ------------------------------------------------------------------------ writing


class _FrameSink:
    """Cuts a byte stream into DATA frames of at most `limit` bytes, written to `out`."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out = out
        self.limit = limit
        self.buffer = bytearray()
        self.frames = 0
        self.stream_bytes = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.stream_bytes += len(view)
        while view:
            if not self.buffer and len(view) >= self.limit:
                self._emit(view[: self.limit])  # large arrays go out without a copy
                view = view[self.limit :]
                continue
            take = min(len(view), self.limit - len(self.buffer))
            self.buffer += view[:take]
            view = view[take:]
            if len(self.buffer) == self.limit:
                self._emit(memoryview(self.buffer))
                self.buffer = bytearray()

    def finish(self, arrays: int) -> None:
        if self.buffer:
            self._emit(memoryview(self.buffer))
            self.buffer = bytearray()
        end = msgpack.packb({"frames": self.frames, "bytes": self.stream_bytes, "arrays": arrays})
        self.out.write(encode_frame(KIND_END, self.frames, end))

    def _emit(self, payload: memoryview) -> None:
        self.out.write(frame_header(KIND_DATA, self.frames, payload))
        self.out.write(payload)
        self.frames += 1
        crash_point("snapshot.mid_frames")


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    path: Path
    seq: int
    bytes: int


def write_snapshot(
    directory: Path, seq: int, tree: Any, *, frame_bytes: int = MAX_FRAME_BYTES, fsync: bool = True
) -> SnapshotFile:
    """Writes `tree` as the snapshot covering sequence `seq`: temp file, fsync, rename, fsync dir."""
    if not 0 < frame_bytes <= MAX_FRAME_BYTES:
        raise FrameError(0, f"frame size must be 1..{MAX_FRAME_BYTES} bytes")
    final = directory / snapshot_name(seq)
    temp = final.with_suffix(".tmp")
    tree_bytes, arrays = encode_tree(tree)
    with open(temp, "wb") as out:
        out.write(encode_file_header(SNAPSHOT_MAGIC, seq))
        sink = _FrameSink(out, frame_bytes)
        sink.write(_U64.pack(len(tree_bytes)))
        sink.write(tree_bytes)
        del tree_bytes
        for array in arrays:
            if array.size:
                sink.write(_array_bytes(array))
        sink.finish(len(arrays))
        out.flush()
        if fsync:
            os.fsync(out.fileno())
        size = out.tell()
    crash_point("snapshot.before_rename")
    os.rename(temp, final)
    if fsync:
        fsync_directory(directory)
    return SnapshotFile(final, seq, size)


# ------------------------------------------------------------------------ reading


class _FrameSource:
    """Reads the DATA frames of a snapshot in order and hands out their bytes."""

    def __init__(self, path: Path, handle: io.BufferedReader) -> None:
        self.path = path
        self.handle = handle
        self.offset = FILE_HEADER_BYTES  # file offset of the next frame
        self.frames = 0
        self.payload = memoryview(b"")
        self.frame_offset = FILE_HEADER_BYTES  # file offset of the frame being read
        self.stream_bytes = 0

    def _next_frame(self) -> tuple[int, int, memoryview]:
        """(kind, seq, payload) of the next frame; the payload is checked against its checksum."""
        at = self.offset
        head = self.handle.read(FRAME_HEADER_BYTES)
        if len(head) < FRAME_HEADER_BYTES:
            raise RecoveryError(self.path, at, "snapshot ends before its END frame (truncated)")
        (length,) = struct.unpack_from("<I", head, 4)
        buf = bytearray(FRAME_HEADER_BYTES + min(length, MAX_FRAME_BYTES + 1))
        buf[:FRAME_HEADER_BYTES] = head
        got = self.handle.readinto(memoryview(buf)[FRAME_HEADER_BYTES:])
        try:
            frame = decode_frame(memoryview(buf)[: FRAME_HEADER_BYTES + got], 0)
        except FrameError as exc:
            raise RecoveryError(self.path, at, exc.reason) from None
        self.offset = at + frame.end
        self.frame_offset = at
        return frame.kind, frame.seq, frame.payload

    def read_into(self, dest: memoryview) -> None:
        """Fills `dest` from the stream, crossing frame boundaries as needed."""
        filled = 0
        while filled < len(dest):
            if not self.payload:
                kind, seq, payload = self._next_frame()
                if kind != KIND_DATA:
                    raise RecoveryError(self.path, self.frame_offset, "snapshot stream ends early")
                if seq != self.frames:
                    raise RecoveryError(self.path, self.frame_offset, f"frame {seq} where frame {self.frames} belongs")
                self.frames += 1
                self.payload = payload
            take = min(len(dest) - filled, len(self.payload))
            dest[filled : filled + take] = self.payload[:take]
            self.payload = self.payload[take:]
            filled += take
        self.stream_bytes += filled

    def finish(self, arrays: int) -> None:
        if self.payload:
            raise RecoveryError(self.path, self.frame_offset, f"{len(self.payload)} unread bytes in the last data frame")
        kind, _seq, payload = self._next_frame()
        if kind != KIND_END:
            raise RecoveryError(self.path, self.frame_offset, "data continues after the stream's end")
        try:
            end = msgpack.unpackb(payload)
        except Exception as exc:
            raise RecoveryError(self.path, self.frame_offset, f"END frame does not decode: {exc}") from None
        expected = {"frames": self.frames, "bytes": self.stream_bytes, "arrays": arrays}
        if end != expected:
            raise RecoveryError(self.path, self.frame_offset, f"END frame says {end}, file holds {expected}")
        if self.handle.read(1):
            raise RecoveryError(self.path, self.offset, "bytes after the END frame")


def read_snapshot_header(path: Path) -> int:
    """The sequence number a snapshot file covers, from its header; raises RecoveryError."""
    with open(path, "rb") as handle:
        try:
            return decode_file_header(handle.read(FILE_HEADER_BYTES), SNAPSHOT_MAGIC).seq
        except FrameError as exc:
            raise exc.at(path) from None


def read_snapshot(path: Path) -> tuple[int, Any]:
    """(covered sequence number, tree) of a snapshot file; raises RecoveryError on any damage."""
    with open(path, "rb") as handle:
        try:
            seq = decode_file_header(handle.read(FILE_HEADER_BYTES), SNAPSHOT_MAGIC).seq
        except FrameError as exc:
            raise exc.at(path) from None
        source = _FrameSource(path, handle)
        prefix = bytearray(_U64.size)
        source.read_into(memoryview(prefix))
        (tree_len,) = _U64.unpack(prefix)
        if tree_len > os.fstat(handle.fileno()).st_size:
            raise RecoveryError(path, source.frame_offset, f"tree length {tree_len} exceeds the file")
        tree_bytes = bytearray(tree_len)
        source.read_into(memoryview(tree_bytes))
        try:
            tree, arrays = decode_tree(tree_bytes)
        except Exception as exc:  # malformed content behind a valid checksum
            raise RecoveryError(path, FILE_HEADER_BYTES, f"snapshot tree does not decode: {exc}") from None
        del tree_bytes
        for array in arrays:
            if array.size:
                source.read_into(_array_bytes(array))
        source.finish(len(arrays))
    return seq, tree

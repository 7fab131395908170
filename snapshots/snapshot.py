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

import bisect
import os
import struct
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

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
    FrameHeader,
    RecoveryError,
    checksum_mismatch,
    cut_short,
    decode_file_header,
    decode_frame_header,
    encode_file_header,
    encode_frame,
    frame_header,
)
from snapshots.wal import fsync_directory

EXT_NDARRAY = 1
EXT_BITMAP = 2
_U64 = struct.Struct("<Q")
# first byte of a msgpack map: fixmap, map 16, map 32
_MAP_FIRST_BYTES = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
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
    tree, arrays, _ = decode_tree_parts(data)
    return tree, arrays


def decode_tree_parts(data: bytes | bytearray | memoryview) -> tuple[Any, list[np.ndarray], dict[Any, int]]:
    """`decode_tree`, and for a tree that is a map, per key: how many arrays precede the end of
    its value (the arrays of tree[key] are arrays[bounds of the key before : bounds[key]])."""
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

    options: dict[str, Any] = {"raw": False, "strict_map_key": False, "ext_hook": hook, "use_list": True}
    if not data or data[0] not in _MAP_FIRST_BYTES:
        return msgpack.unpackb(data, **options), arrays, {}
    unpacker = msgpack.Unpacker(max_buffer_size=len(data), **options)
    unpacker.feed(data)
    tree: dict[Any, Any] = {}
    bounds: dict[Any, int] = {}
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        tree[key] = unpacker.unpack()
        bounds[key] = len(arrays)
    if unpacker.tell() != len(data):
        raise ValueError(f"{len(data) - unpacker.tell()} bytes after the tree")
    return tree, arrays, bounds


def _array_bytes(array: np.ndarray) -> memoryview:
    """The array's bytes in C order, without a copy (the array is C-contiguous)."""
    return memoryview(array.reshape(-1).view(np.uint8).data)


# ------------------------------------------------------------------------ writing


class _FrameSink:
    """Cuts a byte stream into DATA frames of at most `limit` bytes, written to `out`."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out = out
        self.limit = limit
        self.parts: list[memoryview] = []  # the next frame's payload so far, not copied
        self.part_bytes = 0
        self.frames = 0
        self.stream_bytes = 0

    def write(self, data: bytes | memoryview) -> None:
        """Adds `data` to the stream; it must stay unchanged until its frame is written."""
        view = memoryview(data)
        self.stream_bytes += len(view)
        while view:
            take = min(len(view), self.limit - self.part_bytes)
            self.parts.append(view[:take])
            self.part_bytes += take
            view = view[take:]
            if self.part_bytes == self.limit:
                self._emit()

    def finish(self, arrays: int) -> None:
        if self.parts:
            self._emit()
        end = msgpack.packb({"frames": self.frames, "bytes": self.stream_bytes, "arrays": arrays})
        self.out.write(encode_frame(KIND_END, self.frames, end))

    def _emit(self) -> None:
        self.out.write(frame_header(KIND_DATA, self.frames, self.parts))
        for part in self.parts:
            self.out.write(part)
        self.parts, self.part_bytes = [], 0
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

_CHUNK_BYTES = 4 * 1024 * 1024  # direct reads go in pieces this size: checksummed while cached, cancellable


class _Cancelled(Exception):
    """The reader was closed before its arrays were filled."""


class _FrameSource:
    """Reads the DATA frames of a snapshot in order and hands out their bytes.

    By default a frame is read whole and checked before any of its bytes are handed out (the
    tree: decoded only once checked). With `direct`, payloads go straight into the caller's
    buffer (no copy) and each frame is checked at its last byte; `verified_bytes` tells how
    much of the stream lies in checked frames, so a caller uses nothing that was not checked.
    """

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.handle = handle
        self.offset = FILE_HEADER_BYTES  # file offset of the next frame
        self.frames = 0
        self.frame_offset = FILE_HEADER_BYTES  # file offset of the frame being read
        self.payload = memoryview(b"")  # checked bytes of a buffered frame not handed out yet
        self.header: FrameHeader | None = None  # the frame being read direct
        self.left = 0  # payload bytes of that frame not read yet
        self.crc = 0  # running checksum of that frame
        self.stream_bytes = 0  # handed out
        self.verified_bytes = 0  # stream bytes of checked frames
        self.on_verified: Callable[[int], None] = lambda verified: None
        self.cancelled = False

    def _damage(self, exc: FrameError) -> RecoveryError:
        return RecoveryError(self.path, self.frame_offset, exc.reason)

    def _next_header(self) -> FrameHeader:
        """The next frame's header, checked; the file is left at its payload."""
        at = self.offset
        head = self.handle.read(FRAME_HEADER_BYTES)
        if len(head) < FRAME_HEADER_BYTES:
            raise RecoveryError(self.path, at, "snapshot ends before its END frame (truncated)")
        self.frame_offset = at
        try:
            header = decode_frame_header(head, 0)
        except FrameError as exc:
            raise self._damage(exc) from None
        self.offset = at + FRAME_HEADER_BYTES + header.length
        return header

    def _read_payload(self, dest: memoryview, header: FrameHeader, done: int) -> None:
        """Fills `dest` with payload bytes of `header`'s frame, `done` of them already read."""
        got = 0
        while got < len(dest):
            n = self.handle.readinto(dest[got:])  # type: ignore[attr-defined]
            if not n:
                raise self._damage(cut_short(0, header.length, FRAME_HEADER_BYTES + done + got))
            got += n

    def _next_data_header(self) -> FrameHeader:
        header = self._next_header()
        if header.kind != KIND_DATA:
            raise RecoveryError(self.path, self.frame_offset, "snapshot stream ends early")
        if header.seq != self.frames:
            raise RecoveryError(self.path, self.frame_offset, f"frame {header.seq} where frame {self.frames} belongs")
        self.frames += 1
        return header

    def _verified(self, header: FrameHeader, crc: int) -> None:
        if crc != header.crc:
            raise self._damage(checksum_mismatch(0))
        self.verified_bytes += header.length
        self.on_verified(self.verified_bytes)

    def _buffer_frame(self) -> None:
        header = self._next_data_header()
        buf = bytearray(header.length)
        self._read_payload(memoryview(buf), header, 0)
        self._verified(header, zlib.crc32(buf, header.head_crc))
        self.payload = memoryview(buf)

    def read_into(self, dest: memoryview, *, direct: bool = False) -> None:
        """Fills `dest` from the stream, crossing frame boundaries as needed."""
        filled = 0
        while filled < len(dest):
            if self.cancelled:
                raise _Cancelled()
            if self.payload:
                take = min(len(dest) - filled, len(self.payload))
                dest[filled : filled + take] = self.payload[:take]
                self.payload = self.payload[take:]
                filled += take
                continue
            if not direct or self.header is None:
                if not direct:
                    self._buffer_frame()
                    continue
                self.header = self._next_data_header()
                self.left, self.crc = self.header.length, self.header.head_crc
            header = self.header
            take = min(len(dest) - filled, self.left, _CHUNK_BYTES)
            piece = dest[filled : filled + take]
            self._read_payload(piece, header, header.length - self.left)
            self.crc = zlib.crc32(piece, self.crc)
            self.left -= take
            filled += take
            if self.left == 0:
                self.header = None
                self._verified(header, self.crc)
        self.stream_bytes += filled

    def finish(self, arrays: int) -> None:
        if self.payload or self.header is not None:
            unread = len(self.payload) + self.left
            raise RecoveryError(self.path, self.frame_offset, f"{unread} unread bytes in the last data frame")
        header = self._next_header()
        if header.kind != KIND_END:
            raise RecoveryError(self.path, self.frame_offset, "data continues after the stream's end")
        payload = bytearray(header.length)
        self._read_payload(memoryview(payload), header, 0)
        if zlib.crc32(payload, header.head_crc) != header.crc:
            raise self._damage(checksum_mismatch(0))
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


class SnapshotReader:
    """A snapshot file being read: header and tree at once, the arrays by a background thread.

    The tree is decoded only after its frames are checked; its arrays are empty until
    `wait_part` or `wait_arrays` says they are filled and their frames checked, so a restore
    can use the first arrays while later ones are still read. `finish` waits for the whole
    file and raises RecoveryError on any damage; `close` stops the thread (always call it,
    or use the reader as a context manager).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "rb")
        try:
            try:
                self.seq = decode_file_header(self._handle.read(FILE_HEADER_BYTES), SNAPSHOT_MAGIC).seq
            except FrameError as exc:
                raise exc.at(path) from None
            self._source = _FrameSource(path, self._handle)
            self.tree, self._arrays, self._bounds = self._read_tree()
        except BaseException:
            self._handle.close()
            raise
        self._index = {id(array): i for i, array in enumerate(self._arrays)}
        # stream offset after array i: array i is usable once verified_bytes reaches ends[i]
        self._ends = (self._source.stream_bytes + np.cumsum([a.nbytes for a in self._arrays], dtype=np.int64)).tolist()
        self._ready = 0  # arrays filled and checked
        self._done = False
        self._failure: BaseException | None = None
        self._changed = threading.Condition()
        self._source.on_verified = self._progress
        self._progress(self._source.verified_bytes)
        self._thread = threading.Thread(target=self._fill, name="snapshot-read", daemon=True)
        self._thread.start()

    def _read_tree(self) -> tuple[Any, list[np.ndarray], dict[Any, int]]:
        source, path = self._source, self.path
        prefix = bytearray(_U64.size)
        source.read_into(memoryview(prefix))
        (tree_len,) = _U64.unpack(prefix)
        if tree_len > os.fstat(self._handle.fileno()).st_size:
            raise RecoveryError(path, source.frame_offset, f"tree length {tree_len} exceeds the file")
        tree_bytes = bytearray(tree_len)
        source.read_into(memoryview(tree_bytes))
        try:
            return decode_tree_parts(tree_bytes)
        except Exception as exc:  # malformed content behind a valid checksum
            raise RecoveryError(path, FILE_HEADER_BYTES, f"snapshot tree does not decode: {exc}") from None

    def _progress(self, verified: int) -> None:
        ready = bisect.bisect_right(self._ends, verified)
        if ready != self._ready:
            with self._changed:
                self._ready = ready
                self._changed.notify_all()

    def _fill(self) -> None:
        failure: BaseException | None = None
        try:
            for array in self._arrays:
                if array.size:
                    self._source.read_into(_array_bytes(array), direct=True)
            self._source.finish(len(self._arrays))
        except _Cancelled:
            failure = RecoveryError(self.path, self._source.offset, "snapshot read was stopped")
        except BaseException as exc:  # handed to the thread that waits
            failure = exc
        with self._changed:
            self._failure, self._done = failure, True
            self._changed.notify_all()

    def _wait(self, count: int) -> None:
        with self._changed:
            while self._ready < count and not self._done:
                self._changed.wait()
            if self._ready < count and self._failure is not None:
                raise self._failure

    def wait_part(self, key: Any) -> None:
        """Blocks until every array of `tree[key]` is filled and checked (the tree is a map;
        otherwise every array); raises what damage the reading found first."""
        self._wait(self._bounds.get(key, len(self._arrays)))

    def wait_arrays(self, *values: Any) -> None:
        """Blocks until those of `values` that are arrays of the tree are filled and checked."""
        indices = [self._index.get(id(value), -1) for value in values if isinstance(value, np.ndarray)]
        self._wait(max(indices, default=-1) + 1)

    def finish(self) -> None:
        """Waits for the whole file: every array filled, every frame and the END frame checked."""
        self._thread.join()
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Stops the background read (if still going) and closes the file."""
        self._source.cancelled = True
        self._thread.join()
        self._handle.close()

    def __enter__(self) -> "SnapshotReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_snapshot(path: Path) -> tuple[int, Any]:
    """(covered sequence number, tree) of a snapshot file; raises RecoveryError on any damage."""
    with SnapshotReader(path) as reader:
        reader.finish()
        return reader.seq, reader.tree

"""On-disk framing shared by the log, snapshots and the MANIFEST.

Every file starts with a 24-byte header; everything after it is a sequence of frames.

File header (little endian)::

    0   8  magic        b"SEGDWAL\\0" | b"SEGDSNP\\0" | b"SEGDMAN\\0"
    8   2  version      FORMAT_VERSION
    10  2  reserved     0
    12  8  seq          log: first record's sequence number; snapshot: last sequence it covers
    20  4  crc32        zlib.crc32 of bytes 0..20

Frame (little endian)::

    0   2  magic        FRAME_MAGIC
    2   1  kind         KIND_*
    3   1  reserved     0
    4   4  length       payload bytes, at most MAX_FRAME_BYTES (MAX_RECORD_BYTES for records)
    8   8  seq          log: record sequence number; snapshot: frame index
    16  4  crc32        zlib.crc32 of bytes 0..16 followed by the payload
    20  .  payload

Encoding and decoding are pure functions over bytes; callers do the file I/O.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
WAL_MAGIC = b"SEGDWAL\x00"
SNAPSHOT_MAGIC = b"SEGDSNP\x00"
MANIFEST_MAGIC = b"SEGDMAN\x00"
FRAME_MAGIC = b"\xa7\x5e"

KIND_RECORD = 1  # one log record: msgpack [op, payload]
KIND_DATA = 2  # a slice of a snapshot's byte stream
KIND_END = 3  # a snapshot's last frame: msgpack summary of what came before
KIND_MANIFEST = 4  # the MANIFEST body
KINDS = frozenset({KIND_RECORD, KIND_DATA, KIND_END, KIND_MANIFEST})

MAX_FRAME_BYTES = 64 * 1024 * 1024  # snapshot and MANIFEST frames
MAX_RECORD_BYTES = 1024 * 1024 * 1024  # one log record: a whole request, which may be larger

_FILE_HEADER = struct.Struct("<8sHHQ")
_FRAME_HEADER = struct.Struct("<2sBBIQ")
_CRC = struct.Struct("<I")
FILE_HEADER_BYTES = _FILE_HEADER.size + _CRC.size  # 24
FRAME_HEADER_BYTES = _FRAME_HEADER.size + _CRC.size  # 20


class RecoveryError(Exception):
    """A durable file is damaged or inconsistent; names the file and the byte offset."""

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path} at byte {offset}: {reason}")


class FrameError(Exception):
    """A frame or header that does not decode. `incomplete`: the bytes end inside it."""

    def __init__(self, offset: int, reason: str, *, incomplete: bool = False) -> None:
        self.offset = offset
        self.reason = reason
        self.incomplete = incomplete
        super().__init__(f"byte {offset}: {reason}")

    def at(self, path: Path | str) -> RecoveryError:
        """The same damage as a RecoveryError naming `path`."""
        return RecoveryError(path, self.offset, self.reason)


@dataclass(frozen=True, slots=True)
class FileHeader:
    magic: bytes
    version: int
    seq: int


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    seq: int
    payload: memoryview
    offset: int  # where the frame starts
    end: int  # first byte after the frame


def encode_file_header(magic: bytes, seq: int, version: int = FORMAT_VERSION) -> bytes:
    """The 24-byte header of a new file."""
    head = _FILE_HEADER.pack(magic, version, 0, seq)
    return head + _CRC.pack(zlib.crc32(head))


def decode_file_header(data: bytes | memoryview, magic: bytes) -> FileHeader:
    """Checks magic, checksum and version of a file's first bytes; raises FrameError."""
    if len(data) < FILE_HEADER_BYTES:
        raise FrameError(0, f"file header is {len(data)} bytes, expected {FILE_HEADER_BYTES}", incomplete=True)
    head = bytes(data[: _FILE_HEADER.size])
    (crc,) = _CRC.unpack_from(data, _FILE_HEADER.size)
    found_magic, version, _reserved, seq = _FILE_HEADER.unpack(head)
    if found_magic != magic:
        raise FrameError(0, f"bad magic {found_magic!r}, expected {magic!r}")
    if zlib.crc32(head) != crc:
        raise FrameError(0, "file header checksum mismatch")
    if version != FORMAT_VERSION:
        raise FrameError(8, f"unsupported format version {version} (this build reads {FORMAT_VERSION})")
    return FileHeader(found_magic, version, seq)


def max_payload(kind: int) -> int:
    """The largest payload a frame of `kind` may carry."""
    return MAX_RECORD_BYTES if kind == KIND_RECORD else MAX_FRAME_BYTES


def frame_header(kind: int, seq: int, payload: bytes | memoryview | Sequence[bytes | memoryview]) -> bytes:
    """The 20-byte header of a frame carrying `payload`, or the concatenation of a list of
    pieces (written before it, payload not copied)."""
    parts = [payload] if isinstance(payload, (bytes, bytearray, memoryview)) else payload
    length = sum(len(part) for part in parts)
    if length > max_payload(kind):
        raise FrameError(0, f"frame payload of {length} bytes exceeds {max_payload(kind)}")
    head = _FRAME_HEADER.pack(FRAME_MAGIC, kind, 0, length, seq)
    crc = zlib.crc32(head)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return head + _CRC.pack(crc)


def encode_frame(kind: int, seq: int, payload: bytes | memoryview) -> bytes:
    """Header and payload of one frame as one bytes object."""
    return frame_header(kind, seq, payload) + bytes(payload)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    kind: int
    length: int  # payload bytes
    seq: int
    crc: int  # zlib.crc32 of the header's first 16 bytes followed by the payload
    head_crc: int  # zlib.crc32 of the header's first 16 bytes: where the payload's checksum starts


def decode_frame_header(buf: bytes | memoryview, offset: int) -> FrameHeader:
    """The header of the frame starting at `offset` of `buf` (payload not read or checked);
    raises FrameError naming the offset."""
    size = len(buf)
    if size - offset < FRAME_HEADER_BYTES:
        raise FrameError(offset, f"frame header cut short ({size - offset} of {FRAME_HEADER_BYTES} bytes)", incomplete=True)
    magic, kind, reserved, length, seq = _FRAME_HEADER.unpack_from(buf, offset)
    if magic != FRAME_MAGIC:
        raise FrameError(offset, "no frame magic")
    if kind not in KINDS or reserved != 0:
        raise FrameError(offset, f"unknown frame kind {kind}")
    if length > max_payload(kind):
        raise FrameError(offset, f"frame length {length} exceeds {max_payload(kind)}")
    (crc,) = _CRC.unpack_from(buf, offset + _FRAME_HEADER.size)
    head_crc = zlib.crc32(memoryview(buf)[offset : offset + _FRAME_HEADER.size])
    return FrameHeader(kind, length, seq, crc, head_crc)


def cut_short(offset: int, length: int, available: int) -> FrameError:
    """The error for a frame at `offset` whose payload of `length` bytes ends at byte `available`."""
    return FrameError(offset, f"frame of {length} bytes cut short at byte {available}", incomplete=True)


def checksum_mismatch(offset: int) -> FrameError:
    """The error for a frame at `offset` whose payload does not match its checksum."""
    return FrameError(offset, "frame checksum mismatch")


def decode_frame(buf: bytes | memoryview, offset: int) -> Frame:
    """The frame starting at `offset` of `buf`; raises FrameError naming the offset."""
    view = memoryview(buf)
    header = decode_frame_header(view, offset)
    start = offset + FRAME_HEADER_BYTES
    end = start + header.length
    if end > len(view):
        raise cut_short(offset, header.length, len(view))
    payload = view[start:end]
    if zlib.crc32(payload, header.head_crc) != header.crc:
        raise checksum_mismatch(offset)
    return Frame(header.kind, header.seq, payload, offset, end)


def find_frame(buf: bytes | memoryview, start: int, kind: int) -> Frame | None:
    """The first valid frame of `kind` at or after `start`, scanning byte by byte; None if none.

    Used after damage to tell a torn tail (nothing valid follows) from damage in the middle.
    """
    data = bytes(buf) if isinstance(buf, memoryview) else buf
    pos = data.find(FRAME_MAGIC, start)
    while pos != -1:
        try:
            frame = decode_frame(data, pos)
        except FrameError:
            frame = None
        if frame is not None and frame.kind == kind:
            return frame
        pos = data.find(FRAME_MAGIC, pos + 1)
    return None


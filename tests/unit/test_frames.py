"""Frame and file-header encoding: round trips, and every kind of damage is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapshots.frames import (
    FILE_HEADER_BYTES,
    FRAME_HEADER_BYTES,
    KIND_DATA,
    KIND_RECORD,
    MAX_FRAME_BYTES,
    SNAPSHOT_MAGIC,
    WAL_MAGIC,
    FrameError,
    decode_file_header,
    decode_frame,
    encode_file_header,
    encode_frame,
    find_frame,
    frame_header,
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from([1, 2, 3, 4]),
    seq=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=2000),
    lead=st.binary(max_size=16),
)
def test_frame_round_trip(kind: int, seq: int, payload: bytes, lead: bytes) -> None:
    data = lead + encode_frame(kind, seq, payload)
    frame = decode_frame(data, len(lead))
    assert (frame.kind, frame.seq, bytes(frame.payload)) == (kind, seq, payload)
    assert frame.offset == len(lead)
    assert frame.end == len(data)


def test_frame_header_matches_encoded_frame() -> None:
    payload = b"x" * 100
    assert encode_frame(KIND_DATA, 7, payload) == frame_header(KIND_DATA, 7, payload) + payload


@settings(max_examples=60, deadline=None)
@given(seq=st.integers(0, 2**64 - 1), magic=st.sampled_from([WAL_MAGIC, SNAPSHOT_MAGIC]))
def test_file_header_round_trip(seq: int, magic: bytes) -> None:
    header = decode_file_header(encode_file_header(magic, seq), magic)
    assert (header.magic, header.seq, header.version) == (magic, seq, 1)


def test_file_header_refuses_other_magic_version_and_damage() -> None:
    good = encode_file_header(WAL_MAGIC, 5)
    with pytest.raises(FrameError, match="bad magic"):
        decode_file_header(good, SNAPSHOT_MAGIC)
    with pytest.raises(FrameError, match="version 2"):
        decode_file_header(encode_file_header(WAL_MAGIC, 5, version=2), WAL_MAGIC)
    flipped = bytearray(good)
    flipped[14] ^= 0x10
    with pytest.raises(FrameError, match="checksum"):
        decode_file_header(bytes(flipped), WAL_MAGIC)
    with pytest.raises(FrameError) as info:
        decode_file_header(good[: FILE_HEADER_BYTES - 1], WAL_MAGIC)
    assert info.value.incomplete


def test_every_truncation_is_incomplete() -> None:
    data = encode_frame(KIND_RECORD, 3, b"payload bytes")
    for cut in range(len(data)):
        with pytest.raises(FrameError) as info:
            decode_frame(data[:cut], 0)
        assert info.value.incomplete, cut
        assert info.value.offset == 0


def test_every_bit_flip_is_refused() -> None:
    data = encode_frame(KIND_RECORD, 3, b"some payload")
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FrameError):
            decode_frame(bytes(flipped), 0)


def test_zero_bytes_are_not_a_frame() -> None:
    with pytest.raises(FrameError, match="magic"):
        decode_frame(bytes(64), 0)


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        frame_header(KIND_DATA, 0, memoryview(bytearray(MAX_FRAME_BYTES + 1)))


def test_find_frame_skips_garbage_and_other_kinds() -> None:
    garbage = b"\xa7\x5e" + b"\x00" * 30  # a magic that starts no valid frame
    other = encode_frame(KIND_DATA, 1, b"data")
    wanted = encode_frame(KIND_RECORD, 9, b"record")
    data = garbage + other + wanted
    found = find_frame(data, 0, KIND_RECORD)
    assert found is not None
    assert (found.seq, found.offset) == (9, len(garbage) + len(other))
    assert find_frame(data, found.offset + 1, KIND_RECORD) is None
    assert FRAME_HEADER_BYTES == 20 and FILE_HEADER_BYTES == 24

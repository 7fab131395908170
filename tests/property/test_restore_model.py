"""Restores that work ahead of or behind the data: a snapshot read part by part while its
arrays are still being read, and a string dictionary whose tables are built on first use.

Each is held to the plain answer: the part-by-part read gives exactly the arrays written (and
nothing unchecked: after damage, what a wait lets through is still what was written), and a
restored dictionary answers every question as the dictionary it was saved from.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.columns import StringDictionary
from snapshots.frames import RecoveryError
from snapshots.snapshot import SnapshotReader, write_snapshot

pytestmark = pytest.mark.property

DTYPES = (np.uint8, np.int32, np.int64, np.float64, np.bool_)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, object]:
    """A map of parts, each a few arrays (some empty) and plain values."""
    tree: dict[str, object] = {}
    for p in range(draw(st.integers(1, 5))):
        arrays = []
        for _ in range(draw(st.integers(0, 3))):
            dtype = draw(st.sampled_from(DTYPES))
            n = draw(st.integers(0, 300))
            seed = draw(st.integers(0, 2**32 - 1))
            arrays.append((np.random.default_rng(seed).random(n) * 1000).astype(dtype))
        tree[f"part{p}"] = {"arrays": arrays, "label": draw(st.text(max_size=20))}
    return tree


def _write(tree: dict[str, object], frame_bytes: int) -> tuple[Path, bytes]:
    directory = Path(tempfile.mkdtemp(prefix="segmentd-reader-"))
    path = write_snapshot(directory, 9, tree, frame_bytes=frame_bytes, fsync=False).path
    return path, path.read_bytes()


def _same_part(written: object, read: object) -> bool:
    a, b = written["arrays"], read["arrays"]  # type: ignore[index]
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


@given(tree=trees(), frame_bytes=st.integers(16, 2000))
def test_parts_read_while_later_arrays_load_are_the_written_ones(tree: dict[str, object], frame_bytes: int) -> None:
    path, _ = _write(tree, frame_bytes)
    with SnapshotReader(path) as reader:
        assert reader.seq == 9
        for key, part in tree.items():
            reader.wait_part(key)
            assert _same_part(part, reader.tree[key])
        reader.finish()


@given(tree=trees(), frame_bytes=st.integers(16, 2000), data=st.data())
def test_damage_never_lets_an_unchecked_array_through(tree: dict[str, object], frame_bytes: int,
                                                      data: st.DataObject) -> None:
    path, original = _write(tree, frame_bytes)
    bit = data.draw(st.integers(0, len(original) * 8 - 1))
    flipped = bytearray(original)
    flipped[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(flipped))
    try:
        with SnapshotReader(path) as reader:
            for key, part in tree.items():
                reader.wait_part(key)
                assert _same_part(part, reader.tree[key])
            reader.finish()
    except RecoveryError as exc:
        assert exc.path == str(path) and 0 <= exc.offset <= bit // 8
    else:
        pytest.fail(f"bit {bit} flipped without a RecoveryError")


def test_closing_a_reader_mid_read_stops_it(tmp_path: Path) -> None:
    tree = {"big": [np.arange(200_000, dtype=np.int64) for _ in range(8)]}
    path = write_snapshot(tmp_path, 1, tree, frame_bytes=4096, fsync=False).path
    reader = SnapshotReader(path)
    reader.close()  # whatever the thread had read, it ends and the file is closed
    assert reader._handle.closed and not reader._thread.is_alive()


# ------------------------------------------------------------------ string dictionary

ops = st.lists(
    st.one_of(
        st.tuples(st.just("encode"), st.text(max_size=6)),
        st.tuples(st.just("release"), st.integers(0, 40)),
    ),
    max_size=60,
)


def _dictionary(steps: list[tuple[str, object]]) -> StringDictionary:
    d = StringDictionary()
    for op, arg in steps:
        if op == "encode":
            d.encode(arg)  # type: ignore[arg-type]
        elif len(d):
            d.release(np.array([int(arg) % len(d)]))  # type: ignore[call-overload]
    return d


def _answers(d: StringDictionary, probes: list[str]) -> tuple[object, ...]:
    codes = range(len(d))
    return (
        len(d),
        [d.decode(c) for c in codes],
        [d.live(c) for c in codes],
        [d.lookup(s) for s in probes],
        np.nan_to_num(d.numeric(), nan=-1.5).tolist(),
        d.nbytes,
    )


@given(steps=ops, probes=st.lists(st.text(max_size=6), max_size=10), then=ops)
def test_restored_dictionary_answers_and_changes_as_the_saved_one(
    steps: list[tuple[str, object]], probes: list[str], then: list[tuple[str, object]]
) -> None:
    saved = _dictionary(steps)
    restored = StringDictionary.from_state(saved.to_state())
    unbuilt_state = restored.to_state()  # handed back as restored, before any table is built
    for key in ("codes", "offsets", "blob"):
        assert np.array_equal(unbuilt_state[key], saved.to_state()[key])
    known = [s for s in (saved.decode(c) for c in range(len(saved))) if s] + probes
    assert _answers(restored, known) == _answers(saved, known)
    for d in (saved, restored):  # the same writes give the same codes
        for op, arg in then:
            if op == "encode":
                d.encode(arg)  # type: ignore[arg-type]
            elif len(d):
                d.release(np.array([int(arg) % len(d)]))  # type: ignore[call-overload]
    assert _answers(restored, known) == _answers(saved, known)


def test_readers_racing_the_first_build_all_get_answers() -> None:
    saved = StringDictionary()
    words = [f"w{i}" for i in range(20_000)]
    for w in words:
        saved.encode(w)
    saved.release(np.arange(0, 20_000, 7))
    state = saved.to_state()
    for _ in range(5):
        restored = StringDictionary.from_state(state)
        wrong: list[str] = []
        start = threading.Barrier(5)

        def read(offset: int) -> None:
            start.wait()
            for i in range(offset, 20_000, 997):
                expect = None if i % 7 == 0 else i
                if restored.lookup(words[i]) != expect or restored.decode(i) != ("" if i % 7 == 0 else words[i]):
                    wrong.append(words[i])

        threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        start.wait()
        builder = restored.build_in_background()
        for t in threads:
            t.join()
        if builder is not None:
            builder.join()
        assert not wrong
        assert restored.encode("new") == 20_000

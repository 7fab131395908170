"""Restores that work ahead of or behind the data: a snapshot read part by part while its
arrays are still being read, a restored string dictionary, and a contact book whose maps are
built on first use.

Each is held to the plain answer: the part-by-part read gives exactly the arrays written (and
nothing unchecked: after damage, what a wait lets through is still what was written), and a
restored dictionary or book answers every question as the one it was saved from.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.dictionary import StringDictionary
from core.contacts import ContactBook
from core.errors import SegmentdError
from core.identifiers import Identifier, IdKind
from snapshots.frames import RecoveryError
from snapshots.snapshot import SnapshotReader, write_snapshot
from tests.unit.test_contacts import assert_same_state

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
    )


@given(steps=ops, probes=st.lists(st.text(max_size=6), max_size=10), then=ops)
def test_restored_dictionary_answers_and_changes_as_the_saved_one(
    steps: list[tuple[str, object]], probes: list[str], then: list[tuple[str, object]]
) -> None:
    saved = _dictionary(steps)
    restored = StringDictionary.from_state(saved.to_state())
    again = restored.to_state()
    for key in ("codes", "offsets", "blob"):
        assert np.array_equal(again[key], saved.to_state()[key])
    known = [s for s in (saved.decode(c) for c in range(len(saved))) if s] + probes
    assert _answers(restored, known) == _answers(saved, known)
    for d in (saved, restored):  # the same writes give the same codes
        for op, arg in then:
            if op == "encode":
                d.encode(arg)  # type: ignore[arg-type]
            elif len(d):
                d.release(np.array([int(arg) % len(d)]))  # type: ignore[call-overload]
    assert _answers(restored, known) == _answers(saved, known)


def race_first_build(restore: Callable[[], Any], wrong_at: Callable[[Any, int], bool], n: int) -> None:
    """Four threads read a fresh restore (`wrong_at(restored, i)` for a stride of i < n) while
    the main thread builds its maps; five rounds. Fails naming the reads that went wrong."""
    for _ in range(5):
        restored = restore()
        wrong: list[int] = []
        start = threading.Barrier(5)

        def read(offset: int) -> None:
            start.wait()
            wrong.extend(i for i in range(offset, n, 97) if wrong_at(restored, i))

        threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        start.wait()
        restored.finish_restore()
        for t in threads:
            t.join()
        assert not wrong


# ------------------------------------------------------------------ contact book

small_text = st.sampled_from(["a", "b", "c", "d", "é", "x1", "x2"])
docs = st.fixed_dictionaries(
    {},
    optional={
        "externalId": small_text,
        "email": st.sampled_from(["a@x.io", "b@x.io", "c@x.io"]),
        "phone": st.sampled_from(["+4711", "+4722"]),
        "pushTokens": st.lists(small_text, max_size=3),
        "keys": st.dictionaries(st.sampled_from(["card", "crm"]), small_text, max_size=2),
        "fields": st.dictionaries(
            st.sampled_from(["city", "score", "vip", "note"]),
            st.one_of(st.none(), small_text, st.integers(-5, 5), st.booleans(), st.floats(-2, 2)),
            max_size=3,
        ),
    },
)
book_ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), docs),
        st.tuples(st.just("anonymous"), small_text),
        st.tuples(st.just("merge"), st.integers(1, 12), st.integers(1, 12)),
        st.tuples(st.just("erase"), st.integers(1, 12)),
    ),
    max_size=25,
)


def _apply(book: ContactBook, op: tuple[Any, ...], now: int) -> Any:
    """One change; returns its outcome (or the error's type) so two books can be compared."""
    try:
        if op[0] == "upsert":
            return book.upsert(op[1], "Api", now)
        if op[0] == "anonymous":
            return book.create([Identifier(IdKind.ANONYMOUS, op[1])], "Event", now)
        if op[0] == "merge":
            return book.merge(op[1], op[2])
        return book.erase(op[1])
    except SegmentdError as exc:
        return type(exc).__name__


PROBES = [Identifier(kind, v, name) for kind, name in ((IdKind.EXTERNAL_ID, ""), (IdKind.EMAIL, ""),
          (IdKind.PUSH_TOKEN, ""), (IdKind.KEY, "card"), (IdKind.ANONYMOUS, ""))
          for v in ("a", "b", "x1", "a@x.io", "é")]
# Every read of the book, each as a function of the book alone.
BOOK_READS: list[Callable[[ContactBook], Any]] = [
    lambda book: (len(book), book.max_id, book.conflicts, book.ids().tolist()),
    lambda book: [book.get(c) if book.exists(c) else None for c in range(book.max_id + 2)],
    lambda book: [sorted(map(repr, book.identifiers(c))) if book.exists(c) else None for c in range(book.max_id + 2)],
    lambda book: [book.find(p) for p in PROBES],
    lambda book: [book.owner_of((p.kind, p.value, p.key_name)) for p in PROBES],
    lambda book: [book.value_of(c, k, "card") for c in range(book.max_id + 2) for k in (IdKind.EMAIL, IdKind.KEY)],
    lambda book: [book.has_identifier_mask(k, n).tolist() for k, n in ((IdKind.PUSH_TOKEN, ""), (IdKind.KEY, ""),
                                                                     (IdKind.KEY, "crm"), (IdKind.EMAIL, ""))],
    lambda book: [book.can_attach(c, p) for c in range(1, book.max_id + 1) for p in PROBES],
    lambda book: book.field_names(),
    lambda book: [book.field_values(f) for f in ("city", "score", "vip", "note", "createdAt", "source")],
]


def _book_answers(book: ContactBook) -> tuple[Any, ...]:
    return tuple(read(book) for read in BOOK_READS)


@given(before=book_ops, after=book_ops)
def test_restored_book_answers_and_changes_as_the_saved_one(before: list[tuple[Any, ...]],
                                                             after: list[tuple[Any, ...]]) -> None:
    saved = ContactBook()
    for now, op in enumerate(before):
        _apply(saved, op, now)
    state = saved.to_state()
    for read in BOOK_READS:  # each read as the first call on a fresh restore
        assert read(ContactBook.from_state(state)) == read(saved)
    for cid in saved.ids().tolist():
        assert ContactBook.from_state(state).get(cid) == saved.get(cid)
        assert ContactBook.from_state(state).identifiers(cid) == saved.identifiers(cid)
    assert_same_state(ContactBook.from_state(state).to_state(), state)  # the same, first call
    restored = ContactBook.from_state(state)
    for now, op in enumerate(after, start=len(before)):
        assert _apply(restored, op, now) == _apply(saved, op, now)
    assert _book_answers(restored) == _book_answers(saved)
    assert_same_state(restored.to_state(), saved.to_state())


@given(before=book_ops, doc=docs)
def test_each_write_as_the_first_call_builds_the_restored_maps(before: list[tuple[Any, ...]],
                                                               doc: dict[str, Any]) -> None:
    saved = ContactBook()
    for now, op in enumerate(before):
        _apply(saved, op, now)
    state = saved.to_state()
    firsts: list[tuple[Any, ...]] = [("upsert", doc), ("anonymous", "a"), ("anonymous", "new")]
    for cid in range(1, saved.max_id + 1):
        firsts += [("erase", cid), ("merge", 1, cid), ("merge", cid, 1)]
    for op in firsts:  # each on a fresh restore, before any read
        restored, model = ContactBook.from_state(state), ContactBook.from_state(state)
        model.finish_restore()
        assert _apply(restored, op, 99) == _apply(model, op, 99)
        assert _book_answers(restored) == _book_answers(model)


def test_lookups_racing_the_first_build_all_get_answers() -> None:
    saved = ContactBook()
    for i in range(1, 3001):
        saved.upsert({"externalId": f"E{i}", "pushTokens": [f"t{i}", f"u{i}"], "fields": {"n": i}}, "Import", i)
    state = saved.to_state()

    def wrong_at(restored: ContactBook, i: int) -> bool:
        cid = i + 1
        found = restored.find(Identifier(IdKind.EXTERNAL_ID, f"E{cid}"))
        token = restored.owner_of((IdKind.PUSH_TOKEN, f"u{cid}", ""))
        return found != cid or token != cid or restored.get(cid).fields != {"n": cid}

    race_first_build(lambda: ContactBook.from_state(state), wrong_at, 3000)

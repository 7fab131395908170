"""Identifier slots: values and their contacts, single- and multi-valued, and their entries."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from core.identifier_slots import IdentifierSlot
from core.texts import encoded


def _restored(multi: bool, ids: np.ndarray, values: list[str]) -> IdentifierSlot:
    data, offsets = encoded(values)
    return IdentifierSlot.from_arrays(multi, ids, offsets, data)


def test_single_slot_puts_finds_and_drops() -> None:
    slot = IdentifierSlot(multi=False)
    slot.put(3, "a@x.io")
    slot.put(40, "b@x.io")  # past the initial capacity
    assert (slot.owner("a@x.io"), slot.owner("b@x.io"), slot.owner("c")) == (3, 40, None)
    assert (slot.value_of(3), slot.value_of(40), slot.value_of(4), slot.value_of(10_000)) == ("a@x.io", "b@x.io", None, None)
    assert slot.holders(6).tolist() == [False, False, False, True, False, False]
    assert slot.drop(3) == ["a@x.io"] and slot.drop(3) == [] and slot.drop(99) == []
    assert slot.owner("a@x.io") is None and len(slot) == 1
    slot.put(5, "a@x.io")  # released: free for another contact
    assert slot.owner("a@x.io") == 5


def test_multi_slot_keeps_each_contacts_values_in_order() -> None:
    slot = IdentifierSlot(multi=True)
    for cid, value in [(2, "t1"), (7, "t2"), (2, "t3"), (2, "t4"), (7, "t5")]:
        slot.put(cid, value)
    assert slot.values_of(2) == ["t1", "t3", "t4"] and slot.values_of(7) == ["t2", "t5"]
    assert slot.values_of(1) == [] and slot.value_of(2) == "t1"
    ids, values = slot.entries()
    assert ids.tolist() == [2, 2, 2, 7, 7] and values == ["t1", "t3", "t4", "t2", "t5"]
    assert slot.drop(2) == ["t1", "t3", "t4"] and slot.values_of(2) == []
    slot.put(2, "t3")
    assert slot.values_of(2) == ["t3"] and slot.owner("t3") == 2


def test_restored_slot_groups_scattered_entries_in_the_order_given() -> None:
    slot = _restored(True, np.array([5, 2, 5]), ["a", "b", "c"])
    assert slot.values_of(5) == ["a", "c"] and slot.values_of(2) == ["b"]
    assert slot.owner("c") == 5 and slot.owner("b") == 2
    empty = _restored(False, np.zeros(0, np.int64), [])
    assert len(empty) == 0 and empty.owner("x") is None and empty.entries()[1] == []


ops = st.lists(st.tuples(st.sampled_from(["put", "drop"]), st.integers(1, 12), st.sampled_from("abcdefgh")), max_size=40)


@given(ops=ops, multi=st.booleans())
def test_slot_matches_a_dict_model_and_restores_to_the_same(ops: list[tuple[str, int, str]], multi: bool) -> None:
    slot = IdentifierSlot(multi)
    held: dict[int, list[str]] = {}
    for op, cid, value in ops:
        owner = next((c for c, vs in held.items() if value in vs), None)
        if op == "put" and owner is None and (multi or not held.get(cid)):
            slot.put(cid, value)
            held.setdefault(cid, []).append(value)
        elif op == "drop":
            assert slot.drop(cid) == held.pop(cid, [])
    for restored in (slot, _restored(multi, *slot.entries()), IdentifierSlot.from_arrays(multi, *slot.arrays())):
        for cid in range(14):
            assert restored.values_of(cid) == held.get(cid, [])
        for value in "abcdefgh":
            assert restored.owner(value) == next((c for c, vs in held.items() if value in vs), None)
        assert restored.holders(14).tolist() == [bool(held.get(c)) for c in range(14)]

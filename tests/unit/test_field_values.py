"""Field values by contact id: types kept, strings shared and released, entries and restore."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.contact_state import checked_maps
from core.field_values import FieldValues

scalars = (
    st.text(max_size=5)
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)


def _same(a: object, b: object) -> bool:
    """Equal with the same type; floats by bits (so -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and a == b  # type: ignore[arg-type]
    return a == b


@given(ops=st.lists(st.tuples(st.integers(1, 20), st.none() | scalars), max_size=60))
def test_field_matches_a_dict_model_and_restores_to_the_same(ops: list[tuple[int, object]]) -> None:
    field = FieldValues()
    model: dict[int, object] = {}
    for cid, value in ops:
        if value is None:
            field.remove(cid)
            model.pop(cid, None)
        else:
            field.set(cid, value)
            model[cid] = value
    for current in (field, FieldValues.of(*field.entries())):
        assert len(current) == len(model)
        ids, values = current.entries()
        assert ids.tolist() == sorted(model)
        assert all(_same(v, model[c]) for c, v in zip(ids.tolist(), values))
        for cid in range(25):
            present, value = current.get(cid)
            assert present == (cid in model) and (not present or _same(value, model[cid]))


def test_types_stay_apart_and_strings_are_released_with_their_last_holder() -> None:
    field = FieldValues()
    for cid, value in enumerate([1, 1.0, True, -0.0, "x", "x", 2**63 - 1], start=1):
        field.set(cid, value)
    assert [field.get(c)[1] for c in range(1, 8)] == [1, 1.0, True, -0.0, "x", "x", 2**63 - 1]
    assert [type(field.get(c)[1]) for c in (1, 2, 3)] == [int, float, bool]
    assert math.copysign(1.0, field.get(4)[1]) == -1.0
    assert field._texts.live_count == 1  # "x" held once for two contacts
    field.remove(5)
    assert field._texts.find("x") is not None
    field.set(6, "y")
    assert field._texts.find("x") is None and field.get(6) == (True, "y")
    with pytest.raises(TypeError):
        field.set(1, [1])


def _state(values: list[object], ids: list[int]) -> dict[str, object]:
    return {"identifiers": [], "fields": [{"name": "f", "ids": np.array(ids, np.uint32), "values": values}]}


def test_restore_refuses_fields_it_could_not_hold() -> None:
    alive = lambda ids: True  # noqa: E731
    assert len(checked_maps(_state(["a", 1, 2.5, False], [1, 2, 3, 4]), alive).fields[0].values) == 4
    for values, ids in (([1, 2], [3, 3]), ([[1]], [1]), ([2**63], [1]), ([None], [1])):
        with pytest.raises(ValueError):
            checked_maps(_state(values, ids), alive)

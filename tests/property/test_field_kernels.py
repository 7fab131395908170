"""The field kernels (core.kernels.fields) equal their plain-Python twins."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.reference_kernels as ref
from core.kernels import fields as kf

pytestmark = pytest.mark.property

BOUNDED = settings(max_examples=80, deadline=None)
KIND = st.integers(0, 5)
NUM = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -2.5, math.nan, math.inf, -math.inf]), st.integers(-4, 4).map(float))
BOUND = st.one_of(st.sampled_from([-math.inf, math.inf]), st.integers(-4, 4).map(float))


@st.composite
def slots(draw, values):
    n = draw(st.integers(0, 30))
    kind = draw(st.lists(KIND, min_size=n, max_size=n))
    vals = draw(st.lists(values, min_size=n, max_size=n))
    return np.array(kind, np.uint8), vals


@BOUNDED
@given(
    slots(NUM),
    st.integers(0, 5),
    st.booleans(),
    BOUND,
    st.booleans(),
    BOUND,
    st.booleans(),
    st.lists(NUM.filter(lambda x: not math.isnan(x)), max_size=3),
    st.lists(NUM.filter(lambda x: not math.isnan(x)), max_size=3),
    st.booleans(),
)
def test_axis_mask_equals_twin(table, want, ranged, lo, lo_inc, hi, hi_inc, members, excluded, as_days) -> None:
    kind, vals = table
    if as_days:
        vals = [0 if not math.isfinite(v) else int(v) for v in vals]
        values = np.array(vals, np.int32)
    else:
        values = np.array(vals, np.float64)
    mem = np.array(sorted(members), np.float64)
    exc = np.array(sorted(excluded), np.float64)
    got = kf.axis_mask(kind, values, want, ranged, lo, lo_inc, hi, hi_inc, mem, exc)
    assert got.tolist() == ref.field_axis_mask(kind, values, want, ranged, lo, lo_inc, hi, hi_inc, mem, exc)


@BOUNDED
@given(slots(st.integers(-2, 6)), st.integers(0, 5), st.lists(st.booleans(), max_size=5))
def test_code_mask_equals_twin(table, want, verdict) -> None:
    kind, codes = table
    code = np.array(codes, np.int32)
    v = np.array(verdict, np.bool_)
    assert kf.code_mask(kind, code, want, v).tolist() == ref.field_code_mask(kind, code, want, v)


@BOUNDED
@given(slots(st.integers(0, 415)), st.integers(0, 5), st.lists(st.integers(0, 415), max_size=3))
def test_month_day_mask_equals_twin(table, want, targets) -> None:
    kind, mds = table
    md = np.array(mds, np.uint16)
    t = np.array(targets, np.uint16)
    assert kf.month_day_mask(kind, md, want, t).tolist() == ref.field_month_day_mask(kind, md, want, t)


def test_value_arrays_must_match_the_kinds() -> None:
    with pytest.raises(kf.KernelArgumentError):
        kf.code_mask(np.zeros(3, np.uint8), np.zeros(2, np.int32), 2, np.zeros(1, np.bool_))

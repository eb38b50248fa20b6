"""Canonical JSON: the fast path writes exactly what the rfc8785 library writes."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from machimori.audit.canonical import NotCanonicalizable, canonical_json

scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1000)
@given(json_values)
def test_canonical_json_equals_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(NotCanonicalizable):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_keys_outside_the_bmp_sort_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert list(json.loads(canonical_json(value))) == ["a", "\U0001f600", "\ufb01"]


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 2**60, {"s": "\udc00"}, {1: "non-string key"}, {"x": object()}]
)
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(NotCanonicalizable):
        canonical_json(value)


def test_numbers_follow_ecmascript_formatting() -> None:
    assert canonical_json({"a": 1.0, "b": 1e21, "c": 0.1, "d": -0.0}) == b'{"a":1,"b":1e+21,"c":0.1,"d":0}'


def test_absurdly_deep_nesting_is_refused_not_crashed() -> None:
    deep: object = "bottom"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(NotCanonicalizable):
        canonical_json({"deep": deep})


def test_nested_objects_with_integers_take_the_fast_path_and_match() -> None:
    value = {"actor": {"uid": "u-1", "roles": ["clerk", 3]}, "n": -(2**53) + 1, "ok": True, "none": None}
    assert canonical_json(value) == rfc8785.dumps(value)

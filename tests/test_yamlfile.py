"""YAML loading: positions for errors, and the fast path agreeing with the round-trip parser."""

from __future__ import annotations

import io
import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from machimori import yamlfile
from machimori.diagnostics import InputError


def test_syntax_error_has_line_and_column() -> None:
    with pytest.raises(InputError) as caught:
        yamlfile.parse(b"a: 1\nb: [1, 2\nc: 3\n", "m.yaml")
    (problem,) = caught.value.problems
    assert problem.file == "m.yaml" and problem.line >= 2 and "invalid YAML" in problem.message


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(InputError) as caught:
        yamlfile.parse(b"a: 1\na: 2\n", "m.yaml")
    assert caught.value.problems[0].line == 2


def test_not_utf8_is_an_error() -> None:
    with pytest.raises(InputError, match="UTF-8"):
        yamlfile.parse(b"a: 1\nb: \xff\xfe\n", "m.yaml")


def test_missing_file(tmp_path: object) -> None:
    with pytest.raises(InputError, match="not found"):
        yamlfile.load("/nonexistent/city.yaml")


def test_locate_finds_values_and_keys() -> None:
    document = yamlfile.parse(b"items:\n  - id: a\n  - id: b\n    owner: x\n", "m.yaml")
    assert document.locate(["items", 1, "owner"]) == (4, 12)
    assert document.locate(["items", 1, "owner"], key=True) == (4, 5)
    assert document.locate(["items", 5, "owner"]) == (2, 3)  # nearest existing parent


def test_large_document_uses_fast_path_and_still_locates() -> None:
    rows = "".join(f"  - id: c{i}\n    name: 名前{i}\n    ok: true\n    n: {i}\n" for i in range(7000))
    raw = ("components:\n" + rows).encode()
    assert len(raw) >= yamlfile.FAST_PATH_MIN_BYTES
    document = yamlfile.parse(raw, "big.yaml")
    assert document._tree is None, "large plain document should take the fast path"
    assert document.data["components"][6999] == {"id": "c6999", "name": "名前6999", "ok": True, "n": 6999}
    assert document.locate(["components", 2, "ok"]) == (12, 9)


def test_large_document_with_anchors_takes_round_trip_path() -> None:
    rows = "".join(f"  - id: c{i}{'x' * 60}\n    tags: *t\n" for i in range(3500))
    raw = ("base: &t [a, b]\ncomponents:\n" + rows).encode()
    document = yamlfile.parse(raw, "big.yaml")
    assert document.data["components"][5]["tags"] == ["a", "b"]


def test_large_document_with_duplicate_keys_is_rejected() -> None:
    raw = ("components:\n" + ("  - id: " + "x" * 60 + "\n") * 4000 + "a: 1\na: 2\n").encode()
    with pytest.raises(InputError):
        yamlfile.parse(raw, "big.yaml")


_plain_text = st.text(alphabet=string.ascii_letters + string.digits + " ._/-" + "日本語テスト", min_size=0, max_size=12)
_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    _plain_text,
    st.none(),
)
_keys = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, min_size=1, max_size=6))
def test_fast_path_agrees_with_round_trip_parser(data: dict[str, object]) -> None:
    """Property: for any plain document, rapidyaml's reading equals ruamel.yaml's reading."""
    buffer = io.StringIO()
    YAML().dump(data, buffer)
    text = buffer.getvalue()
    fast = yamlfile._load_fast(text.encode())
    if fast is yamlfile._FAILED or yamlfile.needs_full_yaml(text):
        return  # such documents are read by the round-trip parser, never by the fast path
    assert fast == yamlfile._load_round_trip("x.yaml", text)


@pytest.mark.parametrize(
    ("text", "needs"),
    [
        ("a: inf\n", True),
        ("a: -.Inf\n", True),
        ("a: .NaN\n", True),
        ("inf: 1\n", True),
        ("a: infinity\n", True),
        ("a: information about infra\n", False),
        ("a: 情報inf\n", False),
        ("a: &x 1\nb: *x\n", True),
        ("a: !!str 1\n", True),
        ("a: ~\n", True),
        ("<<: {a: 1}\n", True),
        ("a: 0x1F\n", True),
        ("a: 0o17\n", True),
        ("a: x0x1\n", False),
        ("a: plain text, numbers 12 and dates 2026-12-01\n", False),
    ],
)
def test_needs_full_yaml(text: str, needs: bool) -> None:
    assert yamlfile.needs_full_yaml(text) is needs


_SCALARS = [
    "Null", "NULL", "null", "~", "True", "TRUE", "true", "False", "FALSE", "1_000", "-1_000", "0b101", "0x1F",
    "0o17", "=", ".inf", "-.Inf", ".NAN", "inf", "nan", "12", "-3", "1.5", "1e3", "plain words", "'quoted'",
    '"double"', "2026-12-01", "yes", "no", "on", "日本語", "a_1", "v1_2",
]  # fmt: skip


@pytest.mark.parametrize("scalar", _SCALARS)
@pytest.mark.parametrize("shape", ["key: {}\n", "- {}\n", "{}: 1\n", "k: [{}, x]\n"])
def test_hand_written_scalars_read_alike_on_both_paths(scalar: str, shape: str) -> None:
    """Property: the fast path is used only where it reads every scalar as the round-trip parser does."""
    if shape.startswith("{}:") and scalar in ("1e3", "2026-12-01"):
        return  # a float or date as a mapping key: outside any schema of ours (keys are names)
    text = shape.format(scalar)
    if yamlfile.needs_full_yaml(text):
        return
    fast = yamlfile._load_fast(text.encode())
    if fast is yamlfile._FAILED:
        return
    full = yamlfile._load_round_trip("x.yaml", text)
    assert json.dumps(fast, default=str, sort_keys=True) == json.dumps(full, default=str, sort_keys=True)


@pytest.mark.parametrize("escape", ["\\uD800", "\\uFFFF", "\\0", "\\x07"])
def test_unprintable_escapes_are_refused_with_position(escape: str) -> None:
    with pytest.raises(InputError) as caught:
        yamlfile.parse(f'a:\n  b: "x{escape}y"\n'.encode(), "m.yaml")
    assert str(caught.value.problems[0]).startswith("m.yaml:2:6:")


def test_ordinary_escapes_are_fine() -> None:
    assert yamlfile.parse(b'a: "tab\\there \\u00e9"\n', "m.yaml").data == {"a": "tab\there é"}

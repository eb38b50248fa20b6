"""YAML documents that remember where each value came from, for errors with file:line:column.

Small files are read with ruamel.yaml's round-trip loader, which keeps positions. Large files
(generated models of a whole city) are read with rapidyaml, a C++ parser about thirty times faster,
whenever the text uses nothing whose meaning rapidyaml's JSON output could change (anchors, tags,
``~``, the words inf and nan, hex/octal numbers); positions are then recovered with ruamel.yaml only if an
error has to be reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from machimori.diagnostics import InputError, Problem, read_user_file

FAST_PATH_MIN_BYTES = 256 * 1024
"""Files at least this large are parsed with rapidyaml when their text allows it."""

_PLAIN_START = r"(?<![^\s\[{,:-])"
_PLAIN_END = r"(?![^\s,\]}#])"
_INDICATORS = re.compile(_PLAIN_START + r"(?:[&*!~%]|<<|0[xXoObB][0-9a-fA-F])")
"""Anchors, aliases, tags, directives, ``~``, merge keys, hex/octal/binary numbers starting a scalar."""
_UNDERSCORE = re.compile("_[0-9]")
_NUMBER_CHARS = frozenset("0123456789_.")
_VALUE_KEY = re.compile("=" + _PLAIN_END)
_ALWAYS_SPECIAL = ("inf", "Inf", "INF", "infinity", "Infinity", "nan", "NaN", "NAN")
_CAPITALISED = ("Null", "NULL", "True", "TRUE", "False", "FALSE")
"""YAML 1.2 reads these as null and booleans; rapidyaml keeps them as text (lower case agrees)."""


def needs_full_yaml(text: str) -> bool:
    """Whether the text may hold a plain scalar that rapidyaml's JSON output reads differently.

    Such scalars are: anchors, aliases, tags, directives, ``~``, merge and value keys, numbers in hex,
    octal, binary or with underscores, inf and nan, and null/true/false in any casing but lower case.
    One difference is left: a number with a leading zero (``007``) stays a string for rapidyaml and
    becomes 7 for ruamel.yaml; both give 7 for a numeric field, and a text field rejects the integer
    with a located error rather than reading it differently.
    """
    if (any(ch in text for ch in "&*!~%<") or "0x" in text or "0o" in text or "0b" in text) and _INDICATORS.search(
        text
    ):
        return True
    if "_" in text and any(_underscore_number(text, m.start()) for m in _UNDERSCORE.finditer(text)):
        return True
    if "=" in text and any(_starts_scalar(text, m.start()) for m in _VALUE_KEY.finditer(text)):
        return True
    return any(_whole_scalar(text, word) for word in (*_ALWAYS_SPECIAL, *_CAPITALISED))


def _starts_scalar(text: str, at: int) -> bool:
    """Whether a plain scalar (possibly signed) starts at ``at``: at a line's start after indentation,
    after a key's colon, a list dash, a '?' or a flow indicator."""
    if at and text[at - 1] in "+-":
        at -= 1
    start = at
    while start and text[start - 1] in " \t":
        start -= 1
    if start == 0 or text[start - 1] in "\n[{,":
        return True
    return start < at and text[start - 1] in ":-?"


def _underscore_number(text: str, underscore: int) -> bool:
    """Whether the underscore at ``underscore`` is inside a plain scalar made only of digits, '_' and '.'."""
    start = underscore
    while start and text[start - 1] in _NUMBER_CHARS:
        start -= 1
    end = underscore
    while end < len(text) and text[end] in _NUMBER_CHARS:
        end += 1
    token_ends = _ends_scalar(text, end)
    return start < underscore and text[start].isdigit() and token_ends and _starts_scalar(text, start)


def _ends_scalar(text: str, end: int) -> bool:
    """Whether a plain scalar ends at ``end``: end of line, a flow indicator, a key's colon or a comment."""
    rest = text[end : end + 80].lstrip(" \t")
    return not rest or rest[0] in "\r\n,]}#:"


def _whole_scalar(text: str, word: str) -> bool:
    """Whether ``word`` (optionally after '.' and a sign, as in -.inf) stands as a whole plain scalar."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        at = start - 1 if start and text[start - 1] == "." else start
        if _ends_scalar(text, end) and _starts_scalar(text, at):
            return True
        start = text.find(word, end)
    return False


Path_ = Sequence[str | int]


@dataclass
class Document:
    """A parsed YAML file: its plain data and a way to find the position of any value in it."""

    path: str
    text: str
    data: Any
    _tree: Any = field(default=None, repr=False)

    def locate(self, loc: Path_, *, key: bool = False) -> tuple[int, int]:
        """Return the 1-based (line, column) of the value at ``loc`` (or of its key), or the nearest parent."""
        node = self._round_trip_tree()
        line, column = 0, 0
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            try:
                if isinstance(node, dict) and part in node:
                    line, column = lc.key(part) if (key and last) else lc.value(part)
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                    line, column = lc.item(part)
                    node = node[part]
                else:
                    line, column = lc.line, lc.col
                    break
            except (KeyError, TypeError, IndexError):
                break
        else:
            if not loc:
                return 1, 1
        return line + 1, column + 1

    def problem(self, loc: Path_, message: str, *, key: bool = False) -> Problem:
        """A problem located at ``loc`` in this document."""
        line, column = self.locate(loc, key=key)
        return Problem(self.path, line, column, message)

    def _round_trip_tree(self) -> Any:
        if self._tree is None:
            self._tree = _load_round_trip(self.path, self.text)
        return self._tree


def load(path: str | Path) -> Document:
    """Read and parse a YAML (or JSON) file; raise InputError with a position on any syntax error."""
    name = str(path)
    raw = read_user_file(path)
    return parse(raw, name)


def parse(raw: bytes, name: str, *, fast_from: int = FAST_PATH_MIN_BYTES) -> Document:
    """Parse YAML bytes named ``name`` (used in error messages); try rapidyaml from ``fast_from`` bytes on."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError.single(name, f"not UTF-8 text (byte {exc.start}) / UTF-8 ではありません", line, 1) from None
    if len(raw) >= fast_from and not needs_full_yaml(text):
        data = _load_fast(raw)
        if data is not _FAILED:
            return _printable(Document(name, text, data))
    tree = _load_round_trip(name, text)
    return _printable(Document(name, text, tree, tree))


_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _printable(document: Document) -> Document:
    """Refuse text that no report can hold: escapes (\\0, \\uD800, \\uFFFF) for control characters,
    lone surrogates and non-characters. Only escapes can produce them, so documents without a
    backslash are not searched."""
    if "\\" not in document.text:
        return document
    problems = [
        document.problem(loc, "text holds a control character, a lone surrogate or a non-character / 使用できない文字")
        for loc, value in _strings(document.data, ())
        if _UNPRINTABLE.search(value)
    ]
    if problems:
        raise InputError(problems)
    return document


def _strings(node: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(node, str):
        yield loc, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield (*loc, key), key
            yield from _strings(value, (*loc, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*loc, index))


_FAILED = object()


def _load_round_trip(name: str, text: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s).replace("\n", " ")
        raise InputError.single(name, f"invalid YAML: {what}", line, column) from None
    except YAMLError as exc:
        raise InputError.single(name, f"invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise InputError.single(name, "invalid YAML: nested too deeply / 入れ子が深すぎます") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date such as 2026-13-01
        raise InputError.single(name, f"invalid value in YAML: {exc} / 不正な値") from None


def _load_fast(raw: bytes) -> Any:
    import ryml

    try:
        with _silenced_stderr():
            tree = ryml.parse_in_arena(raw)
        if tree.empty():
            return None
        return json.loads(ryml.emit_json_malloc(tree, tree.root_id()), object_pairs_hook=_unique_keys)
    except Exception:
        return _FAILED


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


@contextlib.contextmanager
def _silenced_stderr() -> Iterator[None]:
    """rapidyaml prints parse errors to file descriptor 2; the round-trip parser reports them instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)

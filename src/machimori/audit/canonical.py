"""Canonical JSON of logged entries (RFC 8785, JSON Canonicalization Scheme)."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE_INTEGER = 2**53 - 1
_SURROGATES_START = "\ud800"
_SCALARS = frozenset({str, bool, type(None)})
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class NotCanonicalizable(ValueError):
    """The value has no RFC 8785 form (NaN, infinity, huge integer, lone surrogate, non-string key …)."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value."""
    try:
        plain = _plain(value)
    except RecursionError:
        plain = False
    if plain:
        # For strings, booleans, null and safe integers, with every key below U+D800 so that
        # UTF-16 and code-point key order agree, RFC 8785 and this json.dumps call write the same
        # bytes (tested against the rfc8785 library); rfc8785 handles floats and the rest.
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 names the problem below
            pass
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeError, RecursionError) as error:
        raise NotCanonicalizable(str(error) or type(error).__name__) from error


def _plain(value: Any) -> bool:
    """Whether value is in the domain where json.dumps and RFC 8785 agree byte for byte."""
    kind = type(value)
    if kind is dict:
        try:
            keys = "".join(value)
        except TypeError:  # a key that is not a string
            return False
        if not keys.isascii() and max(keys) >= _SURROGATES_START:
            return False
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return kind in _SCALARS or (kind is int and -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER)
    if set(map(type, items)) <= _SCALARS:  # the common case, checked at C speed
        return True
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is int:
            if not -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:
                return False
        elif kind is dict or kind is list:
            if not _plain(item):
                return False
        else:
            return False
    return True

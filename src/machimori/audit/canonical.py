"""Canonical JSON of logged entries (RFC 8785, JSON Canonicalization Scheme)."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE_INTEGER = 2**53 - 1
_SURROGATES_START = "\ud800"
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class NotCanonicalizable(ValueError):
    """The value has no RFC 8785 form (NaN, infinity, huge integer, lone surrogate, non-string key …)."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value."""
    if _plain(value):
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
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str or not (key.isascii() or max(key, default="") < _SURROGATES_START):
                    return False
                push(inner)
        elif kind is list:
            extend(item)
        elif kind is int:
            if not -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:
                return False
        else:
            return False
    return True

"""Validate a parsed YAML document against a pydantic model, reporting each problem at its position."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from machimori.diagnostics import InputError, Problem
from machimori.yamlfile import Document

M = TypeVar("M", bound=BaseModel)


def validate_document(document: Document, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Return ``model`` built from the document's data or raise InputError listing every problem."""
    try:
        return model.model_validate(document.data, context=context)
    except ValidationError as exc:
        raise InputError(problems_from(exc, document, model)) from None


def problems_from(exc: ValidationError, document: Document, model: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into located, readable problems."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        kind = error["type"]
        if kind == "extra_forbidden":
            unknown = str(loc[-1])
            known = field_names(model, loc[:-1])
            hint = did_you_mean(unknown, known)
            if not hint and known:
                hint = " (expected one of: " + ", ".join(sorted(known)) + ")"
            message = f"unknown key '{unknown}'{hint} / 不明なキー"
            problems.append(document.problem(loc, message, key=True))
            continue
        if kind == "missing":
            problems.append(document.problem(loc[:-1], f"missing required key '{loc[-1]}' / 必須キーがありません"))
            continue
        message = f"{where}: {error['msg']}"
        if kind in ("literal_error", "enum"):
            expected = _expected_literals(error.get("ctx", {}).get("expected", ""))
            message += did_you_mean(str(error.get("input")), expected)
        problems.append(document.problem(loc, message))
    return problems


def did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' hint when ``word`` is close to one of ``candidates``, else ''."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    """Names (aliases where set) of the fields of the model found at ``loc`` under ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = _field_by_key(current, str(part))
            if info is None:
                return set()
            current = info
        else:
            return set()
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {f.alias or name for name, f in current.model_fields.items()}
    return set()


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional, list[...], dict[str, ...] and Annotated to reach the model inside."""
    for _ in range(5):
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin is typing.Annotated or (origin in (list, tuple, set, frozenset) and args):
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            break
    return annotation


def _expected_literals(expected: str) -> list[str]:
    return [part.strip(" '\"") for part in expected.replace(" or ", ",").split(",") if part.strip()]

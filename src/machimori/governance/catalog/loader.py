"""Load the built-in catalog and a user's catalog files, and check that they hold together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from machimori import yamlfile
from machimori.diagnostics import InputError, Problem
from machimori.governance.catalog.models import Catalog, CatalogFile
from machimori.validation import did_you_mean, validate_document

BUILT_IN_FILES = ("categories.yaml", "cpsf.yaml", "risks.yaml", "concerns.yaml")

_SECTIONS: dict[str, str] = {
    "guideline_categories": "id",
    "layers": "number",
    "cpsf_categories": "code",
    "requirements": "id",
    "risks": "id",
    "concerns": "id",
    "data_types": "id",
}

_cache: dict[tuple[str, ...], Catalog] = {}


def load_catalog(extra: Sequence[str | Path] = ()) -> Catalog:
    """The built-in catalog, with entries of ``extra`` files added or replacing those of the same ID."""
    key = tuple(str(p) for p in extra)
    if key not in _cache:
        documents = [_built_in(name) for name in BUILT_IN_FILES]
        documents += [yamlfile.load(path) for path in extra]
        _cache[key] = build_catalog(documents)
    return _cache[key]


def build_catalog(documents: Iterable[yamlfile.Document]) -> Catalog:
    """Merge catalog documents in order; later files replace earlier entries with the same ID."""
    merged: dict[str, dict[Any, Any]] = {section: {} for section in _SECTIONS}
    origin: dict[tuple[str, Any], tuple[yamlfile.Document, int]] = {}
    problems: list[Problem] = []
    sources = []
    for document in documents:
        sources.append(document.path)
        try:
            parsed = validate_document(document, CatalogFile)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        for section, key_field in _SECTIONS.items():
            seen: set[Any] = set()
            for index, entry in enumerate(getattr(parsed, section)):
                key = getattr(entry, key_field)
                if key in seen:
                    problems.append(
                        document.problem([section, index, key_field], f"duplicate {key_field} '{key}' in this file")
                    )
                    continue
                seen.add(key)
                merged[section][key] = entry
                origin[(section, key)] = (document, index)
    if problems:
        raise InputError(problems)
    catalog = Catalog(**merged, sources=sources)
    problems = list(_dangling_references(catalog, origin))
    if problems:
        raise InputError(problems)
    return catalog


def _dangling_references(
    catalog: Catalog, origin: dict[tuple[str, Any], tuple[yamlfile.Document, int]]
) -> Iterable[Problem]:
    known = catalog.requirements.keys()

    def check(section: str, key: Any, field: str, value: str, position: int | None = None) -> Iterable[Problem]:
        document, index = origin[(section, key)]
        loc: list[str | int] = [section, index, field]
        if position is not None:
            loc.append(position)
        yield document.problem(
            loc, f"{section[:-1]} '{key}' refers to unknown requirement '{value}'" + did_you_mean(value, known)
        )

    for requirement in catalog.requirements.values():
        if requirement.category_code not in catalog.cpsf_categories:
            document, index = origin[("requirements", requirement.id)]
            yield document.problem(
                ["requirements", index, "id"], f"CPSF category '{requirement.category_code}' is not in the catalog"
            )
    for section in ("risks", "concerns", "data_types"):
        for key, entry in getattr(catalog, section).items():
            for i, ref in enumerate(entry.requirements):
                if ref not in known:
                    yield from check(section, key, "requirements", ref, i)
    for number, layer in catalog.layers.items():
        if layer.category and layer.category not in catalog.guideline_categories:
            document, index = origin[("layers", number)]
            yield document.problem(["layers", index, "category"], f"unknown guideline category '{layer.category}'")


def _built_in(name: str) -> yamlfile.Document:
    data = resources.files("machimori.governance.catalog").joinpath("data", name).read_bytes()
    return yamlfile.parse(data, f"<built-in catalog>/{name}", fast_from=0)

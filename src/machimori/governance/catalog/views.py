"""Human views of the catalog: tables, one entry described, search, and export as YAML."""

from __future__ import annotations

import io
from collections.abc import Iterable

from ruamel.yaml import YAML

from machimori.governance.catalog.models import Catalog, Requirement
from machimori.governance.text import CATEGORY_CODES, Lang, Text

PROVENANCE_LABEL = {
    "verified": ("確認済", "verified"),
    "inferred": ("推定", "inferred"),
    "reconstructed": ("再構成", "reconstructed"),
    "official": ("公式", "official"),
}


def rows_for(catalog: Catalog, section: str, lang: Lang, category: str | None) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for `catalog list`."""
    if section == "requirements":
        reqs = [
            r for r in catalog.sorted_requirements() if category is None or category in (r.category_code, *r.categories)
        ]
        return (
            ["ID", "名称 / title", "区分 / categories", "CSF 2.0", "出典 / provenance"],
            [[r.id, r.title(lang), _codes(r), ", ".join(r.csf20), _provenance(r, lang)] for r in reqs],
        )
    if section == "risks":
        return (
            ["ID", "想定インシデント / incident", "脆弱性 / vulnerability", "要件 / requirements"],
            [
                [r.id, r.incident(lang), r.vulnerability(lang), ", ".join(r.requirements)]
                for r in catalog.risks.values()
            ],
        )
    if section == "concerns":
        return (
            ["ID", "名称 / name", "要件 / requirements"],
            [[c.id, c.name(lang), ", ".join(c.requirements)] for c in catalog.concerns.values()],
        )
    if section == "categories":
        return (
            ["ID", "code", "名称 / name", "レイヤー / layers"],
            [
                [g.id, g.code, g.name(lang), ", ".join(map(str, g.layers))]
                for g in catalog.guideline_categories.values()
            ],
        )
    if section == "layers":
        return (
            ["#", "名称 / name", "区分 / category"],
            [[str(n), layer.name(lang), layer.category or "-"] for n, layer in sorted(catalog.layers.items())],
        )
    if section == "data-types":
        return (
            ["ID", "名称 / name", "説明 / description"],
            [[d.id, d.name(lang), d.description(lang)] for d in catalog.data_types.values()],
        )
    return (
        ["code", "function", "名称 / name", "CSF 1.1", "CSF 2.0"],
        [
            [c.code, c.function, c.name(lang), ", ".join(c.csf11), ", ".join(c.csf20)]
            for c in catalog.cpsf_categories.values()
        ],
    )


def describe(catalog: Catalog, entry_id: str, lang: Lang) -> str | None:
    """A full description of one entry of any section, or None when no entry has that ID."""
    if entry_id in catalog.requirements:
        r = catalog.requirements[entry_id]
        category = catalog.cpsf_categories[r.category_code]
        source = (
            f"{r.source.document}" + (f" — {r.source.note}" if r.source and r.source.note else "") if r.source else "-"
        )
        return "\n".join(
            [
                f"{r.id}  {r.title(lang)}",
                f"  {r.summary(lang)}",
                f"  CPSF: {category.code} {category.name(lang)}",
                f"  区分 / guideline categories: {', '.join(r.categories)}",
                f"  NIST CSF 1.1: {', '.join(r.csf11) or '-'}    CSF 2.0: {', '.join(r.csf20) or '-'}",
                f"  出典 / provenance: {_provenance(r, lang)}",
                f"  source: {source}",
                f"  risks: {', '.join(k.id for k in catalog.risks.values() if r.id in k.requirements) or '-'}",
            ]
        )
    if entry_id in catalog.risks:
        k = catalog.risks[entry_id]
        return "\n".join(
            [
                f"{k.id}",
                f"  想定インシデント / incident: {k.incident(lang)}",
                f"  脅威 / threat: {k.threat(lang)}",
                f"  脆弱性 / vulnerability: {k.vulnerability(lang)}",
                f"  要件 / requirements: {', '.join(k.requirements)}",
                f"  likelihood {k.likelihood} × impact {k.impact}; applies to {k.applies_to.element}",
                f"  source: {k.source.document}" + (f" — {k.source.note}" if k.source.note else ""),
            ]
        )
    if entry_id in catalog.concerns:
        c = catalog.concerns[entry_id]
        return "\n".join(
            [
                f"{c.id}  {c.name(lang)}",
                f"  {c.description(lang)}",
                *[f"  - {m(lang)}" for m in c.measures],
                f"  要件 / requirements: {', '.join(c.requirements) or '-'}",
                f"  source: {c.source.document}",
            ]
        )
    if entry_id in catalog.guideline_categories:
        g = catalog.guideline_categories[entry_id]
        return f"{g.id} ({g.code})  {g.name(lang)}\n  {g.description(lang)}\n  layers: {g.layers}"
    if entry_id in catalog.data_types:
        d = catalog.data_types[entry_id]
        return "\n".join(
            [f"{d.id}  {d.name(lang)}", f"  {d.description(lang)}", *[f"  - {m(lang)}" for m in d.measures]]
        )
    if entry_id in catalog.cpsf_categories:
        cpsf = catalog.cpsf_categories[entry_id]
        reqs = [r.id for r in catalog.sorted_requirements() if r.category_code == cpsf.code]
        return (
            f"{cpsf.code}  {cpsf.name(lang)} ({cpsf.function})\n  CSF 1.1: {', '.join(cpsf.csf11)}  CSF 2.0: {', '.join(cpsf.csf20)}"
            f"\n  {', '.join(reqs)}"
        )
    return None


def search(catalog: Catalog, words: Iterable[str], lang: Lang) -> list[tuple[str, str, str]]:
    """Entries whose ID or texts (both languages) contain every word, case-insensitively."""
    needles = [w.casefold() for w in words]
    hits = []
    for kind, entry_id, texts, shown in _searchable(catalog, lang):
        haystack = " ".join([entry_id, *texts]).casefold()
        if all(n in haystack for n in needles):
            hits.append((entry_id, kind, shown))
    return hits


def _searchable(catalog: Catalog, lang: Lang) -> Iterable[tuple[str, str, list[str], str]]:
    for r in catalog.sorted_requirements():
        yield "requirement", r.id, _texts(r.title, r.summary, *r.csf11, *r.csf20), r.title(lang)
    for k in catalog.risks.values():
        yield "risk", k.id, _texts(k.incident, k.threat, k.vulnerability), k.vulnerability(lang)
    for c in catalog.concerns.values():
        yield "concern", c.id, _texts(c.name, c.description, *c.measures), c.name(lang)
    for d in catalog.data_types.values():
        yield "data-type", d.id, _texts(d.name, d.description, *d.measures), d.name(lang)
    for g in catalog.guideline_categories.values():
        yield "category", g.id, _texts(g.name, g.description), g.name(lang)


def _texts(*items: Text | str) -> list[str]:
    return [t for item in items for t in ((item.ja, item.en) if isinstance(item, Text) else (item,))]


def export_yaml(catalog: Catalog) -> str:
    """The merged catalog in the catalog file format, loadable again with --catalog."""
    yaml = YAML()
    yaml.width = 4096
    buffer = io.StringIO()
    data = {
        section: [entry.model_dump(mode="json", by_alias=True, exclude_none=True) for entry in entries.values()]
        for section, entries in (
            ("guideline_categories", catalog.guideline_categories),
            ("layers", catalog.layers),
            ("cpsf_categories", catalog.cpsf_categories),
            ("requirements", catalog.requirements),
            ("risks", catalog.risks),
            ("concerns", catalog.concerns),
            ("data_types", catalog.data_types),
        )
    }
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _codes(r: Requirement) -> str:
    return "".join(CATEGORY_CODES[c] for c in r.categories)


def _provenance(r: Requirement, lang: Lang) -> str:
    ja, en = PROVENANCE_LABEL[r.provenance]
    return ja if lang == "ja" else en

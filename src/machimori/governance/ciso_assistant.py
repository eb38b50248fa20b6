"""The catalog as a CISO Assistant framework library (YAML), for loading into CISO Assistant's library store."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from machimori.governance.catalog.models import (
    CPSF_CATEGORY_CODES,
    Catalog,
    CpsfCategory,
    Requirement,
)
from machimori.governance.text import CATEGORY_CODES, CATEGORY_IDS, Lang

URN_ID = "mic-smartcity-cpsf"
LIBRARY_URN = f"urn:machimori:risk:library:{URN_ID}"
FRAMEWORK_URN = f"urn:machimori:risk:framework:{URN_ID}"
NODE_URN_PREFIX = f"urn:machimori:risk:req_node:{URN_ID}"
REF_ID = "MIC-SmartCity-CPSF"
PROVIDER = "MIC / METI (CPSF)"
PACKAGER = "machimori"
NAME_MAX_LENGTH = 200
"""CISO Assistant stores names in a 200-character column."""

_NAME = {
    "ja": "スマートシティセキュリティガイドライン CPSF 対策要件（machimori）",
    "en": "MIC Smart City Security Guideline — CPSF requirements (machimori)",
}
_DESCRIPTION = {
    "ja": (
        "総務省「スマートシティセキュリティガイドライン」が用いる、経済産業省「サイバー・フィジカル・セキュリティ対策"
        "フレームワーク（CPSF）」の対策要件を CPSF のカテゴリ別にまとめたもの。実装グループ G / S / O / A は"
        "ガイドラインの4つのセキュリティカテゴリ（ガバナンス・サービス・都市OS・アセット）で、要件をカテゴリで"
        "絞り込める。要件の名称と概要は machimori による要約であり公式の本文ではない。各要件の注記に、当てはまる"
        "カテゴリ、出典の確かさ、対応する NIST CSF の項目を記す。"
    ),
    "en": (
        "The countermeasure requirements of METI's Cyber/Physical Security Framework (CPSF) as used by MIC's "
        "Smart City Security Guideline, grouped by CPSF category. The implementation groups G / S / O / A are the "
        "guideline's four security categories (governance, service, city OS, asset), so requirements can be "
        "filtered by category. Requirement names and descriptions are machimori's own summaries, not the official "
        "text; each requirement's annotation gives its guideline categories, its provenance and its NIST CSF "
        "counterparts."
    ),
}
_COPYRIGHT = {
    "ja": (
        "要件の名称・概要・注記は machimori による独自の要約（Apache-2.0）であり、総務省スマートシティセキュリティ"
        "ガイドラインおよび経済産業省 CPSF の公式の文言ではありません。正式な文言は原典を参照してください。"
    ),
    "en": (
        "Requirement names, descriptions and annotations are machimori's own summaries (Apache-2.0), not the "
        "official text of MIC's Smart City Security Guideline or METI's CPSF; see the official documents for the "
        "authoritative wording."
    ),
}
_PROVENANCE = {
    "verified": {
        "ja": "確認済 — ID と内容を経済産業省・IPA の公開資料またはガイドライン概要で確認した",
        "en": "verified — the ID and its meaning were read in public METI/IPA material or the guideline overview",
    },
    "inferred": {
        "ja": "推定 — ID はガイドラインのリスク表にあり、内容はその行と対応する NIST CSF 1.1 の項目から推定した",
        "en": (
            "inferred — the ID appears in the guideline's risk table; its meaning is inferred from that row and "
            "the matching NIST CSF 1.1 subcategory"
        ),
    },
    "reconstructed": {
        "ja": "再構成 — CPSF の構成（NIST CSF 1.1 に準拠）から想定した ID で、内容は同じ位置の CSF の項目に従う",
        "en": (
            "reconstructed — the ID is expected from CPSF's structure (it follows NIST CSF 1.1); its topic follows "
            "the CSF subcategory at the same position"
        ),
    },
    "official": {
        "ja": "公式 — 経済産業省の公式一覧から利用者が読み込んだ",
        "en": "official — loaded by the user from METI's published list",
    },
}
_LABEL = {
    "categories": {"ja": "ガイドラインのカテゴリ", "en": "Guideline categories"},
    "provenance": {"ja": "出典の確かさ", "en": "Provenance"},
    "source": {"ja": "出典", "en": "Source"},
    "function": {"ja": "NIST CSF の機能", "en": "NIST CSF function"},
}
_SEPARATOR = {"ja": "、", "en": ", "}


def export_framework(
    catalog: Catalog,
    *,
    lang: Lang = "en",
    version: int = 1,
    publication_date: dt.date | None = None,
) -> str:
    """The catalog as a CISO Assistant framework library (YAML text) in ``lang``, the other language as translations."""
    other: Lang = "ja" if lang == "en" else "en"
    library: dict[str, Any] = {
        "urn": LIBRARY_URN,
        "locale": lang,
        "ref_id": REF_ID,
        "name": _NAME[lang],
        "description": _DESCRIPTION[lang],
        "copyright": f"{_COPYRIGHT[lang]} / {_COPYRIGHT[other]}",
        "version": version,
        "publication_date": publication_date or dt.date.today(),
        "provider": PROVIDER,
        "packager": PACKAGER,
        "translations": {other: {"name": _NAME[other], "description": _DESCRIPTION[other]}},
        "objects": {"framework": _framework(catalog, lang, other)},
    }
    yaml = YAML()
    yaml.version = (1, 1)  # CISO Assistant reads libraries with PyYAML (YAML 1.1): quote 'yes', 'on', '1:20' …
    yaml.width = 4096
    buffer = io.StringIO()
    yaml.dump(_literal_blocks(library), buffer)
    return buffer.getvalue()


def requirement_urn(requirement_id: str) -> str:
    """The URN of a CPSF requirement (``CPS.AM-1``) or category (``CPS.AM``) node."""
    return f"{NODE_URN_PREFIX}:{requirement_id.lower()}"


def _framework(catalog: Catalog, lang: Lang, other: Lang) -> dict[str, Any]:
    by_category: dict[str, list[Requirement]] = {}
    for requirement in catalog.sorted_requirements():
        by_category.setdefault(requirement.category_code, []).append(requirement)
    nodes: list[dict[str, Any]] = []
    for code in CPSF_CATEGORY_CODES:
        category = catalog.cpsf_categories.get(code)
        if category is None:
            continue
        parent = _category_node(category, lang, other)
        nodes.append(parent)
        nodes.extend(_requirement_node(catalog, r, parent["urn"], lang, other) for r in by_category.get(code, []))
    return {
        "urn": FRAMEWORK_URN,
        "ref_id": REF_ID,
        "name": _NAME[lang],
        "description": _DESCRIPTION[lang],
        "translations": {other: {"name": _NAME[other], "description": _DESCRIPTION[other]}},
        "implementation_groups_definition": _implementation_groups(catalog, lang, other),
        "requirement_nodes": nodes,
    }


def _implementation_groups(catalog: Catalog, lang: Lang, other: Lang) -> list[dict[str, Any]]:
    groups = []
    for category_id in CATEGORY_IDS:
        category = catalog.guideline_categories.get(category_id)
        if category is None:
            continue
        groups.append(
            {
                "ref_id": CATEGORY_CODES[category_id],
                "name": category.name(lang),
                "description": category.description(lang),
                "translations": {other: {"name": category.name(other), "description": category.description(other)}},
            }
        )
    return groups


def _category_node(category: CpsfCategory, lang: Lang, other: Lang) -> dict[str, Any]:
    ref_id = f"CPS.{category.code}"
    return {
        "urn": requirement_urn(ref_id),
        "assessable": False,
        "depth": 1,
        "ref_id": ref_id,
        "name": _fit(category.name(lang)),
        "annotation": _category_annotation(category, lang),
        "translations": {
            other: {"name": _fit(category.name(other)), "annotation": _category_annotation(category, other)}
        },
    }


def _requirement_node(
    catalog: Catalog, requirement: Requirement, parent_urn: str, lang: Lang, other: Lang
) -> dict[str, Any]:
    return {
        "urn": requirement_urn(requirement.id),
        "assessable": True,
        "depth": 2,
        "parent_urn": parent_urn,
        "ref_id": requirement.id,
        "name": _fit(requirement.title(lang)),
        "description": requirement.summary(lang),
        "annotation": _requirement_annotation(catalog, requirement, lang),
        "implementation_groups": [CATEGORY_CODES[c] for c in CATEGORY_IDS if c in requirement.categories],
        "translations": {
            other: {
                "name": _fit(requirement.title(other)),
                "description": requirement.summary(other),
                "annotation": _requirement_annotation(catalog, requirement, other),
            }
        },
    }


def _category_annotation(category: CpsfCategory, lang: Lang) -> str:
    lines = [f"{_LABEL['function'][lang]}: {category.function}"]
    lines += _csf_lines(category.csf11, category.csf20)
    return "\n".join(lines)


def _requirement_annotation(catalog: Catalog, requirement: Requirement, lang: Lang) -> str:
    names = []
    for category_id in CATEGORY_IDS:
        if category_id in requirement.categories:
            category = catalog.guideline_categories.get(category_id)
            name = category.name(lang) if category is not None else category_id
            names.append(f"{name} ({CATEGORY_CODES[category_id]})")
    lines = [
        f"{_LABEL['categories'][lang]}: {_SEPARATOR[lang].join(names)}",
        f"{_LABEL['provenance'][lang]}: {_PROVENANCE[requirement.provenance][lang]}",
    ]
    lines += _csf_lines(requirement.csf11, requirement.csf20)
    if requirement.source is not None:
        note = f" ({requirement.source.note})" if requirement.source.note else ""
        lines.append(f"{_LABEL['source'][lang]}: {requirement.source.document}{note}")
    return "\n".join(lines)


def _csf_lines(csf11: list[str], csf20: list[str]) -> list[str]:
    lines = []
    if csf11:
        lines.append(f"NIST CSF 1.1: {', '.join(csf11)}")
    if csf20:
        lines.append(f"NIST CSF 2.0: {', '.join(csf20)}")
    return lines


def _fit(name: str) -> str:
    return name if len(name) <= NAME_MAX_LENGTH else name[: NAME_MAX_LENGTH - 1] + "…"


def _literal_blocks(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _literal_blocks(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal_blocks(item) for item in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value

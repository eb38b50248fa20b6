"""Bilingual labels shared by the HTML report and the check sheets."""

from __future__ import annotations

from machimori.governance.assessment.result import RATINGS as ASSESSMENT_RATINGS
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import City, CityModel, StatusValue
from machimori.governance.text import CATEGORY_IDS, Lang, Text

STATUSES: tuple[StatusValue, ...] = (
    "implemented",
    "partial",
    "planned",
    "not-implemented",
    "not-applicable",
    "unknown",
)
"""Every status a check sheet may hold, in the order the dropdown offers them."""

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "implemented": ("実装済", "implemented"),
    "partial": ("一部実装", "partial"),
    "planned": ("計画中", "planned"),
    "not-implemented": ("未実装", "not implemented"),
    "not-applicable": ("対象外", "not applicable"),
    "unknown": ("不明", "unknown"),
}

RATINGS: tuple[str, ...] = tuple(reversed(ASSESSMENT_RATINGS))
"""Most severe first, as reports list them."""
RATING_LABELS: dict[str, tuple[str, str]] = {
    "critical": ("重大", "critical"),
    "high": ("高", "high"),
    "medium": ("中", "medium"),
    "low": ("低", "low"),
}
RATING_COLOURS: dict[str, str] = {"critical": "#8f1d21", "high": "#d9480f", "medium": "#e8a500", "low": "#2b8a3e"}

CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "governance": ("ガバナンス", "Governance"),
    "service": ("サービス", "Service"),
    "city-os": ("都市OS", "City OS"),
    "asset": ("アセット", "Asset"),
}

STAKEHOLDER_KINDS: dict[str, tuple[str, str]] = {
    "promoter": ("推進主体", "promoter"),
    "municipality": ("自治体", "municipality"),
    "city-os-operator": ("都市OS運営者", "city-OS operator"),
    "service-provider": ("サービス提供者", "service provider"),
    "device-vendor": ("機器ベンダー", "device vendor"),
    "network-operator": ("通信事業者", "network operator"),
    "subcontractor": ("再委託先", "subcontractor"),
}

AGREEMENT_KINDS: dict[str, tuple[str, str]] = {
    "security-requirements": ("セキュリティ要件", "security requirements"),
    "data-handling": ("データ取扱", "data handling"),
    "nda": ("秘密保持", "NDA"),
}

SCOPE_KINDS: dict[str, tuple[str, str]] = {
    "component": ("構成要素", "component"),
    "stakeholder": ("関係主体", "stakeholder"),
}


def pick(pair: tuple[str, str], lang: Lang) -> str:
    """One side of a (ja, en) pair."""
    return pair[0] if lang == "ja" else pair[1]


def both(ja: str, en: str, lang: Lang, sep: str = " ") -> str:
    """Both languages, the primary one first: '概要 Summary' or 'Summary 概要'."""
    return f"{ja}{sep}{en}" if lang == "ja" else f"{en}{sep}{ja}"


def label(table: dict[str, tuple[str, str]], key: str, lang: Lang) -> str:
    """The label of ``key`` in ``lang``, or the key itself when the table does not know it."""
    pair = table.get(key)
    return pick(pair, lang) if pair else key


def category_name(catalog: Catalog, category: str, lang: Lang) -> str:
    """A guideline category's name in ``lang``, from the catalog where it has one."""
    found = catalog.guideline_categories.get(category)
    if found is not None:
        return found.name(lang)
    return label(CATEGORY_NAMES, category, lang)


def ordered_categories(catalog: Catalog) -> list[str]:
    """The four guideline categories in the guideline's order, then any other the catalog adds."""
    extra = sorted(set(catalog.guideline_categories) - set(CATEGORY_IDS))
    return [*CATEGORY_IDS, *extra]


def city_name(city: City, lang: Lang) -> str:
    """The city's name in ``lang`` where it is given in both languages."""
    return city.name(lang) if isinstance(city.name, Text) else city.name


def element_names(model: CityModel, lang: Lang) -> dict[tuple[str, str], str]:
    """(kind, id) → a person's name for every stakeholder and component of the model."""
    names: dict[tuple[str, str], str] = {}
    for stakeholder in model.stakeholders:
        names[("stakeholder", stakeholder.id)] = stakeholder.label(lang)
    for component in model.components:
        names[("component", component.id)] = component.label(lang)
    return names

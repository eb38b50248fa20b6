"""The rows and columns of a check sheet, whatever file it is written to."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from machimori.governance.assessment.result import Assessment, Target
from machimori.governance.catalog import Catalog
from machimori.governance.catalog.models import CPSF_CATEGORY_CODES
from machimori.governance.model.schema import CityModel
from machimori.governance.reports.labels import SCOPE_KINDS, both, category_name, label, ordered_categories
from machimori.governance.text import Lang

ROLES: tuple[str, ...] = ("responsible", "accountable", "consulted", "informed")
FORMAT = "machimori-check-sheet"
FORMAT_VERSION = 1
CITY_COLUMN = "city"
FINGERPRINT_COLUMN = "model_fingerprint"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""How a cell starts that a spreadsheet would run as a formula: CSV cells starting so get an apostrophe."""
HEADER_SEARCH_ROWS = 10
"""A category sheet's header row is looked for in this many rows at the top (users insert title rows)."""


@dataclass(frozen=True)
class Column:
    """A column of a check sheet: the field it holds, its bilingual header, and its width in XLSX."""

    field: str
    ja: str
    en: str
    width: int
    wrap: bool = False

    def header(self, lang: Lang) -> str:
        """'状態 / Status' (or 'Status / 状態' in English)."""
        return both(self.ja, self.en, lang, " / ")


COLUMNS: tuple[Column, ...] = (
    Column("key", "キー", "Key", 14),
    Column("category", "区分", "Category", 12),
    Column("requirement", "要件ID", "Requirement ID", 11),
    Column("title", "要件名", "Requirement", 34, wrap=True),
    Column("summary", "要件の概要", "Summary", 56, wrap=True),
    Column("scope", "対象の種類", "Scope kind", 11),
    Column("scope_id", "対象ID", "Scope ID", 16),
    Column("scope_name", "対象名", "Scope name", 22, wrap=True),
    Column("status", "状態", "Status", 17),
    Column("responsible", "実行責任 R", "Responsible R", 16, wrap=True),
    Column("accountable", "説明責任 A", "Accountable A", 16, wrap=True),
    Column("consulted", "協議先 C", "Consulted C", 16, wrap=True),
    Column("informed", "報告先 I", "Informed I", 16, wrap=True),
    Column("evidence", "根拠・証跡", "Evidence", 40, wrap=True),
    Column("due", "期限", "Due", 12),
)
EDITABLE: frozenset[str] = frozenset({"status", *ROLES, "evidence", "due"})
"""The columns a filled check sheet is read back from; the others are there for the reader."""


def fingerprint(targets: Iterable[Target]) -> str:
    """SHA-256 over the sorted keys of every row the model has: equal for sheets of the same model."""
    keys = sorted(t.key for t in targets)
    return "sha256:" + hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()


def belongs_to(target: Target, stakeholder: str, runs: set[str]) -> bool:
    """Whether a row concerns ``stakeholder``: its scope, a component it owns or operates, or a RACI role."""
    if target.scope == "stakeholder" and target.scope_id == stakeholder:
        return True
    if target.scope == "component" and target.scope_id in runs:
        return True
    return any(stakeholder in getattr(target, role) for role in ROLES)


def rows_by_category(
    assessment: Assessment, catalog: Catalog, model: CityModel, stakeholder: str | None
) -> dict[str, list[Target]]:
    """The rows of the sheet grouped by guideline category, each group in CPSF then model order."""
    runs = {c.id for c in model.components if stakeholder is not None and stakeholder in (c.owner, c.operator)}
    position = {("stakeholder", s.id): i for i, s in enumerate(model.stakeholders)}
    position.update({("component", c.id): i for i, c in enumerate(model.components)})
    cpsf = {code: i for i, code in enumerate(CPSF_CATEGORY_CODES)}

    def order(target: Target) -> tuple[int, int, int, int]:
        code, _, number = target.requirement[4:].partition("-")
        return (
            cpsf.get(code, len(cpsf)),
            int(number) if number.isdigit() else 0,
            0 if target.scope == "stakeholder" else 1,
            position.get((target.scope, target.scope_id), 0),
        )

    grouped: dict[str, list[Target]] = {category: [] for category in ordered_categories(catalog)}
    for target in assessment.targets:
        if stakeholder is None or belongs_to(target, stakeholder, runs):
            grouped.setdefault(target.category, []).append(target)
    return {category: sorted(rows, key=order) for category, rows in grouped.items()}


def cell_values(
    target: Target, catalog: Catalog, names: dict[tuple[str, str], str], lang: Lang
) -> dict[str, str | dt.date | None]:
    """A row's cells by field; dates stay dates, lists of stakeholders are joined with ', '."""
    requirement = catalog.requirements.get(target.requirement)
    return {
        "key": target.key,
        "category": category_name(catalog, target.category, lang),
        "requirement": target.requirement,
        "title": requirement.title(lang) if requirement else "",
        "summary": requirement.summary(lang) if requirement else "",
        "scope": label(SCOPE_KINDS, target.scope, lang),
        "scope_id": target.scope_id,
        "scope_name": names.get((target.scope, target.scope_id), target.scope_id),
        "status": target.status,
        "responsible": ", ".join(target.responsible),
        "accountable": ", ".join(target.accountable),
        "consulted": ", ".join(target.consulted),
        "informed": ", ".join(target.informed),
        "evidence": target.evidence or "",
        "due": target.due,
    }

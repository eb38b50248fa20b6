"""The assessment as one self-contained HTML report for the municipality's security officer."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import PurePath
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from machimori import __version__
from machimori.governance.assessment.result import Assessment, RiskInstance
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import CityModel, Stakeholder
from machimori.governance.reports.labels import (
    AGREEMENT_KINDS,
    RATING_LABELS,
    RATINGS,
    SCOPE_KINDS,
    STAKEHOLDER_KINDS,
    STATUS_LABELS,
    both,
    category_name,
    city_name,
    element_names,
    label,
    ordered_categories,
)
from machimori.governance.text import Lang

GAPS_SHOWN = 200
"""The report lists this many of the worst gaps; the JSON and the check sheets hold all."""

_CHART_LABEL_WIDTH = 230
_CHART_BAR_WIDTH = 380
_CHART_ROW = 26
_RATING_ORDER = {rating: i for i, rating in enumerate(reversed(RATINGS))}

_environment = Environment(
    loader=PackageLoader("machimori.governance.reports", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Bar:
    """One bar of a coverage chart, with its geometry in the SVG."""

    label: str
    title: str
    value: float
    y: int
    width: float
    colour: str


@dataclass
class Chart:
    """A horizontal bar chart of coverage, drawn as inline SVG."""

    bars: list[Bar]
    height: int
    label_width: int = _CHART_LABEL_WIDTH
    bar_width: int = _CHART_BAR_WIDTH

    @property
    def width(self) -> int:
        """The width of the whole drawing."""
        return self.label_width + self.bar_width + 60


@dataclass
class Node:
    """A stakeholder in the supply-chain tree, with those it delegated work to."""

    id: str
    name: str
    kind: str
    agreements: list[str]
    flagged: bool
    depth: int = 0
    has_children: bool = False
    closes: int = 0
    """How many enclosing lists end after this stakeholder: the template writes the tree flat, not recursively."""


def render_html(assessment: Assessment, catalog: Catalog, model: CityModel, lang: Lang) -> str:
    """A single HTML file (inline CSS and SVG, no script, no external resource) with the whole assessment."""
    return _environment.get_template("report.html.j2").render(**_context(assessment, catalog, model, lang))


def _context(assessment: Assessment, catalog: Catalog, model: CityModel, lang: Lang) -> dict[str, Any]:
    names = element_names(model, lang)
    by_rating: Counter[str] = Counter(f.rating for f in assessment.findings)

    def bi(ja: str, en: str) -> str:
        return both(ja, en, lang)

    return {
        "lang": lang,
        "bi": bi,
        "rating_label": lambda rating: label(RATING_LABELS, rating, lang),
        "status_label": lambda status: label(STATUS_LABELS, status, lang),
        "city_name": city_name(model.city, lang),
        "city_id": assessment.city_id,
        "as_of": assessment.as_of.isoformat(),
        "generator": f"machimori {__version__}",
        "summary": {
            "requirements_total": assessment.requirements_total,
            "requirements_applicable": assessment.requirements_applicable,
            "targets": len(assessment.targets),
            "coverage": f"{assessment.coverage:.1%}",
            "findings": len(assessment.findings),
            "risks_total": len(assessment.risks),
            "risks_open": assessment.risks_open,
            "risks_mitigated": len(assessment.risks) - assessment.risks_open,
            "gaps": len(assessment.gaps),
        },
        "ratings": [(rating, by_rating.get(rating, 0)) for rating in RATINGS],
        "category_chart": _chart(
            [
                (category_name(catalog, c, lang), c, assessment.coverage_by_category[c])
                for c in ordered_categories(catalog)
                if c in assessment.coverage_by_category
            ]
        ),
        "stakeholder_chart": _chart(
            [
                (names.get(("stakeholder", s.id), s.id), s.id, assessment.coverage_by_stakeholder[s.id])
                for s in model.stakeholders
                if s.id in assessment.coverage_by_stakeholder
            ]
        ),
        "findings": [
            {
                "kind": f.kind,
                "rating": f.rating,
                "score": f.score,
                "message": f.message_ja if lang == "ja" else f.message_en,
                "elements": [f"{e.kind}:{e.id}" for e in f.elements],
            }
            for f in assessment.findings
        ],
        "gaps": [
            {
                "rating": g.rating,
                "score": g.score,
                "requirement": g.target.requirement,
                "title": _title(catalog, g.target.requirement, lang),
                "scope_kind": label(SCOPE_KINDS, g.target.scope, lang),
                "scope_id": g.target.scope_id,
                "scope_name": names.get((g.target.scope, g.target.scope_id), g.target.scope_id),
                "status": g.target.status,
                "responsible": ", ".join(g.target.responsible or g.target.accountable),
                "due": g.target.due.isoformat() if g.target.due else "",
            }
            for g in assessment.gaps[:GAPS_SHOWN]
        ],
        "gaps_more": max(0, len(assessment.gaps) - GAPS_SHOWN),
        **_raci(assessment, catalog, model, lang),
        "tree": _tree(model, assessment, lang),
        "risks": _risks(assessment.risks, catalog, lang),
        "provenance": Counter(r.provenance for r in catalog.requirements.values()),
        "sources": [PurePath(s).name for s in assessment.catalog_sources],
    }


def _title(catalog: Catalog, requirement: str, lang: Lang) -> str:
    found = catalog.requirements.get(requirement)
    return found.title(lang) if found else ""


def _chart(items: list[tuple[str, str, float]]) -> Chart:
    bars = []
    for i, (name, ident, value) in enumerate(items):
        short = name if len(name) <= 18 else name[:17] + "…"
        colour = "#2b8a3e" if value >= 0.8 else "#e8a500" if value >= 0.5 else "#c92a2a"
        title = name if name == ident else f"{name} ({ident})"
        bars.append(Bar(short, title, value, i * _CHART_ROW + 8, round(value * _CHART_BAR_WIDTH, 1), colour))
    return Chart(bars, max(len(bars), 1) * _CHART_ROW + 16)


def _raci(assessment: Assessment, catalog: Catalog, model: CityModel, lang: Lang) -> dict[str, Any]:
    involved = {who for roles in assessment.raci.values() for who in roles}
    columns = [s.id for s in model.stakeholders if s.id in involved]
    columns += sorted(involved - set(columns))
    rows = []
    unowned = []
    for result in assessment.requirements:
        roles = assessment.raci.get(result.id, {})
        if roles:
            rows.append(
                {
                    "id": result.id,
                    "title": _title(catalog, result.id, lang),
                    "cells": [roles.get(who, "") for who in columns],
                }
            )
        if result.applicable and not any(("R" in letters or "A" in letters) for letters in roles.values()):
            unowned.append(result.id)
    return {"raci_columns": columns, "raci_rows": rows, "unowned": unowned}


def _tree(model: CityModel, assessment: Assessment, lang: Lang) -> list[Node]:
    """The supply-chain tree in pre-order, built with an explicit stack so that any depth renders.

    The loader refuses cycles and parents that name no stakeholder, so every stakeholder is reached once.
    """
    flagged = {
        e.id
        for f in assessment.findings
        if f.kind == "subcontractor-without-agreement"
        for e in f.elements
        if e.kind == "stakeholder"
    }
    children: dict[str | None, list[Stakeholder]] = defaultdict(list)
    for stakeholder in model.stakeholders:
        children[stakeholder.parent].append(stakeholder)
    nodes: list[Node] = []
    stack: list[tuple[Stakeholder, int]] = [(s, 0) for s in reversed(children[None])]
    while stack:
        stakeholder, depth = stack.pop()
        below = children[stakeholder.id]
        nodes.append(_node(stakeholder, depth, bool(below), stakeholder.id in flagged, lang))
        stack.extend((child, depth + 1) for child in reversed(below))
    for node, after in pairwise(nodes):
        node.closes = max(node.depth - after.depth, 0)
    if nodes:
        nodes[-1].closes = nodes[-1].depth
    return nodes


def _node(stakeholder: Stakeholder, depth: int, has_children: bool, flagged: bool, lang: Lang) -> Node:
    agreements = []
    for a in stakeholder.agreements:
        text = f"{label(AGREEMENT_KINDS, a.kind, lang)} ↔ {a.with_}"
        if a.expires:
            text += f" ({both('期限', 'expires', lang, ' / ')} {a.expires.isoformat()})"
        agreements.append(text)
    return Node(
        id=stakeholder.id,
        name=stakeholder.label(lang),
        kind=label(STAKEHOLDER_KINDS, stakeholder.kind, lang),
        agreements=agreements,
        flagged=flagged,
        depth=depth,
        has_children=has_children,
    )


def _risks(instances: list[RiskInstance], catalog: Catalog, lang: Lang) -> list[dict[str, Any]]:
    grouped: dict[str, list[RiskInstance]] = defaultdict(list)
    for instance in instances:
        grouped[instance.risk].append(instance)
    rows: list[dict[str, Any]] = []
    for risk_id, group in grouped.items():
        worst = max(group, key=lambda r: (r.score, _RATING_ORDER[r.rating]))
        entry = catalog.risks.get(risk_id)
        open_ = sum(1 for r in group if r.open_requirements)
        rows.append(
            {
                "id": risk_id,
                "incident": entry.incident(lang) if entry else "",
                "instances": len(group),
                "open": open_,
                "mitigated": len(group) - open_,
                "rating": worst.rating,
                "score": worst.score,
            }
        )
    rows.sort(key=lambda r: (-int(r["score"]), -int(r["open"]), str(r["id"])))
    return rows

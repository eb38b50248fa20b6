"""The assessment engine: from a city model and the catalog to requirements, risks, findings and gaps."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable

from machimori.governance.assessment.applicability import TargetsByScope, applicable_targets, flatten
from machimori.governance.assessment.findings import FINDING_KINDS, find_all
from machimori.governance.assessment.index import ModelIndex
from machimori.governance.assessment.result import PROGRESS, Assessment, RequirementResult, Target
from machimori.governance.assessment.risks import instantiate
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import CityModel
from machimori.governance.text import Text

__all__ = ["FINDING_KINDS", "Assessment", "assess"]


def assess(model: CityModel, catalog: Catalog, *, as_of: dt.date | None = None) -> Assessment:
    """Assess a checked city model against the catalog as of a date (today, UTC, by default)."""
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    index = ModelIndex(model)
    by_scope = applicable_targets(index, catalog)
    targets = flatten(by_scope)
    risks, gaps = instantiate(index, catalog, by_scope)
    name = model.city.name
    return Assessment(
        city_id=model.city.id,
        city_name=name if isinstance(name, Text) else Text(ja=name, en=name),
        as_of=as_of,
        catalog_sources=list(catalog.sources),
        targets=targets,
        requirements=_requirement_results(catalog, targets),
        risks=risks,
        findings=find_all(index, targets, as_of),
        gaps=gaps,
        raci=_raci(targets),
        coverage_by_category=_coverage_by_category(targets),
        coverage_by_stakeholder=_coverage_by_stakeholder(index, by_scope),
        coverage=_coverage(targets),
        requirements_total=len(catalog.requirements),
    )


def _requirement_results(catalog: Catalog, targets: list[Target]) -> list[RequirementResult]:
    grouped: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        grouped[target.requirement].append(target)
    results = []
    for requirement in catalog.sorted_requirements():
        rows = grouped.get(requirement.id, [])
        statuses = Counter(t.status for t in rows)
        results.append(
            RequirementResult(
                id=requirement.id,
                applicable=bool(rows),
                targets=len(rows),
                implemented=statuses.get("implemented", 0),
                coverage=_coverage(rows),
                statuses=dict(sorted(statuses.items())),
            )
        )
    return results


def _coverage(targets: Iterable[Target]) -> float:
    """Share of applicable targets met: implemented counts 1, partial ½; not-applicable is left out."""
    counted = [PROGRESS[t.status] for t in targets if t.status != "not-applicable"]
    return round(sum(counted) / len(counted), 4) if counted else 1.0


def _coverage_by_category(targets: list[Target]) -> dict[str, float]:
    grouped: dict[str, list[Target]] = defaultdict(list)
    for target in targets:
        grouped[target.category].append(target)
    return {key: _coverage(rows) for key, rows in sorted(grouped.items())}


def _coverage_by_stakeholder(index: ModelIndex, by_scope: TargetsByScope) -> dict[str, float]:
    """Per stakeholder: its own targets and those of the components it owns or operates."""
    grouped: dict[str, list[Target]] = defaultdict(list)
    for (scope, scope_id), here in by_scope.items():
        if scope == "stakeholder":
            grouped[scope_id].extend(here.values())
        else:
            component = index.components[scope_id]
            for who in dict.fromkeys((component.owner, component.operator)):
                if who:
                    grouped[who].extend(here.values())
    return {key: _coverage(rows) for key, rows in sorted(grouped.items())}


def _raci(targets: list[Target]) -> dict[str, dict[str, str]]:
    """Requirement → stakeholder → the letters of its roles (R, A, C, I) on any target."""
    roles: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for target in targets:
        for letter, group in (
            ("R", target.responsible),
            ("A", target.accountable),
            ("C", target.consulted),
            ("I", target.informed),
        ):
            for who in group:
                roles[target.requirement][who].add(letter)
    return {
        requirement: {who: "".join(x for x in "RACI" if x in letters) for who, letters in sorted(by_who.items())}
        for requirement, by_who in roles.items()
    }

"""The assessment as JSON, in the shape docs/assessment.schema.json documents."""

from __future__ import annotations

from collections import Counter
from typing import Any

from machimori import __version__
from machimori.governance.assessment.result import Assessment, Element
from machimori.governance.catalog import Catalog
from machimori.governance.progress import Progress

SCHEMA_VERSION = 1


def to_json(assessment: Assessment, catalog: Catalog, progress: Progress | None = None) -> dict[str, Any]:
    """A JSON-ready dict with the top-level keys summary, requirements, risks, findings, raci and gaps."""
    result = _result(assessment, catalog)
    if progress is not None:
        result["progress"] = progress.to_json()
    return result


def _result(assessment: Assessment, catalog: Catalog) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"machimori {__version__}",
        "city": {"id": assessment.city_id, "name": assessment.city_name.model_dump()},
        "as_of": assessment.as_of.isoformat(),
        "catalog": {"sources": assessment.catalog_sources},
        "summary": {
            "requirements_total": assessment.requirements_total,
            "requirements_applicable": assessment.requirements_applicable,
            "targets_total": len(assessment.targets),
            "findings_total": len(assessment.findings),
            "findings_by_kind": dict(sorted(Counter(f.kind for f in assessment.findings).items())),
            "findings_by_rating": dict(sorted(Counter(f.rating for f in assessment.findings).items())),
            "risks_total": len(assessment.risks),
            "risks_open": assessment.risks_open,
            "gaps_total": len(assessment.gaps),
            "coverage": assessment.coverage,
            "coverage_by_category": assessment.coverage_by_category,
            "coverage_by_stakeholder": assessment.coverage_by_stakeholder,
        },
        "requirements": [
            {
                "id": r.id,
                "title": catalog.requirements[r.id].title.model_dump(),
                "categories": list(catalog.requirements[r.id].categories),
                "provenance": catalog.requirements[r.id].provenance,
                "applicable": r.applicable,
                "targets": r.targets,
                "implemented": r.implemented,
                "coverage": r.coverage,
                "statuses": r.statuses,
            }
            for r in assessment.requirements
        ],
        "risks": [
            {
                "risk": r.risk,
                "element": _element(r.element),
                "likelihood": r.likelihood,
                "impact": r.impact,
                "score": r.score,
                "rating": r.rating,
                "status": r.status,
                "open_requirements": r.open_requirements,
            }
            for r in assessment.risks
        ],
        "findings": [
            {
                "id": f.id,
                "kind": f.kind,
                "rating": f.rating,
                "score": f.score,
                "message": {"ja": f.message_ja, "en": f.message_en},
                "elements": [_element(e) for e in f.elements],
                "requirements": f.requirements,
            }
            for f in assessment.findings
        ],
        "raci": assessment.raci,
        "gaps": [
            {
                "requirement": g.target.requirement,
                "scope": g.target.scope,
                "scope_id": g.target.scope_id,
                "status": g.target.status,
                "likelihood": g.likelihood,
                "impact": g.impact,
                "score": g.score,
                "rating": g.rating,
                "risks": list(g.risks),
                "responsible": list(g.target.responsible),
                "accountable": list(g.target.accountable),
                "due": g.target.due.isoformat() if g.target.due else None,
            }
            for g in assessment.gaps
        ],
    }


def _element(element: Element) -> dict[str, str]:
    return {"kind": element.kind, "id": element.id}

"""A city model assessed once for the server to show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machimori.governance.catalog import load_catalog
from machimori.governance.reports.html import render_html
from machimori.governance.reports.json_report import to_json
from machimori.governance.workflow import run


@dataclass(frozen=True)
class LoadedCity:
    """The assessment of a city model as the API serves it."""

    summary: dict[str, Any]
    report: dict[str, Any]
    html: str


def load_city(model_path: Path) -> LoadedCity:
    """Load and assess a city model (InputError if the model is wrong)."""
    catalog = load_catalog(())
    assessment, model = run(model_path, catalog)
    report = to_json(assessment, catalog)
    summary = {
        "city": report["city"],
        "as_of": report["as_of"],
        "model": str(model_path),
        "stakeholders": len(model.stakeholders),
        "components": len(model.components),
        "datasets": len(model.datasets),
        "flows": len(model.flows),
        "services": len(model.services),
        "assessment": report["summary"],
    }
    return LoadedCity(summary, report, render_html(assessment, catalog, model, "ja"))

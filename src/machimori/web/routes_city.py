"""The city model the server was started with, and its guideline assessment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

router = APIRouter(prefix="/api/v1", tags=["governance"])


def _loaded(request: Request) -> Any:
    city = getattr(request.app.state, "city", None)
    if city is None:
        raise HTTPException(
            404, "no city model is loaded (start with --city-model FILE) / 都市モデルが読み込まれていません"
        )
    return city


@router.get("/city")
def city_summary(request: Request) -> dict[str, Any]:
    """What the loaded city model holds and how it stands against the guideline."""
    return dict(_loaded(request).summary)


@router.get("/governance/assessment")
def assessment(request: Request) -> dict[str, Any]:
    """The assessment of the loaded city model (docs/assessment.schema.json)."""
    return dict(_loaded(request).report)


@router.get("/governance/report", response_class=HTMLResponse)
def report(request: Request) -> str:
    """The assessment as the bilingual HTML report."""
    return str(_loaded(request).html)

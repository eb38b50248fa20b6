"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from machimori import __version__
from machimori.storage.migrate import current_revision, head_revision
from machimori.web.security import platform_of

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is the newest migration."""
    platform = platform_of(request)
    checks: dict[str, str] = {}
    try:
        with platform.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        revision, head = current_revision(platform.database), head_revision()
        checks["schema"] = "ok" if revision == head else f"at {revision}, expected {head}"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )

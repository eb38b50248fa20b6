"""RFC 9457 problem details for every error the API gives."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from machimori.audit.checkpoint import CheckpointError
from machimori.audit.log import EntryRejected
from machimori.audit.merkle import ProofError
from machimori.audit.sequencer import LogClosed
from machimori.audit.store import EntryNotFound

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://machimori.example/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    503: "Service Unavailable",
    500: "Internal Server Error",
}


def problem(
    status: int, detail: str, kind: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem details response."""
    body = {
        "type": TYPE_BASE + (kind or str(status)),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    if status == 401 and headers is None:
        headers = {"WWW-Authenticate": 'Bearer realm="machimori"'}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error as problem details (and never with a traceback)."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return problem(error.status_code, str(error.detail), headers=dict(error.headers) if error.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(part) for part in e.get("loc", ())), "message": e.get("msg", "")}
            for e in error.errors()
        ]
        first = errors[0] if errors else {"location": "", "message": "invalid request"}
        return problem(400, f"{first['location']}: {first['message']}", "invalid-request", errors=errors)

    @app.exception_handler(ProofError)
    async def bad_proof_request(request: Request, error: ProofError) -> JSONResponse:
        return problem(400, str(error), "proof-out-of-range")

    @app.exception_handler(EntryNotFound)
    async def no_entry(request: Request, error: EntryNotFound) -> JSONResponse:
        return problem(404, str(error), "entry-not-found")

    @app.exception_handler(EntryRejected)
    async def rejected(request: Request, error: EntryRejected) -> JSONResponse:
        return problem(413 if "at most" in str(error) else 400, str(error), "entry-rejected")

    @app.exception_handler(CheckpointError)
    async def bad_checkpoint(request: Request, error: CheckpointError) -> JSONResponse:
        return problem(400, str(error), "checkpoint")

    @app.exception_handler(LogClosed)
    async def closed(request: Request, error: LogClosed) -> JSONResponse:
        return problem(503, "the server is shutting down", "shutting-down")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal error; the server log has the details", "internal")

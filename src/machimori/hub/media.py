"""What an NGSI-LD request may ask for and send (ETSI GS CIM 009 §6.3.4): 406 for an Accept header that admits no
form the broker answers in, 415 for a body in a media type NGSI-LD does not take — checked before routing, so
the answer is the same whatever the resource."""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from machimori.hub.errors import ErrorType, NgsiLdError

ACCEPTABLE = frozenset({"application/json", "application/ld+json", "application/*", "*/*"})
GEO_JSON_PATHS = re.compile(r"^/ngsi-ld/v1/entities(/[^/]+)?$")
BODY_TYPES = frozenset({"application/json", "application/ld+json", "application/merge-patch+json"})


def _kinds(header: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()]


class MediaTypes:
    """ASGI middleware: an NGSI-LD request whose Accept header admits no form the broker answers in is 406,
    one whose body is in a media type NGSI-LD does not take is 415 (ETSI GS CIM 009 §6.3.4), whatever the
    resource."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/ngsi-ld/"):
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> JSONResponse | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        accept = _kinds(headers.get("accept", ""))
        if accept:
            allowed = set(ACCEPTABLE)
            path = scope["path"].rstrip("/")
            if (scope["method"] == "GET" and GEO_JSON_PATHS.match(path)) or (
                scope["method"] == "POST" and path == "/ngsi-ld/v1/entityOperations/query"
            ):
                allowed.add("application/geo+json")
            if not allowed & set(accept):
                return NgsiLdError(
                    ErrorType.InvalidRequest,
                    f"Accept {', '.join(accept)[:100]}: the broker answers in application/json or application/ld+json"
                    " / 応答の形式が受け入れられません",
                ).response(status=406)
        content_type = _kinds(headers.get("content-type", ""))
        if scope["method"] in ("POST", "PATCH", "PUT") and content_type and content_type[0] not in BODY_TYPES:
            return NgsiLdError(
                ErrorType.InvalidRequest,
                f"Content-Type {content_type[0][:80]!r}: use application/json or application/ld+json"
                " / 本文の形式に対応していません",
            ).response(status=415)
        return None

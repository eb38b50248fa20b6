"""What an NGSI-LD request says besides its body: the tenant and where its @context is.

ETSI GS CIM 009 §6.3.5: with `application/json` the @context comes in a Link header (rel
`http://www.w3.org/ns/json-ld#context`), with `application/ld+json` it comes in the body and a Link
header for it is an error; reads carry it in a Link header, or use the core context alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from machimori.clock import utc_now
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request
from machimori.hub.jsonld import ContextValue

CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
JSON = "application/json"
JSON_LD = "application/ld+json"
MERGE_PATCH = "application/merge-patch+json"
_TENANT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


class UnsupportedMediaType(ValueError):
    """A body in a media type NGSI-LD does not take (HTTP 415)."""


def tenant_of(header: str | None) -> str:
    """The tenant an `NGSILD-Tenant` header names ('' for the default tenant)."""
    if header is None or header == "":
        return ""
    if not _TENANT.match(header):
        raise bad_request("NGSILD-Tenant: letters, digits, '_' and '-' only, at most 64 / テナント名が不正です")
    return header


def media_type(content_type: str | None) -> str:
    """The body's media type without parameters; UnsupportedMediaType unless NGSI-LD takes it."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in (JSON, JSON_LD, MERGE_PATCH):
        raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r}: use {JSON} or {JSON_LD}")
    return kind


def link_context(link: str | None) -> str | None:
    """The @context URL a Link header gives (None if it gives none); BadRequestData if it gives two."""
    if not link:
        return None
    found = [url for url, params in _LINK.findall(link) if _rel(params) == CONTEXT_REL]
    if len(found) > 1:
        raise bad_request("more than one JSON-LD @context Link header / @context の Link は一つだけです")
    return found[0] if found else None


def _rel(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "rel":
            return value.strip().strip('"')
    return None


def body_context(content_type: str | None, link: str | None, body: Any) -> ContextValue:
    """The @context of a request with a body, by the rules of §6.3.5; removed from the body it came in."""
    kind = media_type(content_type)
    linked = link_context(link)
    items = body if isinstance(body, list) else [body]
    contexts = [item.pop("@context") for item in items if isinstance(item, dict) and "@context" in item]
    if kind == JSON_LD:
        if linked is not None:
            raise bad_request("application/ld+json carries its @context in the body, not in a Link header")
        if len(contexts) != len(items):
            raise bad_request("application/ld+json needs an @context in the body / 本文に @context が必要です")
        first = contexts[0] if contexts else None
        if any(context != first for context in contexts):
            raise bad_request("the entities of one request must share one @context")
        return first
    if contexts:
        raise bad_request(f"{kind} carries its @context in a Link header, not in the body (use {JSON_LD})")
    return linked


TOLERATED_PARAMETERS = frozenset({"local"})  # local=true: this broker answers from its own store only anyway


def _declared(dependant: Any) -> set[str]:
    names = {str(field.alias) for field in dependant.query_params}
    for nested in dependant.dependencies:
        names |= _declared(nested)
    return names


def known_parameters(request: Request) -> None:
    """A dependency: InvalidRequest for a query parameter the operation does not take (§6.3.20)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    unknown = [name for name in request.query_params if name not in TOLERATED_PARAMETERS]
    if unknown:
        declared = _declared(dependant)
        unknown = [name for name in unknown if name not in declared]
    if unknown:
        raise NgsiLdError(
            ErrorType.InvalidRequest,
            f"unknown query parameter {', '.join(sorted(unknown))[:100]} / 未知の問い合わせパラメータです",
        )


def now() -> str:
    """The broker's time for createdAt/modifiedAt: UTC, RFC 3339 with Z."""
    return utc_now().isoformat().replace("+00:00", "Z")


async def load_body(request: Request) -> None:
    """A dependency of every NGSI-LD route: the body read before the route runs (in a worker thread, so
    database work never holds up the event loop)."""
    request.state.body = await request.body()


def json_body(request: Request) -> Any:
    """The request's body parsed as JSON; InvalidRequest if it is not JSON."""
    try:
        return json.loads(getattr(request.state, "body", b""))
    except (ValueError, UnicodeDecodeError):
        raise NgsiLdError(ErrorType.InvalidRequest, "the body is not valid JSON / 本文が JSON ではありません") from None

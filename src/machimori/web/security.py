"""Bearer-token authentication for the API; every failure is an Authentication event."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request

from machimori.events import Endpoint, EventClass, SecurityEvent, Severity, Status
from machimori.identity.oauth.provider import AccessToken, TokenRejected
from machimori.identity.tokens import Principal, authenticate
from machimori.platform import Platform
from machimori.policy import Action, Context, DataType, Subject, Target
from machimori.policy.decide import PLATFORM


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def client_address(request: Request) -> str:
    """The address the request came from (as the ASGI server saw it)."""
    return request.client.host if request.client else "unknown"


def _source(request: Request) -> Endpoint | None:
    client = request.client
    return Endpoint(ip=client.host, port=client.port) if client else None


def report_rejection(request: Request, what: str, reason: str) -> None:
    """A failed authentication on this request, as an Authentication event."""
    platform_of(request).events.emit(
        SecurityEvent(
            class_uid=EventClass.AUTHENTICATION,
            activity_id=1,
            severity_id=Severity.MEDIUM,
            status_id=Status.FAILURE,
            message=f"{what} rejected on {request.method} {request.url.path}: {reason}",
            src_endpoint=_source(request),
        )
    )


def _bearer(request: Request) -> str | None:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


async def access_token(request: Request) -> AccessToken:
    """A dependency: the verified OAuth access token of the calling service, or 401 (RFC 6750)."""
    return verified_token(request)


def verified_token(request: Request) -> AccessToken:
    """The verified OAuth access token of the calling service, or 401 (RFC 6750); it reads the database
    (revocation), so synchronous routes and dependencies call it from a worker thread."""
    presented = _bearer(request)
    if presented is None:
        report_rejection(request, "access token", "missing")
        raise HTTPException(401, "an OAuth access token is required / OAuth アクセストークンが必要です")
    try:
        return platform_of(request).oauth.verify_access_token(presented)
    except TokenRejected as error:
        report_rejection(request, "access token", str(error))
        raise HTTPException(
            401,
            f"the access token is not valid: {error} / アクセストークンが無効です",
            headers={"WWW-Authenticate": 'Bearer realm="machimori", error="invalid_token"'},
        ) from None


def require(operation: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that admits a valid API token whose role the decision point permits the operation."""

    async def dependency(request: Request) -> Principal:
        secret = _bearer(request)
        principal = authenticate(platform_of(request).database, secret) if secret else None
        if principal is None:
            report_rejection(request, "API token", "unknown or revoked / APIトークンを拒否")
            raise HTTPException(401, "a valid bearer token is required / 有効なベアラートークンが必要です")
        subject = Subject(principal.token_id, "api-token", PLATFORM, frozenset({(PLATFORM, principal.role.value)}))
        target = Target(f"{PLATFORM}:{operation}", DataType.closed, PLATFORM)
        decision = platform_of(request).decisions.decide(subject, Action.admin, target, Context())
        if not decision.permit:
            raise HTTPException(403, f"role {principal.role.value}: {decision.reason_en} / {decision.reason_ja}")
        return principal

    return dependency


def service_subject(token: AccessToken) -> Subject:
    """The decision point's subject for a request made with a service's access token."""
    return Subject(id=token.client_id, kind="service", org=token.claims.get("org"))


def token_context(token: AccessToken, purpose: str | None) -> Context:
    """The decision context of such a request: its declared purpose, the token's scopes and resident."""
    return Context(purpose=purpose, scopes=token.scopes, on_behalf_of=token.resident)

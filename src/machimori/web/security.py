"""Bearer-token authentication for the API; every failure is an Authentication event."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request

from machimori.events import Endpoint, EventClass, SecurityEvent, Severity, Status
from machimori.identity.tokens import Principal, Role, authenticate
from machimori.platform import Platform


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def client_address(request: Request) -> str:
    """The address the request came from (as the ASGI server saw it)."""
    return request.client.host if request.client else "unknown"


def _source(request: Request) -> Endpoint | None:
    client = request.client
    return Endpoint(ip=client.host, port=client.port) if client else None


def require(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that admits a valid token of one of the roles (admin always)."""

    async def dependency(request: Request) -> Principal:
        platform = platform_of(request)
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        principal = authenticate(platform.database, secret.strip()) if scheme.lower() == "bearer" and secret else None
        if principal is None:
            platform.events.emit(
                SecurityEvent(
                    class_uid=EventClass.AUTHENTICATION,
                    activity_id=1,
                    severity_id=Severity.MEDIUM,
                    status_id=Status.FAILURE,
                    message=f"API token rejected on {request.method} {request.url.path} / APIトークンを拒否",
                    src_endpoint=_source(request),
                )
            )
            raise HTTPException(401, "a valid bearer token is required / 有効なベアラートークンが必要です")
        if not principal.may(*roles):
            raise HTTPException(403, f"role {principal.role.value} may not do this / この操作の権限がありません")
        return principal

    return dependency

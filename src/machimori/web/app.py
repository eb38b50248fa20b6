"""The application factory: one FastAPI app over the platform's spine."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from machimori import __version__
from machimori.detection import routes as detection_routes
from machimori.detection.service import RegistryDirectory
from machimori.gateway import routes as gateway_routes
from machimori.gateway.mqtt import start_mqtt_workers
from machimori.governance.served import LoadedCity
from machimori.hub import api as hub_api
from machimori.platform import Platform
from machimori.web import (
    problems,
    routes_audit,
    routes_authorize,
    routes_city,
    routes_consent_events,
    routes_events,
    routes_health,
    routes_me,
    routes_oauth,
    routes_residents,
    routes_session,
    routes_tokens,
)
from machimori.web.problems import problem

access = logging.getLogger("machimori.access")


def create_app(
    platform: Platform,
    *,
    city: LoadedCity | None = None,
    close_platform: bool = True,
    ngsi_ld: Callable[[FastAPI, Platform], None] = hub_api.install,
) -> FastAPI:
    """The API over an opened platform (NGSI-LD served by the hub, or as `ngsi_ld` installs it, e.g. the
    guard); shutting the app down commits what is queued and closes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform.consent_notifications.start()
        app.state.hub.notifications.start()
        workers = start_mqtt_workers(platform.settings, assets.gateway) if assets else []
        yield
        for worker in workers:
            worker.close()
        detection.close()
        if assets:
            assets.close()
        app.state.hub.notifications.close()
        platform.consent_notifications.close()
        if close_platform:
            platform.close()

    app = FastAPI(
        title="machimori 街守",
        version=__version__,
        description="スマートシティのセキュリティ基盤 / the security platform of a smart city's data platform",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.city = city
    problems.install(app)
    for module in (
        routes_health,
        routes_audit,
        routes_events,
        routes_tokens,
        routes_city,
        routes_oauth,
        routes_authorize,
        routes_residents,
        routes_session,
        routes_me,
        routes_consent_events,
    ):
        app.include_router(module.router)

    ngsi_ld(app, platform)
    assets = gateway_routes.install(app, platform, app.state.hub.store) if ngsi_ld is hub_api.install else None
    detection = detection_routes.install(app, platform, RegistryDirectory(assets.registry) if assets else None)
    app.add_middleware(BodyLimit)
    app.add_middleware(AccessLog)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return _HOME

    return app


MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_BODY_BYTES = 32 * 1024 * 1024  # NGSI-LD batch operations: up to 10,000 entities in one request
BATCH_PATHS = ("/ngsi-ld/v1/entityOperations/", "/api/v1/flows")


def body_limit(path: str) -> int:
    """The largest request body taken on this path."""
    return MAX_BATCH_BODY_BYTES if path.startswith(BATCH_PATHS) else MAX_BODY_BYTES


class BodyLimit:
    """Refuses request bodies over the path's limit (see body_limit) with 413, before they are read into memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""))
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await problem(413, f"request body over {limit} bytes", "body-too-large")(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await problem(413, f"request body over {limit} bytes", "body-too-large")(scope, receive, send)


class BodyTooLarge(Exception):
    """A streamed request body passed the limit."""


class AccessLog:
    """Logs each HTTP request as one structured line (pure ASGI, no buffering of bodies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if access.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": client[0] if client else None,
                    },
                )


_HOME = """<!doctype html><html lang="ja"><meta charset="utf-8"><title>machimori 街守</title>
<body style="font-family:sans-serif;max-width:48em;margin:2em auto">
<h1>machimori 街守</h1><p>スマートシティのセキュリティ基盤 / the security platform of a smart city's data platform</p>
<ul>
<li><a href="/api/v1/audit/checkpoint">/api/v1/audit/checkpoint</a> — 監査ログの署名付きチェックポイント / signed checkpoint of the audit log</li>
<li><a href="/api/v1/city">/api/v1/city</a> — 都市モデルと評価の要約 / the city model and its assessment</li>
<li><a href="/api/v1/governance/report">/api/v1/governance/report</a> — ガイドライン評価レポート / guideline assessment report</li>
<li>/api/v1/events — セキュリティイベント(要トークン)/ security events (token needed)</li>
<li><a href="/openapi.json">/openapi.json</a> — API 定義 / OpenAPI document</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a></li>
</ul></body></html>"""

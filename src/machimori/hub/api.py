"""The NGSI-LD API at /ngsi-ld/v1: every request authenticated (see `caller`) and answered with ETSI errors."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from machimori.hub.broker import open_hub
from machimori.hub.conformance import announce, refuse_public
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.media import MediaTypes
from machimori.hub.requests import UnsupportedMediaType, known_parameters, load_body
from machimori.hub.routes import attributes, batch, contexts, discovery, entities, open_data, purge, query
from machimori.hub.routes import subscriptions as subscription_routes
from machimori.platform import Platform


class TrailingSlash:
    """ASGI middleware: `/ngsi-ld/v1/entities/` is `/ngsi-ld/v1/entities` (clients, the ETSI suite among them,
    send both)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(PREFIXES) and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/")}
        await self.app(scope, receive, send)


PREFIXES = ("/ngsi-ld/", "/open-data/")
CHECKED = [Depends(load_body), Depends(known_parameters)]  # the body is read before the (threaded) route


def install(app: FastAPI, platform: Platform) -> None:
    """Mount the NGSI-LD API on the app, with ETSI errors for what goes wrong."""
    refuse_public(platform.settings)
    app.add_middleware(MediaTypes)
    app.add_middleware(TrailingSlash)
    app.state.hub = open_hub(platform)
    announce(platform)
    app.include_router(query.router, dependencies=CHECKED)
    app.include_router(purge.router, dependencies=CHECKED)
    app.include_router(attributes.router, dependencies=CHECKED)  # before entities (/entities/{id:path})
    app.include_router(batch.router, dependencies=CHECKED)
    app.include_router(entities.router, dependencies=CHECKED)
    app.include_router(subscription_routes.router, dependencies=CHECKED)
    app.include_router(discovery.router, dependencies=CHECKED)
    app.include_router(contexts.router, dependencies=CHECKED)
    app.include_router(open_data.router, dependencies=CHECKED)

    @app.exception_handler(NgsiLdError)
    async def ngsi_ld_error(request: Request, error: NgsiLdError) -> JSONResponse:
        return error.response()

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, error: UnsupportedMediaType) -> JSONResponse:
        return NgsiLdError(ErrorType.InvalidRequest, str(error)).response(status=415)

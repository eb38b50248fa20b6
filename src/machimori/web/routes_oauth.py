"""OAuth 2.0 endpoints: token, introspection, revocation, JWKS and the discovery documents."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from machimori.identity.oauth.provider import AccessToken, Provider
from machimori.identity.oauth.requests import StarletteOAuth2Request
from machimori.web.problems import problem
from machimori.web.security import access_token, platform_of, report_rejection

router = APIRouter(tags=["oauth"])


def provider_of(request: Request) -> Provider:
    return platform_of(request).oauth


async def _oauth_request(request: Request) -> StarletteOAuth2Request:
    form = await request.form()
    return StarletteOAuth2Request(request.method, str(request.url), request.headers, request.query_params, form)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """RFC 6749 token endpoint (authorization code, refresh token, client credentials); RFC 9068 JWTs.

    Every refusal is an Authentication event with the OAuth error (a guessed secret, a replayed code …)."""
    response: Response = provider_of(request).create_token_response(await _oauth_request(request))
    response.headers["Cache-Control"] = "no-store"
    if response.status_code >= 400:
        error = json.loads(bytes(response.body)).get("error", "error") if response.body else "error"
        report_rejection(request, "token request", str(error))
    return response


@router.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    """RFC 7662 token introspection (client authentication required)."""
    response: Response = provider_of(request).create_endpoint_response("introspection", await _oauth_request(request))
    return response


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    """RFC 7009 token revocation."""
    response: Response = provider_of(request).create_endpoint_response("revocation", await _oauth_request(request))
    return response


@router.get("/oauth/userinfo", response_model=None, operation_id="userinfo")
@router.post("/oauth/userinfo", response_model=None, operation_id="userinfo_post")
def userinfo(request: Request, token: Annotated[AccessToken, Depends(access_token)]) -> Response | dict[str, Any]:
    """OpenID Connect UserInfo: the resident who authorized the token, as far as its scope reaches."""
    if token.resident is None or "openid" not in token.scopes:
        return problem(
            403,
            "a token a resident authorized with the openid scope is required",
            "insufficient-scope",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'},
        )
    claims: dict[str, Any] = {"sub": token.resident}
    if "profile" in token.scopes:
        claims.update(provider_of(request).profile_of(token.resident))
    return claims


@router.get("/oauth/jwks")
def jwks(request: Request) -> dict[str, Any]:
    """The provider's public signing keys."""
    return provider_of(request).jwks()


@router.get("/.well-known/openid-configuration")
@router.get("/.well-known/oauth-authorization-server")
def discovery(request: Request) -> dict[str, Any]:
    """Provider metadata (OpenID Connect Discovery, RFC 8414)."""
    return provider_of(request).discovery()

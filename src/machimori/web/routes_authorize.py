"""The browser side of OAuth: the sign-in page and the consent screen at /oauth/authorize.

A resident-facing app sends the resident here with an authorization request (RFC 6749 §4.1 with PKCE)
that may name purposes (`purpose`: space-separated purpose IRIs of the catalogue). She signs in if she
is not, sees who asks for what, and approves or denies. Approving records her consent to each purpose
(with a signed receipt, audit-logged) and hands the app a one-time code; denying records a refusal.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated
from urllib.parse import quote, urlsplit

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from machimori.consent.purposes import Purpose
from machimori.identity.oauth.clients import Client
from machimori.identity.oauth.requests import StarletteOAuth2Request
from machimori.identity.sessions import Session
from machimori.web.pages import error_page, page
from machimori.web.routes_session import COOKIE, set_session_cookie
from machimori.web.security import client_address, platform_of

router = APIRouter(tags=["oauth"], include_in_schema=False)


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path on this server only (never another site)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _session(request: Request) -> Session | None:
    secret = request.cookies.get(COOKIE)
    return platform_of(request).sessions.find(secret) if secret else None


def _csrf(request: Request) -> str:
    """A token tying the consent form to this session and this request (the cookie's secret is the key)."""
    key = request.cookies.get(COOKIE, "").encode()
    return hmac.new(key, b"authorize?" + request.url.query.encode(), hashlib.sha256).hexdigest()


@router.get("/signin")
def sign_in_page(request: Request, next: str = "/") -> Response:
    """The sign-in form (password with an optional one-time code, or a passkey)."""
    return page("signin.html.j2", title="サインイン / Sign in", next=_safe_next(next), login="", error="")


@router.post("/signin")
def sign_in_form(
    request: Request,
    login: Annotated[str, Form(max_length=255)],
    password: Annotated[str, Form(max_length=1024)] = "",
    otp: Annotated[str, Form(max_length=8)] = "",
    next: Annotated[str, Form(max_length=4096)] = "/",
) -> Response:
    """Sign in from the form; on success go back to where the resident came from."""
    platform, target = platform_of(request), _safe_next(next)

    def again(message: str, status: int) -> Response:
        return page("signin.html.j2", status, title="サインイン / Sign in", next=target, login=login, error=message)

    result = platform.accounts.sign_in(login, password, client_address(request))
    if result.outcome == "throttled":
        return again("試行が多すぎます。しばらく待ってください / too many attempts; please wait", 429)
    if result.outcome == "locked":
        return again("アカウントはロックされています / the account is locked", 403)
    if result.outcome == "wrong" or result.account_id is None:
        return again("ログイン名かパスワードが違います / wrong login or password", 401)
    aal, amr = 1, ["pwd"]
    if result.outcome == "second-factor":
        if not platform.accounts.verify_totp(result.account_id, otp.strip(), client_address(request)):
            return again("確認コードが違います / the one-time code is wrong", 401)
        aal, amr = 2, ["pwd", "otp"]
    secret = platform.sessions.start(result.account_id, aal, amr)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, secret, request)
    return response


async def _authorization(request: Request) -> tuple[StarletteOAuth2Request, object]:
    """The validated authorization request and authlib's grant for it; OAuth2Error if invalid."""
    form = await request.form()
    oauth_request = StarletteOAuth2Request(
        request.method, str(request.url), request.headers, request.query_params, form
    )
    grant = platform_of(request).oauth.get_consent_grant(oauth_request)
    return oauth_request, grant


def _refusal(request: Request, error: OAuth2Error) -> Response:
    """An invalid request: back to the app if its redirect URI was verified, else a page here."""
    if error.redirect_uri:
        response: Response = platform_of(request).oauth.handle_response(*error())
        return response
    return error_page(400, f"この要求は受け付けられません / invalid request: {error.error} — {error.description or ''}")


def _purposes(request: Request, oauth_request: StarletteOAuth2Request) -> list[Purpose] | None:
    catalogue = platform_of(request).consent.purposes
    named = oauth_request.payload.data.get("purpose", "").split()
    if any(iri not in catalogue for iri in named):
        return None
    return [catalogue.get(iri) for iri in dict.fromkeys(named)]


@router.get("/oauth/authorize")
async def authorize_page(request: Request) -> Response:
    """The consent screen (after sign-in)."""
    try:
        oauth_request, grant = await _authorization(request)
    except OAuth2Error as error:
        return _refusal(request, error)
    session = _session(request)
    if session is None:
        return RedirectResponse(
            "/signin?next=" + quote(f"{request.url.path}?{request.url.query}", safe=""), status_code=303
        )
    client: Client = grant.client  # type: ignore[attr-defined]
    purposes = _purposes(request, oauth_request)
    if purposes is None:
        return _refusal(request, _invalid_purpose(grant))
    account = platform_of(request).accounts.profile(session.account_id)
    return page(
        "authorize.html.j2",
        title="同意の確認 / Consent",
        form_action=str(grant.redirect_uri),  # type: ignore[attr-defined]
        client=client,
        account=account["display_name"] or account["login"],
        purposes=purposes,
        scopes=(oauth_request.payload.data.get("scope") or "").split(),
        action=f"/oauth/authorize?{request.url.query}",
        csrf=_csrf(request),
    )


@router.post("/oauth/authorize")
async def authorize_decision(request: Request) -> Response:
    """The resident's answer: approve (consent recorded, code issued) or deny (refusal recorded)."""
    try:
        oauth_request, grant = await _authorization(request)
    except OAuth2Error as error:
        return _refusal(request, error)
    session = _session(request)
    form = await request.form()
    if session is None or not hmac.compare_digest(str(form.get("csrf", "")), _csrf(request)):
        return error_page(403, "このフォームは無効です。やり直してください / this form is not valid; start again")
    purposes = _purposes(request, oauth_request)
    if purposes is None:
        return _refusal(request, _invalid_purpose(grant))
    platform = platform_of(request)
    client: Client = grant.client  # type: ignore[attr-defined]
    approved = form.get("decision") == "approve"
    for purpose in purposes:
        record = platform.consent.give if approved else platform.consent.refuse
        record(session.account_id, client.client_id, purpose.iri)
    granted = None
    if approved:
        granted = platform.oauth.authorizations.create(
            client.client_id,
            session.account_id,
            oauth_request.payload.data.get("scope") or "",
            [purpose.iri for purpose in purposes],
            session.aal,
            list(session.amr),
        )
    response: Response = platform.oauth.create_authorization_response(oauth_request, granted, grant)
    return response


def _invalid_purpose(grant: object) -> OAuth2Error:
    return InvalidRequestError(
        "unknown purpose: name purposes of the catalogue",
        redirect_uri=grant.redirect_uri,  # type: ignore[attr-defined]
        state=grant.request.payload.state,  # type: ignore[attr-defined]
    )

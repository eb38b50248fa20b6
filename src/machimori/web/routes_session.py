"""Signing in and out over HTTP: password, TOTP and passkeys; the session cookie carries the AAL reached."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from machimori.identity.passkeys import PasskeyRejected
from machimori.identity.sessions import Session, acr_of
from machimori.web.problems import problem
from machimori.web.security import client_address, platform_of

router = APIRouter(prefix="/api/v1", tags=["session"])
COOKIE = "mm_session"


class PasswordSignIn(BaseModel):
    login: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class OtpCode(BaseModel):
    code: str = Field(min_length=6, max_length=8)


class PasskeySignIn(BaseModel):
    login: str = Field(min_length=1, max_length=255)
    credential: dict[str, Any]


def set_session_cookie(response: Response, secret: str, request: Request) -> None:
    """Hand the browser its session secret: HttpOnly, Secure over HTTPS, SameSite=Lax.

    Lax rather than Strict because an app sends the resident to /oauth/authorize by a link from its own
    site, and the consent screen must see that she is signed in; no state-changing request is a GET,
    cross-site POSTs carry no cookie under Lax, and the consent form also carries a CSRF token.
    """
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
        path="/",
        max_age=12 * 3600,
    )


def _with_cookie(body: dict[str, Any], secret: str, request: Request) -> JSONResponse:
    response = JSONResponse(body)
    set_session_cookie(response, secret, request)
    return response


def current_session(request: Request) -> Session:
    """A dependency: the signed-in session (AAL ≥ 1), or 401."""
    secret = request.cookies.get(COOKIE)
    session = platform_of(request).sessions.find(secret) if secret else None
    if session is None:
        raise HTTPException(401, "サインインしてください / sign in first")
    return session


@router.post("/session")
def sign_in(request: Request, body: PasswordSignIn) -> Response:
    """Sign in with a password; if the account has a second factor, the session waits for it."""
    platform = platform_of(request)
    result = platform.accounts.sign_in(body.login, body.password, client_address(request))
    if result.outcome == "throttled":
        answer = problem(429, "試行が多すぎます。しばらく待ってください / too many attempts; wait", "throttled")
        answer.headers["Retry-After"] = str(max(1, int(result.retry_after + 0.999)))
        return answer
    if result.outcome == "locked":
        return problem(403, "アカウントはロックされています。管理者に連絡してください / account locked", "locked")
    if result.outcome == "wrong" or result.account_id is None:
        return problem(401, "ログイン名かパスワードが違います / wrong login or password", "wrong-credentials")
    if result.outcome == "second-factor":
        secret = platform.sessions.start(result.account_id, 0, ["pwd"])
        return _with_cookie({"aal": 0, "second_factor_required": "otp"}, secret, request)
    secret = platform.sessions.start(result.account_id, 1, ["pwd"])
    return _with_cookie({"aal": 1, "acr": acr_of(1), "amr": ["pwd"]}, secret, request)


@router.post("/session/otp")
def second_factor(request: Request, body: OtpCode) -> Response:
    """Complete a pending sign-in with a TOTP code: the session reaches AAL2."""
    platform = platform_of(request)
    secret = request.cookies.get(COOKIE, "")
    pending = platform.sessions.find(secret, pending=True) if secret else None
    if pending is None or not platform.accounts.verify_totp(pending.account_id, body.code, client_address(request)):
        return problem(401, "コードが違うか、期限切れです / wrong or expired code", "wrong-second-factor")
    session = platform.sessions.raise_to(secret, 2, "otp")
    assert session is not None
    return JSONResponse({"aal": 2, "acr": session.acr, "amr": list(session.amr)})


@router.post("/session/passkey/options")
def passkey_options(request: Request, login: Annotated[str, Body(embed=True, max_length=255)]) -> Response:
    """WebAuthn request options for the login (an unknown login gets options that can never succeed)."""
    platform = platform_of(request)
    account_id = platform.accounts.id_of(login)
    if account_id is None:
        challenge = os.urandom(32).hex()
        return Response(
            json.dumps({"challenge": challenge, "allowCredentials": [], "userVerification": "required"}),
            media_type="application/json",
        )
    return Response(platform.passkeys.begin_sign_in(account_id), media_type="application/json")


@router.post("/session/passkey")
def passkey_sign_in(request: Request, body: PasskeySignIn) -> Response:
    """Sign in with a passkey: AAL2 at once."""
    platform = platform_of(request)
    account_id = platform.accounts.id_of(body.login)
    try:
        if account_id is None:
            raise PasskeyRejected("unknown login")
        aal = platform.passkeys.finish_sign_in(account_id, body.credential, client_address(request))
    except PasskeyRejected:
        return problem(401, "パスキーを確認できません / the passkey was not accepted", "passkey-rejected")
    secret = platform.sessions.start(account_id, aal, ["hwk", "user"])
    return _with_cookie({"aal": aal, "acr": acr_of(aal), "amr": ["hwk", "user"]}, secret, request)


@router.delete("/session", status_code=204)
def sign_out(request: Request, session: Annotated[Session, Depends(current_session)]) -> Response:
    """End the session."""
    platform_of(request).sessions.end(request.cookies.get(COOKIE, ""))
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me")
def me(request: Request, session: Annotated[Session, Depends(current_session)]) -> dict[str, Any]:
    """The signed-in account, its AAL for this session and its proven IAL."""
    platform = platform_of(request)
    return {
        **platform.accounts.profile(session.account_id),
        "aal": session.aal,
        "acr": session.acr,
        "amr": list(session.amr),
        "ial": platform.assurance.ial(session.account_id),
    }

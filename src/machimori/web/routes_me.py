"""A signed-in person's own things: passkeys, consents and who used their data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from machimori.consent.access import accesses_of
from machimori.consent.records import ConsentError
from machimori.identity.passkeys import PasskeyRejected
from machimori.identity.sessions import Session
from machimori.web.routes_session import current_session
from machimori.web.security import platform_of

router = APIRouter(prefix="/api/v1/me", tags=["me"])
Me = Annotated[Session, Depends(current_session)]


class ConsentChoice(BaseModel):
    service: str = Field(min_length=1, max_length=255, description="the service's OAuth client id")
    purpose: str = Field(min_length=1, max_length=255, description="a purpose IRI of the catalogue")


@router.post("/passkeys/options")
def passkey_options(request: Request, session: Me) -> Response:
    """WebAuthn creation options for a new passkey of the signed-in account."""
    return Response(platform_of(request).passkeys.begin_registration(session.account_id), media_type="application/json")


@router.post("/passkeys", status_code=201)
def add_passkey(request: Request, session: Me, credential: dict[str, Any]) -> dict[str, str]:
    """Keep the passkey the authenticator just made."""
    try:
        credential_id = platform_of(request).passkeys.finish_registration(session.account_id, credential)
    except PasskeyRejected as error:
        raise HTTPException(400, str(error)) from None
    return {"credential_id": credential_id}


@router.get("/consents")
def my_consents(request: Request, session: Me) -> list[dict[str, Any]]:
    """Every consent record of the signed-in resident."""
    return platform_of(request).consent.of_resident(session.account_id)


@router.post("/consents", status_code=201)
def give_consent(request: Request, session: Me, choice: ConsentChoice) -> dict[str, Any]:
    """Give consent to a service for a purpose; answers the signed receipt."""
    try:
        return platform_of(request).consent.give(session.account_id, choice.service, choice.purpose)
    except ConsentError as error:
        raise HTTPException(400, str(error)) from None


@router.post("/consents/withdraw")
def withdraw_consent(request: Request, session: Me, choice: ConsentChoice) -> dict[str, Any]:
    """Withdraw consent: the very next request of that service for that purpose is denied."""
    try:
        return platform_of(request).consent.withdraw(session.account_id, choice.service, choice.purpose)
    except ConsentError as error:
        raise HTTPException(400, str(error)) from None


@router.get("/apps")
def my_apps(request: Request, session: Me) -> list[dict[str, object]]:
    """The apps the signed-in resident let in (active grants), with their scopes and purposes."""
    return platform_of(request).oauth.authorizations.of_resident(session.account_id)


@router.delete("/apps/{grant}", status_code=204)
def revoke_app(request: Request, session: Me, grant: str) -> Response:
    """Shut an app out: its tokens stop working at once (her consents stay as they are)."""
    if not platform_of(request).oauth.authorizations.revoke_by_resident(session.account_id, grant):
        raise HTTPException(404, "そのアプリの許可はありません / no such grant of yours")
    return Response(status_code=204)


@router.get("/accesses")
def my_accesses(request: Request, session: Me) -> list[dict[str, Any]]:
    """Which service used my data, when, for what, permitted or not — each with its audit-log index."""
    return accesses_of(platform_of(request).database, session.account_id)

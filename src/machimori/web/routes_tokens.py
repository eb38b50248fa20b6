"""API tokens: an admin issues them to stakeholders' systems and auditors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from machimori.events import Actor, EventClass, Resource, SecurityEvent
from machimori.identity import tokens
from machimori.identity.tokens import Principal, Role
from machimori.web.security import platform_of, require

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])
Admin = Annotated[Principal, Depends(require("tokens.manage"))]


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="who holds it, e.g. a stakeholder's system")
    role: Role


class IssuedToken(BaseModel):
    id: str
    name: str
    role: Role
    token: str = Field(description="shown once; only its hash is kept")


def _record(request: Request, admin: Principal, action: str, token_id: str, activity: int) -> None:
    platform = platform_of(request)
    platform.audit.append_sync({"action": action, "token": token_id, "by": admin.name})
    platform.events.emit(
        SecurityEvent(
            class_uid=EventClass.ACCOUNT_CHANGE,
            activity_id=activity,
            message=f"{action} {token_id} by {admin.name}",
            actor=Actor(uid=admin.token_id, name=admin.name),
            resources=[Resource(uid=token_id, type="api_token")],
        )
    )


@router.post("", status_code=201, response_model=IssuedToken)
def issue_token(request: Request, body: NewToken, admin: Admin) -> IssuedToken:
    """Issue a token; its secret is in this answer only."""
    principal, secret = tokens.create_token(platform_of(request).database, body.name, body.role)
    _record(request, admin, "token.create", principal.token_id, 1)
    return IssuedToken(id=principal.token_id, name=principal.name, role=principal.role, token=secret)


@router.get("")
def list_tokens(request: Request, _: Admin) -> list[dict[str, Any]]:
    """Every token (never a secret)."""
    return tokens.list_tokens(platform_of(request).database)


@router.delete("/{token_id}", status_code=204)
def revoke_token(request: Request, token_id: str, admin: Admin) -> None:
    """Revoke a token at once."""
    if not tokens.revoke_token(platform_of(request).database, token_id):
        raise HTTPException(404, f"no active token {token_id}")
    _record(request, admin, "token.revoke", token_id, 4)

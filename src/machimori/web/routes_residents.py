"""Personal data as a service reads it: with an OAuth token and a declared purpose, decided per request.

The purpose travels in the `Data-Purpose` header (a purpose IRI of the catalogue). Every decision, permit
or deny, is appended to the audit log and shows in the resident's own list of who used her data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from machimori.consent.access import record_access
from machimori.identity.oauth.provider import AccessToken
from machimori.policy import Action, DataType, Target
from machimori.web.problems import problem
from machimori.web.security import access_token, platform_of, service_subject, token_context

router = APIRouter(prefix="/api/v1/residents", tags=["personal data"])
PURPOSE_HEADER = "Data-Purpose"


@router.get("/{resident}/profile", response_model=None)
def resident_profile(
    request: Request,
    resident: str,
    token: Annotated[AccessToken, Depends(access_token)],
    data_purpose: Annotated[str | None, Header(max_length=512)] = None,
) -> dict[str, Any] | Response:
    """A resident's profile, if she consented to this service using it for the declared purpose."""
    platform = platform_of(request)
    target = Target(id=f"resident:{resident}:profile", data_type=DataType.personal, resident=resident)
    decision = platform.decisions.decide(
        service_subject(token), Action.read, target, token_context(token, data_purpose)
    )
    audit_index = record_access(platform.audit, platform.database, token.client_id, resident, data_purpose, decision)
    if not decision.permit:
        return problem(
            403,
            f"{decision.reason_ja} / {decision.reason_en}",
            "denied",
            rule=decision.rule,
            audit_index=audit_index,
        )
    if platform.accounts.kind_of(resident) != "resident":
        return problem(404, "その住民はいません / no such resident", "not-found")
    profile = platform.accounts.profile(resident)
    return {
        "resident": resident,
        "display_name": profile["display_name"],
        "ial": platform.assurance.ial(resident),
        "purpose": data_purpose,
        "audit_index": audit_index,
    }

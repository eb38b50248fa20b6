"""A service's subscription to the consent changes that concern it, pushed as Security Event Tokens (RFC 8935)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from machimori.consent.notifications import MAX_ENDPOINT_LENGTH, EndpointRefused, Subscription
from machimori.identity.oauth.provider import AccessToken
from machimori.web.problems import problem
from machimori.web.security import access_token, platform_of

router = APIRouter(prefix="/api/v1/consent-events", tags=["consent events"])
SCOPE = "consent:read"
Token = Annotated[AccessToken, Depends(access_token)]


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str = Field(
        max_length=MAX_ENDPOINT_LENGTH, description="https:// URL (http:// only on a loopback host) to push to"
    )


def _refusal(token: AccessToken) -> Response | None:
    """403 unless the token is the service's own (client credentials) with scope consent:read."""
    if token.resident is not None:
        return problem(
            403,
            "サービス自身のトークン(client credentials)が必要です / the service's own token (client credentials) is needed",
            "insufficient-scope",
        )
    if SCOPE not in token.scopes:
        return problem(
            403,
            f"スコープ {SCOPE} が必要です / the token needs scope {SCOPE}",
            "insufficient-scope",
            headers={"WWW-Authenticate": f'Bearer realm="machimori", error="insufficient_scope", scope="{SCOPE}"'},
        )
    return None


def _shown(subscription: Subscription) -> dict[str, Any]:
    return {
        "client_id": subscription.client_id,
        "endpoint": subscription.endpoint,
        "created_at": subscription.created_at.isoformat(),
    }


@router.put("/subscription", response_model=None)
def subscribe(request: Request, body: SubscriptionRequest, token: Token) -> dict[str, Any] | Response:
    """Push this service's consent changes to the endpoint (replacing an earlier one)."""
    refusal = _refusal(token)
    if refusal is not None:
        return refusal
    platform = platform_of(request)
    try:
        subscription = platform.consent_notifications.subscribe(token.client_id, body.endpoint)
    except EndpointRefused as error:
        return problem(400, str(error), "bad-endpoint")
    platform.audit.append_sync(
        {"action": "consent.subscription.set", "client_id": token.client_id, "endpoint": body.endpoint}
    )
    return _shown(subscription)


@router.get("/subscription", response_model=None)
def subscription(request: Request, token: Token) -> dict[str, Any] | Response:
    """This service's subscription."""
    refusal = _refusal(token)
    if refusal is not None:
        return refusal
    found = platform_of(request).consent_notifications.subscription(token.client_id)
    if found is None:
        return problem(404, "購読はありません / no subscription", "not-found")
    return _shown(found)


@router.delete("/subscription", status_code=204, response_model=None)
def unsubscribe(request: Request, token: Token) -> Response:
    """Stop pushing this service's consent changes (what is not delivered yet is dropped)."""
    refusal = _refusal(token)
    if refusal is not None:
        return refusal
    platform = platform_of(request)
    if platform.consent_notifications.unsubscribe(token.client_id):
        platform.audit.append_sync({"action": "consent.subscription.delete", "client_id": token.client_id})
    return Response(status_code=204)

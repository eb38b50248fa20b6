"""Subscriptions (ETSI GS CIM 009 §5.8): create, query, retrieve, update, delete.

A subscription belongs to the service that made it (client id and organisation) in its tenant; to any
other service it does not exist (404). What its notifications carry is decided when each is sent, on the
authority it was made with, so changing a subscription never widens what it may receive.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from machimori.clock import utc_now
from machimori.hub.caller import Caller, CallerOf
from machimori.hub.entities import is_uri
from machimori.hub.errors import bad_request, not_found
from machimori.hub.requests import JSON, body_context, json_body, link_context
from machimori.hub.subscription_store import Owner, Stored
from machimori.hub.subscriptions import parse_subscription, patch_subscription, render_subscription
from machimori.ids import uuid7

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])
MAX_LIMIT = 1000
DEFAULT_LIMIT = 20


def owner_of(caller: Caller) -> Owner:
    """The calling service as the owner of subscriptions, with the authority of its token."""
    grant = caller.token.claims.get("grant")
    return Owner(
        caller.token.client_id,
        caller.subject.org,
        caller.purpose,
        caller.token.scopes,
        caller.token.resident,
        None if grant is None else str(grant),
    )


def _mine(caller: Caller, subscription_id: str) -> Stored:
    if not is_uri(subscription_id):
        raise bad_request(f"{subscription_id[:80]!r} is not a URI / id は URI でなければなりません")
    found = caller.hub.subscriptions.get(caller.tenant, owner_of(caller), subscription_id)
    if found is None:
        raise not_found(f"no subscription {subscription_id} / サブスクリプションがありません")
    return found


def _audit(caller: Caller, what: str, subscription_id: str, **extra: str | None) -> None:
    caller.platform.audit.append_sync(
        {
            "action": f"ngsi-ld.subscription.{what}",
            "tenant": caller.tenant,
            "subscription": subscription_id,
            "by": caller.token.client_id,
            **extra,
        }
    )


@router.post("/subscriptions", status_code=201, response_model=None)
def create_subscription(request: Request, caller: CallerOf) -> Response:
    """Create a subscription (§5.8.1) owned by the calling service."""
    body = json_body(request)
    context = body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    now = utc_now()
    subscription = parse_subscription(
        body, context, caller.hub.contexts, now=now, new_id=lambda: f"urn:ngsi-ld:Subscription:{uuid7()}"
    )
    caller.hub.subscriptions.create(caller.tenant, owner_of(caller), subscription, now)
    _audit(caller, "create", subscription.id, endpoint=subscription.endpoint.uri, purpose=caller.purpose)
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/subscriptions/{subscription.id}"})


@router.get("/subscriptions", response_model=None)
def query_subscriptions(
    request: Request,
    caller: CallerOf,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query()] = 0,
    count: Annotated[bool, Query()] = False,
) -> Response:
    """The calling service's subscriptions (§5.8.4), a page at a time."""
    size = DEFAULT_LIMIT if limit is None else limit
    if not 0 <= size <= MAX_LIMIT or offset < 0 or (size == 0 and not count):
        raise bad_request(f"limit must be 1 to {MAX_LIMIT} (0 only with count=true), offset not negative")
    active = caller.hub.contexts.active(link_context(request.headers.get("link")))
    found, total = caller.hub.subscriptions.page(
        caller.tenant, owner_of(caller), limit=size, offset=offset, count=count
    )
    now = utc_now()
    shown = [render_subscription(s.subscription, s.delivery, active, now=now) for s in found]
    headers = {} if total is None else {"NGSILD-Results-Count": str(total)}
    return JSONResponse(shown, media_type=JSON, headers=headers)


@router.get("/subscriptions/{subscription_id:path}", response_model=None)
def retrieve_subscription(request: Request, subscription_id: str, caller: CallerOf) -> Response:
    """One of the calling service's subscriptions (§5.8.3)."""
    found = _mine(caller, subscription_id)
    active = caller.hub.contexts.active(link_context(request.headers.get("link")))
    return JSONResponse(render_subscription(found.subscription, found.delivery, active, now=utc_now()), media_type=JSON)


@router.patch("/subscriptions/{subscription_id:path}", status_code=204, response_model=None)
def update_subscription(request: Request, subscription_id: str, caller: CallerOf) -> Response:
    """Change one of the calling service's subscriptions (§5.8.2); its authority stays as it was made."""
    found = _mine(caller, subscription_id)
    body = json_body(request)
    context = body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    now = utc_now()
    changed = patch_subscription(found.subscription, body, context, caller.hub.contexts, now=now)
    if not caller.hub.subscriptions.replace(caller.tenant, found.owner, changed, now):
        raise not_found(f"no subscription {subscription_id} / サブスクリプションがありません")
    _audit(caller, "update", subscription_id, endpoint=changed.endpoint.uri)
    return Response(status_code=204)


@router.delete("/subscriptions/{subscription_id:path}", status_code=204, response_model=None)
def delete_subscription(subscription_id: str, caller: CallerOf) -> Response:
    """Delete one of the calling service's subscriptions (§5.8.5) with what it has not been sent yet."""
    found = _mine(caller, subscription_id)
    if not caller.hub.subscriptions.delete(caller.tenant, found.owner, subscription_id):
        raise not_found(f"no subscription {subscription_id} / サブスクリプションがありません")
    _audit(caller, "delete", subscription_id)
    return Response(status_code=204)

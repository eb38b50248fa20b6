"""The NGSI-LD API at /ngsi-ld/v1 (entities so far): every request authenticated and decided.

A service calls with an access token of the OAuth provider; what it may write or read is decided on the
entity's stored type (through the city model), attribute by attribute for personal data, with the purpose
it declares in `Data-Purpose`. An entity the caller may not see is answered as not found, so its existence
does not leak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from machimori.clock import utc_now
from machimori.consent.access import record_access
from machimori.events import Actor, EventClass, Resource, SecurityEvent, Severity, Status
from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.hub.catalogue import Catalogue
from machimori.hub.enforce import Filtered, entity_target, filter_entity, resident_of
from machimori.hub.entities import is_uri, parse_entity, render_entity
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request, not_found
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.requests import JSON, UnsupportedMediaType, body_context, link_context, tenant_of
from machimori.hub.store import EntityStore
from machimori.identity.oauth.provider import AccessToken
from machimori.platform import Platform
from machimori.policy import Action, DataType
from machimori.web.security import access_token, platform_of, service_subject, token_context

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


@dataclass
class Hub:
    """The broker's parts: contexts, the city model's classification and the entity store."""

    contexts: Contexts
    catalogue: Catalogue
    store: EntityStore


def open_hub(platform: Platform) -> Hub:
    """The hub over the platform's database, classifying by the city model it was started with (if any)."""
    contexts = Contexts(DocumentLoader())
    datasets = (
        load_model(platform.settings.city_model, load_catalog(())).datasets if platform.settings.city_model else []
    )
    return Hub(contexts, Catalogue.from_datasets(datasets, contexts), EntityStore(platform.database))


def install(app: FastAPI, platform: Platform) -> None:
    """Mount the NGSI-LD API on the app, with ETSI errors for what goes wrong."""
    app.state.hub = open_hub(platform)
    app.include_router(router)

    @app.exception_handler(NgsiLdError)
    async def ngsi_ld_error(request: Request, error: NgsiLdError) -> JSONResponse:
        return error.response()

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, error: UnsupportedMediaType) -> JSONResponse:
        return NgsiLdError(ErrorType.InvalidRequest, str(error)).response(status=415)


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


Token = Annotated[AccessToken, Depends(access_token)]
Tenant = Annotated[str | None, Header(alias="NGSILD-Tenant", max_length=64)]
Purpose = Annotated[str | None, Header(alias="Data-Purpose", max_length=512)]


def _now() -> str:
    return utc_now().isoformat().replace("+00:00", "Z")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise NgsiLdError(ErrorType.InvalidRequest, "the body is not valid JSON / 本文が JSON ではありません") from None


def _log_personal(
    platform: Platform, token: AccessToken, filtered: Filtered, resident: str | None, purpose: str | None
) -> None:
    """Personal data touched (permitted or denied) goes to the audit log and the resident's history."""
    if resident is None:
        return
    for decision in filtered.decisions:
        if "audit-log" in decision.obligations or decision.rule.startswith("consent-"):
            record_access(platform.audit, platform.database, token.client_id, resident, purpose, decision)


@router.post("/entities", status_code=201, response_model=None)
async def create_entity(request: Request, token: Token, tenant: Tenant = None, purpose: Purpose = None) -> Response:
    """Create an entity (ETSI GS CIM 009 §5.6.1)."""
    hub, platform = hub_of(request), platform_of(request)
    body = await _json_body(request)
    context = body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    entity = parse_entity(body, hub.contexts.active(context), now=_now())
    name = tenant_of(tenant)
    classification = hub.catalogue.classify(entity.types)
    target = entity_target(name, entity, classification)
    decision = platform.decisions.decide(service_subject(token), Action.write, target, token_context(token, purpose))
    if not decision.permit:
        platform.events.emit(_denied(token, "create", entity.id, decision.explain()))
        raise NgsiLdError(ErrorType.InvalidRequest, f"{decision.reason_ja} / {decision.reason_en}", rule=decision.rule)
    hub.store.create(name, entity)
    if classification.data_type is DataType.personal or classification.personal_attributes:
        resident = resident_of(entity, classification)
        platform.audit.append_sync(
            {
                "action": "ngsi-ld.create",
                "tenant": name,
                "entity": entity.id,
                "by": token.client_id,
                "resident": resident,
            }
        )
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{entity.id}"})


@router.get("/entities/{entity_id:path}", response_model=None)
def retrieve_entity(
    request: Request,
    entity_id: str,
    token: Token,
    tenant: Tenant = None,
    purpose: Purpose = None,
    attrs: Annotated[str | None, Query(max_length=4096)] = None,
    options: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """Retrieve an entity (§5.7.1), as far as the caller may see it."""
    hub, platform = hub_of(request), platform_of(request)
    if not is_uri(entity_id):
        raise bad_request(f"{entity_id!r} is not a URI")
    name = tenant_of(tenant)
    active = hub.contexts.active(link_context(request.headers.get("link")))
    entity = hub.store.get(name, entity_id)
    if entity is None:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    classification = hub.catalogue.classify(entity.types)
    filtered = filter_entity(
        platform.decisions, service_subject(token), token_context(token, purpose), name, entity, classification
    )
    _log_personal(platform, token, filtered, resident_of(entity, classification), purpose)
    if filtered.entity is None:
        platform.events.emit(_denied(token, "retrieve", entity_id, filtered.decisions[0].explain()))
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    chosen = frozenset(active.expand(a) for a in attrs.split(",")) if attrs else None
    flags = set((options or "").split(","))
    shown = render_entity(
        filtered.entity, active, key_values="keyValues" in flags, sys_attrs="sysAttrs" in flags, attributes=chosen
    )
    return JSONResponse(shown, media_type=JSON)


@router.delete("/entities/{entity_id:path}", status_code=204, response_model=None)
def delete_entity(request: Request, entity_id: str, token: Token, tenant: Tenant = None) -> Response:
    """Delete an entity (§5.6.6): the owning organisation only."""
    hub, platform = hub_of(request), platform_of(request)
    name = tenant_of(tenant)
    entity = hub.store.get(name, entity_id) if is_uri(entity_id) else None
    if entity is None:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    target = entity_target(name, entity, hub.catalogue.classify(entity.types))
    decision = platform.decisions.decide(service_subject(token), Action.write, target, token_context(token, None))
    if not decision.permit:
        platform.events.emit(_denied(token, "delete", entity_id, decision.explain()))
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    hub.store.delete(name, entity_id)
    return Response(status_code=204)


def _denied(token: AccessToken, what: str, entity_id: str, why: str) -> SecurityEvent:
    return SecurityEvent(
        class_uid=EventClass.API_ACTIVITY,
        activity_id=99,
        severity_id=Severity.LOW,
        status_id=Status.FAILURE,
        message=f"NGSI-LD {what} of {entity_id} denied to {token.client_id}: {why}",
        actor=Actor(uid=token.client_id, app_name=token.client_id),
        resources=[Resource(uid=entity_id, type="ngsi-ld-entity")],
    )

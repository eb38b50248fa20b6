"""The open-data endpoint, /open-data/v1: open datasets for anyone, without a token, read only.

The same queries as /ngsi-ld/v1 (GET /entities and GET /entities/{id}) over what `open_data.published`
lets out; a withheld entity is not found, and a resident's data found under an open type is an event.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from machimori.events import EventClass, Resource, SecurityEvent, Severity, Status
from machimori.hub.broker import Hub
from machimori.hub.entities import Entity, is_uri
from machimori.hub.errors import not_found
from machimori.hub.open_data import mislabelled, published
from machimori.hub.representation import represent
from machimori.hub.requests import link_context, tenant_of
from machimori.hub.respond import entities_response
from machimori.hub.routes.query import Parameters, Visible, answer, run_query
from machimori.hub.routes.shape import Shape
from machimori.platform import Platform
from machimori.web.security import platform_of

router = APIRouter(prefix="/open-data/v1", tags=["open data"])
Tenant = Annotated[str | None, Header(alias="NGSILD-Tenant", max_length=64)]


def _publisher(platform: Platform, hub: Hub, tenant: str) -> Visible:
    def visible(entities: list[Entity]) -> list[Entity | None]:
        shown: list[Entity | None] = []
        for entity in entities:
            if mislabelled(hub.catalogue, entity):
                platform.events.emit(_mislabelled(tenant, entity))
            shown.append(published(hub.catalogue, entity))
        return shown

    return visible


@router.get("/entities", response_model=None)
def open_entities(request: Request, parameters: Parameters, shape: Shape, tenant: Tenant = None) -> Response:
    """Query the open data (same parameters as the NGSI-LD query)."""
    hub: Hub = request.app.state.hub
    platform = platform_of(request)
    name = tenant_of(tenant)
    context = hub.contexts.active(link_context(request.headers.get("link")))
    selection = parameters.selection(context)
    page, total = run_query(
        platform.database,
        name,
        selection,
        _publisher(platform, hub, name),
        parameters.limit,
        parameters.offset,
        parameters.count,
    )
    return answer(request, page, total, parameters.count, context, shape.parse(context), shape.geometry)


@router.get("/entities/{entity_id:path}", response_model=None)
def open_entity(
    request: Request,
    entity_id: str,
    shape: Shape,
    tenant: Tenant = None,
) -> Response:
    """One open entity."""
    hub: Hub = request.app.state.hub
    platform = platform_of(request)
    name = tenant_of(tenant)
    stored = hub.store.get(name, entity_id) if is_uri(entity_id) else None
    shown = _publisher(platform, hub, name)([stored])[0] if stored is not None else None
    if shown is None:
        raise not_found(f"no open entity {entity_id} / 公開データにありません")
    context = hub.contexts.active(link_context(request.headers.get("link")))
    body = represent(shown, context, shape.parse(context))
    return entities_response(body, context, request.headers.get("accept"))


def _mislabelled(tenant: str, entity: Entity) -> SecurityEvent:
    return SecurityEvent(
        class_uid=EventClass.API_ACTIVITY,
        activity_id=99,
        severity_id=Severity.MEDIUM,
        status_id=Status.FAILURE,
        message=(
            f"open-data entity {entity.id} (tenant {tenant or '-'}) names a resident: withheld from open data"
            " / 公開型のエンティティが住民を指しています（公開しません）"
        ),
        resources=[Resource(uid=entity.id, type="ngsi-ld-entity")],
    )

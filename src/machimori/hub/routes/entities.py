"""Entities one at a time (ETSI GS CIM 009 §5.6, §5.7): create, retrieve, delete.

The owning organisation writes; a reader sees what policy and consent allow, and an entity it may not
see is answered as not found, so its existence does not leak.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from machimori.hub.caller import CallerOf
from machimori.hub.entities import Entity, is_uri, parse_entity
from machimori.hub.errors import bad_request, not_found
from machimori.hub.linked import represent_joined
from machimori.hub.requests import body_context, json_body, link_context, now
from machimori.hub.respond import entities_response
from machimori.hub.routes.shape import Shape, linker
from machimori.hub.routes.writes import refusal

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


def _stored(caller: CallerOf, entity_id: str) -> Entity:
    if not is_uri(entity_id):
        raise bad_request(f"{entity_id[:200]!r} is not a URI / id は URI でなければなりません")
    entity = caller.hub.store.get(caller.tenant, entity_id)
    if entity is None:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    return entity


@router.post("/entities", status_code=201, response_model=None)
def create_entity(request: Request, caller: CallerOf) -> Response:
    """Create an entity (§5.6.1)."""
    body = json_body(request)
    context = body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    entity = parse_entity(body, caller.hub.contexts.active(context), now=now())
    decision = caller.may_write(entity, "create")
    if not decision.permit:
        raise refusal(decision)
    caller.hub.store.create(caller.tenant, entity)
    caller.written(entity, "create")
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{entity.id}"})


@router.get("/entities/{entity_id:path}", response_model=None)
def retrieve_entity(
    request: Request,
    entity_id: str,
    caller: CallerOf,
    shape: Shape,
) -> Response:
    """Retrieve an entity (§5.7.1), as far as the caller may see it."""
    if not is_uri(entity_id):
        raise bad_request(f"{entity_id!r} is not a URI")
    active = caller.hub.contexts.active(link_context(request.headers.get("link")))
    representation = shape.parse(active)
    seen = caller.sees(_stored(caller, entity_id))
    wanted = representation.attributes
    if seen is None or (wanted and not wanted & set(seen.attributes)):
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    join, hops = shape.joined()
    shown = represent_joined([seen], active, representation, join, hops, linker(caller))
    return entities_response(
        shown if join == "flat" else shown[0], active, request.headers.get("accept"), geometry_property=shape.geometry
    )


@router.delete("/entities/{entity_id:path}", status_code=204, response_model=None)
def delete_entity(entity_id: str, caller: CallerOf) -> Response:
    """Delete an entity (§5.6.6): the owning organisation only; to anyone else it is not found."""
    entity = _stored(caller, entity_id)
    if not caller.may_write(entity, "delete").permit:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    caller.hub.store.delete(caller.tenant, entity_id)
    caller.written(entity, "delete")
    return Response(status_code=204)

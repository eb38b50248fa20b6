"""Entities one at a time (ETSI GS CIM 009 §5.6, §5.7): create, retrieve, delete.

The owning organisation writes; a reader sees what policy and consent allow, and an entity it may not
see is answered as not found, so its existence does not leak.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from machimori.hub.caller import CallerOf
from machimori.hub.entities import Entity, is_uri, parse_entity, render_entity
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request, not_found
from machimori.hub.requests import JSON, body_context, json_body, link_context, now

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


def _stored(caller: CallerOf, entity_id: str) -> Entity:
    entity = caller.hub.store.get(caller.tenant, entity_id) if is_uri(entity_id) else None
    if entity is None:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    return entity


@router.post("/entities", status_code=201, response_model=None)
async def create_entity(request: Request, caller: CallerOf) -> Response:
    """Create an entity (§5.6.1)."""
    body = await json_body(request)
    context = body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    entity = parse_entity(body, caller.hub.contexts.active(context), now=now())
    decision = caller.may_write(entity, "create")
    if not decision.permit:
        raise NgsiLdError(ErrorType.InvalidRequest, f"{decision.reason_ja} / {decision.reason_en}", rule=decision.rule)
    caller.hub.store.create(caller.tenant, entity)
    caller.hub.changed(caller.tenant, None, entity)
    caller.written(entity, "create")
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{entity.id}"})


@router.get("/entities/{entity_id:path}", response_model=None)
def retrieve_entity(
    request: Request,
    entity_id: str,
    caller: CallerOf,
    attrs: Annotated[str | None, Query(max_length=4096)] = None,
    options: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """Retrieve an entity (§5.7.1), as far as the caller may see it."""
    if not is_uri(entity_id):
        raise bad_request(f"{entity_id!r} is not a URI")
    active = caller.hub.contexts.active(link_context(request.headers.get("link")))
    seen = caller.sees(_stored(caller, entity_id))
    if seen is None:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    chosen = frozenset(active.expand(a) for a in attrs.split(",")) if attrs else None
    flags = set((options or "").split(","))
    shown = render_entity(
        seen, active, key_values="keyValues" in flags, sys_attrs="sysAttrs" in flags, attributes=chosen
    )
    return JSONResponse(shown, media_type=JSON)


@router.delete("/entities/{entity_id:path}", status_code=204, response_model=None)
def delete_entity(entity_id: str, caller: CallerOf) -> Response:
    """Delete an entity (§5.6.6): the owning organisation only; to anyone else it is not found."""
    entity = _stored(caller, entity_id)
    if not caller.may_write(entity, "delete").permit:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    if caller.hub.store.delete(caller.tenant, entity_id):
        caller.hub.changed(caller.tenant, entity, None)
    caller.written(entity, "delete")
    return Response(status_code=204)

"""Changing an entity in place (ETSI GS CIM 009 §5.6.2–5.6.5, §5.6.17–5.6.19): replace, merge, and its
attributes — append, update, partial update, replace, delete.

Decided twice: on the entity as stored (a caller that may not write it is told it does not exist, as on
delete) and on the entity as it would be stored (a write may not make it something the caller does not
own). Ids may be URIs with '/' (percent-encoded in the path), so the entity id is a path parameter and
these routes are mounted before the entities routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from machimori.hub import mutations
from machimori.hub.caller import CallerOf
from machimori.hub.entities import CORE_MEMBERS, Entity, _checked_name, is_uri
from machimori.hub.errors import bad_request, not_found
from machimori.hub.jsonld import ActiveContext
from machimori.hub.mutations import Outcome
from machimori.hub.requests import JSON, body_context, json_body, link_context, media_type, now
from machimori.hub.routes.writes import refusal

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])
ENTITY = "/entities/{entity_id:path}"
Options = Annotated[str | None, Query(max_length=256)]


def _fragment(request: Request, caller: CallerOf) -> tuple[Any, ActiveContext]:
    """The request's body and the active context it is read with (§6.3.5)."""
    media_type(request.headers.get("content-type"))
    body = json_body(request)
    context = body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    return body, caller.hub.contexts.active(context)


def _writable(caller: CallerOf, entity_id: str, what: str) -> Entity:
    """The stored entity if the caller may write it; to anyone else it does not exist."""
    if not is_uri(entity_id):
        raise bad_request(f"{entity_id!r} is not a URI / エンティティ id は URI です")
    stored = caller.hub.store.get(caller.tenant, entity_id)
    if stored is None or not caller.may_write(stored, what).permit:
        raise not_found(f"no entity {entity_id} / エンティティがありません")
    return stored


def _attribute(name: str, context: ActiveContext) -> str:
    """The expanded name of an attribute named in the path."""
    if name.startswith("@") or (name in CORE_MEMBERS and name != mutations.SCOPE):
        raise bad_request(f"{name[:80]!r} is not an attribute name / 属性名ではありません")
    return name if name == mutations.SCOPE else context.expand(_checked_name(name))


def _save(caller: CallerOf, stored: Entity, entity: Entity, what: str) -> None:
    """Store the changed entity if the caller may write it as it now is (and queue its notifications)."""
    decision = caller.may_write(entity, what)
    if not decision.permit:
        raise refusal(decision)
    if not caller.hub.store.replace(caller.tenant, entity):
        raise not_found(f"no entity {entity.id} / エンティティがありません")
    caller.written(entity, what)


def _answer(outcome: Outcome, context: ActiveContext) -> Response:
    """204 if every attribute was updated, else 207 with what was and what was not (§5.2.18 UpdateResult)."""
    if not outcome.not_updated:
        return Response(status_code=204)
    body = {
        "updated": [context.compact(name) for name in outcome.updated],
        "notUpdated": [
            {"attributeName": context.compact(name), "reason": reason} for name, reason in outcome.not_updated
        ],
    }
    return JSONResponse(body, status_code=207, media_type=JSON)


@router.post(ENTITY + "/attrs", status_code=204, response_model=None)
def append_attributes(request: Request, entity_id: str, caller: CallerOf, options: Options = None) -> Response:
    """Append attributes (§5.6.3); with options=noOverwrite existing ones are kept and reported."""
    body, context = _fragment(request, caller)
    stored = _writable(caller, entity_id, "append")
    overwrite = "noOverwrite" not in (options or "").split(",")
    outcome = mutations.append_attributes(stored, body, context, now=now(), overwrite=overwrite)
    if outcome.entity != stored:
        _save(caller, stored, outcome.entity, "append")
    return _answer(outcome, context)


@router.patch(ENTITY + "/attrs", status_code=204, response_model=None)
def update_attributes(request: Request, entity_id: str, caller: CallerOf) -> Response:
    """Update attributes (§5.6.2): only those the entity has; the others are reported."""
    body, context = _fragment(request, caller)
    stored = _writable(caller, entity_id, "update")
    outcome = mutations.update_attributes(stored, body, context, now=now())
    if outcome.entity != stored:
        _save(caller, stored, outcome.entity, "update")
    return _answer(outcome, context)


@router.patch(ENTITY + "/attrs/{attr_id}", status_code=204, response_model=None)
def update_attribute(request: Request, entity_id: str, attr_id: str, caller: CallerOf) -> Response:
    """Partial attribute update (§5.6.4)."""
    body, context = _fragment(request, caller)
    expanded = _attribute(attr_id, context)
    stored = _writable(caller, entity_id, "update-attribute")
    _save(
        caller,
        stored,
        mutations.update_attribute(stored, attr_id, expanded, body, context, now=now()),
        "update-attribute",
    )
    return Response(status_code=204)


@router.put(ENTITY + "/attrs/{attr_id}", status_code=204, response_model=None)
def replace_attribute(request: Request, entity_id: str, attr_id: str, caller: CallerOf) -> Response:
    """Replace an attribute (§5.6.19)."""
    body, context = _fragment(request, caller)
    expanded = _attribute(attr_id, context)
    stored = _writable(caller, entity_id, "replace-attribute")
    changed = mutations.replace_attribute(stored, attr_id, expanded, body, context, now=now())
    _save(caller, stored, changed, "replace-attribute")
    return Response(status_code=204)


@router.delete(ENTITY + "/attrs/{attr_id}", status_code=204, response_model=None)
def delete_attribute(
    request: Request,
    entity_id: str,
    attr_id: str,
    caller: CallerOf,
    dataset_id: Annotated[str | None, Query(alias="datasetId", max_length=2048)] = None,
    delete_all: Annotated[str | None, Query(alias="deleteAll", max_length=8)] = None,
) -> Response:
    """Delete an attribute (§5.6.5): the default instance, the one with datasetId, or all (deleteAll=true)."""
    if delete_all not in (None, "true", "false"):
        raise bad_request("deleteAll is true or false / deleteAll は true か false です")
    context = caller.hub.contexts.active(link_context(request.headers.get("link")))
    expanded = _attribute(attr_id, context)
    stored = _writable(caller, entity_id, "delete-attribute")
    changed = mutations.delete_attribute(
        stored, attr_id, expanded, dataset=dataset_id, every=delete_all == "true", now=now()
    )
    _save(caller, stored, changed, "delete-attribute")
    return Response(status_code=204)


@router.put(ENTITY, status_code=204, response_model=None)
def replace_entity(request: Request, entity_id: str, caller: CallerOf) -> Response:
    """Replace an entity (§5.6.18): everything but its id and createdAt."""
    body, context = _fragment(request, caller)
    stored = _writable(caller, entity_id, "replace")
    _save(caller, stored, mutations.replace_entity(stored, body, context, now=now()), "replace")
    return Response(status_code=204)


@router.patch(ENTITY, status_code=204, response_model=None)
def merge_entity(request: Request, entity_id: str, caller: CallerOf) -> Response:
    """Merge an entity (§5.6.17): attributes merged, urn:ngsi-ld:null deletes."""
    body, context = _fragment(request, caller)
    stored = _writable(caller, entity_id, "merge")
    _save(caller, stored, mutations.merge_entity(stored, body, context, now=now()), "merge")
    return Response(status_code=204)

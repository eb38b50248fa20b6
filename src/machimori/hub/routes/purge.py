"""Purging entities (ETSI GS CIM 009 §5.6.21): DELETE /entities with a selection, and the refusals of PUT and
PATCH on /entities without an id.

The selection (type, id, idPattern, q) decides on each entity as the caller may see it, so a purge cannot
probe hidden values; of what it selects only the entities the caller may write are deleted (or, with `drop`
or `keep`, lose attributes) — the rest are left as they are, as if they did not match. Denials are one
event; every change queues its notifications like any other write.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from machimori.hub.caller import Caller, CallerOf
from machimori.hub.entities import Entity
from machimori.hub.errors import bad_request
from machimori.hub.q import parse_q
from machimori.hub.representation import checked_names
from machimori.hub.requests import link_context, now
from machimori.hub.routes.query import _ids, parse_types
from machimori.hub.search import EntitySelector, Selection, candidates, compile_id_pattern
from machimori.policy import Decision

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])
Text = Annotated[str | None, Query(max_length=4096)]
CHUNK = 100


@router.delete("/entities", status_code=204, response_model=None)
def purge_entities(
    request: Request,
    caller: CallerOf,
    type: Text = None,
    id: Text = None,
    idPattern: Text = None,
    q: Text = None,
    keep: Text = None,
    drop: Text = None,
    local: bool = False,
) -> Response:
    """Delete the entities the selection matches (or only some of their attributes: drop, keep)."""
    if keep and drop:
        raise bad_request("keep and drop cannot be given together / keep と drop は同時に指定できません")
    if not (type or id or idPattern or q or local):
        raise bad_request("a purge needs type, id, idPattern, q or local=true / 対象の指定が必要です")
    context = caller.hub.contexts.active(link_context(request.headers.get("link")))
    selector = EntitySelector(
        parse_types(type, context) if type else None,
        _ids(id) if id else None,
        compile_id_pattern(idPattern) if idPattern else None,
    )
    selection = Selection(
        (selector,) if (type or id or idPattern) else (), None, parse_q(q, context) if q else None, None
    )
    kept = checked_names(keep, "keep", context) if keep else None
    dropped = checked_names(drop, "drop", context) if drop else None
    doomed = _writable_matches(caller, selection)
    if kept is None and dropped is None:
        if doomed:
            caller.hub.store.delete_many(caller.tenant, [entity.id for entity in doomed])
        for entity in doomed:
            caller.written(entity, "purge")
        return Response(status_code=204)
    at = now()
    changed = []
    for entity in doomed:
        attributes = {
            name: instances
            for name, instances in entity.attributes.items()
            if (kept is None or name in kept) and (dropped is None or name not in dropped)
        }
        if attributes != entity.attributes:
            changed.append((entity, replace(entity, attributes=attributes, modified_at=at)))
    if changed:
        caller.hub.store.put_many(caller.tenant, [], [after for _, after in changed])
    for _, after in changed:
        caller.written(after, "purge")
    return Response(status_code=204)


def _writable_matches(caller: Caller, selection: Selection) -> list[Entity]:
    """The stored entities the selection matches as the caller sees them and the caller may write."""
    found: list[Entity] = []
    refused: list[tuple[str, Decision]] = []
    batch: list[Entity] = []

    def settle() -> None:
        for entity, seen in zip(batch, caller.visible(batch, "purge"), strict=True):
            if seen is None or not selection.matches(seen):
                continue
            decision = caller.may_write(entity, "purge", report=False)
            if decision.permit:
                found.append(entity)
            else:
                refused.append((entity.id, decision))
        batch.clear()

    for chunk in candidates(caller.platform.database, caller.tenant, selection):
        for entity in chunk:
            batch.append(entity)
            if len(batch) >= CHUNK:
                settle()
    settle()
    caller.refused("purge", refused)
    return found


@router.put("/entities", response_model=None)
@router.patch("/entities", response_model=None)
def no_entity_id() -> Response:
    """Replace and merge name the entity in the path (§5.6.17, §5.6.18): without one the request is bad."""
    raise bad_request("the entity id belongs in the path: /entities/{entityId} / パスにエンティティ id が必要です")

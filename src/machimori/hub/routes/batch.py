"""Batch entity operations (ETSI GS CIM 009 §5.6.7–5.6.10, §5.6.20): create, upsert, update, delete, merge.

Each entity is checked and decided on its own — a fault or a denial is an entry in `errors` and that
entity is not written — and the rest are written together in one transaction. With application/ld+json
each entity carries its own @context; with application/json they share the Link header's. A request
of more than `MAX_ENTITIES` entities (the app may set `app.state.ngsi_ld_batch_limit`) is refused whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from machimori.hub import mutations
from machimori.hub.caller import Caller, CallerOf
from machimori.hub.entities import Entity, is_uri, parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request, not_found
from machimori.hub.jsonld import ActiveContext
from machimori.hub.requests import JSON, JSON_LD, json_body, link_context, media_type, now
from machimori.hub.routes.writes import refusal

router = APIRouter(prefix="/ngsi-ld/v1/entityOperations", tags=["NGSI-LD"])
MAX_ENTITIES = 10_000
Options = Annotated[str | None, Query(max_length=256)]


@dataclass
class _Item:
    """One entity of the request: its id as given, its body (without @context) and the context to read it."""

    id: str
    body: dict[str, Any]
    context: ActiveContext


@dataclass
class _Result:
    """What a batch did: the ids written and an error for each entity that was not."""

    success: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def failed(self, entity_id: str) -> bool:
        return any(entry["entityId"] == entity_id for entry in self.errors)

    def fail(self, entity_id: str, error: NgsiLdError) -> None:
        problem = {"type": error.kind.uri, "title": error.kind.value, "status": error.kind.status}
        self.errors.append({"entityId": entity_id, "error": {**problem, "detail": error.detail, **error.extra}})

    def answer(self, created: list[str] | None = None) -> Response:
        """204 (or 201 with the ids created) if all went well, else 207 with both lists."""
        if self.errors:
            return JSONResponse({"success": self.success, "errors": self.errors}, status_code=207, media_type=JSON)
        if created:
            return JSONResponse(created, status_code=201, media_type=JSON)
        return Response(status_code=204)


def _limit(request: Request) -> int:
    return int(getattr(request.app.state, "ngsi_ld_batch_limit", MAX_ENTITIES))


def _array(request: Request) -> list[Any]:
    """The request's body: a JSON array of at most the limit's entries."""
    body = json_body(request)
    if not isinstance(body, list) or not body:
        raise bad_request("the body must be a non-empty JSON array / 本文は空でない JSON 配列です")
    if len(body) > _limit(request):
        limit = _limit(request)
        raise TooMany(
            ErrorType.BadRequestData,
            f"at most {limit} entities per request, got {len(body)} / 一度に送れるのは {limit} 件までです",
        )
    return body


class TooMany(NgsiLdError):
    """A batch over the limit (HTTP 413)."""

    def response(self, status: int | None = None) -> JSONResponse:
        return super().response(413)


def _items(request: Request, caller: Caller, result: _Result) -> list[_Item]:
    """The request's entities, each with its context; one that is malformed is an error entry (§6.3.5)."""
    kind = media_type(request.headers.get("content-type"))
    linked = link_context(request.headers.get("link"))
    if kind == JSON_LD and linked is not None:
        raise bad_request("application/ld+json carries its @context in the body, not in a Link header")
    body = _array(request)
    if not all(isinstance(entry, dict) for entry in body):
        raise bad_request("every entry must be an entity (a JSON object) / 各要素はエンティティです")
    shared = caller.hub.contexts.active(linked) if kind != JSON_LD else None
    items = []
    for entry in body:
        entity_id = entry.get("id", entry.get("@id"))
        shown = entity_id if isinstance(entity_id, str) else ""
        try:
            if kind == JSON_LD and "@context" not in entry:
                raise bad_request("application/ld+json needs an @context in each entity / @context が必要です")
            if kind != JSON_LD and "@context" in entry:
                raise bad_request(f"{kind} carries its @context in a Link header, not in the body (use {JSON_LD})")
            if not is_uri(entity_id):
                raise bad_request(f"id must be a URI, got {entity_id!r} / id は URI でなければなりません")
            items.append(
                _Item(shown, entry, shared if shared is not None else caller.hub.contexts.active(entry.pop("@context")))
            )
        except NgsiLdError as error:
            result.fail(shown, error)
    return items


def _write(
    caller: Caller, result: _Result, created: list[Entity], replaced: list[Entity], what: str, before: dict[str, Entity]
) -> None:
    """Store the entities in one transaction (one by one if a concurrent create got there first) and queue
    their notifications; `before` holds the replaced ones as they were."""
    if not created and not replaced:
        return
    try:
        caller.hub.store.put_many(caller.tenant, created, replaced)
        written = [*created, *replaced]
    except IntegrityError:
        written = []
        for entity in created:
            try:
                caller.hub.store.create(caller.tenant, entity)
                written.append(entity)
            except NgsiLdError as error:
                result.fail(entity.id, error)
        written.extend(entity for entity in replaced if caller.hub.store.replace(caller.tenant, entity))
    for entity in written:
        caller.written(entity, what)
    done = {entity.id for entity in written}
    result.success.extend(dict.fromkeys(entity_id for entity_id in _order(created, replaced) if entity_id in done))


def _order(created: list[Entity], replaced: list[Entity]) -> list[str]:
    return [entity.id for entity in [*created, *replaced]]


@router.post("/create", response_model=None)
def create(request: Request, caller: CallerOf) -> Response:
    """Create entities (§5.6.7): 201 with their ids, or 207."""
    result = _Result()
    at = now()
    new: dict[str, Entity] = {}
    for item in _items(request, caller, result):
        try:
            entity = parse_entity(item.body, item.context, now=at)
            if entity.id in new:
                raise NgsiLdError(
                    ErrorType.AlreadyExists, f"entity {entity.id} is twice in the request / 重複しています"
                )
            new[entity.id] = entity
        except NgsiLdError as error:
            result.fail(item.id, error)
    existing = caller.hub.store.get_many(caller.tenant, list(new))
    allowed = []
    for entity in new.values():
        if entity.id in existing:
            result.fail(entity.id, NgsiLdError(ErrorType.AlreadyExists, f"entity {entity.id} already exists"))
            continue
        decision = caller.may_write(entity, "create")
        if not decision.permit:
            result.fail(entity.id, refusal(decision))
            continue
        allowed.append(entity)
    _write(caller, result, allowed, [], "create", {})
    return result.answer(created=result.success)


@router.post("/upsert", response_model=None)
def upsert(request: Request, caller: CallerOf, options: Options = None) -> Response:
    """Create or replace (options=update: append to) entities (§5.6.8): 201 with the ids created, 204, or 207."""
    flags = set((options or "").split(","))
    if {"replace", "update"} <= flags:
        raise bad_request("options: replace or update, not both / replace と update は同時に指定できません")
    result = _Result()
    at = now()
    items = _items(request, caller, result)
    existing = caller.hub.store.get_many(caller.tenant, list(dict.fromkeys(item.id for item in items)))
    current: dict[str, Entity] = {}  # what each id becomes, in the order first met
    for item in items:
        try:
            stored = current.get(item.id) or existing.get(item.id)
            if stored is not None and item.id not in current and not caller.may_write(stored, "upsert").permit:
                raise NgsiLdError(ErrorType.InvalidRequest, f"entity {item.id} may not be written / 書き込めません")
            if stored is not None and "update" in flags:
                entity = mutations.append_attributes(stored, item.body, item.context, now=at).entity
            else:
                entity = parse_entity(item.body, item.context, now=at)
                if item.id in existing:
                    entity.created_at = existing[item.id].created_at
            current[item.id] = entity
        except NgsiLdError as error:
            result.fail(item.id, error)
    created: list[Entity] = []
    replaced: list[Entity] = []
    for entity in current.values():
        decision = caller.may_write(entity, "upsert")
        if not decision.permit:
            result.fail(entity.id, refusal(decision))
        else:
            (replaced if entity.id in existing else created).append(entity)
    _write(caller, result, created, replaced, "upsert", existing)
    done = set(result.success)
    return result.answer(created=[entity.id for entity in created if entity.id in done])


@router.post("/update", response_model=None)
def update(request: Request, caller: CallerOf, options: Options = None) -> Response:
    """Append attributes to existing entities (§5.6.9; options=noOverwrite keeps existing ones): 204 or 207."""
    overwrite = "noOverwrite" not in (options or "").split(",")

    def change(stored: Entity, item: _Item, at: str) -> tuple[Entity, list[str]]:
        outcome = mutations.append_attributes(stored, item.body, item.context, now=at, overwrite=overwrite)
        return outcome.entity, [item.context.compact(name) for name, _ in outcome.not_updated]

    return _change(request, caller, "update", change)


@router.post("/merge", response_model=None)
def merge(request: Request, caller: CallerOf) -> Response:
    """Merge entities (§5.6.20): 204 or 207."""

    def change(stored: Entity, item: _Item, at: str) -> tuple[Entity, list[str]]:
        return mutations.merge_entity(stored, item.body, item.context, now=at), []

    return _change(request, caller, "merge", change)


Change = Callable[[Entity, _Item, str], tuple[Entity, list[str]]]


def _change(request: Request, caller: Caller, what: str, change: Change) -> Response:
    """Change existing entities one by one in memory, then write those allowed together."""
    result = _Result()
    at = now()
    items = _items(request, caller, result)
    existing = caller.hub.store.get_many(caller.tenant, list(dict.fromkeys(item.id for item in items)))
    current: dict[str, Entity] = {}
    left: dict[str, list[str]] = {}
    for item in items:
        try:
            stored = current.get(item.id) or existing.get(item.id)
            if stored is None or (item.id not in current and not caller.may_write(stored, what).permit):
                raise not_found(f"no entity {item.id} / エンティティがありません")
            current[item.id], not_updated = change(stored, item, at)
            left.setdefault(item.id, []).extend(not_updated)
        except NgsiLdError as error:
            result.fail(item.id, error)
    replaced = []
    for entity in current.values():
        decision = caller.may_write(entity, what)
        if not decision.permit:
            result.fail(entity.id, refusal(decision))
        elif entity != existing[entity.id]:
            replaced.append(entity)
        elif not left.get(entity.id):
            result.success.append(entity.id)
    _write(caller, result, [], replaced, what, existing)
    for entity_id, names in left.items():
        if names and not result.failed(entity_id):
            if entity_id in result.success:
                result.success.remove(entity_id)
            detail = f"not overwritten (noOverwrite): {', '.join(names)} / 上書きしませんでした"
            result.fail(entity_id, NgsiLdError(ErrorType.BadRequestData, detail, notUpdated=names))
    return result.answer()


@router.post("/delete", response_model=None)
def delete(request: Request, caller: CallerOf) -> Response:
    """Delete entities by id (§5.6.10): 204 or 207; one the caller may not write is not found."""
    media_type(request.headers.get("content-type"))
    result = _Result()
    ids: dict[str, None] = {}
    for entity_id in _array(request):
        if not isinstance(entity_id, str):
            raise bad_request("the body must be an array of entity ids / 本文は id の配列です")
        if not is_uri(entity_id):
            result.fail(entity_id, bad_request(f"{entity_id!r} is not a URI / id は URI です"))
        elif entity_id in ids:
            result.fail(entity_id, not_found(f"entity {entity_id} is twice in the request / 重複しています"))
        else:
            ids[entity_id] = None
    existing = caller.hub.store.get_many(caller.tenant, list(ids))
    doomed = []
    for entity_id in ids:
        entity = existing.get(entity_id)
        if entity is None or not caller.may_write(entity, "delete").permit:
            result.fail(entity_id, not_found(f"no entity {entity_id} / エンティティがありません"))
        else:
            doomed.append(entity)
    if doomed:
        caller.hub.store.delete_many(caller.tenant, [entity.id for entity in doomed])
    for entity in doomed:
        caller.written(entity, "delete")
        result.success.append(entity.id)
    return result.answer()

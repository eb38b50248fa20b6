"""Queries (ETSI GS CIM 009 §5.7.2): GET /entities, and POST /entityOperations/query with a Query document.

Each candidate is filtered for the caller before the selection decides on it, so hidden entities are left
out and hidden attributes neither show nor match; the count (`NGSILD-Results-Count`) counts what the
caller may see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from machimori.hub.caller import CallerOf
from machimori.hub.entities import Entity, is_uri
from machimori.hub.errors import bad_request
from machimori.hub.geo import parse_geo_query
from machimori.hub.jsonld import ActiveContext
from machimori.hub.linked import Visible as Linker
from machimori.hub.linked import represent_joined
from machimori.hub.q import parse_q
from machimori.hub.representation import ENTITY_MEMBERS, Representation, checked_names, parse_representation, represent
from machimori.hub.requests import body_context, json_body, link_context
from machimori.hub.respond import entities_response
from machimori.hub.routes.shape import Shape, linker
from machimori.hub.search import EntitySelector, Selection, candidates, compile_id_pattern, parse_scope_query
from machimori.storage import Database

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_LIST = 100
Text = Annotated[str | None, Query(max_length=4096)]


def parse_types(text: str, context: ActiveContext) -> tuple[frozenset[str], ...]:
    """A type selection (`A,B` or `A|B`: either; `A;B`: both) as alternatives of expanded type sets."""
    alternatives = [part for chunk in text.strip("()").split("|") for part in chunk.split(",")]
    if not all(alternatives) or len(alternatives) > MAX_LIST:
        raise bad_request(f"type {text[:80]!r} is not a type selection / type の指定が不正です")
    return tuple(frozenset(context.expand(name.strip("()")) for name in part.split(";")) for part in alternatives)


def _ids(text: str) -> frozenset[str]:
    ids = text.split(",")
    if len(ids) > MAX_LIST or not all(is_uri(i) for i in ids):
        raise bad_request("id: a comma-separated list of URIs / id は URI の並びです")
    return frozenset(ids)


def _page(limit: int | None, offset: int | None, count: bool) -> tuple[int, int]:
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 0 <= limit <= MAX_LIMIT or (limit == 0 and not count):
        raise bad_request(f"limit must be 1 to {MAX_LIMIT} (0 only with count=true) / limit が範囲外です")
    if offset < 0:
        raise bad_request("offset must not be negative / offset が負です")
    return limit, offset


Visible = Callable[[list[Entity]], list[Entity | None]]


def run_query(
    database: Database, tenant: str, selection: Selection, visible: Visible, limit: int, offset: int, count: bool
) -> tuple[list[Entity], int]:
    """One page of the entities the selection matches as `visible` shows them (hidden ones left out), and how
    many match in all (counted to the end only if asked)."""
    page: list[Entity] = []
    matched = 0
    for chunk in candidates(database, tenant, selection, first=offset + limit + 1):
        matched = _take(visible(chunk), selection, page, matched, limit, offset)
        if not count and len(page) >= limit:
            break
    return page, matched


def _take(
    shown: list[Entity | None], selection: Selection, page: list[Entity], matched: int, limit: int, offset: int
) -> int:
    for seen in shown:
        if seen is not None and selection.matches(seen):
            if offset <= matched < offset + limit:
                page.append(seen)
            matched += 1
    return matched


def answer(
    request: Request,
    entities: list[Entity],
    total: int,
    count: bool,
    context: ActiveContext,
    representation: Representation,
    geometry_property: str = "location",
    join: tuple[str | None, int] = (None, 1),
    visible: Linker | None = None,
) -> Response:
    """A page of entities as the client accepts them (with their linked entities if asked), with the count."""
    if visible is not None and join[0] is not None:
        body = represent_joined(entities, context, representation, join[0], join[1], visible)
    else:
        body = [represent(entity, context, representation) for entity in entities]
    headers = {"NGSILD-Results-Count": str(total)} if count else {}
    return entities_response(body, context, request.headers.get("accept"), headers, geometry_property=geometry_property)


@dataclass(frozen=True)
class QueryParameters:
    """The query parameters of GET /entities (§6.4.3.2), as given."""

    type: str | None
    id: str | None
    idPattern: str | None
    attrs: str | None
    q: str | None
    georel: str | None
    geometry: str | None
    coordinates: str | None
    geoproperty: str | None
    limit: int
    offset: int
    count: bool
    scopeQ: str | None = None

    def selection(self, context: ActiveContext) -> Selection:
        """What the parameters select, names expanded with the context; BadRequestData if they select nothing."""
        if not (self.type or self.attrs or self.q or self.georel or self.scopeQ):
            raise bad_request(
                "a query needs type, attrs, q or a geo-query / type・attrs・q・ジオクエリのいずれかが必要です"
            )
        selector = EntitySelector(
            parse_types(self.type, context) if self.type else None,
            _ids(self.id) if self.id else None,
            compile_id_pattern(self.idPattern) if self.idPattern else None,
        )
        return Selection(
            (selector,),
            checked_names(self.attrs, "attrs", context) if self.attrs else None,
            parse_q(self.q, context) if self.q else None,
            parse_geo_query(self.georel, self.geometry, self.coordinates, self.geoproperty, context),
            parse_scope_query(self.scopeQ) if self.scopeQ else None,
        )


def query_parameters(
    type: Text = None,
    id: Text = None,
    idPattern: Text = None,
    attrs: Text = None,
    q: Text = None,
    georel: Text = None,
    geometry: Text = None,
    coordinates: Text = None,
    geoproperty: Text = None,
    limit: int | None = None,
    offset: int | None = None,
    count: bool = False,
    scopeQ: Text = None,
) -> QueryParameters:
    """A dependency: the query parameters, the page checked."""
    checked_limit, checked_offset = _page(limit, offset, count)
    return QueryParameters(
        type,
        id,
        idPattern,
        attrs,
        q,
        georel,
        geometry,
        coordinates,
        geoproperty,
        checked_limit,
        checked_offset,
        count,
        scopeQ,
    )


Parameters = Annotated[QueryParameters, Depends(query_parameters)]


@router.get("/entities", response_model=None)
def query_entities(request: Request, caller: CallerOf, parameters: Parameters, shape: Shape) -> Response:
    """Query entities (§5.7.2): at least a type, attributes, q or a geo-query."""
    context = caller.hub.contexts.active(link_context(request.headers.get("link")))
    selection = parameters.selection(context)
    page, total = run_query(
        caller.platform.database,
        caller.tenant,
        selection,
        caller.visible,
        parameters.limit,
        parameters.offset,
        parameters.count,
    )
    return answer(
        request,
        page,
        total,
        parameters.count,
        context,
        shape.parse(context),
        shape.geometry,
        shape.joined(),
        linker(caller),
    )


@router.post("/entityOperations/query", response_model=None)
def query_by_post(
    request: Request,
    caller: CallerOf,
    options: Annotated[str | None, Query(max_length=256)] = None,
    limit: int | None = None,
    offset: int | None = None,
    count: bool = False,
) -> Response:
    """Query entities with a Query document in the body (the POST form of the same query)."""
    body = json_body(request)
    context = caller.hub.contexts.active(
        body_context(request.headers.get("content-type"), request.headers.get("link"), body)
    )
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise bad_request('the body must be a Query: {"type": "Query", …} / 本文は Query です')
    selectors = tuple(_selector(item, context) for item in _list(body.get("entities"), "entities"))
    names = _list(body.get("attrs"), "attrs")
    attributes = frozenset(context.expand(_text(n, "attrs")) for n in names) if names else None
    geo = body.get("geoQ")
    if geo is not None and not isinstance(geo, dict):
        raise bad_request("geoQ must be an object / geoQ はオブジェクトです")
    if not (selectors or attributes or body.get("q") or geo):
        raise bad_request("a query needs entities, attrs, q or geoQ / entities・attrs・q・geoQ のいずれかが必要です")
    selection = Selection(
        selectors,
        attributes,
        parse_q(_text(body["q"], "q"), context) if body.get("q") else None,
        parse_geo_query(geo.get("georel"), geo.get("geometry"), geo.get("coordinates"), geo.get("geoproperty"), context)
        if geo
        else None,
    )
    limit, offset = _page(limit, offset, count)
    page, total = run_query(caller.platform.database, caller.tenant, selection, caller.visible, limit, offset, count)
    picked = attributes | ENTITY_MEMBERS if attributes is not None else None
    representation = replace(parse_representation(context, options=options), pick=picked)
    return answer(request, page, total, count, context, representation)


def _list(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise bad_request(f"{name} must be a list of at most {MAX_LIST} / {name} はリストです")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise bad_request(f"{name} must be a non-empty string / {name} は文字列です")
    return value


def _selector(item: Any, context: ActiveContext) -> EntitySelector:
    if not isinstance(item, dict):
        raise bad_request("each of entities is an object with type, id or idPattern")
    types = item.get("type")
    entity_id = item.get("id")
    if entity_id is not None and not is_uri(entity_id):
        raise bad_request(f"entities: id {entity_id!r} is not a URI")
    pattern = item.get("idPattern")
    return EntitySelector(
        parse_types(_text(types, "type"), context) if types is not None else None,
        frozenset([entity_id]) if entity_id is not None else None,
        compile_id_pattern(_text(pattern, "idPattern")) if pattern is not None else None,
    )

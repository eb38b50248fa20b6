"""Discovery (ETSI GS CIM 009 §5.7.5–§5.7.8): which entity types and attributes there are.

Only what the caller may read as a dataset is listed: a type whose dataset the decision point lets the
caller read (personal data never appears here — it is decided resident by resident), and of those types'
entities the attributes that are not personal.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import distinct, func, select

from machimori.hub.caller import Caller, CallerOf
from machimori.hub.errors import not_found
from machimori.hub.jsonld import ActiveContext
from machimori.hub.requests import JSON, link_context
from machimori.storage.tables import hub_attribute_values as values
from machimori.storage.tables import hub_entities as entities
from machimori.storage.tables import hub_entity_types as types_table

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])


def readable_types(caller: Caller) -> dict[str, int]:
    """The types the caller may read as datasets, with how many entities each has."""
    with caller.platform.database.engine.connect() as connection:
        counted = connection.execute(
            select(types_table.c.type, func.count())
            .where(types_table.c.tenant == caller.tenant)
            .group_by(types_table.c.type)
            .order_by(types_table.c.type)
        ).all()
    return {name: int(n) for name, n in counted if caller.may_discover(name)}


def attributes_by_type(caller: Caller, types: list[str]) -> dict[str, set[str]]:
    """The attributes (not personal) entities of each type have."""
    found: dict[str, set[str]] = {name: set() for name in types}
    if not types:
        return found
    with caller.platform.database.engine.connect() as connection:
        pairs = connection.execute(
            select(types_table.c.type, values.c.attribute)
            .distinct()
            .join(values, (values.c.tenant == types_table.c.tenant) & (values.c.id == types_table.c.id))
            .where(types_table.c.tenant == caller.tenant, types_table.c.type.in_(types))
        ).all()
    for name, attribute in pairs:
        if not caller.hub.catalogue.classify([name]).is_personal(attribute):
            found[name].add(attribute)
    return found


def attribute_kinds(caller: Caller, type_name: str, attribute: str | None = None) -> dict[str, set[str]]:
    """The attribute types (Property, Relationship …) of each attribute of a type's entities."""
    kinds: dict[str, set[str]] = {}
    condition = entities.c.id.in_(
        select(types_table.c.id).where(types_table.c.tenant == caller.tenant, types_table.c.type == type_name)
    )
    with caller.platform.database.engine.connect() as connection:
        for body in connection.execute(
            select(entities.c.body).where(entities.c.tenant == caller.tenant, condition)
        ).scalars():
            for name, instances in body["attributes"].items():
                if attribute is None or name == attribute:
                    kinds.setdefault(name, set()).update(instance["type"] for instance in instances)
    return kinds


def _json(body: Any) -> Response:
    return JSONResponse(body, media_type=JSON)


def _context(request: Request, caller: Caller) -> ActiveContext:
    return caller.hub.contexts.active(link_context(request.headers.get("link")))


@router.get("/types", response_model=None)
def entity_types(request: Request, caller: CallerOf, details: bool = False) -> Response:
    """The entity types there are (§5.7.5), or each with its attributes (§5.7.6, details=true)."""
    context = _context(request, caller)
    types = list(readable_types(caller))
    if not details:
        return _json(
            {
                "id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}",
                "type": "EntityTypeList",
                "typeList": [context.compact(name) for name in types],
            }
        )
    attributes = attributes_by_type(caller, types)
    return _json(
        [
            {
                "id": name,
                "type": "EntityType",
                "typeName": context.compact(name),
                "attributeNames": sorted(context.compact(a) for a in attributes[name]),
            }
            for name in types
        ]
    )


@router.get("/types/{type_name:path}", response_model=None)
def entity_type(request: Request, type_name: str, caller: CallerOf) -> Response:
    """One entity type: how many entities, which attributes of which kinds (§5.7.7)."""
    context = _context(request, caller)
    expanded = context.expand(type_name)
    counts = readable_types(caller)
    if expanded not in counts:
        raise not_found(f"no entity type {type_name} / エンティティ型がありません")
    classification = caller.hub.catalogue.classify([expanded])
    kinds = {n: k for n, k in attribute_kinds(caller, expanded).items() if not classification.is_personal(n)}
    return _json(
        {
            "id": expanded,
            "type": "EntityTypeInfo",
            "typeName": context.compact(expanded),
            "entityCount": counts[expanded],
            "attributeDetails": [
                {
                    "id": name,
                    "type": "Attribute",
                    "attributeName": context.compact(name),
                    "attributeTypes": sorted(kinds[name]),
                }
                for name in sorted(kinds)
            ],
        }
    )


@router.get("/attributes", response_model=None)
def attributes(request: Request, caller: CallerOf, details: bool = False) -> Response:
    """The attributes there are (§5.7.8), or each with the types that have it (details=true)."""
    context = _context(request, caller)
    by_type = attributes_by_type(caller, list(readable_types(caller)))
    holders: dict[str, list[str]] = {}
    for name, found in by_type.items():
        for attribute in found:
            holders.setdefault(attribute, []).append(name)
    if not details:
        return _json(
            {
                "id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}",
                "type": "AttributeList",
                "attributeList": sorted(context.compact(a) for a in holders),
            }
        )
    return _json(
        [
            {
                "id": attribute,
                "type": "Attribute",
                "attributeName": context.compact(attribute),
                "typeNames": sorted(context.compact(t) for t in holders[attribute]),
            }
            for attribute in sorted(holders)
        ]
    )


@router.get("/attributes/{attribute_name:path}", response_model=None)
def attribute(request: Request, attribute_name: str, caller: CallerOf) -> Response:
    """One attribute: how many entities have it, of which kinds, in which types (§5.7.9)."""
    context = _context(request, caller)
    expanded = context.expand(attribute_name)
    counts = readable_types(caller)
    holders = [name for name, found in attributes_by_type(caller, list(counts)).items() if expanded in found]
    if not holders:
        raise not_found(f"no attribute {attribute_name} / 属性がありません")
    kinds: set[str] = set()
    for name in holders:
        kinds.update(*attribute_kinds(caller, name, expanded).values())
    with caller.platform.database.engine.connect() as connection:
        count = connection.execute(
            select(func.count(distinct(values.c.id)))
            .join(types_table, (types_table.c.tenant == values.c.tenant) & (types_table.c.id == values.c.id))
            .where(values.c.tenant == caller.tenant, values.c.attribute == expanded, types_table.c.type.in_(holders))
        ).scalar_one()
    return _json(
        {
            "id": expanded,
            "type": "Attribute",
            "attributeName": context.compact(expanded),
            "attributeCount": count,
            "attributeTypes": sorted(kinds),
            "typeNames": sorted(context.compact(t) for t in holders),
        }
    )

"""Entities as an upstream broker answers them (normalized, compacted with some @context), read back into
the hub's `Entity` with expanded names so the decision point and the filter see what the hub itself would."""

from __future__ import annotations

from typing import Any

from machimori.hub.entities import CORE_MEMBERS, INSTANCE_MEMBERS, MAIN_MEMBER, Entity, is_uri
from machimori.hub.jsonld import ActiveContext, ContextValue
from machimori.hub.requests import link_context
from machimori.hub.upstream import Answer, UpstreamFailed


def answer_context(answer: Answer, item: Any, asked: ContextValue) -> ContextValue:
    """The @context the upstream compacted an entity with: in the entity (ld+json), else in the answer's
    Link header, else the one the guard asked for."""
    if isinstance(item, dict) and "@context" in item:
        given: ContextValue = item["@context"]
        return given
    linked = link_context(answer.headers.get("link"))
    return linked if linked is not None else asked


def entity_from_answer(item: Any, context: ActiveContext) -> Entity:
    """The entity an upstream gave (normalized form), names expanded; UpstreamFailed if it is not one."""
    if not isinstance(item, dict) or not is_uri(item.get("id")):
        raise UpstreamFailed("the upstream answered an entity without a URI id")
    given = item.get("type")
    names = given if isinstance(given, list) else [given]
    if not names or not all(isinstance(name, str) and name for name in names):
        raise UpstreamFailed(f"the upstream answered entity {item['id']} without a type")
    scope = item.get("scope")
    entity = Entity(
        str(item["id"]),
        sorted({context.expand(str(name)) for name in names}),
        scope=([scope] if isinstance(scope, str) else scope) if scope is not None else None,
        created_at=item.get("createdAt"),
        modified_at=item.get("modifiedAt"),
    )
    for name, value in item.items():
        if name in CORE_MEMBERS:
            continue
        entity.attributes[context.expand(name)] = _instances(value, context)
    return entity


def _instances(value: Any, context: ActiveContext) -> list[dict[str, Any]]:
    listed = value if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) else [value]
    return [_instance(item, context) for item in listed]


def _instance(value: Any, context: ActiveContext) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("type") not in MAIN_MEMBER:
        return {"type": "Property", "value": value}
    instance: dict[str, Any] = {}
    for member, member_value in value.items():
        if member in INSTANCE_MEMBERS:
            instance[member] = member_value
        else:  # a sub-attribute
            instance[context.expand(member)] = _instances(member_value, context)
    return instance

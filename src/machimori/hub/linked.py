"""Linked entity retrieval (ETSI GS CIM 009 §4.5.23): `join=inline` puts the entity a Relationship points to
inside it (as `entity`, or in place of the id in keyValues), `join=flat` adds the linked entities to the list;
`joinLevel` follows links that many hops.

Links are followed only from what the caller may see, and every linked entity goes through the same filter
as any read: an entity the caller may not see is simply not joined (its relationship stays a bare id), and
personal attributes are decided (and audit-logged) as always.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from machimori.hub.entities import Entity, is_uri
from machimori.hub.errors import bad_request
from machimori.hub.jsonld import ActiveContext
from machimori.hub.representation import Representation, represent

MAX_LEVEL = 5
MAX_LINKED = 1000
Visible = Callable[[list[str]], list[Entity]]  # the entities with these ids, as the caller may see them


def parse_join(join: str | None, level: int | None) -> tuple[str | None, int]:
    """The join asked for (None, inline or flat) and how many hops; BadRequestData for anything else."""
    if join is not None and join not in ("inline", "flat"):
        raise bad_request("join is inline or flat / join は inline か flat です")
    hops = 1 if level is None else level
    if not 1 <= hops <= MAX_LEVEL:
        raise bad_request(f"joinLevel is 1 to {MAX_LEVEL} / joinLevel は 1〜{MAX_LEVEL} です")
    return join, hops


def targets(entity: Entity) -> list[str]:
    """The ids the entity's Relationships and ListRelationships point to."""
    found: list[str] = []
    for instances in entity.attributes.values():
        for instance in instances:
            if instance.get("type") == "Relationship" and isinstance(instance.get("object"), str):
                found.append(instance["object"])
            elif instance.get("type") == "ListRelationship" and isinstance(instance.get("objectList"), list):
                for item in instance["objectList"]:
                    target = item.get("object") if isinstance(item, dict) else item
                    if isinstance(target, str):
                        found.append(target)
    return found


def linked_entities(entities: list[Entity], hops: int, visible: Visible) -> dict[str, Entity]:
    """The entities reachable from these in at most `hops` links, as the caller may see them, in the order met."""
    found: dict[str, Entity] = {}
    known = {entity.id for entity in entities}
    frontier = entities
    for _ in range(hops):
        wanted = list(dict.fromkeys(t for e in frontier for t in targets(e) if t not in known and is_uri(t)))
        wanted = wanted[: max(0, MAX_LINKED - len(found))]
        if not wanted:
            break
        frontier = visible(wanted)
        known.update(wanted)
        found.update((entity.id, entity) for entity in frontier)
    return found


def represent_joined(
    entities: list[Entity],
    context: ActiveContext,
    representation: Representation,
    join: str | None,
    hops: int,
    visible: Visible,
) -> list[dict[str, Any]]:
    """The entities as the representation shows them, with their linked entities inline or after them."""
    bodies = [represent(entity, context, representation) for entity in entities]
    if join is None:
        return bodies
    linked = linked_entities(entities, hops, visible)
    plain = replace(representation, pick=None, omit=frozenset())  # pick and omit shape the entities asked for
    if join == "flat":
        return bodies + [represent(entity, context, plain) for entity in linked.values()]
    for entity, body in zip(entities, bodies, strict=True):
        _inline(body, entity, linked, context, plain, hops, {entity.id})
    return bodies


def _inline(
    body: dict[str, Any],
    entity: Entity,
    linked: dict[str, Entity],
    context: ActiveContext,
    representation: Representation,
    hops: int,
    path: set[str],
) -> None:
    """Put each linked entity into the relationship that points to it (not back along the path taken)."""
    if hops <= 0:
        return
    for name, shown in body.items():
        instances = entity.attributes.get(context.expand(name))
        if not instances or not any(i.get("type") == "Relationship" for i in instances):
            continue
        items = shown if isinstance(shown, list) else [shown]
        for index, item in enumerate(items):
            target = item.get("object") if isinstance(item, dict) else item
            if not isinstance(target, str) or target not in linked or target in path:
                continue
            inner = represent(linked[target], context, representation)
            _inline(inner, linked[target], linked, context, representation, hops - 1, path | {target})
            if isinstance(item, dict):
                item["entity"] = inner
            elif isinstance(shown, list):
                shown[index] = inner
            else:
                body[name] = inner

"""Whether a change of an entity concerns a subscription (ETSI GS CIM 009 §5.8.6, notificationTrigger).

A change is an entity before and after it (no before: created; no after: deleted). The notification
service judges it twice: on the stored entities when the change is queued (a quick sieve), and on the
entities as the subscription's owner may see them when it is sent — so a subscription never learns of a
change to an attribute, or a q match on a value, that its owner may not read.
"""

from __future__ import annotations

from collections.abc import Iterable

from machimori.hub.entities import Entity
from machimori.hub.geo import parse_geo_query
from machimori.hub.jsonld import Contexts
from machimori.hub.q import parse_q
from machimori.hub.subscriptions import Subscription


def selected(subscription: Subscription, entity: Entity) -> bool:
    """Whether the subscription's entities (type, id or idPattern) select the entity (none listed: all do)."""
    return not subscription.entities or any(s.selects(entity.id, entity.types) for s in subscription.entities)


def fired(subscription: Subscription, before: Entity | None, after: Entity | None) -> str | None:
    """The notificationTrigger the change fires for the subscription, or None."""
    entity = after or before
    if entity is None or not selected(subscription, entity):
        return None
    triggers = subscription.triggers
    if before is None and after is not None:
        created = _watched(subscription, after.attributes)
        return _first(triggers, [("entityCreated", True), ("attributeCreated", bool(created))])
    if after is None and before is not None:
        deleted = _watched(subscription, before.attributes)
        return _first(triggers, [("entityDeleted", True), ("attributeDeleted", bool(deleted))])
    assert before is not None and after is not None
    names = _watched(subscription, set(before.attributes) | set(after.attributes))
    created = {n for n in names if n not in before.attributes}
    deleted = {n for n in names if n not in after.attributes}
    updated = {
        n
        for n in names
        if n in before.attributes and n in after.attributes and before.attributes[n] != after.attributes[n]
    }
    return _first(
        triggers,
        [
            ("entityUpdated", bool(created or deleted or updated)),
            ("attributeCreated", bool(created)),
            ("attributeUpdated", bool(updated)),
            ("attributeDeleted", bool(deleted)),
        ],
    )


def matches(subscription: Subscription, entity: Entity, contexts: Contexts) -> bool:
    """Whether the entity satisfies the subscription's q and geoQ (as far as it is given)."""
    if subscription.q is not None and not parse_q(subscription.q, contexts.active(subscription.q_context)).matches(
        entity
    ):
        return False
    geo = subscription.geo
    if geo is None:
        return True
    query = parse_geo_query(geo.georel, geo.geometry, geo.coordinates, geo.geoproperty, contexts.active(None))
    return query is None or query.matches(entity)


def _watched(subscription: Subscription, names: Iterable[str]) -> set[str]:
    watched = subscription.watched
    return set(names) if watched is None else {name for name in names if name in watched}


def _first(triggers: tuple[str, ...], candidates: list[tuple[str, bool]]) -> str | None:
    for trigger, happened in candidates:
        if happened and trigger in triggers:
            return trigger
    return None

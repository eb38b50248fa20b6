"""Observations written into the broker by the asset plane's gateway, inside the gateway's own transaction.

The gateway has already authenticated the device and checked its values against the device model; here
each observation becomes the latest state of one entity (created on first sight, its attributes updated
after), with the same index rows and subscription notifications as a write through the NGSI-LD API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from machimori.hub.entities import Entity
from machimori.hub.requests import now
from machimori.hub.store import LOCATION, EntityStore
from machimori.storage.tables import hub_entities

__all__ = ["LOCATION", "Observation", "record_observations"]


@dataclass(frozen=True)
class Observation:
    """The newest values of one entity: expanded type and attribute names, normalized attribute instances."""

    entity_id: str
    entity_type: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)


def record_observations(
    store: EntityStore, connection: Connection, tenant: str, observations: Sequence[Observation]
) -> None:
    """Create or update the observations' entities in the caller's transaction (later ones win)."""
    if not observations:
        return
    stamp = now()
    ids = list(dict.fromkeys(observation.entity_id for observation in observations))
    stored: dict[str, Entity] = {}
    for start in range(0, len(ids), 500):
        query = select(hub_entities.c.body).where(
            hub_entities.c.tenant == tenant, hub_entities.c.id.in_(ids[start : start + 500])
        )
        if connection.dialect.name != "sqlite":  # SQLite's write lock is held already (BEGIN IMMEDIATE)
            query = query.with_for_update()  # no API write slips in between this read and the update
        stored.update((body["id"], Entity.from_json(body)) for body in connection.execute(query).scalars())
    created: dict[str, Entity] = {}
    replaced: dict[str, Entity] = {}
    for observation in observations:
        entity = created.get(observation.entity_id) or replaced.get(observation.entity_id)
        if entity is None:
            before = stored.get(observation.entity_id)
            if before is None:
                entity = created[observation.entity_id] = Entity(
                    observation.entity_id, [observation.entity_type], created_at=stamp
                )
            else:
                entity = replaced[observation.entity_id] = Entity(
                    before.id, list(before.types), dict(before.attributes), before.scope, before.created_at
                )
            if observation.entity_type not in entity.types:
                entity.types.append(observation.entity_type)
        entity.modified_at = stamp
        for name, instance in observation.attributes.items():
            previous = entity.attributes.get(name)
            created_at = previous[0].get("createdAt", stamp) if previous else stamp
            entity.attributes[name] = [{**instance, "createdAt": created_at, "modifiedAt": stamp}]
    store.put_within(connection, tenant, list(created.values()), list(replaced.values()), before=stored)

"""Where the hub keeps entities: one row per tenant × entity id, the entity as a JSON document.

The row also holds the entity's first expanded type (indexed, for typed queries) and the bounding box of
its location (for geo-queries). An acknowledged write is committed before it is answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from machimori.hub.entities import Entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.storage import Database
from machimori.storage.tables import hub_entities

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Page:
    """A page of a query's answer, and how many match in all (if asked)."""

    entities: list[Entity]
    count: int | None


def bounding_box(entity: Entity) -> Box | None:
    """(min lon, min lat, max lon, max lat) of the entity's location, or None if it has none."""
    instances = entity.attributes.get(LOCATION)
    if not instances:
        return None
    points = list(_points(instances[0].get("value")))
    if not points:
        return None
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lons), min(lats), max(lons), max(lats)


def _points(geometry: Any) -> Iterable[Sequence[float]]:
    if not isinstance(geometry, dict):
        return
    if geometry.get("type") == "GeometryCollection":
        for member in geometry.get("geometries", []):
            yield from _points(member)
        return
    stack = [geometry.get("coordinates")]
    while stack:
        item = stack.pop()
        if isinstance(item, list) and item and isinstance(item[0], int | float):
            yield item
        elif isinstance(item, list):
            stack.extend(item)


class EntityStore:
    """Create, read, replace and delete entities per tenant."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, tenant: str, entity: Entity) -> None:
        """Store a new entity; AlreadyExists if the tenant has one with that id."""
        try:
            with self.database.begin() as connection:
                connection.execute(insert(hub_entities).values(**self._row(tenant, entity)))
        except IntegrityError:
            raise NgsiLdError(ErrorType.AlreadyExists, f"entity {entity.id} already exists / 既に存在します") from None

    def get(self, tenant: str, entity_id: str) -> Entity | None:
        with self.database.engine.connect() as connection:
            body = connection.execute(
                select(hub_entities.c.body).where(hub_entities.c.tenant == tenant, hub_entities.c.id == entity_id)
            ).scalar_one_or_none()
        return None if body is None else Entity.from_json(body)

    def replace(self, tenant: str, entity: Entity) -> bool:
        """Overwrite a stored entity (its creation time is kept); False if there is none."""
        row = self._row(tenant, entity)
        del row["created_at"]
        with self.database.begin() as connection:
            changed = connection.execute(
                update(hub_entities)
                .where(hub_entities.c.tenant == tenant, hub_entities.c.id == entity.id)
                .values(**row)
            ).rowcount
        return bool(changed)

    def delete(self, tenant: str, entity_id: str) -> bool:
        with self.database.begin() as connection:
            removed = connection.execute(
                delete(hub_entities).where(hub_entities.c.tenant == tenant, hub_entities.c.id == entity_id)
            ).rowcount
        return bool(removed)

    def of_type(self, tenant: str, types: Sequence[str], *, limit: int, offset: int = 0, count: bool = False) -> Page:
        """Entities whose first type is one of types, by id, a page at a time."""
        condition = (hub_entities.c.tenant == tenant) & hub_entities.c.type.in_(list(types))
        with self.database.engine.connect() as connection:
            bodies = connection.execute(
                select(hub_entities.c.body).where(condition).order_by(hub_entities.c.id).limit(limit).offset(offset)
            ).scalars()
            entities = [Entity.from_json(body) for body in bodies]
            total = connection.execute(select(func.count()).where(condition)).scalar_one() if count else None
        return Page(entities, total)

    @staticmethod
    def _row(tenant: str, entity: Entity) -> dict[str, Any]:
        box = bounding_box(entity)
        created = dt.datetime.fromisoformat(str(entity.created_at).replace("Z", "+00:00"))
        modified = dt.datetime.fromisoformat(str(entity.modified_at).replace("Z", "+00:00"))
        return {
            "tenant": tenant,
            "id": entity.id,
            "type": entity.types[0],
            "body": entity.to_json(),
            "created_at": created,
            "modified_at": modified,
            "min_lon": box[0] if box else None,
            "min_lat": box[1] if box else None,
            "max_lon": box[2] if box else None,
            "max_lat": box[3] if box else None,
        }

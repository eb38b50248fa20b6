"""Where the hub keeps entities: one row per tenant × entity id, the entity as a JSON document.

Beside it: a row per expanded type (typed queries; an entity may have several types), an index of its
attribute values (q queries), and the bounding box of its location (geo-queries). An acknowledged write
is committed, with its index rows, before it is answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from machimori.hub.entities import MAIN_MEMBER, Entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.storage import Database
from machimori.storage.group_commit import GroupCommit
from machimori.storage.tables import hub_attribute_values, hub_entities, hub_entity_types

LOCATION = "https://uri.etsi.org/ngsi-ld/location"
Box = tuple[float, float, float, float]
MAX_INDEXED_TEXT = 256
Change = tuple[Entity | None, Entity | None]  # (before, after): no before — created; no after — deleted
ChangeListener = Callable[[Connection, str, Sequence[Change]], object]
STATISTICS_EVERY = 50_000  # entities written between refreshes of SQLite's planner statistics


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
    """Entities per tenant: one row each, a row per type, and an index of their attribute values."""

    def __init__(
        self, database: Database, writes: GroupCommit | None = None, on_change: ChangeListener | None = None
    ) -> None:
        self.database = database
        self.writes = writes or GroupCommit(database)
        self.on_change = on_change  # told of every write in its transaction (the notifications' outbox)
        self._written_since_statistics = 0
        self.refresh_statistics()

    def refresh_statistics(self, connection: Connection | None = None) -> None:
        """Refresh SQLite's query-planner statistics of the hub's tables (sampled, so it takes milliseconds at
        any size) — in the given transaction, or in one of its own; without them SQLite may plan a q query
        as a scan per entity. PostgreSQL's autovacuum does this itself."""
        if not self.database.is_sqlite:
            return
        if connection is None:
            with self.database.engine.connect() as own:
                self.refresh_statistics(own)
                own.commit()
            return
        connection.exec_driver_sql("PRAGMA analysis_limit=1000")
        for table in (hub_entities, hub_entity_types, hub_attribute_values):
            connection.exec_driver_sql(f"ANALYZE {table.name}")

    def _count_written(self, connection: Connection, rows: int) -> None:
        self._written_since_statistics += rows
        if self._written_since_statistics >= STATISTICS_EVERY:
            self._written_since_statistics = 0
            self.refresh_statistics(connection)

    def create(self, tenant: str, entity: Entity) -> None:
        """Store a new entity; AlreadyExists if the tenant has one with that id."""
        try:
            self.put_many(tenant, [entity], [])
        except IntegrityError:
            raise NgsiLdError(ErrorType.AlreadyExists, f"entity {entity.id} already exists / 既に存在します") from None

    def get(self, tenant: str, entity_id: str) -> Entity | None:
        return self.get_many(tenant, [entity_id]).get(entity_id)

    def get_many(self, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]:
        """The stored entities among these ids, by id."""
        found: dict[str, Entity] = {}
        with self.database.engine.connect() as connection:
            for start in range(0, len(entity_ids), 500):
                chunk = list(entity_ids[start : start + 500])
                bodies = connection.execute(
                    select(hub_entities.c.body).where(hub_entities.c.tenant == tenant, hub_entities.c.id.in_(chunk))
                ).scalars()
                found.update((body["id"], Entity.from_json(body)) for body in bodies)
        return found

    def replace(self, tenant: str, entity: Entity) -> bool:
        """Overwrite a stored entity (its creation time is kept); False if there is none."""
        return bool(self.put_many(tenant, [], [entity]))

    def put_many(self, tenant: str, created: Sequence[Entity], replaced: Sequence[Entity]) -> int:
        """Insert new entities and overwrite stored ones, all in one transaction (perhaps shared with other
        requests' writes); how many were overwritten. IntegrityError if one of `created` exists (nothing of
        this call is written then)."""
        return self.writes.run(lambda connection: self.put_within(connection, tenant, created, replaced))

    def delete(self, tenant: str, entity_id: str) -> bool:
        return bool(self.delete_many(tenant, [entity_id]))

    def delete_many(self, tenant: str, entity_ids: Sequence[str]) -> int:
        """Delete these entities in one transaction; how many there were."""
        return self.writes.run(lambda connection: self._delete(connection, tenant, entity_ids))

    def put_within(
        self,
        connection: Connection,
        tenant: str,
        created: Sequence[Entity],
        replaced: Sequence[Entity],
        *,
        before: Mapping[str, Entity] | None = None,
    ) -> int:
        """put_many in the caller's transaction (the gateway's, say): how many were overwritten. A caller that
        has read (and locked) the stored entities in this transaction passes them as `before`: the replaced
        ones are then updated in place, rewriting only the index rows of the attributes that changed."""
        self._count_written(connection, len(created) + len(replaced))
        if before is None:
            before = self._remove(connection, tenant, [entity.id for entity in replaced])
            present = set(before)
            self._insert(connection, tenant, [*created, *(e for e in replaced if e.id in present)])
        else:
            present = {entity.id for entity in replaced if entity.id in before}
            self._insert(connection, tenant, created)
            self._update(connection, tenant, [(before[e.id], e) for e in replaced if e.id in present])
        if self.on_change is not None and (created or present):
            changes = [(None, e) for e in created] + [(before[e.id], e) for e in replaced if e.id in present]
            self.on_change(connection, tenant, changes)
        return len(present)

    def _insert(self, connection: Connection, tenant: str, written: Sequence[Entity]) -> None:
        if not written:
            return
        connection.execute(insert(hub_entities), [self._row(tenant, entity) for entity in written])
        types = [{"tenant": tenant, "type": t, "id": e.id} for e in written for t in e.types]
        values = [
            {"tenant": tenant, "id": e.id, "attribute": name, "number": number, "text": text}
            for e in written
            for name, number, text in indexed_values(e)
        ]
        if types:
            connection.execute(insert(hub_entity_types), types)
        if values:
            connection.execute(insert(hub_attribute_values), values)

    def _update(self, connection: Connection, tenant: str, pairs: Sequence[tuple[Entity, Entity]]) -> None:
        """Overwrite stored entities in place: the row, its types if they changed, and the index rows of the
        attributes whose indexed values changed."""
        if not pairs:
            return
        rows = [{**self._row(tenant, after), "key": after.id} for _, after in pairs]
        connection.execute(
            update(hub_entities)
            .where(hub_entities.c.tenant == tenant, hub_entities.c.id == bindparam("key"))
            .values({column: bindparam(column) for column in rows[0] if column not in ("tenant", "id", "key")}),
            rows,
        )
        retyped = [after for old, after in pairs if set(old.types) != set(after.types)]
        if retyped:
            connection.execute(
                delete(hub_entity_types).where(
                    hub_entity_types.c.tenant == tenant, hub_entity_types.c.id.in_([e.id for e in retyped])
                )
            )
            connection.execute(
                insert(hub_entity_types), [{"tenant": tenant, "type": t, "id": e.id} for e in retyped for t in e.types]
            )
        stale: list[dict[str, str]] = []
        fresh: list[dict[str, Any]] = []
        for old, after in pairs:
            was, now = _index_by_attribute(old), _index_by_attribute(after)
            for name in was.keys() | now.keys():
                if was.get(name) != now.get(name):
                    stale.append({"key": after.id, "name": name})
                    fresh.extend(
                        {"tenant": tenant, "id": after.id, "attribute": name, "number": number, "text": text}
                        for number, text in now.get(name, [])
                    )
        if stale:
            values = hub_attribute_values.c
            connection.execute(
                delete(hub_attribute_values).where(
                    values.tenant == tenant, values.id == bindparam("key"), values.attribute == bindparam("name")
                ),
                stale,
            )
        if fresh:
            connection.execute(insert(hub_attribute_values), fresh)

    def _remove(self, connection: Connection, tenant: str, entity_ids: Sequence[str]) -> dict[str, Entity]:
        """Delete these entities and their index rows; the ones there were, as they were."""
        removed: dict[str, Entity] = {}
        for start in range(0, len(entity_ids), 500):
            chunk = list(entity_ids[start : start + 500])
            bodies = connection.execute(
                delete(hub_entities)
                .where(hub_entities.c.tenant == tenant, hub_entities.c.id.in_(chunk))
                .returning(hub_entities.c.body)
            ).scalars()
            removed.update((body["id"], Entity.from_json(body)) for body in bodies)
            self._forget(connection, tenant, chunk)
        return removed

    def _delete(self, connection: Connection, tenant: str, entity_ids: Sequence[str]) -> int:
        removed = self._remove(connection, tenant, entity_ids)
        if self.on_change is not None and removed:
            self.on_change(connection, tenant, [(entity, None) for entity in removed.values()])
        return len(removed)

    @staticmethod
    def _forget(connection: Connection, tenant: str, entity_ids: Sequence[str]) -> None:
        for table in (hub_entity_types, hub_attribute_values):
            connection.execute(delete(table).where(table.c.tenant == tenant, table.c.id.in_(list(entity_ids))))

    def of_type(self, tenant: str, types: Sequence[str], *, limit: int, offset: int = 0, count: bool = False) -> Page:
        """Entities with one of these types, by id, a page at a time."""
        condition = (hub_entities.c.tenant == tenant) & hub_entities.c.id.in_(
            select(hub_entity_types.c.id).where(
                hub_entity_types.c.tenant == tenant, hub_entity_types.c.type.in_(list(types))
            )
        )
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
            "body": entity.to_json(),
            "created_at": created,
            "modified_at": modified,
            "min_lon": box[0] if box else None,
            "min_lat": box[1] if box else None,
            "max_lon": box[2] if box else None,
            "max_lat": box[3] if box else None,
        }


def _index_by_attribute(entity: Entity) -> dict[str, list[tuple[float | None, str | None]]]:
    by_name: dict[str, list[tuple[float | None, str | None]]] = {}
    for name, number, text in indexed_values(entity):
        by_name.setdefault(name, []).append((number, text))
    return by_name


def indexed_values(entity: Entity) -> Iterator[tuple[str, float | None, str | None]]:
    """(attribute, number, text) for each value of each top-level attribute — list members one by one;
    a value that is neither a number nor a short string is listed with neither, so the attribute's
    presence is still indexed."""
    for name, instances in entity.attributes.items():
        for instance in instances:
            value = instance.get(MAIN_MEMBER.get(instance.get("type", ""), "value"))
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, int | float) and not isinstance(item, bool):
                    yield name, float(item), None
                elif isinstance(item, str) and len(item) <= MAX_INDEXED_TEXT:
                    yield name, None, item
                else:
                    yield name, None, None

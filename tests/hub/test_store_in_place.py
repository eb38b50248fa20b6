"""Updating stored entities in place (the gateway's path) leaves exactly the rows a full rewrite leaves."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from machimori.hub.entities import Entity, parse_entity
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.store import EntityStore
from machimori.storage import Database
from machimori.storage.tables import hub_attribute_values, hub_entities, hub_entity_types

NOW = "2026-12-01T00:00:00Z"
LATER = "2026-12-01T00:05:00Z"
CONTEXT = Contexts(DocumentLoader()).active(
    {"Sensor": "https://example.org/Sensor", "Gauge": "https://example.org/Gauge"}
)

BEFORE = {
    "type": "Sensor",
    "temperature": {"value": 20.5, "unitCode": "CEL"},
    "status": "ok",
    "tags": {"value": ["a", "b", 3]},
    "unchanged": 7,
    "gone": "soon",
    "location": {"type": "Point", "coordinates": [139.6, 35.4]},
}
AFTERS = [
    pytest.param({**BEFORE, "temperature": {"value": 21.0, "unitCode": "CEL"}}, id="one value changes"),
    pytest.param({k: v for k, v in BEFORE.items() if k != "gone"} | {"new": 1.5}, id="attribute removed and added"),
    pytest.param({**BEFORE, "tags": {"value": ["b", "a", 3, 4]}}, id="list members change"),
    pytest.param({**BEFORE, "type": ["Sensor", "Gauge"]}, id="types change"),
    pytest.param({**BEFORE, "location": {"type": "Point", "coordinates": [135.5, 34.7]}}, id="moved"),
    pytest.param(dict(BEFORE), id="nothing changes"),
]


def entity(body: dict[str, Any], now: str) -> Entity:
    return parse_entity({"id": "urn:ngsi-ld:Sensor:1", **body}, CONTEXT, now=now)


def rows(database: Database, tenant: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of the tenant in the hub's tables, without the tenant column, in a stable order."""
    with database.engine.connect() as connection:
        return {
            table.name: sorted(
                tuple(str(value) for name, value in row._mapping.items() if name != "tenant")
                for row in connection.execute(select(table).where(table.c.tenant == tenant)).all()
            )
            for table in (hub_entities, hub_entity_types, hub_attribute_values)
        }


@pytest.mark.parametrize("after", AFTERS)
def test_in_place_equals_a_full_rewrite(database: Database, after: dict[str, Any]) -> None:
    """Tenant "in-place" is updated with the stored entities given, tenant "rewrite" without: same rows."""
    store = EntityStore(database)
    for tenant, in_place in (("in-place", True), ("rewrite", False)):
        store.create(tenant, entity(BEFORE, NOW))
        stored = store.get(tenant, "urn:ngsi-ld:Sensor:1")
        assert stored is not None
        with database.begin() as connection:
            given = {stored.id: stored} if in_place else None
            assert store.put_within(connection, tenant, [], [entity(after, LATER)], before=given) == 1
        assert store.get(tenant, "urn:ngsi-ld:Sensor:1") == entity(after, LATER)
    assert rows(database, "in-place") == rows(database, "rewrite")
    assert rows(database, "in-place")["hub_attribute_values"]  # the index is there, not merely equal and empty

"""The entity store on SQLite and PostgreSQL: tenants apart, ids unique, pages and counts, bounding boxes."""

from __future__ import annotations

import pytest

from machimori.hub.entities import Entity, parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.store import EntityStore, bounding_box
from machimori.storage import Database

NOW = "2026-11-30T00:00:00Z"
CONTEXT = Contexts(DocumentLoader()).active(
    {"Vehicle": "https://example.org/Vehicle", "Shelter": "https://example.org/Shelter"}
)


def make(number: int, kind: str = "Vehicle", **attributes: object) -> Entity:
    payload = {"id": f"urn:ngsi-ld:{kind}:{number:04d}", "type": kind, **attributes}
    return parse_entity(payload, CONTEXT, now=NOW)


@pytest.fixture
def store(database: Database) -> EntityStore:
    return EntityStore(database)


def test_an_entity_is_stored_once_per_tenant_and_read_back_whole(store: EntityStore) -> None:
    entity = make(1, speed={"value": 42, "unitCode": "KMH"}, location={"type": "Point", "coordinates": [139.6, 35.4]})
    store.create("", entity)
    with pytest.raises(NgsiLdError) as raised:
        store.create("", make(1))
    assert raised.value.kind is ErrorType.AlreadyExists
    store.create("minato", make(1))  # another tenant: another entity
    assert store.get("", entity.id) == entity
    assert store.get("minato", entity.id) == make(1)
    assert store.get("other", entity.id) is None


def test_replace_and_delete_touch_only_their_tenant(store: EntityStore) -> None:
    store.create("", make(1, speed=1))
    store.create("minato", make(1, speed=2))
    assert store.replace("", make(1, speed=3)) and not store.replace("", make(2))
    assert store.delete("minato", make(1).id) and not store.delete("minato", make(1).id)
    found = store.get("", make(1).id)
    assert found is not None and found.attributes[next(iter(found.attributes))][0]["value"] == 3


def test_typed_pages_come_in_id_order_with_a_count(store: EntityStore) -> None:
    for number in range(25):
        store.create("", make(number))
    store.create("", make(1, "Shelter"))
    page = store.of_type("", ["https://example.org/Vehicle"], limit=10, offset=20, count=True)
    assert [e.id for e in page.entities] == [f"urn:ngsi-ld:Vehicle:{n:04d}" for n in range(20, 25)]
    assert page.count == 25
    assert store.of_type("", ["https://example.org/Vehicle", "https://example.org/Shelter"], limit=100).count is None


def test_sql_in_an_id_or_tenant_is_just_data(store: EntityStore) -> None:
    hostile = parse_entity({"id": "urn:x:');DROP%20TABLE%20hub_entities;--", "type": "Vehicle"}, CONTEXT, now=NOW)
    store.create("t'; DELETE FROM hub_entities; --", hostile)
    assert store.get("t'; DELETE FROM hub_entities; --", hostile.id) == hostile
    assert store.get("", hostile.id) is None


def test_the_bounding_box_covers_every_coordinate() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[139.0, 35.0], [139.5, 35.0], [139.5, 35.8], [139.0, 35.0]]]}
    assert bounding_box(make(1, location=polygon)) == (139.0, 35.0, 139.5, 35.8)
    assert bounding_box(make(2)) is None

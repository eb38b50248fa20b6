"""Changing entities in place over HTTP with a token: the owner replaces, merges and edits attributes; another
organisation is told the entity does not exist and changes nothing; no write turns an entity into another
organisation's (or personal) type; tenants apart; bad input gets ETSI errors. The store is read after each write."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from machimori.hub.entities import Entity
from machimori.platform import Platform

from .test_api import WATCH, WATER, bearer, town, watched  # noqa: F401  (town: a fixture)

Town = tuple[Platform, TestClient]
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
LEVEL = VOCAB + "waterLevel"
RIVER = "urn:ngsi-ld:WaterObserved:river-1"
ENTITY = f"/ngsi-ld/v1/entities/{RIVER}"
SENSOR = "urn:ngsi-ld:Dataset:sensor-2"


def river(entity_id: str = RIVER) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": WATER,
        "waterLevel": [
            {"type": "Property", "value": 1.2, "unitCode": "MTR", "observedAt": "2026-12-01T00:00:00Z"},
            {"type": "Property", "value": 1.3, "datasetId": SENSOR},
        ],
        "riverName": "境川",
    }


def stored(client: TestClient, entity_id: str = RIVER, tenant: str = "") -> Entity:
    found = client.app.state.hub.store.get(tenant, entity_id)  # type: ignore[attr-defined]
    assert found is not None
    return found  # type: ignore[no-any-return]


def level(entity: Entity, dataset: str | None = None) -> dict[str, Any]:
    return next(i for i in entity.attributes[LEVEL] if i.get("datasetId") == dataset)


@pytest.fixture
def owned(town: Town) -> tuple[TestClient, dict[str, str]]:  # noqa: F811
    """The river entity, created by its owner (minato-bousai); the client and the owner's headers."""
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    assert client.post("/ngsi-ld/v1/entities", json=river(), headers=bousai).status_code == 201
    return client, bousai


def test_the_owner_merges_and_createdat_stays(owned: tuple[TestClient, dict[str, str]]) -> None:
    client, bousai = owned
    before = stored(client)
    merge = {"waterLevel": {"value": 2.5, "observedAt": "2026-12-01T01:00:00Z"}, "riverName": "urn:ngsi-ld:null"}
    assert client.patch(ENTITY, json=merge, headers=bousai).status_code == 204
    after = stored(client)
    assert level(after)["value"] == 2.5 and level(after)["unitCode"] == "MTR"
    assert level(after)["createdAt"] == level(before)["createdAt"] and after.created_at == before.created_at
    assert level(after, SENSOR) == level(before, SENSOR)
    assert VOCAB + "riverName" not in after.attributes
    shown = client.get(ENTITY, params={"options": "sysAttrs"}, headers=bousai).json()
    assert shown["createdAt"] == before.created_at and shown["modifiedAt"] == after.modified_at


def test_the_owner_replaces_the_entity_keeping_its_creation(owned: tuple[TestClient, dict[str, str]]) -> None:
    client, bousai = owned
    before = stored(client)
    answer = client.put(ENTITY, json={"type": WATER, "flow": {"value": 30, "unitCode": "MQS"}}, headers=bousai)
    assert answer.status_code == 204, answer.text
    after = stored(client)
    assert list(after.attributes) == [VOCAB + "flow"] and after.created_at == before.created_at
    wrong_id = {"id": "urn:ngsi-ld:WaterObserved:other", "type": WATER}
    assert client.put(ENTITY, json=wrong_id, headers=bousai).json()["type"].endswith("BadRequestData")
    assert stored(client) == after


def test_append_with_and_without_overwrite(owned: tuple[TestClient, dict[str, str]]) -> None:
    client, bousai = owned
    fragment = {"waterLevel": {"value": 9.9}, "temperature": {"value": 12, "unitCode": "CEL"}}
    kept = client.post(f"{ENTITY}/attrs", params={"options": "noOverwrite"}, json=fragment, headers=bousai)
    assert kept.status_code == 207
    assert kept.json()["updated"] == ["temperature"]
    assert [n["attributeName"] for n in kept.json()["notUpdated"]] == ["waterLevel"]
    after = stored(client)
    assert level(after)["value"] == 1.2 and after.attributes[VOCAB + "temperature"][0]["value"] == 12
    assert client.post(f"{ENTITY}/attrs", json=fragment, headers=bousai).status_code == 204
    after = stored(client)
    assert level(after)["value"] == 9.9 and "unitCode" not in level(after)


def test_update_touches_only_existing_attributes(owned: tuple[TestClient, dict[str, str]]) -> None:
    client, bousai = owned
    fragment = {"waterLevel": {"value": 4.0, "datasetId": SENSOR}, "turbidity": 3}
    answer = client.patch(f"{ENTITY}/attrs", json=fragment, headers=bousai)
    assert answer.status_code == 207
    assert answer.json()["updated"] == ["waterLevel"] and answer.json()["notUpdated"][0]["attributeName"] == "turbidity"
    after = stored(client)
    assert level(after, SENSOR)["value"] == 4.0 and VOCAB + "turbidity" not in after.attributes
    assert client.patch(f"{ENTITY}/attrs", json={"waterLevel": 5.0}, headers=bousai).status_code == 204
    assert level(stored(client))["value"] == 5.0


def test_one_attribute_partially_updated_replaced_and_deleted(owned: tuple[TestClient, dict[str, str]]) -> None:
    client, bousai = owned
    partial = client.patch(f"{ENTITY}/attrs/waterLevel", json={"value": 1.5}, headers=bousai)
    assert partial.status_code == 204, partial.text
    assert level(stored(client))["value"] == 1.5 and level(stored(client))["unitCode"] == "MTR"
    unknown = client.patch(f"{ENTITY}/attrs/waterLevel", json={"value": 1, "datasetId": "urn:x:none"}, headers=bousai)
    assert unknown.status_code == 404
    replaced = client.put(
        f"{ENTITY}/attrs/waterLevel", json={"type": "Property", "value": 7, "datasetId": SENSOR}, headers=bousai
    )
    assert replaced.status_code == 204 and level(stored(client), SENSOR) == {
        **level(stored(client), SENSOR),
        "value": 7,
    }
    assert client.put(f"{ENTITY}/attrs/scope", json={"value": "/x"}, headers=bousai).status_code == 400
    assert client.delete(f"{ENTITY}/attrs/waterLevel", params={"datasetId": SENSOR}, headers=bousai).status_code == 204
    assert [i.get("datasetId") for i in stored(client).attributes[LEVEL]] == [None]
    assert client.delete(f"{ENTITY}/attrs/waterLevel", params={"deleteAll": "true"}, headers=bousai).status_code == 204
    assert LEVEL not in stored(client).attributes
    gone = client.delete(f"{ENTITY}/attrs/waterLevel", headers=bousai)
    assert gone.status_code == 404 and gone.json()["type"].endswith("ResourceNotFound")


def test_another_organisation_changes_nothing_and_learns_nothing(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    _, bus = bearer(platform, client, "minato-kotsu")
    client.post("/ngsi-ld/v1/entities", json=river(), headers=bousai)
    before = stored(client)
    attempts = [
        client.put(ENTITY, json={"type": WATER, "waterLevel": 0}, headers=bus),
        client.patch(ENTITY, json={"waterLevel": 0}, headers=bus),
        client.post(f"{ENTITY}/attrs", json={"waterLevel": 0, "note": "forged"}, headers=bus),
        client.patch(f"{ENTITY}/attrs", json={"waterLevel": 0}, headers=bus),
        client.patch(f"{ENTITY}/attrs/waterLevel", json={"value": 0}, headers=bus),
        client.put(f"{ENTITY}/attrs/waterLevel", json={"type": "Property", "value": 0}, headers=bus),
        client.delete(f"{ENTITY}/attrs/waterLevel", headers=bus),
    ]
    nowhere = client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:none", json={"a": 1}, headers=bus)
    assert [a.status_code for a in attempts] == [404] * 7
    assert all(a.json() == {**nowhere.json(), "detail": a.json()["detail"]} for a in attempts)  # same as a missing one
    assert client.get(ENTITY, headers=bus).json()["waterLevel"][0]["value"] == 1.2  # it may read the open data
    assert stored(client) == before


def test_no_write_turns_an_entity_into_a_type_the_caller_does_not_own(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    _, care = bearer(platform, client, "aoba-care")
    client.post("/ngsi-ld/v1/entities", json=river(), headers=bousai)
    watch_id = "urn:ngsi-ld:WatchedPosition:1"
    client.post("/ngsi-ld/v1/entities", json=watched(watch_id), headers=care)
    river_before, watch_before = stored(client), stored(client, watch_id)

    to_personal = client.patch(ENTITY, json={"type": WATCH}, headers=bousai)
    assert to_personal.status_code == 400 and to_personal.json()["rule"] == "owner-write"
    assert client.put(ENTITY, json={**watched(RIVER), "type": WATCH}, headers=bousai).json()["rule"] == "owner-write"
    assert client.patch(f"{ENTITY}/attrs", json={"type": WATCH}, headers=bousai).status_code == 400
    assert client.post(f"{ENTITY}/attrs", json={"type": WATCH}, headers=bousai).status_code == 400
    # the care organisation owns the strictest of the two types, but not the open one it would claim
    watch_url = f"/ngsi-ld/v1/entities/{watch_id}"
    assert client.patch(watch_url, json={"type": WATER}, headers=care).json()["rule"] == "owner-write"
    assert client.put(watch_url, json={**river(watch_id), "id": watch_id}, headers=care).status_code == 400
    assert stored(client) == river_before and stored(client, watch_id) == watch_before
    # its own personal entity it may change (and the write of personal data is audit-logged)
    head = platform.audit.head().size
    assert client.patch(f"{watch_url}/attrs/deviceName", json={"value": "タグ 8"}, headers=care).status_code == 204
    assert stored(client, watch_id).attributes[VOCAB + "deviceName"][0]["value"] == "タグ 8"
    assert platform.audit.head().size > head


def test_tenants_are_apart(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    minato = {**bousai, "NGSILD-Tenant": "minato"}
    client.post("/ngsi-ld/v1/entities", json=river(), headers=minato)
    assert client.patch(ENTITY, json={"waterLevel": 0}, headers=bousai).status_code == 404
    assert client.patch(ENTITY, json={"waterLevel": 0}, headers={**bousai, "NGSILD-Tenant": "other"}).status_code == 404
    assert level(stored(client, tenant="minato"))["value"] == 1.2
    assert client.patch(ENTITY, json={"waterLevel": 0}, headers=minato).status_code == 204
    assert level(stored(client, tenant="minato"))["value"] == 0


def test_an_id_with_slashes_is_one_path_parameter(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    entity_id = "https://minatomachi.example/river/1"
    assert client.post("/ngsi-ld/v1/entities", json=river(entity_id), headers=bousai).status_code == 201
    url = "/ngsi-ld/v1/entities/https%3A%2F%2Fminatomachi.example%2Friver%2F1"
    assert client.patch(f"{url}/attrs/waterLevel", json={"value": 3}, headers=bousai).status_code == 204
    assert level(stored(client, entity_id))["value"] == 3
    assert client.delete(f"{url}/attrs/riverName", headers=bousai).status_code == 204
    assert VOCAB + "riverName" not in stored(client, entity_id).attributes
    assert client.delete(url, headers=bousai).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "content", "content_type", "status", "error"),
    [
        ("PATCH", ENTITY, b"{not json", "application/json", 400, "InvalidRequest"),
        ("POST", f"{ENTITY}/attrs", b'{"a": 1, "@context": "https://x.example/c"}', "application/json", 400, "BadRequestData"),
        ("PATCH", f"{ENTITY}/attrs", b'{"waterLevel": {"type": "Nonsense", "value": 1}}', "application/json", 400, "BadRequestData"),
        ("PATCH", ENTITY, b'[{"waterLevel": 1}]', "application/json", 400, "BadRequestData"),
        ("PATCH", ENTITY, b'"text"', "application/json", 400, "BadRequestData"),
        ("PUT", ENTITY, b'{"waterLevel": 1}', "application/json", 400, "BadRequestData"),
        ("PATCH", ENTITY, b'{"waterLevel": 1}', "text/plain", 415, "InvalidRequest"),
        ("PATCH", ENTITY, b'{"waterLevel": 1}', "application/ld+json", 400, "BadRequestData"),
        ("PATCH", "/ngsi-ld/v1/entities/not-a-uri/attrs", b'{"waterLevel": 1}', "application/json", 400, "BadRequestData"),
        ("POST", "/ngsi-ld/v1/entities//attrs", b'{"waterLevel": 1}', "application/json", 400, "BadRequestData"),
        ("PATCH", f"{ENTITY}/attrs/@id", b'{"value": 1}', "application/json", 400, "BadRequestData"),
        ("PATCH", f"{ENTITY}/attrs/waterLevel", b"{}", "application/json", 400, "BadRequestData"),
        ("PATCH", f"{ENTITY}/attrs/waterLevel", b'{"type": "Relationship", "object": "urn:x:1"}', "application/json", 400, "BadRequestData"),
        ("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:nowhere", b'{"a": 1}', "application/json", 404, "ResourceNotFound"),
        ("DELETE", f"{ENTITY}/attrs/waterLevel?deleteAll=maybe", b"", "application/json", 400, "BadRequestData"),
    ],
)  # fmt: skip
def test_bad_input_gets_etsi_errors_and_changes_nothing(
    owned: tuple[TestClient, dict[str, str]],
    method: str,
    path: str,
    content: bytes,
    content_type: str,
    status: int,
    error: str,
) -> None:
    client, bousai = owned
    before = stored(client)
    answer = client.request(method, path, content=content, headers={**bousai, "Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/" + error
    assert stored(client) == before


def test_without_a_token_nothing_changes(owned: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = owned
    before = stored(client)
    assert client.patch(ENTITY, json={"waterLevel": 0}).status_code == 401
    assert client.delete(f"{ENTITY}/attrs/waterLevel").status_code == 401
    assert stored(client) == before

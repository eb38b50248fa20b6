"""Batch entity operations over HTTP with a token: every entity decided on its own (a denied or faulty one is an
error entry and is not written, the rest are), 201/204/207 as the spec says, tenants apart, bad requests
refused whole, too many entities refused. The store is read after each write."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from machimori.hub.entities import Entity
from machimori.platform import Platform

from .test_api import WATCH, WATER, bearer, town, watched  # noqa: F401  (town: a fixture)

Town = tuple[Platform, TestClient]
OPS = "/ngsi-ld/v1/entityOperations"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
LEVEL = VOCAB + "waterLevel"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def river(number: int, level: float = 1.0, **more: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:WaterObserved:{number}", "type": WATER, "waterLevel": level, **more}


def rid(number: int) -> str:
    return f"urn:ngsi-ld:WaterObserved:{number}"


def stored(client: TestClient, *numbers: int, tenant: str = "") -> dict[str, Entity]:
    """The stored entities among these rivers, by id."""
    return client.app.state.hub.store.get_many(tenant, [rid(n) for n in numbers])  # type: ignore[attr-defined,no-any-return]


def level(entity: Entity) -> Any:
    return entity.attributes[LEVEL][0]["value"]


def failed(answer: Any) -> dict[str, str]:
    """The error type of each entity in a 207 answer, by id."""
    return {entry["entityId"]: entry["error"]["type"].removeprefix(ERRORS) for entry in answer.json()["errors"]}


@pytest.fixture
def bousai(town: Town) -> tuple[TestClient, dict[str, str]]:  # noqa: F811
    """The client and the headers of the river data's owner (minato-bousai)."""
    platform, client = town
    return client, bearer(platform, client, "minato-bousai")[1]


def test_create_writes_all_or_answers_each(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    created = client.post(f"{OPS}/create", json=[river(1), river(2)], headers=headers)
    assert created.status_code == 201 and created.json() == [rid(1), rid(2)]
    assert set(stored(client, 1, 2)) == {rid(1), rid(2)}
    again = client.post(f"{OPS}/create", json=[river(3), river(1, 9.0), river(3, 7.0)], headers=headers)
    assert again.status_code == 207
    assert again.json()["success"] == [rid(3)] and failed(again) == {rid(3): "AlreadyExists", rid(1): "AlreadyExists"}
    assert [e["entityId"] for e in again.json()["errors"]] == [rid(3), rid(1)]  # the duplicate, and the existing
    found = stored(client, 1, 3)
    assert level(found[rid(1)]) == 1.0 and level(found[rid(3)]) == 1.0


def test_a_denied_entity_among_allowed_ones_is_not_written(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    personal = watched("urn:ngsi-ld:WatchedPosition:9")
    answer = client.post(f"{OPS}/create", json=[river(1), personal, river(2)], headers=headers)
    assert answer.status_code == 207 and answer.json()["success"] == [rid(1), rid(2)]
    assert answer.json()["errors"][0]["entityId"] == personal["id"]
    assert answer.json()["errors"][0]["error"]["rule"] == "owner-write"
    assert client.app.state.hub.store.get("", personal["id"]) is None  # type: ignore[attr-defined]
    upserted = client.post(f"{OPS}/upsert", json=[river(1, 5.0), personal], headers=headers)
    assert upserted.status_code == 207 and upserted.json()["success"] == [rid(1)]
    assert level(stored(client, 1)[rid(1)]) == 5.0
    assert client.app.state.hub.store.get("", personal["id"]) is None  # type: ignore[attr-defined]


def test_upsert_creates_replaces_or_appends(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    client.post(f"{OPS}/create", json=[river(1, riverName="境川")], headers=headers)
    before = stored(client, 1)[rid(1)]
    mixed = client.post(f"{OPS}/upsert", json=[river(1, 2.0), river(2), river(2, 3.0)], headers=headers)
    assert mixed.status_code == 201 and mixed.json() == [rid(2)]
    found = stored(client, 1, 2)
    assert level(found[rid(1)]) == 2.0 and VOCAB + "riverName" not in found[rid(1)].attributes  # replaced
    assert found[rid(1)].created_at == before.created_at and level(found[rid(2)]) == 3.0  # the later one wins
    appended = client.post(
        f"{OPS}/upsert", params={"options": "update"}, json=[river(1, 4.0, flow=30)], headers=headers
    )
    assert appended.status_code == 204
    found = stored(client, 1)
    assert level(found[rid(1)]) == 4.0 and VOCAB + "flow" in found[rid(1)].attributes
    assert (
        client.post(f"{OPS}/upsert", params={"options": "update,replace"}, json=[river(1)], headers=headers).status_code
        == 400
    )


def test_update_and_merge_change_only_existing_entities(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    client.post(f"{OPS}/create", json=[river(1), river(2)], headers=headers)
    update = client.post(f"{OPS}/update", json=[river(1, 2.0, flow=5), river(8)], headers=headers)
    assert (
        update.status_code == 207
        and update.json()["success"] == [rid(1)]
        and failed(update) == {rid(8): "ResourceNotFound"}
    )
    assert level(stored(client, 1)[rid(1)]) == 2.0 and not stored(client, 8)
    kept = client.post(
        f"{OPS}/update", params={"options": "noOverwrite"}, json=[river(2, 9.0, note="x")], headers=headers
    )
    assert kept.status_code == 207 and kept.json()["errors"][0]["error"]["notUpdated"] == ["waterLevel"]
    assert level(stored(client, 2)[rid(2)]) == 1.0 and VOCAB + "note" in stored(client, 2)[rid(2)].attributes
    merged = client.post(
        f"{OPS}/merge",
        json=[{"id": rid(1), "type": WATER, "flow": "urn:ngsi-ld:null", "waterLevel": {"value": 3.0}}],
        headers=headers,
    )
    assert merged.status_code == 204
    found = stored(client, 1)[rid(1)]
    assert level(found) == 3.0 and VOCAB + "flow" not in found.attributes
    assert client.post(f"{OPS}/update", json=[river(1, 3.0)], headers=headers).status_code == 204


def test_a_merge_into_a_personal_type_is_refused(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    client.post(f"{OPS}/create", json=[river(1), river(2)], headers=headers)
    before = stored(client, 1, 2)
    answer = client.post(
        f"{OPS}/merge", json=[{"id": rid(1), "type": WATCH}, {"id": rid(2), "waterLevel": 2.0}], headers=headers
    )
    assert answer.status_code == 207 and answer.json()["success"] == [rid(2)]
    assert answer.json()["errors"][0]["error"]["rule"] == "owner-write"
    after = stored(client, 1, 2)
    assert after[rid(1)] == before[rid(1)] and level(after[rid(2)]) == 2.0
    upsert = client.post(f"{OPS}/upsert", json=[{**river(1), "type": [WATER, WATCH]}], headers=headers)
    assert upsert.status_code == 207 and stored(client, 1)[rid(1)] == before[rid(1)]


def test_another_organisation_writes_nothing(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, owner = bearer(platform, client, "minato-bousai")
    _, bus = bearer(platform, client, "minato-kotsu")
    _, care = bearer(platform, client, "aoba-care")
    client.post(f"{OPS}/create", json=[river(1), river(2)], headers=owner)
    before = stored(client, 1, 2)
    answers = [
        client.post(f"{OPS}/upsert", json=[river(1, 0.0)], headers=bus),
        client.post(f"{OPS}/upsert", params={"options": "update"}, json=[river(1, 0.0)], headers=bus),
        client.post(f"{OPS}/upsert", json=[{**watched(rid(1))}], headers=care),  # its own type, another's id
        client.post(f"{OPS}/update", json=[river(1, 0.0)], headers=bus),
        client.post(f"{OPS}/merge", json=[river(1, 0.0)], headers=bus),
        client.post(f"{OPS}/delete", json=[rid(1), rid(2)], headers=bus),
    ]
    assert [a.status_code for a in answers] == [207] * 6
    assert all(not a.json()["success"] for a in answers)
    assert set(failed(answers[-1]).values()) == {"ResourceNotFound"}  # as if it were not there
    unknown = client.post(f"{OPS}/update", json=[river(7)], headers=bus).json()["errors"][0]["error"]
    assert answers[3].json()["errors"][0]["error"] == {**unknown, "detail": unknown["detail"].replace(rid(7), rid(1))}
    assert stored(client, 1, 2) == before


def test_delete_and_tenants(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    minato = {**headers, "NGSILD-Tenant": "minato"}
    client.post(f"{OPS}/create", json=[river(1), river(2)], headers=headers)
    client.post(f"{OPS}/create", json=[river(1)], headers=minato)
    elsewhere = client.post(f"{OPS}/delete", json=[rid(2)], headers=minato)
    assert elsewhere.status_code == 207 and set(stored(client, 2)) == {rid(2)}
    answer = client.post(f"{OPS}/delete", json=[rid(1), rid(1), rid(9), "not a uri"], headers=headers)
    assert answer.status_code == 207 and answer.json()["success"] == [rid(1)]
    assert failed(answer) == {rid(1): "ResourceNotFound", rid(9): "ResourceNotFound", "not a uri": "BadRequestData"}
    assert not stored(client, 1) and set(stored(client, 1, tenant="minato")) == {rid(1)}
    assert client.post(f"{OPS}/delete", json=[rid(2)], headers=headers).status_code == 204
    assert not stored(client, 2)


def test_contexts_per_entity(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    context = {"level": VOCAB + "waterLevel"}
    entity = {**river(1), "@context": context}
    as_json = client.post(f"{OPS}/create", json=[entity, river(2)], headers=headers)
    assert as_json.status_code == 207 and failed(as_json) == {rid(1): "BadRequestData"}
    as_ld = {**headers, "Content-Type": "application/ld+json"}
    mixed = client.post(
        f"{OPS}/upsert",
        json=[{"id": rid(3), "type": WATER, "level": 2.0, "@context": context}, river(4)],
        headers=as_ld,
    )
    assert (
        mixed.status_code == 207 and mixed.json()["success"] == [rid(3)] and failed(mixed) == {rid(4): "BadRequestData"}
    )
    assert level(stored(client, 3)[rid(3)]) == 2.0 and set(stored(client, 1, 2, 3, 4)) == {rid(2), rid(3)}
    link = '<https://example.org/c.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    both = client.post(f"{OPS}/create", json=[{**river(5), "@context": context}], headers={**as_ld, "Link": link})
    assert both.status_code == 400 and both.json()["type"] == ERRORS + "BadRequestData" and not stored(client, 5)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (b"[{not json", "application/json", 400, "InvalidRequest"),
        (b"[]", "application/json", 400, "BadRequestData"),
        (b'{"id": "urn:ngsi-ld:WaterObserved:1"}', "application/json", 400, "BadRequestData"),
        (b'[{"id": "urn:ngsi-ld:WaterObserved:1", "type": "%s", "waterLevel": 1}, null]' % WATER.encode(), "application/json", 400, "BadRequestData"),
        (b"[1, 2]", "application/json", 400, "BadRequestData"),
        (b'["urn:ngsi-ld:WaterObserved:1"]', "text/plain", 415, "InvalidRequest"),
    ],
)  # fmt: skip
def test_a_malformed_request_is_refused_whole(
    bousai: tuple[TestClient, dict[str, str]],
    content: bytes,
    content_type: str,
    status: int,
    error: str,
) -> None:
    client, headers = bousai
    for operation in ("create", "upsert", "update", "merge", "delete"):
        answer = client.post(f"{OPS}/{operation}", content=content, headers={**headers, "Content-Type": content_type})
        assert answer.status_code == status, (operation, answer.text)
        assert answer.json()["type"] == ERRORS + error
    assert not stored(client, 1)


def test_too_many_entities_are_refused_whole(bousai: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = bousai
    over = client.post(f"{OPS}/create", json=[{}] * 10_001, headers=headers)
    assert over.status_code == 413 and "10000" in over.json()["detail"]
    client.app.state.ngsi_ld_batch_limit = 3  # type: ignore[attr-defined]
    answer = client.post(f"{OPS}/upsert", json=[river(n) for n in range(4)], headers=headers)
    assert answer.status_code == 413 and answer.json()["type"] == ERRORS + "BadRequestData"
    assert not stored(client, 0, 1, 2, 3)
    assert client.post(f"{OPS}/delete", json=[rid(n) for n in range(4)], headers=headers).status_code == 413
    assert client.post(f"{OPS}/upsert", json=[river(n) for n in range(3)], headers=headers).status_code == 201


def test_without_a_token_nothing_happens(town: Town) -> None:  # noqa: F811
    _, client = town
    assert client.post(f"{OPS}/create", json=[river(1)]).status_code == 401
    assert not stored(client, 1)

"""Purging entities (DELETE /entities) only ever touches what the caller may write, and the checks every
NGSI-LD request passes first: acceptable media types (406, 415), known query parameters, an id in the path."""

from __future__ import annotations

from fastapi.testclient import TestClient

from machimori.platform import Platform

from .test_api import WATER, bearer, town  # noqa: F401
from .test_query_api import LEVEL, river

Town = tuple[Platform, TestClient]
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def _ids(client: TestClient, headers: dict[str, str]) -> list[str]:
    answer = client.get("/ngsi-ld/v1/entities", params={"type": WATER, "limit": 100}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [entity["id"] for entity in answer.json()]


def _rivers(town: Town, count: int = 4) -> tuple[Platform, TestClient, dict[str, str]]:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    for number in range(count):
        made = client.post("/ngsi-ld/v1/entities", json=river(number, number / 10), headers=bousai)
        assert made.status_code == 201, made.text
    return platform, client, bousai


def test_purge_by_type_id_and_q_deletes_what_matches(town: Town) -> None:  # noqa: F811
    _, client, bousai = _rivers(town)
    purge = client.delete("/ngsi-ld/v1/entities", params={"q": f"{LEVEL}>=0.2"}, headers=bousai)
    assert purge.status_code == 204 and purge.content == b""
    assert _ids(client, bousai) == ["urn:ngsi-ld:WaterObserved:river-000", "urn:ngsi-ld:WaterObserved:river-001"]
    one = {"type": WATER, "id": "urn:ngsi-ld:WaterObserved:river-001"}
    assert client.delete("/ngsi-ld/v1/entities", params=one, headers=bousai).status_code == 204
    assert _ids(client, bousai) == ["urn:ngsi-ld:WaterObserved:river-000"]
    assert client.delete("/ngsi-ld/v1/entities", params={"type": WATER}, headers=bousai).status_code == 204
    assert _ids(client, bousai) == []


def test_purge_drop_and_keep_remove_attributes_only(town: Town) -> None:  # noqa: F811
    _, client, bousai = _rivers(town, 2)
    drop = client.delete("/ngsi-ld/v1/entities", params={"type": WATER, "drop": "name"}, headers=bousai)
    assert drop.status_code == 204
    first = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-000", headers=bousai).json()
    assert "name" not in first and LEVEL in first and "location" in first
    keep = {"id": "urn:ngsi-ld:WaterObserved:river-001", "keep": "location"}
    assert client.delete("/ngsi-ld/v1/entities", params=keep, headers=bousai).status_code == 204
    second = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-001", headers=bousai).json()
    assert set(second) == {"id", "type", "location"}


def test_purge_needs_a_selection_and_not_both_keep_and_drop(town: Town) -> None:  # noqa: F811
    _, client, bousai = _rivers(town, 1)
    for params in ({}, {"type": WATER, "keep": "name", "drop": LEVEL}):
        refused = client.delete("/ngsi-ld/v1/entities", params=params, headers=bousai)
        assert refused.status_code == 400 and refused.json()["type"] == ERRORS + "BadRequestData"
    assert client.delete("/ngsi-ld/v1/entities", params={"local": "true"}, headers=bousai).status_code == 204
    assert _ids(client, bousai) == []


def test_a_purge_never_touches_what_the_caller_may_not_write(town: Town) -> None:  # noqa: F811
    platform, client, bousai = _rivers(town, 2)
    _, other = bearer(platform, client, "aoba-care")
    for params in ({"type": WATER}, {"local": "true"}, {"type": WATER, "drop": "name"}):
        assert client.delete("/ngsi-ld/v1/entities", params=params, headers=other).status_code == 204
    assert _ids(client, bousai) == ["urn:ngsi-ld:WaterObserved:river-000", "urn:ngsi-ld:WaterObserved:river-001"]
    kept = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-000", headers=bousai).json()
    assert "name" in kept


def test_an_unacceptable_accept_is_406_and_an_unsupported_body_415(town: Town) -> None:  # noqa: F811
    _, client, bousai = _rivers(town, 1)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-000"
    assert client.get(url, headers={**bousai, "Accept": "application/xml"}).status_code == 406
    assert client.get(url, headers={**bousai, "Accept": "application/geo+json"}).status_code == 200
    query = {"type": "Query", "entities": [{"type": WATER}]}
    geo = {**bousai, "Accept": "application/geo+json"}
    assert client.post("/ngsi-ld/v1/entityOperations/query", json=query, headers=geo).status_code == 200
    assert client.get(url, headers={**bousai, "Accept": "text/html, */*;q=0.1"}).status_code == 200
    geo_elsewhere = client.get("/ngsi-ld/v1/subscriptions", headers={**bousai, "Accept": "application/geo+json"})
    assert geo_elsewhere.status_code == 406
    sent = client.patch(
        "/ngsi-ld/v1/subscriptions/urn:x:1", content=b"<a/>", headers={**bousai, "Content-Type": "application/xml"}
    )
    assert sent.status_code == 415 and sent.json()["type"] == ERRORS + "InvalidRequest"
    assert client.get(url, headers={"Accept": "application/xml"}).status_code == 406  # before any token check


def test_an_unknown_query_parameter_is_an_invalid_request(town: Town) -> None:  # noqa: F811
    _, client, bousai = _rivers(town, 1)
    for method, path, params in (
        ("GET", "/ngsi-ld/v1/entities", {"type": WATER, "invalidParams": "x"}),
        ("GET", "/ngsi-ld/v1/types", {"invalidParams": "x"}),
        ("GET", "/ngsi-ld/v1/subscriptions", {"invalidParams": "x"}),
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-000", {"options": "keyValues,invalid"}),
    ):
        answer = client.request(method, path, params=params, headers=bousai)
        assert answer.status_code == 400 and answer.json()["type"] == ERRORS + "InvalidRequest", (path, answer.text)
    assert (
        client.get("/ngsi-ld/v1/entities", params={"type": WATER, "local": "true"}, headers=bousai).status_code == 200
    )


def test_replace_or_merge_without_an_id_and_entity_bodies_that_are_not_entities(town: Town) -> None:  # noqa: F811
    _, client, bousai = _rivers(town, 0)
    for method in ("PUT", "PATCH"):
        answer = client.request(method, "/ngsi-ld/v1/entities/", json={"type": WATER}, headers=bousai)
        assert answer.status_code == 400 and answer.json()["type"] == ERRORS + "BadRequestData"
    empty = client.post("/ngsi-ld/v1/entities", json=[], headers=bousai)
    assert empty.status_code == 400 and empty.json()["type"] == ERRORS + "InvalidRequest"
    keyword = client.post("/ngsi-ld/v1/entities", json={"id": "urn:x:1", "type": "type"}, headers=bousai)
    assert keyword.status_code == 400 and keyword.json()["type"] == ERRORS + "BadRequestData"

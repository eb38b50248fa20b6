"""Linked entity retrieval (join=inline|flat, joinLevel) follows only what the caller may see, and scopeQ
selects entities by their scope."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from machimori.platform import Platform

from .test_api import WATER, bearer, town, watched  # noqa: F401

Town = tuple[Platform, TestClient]
NEXT = "https://example.org/nextGauge"


def _gauge(number: int, **more: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:WaterObserved:{number}", "type": WATER, "name": f"gauge {number}", **more}


def _link(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _setup(town: Town) -> tuple[TestClient, dict[str, str]]:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    _, care = bearer(platform, client, "aoba-care")
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    for gauge in (
        _gauge(1, **{NEXT: _link("urn:ngsi-ld:WaterObserved:2")}, scope="/Minato/River/North"),
        _gauge(2, **{NEXT: _link("urn:ngsi-ld:WaterObserved:3")}, scope=["/Minato/River/South", "/Bousai"]),
        _gauge(3, **{NEXT: _link("urn:ngsi-ld:WatchedPosition:1")}),
    ):
        assert client.post("/ngsi-ld/v1/entities", json=gauge, headers=bousai).status_code == 201, gauge
    return client, bousai


def test_inline_flat_and_levels(town: Town) -> None:  # noqa: F811
    client, bousai = _setup(town)
    one = "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:1"
    inline = client.get(one, params={"join": "inline"}, headers=bousai).json()
    assert inline[NEXT]["entity"]["id"] == "urn:ngsi-ld:WaterObserved:2"
    assert "entity" not in inline[NEXT]["entity"][NEXT]  # joinLevel 1
    deeper = client.get(one, params={"join": "inline", "joinLevel": 2}, headers=bousai).json()
    assert deeper[NEXT]["entity"][NEXT]["entity"]["id"] == "urn:ngsi-ld:WaterObserved:3"
    simple = client.get(one, params={"join": "inline", "options": "keyValues"}, headers=bousai).json()
    assert simple[NEXT]["id"] == "urn:ngsi-ld:WaterObserved:2" and simple[NEXT]["name"] == "gauge 2"
    flat = client.get(one, params={"join": "flat", "joinLevel": 2}, headers=bousai).json()
    assert [e["id"] for e in flat] == [f"urn:ngsi-ld:WaterObserved:{n}" for n in (1, 2, 3)]
    query = client.get("/ngsi-ld/v1/entities", params={"type": WATER, "join": "flat"}, headers=bousai).json()
    assert [e["id"] for e in query] == [f"urn:ngsi-ld:WaterObserved:{n}" for n in (1, 2, 3)]
    for params in ({"join": "sideways"}, {"join": "inline", "joinLevel": 0}):
        assert client.get(one, params=params, headers=bousai).status_code == 400


def test_a_linked_entity_the_caller_may_not_see_is_not_joined(town: Town) -> None:  # noqa: F811
    client, bousai = _setup(town)
    three = "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:3"
    inline = client.get(three, params={"join": "inline"}, headers=bousai).json()
    assert inline[NEXT] == _link("urn:ngsi-ld:WatchedPosition:1")  # a resident's watch tag stays a bare id
    flat = client.get(three, params={"join": "flat"}, headers=bousai).json()
    assert [e["id"] for e in flat] == ["urn:ngsi-ld:WaterObserved:3"]


def test_scope_queries(town: Town) -> None:  # noqa: F811
    client, bousai = _setup(town)

    def ids(scope_q: str) -> list[str]:
        found = client.get("/ngsi-ld/v1/entities", params={"scopeQ": scope_q}, headers=bousai)
        assert found.status_code == 200, found.text
        return [e["id"].rsplit(":", 1)[1] for e in found.json()]

    assert ids("/Minato/River/North") == ["1"]
    assert ids("/Minato/+/South") == ["2"]
    assert ids("/Minato/#") == ["1", "2"]
    assert ids("/#") == ["1", "2"]
    assert ids("/Minato/River/South;/Bousai") == ["2"]
    assert ids("/Minato/River/North,/Bousai") == ["1", "2"]
    assert client.get("/ngsi-ld/v1/entities", params={"scopeQ": "Minato"}, headers=bousai).status_code == 400

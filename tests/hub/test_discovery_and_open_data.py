"""Discovery lists only what the caller may read as a dataset; the open-data endpoint serves open datasets
without a token and never a resident's data — not even one written under an open type."""

from __future__ import annotations

from fastapi.testclient import TestClient

from machimori.events.query import EventQuery, find_events
from machimori.platform import Platform

from .test_api import WATCH, WATER, bearer, town, watched  # noqa: F401 (town is a fixture)
from .test_query_api import LEVEL, river

Town = tuple[Platform, TestClient]
RESIDENT = "https://minatomachi.example/ngsi-ld/refResident"


def seed(platform: Platform, client: TestClient) -> dict[str, str]:
    _, bousai = bearer(platform, client, "minato-bousai")
    _, care = bearer(platform, client, "aoba-care")
    for number in range(3):
        assert client.post("/ngsi-ld/v1/entities", json=river(number, 1.0), headers=bousai).status_code == 201
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    return bousai


def test_discovery_lists_readable_types_and_their_attributes_only(town: Town) -> None:  # noqa: F811
    platform, client = town
    seed(platform, client)
    _, reader = bearer(platform, client, "minato-kotsu")
    types = client.get("/ngsi-ld/v1/types", headers=reader).json()
    assert types["type"] == "EntityTypeList" and types["typeList"] == [WATER]
    detailed = client.get("/ngsi-ld/v1/types", params={"details": "true"}, headers=reader).json()
    assert detailed[0]["typeName"] == WATER and LEVEL in detailed[0]["attributeNames"]
    info = client.get(f"/ngsi-ld/v1/types/{WATER}", headers=reader).json()
    assert (
        info["entityCount"] == 3
        and {"attributeName": LEVEL, "attributeTypes": ["Property"]}.items()
        <= next(a for a in info["attributeDetails"] if a["id"] == LEVEL).items()
    )
    assert client.get(f"/ngsi-ld/v1/types/{WATCH}", headers=reader).status_code == 404
    names = client.get("/ngsi-ld/v1/attributes", headers=reader).json()["attributeList"]
    assert (
        LEVEL in names
        and RESIDENT not in names
        and "https://uri.etsi.org/ngsi-ld/default-context/deviceName" not in names
    )
    level = client.get(f"/ngsi-ld/v1/attributes/{LEVEL}", headers=reader).json()
    assert level["attributeCount"] == 3 and level["typeNames"] == [WATER]
    assert client.get(f"/ngsi-ld/v1/attributes/{RESIDENT}", headers=reader).status_code == 404
    assert client.get("/ngsi-ld/v1/types").status_code == 401


def test_open_data_serves_open_datasets_without_a_token(town: Town) -> None:  # noqa: F811
    platform, client = town
    seed(platform, client)
    answer = client.get("/open-data/v1/entities", params={"type": WATER, "count": "true"})
    assert answer.status_code == 200 and answer.headers["NGSILD-Results-Count"] == "3"
    assert client.get("/open-data/v1/entities/urn:ngsi-ld:WaterObserved:river-001").json()[LEVEL]["value"] == 1.0
    assert client.get("/open-data/v1/entities", params={"type": WATCH}).json() == []
    assert client.get("/open-data/v1/entities/urn:ngsi-ld:WatchedPosition:1").status_code == 404


def test_a_residents_data_written_under_an_open_type_is_withheld_and_reported(town: Town) -> None:  # noqa: F811
    platform, client = town
    bousai = seed(platform, client)
    mislabelled = {**river(9, 2.0), RESIDENT: {"type": "Relationship", "object": "urn:ngsi-ld:Resident:hanako"}}
    assert client.post("/ngsi-ld/v1/entities", json=mislabelled, headers=bousai).status_code == 201
    assert client.get("/open-data/v1/entities/urn:ngsi-ld:WaterObserved:river-009").status_code == 404
    listed = client.get("/open-data/v1/entities", params={"type": WATER, "limit": 100}).json()
    assert "urn:ngsi-ld:WaterObserved:river-009" not in [e["id"] for e in listed] and len(listed) == 3
    platform.events.flush()
    assert find_events(platform.database, EventQuery(text="names a resident"))


def test_open_data_is_read_only(town: Town) -> None:  # noqa: F811
    _, client = town
    assert client.post("/open-data/v1/entities", json=river(1, 1.0)).status_code == 405
    assert client.delete("/open-data/v1/entities/urn:ngsi-ld:WaterObserved:river-001").status_code == 405

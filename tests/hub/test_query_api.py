"""Queries through the API: what they select, page and count — only ever what the caller may see, and a
query cannot probe a hidden value."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from machimori.hub.entities import parse_entity
from machimori.platform import Platform
from machimori.storage.tables import hub_entities

from .test_api import PURPOSE, WATCH, WATER, bearer, town, watched  # noqa: F401 (town is a fixture)

Town = tuple[Platform, TestClient]
LEVEL = "https://minatomachi.example/ngsi-ld/waterLevel"


def river(number: int, level: float, lon: float = 139.60, lat: float = 35.40, **more: object) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:WaterObserved:river-{number:03d}",
        "type": WATER,
        LEVEL: {"value": level, "unitCode": "MTR"},
        "name": f"観測所 {number}",
        "location": {"type": "Point", "coordinates": [lon, lat]},
        **more,
    }


def ids(answer: object) -> list[str]:
    assert isinstance(answer, list)
    return [entity["id"] for entity in answer]


@pytest.fixture
def rivers(town: Town) -> tuple[Platform, TestClient, dict[str, str]]:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    for number in range(30):
        made = client.post(
            "/ngsi-ld/v1/entities", json=river(number, number / 10, 139.60 + number / 1000), headers=bousai
        )
        assert made.status_code == 201, made.text
    return platform, client, bousai


def query(client: TestClient, headers: dict[str, str], **params: object) -> list[str]:
    answer = client.get("/ngsi-ld/v1/entities", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return ids(answer.json())


def test_a_typed_query_pages_in_id_order_and_counts(rivers: tuple[Platform, TestClient, dict[str, str]]) -> None:
    _, client, bousai = rivers
    first = client.get("/ngsi-ld/v1/entities", params={"type": WATER, "count": "true"}, headers=bousai)
    assert first.headers["NGSILD-Results-Count"] == "30" and len(first.json()) == 20
    rest = query(client, bousai, type=WATER, offset=20, limit=50)
    assert ids(first.json()) + rest == [f"urn:ngsi-ld:WaterObserved:river-{n:03d}" for n in range(30)]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (f"{LEVEL}>2.5", [26, 27, 28, 29]),
        (f"{LEVEL}==0.1,0.3", [1, 3]),
        (f"{LEVEL}==0.2..0.4", [2, 3, 4]),
        (f'{LEVEL}<0.2;name=="観測所 1"', [1]),
        (f'{LEVEL}>2.8|name=="観測所 0"', [0, 29]),
        ('name~="観測所 2[5-9]"', [25, 26, 27, 28, 29]),
        (f"{LEVEL}!=0", list(range(1, 30))),
        ("!name", []),
        (f'{LEVEL}.unitCode=="FTM"', []),
    ],
)
def test_q_selects(rivers: tuple[Platform, TestClient, dict[str, str]], q: str, expected: list[int]) -> None:
    _, client, bousai = rivers
    assert query(client, bousai, type=WATER, q=q, limit=100) == [
        f"urn:ngsi-ld:WaterObserved:river-{n:03d}" for n in expected
    ]


def test_geo_queries_near_within_intersects(rivers: tuple[Platform, TestClient, dict[str, str]]) -> None:
    _, client, bousai = rivers
    near = query(
        client, bousai, type=WATER, georel="near;maxDistance==250", geometry="Point", coordinates="[139.6,35.4]"
    )
    assert near == [f"urn:ngsi-ld:WaterObserved:river-{n:03d}" for n in range(3)]  # 1/1000° of longitude ≈ 91 m
    square = "[[[139.6195,35.39],[139.6295,35.39],[139.6295,35.41],[139.6195,35.41],[139.6195,35.39]]]"
    within = query(client, bousai, type=WATER, georel="within", geometry="Polygon", coordinates=square)
    assert within == [f"urn:ngsi-ld:WaterObserved:river-{n:03d}" for n in range(20, 30)]
    line = "[[139.6045,35.3],[139.6045,35.5]]"
    assert query(client, bousai, type=WATER, georel="intersects", geometry="LineString", coordinates=line) == []
    assert query(
        client, bousai, type=WATER, georel="near;minDistance==2600", geometry="Point", coordinates="[139.6,35.4]"
    ) == ["urn:ngsi-ld:WaterObserved:river-029"]


def test_post_query_selects_by_entities_and_q(rivers: tuple[Platform, TestClient, dict[str, str]]) -> None:
    _, client, bousai = rivers
    body = {
        "type": "Query",
        "entities": [
            {"type": WATER, "idPattern": "river-00[12]$"},
            {"type": WATER, "id": "urn:ngsi-ld:WaterObserved:river-020"},
        ],
        "q": f"{LEVEL}>0.1",
    }
    answer = client.post("/ngsi-ld/v1/entityOperations/query", json=body, headers=bousai)
    assert answer.status_code == 200, answer.text
    assert ids(answer.json()) == ["urn:ngsi-ld:WaterObserved:river-002", "urn:ngsi-ld:WaterObserved:river-020"]


def test_an_entity_of_several_types_is_found_by_each(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    both = {**river(1, 1.0), "type": [WATER, "https://example.org/Gauge"]}
    refused = client.post("/ngsi-ld/v1/entities", json=both, headers=bousai)
    assert refused.status_code == 400 and refused.json()["rule"] == "owner-write"  # a type nobody owns: no writer
    hub = client.app.state.hub
    hub.store.create("", parse_entity(both, hub.contexts.active(None), now="2026-12-01T00:00:00Z"))
    assert query(client, bousai, type="https://example.org/Gauge") == ["urn:ngsi-ld:WaterObserved:river-001"]
    assert query(client, bousai, type=f"{WATER};https://example.org/Gauge") == ["urn:ngsi-ld:WaterObserved:river-001"]
    assert query(client, bousai, type=f"{WATER};https://example.org/Other") == []


def test_hidden_entities_are_left_out_and_not_counted(rivers: tuple[Platform, TestClient, dict[str, str]]) -> None:
    platform, client, _ = rivers
    _, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    for number in range(3):
        entity = watched(f"urn:ngsi-ld:WatchedPosition:{number}")
        assert client.post("/ngsi-ld/v1/entities", json=entity, headers=care).status_code == 201
    answer = client.get("/ngsi-ld/v1/entities", params={"type": WATCH, "count": "true"}, headers=bus)
    assert answer.status_code == 200 and answer.json() == [] and answer.headers["NGSILD-Results-Count"] == "0"
    everything = client.get("/ngsi-ld/v1/entities", params={"attrs": "location", "limit": 100}, headers=bus).json()
    assert all(entity["type"] == WATER for entity in everything) and len(everything) == 30


def test_a_query_cannot_probe_a_personal_attribute_without_consent(town: Town) -> None:  # noqa: F811
    platform, client = town
    care_id, care = bearer(platform, client, "aoba-care")
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    reader = {**care, "Data-Purpose": PURPOSE}
    probes = {"type": WATCH, "georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[139.6,35.4]"}
    assert query(client, reader, **probes) == []  # location is hidden: it cannot match
    assert query(client, reader, type=WATCH, q="!location") == ["urn:ngsi-ld:WatchedPosition:1"]  # absent as seen
    platform.consent.give("hanako", care_id, PURPOSE)
    assert query(client, reader, **probes) == ["urn:ngsi-ld:WatchedPosition:1"]
    seen = client.get("/ngsi-ld/v1/entities", params={"type": WATCH}, headers=reader).json()
    assert seen[0]["location"]["value"]["coordinates"] == [139.6, 35.4]
    platform.consent.withdraw("hanako", care_id, PURPOSE)
    assert query(client, reader, **probes) == []
    assert "location" not in client.get("/ngsi-ld/v1/entities", params={"type": WATCH}, headers=reader).json()[0]


def test_another_tenant_is_never_queried(rivers: tuple[Platform, TestClient, dict[str, str]]) -> None:
    _, client, bousai = rivers
    assert query(client, {**bousai, "NGSILD-Tenant": "other"}, type=WATER) == []


INJECTIONS = ["x' OR '1'='1", 'x"; DROP TABLE hub_entities; --', "x) OR (1=1", "%' --", "\\' ; SELECT 1"]


@pytest.mark.parametrize("parameter", ["type", "id", "idPattern", "attrs", "q", "georel", "coordinates", "geoproperty"])
def test_sql_metacharacters_in_any_parameter_are_refused_or_inert(
    rivers: tuple[Platform, TestClient, dict[str, str]], parameter: str
) -> None:
    platform, client, bousai = rivers
    for injected in INJECTIONS:
        params = {"type": WATER, parameter: injected}
        if parameter in ("georel", "coordinates", "geoproperty"):
            params = {"type": WATER, "georel": "within", "geometry": "Point", "coordinates": "[139.6,35.4]"}
            params[parameter] = injected
        answer = client.get("/ngsi-ld/v1/entities", params=params, headers=bousai)
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 200:
            assert len(answer.json()) <= 20 and all(e["type"] == WATER for e in answer.json())
        else:
            assert answer.json()["type"].endswith("BadRequestData")
    with platform.database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(hub_entities)).scalar_one() == 30


@pytest.mark.parametrize(
    "params",
    [
        {"id": "urn:ngsi-ld:WaterObserved:river-001"},
        {"type": WATER, "limit": 1001},
        {"type": WATER, "limit": 0},
        {"type": WATER, "offset": -1},
        {"type": WATER, "georel": "near", "geometry": "Point", "coordinates": "[139.6,35.4]"},
        {"type": WATER, "georel": "within", "geometry": "Polygon", "coordinates": "[1,2]"},
        {"type": WATER, "georel": "within", "geometry": "Circle", "coordinates": "[1,2]"},
        {"type": WATER, "idPattern": "("},
        {"type": WATER, "q": "name~=^(a|aa)+$;name=="},
    ],
)
def test_bad_queries_are_bad_request_data(
    rivers: tuple[Platform, TestClient, dict[str, str]], params: dict[str, object]
) -> None:
    _, client, bousai = rivers
    answer = client.get("/ngsi-ld/v1/entities", params=params, headers=bousai)
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"].endswith("BadRequestData")

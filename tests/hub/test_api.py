"""The NGSI-LD entities API with a token: the owner writes, others see only what policy and consent allow,
and an entity they may not see is simply not found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from machimori.config import load_settings
from machimori.consent.access import accesses_of
from machimori.consent.purposes import DPV
from machimori.governance.workflow import example_town
from machimori.identity.oauth.clients import register_client
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN

WATCH = "https://minatomachi.example/ngsi-ld/WatchedPosition"
WATER = "https://smartdatamodels.org/dataModel.Environment/WaterObserved"
PURPOSE = DPV + "ServiceProvision"


@pytest.fixture
def town(tmp_path: Path, database_url: str) -> Iterator[tuple[Platform, TestClient]]:
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        city_model=example_town(),
    )
    platform = open_platform(settings)
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as client:
        yield platform, client


def bearer(
    platform: Platform, client: TestClient, org: str, scope: str = "city:read city:write personal:read"
) -> tuple[str, dict[str, str]]:
    client_id, secret = register_client(
        platform.database, f"{org} app", org=org, grant_types=["client_credentials"], scope=scope
    )
    assert secret is not None
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)).json()
    return client_id, {"Authorization": f"Bearer {token['access_token']}"}


def watched(entity_id: str = "urn:ngsi-ld:WatchedPosition:1", resident: str = "hanako") -> dict[str, object]:
    return {
        "id": entity_id,
        "type": WATCH,
        "location": {"type": "Point", "coordinates": [139.6, 35.4]},
        "https://minatomachi.example/ngsi-ld/refResident": {"object": f"urn:ngsi-ld:Resident:{resident}"},
        "deviceName": "見守りタグ 7",
    }


def test_the_owner_creates_and_a_consented_service_reads_until_withdrawal(town: tuple[Platform, TestClient]) -> None:
    platform, client = town
    _, care = bearer(platform, client, "aoba-care")
    created = client.post("/ngsi-ld/v1/entities", json=watched(), headers=care)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1"
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).json()["type"].endswith("AlreadyExists")
    reader = {**care, "Data-Purpose": PURPOSE}
    care_id = platform.oauth.verify_access_token(care["Authorization"].split()[1]).client_id
    assert "location" not in client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1", headers=reader).json()
    platform.consent.give("hanako", care_id, PURPOSE)
    seen = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1", headers=reader).json()
    assert seen["location"]["value"]["coordinates"] == [139.6, 35.4] and seen["deviceName"]["value"] == "見守りタグ 7"
    platform.consent.withdraw("hanako", care_id, PURPOSE)
    seen = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1", headers=reader).json()
    assert "location" not in seen and "deviceName" in seen
    history = [(access["service"], access["permitted"]) for access in accesses_of(platform.database, "hanako")]
    assert history[:3] == [(care_id, False), (care_id, True), (care_id, False)]  # newest first, each audit-logged


def test_another_organisation_gets_not_found_and_cannot_write(town: tuple[Platform, TestClient]) -> None:
    platform, client = town
    _, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    client.post("/ngsi-ld/v1/entities", json=watched(), headers=care)
    hidden = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1", headers=bus)
    assert hidden.status_code == 404 and hidden.json()["type"].endswith("ResourceNotFound")
    assert client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1", headers=bus).status_code == 404
    forged = client.post("/ngsi-ld/v1/entities", json=watched("urn:ngsi-ld:WatchedPosition:2"), headers=bus)
    assert forged.status_code == 400 and forged.json()["rule"] == "owner-write"


def test_an_id_claiming_an_open_type_is_decided_on_the_stored_type(town: tuple[Platform, TestClient]) -> None:
    platform, client = town
    _, care = bearer(platform, client, "aoba-care")
    _, anyone = bearer(platform, client, "elsewhere")
    client.post("/ngsi-ld/v1/entities", json=watched("urn:ngsi-ld:WaterObserved:open-1"), headers=care)
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:open-1", headers=anyone).status_code == 404
    _, bousai = bearer(platform, client, "minato-bousai")
    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": {"value": 1.2, "unitCode": "MTR"}}
    assert client.post("/ngsi-ld/v1/entities", json=water, headers=bousai).status_code == 201
    assert (
        client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers=anyone).json()["waterLevel"][
            "value"
        ]
        == 1.2
    )


def test_tenants_are_apart(town: tuple[Platform, TestClient]) -> None:
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": 1.2}
    assert (
        client.post("/ngsi-ld/v1/entities", json=water, headers={**bousai, "NGSILD-Tenant": "minato"}).status_code
        == 201
    )
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers=bousai).status_code == 404
    assert (
        client.get(
            "/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers={**bousai, "NGSILD-Tenant": "minato"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "InvalidRequest"),
        (
            b'{"id": "urn:x:1", "type": "T", "@context": "https://example.org/c.jsonld"}',
            "application/json",
            400,
            "BadRequestData",
        ),
        (
            b'{"id": "urn:x:1", "type": "T", "@context": "https://example.org/c.jsonld"}',
            "application/ld+json",
            503,
            "LdContextNotAvailable",
        ),
        (b'{"id": "urn:x:1", "type": "T"}', "text/plain", 415, "InvalidRequest"),
        (b'{"id": "no uri", "type": "T"}', "application/json", 400, "BadRequestData"),
    ],
)
def test_bad_input_gets_etsi_errors_never_a_500(
    town: tuple[Platform, TestClient], content: bytes, content_type: str, status: int, error: str
) -> None:
    platform, client = town
    _, care = bearer(platform, client, "aoba-care")
    answer = client.post("/ngsi-ld/v1/entities", content=content, headers={**care, "Content-Type": content_type})
    assert answer.status_code == status, answer.text
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/" + error


def test_without_a_token_nothing_happens(town: tuple[Platform, TestClient]) -> None:
    _, client = town
    assert client.post("/ngsi-ld/v1/entities", json=watched()).status_code == 401
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1").status_code == 401


def test_a_create_cannot_smuggle_in_another_organisations_type(town: tuple[Platform, TestClient]) -> None:
    platform, client = town
    _, care = bearer(platform, client, "aoba-care")
    both = {**watched("urn:ngsi-ld:WatchedPosition:7"), "type": [WATCH, WATER]}
    refused = client.post("/ngsi-ld/v1/entities", json=both, headers=care)
    assert refused.status_code == 400 and refused.json()["rule"] == "owner-write"
    _, bousai = bearer(platform, client, "minato-bousai")
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:7", headers=bousai).status_code == 404
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:7", headers=care).status_code == 404


def test_ids_with_a_trailing_slash_and_batch_bodies_over_a_megabyte(town: tuple[Platform, TestClient]) -> None:
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    water = {"id": "urn:ngsi-ld:WaterObserved:slash", "type": WATER, "waterLevel": 1.0}
    assert client.post("/ngsi-ld/v1/entities/", json=water, headers=bousai).status_code == 201
    many = [
        {"id": f"urn:ngsi-ld:WaterObserved:{n}", "type": WATER, "note": "x" * 200, "waterLevel": n} for n in range(6000)
    ]
    assert client.post("/ngsi-ld/v1/entityOperations/upsert", json=many, headers=bousai).status_code in (201, 204)
    assert (
        client.post("/ngsi-ld/v1/entities", content=b"{" + b" " * 1_100_000 + b"}", headers=bousai).status_code == 413
    )

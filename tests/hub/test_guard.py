"""Guard mode: a second machimori hub process (conformance setting on, no city model) is the upstream
broker; the guard in front of it authenticates, decides writes on the stored type and filters reads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from machimori.config import load_settings
from machimori.consent.purposes import DPV
from machimori.governance.workflow import example_town
from machimori.hub.guard import install_guard
from machimori.hub.upstream import Upstream
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN
from .test_api import WATCH, WATER, bearer, watched

PURPOSE = DPV + "ServiceProvision"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def upstream_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A machimori hub in its own process, taking requests without a token (conformance setting)."""
    data = tmp_path_factory.mktemp("upstream")
    port = _free_port()
    environ = {
        **os.environ,
        "MACHIMORI_HUB_CONFORMANCE_TENANT": "up",
        "MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN,
        "MACHIMORI_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "machimori.cli", "serve", "--data-dir", str(data), "--port", str(port)]
    log = (data / "server.log").open("wb")
    server = subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the upstream hub did not start: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for each test (the upstream is shared by the module)."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def guard(tmp_path: Path, database_url: str, upstream_url: str) -> Iterator[tuple[Platform, TestClient]]:
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        city_model=example_town(),
        guard_upstream=upstream_url,
    )
    platform = open_platform(settings)

    def guarding(app: FastAPI, opened: Platform) -> None:
        install_guard(app, opened, Upstream(upstream_url))

    app = create_app(platform, ngsi_ld=guarding)
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        yield platform, client


def upstream_get(upstream_url: str, tenant: str, entity_id: str) -> httpx.Response:
    """The entity as the upstream itself has it (no guard, no token: its conformance setting)."""
    return httpx.get(f"{upstream_url}/ngsi-ld/v1/entities/{entity_id}", headers={"NGSILD-Tenant": tenant})


def test_without_a_token_nothing_reaches_the_upstream(guard: tuple[Platform, TestClient], upstream_url: str) -> None:
    _, client = guard
    assert client.post("/ngsi-ld/v1/entities", json=watched()).status_code == 401
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WatchedPosition:1").status_code == 401
    assert client.get("/ngsi-ld/v1/subscriptions").status_code == 401
    assert upstream_get(upstream_url, "", "urn:ngsi-ld:WatchedPosition:1").status_code == 404


def test_the_owner_writes_and_another_organisation_cannot(
    guard: tuple[Platform, TestClient], upstream_url: str, tenant: str
) -> None:
    platform, client = guard
    _, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    care, bus = {**care, "NGSILD-Tenant": tenant}, {**bus, "NGSILD-Tenant": tenant}
    entity = "urn:ngsi-ld:WatchedPosition:1"
    created = client.post("/ngsi-ld/v1/entities", json=watched(), headers=care)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/ngsi-ld/v1/entities/{entity}"
    assert upstream_get(upstream_url, tenant, entity).json()["deviceName"]["value"] == "見守りタグ 7"

    forged = client.post("/ngsi-ld/v1/entities", json=watched("urn:ngsi-ld:WatchedPosition:2"), headers=bus)
    assert forged.status_code == 400 and forged.json()["rule"] == "owner-write"
    changed = {"deviceName": {"type": "Property", "value": "乗っ取り"}}
    assert client.patch(f"/ngsi-ld/v1/entities/{entity}/attrs", json=changed, headers=bus).status_code == 404
    assert client.post(f"/ngsi-ld/v1/entities/{entity}/attrs", json=changed, headers=bus).status_code == 404
    replaced = {"type": WATER, "waterLevel": 1.0}
    assert client.put(f"/ngsi-ld/v1/entities/{entity}", json=replaced, headers=bus).status_code == 404
    assert client.delete(f"/ngsi-ld/v1/entities/{entity}/attrs/deviceName", headers=bus).status_code == 404
    assert client.delete(f"/ngsi-ld/v1/entities/{entity}", headers=bus).status_code == 404
    batch = client.post("/ngsi-ld/v1/entityOperations/delete", json=[entity], headers=bus)
    assert batch.status_code == 207 and batch.json()["errors"][0]["entityId"] == entity
    stored = upstream_get(upstream_url, tenant, entity)
    assert stored.status_code == 200 and stored.json()["deviceName"]["value"] == "見守りタグ 7"  # unchanged
    assert upstream_get(upstream_url, tenant, "urn:ngsi-ld:WatchedPosition:2").status_code == 404

    assert client.delete(f"/ngsi-ld/v1/entities/{entity}", headers=care).status_code == 204
    assert upstream_get(upstream_url, tenant, entity).status_code == 404


def test_a_reader_sees_only_what_consent_allows_and_a_hidden_entity_is_not_found(
    guard: tuple[Platform, TestClient], upstream_url: str, tenant: str
) -> None:
    platform, client = guard
    care_id, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    care, bus = {**care, "NGSILD-Tenant": tenant}, {**bus, "NGSILD-Tenant": tenant}
    entity = "urn:ngsi-ld:WatchedPosition:1"
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    reader = {**care, "Data-Purpose": PURPOSE}

    seen = client.get(f"/ngsi-ld/v1/entities/{entity}", headers=reader).json()
    assert "location" not in seen and seen["deviceName"]["value"] == "見守りタグ 7"
    platform.consent.give("hanako", care_id, PURPOSE)
    seen = client.get(f"/ngsi-ld/v1/entities/{entity}", headers=reader).json()
    assert seen["location"]["value"]["coordinates"] == [139.6, 35.4]
    key_values = client.get(f"/ngsi-ld/v1/entities/{entity}?options=keyValues", headers=reader).json()
    assert key_values["deviceName"] == "見守りタグ 7"
    platform.consent.withdraw("hanako", care_id, PURPOSE)
    assert "location" not in client.get(f"/ngsi-ld/v1/entities/{entity}", headers=reader).json()

    assert upstream_get(upstream_url, tenant, entity).status_code == 200  # the upstream has it, yet:
    hidden = client.get(f"/ngsi-ld/v1/entities/{entity}", headers=bus)
    assert hidden.status_code == 404 and hidden.json()["type"].endswith("ResourceNotFound")

    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": 1.2}
    _, bousai = bearer(platform, client, "minato-bousai")
    assert (
        client.post("/ngsi-ld/v1/entities", json=water, headers={**bousai, "NGSILD-Tenant": tenant}).status_code == 201
    )
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers=bus).status_code == 200

    query = {"type": "Query", "entities": [{"type": WATCH}, {"type": WATER}]}
    listed = client.post("/ngsi-ld/v1/entityOperations/query", json=query, headers=bus)
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()] == ["urn:ngsi-ld:WaterObserved:river-1"]
    listed = client.post("/ngsi-ld/v1/entityOperations/query", json=query, headers=reader).json()
    assert sorted(e["id"] for e in listed) == [entity, "urn:ngsi-ld:WaterObserved:river-1"]
    assert all("location" not in e for e in listed)


def test_a_query_leaves_hidden_entities_out_and_passes_no_count(
    guard: tuple[Platform, TestClient], tenant: str
) -> None:
    platform, client = guard
    _, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    care, bus = {**care, "NGSILD-Tenant": tenant}, {**bus, "NGSILD-Tenant": tenant}
    for n in range(3):
        assert client.post("/ngsi-ld/v1/entities", json=watched(f"urn:ngsi-ld:WatchedPosition:{n}"), headers=care)
    answer = client.get("/ngsi-ld/v1/entities", params={"type": WATCH, "count": "true"}, headers=bus)
    assert answer.status_code == 200, answer.text
    assert answer.json() == [] and "ngsild-results-count" not in answer.headers
    mine = client.get("/ngsi-ld/v1/entities", params={"type": WATCH, "count": "true"}, headers=care)
    assert len(mine.json()) == 3 and "ngsild-results-count" not in mine.headers


def test_an_id_claiming_an_open_type_is_decided_on_the_stored_type(
    guard: tuple[Platform, TestClient], upstream_url: str, tenant: str
) -> None:
    platform, client = guard
    _, care = bearer(platform, client, "aoba-care")
    _, anyone = bearer(platform, client, "elsewhere")
    care, anyone = {**care, "NGSILD-Tenant": tenant}, {**anyone, "NGSILD-Tenant": tenant}
    disguised = "urn:ngsi-ld:OpenThing:1"
    assert client.post("/ngsi-ld/v1/entities", json=watched(disguised), headers=care).status_code == 201
    assert client.get(f"/ngsi-ld/v1/entities/{disguised}", headers=anyone).status_code == 404
    assert client.delete(f"/ngsi-ld/v1/entities/{disguised}", headers=anyone).status_code == 404
    changed = {"deviceName": "乗っ取り"}
    assert client.patch(f"/ngsi-ld/v1/entities/{disguised}/attrs", json=changed, headers=anyone).status_code == 404
    assert upstream_get(upstream_url, tenant, disguised).json()["deviceName"]["value"] == "見守りタグ 7"


def test_subscriptions_and_other_resources_are_refused_clearly(guard: tuple[Platform, TestClient]) -> None:
    platform, client = guard
    _, care = bearer(platform, client, "aoba-care")
    subscription = {
        "type": "Subscription",
        "entities": [{"type": WATCH}],
        "notification": {"endpoint": {"uri": "http://x"}},
    }
    refused = client.post("/ngsi-ld/v1/subscriptions", json=subscription, headers=care)
    assert refused.status_code == 422 and refused.json()["type"].endswith("OperationNotSupported")
    assert "notify" in refused.json()["detail"]
    assert client.get("/ngsi-ld/v1/types", headers=care).json()["type"].endswith("OperationNotSupported")


def test_an_unreachable_upstream_is_a_502(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN)
    platform = open_platform(settings)
    dead = f"http://127.0.0.1:{_free_port()}"
    app = create_app(platform, ngsi_ld=lambda app, opened: install_guard(app, opened, Upstream(dead)))
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        _, care = bearer(platform, client, "aoba-care")
        answer = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:X:1", headers=care)
        assert answer.status_code == 502 and answer.json()["type"].endswith("InternalError")


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ([], "--upstream"),
        (["--upstream", "ftp://broker"], "http(s)"),
        (["--upstream", "http://b", "--host", "0.0.0.0"], "loopback"),
    ],
)
def test_the_cli_says_what_is_wrong_in_one_line(tmp_path: Path, arguments: list[str], says: str) -> None:
    environ = {**os.environ, "MACHIMORI_DATA_DIR": str(tmp_path)}
    environ.pop("MACHIMORI_GUARD_UPSTREAM", None)
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", "guard", *arguments],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr

"""The conformance test setting: off by default; when on, requests without a token are served in test
tenants only, where the decision point still protects what the city model claims."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from machimori.config import Settings, load_settings
from machimori.diagnostics import InputError
from machimori.events.query import EventQuery, find_events
from machimori.governance.workflow import example_town
from machimori.hub.conformance import ORGANISATION, SEPARATOR, ConformanceCatalogue, tenant_for
from machimori.hub.requests import tenant_of
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN
from .test_api import WATER, bearer, watched

OPEN_THING = "https://example.org/conformance/OpenThing"


def _settings(tmp_path: Path, database_url: str, **extra: Any) -> Settings:
    return load_settings(
        environ={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        city_model=example_town(),
        **extra,
    )


@pytest.fixture
def suite(tmp_path: Path, database_url: str) -> Iterator[tuple[Platform, TestClient]]:
    platform = open_platform(_settings(tmp_path, database_url, hub_conformance_tenant="etsi"))
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as client:
        yield platform, client


def thing(entity_id: str = "urn:ngsi-ld:OpenThing:1") -> dict[str, object]:
    return {"id": entity_id, "type": OPEN_THING, "temperature": {"value": 21.5}}


def test_off_by_default(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    assert settings.hub_conformance_tenant is None
    platform = open_platform(settings)
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as client:
        assert client.post("/ngsi-ld/v1/entities", json=thing()).status_code == 401
        assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OpenThing:1").status_code == 401


def test_the_environment_turns_it_on_and_an_empty_value_leaves_it_off(tmp_path: Path) -> None:
    on = load_settings(environ={"MACHIMORI_HUB_CONFORMANCE_TENANT": "etsi"}, data_dir=tmp_path)
    assert on.hub_conformance_tenant == "etsi"
    assert (
        load_settings(environ={"MACHIMORI_HUB_CONFORMANCE_TENANT": ""}, data_dir=tmp_path).hub_conformance_tenant
        is None
    )
    with pytest.raises(InputError):  # the name itself must be a plain tenant-like name
        load_settings(environ={"MACHIMORI_HUB_CONFORMANCE_TENANT": "a~b"}, data_dir=tmp_path)


def test_without_a_token_the_suite_creates_and_reads_in_its_test_tenant(suite: tuple[Platform, TestClient]) -> None:
    _, client = suite
    created = client.post("/ngsi-ld/v1/entities", json=thing())
    assert created.status_code == 201, created.text
    read = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OpenThing:1")
    assert read.status_code == 200 and read.json()["temperature"]["value"] == 21.5
    tenant = client.post("/ngsi-ld/v1/entities", json=thing(), headers={"NGSILD-Tenant": "t1"})
    assert tenant.status_code == 201  # another test tenant: the same id again
    store = client.app.state.hub.store  # type: ignore[attr-defined]
    assert store.get("etsi" + SEPARATOR, "urn:ngsi-ld:OpenThing:1") is not None
    assert store.get("etsi" + SEPARATOR + "t1", "urn:ngsi-ld:OpenThing:1") is not None
    assert store.get("", "urn:ngsi-ld:OpenThing:1") is None and store.get("t1", "urn:ngsi-ld:OpenThing:1") is None


def test_an_invalid_or_empty_authorization_is_still_refused(suite: tuple[Platform, TestClient]) -> None:
    _, client = suite
    for header in ("Bearer not-a-token", "", "Basic eDp5"):
        assert client.post("/ngsi-ld/v1/entities", json=thing(), headers={"Authorization": header}).status_code == 401


def test_the_suite_cannot_read_or_touch_a_real_tenant(suite: tuple[Platform, TestClient]) -> None:
    platform, client = suite
    _, bousai = bearer(platform, client, "minato-bousai")
    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": 1.2}
    assert client.post("/ngsi-ld/v1/entities", json=water, headers=bousai).status_code == 201
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers=bousai).status_code == 200
    # open data of the city, yet not there for the suite: it lives in another tenant
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1").status_code == 404
    assert client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1").status_code == 404
    assert client.post("/ngsi-ld/v1/entities", json=thing()).status_code == 201
    # and what the suite wrote is not in the real default tenant
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:OpenThing:1", headers=bousai).status_code == 404
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers=bousai).status_code == 200


def test_a_personal_type_of_the_city_model_stays_protected_in_the_test_tenant(
    suite: tuple[Platform, TestClient],
) -> None:
    _, client = suite
    refused = client.post("/ngsi-ld/v1/entities", json=watched())
    assert refused.status_code == 400 and refused.json()["rule"] == "owner-write"
    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": 1.2}
    assert client.post("/ngsi-ld/v1/entities", json=water).json()["rule"] == "owner-write"  # claimed: not the suite's


def test_a_claimed_type_is_classified_as_the_city_model_says() -> None:
    from machimori.hub.catalogue import Catalogue, Classification
    from machimori.policy import DataType

    personal = Classification("watch", DataType.personal, "aoba-care")
    catalogue = ConformanceCatalogue(Catalogue({"https://x/Watch": personal}))
    assert catalogue.classify(["https://x/Watch"]) is personal
    assert catalogue.classify(["https://x/Watch", "https://x/Other"]) is personal
    assert catalogue.classify(["https://x/Other"]) == Classification(None, DataType.open, ORGANISATION)


@pytest.mark.parametrize("tenant", ["", "t1", "etsi", "a" * 64, "a" * 63 + "b", "x-y_z"])
def test_test_tenants_never_collide_with_real_ones_or_each_other(tenant: str) -> None:
    mapped = tenant_for("etsi", tenant)
    assert len(mapped) <= 64 and SEPARATOR in mapped
    with pytest.raises(Exception, match="NGSILD-Tenant"):
        tenant_of(mapped)  # no real tenant header names it
    others = {tenant_for("etsi", t) for t in ["", "t1", "etsi", "a" * 64, "a" * 63 + "b", "x-y_z"] if t != tenant}
    assert mapped not in others
    assert tenant_for("etsi" + "x" * 12, tenant) != tenant_for("etsi" + "x" * 12, tenant + "_") or tenant == ""


def test_startup_is_loud(tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    platform = open_platform(_settings(tmp_path, database_url, hub_conformance_tenant="etsi"))
    with caplog.at_level(logging.WARNING, logger="machimori.hub.conformance"):
        create_app(platform)
    assert any("conformance test mode is ON" in record.message for record in caplog.records)
    platform.events.flush()
    events = find_events(platform.database, EventQuery(class_uid=6003, text="conformance test mode is ON"))
    platform.close()
    assert len(events) == 1 and events[0]["severity_id"] == 4


def test_refused_on_a_public_address(tmp_path: Path, database_url: str) -> None:
    public = _settings(tmp_path, database_url, hub_conformance_tenant="etsi", host="0.0.0.0", behind_tls_proxy=True)
    for settings in (public, _settings(tmp_path, database_url, hub_conformance_tenant="etsi", behind_tls_proxy=True)):
        platform = open_platform(settings)
        try:
            with pytest.raises(InputError, match="loopback"):
                create_app(platform)
        finally:
            platform.close()


def test_the_cli_refuses_a_public_bind_in_one_line(tmp_path: Path) -> None:
    environ = {**os.environ, "MACHIMORI_HUB_CONFORMANCE_TENANT": "etsi", "MACHIMORI_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", "serve", "--host", "0.0.0.0", "--behind-tls-proxy"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "loopback" in lines[0], result.stderr

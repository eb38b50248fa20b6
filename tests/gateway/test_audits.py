"""Offline device audits over a registry of real devices: shared keys, clashing MQTT client ids, key age,
firmware against the vendor's minimum, default and weak management logins; retired devices left out."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from machimori.clock import utc_now
from machimori.config import load_settings
from machimori.events import EventClass
from machimori.gateway.audits import Finding, audit_devices
from machimori.gateway.registry import DeviceKey, NewDevice, Registry
from machimori.gateway.service import open_registry
from machimori.identity.tokens import Role, create_token
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN
from .conftest import b64, public_bytes, register, stored_events

MODELS = """
models:
  - id: acme-cam
    vendor: acme
    name: {ja: ACME カメラ, en: ACME camera}
    entity_type: https://smartdatamodels.org/dataModel.Device/DeviceMeasurement
    firmware_minimum: "2.10.0"
    key_lifetime_days: 90
    measurements:
      frameRate: {type: integer, min: 0, max: 60}
    default_logins:
      - {username: service, password: acme-cam-2019}
"""


@pytest.fixture
def audited(tmp_path: Path, database_url: str) -> Iterator[tuple[Platform, TestClient]]:
    """A platform whose operator added a vendor's model (firmware minimum, a factory-default login)."""
    models = tmp_path / "models.yaml"
    models.write_text(MODELS, encoding="utf-8")
    settings = load_settings(
        environ={}, data_dir=tmp_path / "data", database_url=database_url, admin_token=ADMIN_TOKEN, device_models=models
    )
    platform = open_platform(settings)
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as client:
        yield platform, client


def registry_of(client: TestClient) -> Registry:
    registry: Registry = client.app.state.assets.registry  # type: ignore[attr-defined]
    return registry


def found(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(finding.check, finding.device_id) for finding in findings}


def test_keys_shared_by_devices_and_clashing_mqtt_client_ids_are_found(
    audited: tuple[Platform, TestClient], admin: dict[str, str]
) -> None:
    _, client = audited
    copied = Ed25519PrivateKey.generate()  # one key flashed into two devices
    register(client, admin, "aq-a", key=copied)
    register(client, admin, "aq-b", key=copied)
    secret = os.urandom(32)
    register(client, admin, "tiny-a", key=secret)
    register(client, admin, "tiny-b", key=secret)
    register(client, admin, "mq-a", protocol="mqtt")  # its client id is its device id
    register(client, admin, "mq-b", protocol="mqtt", mqtt_client_id="mq-a")
    register(client, admin, "web-a", protocol="http")
    register(client, admin, "web-b", protocol="http")  # HTTP devices have no client id to clash
    findings = audit_devices(registry_of(client))
    assert found(findings) == {
        ("shared-key", "aq-a"),
        ("shared-key", "aq-b"),
        ("shared-key", "tiny-a"),
        ("shared-key", "tiny-b"),
        ("conflicting-mqtt-client-id", "mq-a"),
        ("conflicting-mqtt-client-id", "mq-b"),
    }
    related = {(f.check, f.device_id): f.related for f in findings}
    assert related["shared-key", "aq-a"] == ("aq-b",) and related["shared-key", "tiny-b"] == ("tiny-a",)
    assert related["conflicting-mqtt-client-id", "mq-b"] == ("mq-a",)

    # rotating one of the copies ends the finding
    client.post(
        "/api/v1/devices/aq-b/key", json={"public_key": b64(public_bytes(Ed25519PrivateKey.generate()))}, headers=admin
    )
    assert ("shared-key", "aq-a") not in found(audit_devices(registry_of(client)))


def test_key_age_is_judged_at_the_time_asked(audited: tuple[Platform, TestClient], admin: dict[str, str]) -> None:
    _, client = audited
    registry = registry_of(client)
    start = utc_now()
    key = DeviceKey.ed25519(public_bytes(Ed25519PrivateKey.generate()))
    registry.add(
        NewDevice(
            "aq-expiring",
            "air-quality-sensor",
            "minato-city",
            key,
            vendor="acme",
            key_expires_at=start + dt.timedelta(days=100),
        ),
        "test",
    )
    register(client, admin, "cam-young", model="acme-cam", firmware="2.10.0")  # its model: keys live 90 days

    def checks(days: float) -> set[tuple[str, str]]:
        return found(audit_devices(registry, now=start + dt.timedelta(days=days)))

    assert checks(0) == set()
    assert checks(80) == {("key-expiring", "aq-expiring")}
    assert checks(91) == {("key-expiring", "aq-expiring"), ("key-too-old", "cam-young")}
    assert checks(101) == {("key-expired", "aq-expiring"), ("key-too-old", "cam-young")}
    assert checks(366) == {("key-expired", "aq-expiring"), ("key-too-old", "cam-young")}
    expired = [f for f in audit_devices(registry, now=start + dt.timedelta(days=101)) if f.check == "key-expired"]
    assert expired[0].severity.name == "HIGH"


def test_firmware_is_compared_with_the_vendors_minimum_as_numbers(
    audited: tuple[Platform, TestClient], admin: dict[str, str]
) -> None:
    _, client = audited
    firmware = {
        "cam-old": "2.9.9",  # below 2.10.0 although "2.9.9" > "2.10.0" as text
        "cam-equal": "2.10.0",
        "cam-short": "2.10",  # the same version written shorter
        "cam-newer": "2.10.0.1",
        "cam-ten": "10.0",
        "cam-tagged": "v2.11.3-rc1",
        "cam-garbled": "unknown-build",  # not a version: cannot be shown to be current
    }
    for device, version in firmware.items():
        register(client, admin, device, model="acme-cam", firmware=version)
    register(client, admin, "cam-unknown", model="acme-cam")
    register(client, admin, "aq-generic", firmware="0.1")  # a model without a minimum
    findings = audit_devices(registry_of(client))
    assert found(findings) == {
        ("firmware-outdated", "cam-old"),
        ("firmware-outdated", "cam-garbled"),
        ("firmware-unknown", "cam-unknown"),
    }
    outdated = next(f for f in findings if f.device_id == "cam-old")
    assert "2.9.9" in outdated.message and "2.10.0" in outdated.message


def test_default_and_weak_management_logins_are_found_and_retired_devices_left_out(
    audited: tuple[Platform, TestClient], admin: dict[str, str], tmp_path: Path
) -> None:
    platform, client = audited
    logins = {
        "cam-mirai": ("root", "xc3511"),  # Mirai's list
        "cam-vendor": ("service", "acme-cam-2019"),  # the vendor's factory default
        "cam-weak": ("admin", "Sunflower1987"),
        "cam-strong": ("maint", "q7#Vw!2zR@p9-Lk$e4Tn"),
    }
    for device, (username, password) in logins.items():
        register(
            client,
            admin,
            device,
            model="acme-cam",
            firmware="2.10.0",
            management_username=username,
            management_password=password,
        )
    register(client, admin, "cam-gone", model="acme-cam", management_username="root", management_password="xc3511")
    assert client.post("/api/v1/devices/cam-gone/retire", json={"reason": "removed"}, headers=admin).status_code == 200

    findings = audit_devices(registry_of(client))
    assert found(findings) == {
        ("default-credential", "cam-mirai"),
        ("default-credential", "cam-vendor"),
        ("weak-credential", "cam-weak"),
    }
    assert findings[0].severity.name == "CRITICAL"  # the worst first
    by_device = {f.device_id: f for f in findings}
    assert "mirai" in by_device["cam-mirai"].message and "'root'" in by_device["cam-mirai"].message
    assert "vendor:acme-cam" in by_device["cam-vendor"].message
    assert "xc3511" not in by_device["cam-mirai"].message  # the password itself is never repeated

    # a default disclosed after registration is still found: the stored fingerprint is compared again
    models = platform.settings.device_models
    assert models is not None
    models.write_text(MODELS + "      - {username: maint, password: 'q7#Vw!2zR@p9-Lk$e4Tn'}\n", encoding="utf-8")
    reopened = open_registry(platform)
    assert ("default-credential", "cam-strong") in found(audit_devices(reopened))
    # and a model taken out of the configuration does not stop the audit
    models.write_text("models: []\n", encoding="utf-8")
    assert ("default-credential", "cam-mirai") in found(audit_devices(open_registry(platform)))


def test_the_audit_api_answers_the_findings_and_reports_each_as_an_event(
    audited: tuple[Platform, TestClient], admin: dict[str, str]
) -> None:
    platform, client = audited
    register(client, admin, "cam-mirai", model="acme-cam", management_username="root", management_password="xc3511")
    _, secret = create_token(platform.database, "aud", Role.auditor)
    answer = client.get("/api/v1/devices/audit", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    findings = answer.json()
    assert {(f["check"], f["device"], f["severity"]) for f in findings} == {
        ("default-credential", "cam-mirai", "critical"),
        ("firmware-unknown", "cam-mirai", "low"),
    }
    events = [
        e
        for e in stored_events(platform, class_uid=EventClass.DETECTION_FINDING, device="cam-mirai")
        if e["message"].startswith("device audit")
    ]
    assert sorted(e["unmapped"]["finding"] for e in events) == ["default-credential", "firmware-unknown"]
    critical = next(e for e in events if e["unmapped"]["finding"] == "default-credential")
    assert critical["severity_id"] == 5 and "xc3511" not in str(critical)
    assert client.get("/api/v1/devices/audit").status_code == 401

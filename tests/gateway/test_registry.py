"""The device registry through its HTTP API: every change audit-logged with who and why, the status machine
held, roles enforced, secrets sealed and management passwords never kept — only their weakness."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from machimori.config import load_settings
from machimori.events import EventClass
from machimori.gateway.registry import DeviceKey
from machimori.identity.tokens import Role, create_token
from machimori.platform import Platform, open_platform
from machimori.storage.tables import devices
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN
from .conftest import b64, public_bytes, register, stored_events

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatomachi"


def audit_entries(platform: Platform, since: int = 0) -> list[dict[str, Any]]:
    """The audit log's entries from index `since` on."""
    return [platform.audit.entry(index).value() for index in range(since, platform.audit.head().size)]


def device_row(platform: Platform, device_id: str) -> dict[str, Any]:
    with platform.database.engine.connect() as connection:
        row = connection.execute(select(devices).where(devices.c.id == device_id)).mappings().one()
    return dict(row)


def row_text(row: dict[str, Any]) -> bytes:
    """Every value of a row, as bytes, for looking for a secret in it (raw, hex or base64)."""
    parts = []
    for value in row.values():
        if isinstance(value, bytes | memoryview):
            parts.append(bytes(value))
        else:
            parts.append(json.dumps(value, default=str).encode())
    return b"\x00".join(parts)


def post(client: TestClient, path: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/v1/devices{path}", json=body, headers=headers)


# --- the life of a device ------------------------------------------------------------------------------


def test_every_change_is_audit_logged_with_actor_and_reason_and_reported(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    start = platform.audit.head().size
    device = register(client, admin, "aq-life", name="港町一丁目", location=[139.64, 35.44], firmware="2.5.0")
    shown = client.get("/api/v1/devices/aq-life", headers=admin).json()
    assert (shown["status"], shown["owner"], shown["vendor"], shown["name"]) == (
        "active",
        "minato-city",
        "acme",
        "港町一丁目",
    )
    assert shown["key_kind"] == "ed25519"
    assert "public_key" not in shown and "sealed_secret" not in shown  # no key material is ever shown
    assert shown["key_fingerprint"] == hashlib.sha256(public_bytes(device.key)).hexdigest()  # type: ignore[arg-type]
    assert [d["id"] for d in client.get("/api/v1/devices", headers=admin).json()] == ["aq-life"]

    new_key = b64(public_bytes(Ed25519PrivateKey.generate()))
    rotated = post(client, "/aq-life/key", admin, public_key=new_key).json()
    assert rotated["key_fingerprint"] != shown["key_fingerprint"]
    assert post(client, "/aq-life/quarantine", admin, reason="beacons to 203.0.113.9").json()["status"] == "quarantined"
    assert [d["id"] for d in client.get("/api/v1/devices?status=quarantined", headers=admin).json()] == ["aq-life"]
    released = post(client, "/aq-life/release", admin, reason="reflashed by the vendor").json()
    assert (released["status"], released["status_reason"]) == ("active", "reflashed by the vendor")
    retired = post(client, "/aq-life/retire", admin, reason="replaced by aq-life-2").json()
    assert retired["status"] == "retired"

    entries = audit_entries(platform, start)
    assert [(e["action"], e["device"], e["actor"]) for e in entries] == [
        ("device.add", "aq-life", "admin"),
        ("device.rotate-key", "aq-life", "admin"),
        ("device.quarantine", "aq-life", "admin"),
        ("device.release", "aq-life", "admin"),
        ("device.retire", "aq-life", "admin"),
    ]
    assert entries[1]["old"] == shown["key_fingerprint"] and entries[1]["new"] == rotated["key_fingerprint"]
    assert [e.get("reason") for e in entries[2:]] == [
        "beacons to 203.0.113.9",
        "reflashed by the vendor",
        "replaced by aq-life-2",
    ]
    events = stored_events(platform, device="aq-life")
    classes = sorted(e["class_uid"] for e in events)
    assert classes == sorted([EventClass.ENTITY_MANAGEMENT] * 2 + [EventClass.DEVICE_CONFIG_STATE_CHANGE] * 3)
    assert {e["actor"]["user"]["uid"] for e in events} == {"admin"}


STATUS_CASES = [
    ["release"],  # release only from quarantine
    ["quarantine", "quarantine"],
    ["retire", "release"],  # retirement is final
    ["retire", "quarantine"],
    ["retire", "retire"],
    ["quarantine", "retire", "release"],
]


def test_the_status_machine_refuses_what_it_does_not_allow(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    for number, steps in enumerate(STATUS_CASES):
        device = f"aq-state-{number}"
        register(client, admin, device)
        *allowed, last = steps
        for step in allowed:
            assert post(client, f"/{device}/{step}", admin, reason=f"{step} it").status_code == 200
        before = client.get(f"/api/v1/devices/{device}", headers=admin).json()
        size = platform.audit.head().size
        answer = post(client, f"/{device}/{last}", admin, reason="again")
        assert answer.status_code == 409, (steps, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert client.get(f"/api/v1/devices/{device}", headers=admin).json() == before
        assert platform.audit.head().size == size  # nothing logged for what did not happen


def test_a_change_needs_a_reason_and_a_retired_device_gets_no_new_key(
    client: TestClient, admin: dict[str, str]
) -> None:
    register(client, admin, "aq-why")
    assert post(client, "/aq-why/quarantine", admin).status_code == 400
    assert post(client, "/aq-why/quarantine", admin, reason="").status_code == 400
    assert post(client, "/aq-why/quarantine", admin, reason="odd").status_code == 200
    assert post(client, "/aq-why/release", admin, reason="   ").status_code == 400
    assert client.get("/api/v1/devices/aq-why", headers=admin).json()["status"] == "quarantined"
    assert post(client, "/aq-why/retire", admin, reason=" \t ").status_code == 400
    register(client, admin, "aq-why-2")
    assert post(client, "/aq-why-2/quarantine", admin, reason="  ").status_code == 400
    assert client.get("/api/v1/devices/aq-why-2", headers=admin).json()["status"] == "active"
    assert post(client, "/aq-why/retire", admin, reason="end of life").status_code == 200
    assert post(client, "/aq-why/key", admin, public_key=b64(os.urandom(32))).status_code == 409


# --- who may do what -----------------------------------------------------------------------------------


def test_an_auditor_reads_but_changes_nothing_and_without_a_token_nothing_at_all(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    register(client, admin, "aq-watched")
    assert post(client, "/aq-watched/quarantine", admin, reason="suspicious").status_code == 200
    _, secret = create_token(platform.database, "aud", Role.auditor)
    auditor = {"Authorization": f"Bearer {secret}"}
    for path in ("", "/aq-watched", "/aq-watched/readings", "/audit"):
        assert client.get(f"/api/v1/devices{path}", headers=auditor).status_code == 200, path
    size = platform.audit.head().size
    key = b64(os.urandom(32))
    refused = {
        "release": post(client, "/aq-watched/release", auditor, reason="let it go"),
        "add": post(
            client, "", auditor, id="aq-new", model="air-quality-sensor", owner="o", vendor="v", public_key=key
        ),
        "quarantine": post(client, "/aq-watched/quarantine", auditor, reason="x"),
        "retire": post(client, "/aq-watched/retire", auditor, reason="x"),
        "key": post(client, "/aq-watched/key", auditor, public_key=key),
    }
    assert {what: answer.status_code for what, answer in refused.items()} == dict.fromkeys(refused, 403)
    for path in ("", "/aq-watched", "/aq-watched/readings", "/audit"):
        assert client.get(f"/api/v1/devices{path}").status_code == 401, path
    assert post(client, "/aq-watched/release", {}, reason="let it go").status_code == 401
    assert post(client, "/aq-watched/release", {"Authorization": "Bearer mmk_guessed"}, reason="x").status_code == 401
    assert platform.audit.head().size == size
    assert client.get("/api/v1/devices/aq-watched", headers=admin).json()["status"] == "quarantined"
    assert [d["id"] for d in client.get("/api/v1/devices", headers=admin).json()] == ["aq-watched"]
    assert post(client, "/aq-watched/release", admin, reason="checked").status_code == 200


# --- secrets --------------------------------------------------------------------------------------------


def test_an_hmac_secret_is_sealed_at_rest_and_unsealed_only_for_verification(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    secret = os.urandom(32)
    register(client, admin, "tiny-sealed", key=secret)
    row = device_row(platform, "tiny-sealed")
    stored = row_text(row)
    for form in (secret, secret.hex().encode(), b64(secret).encode()):
        assert form not in stored
    assert row["public_key"] is None and row["sealed_secret"]
    # the fingerprint is keyed: a stolen database does not let anyone test guesses of the secret
    assert row["key_fingerprint"] != hashlib.sha256(secret).hexdigest()
    registry = client.app.state.assets.registry  # type: ignore[attr-defined]
    assert registry.key_of("tiny-sealed") == DeviceKey("hmac-sha256", secret)
    assert registry.key_of("nobody") is None
    listed = client.get("/api/v1/devices/tiny-sealed", headers=admin).text
    assert b64(secret) not in listed and secret.hex() not in listed
    for entry in audit_entries(platform):
        assert b64(secret) not in json.dumps(entry) and secret.hex() not in json.dumps(entry)


LOGINS = [
    ("root", "xc3511", "default", "mirai"),  # the Mirai botnet's first guess
    ("admin", "Sunflower1987", "weak", None),
    ("Operator", "operator", "same-as-username", None),
    ("maint", "q7#Vw!2zR@p9-Lk$e4Tn", None, None),
]


def test_a_management_password_is_never_stored_but_its_weakness_is(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    for number, (username, password, _, _) in enumerate(LOGINS):
        register(client, admin, f"cam-{number}", management_username=username, management_password=password)
    entries = [json.dumps(entry, ensure_ascii=False) for entry in audit_entries(platform)]
    events = stored_events(platform)
    texts = [json.dumps(event, ensure_ascii=False) for event in events]
    for number, (username, password, weakness, source) in enumerate(LOGINS):
        row = device_row(platform, f"cam-{number}")
        assert password.encode() not in row_text(row)
        assert row["management"]["username"] == username
        assert (row["management"]["weakness"], row["management"]["weakness_source"]) == (weakness, source)
        assert password not in client.get(f"/api/v1/devices/cam-{number}", headers=admin).text
        assert not [entry for entry in entries if password in entry]
        assert not [text for text in texts if password in text]
    findings = [e for e in events if e.get("unmapped", {}).get("finding") == "weak-management-login"]
    assert sorted(e["device"]["uid"] for e in findings) == ["cam-0", "cam-1", "cam-2"]
    assert {e["class_uid"] for e in findings} == {EventClass.DETECTION_FINDING}
    if platform.database.is_sqlite:  # nowhere in the database file either
        for path in (platform.settings.data_dir.parent).glob("machimori.db*"):
            content = path.read_bytes()
            assert not [password for _, password, _, _ in LOGINS if password.encode() in content], path


# --- bad requests ----------------------------------------------------------------------------------------


def test_a_taken_id_is_a_conflict_and_keeps_the_first_device(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    first = register(client, admin, "aq-dup")
    before = device_row(platform, "aq-dup")
    register(client, admin, "aq-dup", expect=409, owner="someone-else")
    assert device_row(platform, "aq-dup") == before
    assert first.id == "aq-dup"
    assert [e["action"] for e in audit_entries(platform) if e.get("device") == "aq-dup"] == ["device.add"]


BAD_REGISTRATIONS: list[tuple[dict[str, Any], str]] = [
    ({"model": "flux-capacitor"}, "unknown device model"),
    ({"id": "../../etc/passwd"}, "device id"),
    ({"id": "aq 1"}, "device id"),
    ({"id": "aq-1'; DROP TABLE devices; --"}, "device id"),
    ({"id": "-leading-dash"}, "device id"),
    ({"id": "audit"}, "reserved"),  # GET /api/v1/devices/audit would never show it
    ({"id": "x" * 129}, "device id"),
    ({"location": [200.0, 35.0]}, "location"),
    ({"location": [139.0, -91.0]}, "location"),
    ({"protocol": "coap"}, "protocol"),
    ({"address": "10.0.0.5", "management_endpoints": ["telnet://10.0.0.6:23"]}, "device's address"),
    ({"management_endpoints": ["telnet://10.0.0.6:23"]}, "device's address"),
    ({"address": "10.0.0.5", "management_endpoints": ["gopher://10.0.0.5:70"]}, "scheme"),
    ({"address": "10.0.0.5", "management_endpoints": ["telnet://10.0.0.5"]}, "scheme"),
    ({"public_key": b64(os.urandom(31))}, "Ed25519"),
    ({"public_key": "not base64 at all!"}, "base64"),
    ({"hmac_secret": "a passphrase is not a secret, however long it is!", "public_key": None}, "base64"),
    ({"hmac_secret": b64(os.urandom(16)), "public_key": None}, "32 bytes"),
    ({"hmac_secret": b64(os.urandom(32))}, "exactly one"),
    ({"public_key": None}, "exactly one"),
    ({"tenant": "a/b"}, "tenant"),
]


def test_a_bad_registration_is_a_400_problem_and_registers_nothing(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    size = platform.audit.head().size
    wrong = []
    for fields, expected in BAD_REGISTRATIONS:
        body = {"id": "aq-bad", "model": "air-quality-sensor", "owner": "minato-city", "vendor": "acme"}
        body["public_key"] = b64(os.urandom(32))
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        answer = client.post("/api/v1/devices", json=body, headers=admin)
        problem = answer.json()
        if answer.status_code != 400 or answer.headers["content-type"] != "application/problem+json":
            wrong.append(f"{fields}: {answer.status_code} {answer.text}")
        elif expected not in problem["detail"]:
            wrong.append(f"{fields}: {problem['detail']!r} does not say {expected!r}")
    assert not wrong, "\n".join(wrong)
    assert client.get("/api/v1/devices", headers=admin).json() == []
    assert platform.audit.head().size == size


def test_keys_in_either_base64_alphabet_and_endpoints_on_the_devices_own_address_are_taken(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    key = Ed25519PrivateKey.generate()
    raw = public_bytes(key)
    standard = base64.b64encode(raw).decode()  # '+' and '/' rather than '-' and '_'
    body = {"id": "cam-9", "model": "air-quality-sensor", "owner": "minato-city", "vendor": "acme"}
    endpoints = ["telnet://cam-9.minato.example:23", "http-basic://cam-9.minato.example:8080/admin"]
    answer = client.post(
        "/api/v1/devices",
        json={**body, "public_key": standard, "address": "CAM-9.Minato.Example", "management_endpoints": endpoints},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["key_fingerprint"] == hashlib.sha256(raw).hexdigest()
    assert answer.json()["management"]["endpoints"] == endpoints
    assert client.app.state.assets.registry.key_of("cam-9").material == raw  # type: ignore[attr-defined]


# --- the city model's stakeholders ------------------------------------------------------------------------


@pytest.fixture
def city_client(tmp_path: Path, database_url: str) -> Iterator[tuple[Platform, TestClient]]:
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "city",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        city_model=EXAMPLE / "city.yaml",
        device_models=EXAMPLE / "device-models.yaml",
    )
    platform = open_platform(settings)
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as client:
        yield platform, client


def test_vendor_and_owner_must_be_stakeholders_of_the_city_model(
    city_client: tuple[Platform, TestClient], admin: dict[str, str]
) -> None:
    _, client = city_client
    registered = register(client, admin, "sk-aq-1", model="soyokaze-aq-300", vendor=None)
    shown = client.get(f"/api/v1/devices/{registered.id}", headers=admin).json()
    assert shown["vendor"] == "soyokaze-kankyo"  # the model's vendor
    for fields, who in (
        ({"owner": "nobody-we-know"}, "owner 'nobody-we-know'"),
        ({"vendor": "acme", "model": "air-quality-sensor"}, "vendor 'acme'"),
        ({"vendor": "evil-corp"}, "vendor 'evil-corp'"),
    ):
        body = {"id": "sk-aq-2", "model": "soyokaze-aq-300", "owner": "minato-city", **fields}
        answer = client.post("/api/v1/devices", json={**body, "public_key": b64(os.urandom(32))}, headers=admin)
        assert answer.status_code == 400, answer.text
        assert who in answer.json()["detail"] and "stakeholder" in answer.json()["detail"]
    generic = client.post(
        "/api/v1/devices",
        json={
            "id": "sk-aq-3",
            "model": "air-quality-sensor",
            "owner": "minato-city",
            "public_key": b64(os.urandom(32)),
        },
        headers=admin,
    )
    assert generic.status_code == 400 and "vendor" in generic.json()["detail"]
    assert [d["id"] for d in client.get("/api/v1/devices", headers=admin).json()] == ["sk-aq-1"]

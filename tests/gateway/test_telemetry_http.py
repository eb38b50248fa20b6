"""Signed telemetry over HTTP, as an attacker would try it: every forged, replayed, malformed, flooding or
out-of-bounds message is refused with its own reason and status and becomes an event, while an honest
device sending between the attacker's messages keeps getting 200 and every one of its readings is stored."""

from __future__ import annotations

import base64
import datetime as dt
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from machimori.config import load_settings
from machimori.events import EventClass
from machimori.gateway.client import DeviceClient
from machimori.gateway.envelope import (
    ALG_EDDSA,
    HEADER_ALG,
    HEADER_KID,
    MAX_ENVELOPE_BYTES,
    SIGN1_TAG,
    Reading,
    mac_reading,
    open_envelope,
    sign_reading,
)
from machimori.gateway.ingress import STATUS_OF
from machimori.gateway.readings import count_readings
from machimori.platform import Platform, open_platform
from machimori.storage.tables import device_readings, devices
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN
from .conftest import NAMESPACE, Registered, b64, public_bytes, refusals, register, send, stored_events

ENTITY = "urn:ngsi-ld:AirQualityObserved:aq-001"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def signed(protected: dict[int, object], payload: bytes, key: Ed25519PrivateKey) -> bytes:
    """A COSE_Sign1 message built by hand, with a good signature over whatever it carries."""
    header = cbor2.dumps(protected)
    signature = key.sign(cbor2.dumps(["Signature1", header, b"", payload]))
    return bytes(cbor2.dumps(cbor2.CBORTag(SIGN1_TAG, [header, {}, payload, signature])))


def payload(values: dict[str, object], counter: int = 1) -> bytes:
    return bytes(cbor2.dumps({"c": counter, "t": int(now().timestamp() * 1000), "v": values}))


# --- accepted readings -------------------------------------------------------------------------------


def test_an_accepted_reading_updates_the_hub_and_is_kept_with_its_verifiable_envelope(
    client: TestClient, admin: dict[str, str], device: Registered
) -> None:
    first = send(client, device.message({"temperature": 21.5, "pm25": 12}))
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": True, "device": "aq-001", "counter": 1}
    observed = now().replace(microsecond=0)
    second = send(client, device.message({"temperature": 22.25}, time=observed))
    assert second.status_code == 200

    entity = client.app.state.hub.store.get("", ENTITY)  # type: ignore[attr-defined]
    assert entity is not None
    temperature = entity.attributes[NAMESPACE + "temperature"][0]
    assert temperature["value"] == 22.25
    assert temperature["unitCode"] == "CEL"
    assert temperature["observedAt"] == observed.isoformat().replace("+00:00", "Z")
    pm25 = entity.attributes[NAMESPACE + "pm25"][0]
    assert (pm25["value"], pm25["unitCode"]) == (12, "GQ")  # a value not sent again keeps its last reading
    assert entity.attributes[NAMESPACE + "refDevice"][0]["object"] == "urn:ngsi-ld:Device:aq-001"
    assert entity.attributes["https://uri.etsi.org/ngsi-ld/location"][0]["value"]["coordinates"] == [139.64, 35.44]

    listed = client.get("/api/v1/devices/aq-001/readings", headers=admin)
    assert listed.status_code == 200
    readings = listed.json()
    assert [r["counter"] for r in readings] == [2, 1]
    assert readings[0]["values"] == {"temperature": 22.25} and readings[0]["transport"] == "http"
    assert isinstance(device.key, Ed25519PrivateKey)
    for reading in readings:
        raw = base64.urlsafe_b64decode(reading["envelope"] + "=" * (-len(reading["envelope"]) % 4))
        verified = open_envelope(raw).verified_reading(device.key.public_key())
        assert verified.counter == reading["counter"] and verified.values == reading["values"]
    seen = client.get("/api/v1/devices/aq-001", headers=admin).json()["last_seen_at"]
    assert seen is not None
    assert client.get("/api/v1/devices/aq-001/readings").status_code == 401
    assert client.get("/api/v1/devices/nobody/readings", headers=admin).status_code == 404


def test_out_of_order_within_the_window_is_accepted_once(client: TestClient, device: Registered) -> None:
    assert send(client, device.at(40)).status_code == 200
    assert send(client, device.at(20)).status_code == 200  # late, but within the 32-counter window
    again = send(client, device.at(20))
    assert (again.status_code, again.json()["reason"]) == (409, "replay")
    assert send(client, device.at(9)).status_code == 200  # 40 - 1 - 32 = 7 is the last refused
    too_old = send(client, device.at(7))
    assert (too_old.status_code, too_old.json()["reason"]) == (409, "counter-too-old")
    assert send(client, device.at(41)).status_code == 200
    assert send(client, device.at(40)).json()["reason"] == "replay"


# --- attacks, each between two honest readings ---------------------------------------------------------


@dataclass
class Scene:
    client: TestClient
    admin: dict[str, str]
    device: Registered  # the attacker's target (or the attacker itself)
    other: Registered  # another registered device, whose key the attacker holds


def _forged(scene: Scene) -> bytes:
    assert isinstance(scene.other.key, Ed25519PrivateKey)
    return sign_reading(scene.device.id, Reading(1, now(), {"temperature": 20.0}), scene.other.key)


def _replayed(scene: Scene) -> bytes:
    message = scene.device.message()
    assert send(scene.client, message).status_code == 200
    return message


def _rolled_back(scene: Scene) -> bytes:
    assert send(scene.client, scene.other.at(100)).status_code == 200
    return scene.other.at(100 - 1 - 32)


def _oversized(scene: Scene) -> bytes:
    values: dict[str, object] = {f"text{i}": "x" * 250 for i in range(20)}
    message = signed({HEADER_ALG: ALG_EDDSA, HEADER_KID: b"aq-001"}, payload(values), scene.device.key)  # type: ignore[arg-type]
    assert len(message) > MAX_ENVELOPE_BYTES
    return message


def _kid_not_utf8(scene: Scene) -> bytes:
    return signed({HEADER_ALG: ALG_EDDSA, HEADER_KID: b"aq-\xff\xfe"}, payload({"temperature": 1.0}), scene.device.key)  # type: ignore[arg-type]


def _payload_text_not_utf8(scene: Scene) -> bytes:
    body = payload({"note": "QQ"}).replace(b"\x62QQ", b"\x62\xff\xfe")
    return signed({HEADER_ALG: ALG_EDDSA, HEADER_KID: b"aq-001"}, body, scene.device.key)  # type: ignore[arg-type]


def _kid(text: str) -> Callable[[Scene], bytes]:
    def build(scene: Scene) -> bytes:
        header = {HEADER_ALG: ALG_EDDSA, HEADER_KID: text.encode()}
        return signed(header, payload({"temperature": 1.0}), scene.device.key)  # type: ignore[arg-type]

    return build


def _unknown(scene: Scene) -> bytes:
    return sign_reading("ghost-404", Reading(1, now(), {"temperature": 20.0}), Ed25519PrivateKey.generate())


def _values(values: dict[str, object]) -> Callable[[Scene], bytes]:
    return lambda scene: scene.device.message(values)  # type: ignore[arg-type]


def _at(offset: dt.timedelta) -> Callable[[Scene], bytes]:
    return lambda scene: scene.device.message(time=now() + offset)


def _hmac_keyed_with_the_public_key(scene: Scene) -> bytes:
    """Algorithm confusion: a MAC whose 'secret' is the device's public key."""
    assert isinstance(scene.device.key, Ed25519PrivateKey)
    return mac_reading(scene.device.id, Reading(1, now(), {"temperature": 20.0}), public_bytes(scene.device.key))


def _payload_shape(body: object) -> Callable[[Scene], bytes]:
    def build(scene: Scene) -> bytes:
        header = {HEADER_ALG: ALG_EDDSA, HEADER_KID: b"aq-001"}
        return signed(header, bytes(cbor2.dumps(body)), scene.device.key)  # type: ignore[arg-type]

    return build


ATTACKS: list[tuple[str, Callable[[Scene], bytes], str]] = [
    ("signed-with-another-devices-key", _forged, "bad-signature"),
    ("replayed", _replayed, "replay"),
    ("counter-rolled-back-beyond-window", _rolled_back, "counter-too-old"),
    ("truncated", lambda scene: scene.device.message()[:-12], "malformed"),
    ("not-cbor", lambda scene: b"GET / HTTP/1.1\r\n\r\n", "malformed"),
    ("untagged", lambda scene: bytes(cbor2.dumps(["a", {}, b"", b""])), "malformed"),
    ("empty", lambda scene: b"", "malformed"),
    ("oversized", _oversized, "oversized"),
    ("kid-not-utf8", _kid_not_utf8, "malformed"),
    ("payload-text-not-utf8", _payload_text_not_utf8, "malformed"),
    ("kid-with-sql", _kid("aq-001'; DROP TABLE devices; --"), "malformed"),
    ("kid-with-path", _kid("../../etc/passwd"), "malformed"),
    ("kid-with-nul", _kid("aq-001\x00admin"), "malformed"),
    ("unknown-device", _unknown, "unknown-device"),
    ("out-of-range", _values({"temperature": 999.0}), "out-of-range"),
    ("unknown-value-name", _values({"radiation": 1.0}), "schema"),
    ("text-for-a-number", _values({"temperature": "hot"}), "schema"),
    ("true-for-a-number", _values({"temperature": True}), "schema"),
    ("not-a-number", _values({"temperature": float("nan")}), "malformed"),
    ("clock-ahead", _at(dt.timedelta(minutes=10)), "clock-skew"),
    ("clock-behind", _at(-dt.timedelta(hours=1)), "clock-skew"),
    ("mac-keyed-with-public-key", _hmac_keyed_with_the_public_key, "wrong-algorithm"),
    ("counter-zero", _payload_shape({"c": 0, "t": 1, "v": {"temperature": 1.0}}), "malformed"),
    ("counter-true", _payload_shape({"c": True, "t": 1, "v": {"temperature": 1.0}}), "malformed"),
    ("extra-payload-field", _payload_shape({"c": 1, "t": 1, "v": {"temperature": 1.0}, "x": 1}), "malformed"),
]


def test_every_attack_is_refused_with_its_reason_and_reported_while_an_honest_device_carries_on(
    client: TestClient, admin: dict[str, str], platform: Platform, device: Registered, honest: Registered
) -> None:
    scene = Scene(client, admin, device, register(client, admin, "aq-other"))
    wrong: list[str] = []
    expected_events: Counter[str] = Counter()
    device_readings = 0
    for number, (name, build, reason) in enumerate(ATTACKS, start=1):
        message = build(scene)  # some attacks first send a good message of the device (then replay it …)
        device_readings = count_readings(platform.database, device.id)
        answer = send(client, message)
        body = answer.json()
        if (answer.status_code, body.get("reason")) != (STATUS_OF[reason], reason):
            wrong.append(f"{name}: {answer.status_code} {body}")
        if answer.headers["content-type"] != "application/problem+json":
            wrong.append(f"{name}: answered as {answer.headers['content-type']}")
        if count_readings(platform.database, device.id) != device_readings:
            wrong.append(f"{name}: something of the attack was stored")
        expected_events[reason] += 1
        honest_answer = send(client, honest.message())  # between every two attacks
        if honest_answer.status_code != 200 or count_readings(platform.database, honest.id) != number:
            wrong.append(f"{name}: the honest device got {honest_answer.status_code}")
    assert not wrong, "\n".join(wrong)

    reported = refusals(platform)
    assert Counter(event["unmapped"]["reason"] for event in reported) == expected_events
    for event in reported:
        reason = event["unmapped"]["reason"]
        assert event["status_id"] == 2 and event["unmapped"]["transport"] == "http"
        assert event["src_endpoint"]["ip"] == "testclient"
        if reason in ("bad-signature", "replay", "counter-too-old", "wrong-algorithm"):
            assert event["class_uid"] == EventClass.AUTHENTICATION
            assert event["device"]["uid"] == ("aq-other" if reason == "counter-too-old" else device.id)
        if reason == "unknown-device":
            assert event["device"]["uid"] == "ghost-404"
        if reason in ("out-of-range", "schema", "clock-skew"):
            assert event["device"]["uid"] == device.id
    # whatever the kid said, no table was harmed and no device changed
    with platform.database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(devices)).scalar_one() == 3
    listed = client.get("/api/v1/devices", headers=admin).json()
    assert {(d["id"], d["status"]) for d in listed} == {(i, "active") for i in ("aq-001", "aq-honest", "aq-other")}
    assert send(client, device.message()).status_code == 200  # three suspicious refusals: below the policy


def test_transport_level_refusals_leave_the_honest_device_alone(
    client: TestClient, platform: Platform, device: Registered, honest: Registered
) -> None:
    huge = send(client, b"\xd2" + os.urandom(1024 * 1024 + 1))
    assert huge.status_code == 413
    assert huge.json()["type"].endswith("body-too-large")
    for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded", ""):
        answer = send(client, device.message(), content_type)
        assert answer.status_code == 415, content_type
        assert send(client, honest.message()).status_code == 200
    assert count_readings(platform.database, device.id) == 0
    assert send(client, device.message(), "application/cose; charset=binary").status_code == 200
    assert send(client, device.message(), "application/octet-stream").status_code == 200
    assert count_readings(platform.database, honest.id) == 4


# --- floods ---------------------------------------------------------------------------------------------


def test_a_flood_is_cut_at_the_models_rate_and_its_refusals_are_folded(
    client: TestClient, platform: Platform, device: Registered, honest: Registered
) -> None:
    for number in range(120):  # a minute's worth at once: the burst the model allows
        assert send(client, device.message()).status_code == 200, number
        if number % 30 == 0:
            assert send(client, honest.message()).status_code == 200
    refused = 0
    for _ in range(1000):  # the bucket refills two a second; sending faster than that is refused
        answer = send(client, device.message())
        if answer.status_code == 429:
            assert answer.json()["reason"] == "rate-limited"
            assert answer.headers["retry-after"] == "60"
            refused += 1
            if refused == 60:
                break
        else:
            assert answer.status_code == 200
    assert refused == 60
    assert send(client, honest.message()).status_code == 200
    assert count_readings(platform.database, honest.id) == 5

    reports = client.app.state.assets.gateway.reports  # type: ignore[attr-defined]
    events = refusals(platform, "rate-limited", device.id)
    burst = reports.burst
    assert 0 < len(events) <= burst * 2  # at most a burst per window (the flood may straddle two)
    reports.flush()
    events = refusals(platform, "rate-limited", device.id)
    single = [e for e in events if "folded" not in e["unmapped"]]
    folded = sum(e["unmapped"].get("folded", 0) for e in events)
    assert len(single) + folded == refused  # every refusal told, most of them in a summary
    assert folded >= refused - 2 * burst


def test_refusals_of_devices_nobody_registered_are_folded_too(
    client: TestClient, platform: Platform, honest: Registered
) -> None:
    sprayed = 100
    for number in range(sprayed):  # a fresh made-up id each time
        message = sign_reading(f"ghost-{number}", Reading(1, now(), {"temperature": 1.0}), Ed25519PrivateKey.generate())
        assert send(client, message).json()["reason"] == "unknown-device"
    assert send(client, honest.message()).status_code == 200
    reports = client.app.state.assets.gateway.reports  # type: ignore[attr-defined]
    assert len(refusals(platform, "unknown-device")) <= 2 * reports.burst
    reports.flush()
    events = refusals(platform, "unknown-device")
    single = [e for e in events if "folded" not in e["unmapped"]]
    assert len(single) + sum(e["unmapped"].get("folded", 0) for e in events) == sprayed


# --- device status --------------------------------------------------------------------------------------


def test_a_quarantined_device_is_refused_every_time_until_released_and_a_retired_one_for_good(
    client: TestClient, admin: dict[str, str], platform: Platform, device: Registered, honest: Registered
) -> None:
    assert send(client, device.message()).status_code == 200
    quarantined = client.post(f"/api/v1/devices/{device.id}/quarantine", json={"reason": "odd traffic"}, headers=admin)
    assert quarantined.status_code == 200 and quarantined.json()["status"] == "quarantined"
    for _ in range(5):
        answer = send(client, device.message())
        assert (answer.status_code, answer.json()["reason"]) == (403, "quarantined")
        assert send(client, honest.message()).status_code == 200
    assert count_readings(platform.database, device.id) == 1
    assert len(refusals(platform, "quarantined", device.id)) == 5
    released = client.post(f"/api/v1/devices/{device.id}/release", json={"reason": "firmware fixed"}, headers=admin)
    assert released.status_code == 200 and released.json()["status"] == "active"
    assert send(client, device.message()).status_code == 200

    retired = client.post(f"/api/v1/devices/{device.id}/retire", json={"reason": "replaced"}, headers=admin)
    assert retired.status_code == 200
    answer = send(client, device.message())
    assert (answer.status_code, answer.json()["reason"]) == (403, "retired")
    assert refusals(platform, "retired", device.id)
    again = client.post(f"/api/v1/devices/{device.id}/release", json={"reason": "oops"}, headers=admin)
    assert again.status_code == 409
    assert send(client, device.message()).status_code == 403
    assert count_readings(platform.database, device.id) == 2


def test_after_a_key_rotation_the_old_key_is_refused_and_the_new_one_carries_on(
    client: TestClient, admin: dict[str, str], platform: Platform, device: Registered, honest: Registered
) -> None:
    for _ in range(3):
        assert send(client, device.message()).status_code == 200
    stolen = device.message()  # signed under the old key but never delivered
    new_key = Ed25519PrivateKey.generate()
    rotated = client.post(
        f"/api/v1/devices/{device.id}/key", json={"public_key": b64(public_bytes(new_key))}, headers=admin
    )
    assert rotated.status_code == 200
    assert (
        rotated.json()["key_fingerprint"]
        != client.get("/api/v1/devices/aq-honest", headers=admin).json()["key_fingerprint"]
    )

    old = send(client, stolen)
    assert old.status_code == 401 and old.json()["reason"] in ("bad-signature", "key-changed")
    # the device signs with its new key at once (no stale copy of the old one is trusted) and its counter
    # goes on: every counter it ever used stays used
    renewed = Registered(device.id, new_key, DeviceClient(device.id, new_key, device.client.counter))
    for _ in range(3):
        answer = send(client, renewed.message())
        assert answer.status_code == 200, answer.text
    assert answer.json()["counter"] == 7
    restarted = send(client, renewed.at(1))  # a counter used under the old key: refused, not a server error
    assert (restarted.status_code, restarted.json()["reason"]) == (409, "replay")
    assert send(client, device.message()).json()["reason"] in ("bad-signature", "key-changed")
    assert send(client, honest.message()).status_code == 200
    assert count_readings(platform.database, device.id) == 6
    assert client.get(f"/api/v1/devices/{device.id}", headers=admin).json()["status"] == "active"


def test_repeated_bad_signatures_quarantine_the_device_and_no_other(
    client: TestClient, admin: dict[str, str], platform: Platform, device: Registered, honest: Registered
) -> None:
    assert send(client, device.message()).status_code == 200
    attacker = Ed25519PrivateKey.generate()
    after = platform.settings.gateway_quarantine_after
    audit_size = platform.audit.head().size
    for number in range(1, after + 1):
        if number == after:  # one short of the policy: the device is still in service
            assert client.get(f"/api/v1/devices/{device.id}", headers=admin).json()["status"] == "active"
            assert platform.audit.head().size == audit_size
        forged = sign_reading(device.id, Reading(100 + number, now(), {"temperature": 1.0}), attacker)
        answer = send(client, forged)
        assert (answer.status_code, answer.json()["reason"]) == (401, "bad-signature"), number
        assert send(client, honest.message()).status_code == 200

    record = client.get(f"/api/v1/devices/{device.id}", headers=admin).json()
    assert record["status"] == "quarantined"
    assert "policy" in record["status_reason"]
    answer = send(client, device.message())  # the device's own, well signed message is refused now
    assert (answer.status_code, answer.json()["reason"]) == (403, "quarantined")
    entries = [platform.audit.entry(i).value() for i in range(audit_size, platform.audit.head().size)]
    assert [(e["action"], e["device"], e["actor"]) for e in entries] == [
        ("device.quarantine", device.id, "gateway-policy")
    ]
    changes = [
        e
        for e in stored_events(platform, device=device.id, class_uid=EventClass.DEVICE_CONFIG_STATE_CHANGE)
        if e["actor"]["user"]["uid"] == "gateway-policy"
    ]
    assert len(changes) == 1 and changes[0]["unmapped"]["status"] == "quarantined"
    assert len(refusals(platform, "bad-signature", device.id)) == after
    assert client.get(f"/api/v1/devices/{honest.id}", headers=admin).json()["status"] == "active"
    assert send(client, honest.message()).status_code == 200
    assert count_readings(platform.database, honest.id) == after + 1


# --- HMAC devices ---------------------------------------------------------------------------------------


def test_an_hmac_device_is_accepted_and_a_wrong_secret_refused(
    client: TestClient, platform: Platform, hmac_device: Registered
) -> None:
    answer = send(client, hmac_device.message({"pm10": 40}))
    assert answer.status_code == 200, answer.text
    assert open_envelope(hmac_device.at(2)).kind == "mac0"
    guessed = mac_reading(hmac_device.id, Reading(5, now(), {"pm10": 41}), os.urandom(32))
    wrong = send(client, guessed)
    assert (wrong.status_code, wrong.json()["reason"]) == (401, "bad-signature")
    signed_instead = sign_reading(hmac_device.id, Reading(6, now(), {"pm10": 41}), Ed25519PrivateKey.generate())
    assert send(client, signed_instead).json()["reason"] == "wrong-algorithm"
    assert send(client, hmac_device.message({"pm10": 42})).status_code == 200
    assert count_readings(platform.database, hmac_device.id) == 2
    assert refusals(platform, "bad-signature", hmac_device.id)


# --- values the model leaves open ---------------------------------------------------------------------------

OPEN_MODEL = """
models:
  - id: counter-box
    vendor: acme
    name: {ja: 計数器, en: Counter box}
    entity_type: https://smartdatamodels.org/dataModel.Device/DeviceMeasurement
    measurements:
      count: {type: number}
      label: {type: text}
"""


@pytest.fixture
def open_client(tmp_path: Path, database_url: str) -> Iterator[tuple[Platform, TestClient]]:
    """A platform with an operator's model whose number has no bounds and whose text has no choices."""
    models = tmp_path / "models.yaml"
    models.write_text(OPEN_MODEL, encoding="utf-8")
    settings = load_settings(
        environ={}, data_dir=tmp_path / "data", database_url=database_url, admin_token=ADMIN_TOKEN, device_models=models
    )
    platform = open_platform(settings)
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as client:
        yield platform, client


def test_values_no_store_can_hold_are_refused_without_harming_anyone(
    open_client: tuple[Platform, TestClient], admin: dict[str, str]
) -> None:
    platform, client = open_client
    box = register(client, admin, "box-1", model="counter-box")
    honest = register(client, admin, "box-2", model="counter-box")
    accepted: list[dict[str, object]] = [
        {"count": 2**70},
        {"count": -1.5e300},
        {"label": "改札口 north gate"},
        {"label": "tab\tand newline\n"},
    ]
    refused: list[tuple[dict[str, object], str]] = [
        ({"count": 10**400}, "out-of-range"),  # an integer no double holds
        ({"count": -(10**309)}, "out-of-range"),
        ({"label": "nul\x00byte"}, "schema"),  # no PostgreSQL text or jsonb holds a NUL
        ({"label": "bell\x07"}, "schema"),
    ]
    for values in accepted:
        answer = send(client, box.message(values))  # type: ignore[arg-type]
        assert answer.status_code == 200, (values, answer.text)
    for values, reason in refused:
        answer = send(client, box.message(values))  # type: ignore[arg-type]
        assert (answer.status_code, answer.json().get("reason")) == (STATUS_OF[reason], reason), values
        assert send(client, honest.message({"count": 1})).status_code == 200
    assert count_readings(platform.database, "box-1") == len(accepted)
    assert count_readings(platform.database, "box-2") == len(refused)
    entity = client.app.state.hub.store.get("", "urn:ngsi-ld:DeviceMeasurement:box-1")  # type: ignore[attr-defined]
    assert entity.attributes["https://smartdatamodels.org/dataModel.Device/label"][0]["value"] == "tab\tand newline\n"


# --- the writer outlives its callers ----------------------------------------------------------------------


@contextmanager
def holding_the_row_of(platform: Platform, device_id: str) -> Iterator[None]:
    """Another transaction holds the device's row (on SQLite: the write lock), so the writer must wait."""
    with platform.database.begin() as connection:
        query = select(devices.c.id).where(devices.c.id == device_id)
        connection.execute(query if platform.database.is_sqlite else query.with_for_update())
        yield


def test_a_caller_that_stops_waiting_does_not_stop_the_writer(
    client: TestClient, platform: Platform, device: Registered, honest: Registered
) -> None:
    gateway = client.app.state.assets.gateway  # type: ignore[attr-defined]
    abandoned = device.message()
    with holding_the_row_of(platform, device.id):
        waiting = gateway.submit(abandoned, "http", "10.0.0.9")
        assert waiting.cancel()  # e.g. the HTTP request awaiting it was cancelled
    # every caller after it is still answered (bounded wait: a dead writer would never answer)
    assert gateway.receive(honest.message(), "http", timeout=20).accepted
    assert count_readings(platform.database, device.id) == 0  # nobody was told it is stored: it is not
    assert send(client, abandoned).status_code == 200  # so the device's resend is taken, not a replay
    assert send(client, device.message()).status_code == 200
    assert count_readings(platform.database, device.id) == 2
    assert not refusals(platform)


# --- one message, raced ----------------------------------------------------------------------------------


def test_a_message_raced_through_two_gateways_on_one_database_is_stored_once(
    client: TestClient, platform: Platform, device: Registered
) -> None:
    """Two gateway processes (here two apps over one database) may get the same message at once — the
    device's row lock decides: one acceptance, the rest replays."""
    second_platform = open_platform(platform.settings)
    with TestClient(create_app(second_platform), base_url="http://localhost") as second:
        messages = [device.message({"temperature": float(n)}) for n in range(4)]
        answers: list[int] = []
        lock = threading.Lock()

        def deliver(http: TestClient, message: bytes, ready: threading.Barrier) -> None:
            ready.wait()
            status = send(http, message).status_code
            with lock:
                answers.append(status)

        for message in messages:  # each message sent to both gateways at the same moment
            ready = threading.Barrier(2)
            threads = [threading.Thread(target=deliver, args=(http, message, ready)) for http in (client, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert sorted(answers) == [200] * 4 + [409] * 4
    with platform.database.engine.connect() as connection:
        counters = connection.execute(
            select(device_readings.c.counter).where(device_readings.c.device_id == device.id)
        ).scalars()
        assert sorted(counters) == [1, 2, 3, 4]

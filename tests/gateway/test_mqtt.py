"""MQTT ingest against the real Mosquitto: shared subscriptions, refusals, and no acknowledged reading lost when
the gateway is killed."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from machimori.config import load_settings
from machimori.gateway.client import DeviceClient
from machimori.gateway.envelope import Reading, sign_reading
from machimori.gateway.mqtt import device_topic
from machimori.gateway.readings import count_readings
from machimori.platform import Platform, open_platform
from machimori.storage import open_database
from machimori.storage.tables import security_events
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN
from ..web.server import ServerProcess

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VALUES = {"temperature": 21.5, "pm25": 8.0}


def _public(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def register(http: httpx.Client, device_id: str) -> DeviceClient:
    key = Ed25519PrivateKey.generate()
    body = {
        "id": device_id,
        "model": "air-quality-sensor",
        "owner": "minato-city",
        "vendor": "soyokaze-kankyo",
        "public_key": _public(key),
    }
    assert http.post("/api/v1/devices", json=body, headers=ADMIN).status_code == 201
    return DeviceClient(device_id, key)


@pytest.fixture
def publisher(mqtt_url: str) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    """Poll a condition (the broker and gateway work asynchronously); True once it holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def gateway(tmp_path: Path, database_url: str, mqtt_url: str) -> Iterator[tuple[Platform, TestClient, str]]:
    """A server whose gateway takes telemetry from Mosquitto with two workers, on a topic of its own."""
    topic = f"machimori-test/{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        gateway_mqtt_url=mqtt_url,
        gateway_mqtt_topic=topic,
        gateway_mqtt_client_id=f"test-{uuid.uuid4().hex[:12]}",
        gateway_mqtt_workers=2,
    )
    platform = open_platform(settings)
    with TestClient(create_app(platform), base_url="http://localhost") as client:
        yield platform, client, topic


def test_signed_readings_published_over_mqtt_reach_the_hub(
    gateway: tuple[Platform, TestClient, str], publisher: mqtt.Client
) -> None:
    platform, http, topic = gateway
    devices = [register(http, f"mq-{n}") for n in range(3)]
    for _ in range(20):
        for device in devices:
            device.publish(publisher, VALUES, topic).wait_for_publish(10)
    assert wait_until(lambda: count_readings(platform.database) == 60)
    for device in devices:
        stored = http.get(f"/api/v1/devices/{device.device_id}/readings", headers=ADMIN).json()
        assert [reading["counter"] for reading in stored] == list(range(20, 0, -1))
        assert all(reading["transport"] == "mqtt" for reading in stored)
    entity = app_entity(http, "urn:ngsi-ld:AirQualityObserved:mq-0")
    temperature = entity.attributes["https://smartdatamodels.org/dataModel.Environment/temperature"][0]
    assert temperature["value"] == 21.5
    assert temperature["unitCode"] == "CEL"


def app_entity(http: TestClient, entity_id: str):  # type: ignore[no-untyped-def]
    store = http.app.state.hub.store  # type: ignore[attr-defined]
    entity = store.get("", entity_id)
    assert entity is not None
    return entity


def refusal_reasons(platform: Platform) -> list[str]:
    platform.events.flush()
    with platform.database.engine.connect() as connection:
        bodies = connection.execute(select(security_events.c.body)).scalars().all()
    import json

    return [json.loads(body).get("unmapped", {}).get("reason") for body in bodies if '"transport": "mqtt"' in body]


def test_refusals_over_mqtt_are_events_and_the_honest_device_is_unaffected(
    gateway: tuple[Platform, TestClient, str], publisher: mqtt.Client
) -> None:
    platform, http, topic = gateway
    honest = register(http, "mq-honest")
    victim = register(http, "mq-victim")
    forged = sign_reading("mq-victim", Reading(1, dt.datetime.now(dt.UTC), VALUES), Ed25519PrivateKey.generate())
    publisher.publish(device_topic("mq-victim", topic), forged, qos=1).wait_for_publish(10)
    good = victim.message(VALUES)
    publisher.publish(device_topic("mq-victim", topic), good, qos=1).wait_for_publish(10)
    publisher.publish(device_topic("mq-victim", topic), good, qos=1).wait_for_publish(10)  # replayed
    publisher.publish(device_topic("mq-honest", topic), victim.message(VALUES), qos=1).wait_for_publish(10)
    publisher.publish(device_topic("mq-victim", topic), b"\xa1\x00", qos=1).wait_for_publish(10)  # not COSE
    for _ in range(5):
        honest.publish(publisher, VALUES, topic).wait_for_publish(10)
    expected = ["bad-signature", "replay", "topic-mismatch", "malformed"]
    assert wait_until(lambda: sorted(r for r in refusal_reasons(platform) if r) == sorted(expected))
    assert wait_until(lambda: count_readings(platform.database, "mq-honest") == 5)
    assert count_readings(platform.database, "mq-victim") == 1


def test_no_acknowledged_reading_is_lost_when_the_gateway_is_killed(tmp_path: Path, mqtt_url: str) -> None:
    """Readings the broker took while the gateway died (or before it acknowledged them) are delivered again
    to the restarted gateway — its session is kept — and stored exactly once (redeliveries are replays)."""
    topic = f"machimori-test/{uuid.uuid4().hex[:10]}"
    models = tmp_path / "models.yaml"  # a rate limit out of the way: this test is about delivery, not floods
    models.write_text(
        "models:\n  - id: air-quality-sensor\n    name: {ja: 試験, en: test}\n"
        "    entity_type: https://smartdatamodels.org/dataModel.Environment/AirQualityObserved\n"
        "    max_messages_per_minute: 1000000\n"
        "    measurements: {temperature: {min: -40, max: 60}, pm25: {min: 0, max: 1000}}\n",
        encoding="utf-8",
    )
    env = {
        "MACHIMORI_DEVICE_MODELS": str(models),
        "MACHIMORI_GATEWAY_MQTT_URL": mqtt_url,
        "MACHIMORI_GATEWAY_MQTT_TOPIC": topic,
        "MACHIMORI_GATEWAY_MQTT_CLIENT_ID": f"crash-{uuid.uuid4().hex[:12]}",
    }
    server = ServerProcess(tmp_path / "data", extra_env=env)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:  # four devices, each within its rate limit
        devices = [register(http, f"mq-crash-{n}") for n in range(4)]
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    publisher.loop_start()
    try:
        database = open_database(f"sqlite:///{tmp_path / 'data' / 'machimori.db'}")
        published = 0
        for n in range(400):
            devices[n % 4].publish(publisher, VALUES, topic).wait_for_publish(10)  # the broker has it (QoS 1)
            published += 1
            if n == 150:
                server.kill()  # SIGKILL, mid-stream: some readings in flight, the rest queued by the broker
        server.start()
        assert wait_until(lambda: count_readings(database) == published, 180)
        with database.engine.connect() as connection:
            from machimori.storage.tables import device_readings

            distinct = connection.execute(
                select(func.count()).select_from(
                    select(device_readings.c.device_id, device_readings.c.counter).distinct().subquery()
                )
            ).scalar_one()
        assert distinct == published
        database.dispose()
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        if server.process and server.process.poll() is None:
            server.stop()

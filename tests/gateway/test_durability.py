"""An acknowledged reading survives a crash: readings sent to a real `machimori serve` over HTTP, the server
killed with SIGKILL right after a 200, and every acknowledged reading is in the database — with its signed
envelope, its hub entity and the counter window, so a replay after the restart is still refused."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from machimori.config import load_settings
from machimori.gateway.client import Counter, DeviceClient, post_message
from machimori.gateway.envelope import Reading, sign_reading
from machimori.gateway.registry import DeviceKey
from machimori.gateway.service import open_registry
from machimori.platform import open_platform
from machimori.storage import open_database
from machimori.storage.tables import device_readings, devices, hub_entities

from ..conftest import ADMIN_TOKEN
from ..web.server import ServerProcess
from .conftest import ENTITY_TYPE, NAMESPACE, b64, public_bytes

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEVICES = 4
ACKNOWLEDGED = 100  # in all; each device stays within its model's 120 a minute


def register(http: httpx.Client, device_id: str) -> DeviceClient:
    key = Ed25519PrivateKey.generate()
    body = {
        "id": device_id,
        "model": "air-quality-sensor",
        "owner": "minato-city",
        "vendor": "acme",
        "protocol": "http",
        "public_key": b64(public_bytes(key)),
    }
    answer = http.post("/api/v1/devices", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return DeviceClient(device_id, key, Counter())


def temperature(counter: int) -> float:
    """A value that tells which reading an entity shows."""
    return (counter % 100) / 2


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> ServerProcess:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    return ServerProcess(tmp_path / "data", url)


def test_every_acknowledged_reading_survives_sigkill_and_its_replay_is_still_refused(server: ServerProcess) -> None:
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        clients = [register(http, f"aq-crash-{n}") for n in range(DEVICES)]
    acknowledged: dict[str, dict[int, bytes]] = {client.device_id: {} for client in clients}
    unexpected: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def device(client: DeviceClient) -> None:
        assert isinstance(client.key, Ed25519PrivateKey)
        counter = 0
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                counter += 1
                reading = Reading(counter, dt.datetime.now(dt.UTC), {"temperature": temperature(counter)})
                message = sign_reading(client.device_id, reading, client.key)
                try:
                    answer = post_message(http, message)
                except httpx.TransportError:
                    break  # the server died with the request in flight: not acknowledged
                with lock:
                    if answer.status_code != 200 or answer.json()["counter"] != counter:
                        unexpected.append(f"{client.device_id} {counter}: {answer.status_code} {answer.text}")
                        enough.set()
                        break
                    acknowledged[client.device_id][counter] = message
                    if sum(len(seen) for seen in acknowledged.values()) >= ACKNOWLEDGED:
                        enough.set()
        client.counter = Counter(start=counter)  # the device goes on after the last counter it used

    threads = [threading.Thread(target=device, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    assert enough.wait(60), "the devices could not send their readings"
    server.kill()  # SIGKILL right after a 200, the other devices' requests still in flight
    stop.set()
    for thread in threads:
        thread.join()
    assert not unexpected, unexpected
    total = sum(len(seen) for seen in acknowledged.values())
    assert total >= ACKNOWLEDGED

    database = open_database(server.database_url or f"sqlite:///{server.data_dir / 'machimori.db'}")
    try:
        with database.engine.connect() as connection:
            for client in clients:
                rows = connection.execute(
                    select(device_readings.c.counter, device_readings.c.envelope, device_readings.c.reading).where(
                        device_readings.c.device_id == client.device_id
                    )
                ).all()
                stored = {row.counter: (bytes(row.envelope), row.reading) for row in rows}
                for counter, message in acknowledged[client.device_id].items():
                    assert counter in stored, f"{client.device_id}: acknowledged reading {counter} was lost"
                    assert stored[counter] == (message, {"temperature": temperature(counter)})
                top = connection.execute(
                    select(devices.c.counter_top).where(devices.c.id == client.device_id)
                ).scalar_one()
                assert top == max(stored) >= max(acknowledged[client.device_id])
                body = connection.execute(
                    select(hub_entities.c.body).where(
                        hub_entities.c.id == f"urn:ngsi-ld:AirQualityObserved:{client.device_id}"
                    )
                ).scalar_one()
                assert ENTITY_TYPE in body["type"]
                # the entity shows the newest stored reading: both were written in one transaction
                assert body["attributes"][NAMESPACE + "temperature"][0]["value"] == temperature(top)
    finally:
        database.dispose()

    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for client in clients:
                seen = acknowledged[client.device_id]
                last = post_message(http, seen[max(seen)])
                assert (last.status_code, last.json()["reason"]) == (409, "replay")
                first = post_message(http, seen[min(seen)])
                assert first.status_code == 409 and first.json()["reason"] in ("replay", "counter-too-old")
                fresh = client.send(http, {"temperature": 20.0})  # its counter went on past any in flight
                assert fresh.status_code == 200, fresh.text
            rotated_elsewhere(server, http, clients[0])
    finally:
        assert server.stop() in (0, -15)


def rotated_elsewhere(server: ServerProcess, http: httpx.Client, client: DeviceClient) -> None:
    """Another process (the CLI, another worker) rotates the device's key: the server's next message under
    the new key is accepted at once, although the server verified the old key a moment ago."""
    settings = load_settings(
        environ={}, data_dir=server.data_dir, database_url=server.database_url, admin_token=ADMIN_TOKEN
    )
    other = open_platform(settings)
    try:
        registry = open_registry(other)
        assert client.send(http, {"temperature": 21.0}).status_code == 200  # the server holds the old key now
        new_key = Ed25519PrivateKey.generate()
        registry.rotate_key(client.device_id, DeviceKey.ed25519(public_bytes(new_key)), "another-process")
    finally:
        other.close()
    renewed = DeviceClient(client.device_id, new_key, client.counter)
    for _ in range(3):
        answer = renewed.send(http, {"temperature": 22.0})
        assert answer.status_code == 200, answer.text
    stale = client.send(http, {"temperature": 23.0})
    assert stale.status_code == 401 and stale.json()["reason"] in ("bad-signature", "key-changed")
    assert http.get(f"/api/v1/devices/{client.device_id}", headers=ADMIN).json()["status"] == "active"

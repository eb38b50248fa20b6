"""A fleet of simulated sensors for demos and load: provisioned through the device API, sending signed readings
over HTTP or MQTT — and, unless told otherwise, a few that misbehave (a forged key, a replayed message,
values out of range) so the gateway's refusals can be seen."""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from machimori.gateway.client import DeviceClient, post_message
from machimori.gateway.envelope import Value
from machimori.gateway.models import DeviceModel
from machimori.gateway.mqtt import TOPIC, device_topic

Behaviour = Literal["honest", "forger", "replayer", "wild"]
MISBEHAVIOURS: tuple[Behaviour, ...] = ("forger", "replayer", "wild")


@dataclass
class SimulatedDevice:
    """A simulated sensor: its client, how it behaves, and its last message (for replaying it)."""

    client: DeviceClient
    behaviour: Behaviour
    model: DeviceModel
    last: bytes | None = field(default=None, repr=False)

    def next_message(self, rng: random.Random) -> bytes:
        """What this device sends next (a replayer sends its previous message again, once it has one)."""
        if self.behaviour == "replayer" and self.last is not None:
            return self.last
        message = self.client.message(plausible_values(self.model, rng, wild=self.behaviour == "wild"))
        self.last = message
        return message


def plausible_values(model: DeviceModel, rng: random.Random, *, wild: bool = False) -> dict[str, Value]:
    """Values inside the model's ranges (or, wild, far above them)."""
    values: dict[str, Value] = {}
    for name, measurement in model.measurements.items():
        low = measurement.min if measurement.min is not None else 0.0
        high = measurement.max if measurement.max is not None else low + 100
        if measurement.type == "boolean":
            values[name] = rng.random() < 0.5
        elif measurement.type == "text":
            values[name] = rng.choice(measurement.choices or ["ok"])
        elif wild:
            values[name] = high * 10 + 1000
        else:
            share = (0.45 if low < 0 else 0.05) + 0.1 * rng.random()  # mild weather, clean air
            value = low + (high - low) * share
            values[name] = round(value) if measurement.type == "integer" else round(value, 2)
    return values


def provision(
    http: httpx.Client,
    admin: dict[str, str],
    model: DeviceModel,
    count: int,
    *,
    owner: str,
    vendor: str,
    prefix: str = "sim",
    protocol: Literal["http", "mqtt"] = "http",
    misbehaving: bool = True,
    firmware: str | None = None,
) -> list[SimulatedDevice]:
    """Register `count` devices (the last three misbehaving, if asked and there are at least four) with fresh
    keys; a device already registered gets its key rotated."""
    fleet = []
    for n in range(1, count + 1):
        device_id = f"{prefix}-{n:04d}"
        behaviour: Behaviour = "honest"
        if misbehaving and count >= 4 and n > count - len(MISBEHAVIOURS):
            behaviour = MISBEHAVIOURS[n - (count - len(MISBEHAVIOURS)) - 1]
        key = Ed25519PrivateKey.generate()
        public = public_key_text(key)
        body: dict[str, str | None] = {"id": device_id, "model": model.id, "owner": owner, "vendor": vendor}
        body |= {"public_key": public, "protocol": protocol, "firmware": firmware}
        answer = http.post("/api/v1/devices", json=body, headers=admin)
        if answer.status_code == 409:
            answer = http.post(f"/api/v1/devices/{device_id}/key", json={"public_key": public}, headers=admin)
        answer.raise_for_status()
        signing_key = Ed25519PrivateKey.generate() if behaviour == "forger" else key
        fleet.append(SimulatedDevice(DeviceClient(device_id, signing_key), behaviour, model))
    return fleet


def run_http(
    http: httpx.Client, fleet: list[SimulatedDevice], messages: int, rate: float, *, seed: int = 1
) -> Tally[str]:
    """Send `messages` readings round the fleet at `rate` a second; how many were accepted or refused, by reason."""
    rng = random.Random(seed)
    tally: Tally[str] = Tally()

    def send(device: SimulatedDevice) -> None:
        answer = post_message(http, device.next_message(rng))
        tally["accepted" if answer.status_code == 200 else answer.json().get("reason", str(answer.status_code))] += 1

    _paced(fleet, messages, rate, send)
    return tally


def run_mqtt(
    client: mqtt.Client,
    fleet: list[SimulatedDevice],
    messages: int,
    rate: float,
    *,
    topic: str = TOPIC,
    seed: int = 1,
) -> Tally[str]:
    """Publish `messages` readings round the fleet at `rate` a second (QoS 1); how many the broker took."""
    rng = random.Random(seed)
    tally: Tally[str] = Tally()

    def publish(device: SimulatedDevice) -> None:
        info = client.publish(device_topic(device.client.device_id, topic), device.next_message(rng), qos=1)
        info.wait_for_publish(timeout=10)
        tally["published" if info.is_published() else "not-published"] += 1

    _paced(fleet, messages, rate, publish)
    return tally


def _paced(fleet: list[SimulatedDevice], messages: int, rate: float, send: Callable[[SimulatedDevice], None]) -> None:
    started = time.monotonic()
    for n in range(messages):
        send(fleet[n % len(fleet)])
        ahead = started + (n + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The key's public half as the device API takes it: raw 32 bytes, base64url."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class TelnetLogin:
    """A simulated device's telnet management login on loopback (for demos of the credential probe): it asks
    for a login and a password and lets in one pair — a factory default, as on the devices Mirai took over."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-telnet", daemon=True)

    def __enter__(self) -> TelnetLogin:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        sessions = asyncio.all_tasks(self._loop)
        for session in sessions:
            session.cancel()  # end sessions still open, so none is left to a closed loop
        self._loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
        self._loop.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"RC-200 login: ")
            username = (await reader.readline()).strip().decode(errors="replace")
            writer.write(b"Password: ")
            password = (await reader.readline()).strip().decode(errors="replace")
            if (username, password) == (self.username, self.password):
                writer.write(b"\r\nBusyBox v1.19 built-in shell\r\n# ")
            else:
                writer.write(b"\r\nLogin incorrect\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)
        finally:
            writer.close()

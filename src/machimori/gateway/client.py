"""The device side: sign readings with the device's key under a counter that never goes back, and send them
over HTTP or publish them over MQTT.

The counter survives a restart the way OSCORE recommends (RFC 8613, Appendix B.1.1): the device writes down
a counter some steps ahead before it uses the counters up to it, so a reboot skips a few counters but never
repeats one — the gateway would refuse a repeated counter as a replay.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from machimori.gateway.envelope import Reading, Value, mac_reading, sign_reading
from machimori.gateway.mqtt import TOPIC, device_topic

RESERVE = 100
TELEMETRY_PATH = "/api/v1/telemetry"


class Counter:
    """A message counter kept in a file (or in memory only, if no file is given)."""

    def __init__(self, path: Path | None = None, start: int = 0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._value = start
        self._reserved = start
        if path is not None and path.exists():
            self._value = self._reserved = int(path.read_text(encoding="ascii").strip() or 0)

    def next(self) -> int:
        """The next counter, written ahead to the file before it is handed out."""
        with self._lock:
            value = self._value + 1
            if self.path is not None and value > self._reserved:
                reserved = value + RESERVE
                _write_durably(self.path, str(reserved))
                self._reserved = reserved  # only once it is on disk: a failed write must not reserve anything
            self._value = value
            return value


class DeviceClient:
    """Signs a device's readings (Ed25519, or HMAC for very small devices) and sends them."""

    def __init__(self, device_id: str, key: Ed25519PrivateKey | bytes, counter: Counter | None = None) -> None:
        self.device_id = device_id
        self.key = key
        self.counter = counter or Counter()

    def message(self, values: dict[str, Value], time: dt.datetime | None = None) -> bytes:
        """A signed message of these values, under the next counter."""
        reading = Reading(self.counter.next(), time or dt.datetime.now(dt.UTC), values)
        if isinstance(self.key, Ed25519PrivateKey):
            return sign_reading(self.device_id, reading, self.key)
        return mac_reading(self.device_id, reading, self.key)

    def send(self, http: httpx.Client, values: dict[str, Value]) -> httpx.Response:
        """Sign and POST a reading to the gateway (the client's base URL); the answer says stored or why not."""
        return post_message(http, self.message(values))

    def publish(self, client: mqtt.Client, values: dict[str, Value], topic: str = TOPIC) -> mqtt.MQTTMessageInfo:
        """Sign and publish a reading on the device's topic, QoS 1 (the broker acknowledges it)."""
        return client.publish(device_topic(self.device_id, topic), self.message(values), qos=1)


def post_message(http: httpx.Client, message: bytes) -> httpx.Response:
    """POST one signed message to the gateway."""
    return http.post(TELEMETRY_PATH, content=message, headers={"content-type": "application/cose"})


def _write_durably(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)  # the rename itself is durable once its directory is synced
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

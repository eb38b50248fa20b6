"""Fixtures of the asset plane's tests: devices registered through the HTTP API with real keys, and the
security events the gateway stored."""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from machimori.events.query import EventQuery, find_events
from machimori.gateway.client import Counter, DeviceClient
from machimori.gateway.envelope import Reading, Value, mac_reading, sign_reading
from machimori.platform import Platform

MODEL = "air-quality-sensor"
ENTITY_TYPE = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
NAMESPACE = "https://smartdatamodels.org/dataModel.Environment/"
COSE = {"content-type": "application/cose"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass
class Registered:
    """A device registered through the API, with the private key (or HMAC secret) only the device holds."""

    id: str
    key: Ed25519PrivateKey | bytes
    client: DeviceClient

    def message(self, values: dict[str, Value] | None = None, time: dt.datetime | None = None) -> bytes:
        """A signed message under the device's next counter."""
        return self.client.message(values or {"temperature": 21.5}, time)

    def at(self, counter: int, values: dict[str, Value] | None = None, time: dt.datetime | None = None) -> bytes:
        """A signed message under a counter of the caller's choosing (the counter object is left alone)."""
        reading = Reading(counter, time or dt.datetime.now(dt.UTC), values or {"temperature": 21.5})
        if isinstance(self.key, Ed25519PrivateKey):
            return sign_reading(self.id, reading, self.key)
        return mac_reading(self.id, reading, self.key)


def register(
    client: TestClient,
    admin: dict[str, str],
    device_id: str,
    *,
    key: Ed25519PrivateKey | bytes | None = None,
    model: str = MODEL,
    expect: int = 201,
    **fields: Any,
) -> Registered:
    """Register a device through POST /api/v1/devices (an Ed25519 key made for it unless given)."""
    key = Ed25519PrivateKey.generate() if key is None else key
    body: dict[str, Any] = {"id": device_id, "model": model, "owner": "minato-city", "vendor": "acme", **fields}
    if isinstance(key, Ed25519PrivateKey):
        body["public_key"] = b64(public_bytes(key))
    else:
        body["hmac_secret"] = b64(key)
    response = client.post("/api/v1/devices", json=body, headers=admin)
    assert response.status_code == expect, response.text
    return Registered(device_id, key, DeviceClient(device_id, key, Counter()))


def send(client: TestClient, message: bytes, content_type: str = "application/cose") -> httpx.Response:
    """POST one message to the telemetry endpoint."""
    return client.post("/api/v1/telemetry", content=message, headers={"content-type": content_type})


def stored_events(platform: Platform, **query: Any) -> list[dict[str, Any]]:
    """The security events stored so far (every one emitted before the call), newest first."""
    platform.events.flush()
    return find_events(platform.database, EventQuery(limit=1000, **query))


def refusals(platform: Platform, reason: str | None = None, device: str | None = None) -> list[dict[str, Any]]:
    """Stored telemetry-refusal events (with this reason, about this device)."""
    return [
        event
        for event in stored_events(platform, device=device)
        if "reason" in event.get("unmapped", {})
        and "telemetry" in event["message"]
        and (reason is None or event["unmapped"]["reason"] == reason)
    ]


@pytest.fixture
def device(client: TestClient, admin: dict[str, str]) -> Registered:
    """A registered air-quality sensor, signing with Ed25519."""
    return register(client, admin, "aq-001", location=[139.64, 35.44])


@pytest.fixture
def honest(client: TestClient, admin: dict[str, str]) -> Registered:
    """Another registered device that only ever sends good readings."""
    return register(client, admin, "aq-honest")


@pytest.fixture
def hmac_device(client: TestClient, admin: dict[str, str]) -> Registered:
    """A very small device authenticating its readings with an HMAC secret (COSE_Mac0)."""
    return register(client, admin, "tiny-001", key=os.urandom(32))

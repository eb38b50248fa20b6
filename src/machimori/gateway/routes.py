"""The asset plane's HTTP API: telemetry in (gateway/ingress.py: authenticated by the device's signature), devices
managed with an API token (registering and quarantining needs the admin; releasing, the admin only, always with a reason)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from machimori.gateway.audits import audit_devices, report_findings
from machimori.gateway.ingress import TelemetryIngress
from machimori.gateway.readings import recent_readings
from machimori.gateway.registry import DeviceKey, DeviceStatus, NewDevice, RegistryError
from machimori.gateway.service import AssetPlane, open_asset_plane
from machimori.hub.store import EntityStore
from machimori.identity.tokens import Principal
from machimori.platform import Platform
from machimori.web.problems import problem
from machimori.web.security import require

management = APIRouter(prefix="/api/v1/devices", tags=["devices"])
Reader = Annotated[Principal, Depends(require("devices.read"))]
Manager = Annotated[Principal, Depends(require("devices.manage"))]
Releaser = Annotated[Principal, Depends(require("devices.release"))]


def install(app: FastAPI, platform: Platform, store: EntityStore) -> AssetPlane:
    """Open the asset plane over the hub's store and mount its routes."""
    assets = open_asset_plane(platform, store)
    app.state.assets = assets
    app.add_middleware(TelemetryIngress, gateway=assets.gateway)  # POST /api/v1/telemetry, before routing
    app.include_router(management)

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, error: RegistryError) -> JSONResponse:
        return problem(error.status, str(error), "device")

    return assets


def assets_of(request: Request) -> AssetPlane:
    assets: AssetPlane = request.app.state.assets
    return assets


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: str | None = Field(None, description="raw Ed25519 public key, base64url (32 bytes)")
    hmac_secret: str | None = Field(None, description="HMAC secret, base64url (≥ 32 bytes); for very small devices")

    def key(self) -> DeviceKey:
        if (self.public_key is None) == (self.hmac_secret is None):
            raise RegistryError("give exactly one of public_key and hmac_secret / どちらか一方を指定してください")
        if self.public_key is not None:
            return DeviceKey.ed25519(_b64(self.public_key))
        assert self.hmac_secret is not None
        return DeviceKey.hmac_secret(_b64(self.hmac_secret))


class DeviceBody(KeyBody):
    id: str
    model: str
    owner: str
    vendor: str | None = None
    tenant: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")
    component: str | None = None
    name: str | None = Field(None, max_length=255)
    location: tuple[float, float] | None = None
    address: str | None = Field(None, max_length=255)
    protocol: str = "mqtt"
    mqtt_client_id: str | None = Field(None, max_length=128)
    firmware: str | None = Field(None, max_length=64)
    management_username: str | None = Field(None, max_length=128)
    management_password: str | None = Field(None, max_length=256, description="checked, fingerprinted, never stored")
    management_endpoints: tuple[str, ...] = Field((), max_length=8, description="where audits may probe its logins")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


def _b64(text: str) -> bytes:
    # validated: otherwise characters outside the alphabet are dropped without a word, and a mistyped or
    # pasted-wrong secret would be registered as some other secret
    try:
        padded = text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except ValueError:
        raise RegistryError("not base64url / base64url ではありません") from None


@management.get("")
def list_devices(request: Request, _: Reader, status: DeviceStatus | None = None) -> list[dict[str, Any]]:
    """Registered devices (no key material)."""
    return [record.public() for record in assets_of(request).registry.all(status)]


@management.post("", status_code=201)
def add_device(request: Request, body: DeviceBody, manager: Manager) -> dict[str, Any]:
    """Register a device with its key; a management password is checked and only fingerprinted."""
    fields = body.model_dump(exclude={"public_key", "hmac_secret"})
    record = assets_of(request).registry.add(NewDevice(key=body.key(), **fields), manager.name)
    return record.public()


@management.get("/audit")
def audit(request: Request, _: Reader) -> list[dict[str, object]]:
    """Run the device audits now; each finding is also an event."""
    assets = assets_of(request)
    findings = audit_devices(assets.registry)
    report_findings(assets.registry.events, assets.registry, findings)
    return [finding.public() for finding in findings]


@management.get("/{device_id}")
def show_device(request: Request, device_id: str, _: Reader) -> dict[str, Any]:
    return assets_of(request).registry.require(device_id).public()


@management.get("/{device_id}/readings")
def readings(
    request: Request, device_id: str, _: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The device's newest stored readings, each with its signed envelope (re-verifiable with its key)."""
    assets = assets_of(request)
    assets.registry.require(device_id)
    return recent_readings(assets.registry.database, device_id, limit)


@management.post("/{device_id}/key")
def rotate_key(request: Request, device_id: str, body: KeyBody, manager: Manager) -> dict[str, Any]:
    """Give the device a new key (its message counters go on from where they were)."""
    return assets_of(request).registry.rotate_key(device_id, body.key(), manager.name).public()


@management.post("/{device_id}/quarantine")
def quarantine(request: Request, device_id: str, body: Reason, manager: Manager) -> dict[str, Any]:
    return assets_of(request).registry.quarantine(device_id, body.reason, manager.name).public()


@management.post("/{device_id}/release")
def release(request: Request, device_id: str, body: Reason, admin: Releaser) -> dict[str, Any]:
    return assets_of(request).registry.release(device_id, body.reason, admin.name).public()


@management.post("/{device_id}/retire")
def retire(request: Request, device_id: str, body: Reason, manager: Manager) -> dict[str, Any]:
    return assets_of(request).registry.retire(device_id, body.reason, manager.name).public()

"""The asset plane put together over the platform: the registry and the gateway that writes into the hub."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from machimori.gateway.checks import TimeBounds
from machimori.gateway.ingest import Gateway, QuarantinePolicy
from machimori.gateway.models import load_models
from machimori.gateway.registry import Registry
from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.hub.store import EntityStore
from machimori.keyfiles import create_private_file
from machimori.platform import Platform
from machimori.secretbox import SecretBox

FINGERPRINT_KEY = "device-fingerprints.key"


@dataclass
class AssetPlane:
    """The device registry and the telemetry gateway of one process."""

    registry: Registry
    gateway: Gateway

    def close(self) -> None:
        self.gateway.close()


def open_registry(platform: Platform) -> Registry:
    """The device registry over the platform's database: models built in and from settings, stakeholders from
    the city model (when one is configured) so every vendor and owner is one of them."""
    settings = platform.settings
    stakeholders = None
    if settings.city_model is not None:
        stakeholders = {s.id for s in load_model(settings.city_model, load_catalog(())).stakeholders}
    return Registry(
        platform.database,
        platform.audit,
        platform.events,
        SecretBox.in_keys_dir(settings.keys_dir),
        load_models(settings.device_models),
        fingerprint_key(platform),
        stakeholders=stakeholders,
    )


def open_asset_plane(platform: Platform, store: EntityStore) -> AssetPlane:
    """The registry and a gateway writing accepted readings into this hub store."""
    settings = platform.settings
    registry = open_registry(platform)
    gateway = Gateway(
        registry,
        store,
        platform.events,
        bounds=TimeBounds(
            ahead=dt.timedelta(seconds=settings.gateway_clock_ahead_seconds),
            behind=dt.timedelta(seconds=settings.gateway_clock_behind_seconds),
        ),
        policy=QuarantinePolicy(after=settings.gateway_quarantine_after),
    )
    registry.on_change = gateway.forget
    return AssetPlane(registry, gateway)


def fingerprint_key(platform: Platform) -> bytes:
    """The data directory's key for fingerprints of device secrets and management logins (made on first use)."""
    path = platform.settings.keys_dir / FINGERPRINT_KEY
    create_private_file(path, os.urandom(32))
    return path.read_bytes()

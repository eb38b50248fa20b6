"""Settings: embedded defaults, an optional TOML file, then MACHIMORI_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from machimori.diagnostics import InputError, Problem

ENV_PREFIX = "MACHIMORI_"


def default_data_dir() -> Path:
    """Where machimori keeps its database and keys unless told otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "machimori"


class Settings(BaseModel):
    """Everything an operator can set; each setting has a safe default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="database file, keys")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8750, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_tls_proxy: bool = Field(False, description="a TLS-terminating proxy is in front of a public bind")
    admin_token: str | None = Field(None, min_length=32, description="first admin credential; else generated")
    audit_origin: str = Field("machimori.localhost/audit", description="the log's name in its checkpoints")
    public_url: str | None = Field(None, description="the URL clients reach the server at (OAuth issuer)")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    city_model: Path | None = Field(None, description="city model to serve")
    hub_conformance_tenant: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,16}$",
        description="TEST ONLY: serve NGSI-LD requests without a token in test tenants of this name (hub/conformance)",
    )
    hub_contexts_dir: Path | None = Field(
        None, description="@context documents the hub serves besides the ETSI core ones (a folder with urls.json)"
    )
    hub_fetch_contexts: bool = Field(False, description="let the hub fetch unknown @context URLs from the web")
    device_models: Path | None = Field(None, description="device models besides the built-in ones (YAML)")
    gateway_mqtt_url: str | None = Field(
        None, pattern=r"^mqtts?://[^/\s]+$", description="the MQTT broker the gateway takes telemetry from"
    )
    gateway_mqtt_client_id: str = Field(
        "machimori-gateway", pattern=r"^[A-Za-z0-9_-]{1,40}$", description="MQTT client id prefix (one per process)"
    )
    gateway_mqtt_topic: str = Field(
        "machimori/telemetry", pattern=r"^[A-Za-z0-9_/-]{1,100}$", description="devices publish to <topic>/<device id>"
    )
    gateway_mqtt_workers: int = Field(1, ge=1, le=64, description="MQTT connections sharing the telemetry")
    gateway_clock_ahead_seconds: int = Field(60, ge=0, description="how far ahead a reading's time may be")
    gateway_clock_behind_seconds: int = Field(900, ge=1, description="how old a reading may be when it arrives")
    gateway_quarantine_after: int = Field(
        5, ge=1, description="suspicious refusals (bad signature, replay …) within 10 minutes that quarantine a device"
    )
    detection_darknet: list[str] = Field(
        default_factory=list, description="the town's unused address ranges (CIDR); traffic to them is scanning"
    )
    detection_indicators: list[Path] = Field(
        default_factory=list, description="C&C indicator files (STIX 2.1 bundles or plain lists) matched on flows"
    )
    detection_threshold: float = Field(0.8, gt=0, le=1, description="score at which a flow becomes a finding")
    detection_quarantine: list[Literal["scanning", "command-and-control", "ddos"]] = Field(
        default_factory=list, description="botnet stages whose findings quarantine a registered device (off by default)"
    )
    detection_identity: str = Field(
        "machimori", max_length=200, description="the organisation named as author of exported STIX indicators"
    )
    detection_quarantine_score: float = Field(0.95, gt=0, le=1, description="least score of a quarantining finding")
    guard_upstream: str | None = Field(None, description="the NGSI-LD broker `machimori guard` stands in front of")
    guard_upstream_token: str | None = Field(None, description="bearer token the guard presents to the upstream")

    @field_validator("detection_darknet", "detection_indicators", "detection_quarantine", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """A list from the environment comes comma-separated."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("detection_darknet")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each darknet range is a network (host bits allowed)."""
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"not a network: {network!r} / ネットワークではありません") from None
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in use."""
        return self.database_url or f"sqlite:///{self.data_dir / 'machimori.db'}"

    @property
    def issuer(self) -> str:
        """The OAuth issuer: public_url, else the address the server listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def loopback(self) -> bool:
        """Whether the server listens only on this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def load_settings(file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, then the file (or MACHIMORI_CONFIG), then the environment, then overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    file = file or (Path(environ[ENV_PREFIX + "CONFIG"]) if environ.get(ENV_PREFIX + "CONFIG") else None)
    source = "settings"
    if file is not None:
        source = str(file)
        try:
            values.update(tomllib.loads(file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputError([Problem(str(file), 0, 0, "設定ファイルがありません / config file not found")]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InputError([Problem(str(file), 0, 0, f"TOML として読めません / not TOML: {error}")]) from None
    for name in Settings.model_fields:
        if (raw := environ.get(ENV_PREFIX + name.upper())) is not None and raw != "":
            values[name] = raw
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = [
            Problem(source, 0, 0, f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}") for e in error.errors()
        ]
        raise InputError(problems) from None

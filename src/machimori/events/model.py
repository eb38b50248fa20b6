"""The security event: one typed model shaped after OCSF classes, for every plane."""

from __future__ import annotations

import datetime as dt
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from machimori import __version__
from machimori.clock import utc_now
from machimori.ids import uuid7

OCSF_VERSION = "1.3.0"


class EventClass(IntEnum):
    """OCSF event classes machimori emits (class_uid)."""

    DETECTION_FINDING = 2004
    ACCOUNT_CHANGE = 3001
    AUTHENTICATION = 3002
    AUTHORIZE_SESSION = 3003
    ENTITY_MANAGEMENT = 3004
    NETWORK_ACTIVITY = 4001
    DEVICE_CONFIG_STATE_CHANGE = 5019
    API_ACTIVITY = 6003


class Severity(IntEnum):
    """OCSF severity_id."""

    UNKNOWN = 0
    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5
    FATAL = 6
    OTHER = 99


class Status(IntEnum):
    """OCSF status_id."""

    UNKNOWN = 0
    SUCCESS = 1
    FAILURE = 2


class Actor(BaseModel):
    """Who acted: a user or service account, and the app it used."""

    model_config = ConfigDict(extra="forbid")
    uid: str
    name: str | None = None
    org: str | None = Field(None, description="the stakeholder organisation")
    app_name: str | None = None


class Device(BaseModel):
    """The device involved."""

    model_config = ConfigDict(extra="forbid")
    uid: str
    name: str | None = None
    ip: str | None = None
    type: str | None = None


class Resource(BaseModel):
    """A thing acted on (an entity, a dataset, a token, the audit log …)."""

    model_config = ConfigDict(extra="forbid")
    uid: str
    type: str
    name: str | None = None


class Endpoint(BaseModel):
    """A network endpoint."""

    model_config = ConfigDict(extra="forbid")
    ip: str | None = None
    port: int | None = None


class SecurityEvent(BaseModel):
    """A security event; to_ocsf() gives its OCSF-shaped JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uid: str = Field(default_factory=uuid7)
    time: dt.datetime = Field(default_factory=utc_now)
    class_uid: EventClass
    activity_id: int = Field(0, ge=0, le=99, description="OCSF activity of the class (e.g. 1 Logon, 1 Create)")
    severity_id: Severity = Severity.INFORMATIONAL
    status_id: Status = Status.UNKNOWN
    message: str
    actor: Actor | None = None
    device: Device | None = None
    resources: list[Resource] = Field(default_factory=list)
    src_endpoint: Endpoint | None = None
    tenant: str | None = None
    unmapped: dict[str, Any] = Field(default_factory=dict)

    @property
    def category_uid(self) -> int:
        return int(self.class_uid) // 1000

    @property
    def type_uid(self) -> int:
        return int(self.class_uid) * 100 + self.activity_id

    def to_ocsf(self) -> dict[str, Any]:
        """The event as OCSF-shaped JSON (time in epoch milliseconds, tenant in metadata)."""
        body: dict[str, Any] = {
            "class_uid": int(self.class_uid),
            "category_uid": self.category_uid,
            "activity_id": self.activity_id,
            "type_uid": self.type_uid,
            "severity_id": int(self.severity_id),
            "status_id": int(self.status_id),
            "time": int(self.time.timestamp() * 1000),
            "time_dt": self.time.isoformat().replace("+00:00", "Z"),
            "message": self.message,
            "metadata": {
                "uid": self.uid,
                "version": OCSF_VERSION,
                "product": {"name": "machimori", "vendor_name": "machimori", "version": __version__},
                **({"tenant_uid": self.tenant} if self.tenant else {}),
            },
        }
        if self.actor:
            actor = self.actor
            user: dict[str, Any] = {k: v for k, v in {"uid": actor.uid, "name": actor.name}.items() if v is not None}
            if actor.org:
                user["org"] = {"name": actor.org}
            body["actor"] = {"user": user, **({"app_name": actor.app_name} if actor.app_name else {})}
        if self.device:
            body["device"] = self.device.model_dump(exclude_none=True)
        if self.resources:
            body["resources"] = [r.model_dump(exclude_none=True) for r in self.resources]
        if self.src_endpoint:
            body["src_endpoint"] = self.src_endpoint.model_dump(exclude_none=True)
        if self.unmapped:
            body["unmapped"] = self.unmapped
        return body

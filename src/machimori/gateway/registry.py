"""The device registry: who each device is, which key it signs with, and whether it may send at all.

Every change (add, key rotation, quarantine, release, retirement) is appended to the audit log and
reported as an event. HMAC secrets are sealed at rest; a management password is checked the moment it is
given and only its keyed fingerprint is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from machimori.audit.log import AuditLog
from machimori.clock import as_utc, utc_now
from machimori.events import Actor, Device, EventClass, EventStream, Resource, SecurityEvent, Severity, Status
from machimori.gateway.credentials import CredentialPair, Fingerprinter, mirai_pairs, weakness
from machimori.gateway.envelope import DEVICE_ID
from machimori.gateway.models import DeviceModel
from machimori.gateway.window import CounterWindow
from machimori.secretbox import SecretBox
from machimori.storage import Database
from machimori.storage.tables import devices

PROTOCOLS = ("mqtt", "http")
RESERVED_IDS = frozenset({"audit"})  # GET /api/v1/devices/audit is the audit, so no device could be shown there


class DeviceStatus(StrEnum):
    active = "active"
    quarantined = "quarantined"
    retired = "retired"


class RegistryError(ValueError):
    """A registry request that cannot be carried out (unknown device, bad key, unknown model …)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DeviceKey:
    """A device's verification key: an Ed25519 public key, or (for very small devices) an HMAC secret."""

    kind: str  # "ed25519" or "hmac-sha256"
    material: bytes = field(repr=False)

    @classmethod
    def ed25519(cls, public_key: bytes) -> DeviceKey:
        try:
            Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            raise RegistryError("not an Ed25519 public key (32 bytes) / Ed25519 公開鍵ではありません") from None
        return cls("ed25519", public_key)

    @classmethod
    def hmac_secret(cls, secret: bytes) -> DeviceKey:
        if len(secret) < 32:
            raise RegistryError("an HMAC secret needs at least 32 bytes / HMAC 秘密鍵は 32 バイト以上")
        return cls("hmac-sha256", secret)

    def verifier(self) -> Ed25519PublicKey | bytes:
        """What `Envelope.verified_reading` checks a message with."""
        return Ed25519PublicKey.from_public_bytes(self.material) if self.kind == "ed25519" else self.material


@dataclass(frozen=True)
class NewDevice:
    """A device to register."""

    id: str
    model: str
    owner: str
    key: DeviceKey
    vendor: str | None = None
    tenant: str = ""
    component: str | None = None
    name: str | None = None
    location: tuple[float, float] | None = None
    address: str | None = None
    protocol: str = "mqtt"
    mqtt_client_id: str | None = None
    firmware: str | None = None
    key_expires_at: dt.datetime | None = None
    management_username: str | None = None
    management_password: str | None = field(default=None, repr=False)
    management_endpoints: tuple[str, ...] = ()  # where audits may probe its logins, e.g. telnet://10.1.2.3:23


@dataclass(frozen=True)
class DeviceRecord:
    """A registered device as stored (no key material)."""

    id: str
    tenant: str
    model: str
    vendor: str
    owner: str
    component: str | None
    name: str | None
    location: list[float] | None
    address: str | None
    protocol: str
    mqtt_client_id: str | None
    firmware: str | None
    key_kind: str
    key_fingerprint: str
    key_created_at: dt.datetime
    key_expires_at: dt.datetime | None
    status: DeviceStatus
    status_reason: str | None
    status_changed_at: dt.datetime
    management: dict[str, Any] | None
    created_at: dt.datetime
    last_seen_at: dt.datetime | None

    def public(self) -> dict[str, Any]:
        """The record as JSON (times in RFC 3339)."""
        return {
            key: (value.isoformat().replace("+00:00", "Z") if isinstance(value, dt.datetime) else value)
            for key, value in asdict(self).items()
        }


RECORD_COLUMNS = [devices.c[name] for name in DeviceRecord.__dataclass_fields__]


class Registry:
    """Registers devices and changes their keys and status; every change audit-logged and reported."""

    def __init__(
        self,
        database: Database,
        audit: AuditLog,
        events: EventStream,
        box: SecretBox,
        models: dict[str, DeviceModel],
        fingerprint_key: bytes,
        *,
        stakeholders: Collection[str] | None = None,
        on_change: Callable[[DeviceRecord], None] | None = None,
    ) -> None:
        self.database = database
        self.audit = audit
        self.events = events
        self.box = box
        self.models = models
        self.fingerprinter = Fingerprinter(fingerprint_key)
        self._fingerprint_key = fingerprint_key
        self.stakeholders = stakeholders  # the city model's, when one is loaded: vendor and owner must be in it
        self.on_change = on_change

    # --- reading -------------------------------------------------------------------------------------
    def get(self, device_id: str) -> DeviceRecord | None:
        with self.database.engine.connect() as connection:
            row = connection.execute(select(*RECORD_COLUMNS).where(devices.c.id == device_id)).first()
        return _record(row._mapping) if row else None

    def require(self, device_id: str) -> DeviceRecord:
        record = self.get(device_id)
        if record is None:
            raise RegistryError(f"no device {device_id!r} / 登録されていない機器です", status=404)
        return record

    def all(self, status: DeviceStatus | None = None) -> list[DeviceRecord]:
        query = select(*RECORD_COLUMNS).order_by(devices.c.id)
        if status is not None:
            query = query.where(devices.c.status == status.value)
        with self.database.engine.connect() as connection:
            return [_record(row._mapping) for row in connection.execute(query)]

    def key_of(self, device_id: str) -> DeviceKey | None:
        """The device's current verification key (an HMAC secret unsealed), or None if it is not registered."""
        found = self.lookup(device_id)
        return found[1] if found else None

    def lookup(self, device_id: str) -> tuple[DeviceRecord, DeviceKey, CounterWindow] | None:
        """In one read: the device, its verification key and its counter window (None if not registered)."""
        columns = (devices.c.public_key, devices.c.sealed_secret, devices.c.counter_top, devices.c.counter_window)
        with self.database.engine.connect() as connection:
            row = connection.execute(select(*RECORD_COLUMNS, *columns).where(devices.c.id == device_id)).first()
        if row is None:
            return None
        values = dict(row._mapping)
        public_key, sealed, top, seen = (values.pop(column.name) for column in columns)
        if values["key_kind"] == "ed25519":
            key = DeviceKey("ed25519", public_key)
        else:
            key = DeviceKey("hmac-sha256", self.box.open(sealed, _secret_binding(device_id)))
        return _record(values), key, CounterWindow(top, seen)

    # --- changing ------------------------------------------------------------------------------------
    def add(self, new: NewDevice, actor: str) -> DeviceRecord:
        """Register a device; RegistryError (409 if the id is taken) on anything wrong with it."""
        return self.add_many([new], actor)[0]

    def validate(self, new: NewDevice) -> None:
        """RegistryError if the device could not be registered as given (the id aside: taken or not)."""
        self._row(new, utc_now())

    def add_many(self, news: Iterable[NewDevice], actor: str) -> list[DeviceRecord]:
        """Register several devices in one transaction: all or none."""
        now = utc_now()
        rows = [self._row(new, now) for new in news]
        try:
            with self.database.begin() as connection:
                if rows:
                    connection.execute(insert(devices), rows)
        except IntegrityError:
            raise RegistryError(
                "a device with that id is already registered / 既に登録されています", status=409
            ) from None
        records = [self.require(row["id"]) for row in rows]
        self.audit.append_all_sync([_entry("device.add", record.id, actor, model=record.model) for record in records])
        for record in records:
            self._report(record, actor, EventClass.ENTITY_MANAGEMENT, 1, "device registered / 機器を登録")
            if record.management and record.management.get("weakness"):
                self._report_weak_login(record, actor)
        return records

    def rotate_key(
        self, device_id: str, key: DeviceKey, actor: str, expires_at: dt.datetime | None = None
    ) -> DeviceRecord:
        """Give the device a new key: messages under the old key stop verifying at once. Its counters go on
        from where they were (each stored reading is kept under its device and counter, so a counter is never
        used twice, whatever the key); a counter used before is refused (replay, counter-too-old)."""
        record = self.require(device_id)
        if record.status == DeviceStatus.retired:
            raise RegistryError("a retired device gets no new key / 廃止済みの機器です", status=409)
        now = utc_now()
        with self.database.begin() as connection:
            connection.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(
                    **self._key_columns(device_id, key),
                    key_created_at=now,
                    key_expires_at=expires_at,
                )
            )
        changed = self.require(device_id)
        self.audit.append_sync(
            _entry("device.rotate-key", device_id, actor, old=record.key_fingerprint, new=changed.key_fingerprint)
        )
        self._report(changed, actor, EventClass.ENTITY_MANAGEMENT, 3, "device key rotated / 機器の鍵を更新")
        if self.on_change is not None:  # the gateway drops its copy of the old key and counters at once
            self.on_change(changed)
        return changed

    def quarantine(self, device_id: str, reason: str, actor: str) -> DeviceRecord:
        """Refuse everything the device sends from now on (until a privileged release)."""
        return self._set_status(device_id, DeviceStatus.quarantined, reason, actor, allowed_from=(DeviceStatus.active,))

    def release(self, device_id: str, reason: str, actor: str) -> DeviceRecord:
        """Let a quarantined device send again — a privileged action, always with a reason."""
        return self._set_status(device_id, DeviceStatus.active, reason, actor, allowed_from=(DeviceStatus.quarantined,))

    def retire(self, device_id: str, reason: str, actor: str) -> DeviceRecord:
        """Take the device out of service for good: its key is refused from now on."""
        return self._set_status(
            device_id,
            DeviceStatus.retired,
            reason,
            actor,
            allowed_from=(DeviceStatus.active, DeviceStatus.quarantined),
        )

    def _set_status(
        self,
        device_id: str,
        status: DeviceStatus,
        reason: str,
        actor: str,
        *,
        allowed_from: tuple[DeviceStatus, ...],
    ) -> DeviceRecord:
        if not reason.strip():  # the audit log says why, every time
            raise RegistryError(f"to {_VERB[status]} a device needs a reason / 理由が必要です")
        now = utc_now()
        with self.database.begin() as connection:
            changed = connection.execute(
                update(devices)
                .where(devices.c.id == device_id, devices.c.status.in_([s.value for s in allowed_from]))
                .values(status=status.value, status_reason=reason, status_changed_at=now)
            ).rowcount
        record = self.require(device_id)
        if not changed:
            raise RegistryError(
                f"{device_id} is {record.status.value}: cannot become {status.value} / この状態からは変更できません",
                status=409,
            )
        self.audit.append_sync(_entry(f"device.{_VERB[status]}", device_id, actor, reason=reason))
        self._report(
            record,
            actor,
            EventClass.DEVICE_CONFIG_STATE_CHANGE,
            _ACTIVITY[status],
            f"device {status.value}: {reason} / 機器の状態を変更",
            severity=Severity.HIGH if status == DeviceStatus.quarantined else Severity.INFORMATIONAL,
        )
        if self.on_change is not None:
            self.on_change(record)
        return record

    # --- rows ----------------------------------------------------------------------------------------
    def _row(self, new: NewDevice, now: dt.datetime) -> dict[str, Any]:
        if not DEVICE_ID.match(new.id):
            raise RegistryError(
                f"device id {new.id[:40]!r}: letters, digits, '.', '_' and '-' only, at most 128 / 機器 ID が不正です"
            )
        if new.id in RESERVED_IDS:
            raise RegistryError(f"device id {new.id!r} is reserved (an API path) / 予約された ID です")
        model = self.models.get(new.model)
        if model is None:
            raise RegistryError(f"{new.id}: unknown device model {new.model!r} / 機器モデルがありません")
        vendor = new.vendor or model.vendor
        if vendor is None:
            raise RegistryError(
                f"{new.id}: the model {model.id} names no vendor: give one / ベンダーを指定してください"
            )
        for role, who in (("vendor", vendor), ("owner", new.owner)):
            if self.stakeholders is not None and who not in self.stakeholders:
                raise RegistryError(
                    f"{new.id}: {role} {who!r} is not a stakeholder of the city model / 関係者にいません"
                )
        if new.location is not None and not (-180 <= new.location[0] <= 180 and -90 <= new.location[1] <= 90):
            raise RegistryError(f"{new.id}: location is [longitude, latitude] in degrees / 位置が範囲外です")
        if new.protocol not in PROTOCOLS:
            raise RegistryError(f"{new.id}: protocol must be mqtt or http / プロトコルは mqtt か http")
        return {
            "id": new.id,
            "tenant": new.tenant,
            "model": model.id,
            "vendor": vendor,
            "owner": new.owner,
            "component": new.component,
            "name": new.name,
            "location": list(new.location) if new.location else None,
            "address": new.address,
            "protocol": new.protocol,
            "mqtt_client_id": new.mqtt_client_id or (new.id if new.protocol == "mqtt" else None),
            "firmware": new.firmware,
            **self._key_columns(new.id, new.key),
            "key_created_at": now,
            "key_expires_at": new.key_expires_at,
            "status": DeviceStatus.active.value,
            "status_reason": None,
            "status_changed_at": now,
            "counter_top": 0,
            "counter_window": 0,
            "management": self._management(new, model),
            "created_at": now,
            "last_seen_at": None,
        }

    def _key_columns(self, device_id: str, key: DeviceKey) -> dict[str, Any]:
        if key.kind == "ed25519":
            return {
                "key_kind": key.kind,
                "public_key": key.material,
                "sealed_secret": None,
                "key_fingerprint": hashlib.sha256(key.material).hexdigest(),
            }
        return {
            "key_kind": key.kind,
            "public_key": None,
            "sealed_secret": self.box.seal(key.material, _secret_binding(device_id)),
            # keyed, so a stolen database does not let anyone test guesses of a secret
            "key_fingerprint": hmac.new(self._fingerprint_key, key.material, hashlib.sha256).hexdigest(),
        }

    def _management(self, new: NewDevice, model: DeviceModel) -> dict[str, Any] | None:
        endpoints = [_endpoint(new, text) for text in new.management_endpoints]
        if new.management_username is None:
            return {"endpoints": endpoints} if endpoints else None
        password = new.management_password or ""
        defaults = [*mirai_pairs(), *vendor_defaults(model)]
        found = weakness(new.management_username, password, defaults)
        return {
            "username": new.management_username,
            "fingerprint": self.fingerprinter.fingerprint(new.management_username, password),
            "weakness": found.reason if found else None,
            "weakness_source": found.source if found else None,
            "checked_at": utc_now().isoformat().replace("+00:00", "Z"),
            **({"endpoints": endpoints} if endpoints else {}),
        }

    # --- reporting -----------------------------------------------------------------------------------
    def _report(
        self,
        record: DeviceRecord,
        actor: str,
        event_class: EventClass,
        activity: int,
        message: str,
        *,
        severity: Severity = Severity.INFORMATIONAL,
    ) -> None:
        self.events.emit(
            SecurityEvent(
                class_uid=event_class,
                activity_id=activity,
                severity_id=severity,
                status_id=Status.SUCCESS,
                message=message,
                actor=Actor(uid=actor),
                device=device_of(record),
                resources=[Resource(uid=record.id, type="device", name=record.name)],
                tenant=record.tenant or None,
                unmapped={"status": record.status.value, "owner": record.owner, "vendor": record.vendor},
            )
        )

    def _report_weak_login(self, record: DeviceRecord, actor: str) -> None:
        assert record.management is not None
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.DETECTION_FINDING,
                activity_id=1,
                severity_id=Severity.HIGH,
                message=(
                    f"weak management login on {record.id} ({record.management['weakness']}) "
                    "/ 管理用ログインが初期値または弱いものです"
                ),
                actor=Actor(uid=actor),
                device=device_of(record),
                unmapped={"finding": "weak-management-login", **record.management},
            )
        )


def vendor_defaults(model: DeviceModel) -> list[CredentialPair]:
    """The model's factory-default logins as credential pairs."""
    return [CredentialPair(login.username, login.password, f"vendor:{model.id}") for login in model.default_logins]


def device_of(record: DeviceRecord) -> Device:
    """The OCSF device of an event about this device."""
    return Device(uid=record.id, name=record.name, ip=record.address, type=record.model)


_VERB = {DeviceStatus.quarantined: "quarantine", DeviceStatus.active: "release", DeviceStatus.retired: "retire"}
_ACTIVITY = {DeviceStatus.quarantined: 2, DeviceStatus.active: 3, DeviceStatus.retired: 4}


PROBE_SCHEMES = ("telnet", "ssh", "http-basic", "http-digest")


def _endpoint(new: NewDevice, text: str) -> str:
    """A management endpoint (scheme://host:port[/path]) on the device's own registered address."""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in PROBE_SCHEMES or port is None or not parts.hostname:
        raise RegistryError(
            f"{new.id}: management endpoint {text[:80]!r}: scheme://host:port with a scheme of "
            f"{', '.join(PROBE_SCHEMES)} / 管理用エンドポイントの形式が不正です"
        )
    if new.address is None or parts.hostname != new.address.strip("[]").lower():  # hostname comes lowercased
        raise RegistryError(
            f"{new.id}: management endpoints must be on the device's address ({new.address}) / 機器のアドレスと異なります"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path or ''}"


def _secret_binding(device_id: str) -> str:
    return f"device-hmac:{device_id}"


def _entry(action: str, device_id: str, actor: str, **details: Any) -> dict[str, Any]:
    return {"action": action, "device": device_id, "actor": actor, **details}


def _record(row: Any) -> DeviceRecord:
    values = dict(row)
    values["status"] = DeviceStatus(values["status"])
    for name in ("key_created_at", "key_expires_at", "status_changed_at", "created_at", "last_seen_at"):
        if values[name] is not None:
            values[name] = as_utc(values[name])
    return DeviceRecord(**values)

"""Device audits, as AWS IoT Device Defender's audits and NICT's NOTICE survey do them: keys shared by
several devices, conflicting MQTT client ids, old or expiring keys, firmware below the vendor's minimum,
and management logins that are factory defaults or weak (matched by keyed fingerprint, never plaintext)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from machimori.clock import utc_now
from machimori.diagnostics import InputError
from machimori.events import EventClass, EventStream, Resource, SecurityEvent, Severity
from machimori.gateway.credentials import matching_default, mirai_pairs
from machimori.gateway.models import DeviceModel, version_tuple
from machimori.gateway.registry import DeviceRecord, DeviceStatus, Registry, device_of, vendor_defaults

EXPIRY_WARNING = dt.timedelta(days=30)


@dataclass(frozen=True)
class Finding:
    """One thing an audit found wrong with a device."""

    check: str
    device_id: str
    severity: Severity
    message: str
    related: tuple[str, ...] = ()

    def public(self) -> dict[str, object]:
        return {
            "check": self.check,
            "device": self.device_id,
            "severity": self.severity.name.lower(),
            "message": self.message,
            "related": list(self.related),
        }


def audit_devices(registry: Registry, now: dt.datetime | None = None) -> list[Finding]:
    """Every finding over the devices in service (retired ones are left out)."""
    now = now or utc_now()
    records = [record for record in registry.all() if record.status != DeviceStatus.retired]
    findings = [*shared_keys(records), *conflicting_client_ids(records)]
    for record in records:
        model = registry.models.get(record.model)
        findings.extend(key_age(record, model, now))
        if model is not None:
            findings.extend(old_firmware(record, model))
        findings.extend(default_login(record, model, registry))
    return sorted(findings, key=lambda finding: (-finding.severity, finding.device_id, finding.check))


def shared_keys(records: Sequence[DeviceRecord]) -> list[Finding]:
    """Devices that sign with the same key: one stolen key speaks for all of them."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_key[record.key_fingerprint].append(record.id)
    return [
        Finding(
            "shared-key",
            device,
            Severity.HIGH,
            f"shares its key with {len(group) - 1} other device(s) / 他の機器と同じ鍵を使っています",
            tuple(other for other in group if other != device),
        )
        for group in by_key.values()
        if len(group) > 1
        for device in group
    ]


def conflicting_client_ids(records: Sequence[DeviceRecord]) -> list[Finding]:
    """Devices registered with the same MQTT client id: the broker drops one whenever the other connects."""
    by_client: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.mqtt_client_id:
            by_client[record.mqtt_client_id].append(record.id)
    return [
        Finding(
            "conflicting-mqtt-client-id",
            device,
            Severity.MEDIUM,
            f"MQTT client id {client!r} is also used by another device / MQTT クライアント ID が重複しています",
            tuple(other for other in group if other != device),
        )
        for client, group in by_client.items()
        if len(group) > 1
        for device in group
    ]


def key_age(record: DeviceRecord, model: DeviceModel | None, now: dt.datetime) -> list[Finding]:
    """A key past its expiry, about to expire, or older than the model's key lifetime."""
    if record.key_expires_at is not None and record.key_expires_at <= now:
        return [Finding("key-expired", record.id, Severity.HIGH, "the key has expired / 鍵の有効期限切れ")]
    findings = []
    if record.key_expires_at is not None and record.key_expires_at - now <= EXPIRY_WARNING:
        days = (record.key_expires_at - now).days
        findings.append(
            Finding("key-expiring", record.id, Severity.LOW, f"the key expires in {days} days / 鍵の期限が近い")
        )
    lifetime = dt.timedelta(days=model.key_lifetime_days if model else 365)
    if now - record.key_created_at > lifetime:
        age = (now - record.key_created_at).days
        findings.append(
            Finding(
                "key-too-old",
                record.id,
                Severity.MEDIUM,
                f"the key is {age} days old (policy: {lifetime.days}) / 鍵が古すぎます",
            )
        )
    return findings


def old_firmware(record: DeviceRecord, model: DeviceModel) -> list[Finding]:
    """Firmware below the vendor's minimum, or not known at all while the vendor sets one."""
    if model.firmware_minimum is None:
        return []
    if record.firmware is None:
        return [
            Finding("firmware-unknown", record.id, Severity.LOW, "firmware version not recorded / ファームウェア不明")
        ]
    try:
        below = _padded(version_tuple(record.firmware)) < _padded(version_tuple(model.firmware_minimum))
    except InputError:
        below = True
    if not below:
        return []
    return [
        Finding(
            "firmware-outdated",
            record.id,
            Severity.HIGH,
            f"firmware {record.firmware} is below the vendor's minimum {model.firmware_minimum} "
            "/ ファームウェアがベンダーの最低版より古い",
        )
    ]


def _padded(version: tuple[int, ...], length: int = 8) -> tuple[int, ...]:
    """A version with missing parts as zeros, so that 2.10 and 2.10.0 are the same version."""
    return version + (0,) * (length - len(version))


def default_login(record: DeviceRecord, model: DeviceModel | None, registry: Registry) -> list[Finding]:
    """A management login that is a Mirai or vendor default (or was found weak when it was registered)."""
    management = record.management
    if not management or "fingerprint" not in management:
        return []
    defaults = [*mirai_pairs(), *(vendor_defaults(model) if model else [])]
    pair = matching_default(management["fingerprint"], defaults, registry.fingerprinter)
    if pair is not None:
        return [
            Finding(
                "default-credential",
                record.id,
                Severity.CRITICAL,
                f"management login {pair.username!r} is a default credential ({pair.source}) "
                "/ 管理用ログインが既知の初期値（Mirai 等）です",
            )
        ]
    if management.get("weakness"):
        return [
            Finding(
                "weak-credential",
                record.id,
                Severity.HIGH,
                f"management login is weak ({management['weakness']}) / 管理用ログインが弱い",
            )
        ]
    return []


def report_findings(events: EventStream, registry: Registry, findings: Sequence[Finding]) -> None:
    """Each finding as a Detection Finding event."""
    records = {record.id: record for record in registry.all()}
    for finding in findings:
        record = records.get(finding.device_id)
        events.emit(
            SecurityEvent(
                class_uid=EventClass.DETECTION_FINDING,
                activity_id=1,
                severity_id=finding.severity,
                message=f"device audit: {finding.check} on {finding.device_id}: {finding.message}",
                device=device_of(record) if record else None,
                resources=[Resource(uid=finding.device_id, type="device")],
                unmapped={"finding": finding.check, "related": list(finding.related)},
            )
        )

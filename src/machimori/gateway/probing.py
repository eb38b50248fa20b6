"""The active device audit: try the Mirai and vendor-default logins on the management ports of registered
devices — as NICT's NOTICE does nationwide — and only there: the probe reaches no address nobody registered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from machimori.events import Severity
from machimori.gateway.audits import Finding
from machimori.gateway.credentials import mirai_pairs
from machimori.gateway.probe import ProbeFinding, ProbeProtocol, ProbeTarget, probe
from machimori.gateway.registry import DeviceRecord, DeviceStatus, Registry, vendor_defaults

# NOTICE's ports when a device names no management endpoint of its own
NOTICE_PORTS: tuple[tuple[ProbeProtocol, int], ...] = (("telnet", 23), ("ssh", 22), ("http-basic", 80))


@dataclass(frozen=True)
class ProbeReport:
    """Every target's outcome, and the findings among them (devices that accepted a default login)."""

    outcomes: list[ProbeFinding]
    findings: list[Finding]


def targets_of(record: DeviceRecord) -> list[ProbeTarget]:
    """Where a device may be probed: its registered management endpoints, else NOTICE's ports on its address."""
    endpoints = (record.management or {}).get("endpoints") or []
    if endpoints:
        targets = []
        for endpoint in endpoints:
            parts = urlsplit(endpoint)
            protocol = cast(ProbeProtocol, parts.scheme)
            targets.append(ProbeTarget(record.id, parts.hostname or "", parts.port or 0, protocol, parts.path or "/"))
        return targets
    if not record.address:
        return []
    return [ProbeTarget(record.id, record.address, port, protocol) for protocol, port in NOTICE_PORTS]


async def probe_devices(
    registry: Registry,
    *,
    dry_run: bool = False,
    rate_per_second: float = 2.0,
    timeout: float = 5.0,
    device_ids: Sequence[str] | None = None,
) -> ProbeReport:
    """Probe the devices in service (or those named) with the Mirai list and their models' default logins."""
    records = [
        record
        for record in registry.all()
        if record.status != DeviceStatus.retired and (device_ids is None or record.id in device_ids)
    ]
    allowed = {record.address for record in records if record.address}
    by_model: dict[str, list[ProbeTarget]] = defaultdict(list)
    for record in records:
        by_model[record.model].extend(targets_of(record))
    outcomes: list[ProbeFinding] = []
    for model_id, targets in by_model.items():
        model = registry.models.get(model_id)
        pairs = [*(vendor_defaults(model) if model else []), *mirai_pairs()]
        outcomes.extend(
            await probe(
                targets,
                pairs,
                allowed_hosts=allowed,
                rate_per_second=rate_per_second,
                dry_run=dry_run,
                timeout=timeout,
            )
        )
    return ProbeReport(outcomes, [_finding(outcome) for outcome in outcomes if outcome.outcome == "accepted"])


def _finding(outcome: ProbeFinding) -> Finding:
    who = f"login {outcome.username!r} ({outcome.source})" if outcome.username else "no login at all"
    return Finding(
        "default-credential-accepted",
        outcome.device_id,
        Severity.CRITICAL,
        f"{outcome.protocol} {outcome.host}:{outcome.port} accepted {who} "
        "/ 既知の初期パスワード（またはパスワードなし）でログインできました",
    )

"""What the town found, as indicators for an ISAC: C&C servers, outside scanners and DDoS targets — never the
town's own addresses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from machimori.detection.findings import Finding
from machimori.detection.flows import is_local_address
from machimori.detection.indicators import normalise
from machimori.detection.stix import FoundIndicator, export_stix

#: The role an endpoint plays in a finding of each stage, as the STIX export names it.
_ROLE_OF_STAGE = {"command-and-control": "c2", "ddos": "ddos-target"}


def found_indicators(findings: Iterable[Finding]) -> list[FoundIndicator]:
    """The public endpoints behind the findings, one per (address, role), with when and how often seen."""
    merged: dict[tuple[str, str], FoundIndicator] = {}
    for finding in findings:
        for address, role, count in _endpoints(finding):
            key = (address, role)
            first, last = _moment(finding.first_seen), _moment(finding.last_seen)
            known = merged.get(key)
            if known is not None:
                first, last, count = min(first, known.first_seen), max(last, known.last_seen), count + known.count
            merged[key] = FoundIndicator(
                value=address,
                kind=normalise(address)[0],
                role=role,
                first_seen=first,
                last_seen=last,
                count=count,
                description_ja=_without_town(finding, "ja"),
                description_en=_without_town(finding, "en"),
                confidence=min(100, round(finding.score * 100)),
            )
    return sorted(merged.values(), key=lambda found: (found.role, found.value))


def _without_town(finding: Finding, language: str) -> str:
    """The finding's reasons with every address of the town's own networks masked."""
    prefix = "町内の機器の" if language == "ja" else "a device of the town: "
    stage = finding.stage
    reasons = "; ".join(finding.reasons(language)[:3])
    text = f"{prefix}{stage} ({finding.flows} flows) — {reasons}"
    return _ADDRESS.sub(lambda match: "(internal)" if is_local_address(match.group(0)) else match.group(0), text)


_ADDRESS = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b")


def _endpoints(finding: Finding) -> list[tuple[str, str, int]]:
    """(address, role, flows) of a finding's public endpoints worth sharing."""
    role = _ROLE_OF_STAGE.get(finding.stage)
    endpoints: list[tuple[str, str, int]] = []
    if role is not None:
        endpoints += [(peer, role, count) for peer, count in finding.peers.items() if _public(peer)]
    darknet = finding.evidence.get("scan.darknet")
    if darknet is not None:
        source = str(darknet.facts.get("source", ""))
        if _public(source):
            endpoints.append((source, "scanner", finding.flows))
    return endpoints


def _public(address: str) -> bool:
    if not address or is_local_address(address):
        return False
    try:
        normalise(address)
    except ValueError:
        return False
    return True


def _moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def bundle_of(findings: Iterable[Finding], *, identity_name: str) -> str:
    """A STIX 2.1 bundle of the findings' shareable indicators, authored by the town."""
    return export_stix(found_indicators(findings), identity_name=identity_name)

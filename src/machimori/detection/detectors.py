"""The botnet-stage detectors: each looks at one flow seen from its device and adds the evidence it finds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from machimori.detection.baseline import Profile
from machimori.detection.flows import Flow
from machimori.detection.state import Beacon, DeviceState, Flood

#: Telnet, where Mirai and its kin scan (every tenth probe on 2323).
TELNET_PORTS = frozenset({23, 2323})
#: Other ports IoT botnets scan and exploit: SSH, web admin, TR-069, ADB, Huawei HG532, Realtek SDK, DVRs.
BOTNET_PORTS = frozenset({22, 2222, 80, 81, 8080, 8081, 8000, 8443, 7547, 5555, 37215, 52869, 60001, 49152, 5358})
#: IRC, the C&C channel of Tsunami/Kaiten and Muhstik.
IRC_PORTS = frozenset({*range(6660, 6670), 6697, 7000})
#: Ports where a long, quiet session is how the service works (TLS, MQTT, push, IMAP, XMPP).
QUIET_SESSION_PORTS = frozenset({443, 8883, 1883, 5223, 5228, 993, 5222, 8443, 4070, 5683, 5684})
#: Ports on which regular contacts are how the service works (NTP, DNS, HTTPS and MQTT heartbeats).
REGULAR_PORTS = frozenset({53, 123, 443, 8883, 1883, 5683, 5684, 67, 68, 5353, 1900})
#: A baseline with this many flows and none in an hour of the day makes activity in that hour unusual.
QUIET_HOUR_FLOWS = 500
#: Ports at or above this are pooled as "dynamic" in baselines: a random high port is not a new service.
DYNAMIC_PORTS = 49152


@dataclass(slots=True)
class Evidence:
    """One thing a detector found about a flow: what (a code), how strongly (0–1) and the facts behind it."""

    code: str
    weight: float
    facts: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The evidence in the compact form of the scores file, e.g. `scan.fanout(n=42,failed=0.95)`."""
        if not self.facts:
            return self.code
        facts = ",".join(f"{key}={_compact(value)}" for key, value in self.facts.items())
        return f"{self.code}({facts})"


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


@dataclass(slots=True)
class Seen:
    """One flow as its device saw it, with what the device's state and baseline say about it."""

    flow: Flow
    device: str
    peer: str
    outbound: bool
    failed: bool
    public_peer: bool
    port: int
    state: DeviceState
    reference: Profile | None
    volume: float
    new_peer: bool = False
    new_pair: bool = False
    beacon: Beacon | None = None
    flood: Flood | None = None
    evidence: list[Evidence] = field(default_factory=list)

    def add(self, code: str, weight: float, **facts: Any) -> None:
        """Add evidence (weights are kept below 1: no single clue is certainty)."""
        self.evidence.append(Evidence(code, min(weight, 0.99), facts))


Detector = Callable[[Seen], None]


def scanning(seen: Seen) -> None:
    """Scanning: failed probes of telnet and other botnet ports, fan-out over hosts, many ports on one host."""
    if not seen.outbound:
        return
    state = seen.state
    if seen.failed and seen.public_peer:
        if seen.port in TELNET_PORTS:
            seen.add("scan.telnet", 0.5, port=seen.port)
        elif seen.port in BOTNET_PORTS:
            seen.add("scan.port", 0.3, port=seen.port)
    probe = (seen.failed or seen.new_peer) and seen.port not in REGULAR_PORTS
    if seen.failed and seen.flow.proto != "udp":
        probe = True  # a refused or unanswered TCP attempt, on any port
    if state.new_peers >= 5.0 and probe:
        failed = state.failures / state.attempts
        weight = state.new_peers / (state.new_peers + 15.0) * (0.3 + 0.7 * failed)
        if weight >= 0.1:
            seen.add("scan.fanout", weight, n=round(state.new_peers), failed=failed)
    if state.new_ports >= 8.0 and seen.new_pair and not seen.new_peer:
        seen.add("scan.vertical", state.new_ports / (state.new_ports + 10.0), n=round(state.new_ports))
    if probe and state.marked_until > seen.flow.ts:
        seen.add("scan.marked", 0.4, darknet=state.marked_by)


def command_and_control(seen: Seen) -> None:
    """C&C: IRC, long quiet sessions, regular beacons, a port already used for C&C with another server."""
    if not seen.outbound or not seen.public_peer:
        return
    flow, port = seen.flow, seen.port
    before = len(seen.evidence)
    if flow.service == "irc":
        seen.add("cc.irc", 0.85, peer=seen.peer, port=port)
    elif port in IRC_PORTS:
        seen.add("cc.irc", 0.6, peer=seen.peer, port=port)
    duration = flow.duration or 0.0
    if duration >= 600.0 and port not in QUIET_SESSION_PORTS:
        rate = ((flow.orig_bytes or 0) + (flow.resp_bytes or 0)) / duration
        if rate < 100.0:
            seen.add("cc.long_lived", 0.5, seconds=round(duration), bytes_per_s=rate)
    beacon = seen.beacon
    if beacon is not None and beacon.count >= 5 and beacon.mean >= 5.0 and beacon.variation < 0.2:
        weight = 0.2 if port in REGULAR_PORTS else 0.5
        seen.add("cc.beacon", weight, every_s=beacon.mean, variation=beacon.variation, n=beacon.count)
    if (
        beacon is not None
        and seen.failed
        and beacon.count >= 5
        and beacon.failures >= 0.8 * beacon.count
        and port not in REGULAR_PORTS
    ):
        seen.add("cc.retry", 0.45, peer=seen.peer, port=port, tries=beacon.count)
    known = seen.state.c2_ports.get((flow.proto, port))
    if known is not None and known != seen.peer:
        seen.add("cc.port", 0.6, port=port, c2=known)
    if sum(evidence.weight for evidence in seen.evidence[before:]) >= 0.5:
        seen.state.remember_c2(flow.proto, port, seen.peer)


def denial_of_service(seen: Seen) -> None:
    """DDoS participation: many flows or half-open connections to one peer, one-way packet floods."""
    if not seen.outbound:
        return
    flood, flow = seen.flood, seen.flow
    if flood is not None and not (seen.port == 53 and not seen.public_peer):
        if flood.flows >= 50.0:
            seen.add("ddos.flood", flood.flows / (flood.flows + 50.0), peer=seen.peer, n=round(flood.flows))
        if flood.half_open >= 20.0:
            seen.add("ddos.half_open", flood.half_open / (flood.half_open + 20.0), n=round(flood.half_open))
    if flow.orig_pkts >= 100 and flow.resp_pkts == 0:
        seen.add("ddos.one_way", 0.5, packets=flow.orig_pkts)


def novelty(seen: Seen) -> None:
    """Departures from the baseline: new services, destinations and listening ports, unusual volumes."""
    reference = seen.reference
    if reference is None:
        return
    flow = seen.flow
    key = (flow.proto, min(seen.port, DYNAMIC_PORTS))
    if seen.outbound:
        volume = reference.services.get(key)
        if volume is None:
            weight = 0.15 if seen.port in REGULAR_PORTS else 0.4 if seen.failed else 0.3
            seen.add("new.service", weight, proto=flow.proto, port=seen.port)
        else:
            z = volume.z(seen.volume)
            if z >= 4.0:
                seen.add("anomaly.volume", min(0.5, 0.1 * z), z=z, port=seen.port)
        if seen.public_peer and seen.peer not in reference.peers:
            seen.add("new.peer", 0.1, peer=seen.peer)
    elif not seen.failed and key not in reference.listening:
        seen.add("new.listening", 0.6, proto=flow.proto, port=seen.port)
    hour = int(flow.ts // 3600) % 24
    if reference.flows >= QUIET_HOUR_FLOWS and reference.hours[hour] == 0 and seen.outbound:
        seen.add("anomaly.hour", 0.15, hour=hour)


def exposure(seen: Seen) -> None:
    """An inbound connection from the internet that the device answered on a management port."""
    if seen.outbound or seen.failed or not seen.public_peer:
        return
    if seen.port in TELNET_PORTS or seen.port in BOTNET_PORTS:
        seen.add("exposed.inbound", 0.35, port=seen.port, peer=seen.peer)


def volume_of(flow: Flow) -> float:
    """The flow's size on the log scale the baselines use."""
    return math.log1p(flow.orig_ip_bytes + flow.resp_ip_bytes)


#: The detectors run on every flow, in this order.
DETECTORS: tuple[Detector, ...] = (scanning, command_and_control, denial_of_service, novelty, exposure)

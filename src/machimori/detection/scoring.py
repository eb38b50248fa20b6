"""The scorer: every flow seen from its device, judged by the detectors against its baseline, with reasons."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from machimori.detection.baseline import Baselines
from machimori.detection.detectors import (
    BOTNET_PORTS,
    DETECTORS,
    DYNAMIC_PORTS,
    IRC_PORTS,
    TELNET_PORTS,
    Detector,
    Evidence,
    Seen,
    volume_of,
)
from machimori.detection.flows import FAILED_STATES, Flow, ipv4_number, is_local_address
from machimori.detection.state import DeviceStates, key_hash, pair_hash

if TYPE_CHECKING:
    from machimori.detection.indicators import IndicatorSet

#: A flow whose score reaches this is not learned into the baseline (what is flagged does not become normal).
NOT_LEARNED_FROM = 0.5
#: Once a fleet's profile is mature, one flow in this many is learned into it (it speaks for many devices).
FLEET_SAMPLE = 8


@dataclass(slots=True)
class Verdict:
    """How suspicious one flow is (0–1, higher is worse) and why."""

    flow: Flow
    device: str
    score: float
    evidence: list[Evidence]
    features: tuple[float, ...] = ()

    @property
    def reasons(self) -> str:
        """The evidence, strongest first, in the compact form of the scores file."""
        ranked = sorted(self.evidence, key=lambda evidence: -evidence.weight)
        return ";".join(evidence.text() for evidence in ranked)


class Darknet:
    """The town's unused address space: any flow towards it is someone scanning (NICTER inside the town)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(network, strict=False) for network in networks)
        self._ipv4 = tuple(
            (int(network.network_address), (0xFFFFFFFF << (32 - network.prefixlen)) & 0xFFFFFFFF)
            for network in self.networks
            if network.version == 4
        )
        self._ipv6 = tuple(network for network in self.networks if network.version == 6)
        self._contains = lru_cache(maxsize=65536)(self._lookup)  # most flows go to peers seen before

    def contains(self, address: str) -> bool:
        """Whether the address lies in the darknet."""
        return self._contains(address)

    def _lookup(self, address: str) -> bool:
        number = ipv4_number(address)
        if number is not None:
            return any(number & mask == base for base, mask in self._ipv4)
        return bool(self._ipv6) and self._contains_other(address)

    def _contains_other(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in network for network in self._ipv6)

    def __bool__(self) -> bool:
        return bool(self.networks)


class Scorer:
    """Scores flows one at a time, keeping bounded state per device; learns online unless told not to."""

    def __init__(
        self,
        *,
        baselines: Baselines | None = None,
        indicators: IndicatorSet | None = None,
        darknet: Darknet | None = None,
        learn: bool = True,
        training_window: float | None = None,
        detectors: Sequence[Detector] = DETECTORS,
        max_devices: int = 65536,
        with_features: bool = False,
    ) -> None:
        self.baselines = baselines or Baselines(max_devices=max_devices)
        self.indicators = indicators
        self.darknet = darknet or Darknet()
        self.learn = learn
        self.training_window = training_window
        self._learn_until: float | None = None
        self.detectors = tuple(detectors)
        self.states = DeviceStates(max_devices)
        self.with_features = with_features
        self._fleet_turn = 0

    def train(self, flows: Iterable[Flow]) -> int:
        """Learn the baselines from known-benign reference traffic; how many flows were learned."""
        learned = 0
        for flow in flows:
            outbound = flow.device_is_originator
            device = flow.orig_h if outbound else flow.resp_h
            self._learn(device, flow, outbound, 0.0, volume_of(flow))
            learned += 1
        return learned

    def score(self, flow: Flow) -> Verdict:
        """The verdict on one flow, judged against what came before it."""
        outbound = flow.device_is_originator
        device, peer = (flow.orig_h, flow.resp_h) if outbound else (flow.resp_h, flow.orig_h)
        state = self.states(device)
        state.clock = max(state.clock, flow.ts)
        failed = flow.conn_state in FAILED_STATES
        seen = Seen(
            flow=flow,
            device=device,
            peer=peer,
            outbound=outbound,
            failed=failed,
            public_peer=not is_local_address(peer),
            port=flow.resp_p,
            state=state,
            reference=self.baselines.reference(device),
            volume=volume_of(flow),
        )
        if outbound:
            peer_hash = key_hash(peer)
            pair = pair_hash(peer_hash, flow.proto, flow.resp_p)
            seen.new_peer, seen.new_pair = state.outbound(flow.ts, peer_hash, pair, failed)
            seen.beacon = state.beacon(flow.ts, pair, failed)
            seen.flood = state.flood(flow.ts, peer, peer_hash, flow.conn_state == "S0")
        self._sensors(seen)
        for detector in self.detectors:
            detector(seen)
        score = _combined(seen)
        if self.learn and self._learning(flow.ts):
            self._learn(device, flow, outbound, score, seen.volume)
        return Verdict(flow, device, score, seen.evidence, feature_vector(seen) if self.with_features else ())

    def _learning(self, ts: float) -> bool:
        """Whether a flow of this time is still learned (always, unless a training window was set)."""
        if self.training_window is None:
            return True
        if self._learn_until is None:
            self._learn_until = ts + self.training_window
        return ts < self._learn_until

    def _sensors(self, seen: Seen) -> None:
        """Evidence from outside the flow itself: known-bad indicators and the darknet."""
        if self.indicators is not None:
            indicator = self.indicators.match_address(seen.peer, seen.flow.ts)
            if indicator is not None:
                seen.add("cc.known", 0.99, peer=seen.peer, source=indicator.source)
        if self.darknet and self.darknet.contains(seen.flow.resp_h):
            source = seen.flow.orig_h
            seen.add("scan.darknet", 0.95, darknet=seen.flow.resp_h, source=source)
            if seen.outbound:
                seen.state.mark_scanner(seen.flow.ts, seen.flow.resp_h)

    def _learn(self, device: str, flow: Flow, outbound: bool, score: float, volume: float) -> None:
        """Learn a flow into the device's profile and (sampled once it is mature) its fleet's."""
        if score >= NOT_LEARNED_FROM:
            return
        port = min(flow.resp_p, DYNAMIC_PORTS)
        peer = flow.resp_h if outbound else flow.orig_h
        self.baselines.device(device).learn(flow.ts, outbound, flow.proto, port, peer, flow.conn_state, volume)
        fleet = self.baselines.fleet(device)
        self._fleet_turn += 1
        if not fleet.mature or self._fleet_turn % FLEET_SAMPLE == 0:
            fleet.learn(flow.ts, outbound, flow.proto, port, peer, flow.conn_state, volume)


def _combined(seen: Seen) -> float:
    """The evidence combined as independent clues (noisy-OR), or a small prior that orders clue-less flows."""
    if not seen.evidence:
        prior = 0.0
        if seen.outbound and seen.public_peer:
            prior = 0.005 + 0.01 * seen.new_peer + 0.015 * seen.failed
        return prior
    remaining = 1.0
    for evidence in seen.evidence:
        remaining *= 1.0 - evidence.weight
    return 1.0 - remaining


#: The names of feature_vector's numbers, in order.
FEATURES = (
    "log_duration",
    "log_orig_bytes",
    "log_resp_bytes",
    "log_orig_pkts",
    "log_resp_pkts",
    "failed",
    "outbound",
    "public_peer",
    "new_peer",
    "new_pair",
    "new_peers_rate",
    "failure_ratio",
    "new_ports_rate",
    "contacts",
    "contact_regularity",
    "flood_flows",
    "flood_half_open",
    "telnet_port",
    "botnet_port",
    "irc",
)


def feature_vector(seen: Seen) -> tuple[float, ...]:
    """The numbers the detectors look at, for a peer model (IsolationForest) to be judged on the same ground."""
    flow, state, beacon, flood = seen.flow, seen.state, seen.beacon, seen.flood
    return (
        math.log1p(flow.duration or 0.0),
        math.log1p(flow.orig_bytes or 0),
        math.log1p(flow.resp_bytes or 0),
        math.log1p(flow.orig_pkts),
        math.log1p(flow.resp_pkts),
        float(seen.failed),
        float(seen.outbound),
        float(seen.public_peer),
        float(seen.new_peer),
        float(seen.new_pair),
        state.new_peers if seen.outbound else 0.0,
        state.failures / state.attempts if seen.outbound and state.attempts else 0.0,
        state.new_ports if seen.outbound else 0.0,
        float(beacon.count) if beacon else 0.0,
        1.0 / (1.0 + beacon.variation) if beacon and beacon.count >= 3 else 0.0,
        flood.flows if flood else 0.0,
        flood.half_open if flood else 0.0,
        float(seen.port in TELNET_PORTS),
        float(seen.port in BOTNET_PORTS),
        float(flow.service == "irc" or seen.port in IRC_PORTS),
    )

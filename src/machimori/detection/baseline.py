"""Per-device and per-model baselines (CPS.AE-1): what a device normally does on the network, in bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Bounds on what one profile remembers: memory does not grow with the number of flows.
MAX_SERVICES = 256
MAX_PEERS = 1024
MAX_LISTENING = 128

#: A profile speaks for a device once it has seen this many flows over at least this many seconds.
MATURE_FLOWS = 100
MATURE_SECONDS = 600.0

FLEET = "*"


@dataclass(slots=True)
class Volume:
    """Running mean and variance of log(bytes) of one service (Welford)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        """Take one observation."""
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    def z(self, value: float) -> float:
        """How many deviations the value lies from the mean (0 until there are 20 observations)."""
        if self.count < 20:
            return 0.0
        deviation = math.sqrt(self.m2 / (self.count - 1)) + 0.5  # half a log unit: tiny spreads do not explode
        return (value - self.mean) / deviation


@dataclass(slots=True)
class Profile:
    """What one device (or one model's fleet) was seen doing: services, peers, listening ports, volumes, hours."""

    flows: int = 0
    first: float = math.inf
    last: float = 0.0
    services: dict[tuple[str, int], Volume] = field(default_factory=dict)
    peers: dict[str, int] = field(default_factory=dict)
    listening: dict[tuple[str, int], int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    hours: list[int] = field(default_factory=lambda: [0] * 24)

    @property
    def mature(self) -> bool:
        """Whether the profile has seen enough to call something new."""
        return self.flows >= MATURE_FLOWS and self.last - self.first >= MATURE_SECONDS

    def learn(self, ts: float, outbound: bool, proto: str, port: int, peer: str, state: str, volume: float) -> None:
        """Take one flow of the device into the profile (bounded: new keys are dropped once a table is full)."""
        self.flows += 1
        if ts < self.first:
            self.first = ts
        if ts > self.last:
            self.last = ts
        self.hours[int(ts // 3600) % 24] += 1
        states = self.states
        states[state] = states.get(state, 0) + 1
        if peer in self.peers:
            self.peers[peer] += 1
        elif len(self.peers) < MAX_PEERS:
            self.peers[peer] = 1
        if outbound:
            key = (proto, port)
            service = self.services.get(key)
            if service is None and len(self.services) < MAX_SERVICES:
                service = self.services[key] = Volume()
            if service is not None:
                service.add(volume)
        elif state in _ANSWERED:
            key = (proto, port)
            if key in self.listening:
                self.listening[key] += 1
            elif len(self.listening) < MAX_LISTENING:
                self.listening[key] = 1

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data (for people and for saving)."""
        return {
            "flows": self.flows,
            "first": self.first if self.flows else None,
            "last": self.last if self.flows else None,
            "services": [
                {"proto": proto, "port": port, "flows": volume.count, "log_bytes_mean": round(volume.mean, 3)}
                for (proto, port), volume in sorted(self.services.items(), key=lambda item: -item[1].count)
            ],
            "peers": len(self.peers),
            "listening": [{"proto": proto, "port": port, "flows": n} for (proto, port), n in self.listening.items()],
            "states": dict(self.states),
        }


#: Connection states in which the responder answered (a service is listening).
_ANSWERED = frozenset({"SF", "S1", "S2", "S3", "RSTO", "RSTR"})


class Baselines:
    """Profiles per device and per device model (the fleet), and which one speaks for a device."""

    def __init__(self, model_of: Callable[[str], str] | None = None, max_devices: int = 65536) -> None:
        self.model_of = model_of or (lambda device: FLEET)
        self.devices: dict[str, Profile] = {}
        self.fleets: dict[str, Profile] = {}
        self.max_devices = max_devices

    def device(self, device: str) -> Profile:
        """The device's own profile (created empty; the least recently made is dropped past the bound)."""
        profile = self.devices.get(device)
        if profile is None:
            if len(self.devices) >= self.max_devices:
                del self.devices[next(iter(self.devices))]
            profile = self.devices[device] = Profile()
        return profile

    def fleet(self, device: str) -> Profile:
        """The profile of the device's model's fleet."""
        model = self.model_of(device)
        profile = self.fleets.get(model)
        if profile is None:
            profile = self.fleets[model] = Profile()
        return profile

    def reference(self, device: str) -> Profile | None:
        """The profile to judge the device against: its own once mature, else its fleet's once mature."""
        own = self.devices.get(device)
        if own is not None and own.mature:
            return own
        fleet = self.fleets.get(self.model_of(device))
        if fleet is not None and fleet.mature:
            return fleet
        return None

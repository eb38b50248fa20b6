"""What the detectors remember of each device between flows: decayed rates and small hashed tables, bounded."""

from __future__ import annotations

import math
import zlib
from array import array
from dataclasses import dataclass, field

#: Time constants (seconds) of the decayed rates: scanning is judged over about a minute, floods over seconds.
SCAN_TAU = 60.0
FLOOD_TAU = 10.0
MARK_SECONDS = 3600.0

#: Slots of the hashed tables; each is the most a device can hold, whatever the traffic.
PEER_SLOTS = 1024
PAIR_SLOTS = 1024
BEACON_SLOTS = 512
FLOOD_SLOTS = 256
C2_PORTS = 16


def decay(value: float, since: float, now: float, tau: float) -> float:
    """A rate decayed from `since` to `now` (flows that arrive out of order do not decay it)."""
    return value * math.exp((since - now) / tau) if now > since else value


def key_hash(text: str) -> int:
    """A stable hash (the same in every run, unlike hash())."""
    return zlib.crc32(text.encode())


def pair_hash(peer_hash: int, proto: str, port: int) -> int:
    """A stable hash of (peer, protocol, port) from the peer's hash."""
    return (peer_hash * 1_000_003 + port * 4 + _PROTO_CODES.get(proto, 3)) & 0xFFFFFFFFFFFF


_PROTO_CODES = {"tcp": 0, "udp": 1, "icmp": 2}


@dataclass(slots=True)
class Beacon:
    """Contacts of one (peer, protocol, port): how many, how regularly (Welford over the gaps)."""

    key: int
    last: float
    count: int = 1
    mean: float = 0.0
    m2: float = 0.0
    failures: int = 0

    def add(self, ts: float, failed: bool) -> None:
        """Take one more contact at ts."""
        if failed:
            self.failures += 1
        gap = ts - self.last
        if gap < 1.0:
            return  # parallel connections of one exchange, not a new beat
        self.last = ts
        self.count += 1
        gaps = self.count - 1
        delta = gap - self.mean
        self.mean += delta / gaps
        self.m2 += delta * (gap - self.mean)

    @property
    def variation(self) -> float:
        """Coefficient of variation of the gaps (0 = a metronome)."""
        if self.count < 3 or self.mean <= 0:
            return math.inf
        return math.sqrt(self.m2 / (self.count - 2)) / self.mean


@dataclass(slots=True)
class Flood:
    """Recent flows to one peer: a decayed count of all and of half-open ones."""

    peer: str
    last: float
    flows: float = 0.0
    half_open: float = 0.0


@dataclass(slots=True)
class DeviceState:
    """The decayed rates and recent memory of one device."""

    clock: float = 0.0
    new_peers: float = 0.0
    attempts: float = 0.0
    failures: float = 0.0
    scan_time: float = 0.0
    new_ports: float = 0.0
    peers: array[int] | None = None  # made at the first outbound flow: 8 KiB each, whatever the traffic
    pairs: array[int] | None = None
    beacons: dict[int, Beacon] = field(default_factory=dict)
    floods: dict[int, Flood] = field(default_factory=dict)
    c2_ports: dict[tuple[str, int], str] = field(default_factory=dict)
    marked_until: float = 0.0
    marked_by: str = ""

    def outbound(self, ts: float, peer_hash: int, pair_hash: int, failed: bool) -> tuple[bool, bool]:
        """Count an outbound attempt; whether the peer, and the peer's port, were new to the device."""
        if ts > self.scan_time:
            factor = math.exp((self.scan_time - ts) / SCAN_TAU)
            self.attempts *= factor
            self.failures *= factor
            self.new_peers *= factor
            self.new_ports *= factor
            self.scan_time = ts
        self.attempts += 1.0
        if failed:
            self.failures += 1.0
        peers, pairs = self.peers, self.pairs
        if peers is None or pairs is None:
            peers = self.peers = array("Q", bytes(8 * PEER_SLOTS))
            pairs = self.pairs = array("Q", bytes(8 * PAIR_SLOTS))
        slot = peer_hash % PEER_SLOTS
        new_peer = peers[slot] != peer_hash
        if new_peer:
            peers[slot] = peer_hash
            self.new_peers += 1.0
        slot = pair_hash % PAIR_SLOTS
        new_pair = pairs[slot] != pair_hash
        if new_pair:
            pairs[slot] = pair_hash
            if not new_peer:
                self.new_ports += 1.0
        return new_peer, new_pair

    def beacon(self, ts: float, pair_hash: int, failed: bool) -> Beacon:
        """The contact record of (peer, protocol, port), updated with this contact."""
        slot = pair_hash % BEACON_SLOTS
        beacon = self.beacons.get(slot)
        if beacon is not None and beacon.key == pair_hash:
            beacon.add(ts, failed)
            return beacon
        fresh = Beacon(pair_hash, ts, failures=int(failed))
        # A one-off (a scan's probe) gives way; a repeated contact keeps its slot unless silent for a day.
        if beacon is None or beacon.count < 2 or ts - beacon.last > 86400.0:
            self.beacons[slot] = fresh
        return fresh

    def flood(self, ts: float, peer: str, peer_hash: int, half_open: bool) -> Flood:
        """The recent flows to a peer, updated with this one."""
        slot = peer_hash % FLOOD_SLOTS
        entry = self.floods.get(slot)
        if entry is None or entry.peer != peer:
            fresh = Flood(peer, ts)
            if entry is None or decay(entry.flows, entry.last, ts, FLOOD_TAU) < 1.0:
                self.floods[slot] = fresh
            entry = fresh
        if ts > entry.last:
            factor = math.exp((entry.last - ts) / FLOOD_TAU)
            entry.flows *= factor
            entry.half_open *= factor
            entry.last = ts
        entry.flows += 1.0
        if half_open:
            entry.half_open += 1.0
        return entry

    def remember_c2(self, proto: str, port: int, peer: str) -> None:
        """Remember a port the device used for command and control (others on it are suspect)."""
        if (proto, port) not in self.c2_ports and len(self.c2_ports) < C2_PORTS:
            self.c2_ports[(proto, port)] = peer  # the first server seen on the port names it

    def mark_scanner(self, ts: float, why: str) -> None:
        """Mark the device as seen scanning (by the darknet sensor) for the next hour."""
        self.marked_until = max(self.marked_until, ts + MARK_SECONDS)
        self.marked_by = why


class DeviceStates:
    """The state of every device seen, the least recently created dropped past the bound."""

    def __init__(self, max_devices: int = 65536) -> None:
        self.max_devices = max_devices
        self.states: dict[str, DeviceState] = {}

    def __call__(self, device: str) -> DeviceState:
        state = self.states.get(device)
        if state is None:
            if len(self.states) >= self.max_devices:
                del self.states[next(iter(self.states))]
            state = self.states[device] = DeviceState()
        return state

    def __len__(self) -> int:
        return len(self.states)

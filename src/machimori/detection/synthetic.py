"""A fictional town's network traffic with one infected camera: labelled flows for the demo, tests and benchmarks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from machimori.detection.flows import Flow

BENIGN = "benign"
START = 1_764_547_200.0  # 2025-12-01T00:00:00Z

#: The town's addresses: the platform, the resolver, the cameras' cloud, a time server, and the unused /24.
PLATFORM = "10.20.0.2"
RESOLVER = "10.20.0.1"
CAMERA_CLOUD = "203.0.113.50"
TIME_SERVER = "133.243.238.164"
DARKNET = "10.20.99.0/24"
C2_SERVER = "198.51.100.77"
C2_FALLBACK = "198.51.100.78"
DDOS_TARGET = "203.0.113.200"
INFECTED = "10.20.0.44"


@dataclass(frozen=True)
class Labelled:
    """A flow with its ground truth: a label (`benign` or `malicious`) and the attack kind."""

    flow: Flow
    label: str
    kind: str


class Town:
    """Generates the flows of a few sensors and cameras; one camera is infected partway through."""

    def __init__(self, seed: int = 7, sensors: int = 20, cameras: int = 5, hours: float = 2.0) -> None:
        self.random = random.Random(seed)
        self.sensors = [f"10.20.0.{10 + index}" for index in range(sensors)]
        self.cameras = [f"10.20.0.{40 + index}" for index in range(cameras)]
        self.end = START + hours * 3600.0
        self.infected_at = START + hours * 3600.0 / 2
        self.counter = 0

    def flows(self) -> list[Labelled]:
        """Every flow of the period, ordered by start time."""
        flows = [*self._sensors(), *self._cameras(), *self._infection()]
        flows.sort(key=lambda labelled: labelled.flow.ts)
        return flows

    def _flow(self, ts: float, orig: str, resp: str, port: int, proto: str = "tcp", **fields: object) -> Flow:
        self.counter += 1
        flow = Flow(
            ts=round(ts, 6),
            uid=f"CSyn{self.counter:08d}",
            orig_h=orig,
            orig_p=self.random.randint(32768, 60999),
            resp_h=resp,
            resp_p=port,
            proto=proto,
        )
        for name, value in fields.items():
            setattr(flow, name, value)
        return flow

    def _session(self, ts: float, orig: str, resp: str, port: int, sent: int, got: int, service: str) -> Flow:
        packets_out, packets_in = 4 + sent // 1400, 3 + got // 1400
        return self._flow(
            ts,
            orig,
            resp,
            port,
            duration=round(self.random.uniform(0.05, 0.4), 6),
            orig_bytes=sent,
            resp_bytes=got,
            conn_state="SF",
            history="ShADadFf",
            orig_pkts=packets_out,
            orig_ip_bytes=sent + 40 * packets_out,
            resp_pkts=packets_in,
            resp_ip_bytes=got + 40 * packets_in,
            service=service,
        )

    def _sensors(self) -> Iterator[Labelled]:
        """Air sensors: MQTT over TLS to the platform every minute, DNS every ten, NTP every hour."""
        for sensor in self.sensors:
            ts = START + self.random.uniform(0, 60)
            while ts < self.end:
                yield Labelled(self._session(ts, sensor, PLATFORM, 8883, 310, 60, service="ssl"), BENIGN, BENIGN)
                if self.random.random() < 0.1:
                    yield Labelled(self._dns(ts + 0.5, sensor), BENIGN, BENIGN)
                if self.random.random() < 1 / 60:
                    yield Labelled(self._ntp(ts + 1.0, sensor), BENIGN, BENIGN)
                ts += 60.0 + self.random.gauss(0, 1.5)

    def _cameras(self) -> Iterator[Labelled]:
        """Cameras: clips over HTTPS to the cloud every 30 s, DNS, and the operator's checks on their web page."""
        for camera in self.cameras:
            ts = START + self.random.uniform(0, 30)
            while ts < self.end:
                size = int(self.random.lognormvariate(11.5, 0.3))
                yield Labelled(self._session(ts, camera, CAMERA_CLOUD, 443, size, 900, service="ssl"), BENIGN, BENIGN)
                if self.random.random() < 0.05:
                    yield Labelled(self._dns(ts + 0.2, camera), BENIGN, BENIGN)
                if self.random.random() < 0.01:
                    check = self._session(ts + 2, "10.20.0.3", camera, 80, 400, 5000, service="http")
                    yield Labelled(check, BENIGN, BENIGN)
                ts += 30.0 + self.random.gauss(0, 2.0)

    def _dns(self, ts: float, device: str) -> Flow:
        return self._flow(
            ts,
            device,
            RESOLVER,
            53,
            "udp",
            service="dns",
            duration=0.003,
            orig_bytes=40,
            resp_bytes=120,
            conn_state="SF",
            history="Dd",
            orig_pkts=1,
            orig_ip_bytes=68,
            resp_pkts=1,
            resp_ip_bytes=148,
        )

    def _ntp(self, ts: float, device: str) -> Flow:
        return self._flow(
            ts,
            device,
            TIME_SERVER,
            123,
            "udp",
            service="ntp",
            duration=0.02,
            orig_bytes=48,
            resp_bytes=48,
            conn_state="SF",
            history="Dd",
            orig_pkts=1,
            orig_ip_bytes=76,
            resp_pkts=1,
            resp_ip_bytes=76,
        )

    def _infection(self) -> Iterator[Labelled]:
        """The infected camera: an IRC C&C session, a dead fallback server, telnet scanning, darknet hits, a flood."""
        ts = self.infected_at
        yield Labelled(
            self._flow(
                ts,
                INFECTED,
                C2_SERVER,
                6667,
                service="irc",
                duration=self.end - ts - 1,
                orig_bytes=4200,
                resp_bytes=9100,
                conn_state="S1",
                history="ShADad",
                orig_pkts=180,
                orig_ip_bytes=11400,
                resp_pkts=200,
                resp_ip_bytes=17100,
            ),
            "malicious",
            "C&C",
        )
        beat = ts + 5
        while beat < self.end:
            attempt = self._flow(beat, INFECTED, C2_FALLBACK, 6667, conn_state="S0", history="S", orig_pkts=1)
            attempt.orig_ip_bytes = 60
            yield Labelled(attempt, "malicious", "C&C-HeartBeat")
            beat += 120.0 + self.random.gauss(0, 1.0)
        probe = ts + 60
        scan_end = probe + 900
        while probe < scan_end:
            target = self._public_address()
            port = 2323 if self.random.random() < 0.1 else 23
            answered = self.random.random() < 0.03
            flow = self._flow(
                probe,
                INFECTED,
                target,
                port,
                conn_state="REJ" if answered else "S0",
                history="Sr" if answered else "S",
                orig_pkts=1,
                orig_ip_bytes=60,
                resp_pkts=1 if answered else 0,
                resp_ip_bytes=40 if answered else 0,
            )
            yield Labelled(flow, "malicious", "PartOfAHorizontalPortScan")
            if self.random.random() < 0.02:
                dark = f"10.20.99.{self.random.randint(1, 254)}"
                yield Labelled(
                    self._flow(probe + 0.01, INFECTED, dark, 23, conn_state="S0", history="S", orig_pkts=1),
                    "malicious",
                    "PartOfAHorizontalPortScan",
                )
            probe += self.random.expovariate(4.0)
        flood = scan_end + 60
        for _ in range(600):
            flow = self._flow(
                flood, INFECTED, DDOS_TARGET, 80, conn_state="S0", history="S", orig_pkts=1, orig_ip_bytes=60
            )
            yield Labelled(flow, "malicious", "DDoS")
            flood += self.random.expovariate(40.0)

    def _public_address(self) -> str:
        while True:
            first = self.random.randint(1, 223)
            if first not in (10, 127, 169, 172, 192):
                return (
                    f"{first}.{self.random.randint(0, 255)}.{self.random.randint(0, 255)}.{self.random.randint(1, 254)}"
                )

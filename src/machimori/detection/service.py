"""Detection in the running platform: flows in, findings out as events, quarantine through the gateway by policy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from machimori.detection.baseline import FLEET, Baselines
from machimori.detection.findings import Finding, FindingCollector
from machimori.detection.flows import Flow
from machimori.detection.scoring import Darknet, Scorer
from machimori.events.stream import EventStream

if TYPE_CHECKING:
    from machimori.config import Settings
    from machimori.gateway.registry import Registry

POLICY_ACTOR = "detection-policy"
#: How long the directory of registered devices by address is trusted before it is read again.
DIRECTORY_SECONDS = 60.0
#: Findings kept for the API after they closed.
RECENT_KEPT = 200


@dataclass(frozen=True)
class DeviceRef:
    """A registered device as detection needs it: its id, model, name and whether it may still send."""

    id: str
    model: str
    name: str | None
    active: bool


class DeviceDirectory(Protocol):
    """Where detection finds the registered device behind an address, and how it quarantines one."""

    def by_address(self, address: str) -> DeviceRef | None: ...

    def quarantine(self, device_id: str, reason: str) -> None: ...


class RegistryDirectory:
    """The gateway's device registry as a directory by network address (read again every minute)."""

    def __init__(self, registry: Registry, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.clock = clock
        self.read_at = -DIRECTORY_SECONDS
        self.devices: dict[str, DeviceRef] = {}

    def by_address(self, address: str) -> DeviceRef | None:
        if self.clock() - self.read_at >= DIRECTORY_SECONDS:
            self.refresh()
        return self.devices.get(address)

    def refresh(self) -> None:
        """Read the registry again."""
        devices = {}
        for record in self.registry.all():
            if record.address:
                devices[record.address.strip("[]").lower()] = DeviceRef(
                    record.id, record.model, record.name, record.status.value == "active"
                )
        self.devices, self.read_at = devices, self.clock()

    def quarantine(self, device_id: str, reason: str) -> None:
        self.registry.quarantine(device_id, reason, POLICY_ACTOR)
        self.read_at = -DIRECTORY_SECONDS


@dataclass(frozen=True)
class DetectionPolicy:
    """Which findings quarantine their device: botnet stages and a least score (nothing, by default)."""

    stages: frozenset[str] = frozenset()
    min_score: float = 0.95

    def quarantines(self, finding: Finding) -> bool:
        """Whether this finding takes its device off the gateway."""
        return finding.stage in self.stages and finding.score >= self.min_score


@dataclass
class Submission:
    """What one batch of flows gave: how many were scored, the findings opened and the devices quarantined."""

    scored: int = 0
    opened: list[Finding] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scored": self.scored,
            "findings": [finding.to_dict() for finding in self.opened],
            "quarantined": self.quarantined,
        }


class Detection:
    """One process's detector: scores flows as they come, reports findings as events, applies the policy."""

    def __init__(
        self,
        events: EventStream,
        scorer: Scorer,
        *,
        directory: DeviceDirectory | None = None,
        policy: DetectionPolicy | None = None,
        threshold: float = 0.8,
    ) -> None:
        self.events = events
        self.scorer = scorer
        self.directory = directory
        self.policy = policy or DetectionPolicy()
        self.collector = FindingCollector(threshold=threshold)
        self.recent: list[Finding] = []
        self.lock = threading.Lock()

    def submit(self, flows: Iterable[Flow]) -> Submission:
        """Score a batch of flows; report each newly opened finding and apply the policy to it."""
        submission = Submission()
        with self.lock:
            clock = 0.0
            for flow in flows:
                verdict = self.scorer.score(flow)
                submission.scored += 1
                clock = max(clock, flow.ts)
                finding = self.collector.add(verdict)
                if finding is not None:
                    submission.opened.append(finding)
            closed = self.collector.due(clock) if submission.scored else []
        for finding in submission.opened:
            self._identify(finding)
            self.events.emit(finding.to_event(activity=1))
            if self._enforce(finding):
                submission.quarantined.append(finding.device_id or finding.device)
        self._close(closed)
        return submission

    def close(self) -> list[Finding]:
        """Close every open finding (at shutdown) and report their final counts."""
        with self.lock:
            closed = self.collector.finish()
        self._close(closed)
        return closed

    def findings(self) -> list[Finding]:
        """Open findings and the recently closed ones, newest first."""
        with self.lock:
            current = list(self.collector.open.values()) + self.recent
        return sorted(current, key=lambda finding: -finding.last_seen)

    def _close(self, closed: list[Finding]) -> None:
        for finding in closed:
            self._identify(finding)
            self.events.emit(finding.to_event(activity=2))
        with self.lock:
            self.recent = (closed + self.recent)[:RECENT_KEPT]

    def _identify(self, finding: Finding) -> None:
        if self.directory is None or finding.device_id is not None:
            return
        device = self.directory.by_address(finding.device)
        if device is not None:
            finding.device_id, finding.device_name = device.id, device.name

    def _enforce(self, finding: Finding) -> bool:
        """Quarantine the finding's device if the policy says so and it is registered and active."""
        if self.directory is None or finding.device_id is None or not self.policy.quarantines(finding):
            return False
        device = self.directory.by_address(finding.device)
        if device is None or not device.active:
            return False
        reason = f"network detection: {finding.summary('en')} / ネットワーク検知: {finding.summary('ja')}"
        self.directory.quarantine(device.id, reason[:1000])
        return True


def detection_from_settings(
    settings: Settings, events: EventStream, directory: DeviceDirectory | None = None
) -> Detection:
    """A detector configured by the settings: darknet, indicators, threshold and quarantine policy."""
    from machimori.detection.indicators import load_indicator_files

    indicators = load_indicator_files(settings.detection_indicators)

    def model_of(address: str) -> str:
        device = directory.by_address(address) if directory is not None else None
        return device.model if device is not None else FLEET

    scorer = Scorer(
        baselines=Baselines(model_of=model_of),
        indicators=indicators,
        darknet=Darknet(settings.detection_darknet),
    )
    policy = DetectionPolicy(frozenset(settings.detection_quarantine), settings.detection_quarantine_score)
    return Detection(events, scorer, directory=directory, policy=policy, threshold=settings.detection_threshold)

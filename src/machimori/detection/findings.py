"""Findings: suspicious flows gathered per device and botnet stage, each with its reasons and the flows behind it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from machimori.detection.detectors import Evidence
from machimori.detection.explain import describe, facts_of, stage
from machimori.detection.scoring import Verdict
from machimori.events.model import Device, Endpoint, EventClass, SecurityEvent, Severity

#: A flow at or above this score opens (or joins) a finding.
FINDING_THRESHOLD = 0.8
#: A finding gathers the flows of its device and stage until this many seconds pass without one.
FINDING_WINDOW = 600.0
#: How many flow uids and peers a finding keeps (the counts are exact, the lists are the first ones).
FLOWS_KEPT = 20
PEERS_KEPT = 20
MAX_OPEN = 10_000
#: Open findings are looked over for closing at most once per this many seconds of flow time.
SWEEP_SECONDS = 10.0


@dataclass
class Finding:
    """Suspicious flows of one device in one botnet stage, gathered over time."""

    device: str
    stage: str
    first_seen: float
    last_seen: float
    score: float = 0.0
    flows: int = 0
    uids: list[str] = field(default_factory=list)
    peers: Counter[str] = field(default_factory=Counter)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    device_id: str | None = None
    device_name: str | None = None

    def add(self, verdict: Verdict) -> None:
        """Take one more suspicious flow."""
        flow = verdict.flow
        self.flows += 1
        self.first_seen = min(self.first_seen, flow.ts)
        self.last_seen = max(self.last_seen, flow.ts)
        self.score = max(self.score, verdict.score)
        if len(self.uids) < FLOWS_KEPT:
            self.uids.append(flow.uid)
        peer = flow.resp_h if flow.orig_h == verdict.device else flow.orig_h
        if peer in self.peers or len(self.peers) < PEERS_KEPT:
            self.peers[peer] += 1
        for evidence in verdict.evidence:
            kept = self.evidence.get(evidence.code)
            if kept is None or evidence.weight > kept.weight:
                self.evidence[evidence.code] = evidence

    @property
    def ranked(self) -> list[Evidence]:
        """The evidence, strongest first."""
        return sorted(self.evidence.values(), key=lambda evidence: -evidence.weight)

    @property
    def severity(self) -> Severity:
        """How urgent: a known C&C is critical; the rest by score."""
        if "cc.known" in self.evidence:
            return Severity.CRITICAL
        return Severity.HIGH if self.score >= 0.95 else Severity.MEDIUM

    def reasons(self, language: str = "ja") -> list[str]:
        """The reasons in words, strongest first."""
        return [describe(evidence, language) for evidence in self.ranked]

    def summary(self, language: str = "ja") -> str:
        """One line for people."""
        who = self.device_id or self.device
        reasons = "; ".join(self.reasons(language)[:3])
        if language == "ja":
            return f"{who}: {_STAGE_JA.get(self.stage, self.stage)} (スコア {self.score:.2f}, {self.flows} フロー) — {reasons}"
        return f"{who}: {self.stage} (score {self.score:.2f}, {self.flows} flows) — {reasons}"

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {
            "device": self.device,
            "device_id": self.device_id,
            "stage": self.stage,
            "score": round(self.score, 4),
            "severity": self.severity.name.lower(),
            "first_seen": _rfc3339(self.first_seen),
            "last_seen": _rfc3339(self.last_seen),
            "flows": self.flows,
            "flow_uids": list(self.uids),
            "peers": dict(self.peers.most_common(PEERS_KEPT)),
            "evidence": [facts_of(evidence) for evidence in self.ranked],
            "reasons_ja": self.reasons("ja"),
            "reasons_en": self.reasons("en"),
        }

    def to_event(self, activity: int = 1) -> SecurityEvent:
        """The finding as a Detection Finding event (activity 1 when opened, 2 when updated)."""
        return SecurityEvent(
            class_uid=EventClass.DETECTION_FINDING,
            activity_id=activity,
            severity_id=self.severity,
            message=f"{self.summary('ja')} / {self.summary('en')}",
            device=Device(uid=self.device_id or self.device, name=self.device_name, ip=self.device),
            src_endpoint=Endpoint(ip=self.device),
            unmapped={"finding": f"network-{self.stage}", "detection": self.to_dict()},
        )


_STAGE_JA = {
    "scanning": "スキャン",
    "command-and-control": "C&C 通信",
    "ddos": "DDoS 加担",
    "new-behaviour": "ベースラインからの逸脱",
    "exposure": "外部からの管理接続",
}


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


class FindingCollector:
    """Gathers verdicts at or above the threshold into findings per (device, stage)."""

    def __init__(self, threshold: float = FINDING_THRESHOLD, window: float = FINDING_WINDOW) -> None:
        self.threshold = threshold
        self.window = window
        self.open: dict[tuple[str, str], Finding] = {}
        self.closed: list[Finding] = []
        self.swept = 0.0

    def add(self, verdict: Verdict) -> Finding | None:
        """Take a verdict; the finding if this verdict opened a new one."""
        if verdict.score < self.threshold or not verdict.evidence:
            return None
        strongest = max(verdict.evidence, key=lambda evidence: evidence.weight)
        key = (verdict.device, stage(strongest.code))
        finding = self.open.get(key)
        opened = None
        if finding is not None and verdict.flow.ts - finding.last_seen > self.window:
            self.closed.append(self.open.pop(key))
            finding = None
        if finding is None:
            if len(self.open) >= MAX_OPEN:
                oldest = min(self.open, key=lambda k: self.open[k].last_seen)
                self.closed.append(self.open.pop(oldest))
            finding = opened = self.open[key] = Finding(verdict.device, key[1], verdict.flow.ts, verdict.flow.ts)
        finding.add(verdict)
        return opened

    def due(self, now: float) -> list[Finding]:
        """Findings closed since the last call: their window passed without a flow (or they were displaced)."""
        if now - self.swept >= SWEEP_SECONDS:
            self.swept = now
            for key in [key for key, finding in self.open.items() if now - finding.last_seen > self.window]:
                self.closed.append(self.open.pop(key))
        closed, self.closed = self.closed, []
        return closed

    def finish(self) -> list[Finding]:
        """Every finding, open or closed, ordered by when it was first seen."""
        everything = self.closed + list(self.open.values())
        self.open, self.closed = {}, []
        return sorted(everything, key=lambda finding: finding.first_seen)

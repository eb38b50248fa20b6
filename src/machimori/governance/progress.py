"""Progress between two assessments of the same city: the Check of the PDCA cycle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machimori.diagnostics import InputError, read_user_file
from machimori.governance.assessment import Assessment


@dataclass(frozen=True)
class Progress:
    """What changed since an earlier assessment: coverage, findings (by stable id) and gaps."""

    previous_as_of: str
    coverage_before: float
    coverage_now: float
    findings_resolved: list[str]
    findings_new: list[str]
    gaps_closed: int
    gaps_opened: int

    def to_json(self) -> dict[str, Any]:
        """The ``progress`` part of the JSON result."""
        return {
            "previous_as_of": self.previous_as_of,
            "coverage_before": self.coverage_before,
            "coverage_now": self.coverage_now,
            "findings_resolved": self.findings_resolved,
            "findings_new": self.findings_new,
            "gaps_closed": self.gaps_closed,
            "gaps_opened": self.gaps_opened,
        }


def compare(baseline: Path, assessment: Assessment) -> Progress:
    """Compare with an earlier `assess --format json` result of the same city."""
    name = str(baseline)
    try:
        previous = json.loads(read_user_file(baseline).decode("utf-8"))
        if previous.get("schema_version") != 1:
            raise ValueError("not a machimori assessment (schema_version 1)")
        city = previous["city"]["id"]
        before_findings = {f["id"] for f in previous["findings"]}
        before_gaps = {(g["requirement"], g["scope"], g["scope_id"]) for g in previous["gaps"]}
        as_of, coverage = str(previous["as_of"]), float(previous["summary"]["coverage"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise InputError.single(name, f"not an assessment result from `machimori assess -f json`: {exc}") from None
    if city != assessment.city_id:
        raise InputError.single(name, f"baseline is of city '{city}', not '{assessment.city_id}' / 別の都市の結果です")
    now_findings = {f.id for f in assessment.findings}
    now_gaps = {(g.target.requirement, g.target.scope, g.target.scope_id) for g in assessment.gaps}
    return Progress(
        previous_as_of=as_of,
        coverage_before=coverage,
        coverage_now=assessment.coverage,
        findings_resolved=sorted(before_findings - now_findings),
        findings_new=sorted(now_findings - before_findings),
        gaps_closed=len(before_gaps - now_gaps),
        gaps_opened=len(now_gaps - before_gaps),
    )


def describe(progress: Progress, lang: str) -> str:
    """One line for the terminal."""
    if lang == "ja":
        return (
            f"前回（{progress.previous_as_of}）からの変化：充足率 {progress.coverage_before:.2%} → "
            f"{progress.coverage_now:.2%}、指摘 解消 {len(progress.findings_resolved)}・新規 "
            f"{len(progress.findings_new)}、対策の不足 解消 {progress.gaps_closed}・新規 {progress.gaps_opened}"
        )
    return (
        f"Since {progress.previous_as_of}: coverage {progress.coverage_before:.2%} → {progress.coverage_now:.2%}, "
        f"findings resolved {len(progress.findings_resolved)}, new {len(progress.findings_new)}; "
        f"gaps closed {progress.gaps_closed}, opened {progress.gaps_opened}"
    )

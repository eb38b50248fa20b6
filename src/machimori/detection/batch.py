"""Scoring files of flows in one pass: one row per flow to a scores file, findings gathered on the way."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from machimori.detection.findings import Finding, FindingCollector
from machimori.detection.reading import ReadReport
from machimori.detection.scoring import Darknet, Scorer
from machimori.detection.sources import read_flows

if TYPE_CHECKING:
    from machimori.detection.indicators import IndicatorSet

SCORES_HEADER = ("uid", "device", "score", "reasons")


@dataclass
class ScoringRun:
    """What one scoring run read, learned, scored and found."""

    baseline: ReadReport = field(default_factory=ReadReport)
    inputs: ReadReport = field(default_factory=ReadReport)
    learned: int = 0
    scored: int = 0
    findings: list[Finding] = field(default_factory=list)


def make_scorer(
    baseline_files: Sequence[str | Path] = (),
    *,
    indicators: IndicatorSet | None = None,
    darknet: Iterable[str] = (),
    training_window: float | None = None,
    run: ScoringRun | None = None,
) -> Scorer:
    """A scorer trained on known-benign files if any are given (then frozen), else one that learns online
    (from the whole input, or only from its first `training_window` seconds)."""
    run = run or ScoringRun()
    scorer = Scorer(
        indicators=indicators,
        darknet=Darknet(darknet),
        learn=not baseline_files,
        training_window=training_window,
    )
    for path in baseline_files:
        run.learned += scorer.train(read_flows(path, run.baseline))
    return scorer


def score_files(
    inputs: Sequence[str | Path],
    output: IO[str],
    *,
    baseline_files: Sequence[str | Path] = (),
    indicators: IndicatorSet | None = None,
    darknet: Iterable[str] = (),
    threshold: float = 0.8,
    training_window: float | None = None,
) -> ScoringRun:
    """Score every flow of the inputs in order, writing `uid,device,score,reasons` rows; the run's figures."""
    run = ScoringRun()
    scorer = make_scorer(
        baseline_files, indicators=indicators, darknet=darknet, training_window=training_window, run=run
    )
    collector = FindingCollector(threshold=threshold)
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(SCORES_HEADER)
    dns = indicators.learn_resolution if indicators is not None else None
    for path in inputs:
        for flow in read_flows(path, run.inputs, dns_answers=dns):
            verdict = scorer.score(flow)
            writer.writerow((flow.uid, verdict.device, f"{verdict.score:.6f}", verdict.reasons))
            collector.add(verdict)
            run.scored += 1
    run.findings = collector.finish()
    return run

"""Ranking metrics for a detector's scores against binary labels (numpy only): ROC-AUC, average precision, recall at FPR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Counts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Curve:
    """Per distinct score, highest first: the score and how many positives and negatives score at least that."""

    thresholds: Floats
    true_positives: Counts
    false_positives: Counts
    positives: int
    negatives: int

    @property
    def both_classes(self) -> bool:
        """Whether both classes are present (otherwise no ranking metric is defined)."""
        return self.positives > 0 and self.negatives > 0


@dataclass(frozen=True)
class OperatingPoint:
    """The smallest threshold whose false-positive rate stays within a target, and the recall there."""

    target_fpr: float
    threshold: float | None  # None: even the highest score flags too many benign flows
    fpr: float
    recall: float
    flagged_malicious: int
    flagged_benign: int


def curve(scores: Floats, malicious: Bools) -> Curve:
    """The cumulative counts of positives and negatives at each distinct score, from the highest down."""
    distinct, group = np.unique(scores, return_inverse=True)
    size = len(distinct)
    positives = np.bincount(group[malicious], minlength=size)[::-1]
    negatives = np.bincount(group[~malicious], minlength=size)[::-1]
    return Curve(
        distinct[::-1].astype(np.float64),
        np.cumsum(positives, dtype=np.int64),
        np.cumsum(negatives, dtype=np.int64),
        int(positives.sum()),
        int(negatives.sum()),
    )


def roc_auc(c: Curve) -> float | None:
    """ROC-AUC as the Mann-Whitney statistic: the share of (malicious, benign) pairs ranked right, ties counting half."""
    if not c.both_classes:
        return None
    positives = np.diff(c.true_positives, prepend=0)
    negatives = np.diff(c.false_positives, prepend=0)
    won = np.sum(positives * (c.negatives - c.false_positives), dtype=np.int64)  # benign flows strictly below
    tied = np.sum(positives * negatives, dtype=np.int64)
    return (float(won) + 0.5 * float(tied)) / (float(c.positives) * float(c.negatives))


def average_precision(c: Curve) -> float | None:
    """PR-AUC as average precision: precision at each threshold weighted by the recall it adds (step-wise)."""
    if not c.both_classes:
        return None
    precision = c.true_positives / (c.true_positives + c.false_positives)
    gained = np.diff(c.true_positives, prepend=0) / c.positives
    return float(np.sum(gained * precision))


def operating_point(c: Curve, target_fpr: float) -> OperatingPoint | None:
    """Recall at the smallest score threshold whose FPR ≤ target; flows tied at it count as flagged."""
    if not c.both_classes:
        return None
    fpr = c.false_positives / c.negatives
    index = int(np.searchsorted(fpr, target_fpr, side="right")) - 1
    if index < 0:
        return OperatingPoint(target_fpr, None, 0.0, 0.0, 0, 0)
    caught, wrong = int(c.true_positives[index]), int(c.false_positives[index])
    return OperatingPoint(
        target_fpr, float(c.thresholds[index]), wrong / c.negatives, caught / c.positives, caught, wrong
    )


def auc_of(scores: Floats, malicious: Bools) -> float | None:
    """ROC-AUC of scores against labels (None with only one class)."""
    return roc_auc(curve(scores, malicious))

"""Evaluation of a detector's scores against labelled flows: ROC-AUC, PR-AUC, recall at low FPR and a leakage check."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from machimori.detection.labels import Labels, Scores, read_labels, read_scores
from machimori.detection.leakage import LeakageCheck, Note, check_leakage
from machimori.detection.metrics import Floats, OperatingPoint, average_precision, curve, operating_point, roc_auc
from machimori.detection.reading import ReadReport

#: False-positive rates at which recall is reported.
DEFAULT_FPR_TARGETS = (0.001, 0.01)


@dataclass(frozen=True)
class KindRecall:
    """How many malicious flows of one attack kind were evaluated and how many scored at or above the threshold."""

    kind: str
    flows: int
    detected: int
    recall: float | None


@dataclass(frozen=True)
class Join:
    """What joining scores and labels on uid found."""

    scored: int
    labelled: int
    evaluated: int
    scored_without_label: int
    labelled_without_score: int
    duplicate_scores: int
    duplicate_labels: int


@dataclass
class EvaluationReport:
    """The result of evaluating a detector's scores against labels, for people (to_text) and for JSON (to_dict)."""

    scores_file: str
    label_files: list[str]
    scores_read: ReadReport
    labels_read: ReadReport
    join: Join
    positives: int
    negatives: int
    roc_auc: float | None
    pr_auc: float | None
    operating_points: list[OperatingPoint | None]  # one per target FPR, None with only one class
    fpr_targets: list[float]
    kind_fpr: float
    kind_threshold: float | None
    kinds: list[KindRecall]
    leakage: LeakageCheck
    notes: list[Note] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready values."""
        return {
            "scores_file": self.scores_file,
            "label_files": self.label_files,
            "reading": {"scores": _read_dict(self.scores_read), "labels": _read_dict(self.labels_read)},
            "join": asdict(self.join),
            "positives": self.positives,
            "negatives": self.negatives,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "recall_at_fpr": [
                asdict(point) if point else _undefined_point(target)
                for target, point in zip(self.fpr_targets, self.operating_points, strict=True)
            ],
            "per_kind": {
                "target_fpr": self.kind_fpr,
                "threshold": self.kind_threshold,
                "kinds": [asdict(kind) for kind in self.kinds],
            },
            "leakage": asdict(self.leakage) | {"leaked": self.leakage.leaked},
            "notes": [{"ja": ja, "en": en} for ja, en in self.notes],
        }

    def to_text(self, lang: str = "ja") -> str:
        """A readable report in Japanese ("ja") or English ("en")."""
        return "\n".join(_Text(self, lang).lines()) + "\n"


def evaluate(
    scores_path: str | Path,
    labels_path: str | Path | Sequence[str | Path],
    *,
    label_column: str = "label",
    detail_column: str = "detailed-label",
    fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
    kind_fpr: float = 0.01,
    leakage_limit: float = 0.6,
    folds: int = 5,
    bins: int = 50,
    seed: int = 0,
) -> EvaluationReport:
    """Evaluate a scores CSV against labels (a labelled conn.log, TSV or JSON lines, or a CSV `uid,label[,detail]`)."""
    label_paths = [labels_path] if isinstance(labels_path, (str, Path)) else list(labels_path)
    scores_read, labels_read = ReadReport(), ReadReport()
    scores = read_scores(scores_path, scores_read)
    labels = read_labels(label_paths, labels_read, label_column=label_column, detail_column=detail_column)
    report = measure(
        scores,
        labels,
        fpr_targets=fpr_targets,
        kind_fpr=kind_fpr,
        leakage_limit=leakage_limit,
        folds=folds,
        bins=bins,
        seed=seed,
    )
    return replace(
        report,
        scores_file=str(scores_path),
        label_files=[str(path) for path in label_paths],
        scores_read=scores_read,
        labels_read=labels_read,
    )


def measure(
    scores: Scores,
    labels: Labels,
    *,
    fpr_targets: Sequence[float] = DEFAULT_FPR_TARGETS,
    kind_fpr: float = 0.01,
    leakage_limit: float = 0.6,
    folds: int = 5,
    bins: int = 50,
    seed: int = 0,
) -> EvaluationReport:
    """The evaluation of scores already read against labels already read (joined on uid)."""
    if not all(0.0 < target < 1.0 for target in (*fpr_targets, kind_fpr)) or folds < 2 or bins < 1:
        raise ValueError("FPR targets must lie in (0, 1), folds ≥ 2, bins ≥ 1")
    join, score, label_index = _join(scores, labels)
    malicious = labels.malicious[label_index]
    c = curve(score, malicious)
    points = [operating_point(c, target) for target in fpr_targets]
    kind_point = operating_point(c, kind_fpr)
    threshold = kind_point.threshold if kind_point else None
    report = EvaluationReport(
        scores_file="",
        label_files=[],
        scores_read=ReadReport(),
        labels_read=ReadReport(),
        join=join,
        positives=c.positives,
        negatives=c.negatives,
        roc_auc=roc_auc(c),
        pr_auc=average_precision(c),
        operating_points=points,
        fpr_targets=list(fpr_targets),
        kind_fpr=kind_fpr,
        kind_threshold=threshold,
        kinds=_kind_recall(score, malicious, labels, label_index, kind_point),
        leakage=check_leakage(
            labels.ts[label_index], malicious, limit=leakage_limit, folds=folds, bins=bins, seed=seed
        ),
    )
    report.notes = _notes(report)
    return report


def _join(scores: Scores, labels: Labels) -> tuple[Join, Floats, npt.NDArray[np.int64]]:
    """The evaluated flows' scores and label rows (first of each uid on both sides), with the counts."""
    scored_uids, scored_first = np.unique(scores.uids, return_index=True)
    labelled_uids, labelled_first = np.unique(labels.uids, return_index=True)
    _, in_scores, in_labels = np.intersect1d(scored_uids, labelled_uids, assume_unique=True, return_indices=True)
    join = Join(
        scored=len(scored_uids),
        labelled=len(labelled_uids),
        evaluated=len(in_scores),
        scored_without_label=len(scored_uids) - len(in_scores),
        labelled_without_score=len(labelled_uids) - len(in_scores),
        duplicate_scores=len(scores.uids) - len(scored_uids),
        duplicate_labels=len(labels.uids) - len(labelled_uids),
    )
    score = scores.scores[scored_first[in_scores]].astype(np.float64)
    return join, score, labelled_first[in_labels].astype(np.int64)


def _kind_recall(
    score: Floats,
    malicious: npt.NDArray[np.bool_],
    labels: Labels,
    rows: npt.NDArray[np.int64],
    point: OperatingPoint | None,
) -> list[KindRecall]:
    """Recall per attack kind at the operating point (None when the point is undefined), most flows first."""
    kinds = labels.kinds[rows][malicious]
    flows = np.bincount(kinds, minlength=len(labels.kind_names))
    flagged = (
        np.zeros(len(kinds), np.bool_)
        if point is None or point.threshold is None
        else score[malicious] >= point.threshold
    )
    detected = np.bincount(kinds[flagged], minlength=len(labels.kind_names))
    found = [
        KindRecall(
            name,
            int(flows[code]),
            int(detected[code]),
            None if point is None else int(detected[code]) / int(flows[code]),
        )
        for code, name in enumerate(labels.kind_names)
        if flows[code]
    ]
    return sorted(found, key=lambda kind: (-kind.flows, kind.kind))


def _notes(report: EvaluationReport) -> list[Note]:
    """What a reader of the figures must know: left-out flows, undefined metrics, leakage."""
    join, notes = report.join, []
    if join.evaluated == 0:
        notes.append(
            (
                "スコアとラベルで一致する uid がありません。両方が同じキャプチャのものか確かめてください。",
                "No scored flow has a label (no uid in common): check that both files come from the same capture.",
            )
        )
    if join.scored_without_label:
        notes.append(
            (
                f"ラベルのないスコア付きフロー {join.scored_without_label} 件は指標から除外しました。",
                f"{join.scored_without_label} scored flows have no label and are left out of the metrics.",
            )
        )
    if join.labelled_without_score:
        notes.append(
            (
                f"スコアのないラベル付きフローが {join.labelled_without_score} 件あります (検知器が読まなかったフロー)。",
                f"{join.labelled_without_score} labelled flows have no score (flows the detector did not see).",
            )
        )
    if join.duplicate_scores or join.duplicate_labels:
        notes.append(
            (
                f"uid の重複: スコア {join.duplicate_scores} 件、ラベル {join.duplicate_labels} 件 (最初の行を採用)。",
                f"Duplicate uids: {join.duplicate_scores} in scores, {join.duplicate_labels} in labels (first row kept).",
            )
        )
    notes.extend(_class_notes(report))
    notes.extend(report.leakage.notes())
    return notes


def _class_notes(report: EvaluationReport) -> list[Note]:
    """Notes on undefined metrics (one class only) and unreachable FPR targets."""
    if report.join.evaluated and not (report.positives and report.negatives):
        present = ("悪性のみ", "only malicious") if report.positives else ("良性のみ", "only benign")
        return [
            (
                f"評価対象が{present[0]}のため ROC-AUC、PR-AUC、FPR での検出率は定義できません (None)。",
                f"The evaluated flows are {present[1]}: ROC-AUC, PR-AUC and recall at an FPR are undefined (None).",
            )
        ]
    return [
        (
            f"FPR ≤ {_percent(point.target_fpr)} を満たすしきい値はありません (最高スコアでも良性が多すぎます)。検出率は 0 とします。",
            f"No threshold keeps FPR ≤ {_percent(point.target_fpr)} (even the top score flags too many benign flows): recall 0.",
        )
        for point in report.operating_points
        if point is not None and point.threshold is None
    ]


def _undefined_point(target: float) -> dict[str, Any]:
    """An operating point's keys, all None but the target (only one class was evaluated)."""
    return {"target_fpr": target} | dict.fromkeys(("threshold", "fpr", "recall", "flagged_malicious", "flagged_benign"))


def _read_dict(read: ReadReport) -> dict[str, Any]:
    return {
        "read": read.read,
        "skipped": dict(read.skipped),
        "examples": [str(problem) for problem in read.examples],
    }


def _percent(rate: float) -> str:
    return f"{rate * 100:.3g}%"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _pad(text: str, width: int) -> str:
    """Text padded on the right to a display width, at least one space."""
    return text + " " * max(width - _width(text), 1)


def _right(text: str, width: int) -> str:
    """Text padded on the left to a display width."""
    return " " * max(width - _width(text), 0) + text


def _width(text: str) -> int:
    """The display width of text: East Asian wide characters count two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


class _Text:
    """The lines of a report in one language."""

    def __init__(self, report: EvaluationReport, lang: str) -> None:
        self.r = report
        self.ja = lang == "ja"

    def t(self, ja: str, en: str) -> str:
        """The text in the report's language."""
        return ja if self.ja else en

    def lines(self) -> list[str]:
        """Every line: reading, join, metrics, per kind, leakage, notes."""
        return [
            *self._reading(),
            *self._join(),
            *self._metrics(),
            *self._kinds(),
            *self._leakage(),
            *(
                [self.t("注記:", "Notes:")] + [f"  - {self.t(ja, en)}" for ja, en in self.r.notes]
                if self.r.notes
                else []
            ),
        ]

    def _reading(self) -> list[str]:
        r = self.r
        lines = [self.t("検知器の評価", "Detector evaluation") + f": {r.scores_file} × {', '.join(r.label_files)}"]
        for name, read in ((self.t("スコア", "Scores"), r.scores_read), (self.t("ラベル", "Labels"), r.labels_read)):
            skipped = ", ".join(f"{reason}: {count}" for reason, count in read.skipped.most_common())
            line = self.t(f"{read.read} 件読み込み", f"read {read.read}")
            if read.skipped:
                line += (
                    self.t(f"、{read.skipped_total} 件スキップ", f", skipped {read.skipped_total}") + f" ({skipped})"
                )
            lines.append(f"{name}: {line}")
            lines.extend(f"  {problem}" for problem in read.examples[:5])
        return lines

    def _join(self) -> list[str]:
        j, r = self.r.join, self.r
        return [
            self.t(
                f"uid で結合: 評価対象 {j.evaluated} フロー (悪性 {r.positives}、良性 {r.negatives})",
                f"Joined on uid: {j.evaluated} flows evaluated ({r.positives} malicious, {r.negatives} benign)",
            ),
            self.t(
                f"  ラベルのないスコア {j.scored_without_label} 件 (除外)、スコアのないラベル {j.labelled_without_score} 件",
                f"  {j.scored_without_label} scored flows without a label (left out), "
                f"{j.labelled_without_score} labels without a score",
            ),
        ]

    def _metrics(self) -> list[str]:
        r, width = self.r, 34
        lines = [
            _pad(self.t("指標", "Metric"), width) + self.t("値", "Value"),
            _pad("ROC-AUC", width) + _number(r.roc_auc),
            _pad(self.t("PR-AUC (平均適合率)", "PR-AUC (average precision)"), width) + _number(r.pr_auc),
        ]
        for target, point in zip(r.fpr_targets, r.operating_points, strict=True):
            name = self.t(f"FPR ≤ {_percent(target)} での検出率", f"Recall at FPR ≤ {_percent(target)}")
            lines.append(_pad(name, width) + (self._point(point) if point else "—"))
        return lines

    def _point(self, point: OperatingPoint) -> str:
        if point.threshold is None:
            return self.t("0.0000  (しきい値なし)", "0.0000  (no threshold)")
        return f"{point.recall:.4f}  " + self.t(
            f"しきい値 {point.threshold:g}、FPR {_percent(point.fpr)}、"
            f"検出 悪性 {point.flagged_malicious} / 良性 {point.flagged_benign}",
            f"threshold {point.threshold:g}, FPR {_percent(point.fpr)}, "
            f"flagged {point.flagged_malicious} malicious / {point.flagged_benign} benign",
        )

    def _kinds(self) -> list[str]:
        r = self.r
        if not r.kinds:
            return []
        threshold = "—" if r.kind_threshold is None else f"{r.kind_threshold:g}"
        lines = [
            self.t(
                f"攻撃種別ごとの検出率 (FPR ≤ {_percent(r.kind_fpr)}、しきい値 {threshold}):",
                f"Recall per attack kind at FPR ≤ {_percent(r.kind_fpr)} (threshold {threshold}):",
            ),
            "  "
            + _pad(self.t("種別", "Kind"), 32)
            + "".join(
                _right(self.t(ja, en), 10)
                for ja, en in (("フロー数", "Flows"), ("検出", "Detected"), ("検出率", "Recall"))
            ),
        ]
        lines.extend(
            f"  {_pad(k.kind, 32)}{k.flows:>10}{k.detected:>10}{_right(_number(k.recall), 10)}" for k in r.kinds
        )
        return lines

    def _leakage(self) -> list[str]:
        leak, width = self.r.leakage, 44
        if leak.time_auc is None and leak.binned_auc is None:
            verdict = self.t("未実施", "not done")
        else:
            verdict = self.t("リークの疑いあり", "LEAK SUSPECTED") if leak.leaked else self.t("問題なし", "fine")
        return [
            self.t(
                f"リーク検査 (時刻だけを見るモデルは 0.5 付近のはず、上限 {leak.limit:.2f}): {verdict}",
                f"Leakage check (a model that sees only timestamps must score near 0.5, limit {leak.limit:.2f}): {verdict}",
            ),
            "  "
            + _pad(self.t("ts をそのままスコアに max(AUC, 1−AUC)", "ts as the score, max(AUC, 1−AUC)"), width)
            + _number(leak.time_auc),
            "  "
            + _pad(
                self.t(
                    f"ts の {leak.bins} 区間モデル、{leak.folds} 分割交差検証",
                    f"ts in {leak.bins} bins, {leak.folds}-fold AUC",
                ),
                width,
            )
            + _number(leak.binned_auc),
            "  "
            + _pad(self.t("定数スコア (全て同順位)", "constant score (all tied)"), width)
            + _number(leak.constant_auc),
        ]

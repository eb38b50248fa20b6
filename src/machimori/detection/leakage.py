"""Leakage check: a model that sees only timestamps must score near 0.5, or the evaluation is wrong."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from machimori.detection.metrics import Bools, Floats, auc_of

Note = tuple[str, str]  # (Japanese, English)


@dataclass(frozen=True)
class LeakageCheck:
    """How well timestamps alone predict the labels; near 0.5 or the evaluation is wrong."""

    flows: int  # evaluated flows with a known time
    time_auc: float | None  # ts as the score, max(AUC, 1 − AUC)
    binned_auc: float | None  # out-of-fold AUC of the share of malicious flows per time bin
    constant_auc: float | None  # every flow tied: must be exactly 0.5
    limit: float
    folds: int
    bins: int
    seed: int

    @property
    def leaked(self) -> bool:
        """Whether timestamps alone predict the labels better than the limit allows."""
        return any(auc is not None and auc > self.limit for auc in (self.time_auc, self.binned_auc))

    def notes(self) -> list[Note]:
        """The leakage verdict, or why it could not be made."""
        notes: list[Note] = []
        if self.constant_auc is not None and self.constant_auc != 0.5:
            notes.append(
                (
                    f"定数スコアの AUC が 0.5 ではありません ({self.constant_auc}): 評価が壊れています。",
                    f"A constant score gives AUC {self.constant_auc}, not 0.5: the evaluation is broken.",
                )
            )
        if self.flows == 0 and self.constant_auc is not None:
            notes.append(
                (
                    "ラベルに ts がないためリーク検査はできません (ラベル付き conn.log を与えてください)。",
                    "The labels carry no ts, so the leakage check was not done (give the labelled conn.log).",
                )
            )
        if self.leaked:
            figure = self._figure()
            notes.append(
                (
                    f"警告: タイムスタンプだけでラベルが予測できます ({figure[0]} > {self.limit:.2f})。攻撃通信がキャプチャの"
                    "特定の時間帯に固まっていると考えられ、検知器のスコアが振る舞いではなく時刻に乗っているだけかもしれません。"
                    "検知器の数値をこの数値と比べ、両方のクラスを含む時間帯ごとや別のキャプチャでも確かめてください。",
                    f"WARNING: timestamps alone predict the labels ({figure[1]} > {self.limit:.2f}). The attack traffic "
                    "likely sits in a time block of the capture, so a detector's score may ride on time rather than on "
                    "behaviour: compare its figures with these, and check within time windows that hold both classes "
                    "or on another capture.",
                )
            )
        return notes

    def _figure(self) -> Note:
        """The leakage figures that pass the limit, named."""
        ja, en = [], []
        if self.time_auc is not None and self.time_auc > self.limit:
            ja.append(f"ts をそのままスコアにした AUC {self.time_auc:.4f}")
            en.append(f"AUC of ts as the score {self.time_auc:.4f}")
        if self.binned_auc is not None and self.binned_auc > self.limit:
            ja.append(f"ts の {self.bins} 区間モデルの {self.folds} 分割交差検証 AUC {self.binned_auc:.4f}")
            en.append(f"{self.folds}-fold AUC of a {self.bins}-bin ts model {self.binned_auc:.4f}")
        return "、".join(ja), "; ".join(en)


def check_leakage(
    ts: Floats, malicious: Bools, *, limit: float = 0.6, folds: int = 5, bins: int = 50, seed: int = 0
) -> LeakageCheck:
    """How well the time alone predicts the labels of the evaluated flows that have a time."""
    known = np.isfinite(ts)
    ts, labelled = ts[known], malicious[known]
    time_auc = auc_of(ts, labelled)
    return LeakageCheck(
        flows=len(ts),
        time_auc=None if time_auc is None else max(time_auc, 1.0 - time_auc),
        binned_auc=binned_time_auc(ts, labelled, folds=folds, bins=bins, seed=seed),
        constant_auc=auc_of(np.zeros(len(malicious), np.float64), malicious),
        limit=limit,
        folds=folds,
        bins=bins,
        seed=seed,
    )


def binned_time_auc(ts: Floats, malicious: Bools, *, folds: int = 5, bins: int = 50, seed: int = 0) -> float | None:
    """Out-of-fold ROC-AUC of a model that knows only the time: share of malicious flows per time bin (k random folds)."""
    if len(ts) < folds or malicious.all() or not malicious.any():
        return None
    rng = np.random.default_rng(seed)
    fold = np.empty(len(ts), np.int64)
    fold[rng.permutation(len(ts))] = np.arange(len(ts)) % folds
    predicted = np.empty(len(ts), np.float64)
    for k in range(folds):
        held = fold == k
        predicted[held] = _binned_rates(ts[~held], malicious[~held], ts[held], bins)
    return auc_of(predicted, malicious)


def _binned_rates(train_ts: Floats, train_malicious: Bools, test_ts: Floats, bins: int) -> Floats:
    """The share of malicious training flows in each quantile bin of time, looked up for the test times."""
    edges = np.unique(np.quantile(train_ts, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    train_bin = np.searchsorted(edges, train_ts, side="right")
    flows = np.bincount(train_bin, minlength=len(edges) + 1)
    malicious = np.bincount(train_bin, weights=train_malicious, minlength=len(edges) + 1)
    prior = float(train_malicious.mean())
    rates = (malicious + prior) / (flows + 1.0)  # one pseudo-flow at the prior: an empty bin predicts the prior
    return np.asarray(rates[np.searchsorted(edges, test_ts, side="right")], np.float64)

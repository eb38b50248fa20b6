"""Evaluation harness: labels and scores reading, metrics against scikit-learn, recall at FPR, leakage check, report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score  # type: ignore[import-untyped]

from machimori.detection.evaluate import evaluate, measure
from machimori.detection.flows import STANDARD_FIELDS
from machimori.detection.labels import Labels, Scores, read_labels
from machimori.detection.leakage import binned_time_auc, check_leakage
from machimori.detection.metrics import average_precision, curve, operating_point, roc_auc
from machimori.detection.reading import ReadReport
from machimori.diagnostics import InputError

#: IoT-23's header lines, as its `conn.log.labeled` files have them (the last three names joined by spaces).
FIELDS_LINE = "#fields\t" + "\t".join(STANDARD_FIELDS) + "\ttunnel_parents   label   detailed-label"
TYPES_LINE = (
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool"
    "\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]   string   string"
)


def iot23_log(path: Path, rows: list[tuple[float, str, str, str]]) -> Path:
    """A labelled conn.log the way IoT-23 writes it: the last three columns separated by runs of spaces."""
    lines = [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#open\t2018-12-21-15-50-14",
        FIELDS_LINE,
        TYPES_LINE,
    ]
    for ts, uid, label, detail in rows:
        values = [f"{ts:.6f}", uid, "192.168.100.103", "40012", "203.0.113.7", "23", "tcp", "-", "2.9", "0", "0", "S0"]
        values += ["-", "-", "0", "S", "3", "180", "0", "0"]
        lines.append("\t".join(values) + f"\t-   {label}   {detail}")
    lines.append("#close\t2018-12-21-16-50-14")
    path.write_text("\n".join(lines) + "\n")
    return path


def scores_csv(path: Path, rows: list[tuple[str, object]]) -> Path:
    """A detector's scores file."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("uid", "device", "score", "reasons"))
        writer.writerows((uid, "192.168.100.103", score, "scan;novel-port") for uid, score in rows)
    return path


def arrays(
    scores: list[float], malicious: list[bool], kinds: list[str] | None = None, ts: list[float] | None = None
) -> tuple[Scores, Labels]:
    """Scores and labels in memory, uid i for row i."""
    uids = np.array([f"C{i}".encode() for i in range(len(scores))])
    names = sorted(set(kinds or ["Malicious"]))
    codes = np.array([names.index(kind) for kind in kinds] if kinds else [0] * len(scores), np.int32)
    times = np.array(ts if ts is not None else [np.nan] * len(scores), np.float64)
    return Scores(uids, np.array(scores, np.float64)), Labels(uids, times, np.array(malicious), codes, names)


# --- metrics against scikit-learn ---------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=200).filter(
        lambda rows: len({label for _, label in rows}) == 2
    )
)
def test_auc_and_average_precision_match_sklearn_with_ties(rows: list[tuple[int, bool]]) -> None:
    scores = np.array([score / 3 for score, _ in rows], np.float64)
    malicious = np.array([label for _, label in rows])
    c = curve(scores, malicious)
    assert roc_auc(c) == pytest.approx(roc_auc_score(malicious, scores), abs=1e-12)
    assert average_precision(c) == pytest.approx(average_precision_score(malicious, scores), abs=1e-12)


def test_metrics_match_sklearn_on_larger_random_data() -> None:
    rng = np.random.default_rng(7)
    malicious = rng.random(20000) < 0.1
    scores = np.round(rng.normal(size=20000) + 1.5 * malicious, 1).astype(np.float64)  # rounding makes many ties
    c = curve(scores, malicious)
    assert roc_auc(c) == pytest.approx(roc_auc_score(malicious, scores), abs=1e-12)
    assert average_precision(c) == pytest.approx(average_precision_score(malicious, scores), abs=1e-12)


def test_recall_at_fpr_picks_the_smallest_threshold_within_the_target() -> None:
    # 100 benign: one at 0.9, one at 0.7 and 98 at 0.1; 10 malicious: 0.95 ×3, 0.9 ×2, 0.7 ×2, 0.2 ×3.
    benign = [0.9, 0.7] + [0.1] * 98
    bad = [0.95] * 3 + [0.9] * 2 + [0.7] * 2 + [0.2] * 3
    scores = np.array(benign + bad)
    malicious = np.array([False] * 100 + [True] * 10)
    c = curve(scores, malicious)
    strict = operating_point(c, 0.001)  # no benign flow may be flagged: only the 0.95 group qualifies
    assert strict is not None
    assert (strict.threshold, strict.recall, strict.flagged_benign) == (0.95, 0.3, 0)
    one = operating_point(c, 0.01)  # one benign flow allowed: 0.9, the benign flow tied there counts as flagged
    assert one is not None
    assert (one.threshold, one.recall, one.fpr, one.flagged_malicious) == (0.9, 0.5, 0.01, 5)
    two = operating_point(c, 0.02)
    assert two is not None and (two.threshold, two.recall, two.flagged_benign) == (0.2, 1.0, 2)


def test_no_threshold_when_the_top_score_is_mostly_benign() -> None:
    c = curve(np.array([1.0, 1.0, 0.5]), np.array([False, True, True]))
    point = operating_point(c, 0.001)
    assert point is not None and point.threshold is None and point.recall == 0.0


def test_one_class_gives_none_metrics_and_no_crash() -> None:
    scores, labels = arrays([0.1, 0.5, 0.9], [False, False, False], ts=[1.0, 2.0, 3.0])
    report = measure(scores, labels)
    assert (report.roc_auc, report.pr_auc) == (None, None)
    assert report.operating_points == [None, None]
    assert report.leakage.time_auc is None and report.leakage.binned_auc is None
    assert any("only benign" in en for _, en in report.notes)
    assert "—" in report.to_text("en") and report.to_dict()["recall_at_fpr"][0]["recall"] is None
    json.dumps(report.to_dict())


def test_recall_per_attack_kind_at_one_percent_fpr() -> None:
    benign = [0.1 * (i % 5) for i in range(200)]  # at most 0.4
    scores = [*benign, 0.9, 0.8, 0.3, 0.95, 0.2, 0.05]
    malicious = [False] * 200 + [True] * 6
    kinds = ["Benign"] * 200 + ["DDoS", "DDoS", "DDoS", "C&C", "C&C", "PartOfAHorizontalPortScan"]
    report = measure(*arrays(scores, malicious, kinds))
    assert report.kind_threshold == 0.8  # 0.4 would flag 40 benign flows, 20%
    found = {kind.kind: (kind.flows, kind.detected, kind.recall) for kind in report.kinds}
    assert found == {"DDoS": (3, 2, 2 / 3), "C&C": (2, 1, 0.5), "PartOfAHorizontalPortScan": (1, 0, 0.0)}
    assert report.kinds[0].kind == "DDoS"


# --- leakage -----------------------------------------------------------------------------------------------------


def test_labels_that_follow_the_clock_are_flagged() -> None:
    rng = np.random.default_rng(3)
    ts = np.sort(rng.uniform(1.5e9, 1.5e9 + 3600, 3000))
    check = check_leakage(ts, ts > 1.5e9 + 2400)
    assert check.time_auc == 1.0 and check.binned_auc is not None and check.binned_auc > 0.95
    assert check.leaked and check.constant_auc == 0.5
    assert any("timestamps alone predict the labels" in en for _, en in check.notes())


def test_a_time_block_in_the_middle_is_caught_by_the_binned_model() -> None:
    ts = np.linspace(0.0, 1000.0, 3000)
    malicious = (ts > 400) & (ts < 600)  # ts as a score sees little, the binned model sees the block
    check = check_leakage(ts, malicious)
    assert check.time_auc is not None and check.time_auc < 0.6
    assert check.binned_auc is not None and check.binned_auc > 0.9 and check.leaked


def test_labels_random_in_time_are_not_flagged() -> None:
    rng = np.random.default_rng(11)
    ts = rng.uniform(0.0, 1e5, 4000)
    check = check_leakage(ts, rng.random(4000) < 0.3)
    assert check.time_auc is not None and check.time_auc < 0.55
    assert check.binned_auc is not None and abs(check.binned_auc - 0.5) < 0.05
    assert not check.leaked and check.notes() == []


def test_binned_model_is_reproducible_with_its_seed() -> None:
    rng = np.random.default_rng(5)
    ts, malicious = rng.random(500), rng.random(500) < 0.5
    assert binned_time_auc(ts, malicious, seed=1) == binned_time_auc(ts, malicious, seed=1)


# --- reading -----------------------------------------------------------------------------------------------------


def test_iot23_space_separated_label_columns(tmp_path: Path) -> None:
    rows = [
        (1545403816.0 + i, f"CUid{i}", *(("Malicious", "PartOfAHorizontalPortScan") if i % 3 else ("Benign", "-")))
        for i in range(9)
    ]
    report = ReadReport()
    labels = read_labels([iot23_log(tmp_path / "conn.log.labeled", rows)], report)
    assert report.read == 9 and not report.skipped
    assert labels.uids.tolist() == [f"CUid{i}".encode() for i in range(9)]
    assert labels.malicious.tolist() == [bool(i % 3) for i in range(9)]
    assert labels.ts[0] == 1545403816.0
    assert {labels.kind_names[code] for code in labels.kinds} == {"Benign", "PartOfAHorizontalPortScan"}


def test_tab_separated_label_columns_read_the_same(tmp_path: Path) -> None:
    rows = [
        (1545403816.0 + i, f"CUid{i}", "Malicious" if i % 2 else "Benign", "Okiru" if i % 2 else "-") for i in range(6)
    ]
    quirky = iot23_log(tmp_path / "quirky.log", rows)
    proper = tmp_path / "proper.log"
    proper.write_text(quirky.read_text().replace("   ", "\t"))
    first, second = read_labels([quirky], ReadReport()), read_labels([proper], ReadReport())
    assert first.uids.tolist() == second.uids.tolist() and first.malicious.tolist() == second.malicious.tolist()
    assert first.kind_names == second.kind_names == ["Benign", "Okiru"]


def test_duplicate_uids_and_bad_rows_are_counted(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("uid,label,ts\nA,benign,10\nA,malicious,11\nB,malicious,12\nC,benign,soon\n")
    scores = tmp_path / "scores.csv"
    scores.write_text("uid,device,score,reasons\nA,d,0.1,\nA,d,0.9,\nB,d,0.8,\n,d,0.5,\nC,d,inf,\n")
    report = evaluate(scores, labels)
    assert (report.join.duplicate_scores, report.join.duplicate_labels, report.join.evaluated) == (1, 1, 2)
    assert report.roc_auc == 1.0  # the first A (benign, 0.1) is kept on both sides
    assert [problem.line for problem in report.scores_read.examples] == [5, 6]
    assert report.labels_read.examples[0].message == "ts is not a time / ts が時刻ではありません: 'soon'"


def test_evaluate_end_to_end_on_an_iot23_log(tmp_path: Path) -> None:
    rows = [(1.5e9 + i, f"C{i}", "Malicious" if i >= 6 else "Benign", "C&C" if i >= 6 else "-") for i in range(10)]
    log = iot23_log(tmp_path / "conn.log.labeled", rows)
    with log.open("a") as handle:
        handle.write("1500000099.0\tCshort\t1.2.3.4\n")  # truncated line: skipped with its place
    scores = scores_csv(tmp_path / "scores.csv", [(f"C{i}", i / 10) for i in range(11)] + [("Cbad", "high")])
    report = evaluate(scores, log)
    assert report.join.evaluated == 10 and report.join.scored_without_label == 1
    assert report.roc_auc == 1.0 and report.pr_auc == 1.0
    assert report.scores_read.skipped_total == 1 and str(report.scores_read.examples[0]).startswith(f"{scores}:13:")
    assert str(report.labels_read.examples[0]).startswith(f"{log}:20:")
    assert report.leakage.leaked  # the malicious flows are the last four: time alone tells them apart
    text = report.to_text("ja")
    assert "リーク" in text and "ROC-AUC" in text and "C&C" in text
    assert "WARNING: timestamps alone" in report.to_text("en")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["join"]["scored_without_label"] == 1 and data["leakage"]["leaked"] is True


def test_json_lines_labels_with_named_columns(tmp_path: Path) -> None:
    records = [
        {"ts": f"2019-01-01T00:00:0{i}Z", "uid": f"J{i}", "class": ["normal", "attack"][i % 2], "kind": "DDoS"}
        for i in range(6)
    ]
    path = tmp_path / "conn.json"
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n[1, 2]\n")
    report = ReadReport()
    labels = read_labels([path], report, label_column="class", detail_column="kind")
    assert labels.malicious.tolist() == [False, True] * 3
    assert labels.ts[1] - labels.ts[0] == 1.0
    assert report.read == 6 and report.skipped_total == 1 and report.examples[0].line == 7


def test_csv_labels_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("uid,label,detail\nA,benign,\nB,1,Okiru\nC,Malicious,-\nD,,\nE,false,x\n")
    report = ReadReport()
    labels = read_labels([path], report)
    assert labels.uids.tolist() == [b"A", b"B", b"C", b"E"]
    assert labels.malicious.tolist() == [False, True, True, False]
    assert [labels.kind_names[code] for code in labels.kinds[:3]] == ["benign", "Okiru", "Malicious"]
    assert report.examples[0].line == 5  # D has no label
    assert np.isnan(labels.ts).all()


def test_csv_labels_without_time_skip_the_leakage_check(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("uid,label\n" + "".join(f"U{i},{'Malicious' if i % 2 else 'Benign'}\n" for i in range(20)))
    scores = scores_csv(tmp_path / "scores.csv", [(f"U{i}", (i % 2) * 0.5 + i / 100) for i in range(25)])
    report = evaluate(scores, labels)
    assert report.roc_auc == 1.0 and report.join.scored_without_label == 5
    assert report.leakage.flows == 0 and report.leakage.time_auc is None and not report.leakage.leaked
    assert any("carry no ts" in en for _, en in report.notes)


def test_missing_label_column_is_an_input_error(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_text("#separator \\x09\n#fields\tts\tuid\tid.orig_h\n1.0\tC1\t10.0.0.1\n")
    with pytest.raises(InputError, match=r"conn\.log:2: #fields lacks label"):
        read_labels([log], ReadReport())
    jsonl = tmp_path / "conn.json"
    jsonl.write_text('{"ts": 1.0, "uid": "C1"}\n')
    with pytest.raises(InputError, match="lack label"):
        read_labels([jsonl], ReadReport())
    table = tmp_path / "labels.csv"
    table.write_text("uid,verdict\nC1,benign\n")
    with pytest.raises(InputError, match="header must name uid and label"):
        read_labels([table], ReadReport())


def test_scores_without_header_is_an_input_error(tmp_path: Path) -> None:
    scores = tmp_path / "scores.csv"
    scores.write_text("C1,10.0.0.1,0.5,scan\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("uid,label\nC1,benign\n")
    with pytest.raises(InputError, match="no header naming uid and score"):
        evaluate(scores, labels)
    with pytest.raises(InputError, match="file not found"):
        evaluate(tmp_path / "nothing.csv", labels)

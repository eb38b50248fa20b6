"""`machimori detect` as a CSIRT analyst runs it: one row per flow, findings in words, bad input as one line
with file:line and exit 2 — never a traceback."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from machimori.cli import main
from machimori.detection.synthetic import DARKNET, INFECTED, Labelled, Town
from machimori.detection.zeek import conn_log_header, conn_log_line

from .conftest import conn_log_text


@dataclass
class Ran:
    code: int
    out: str
    err: str


def machimori(monkeypatch: pytest.MonkeyPatch, *args: str) -> Ran:
    monkeypatch.setattr(sys, "argv", ["machimori", *args])
    with CliRunner().isolation(env={"MACHIMORI_DETECTION_DARKNET": ""}) as (out, err, _):
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_score_writes_one_row_per_flow_and_tells_the_findings(
    monkeypatch: pytest.MonkeyPatch, town_log: Path, town: list[Labelled], tmp_path: Path
) -> None:
    scores, findings = tmp_path / "scores.csv", tmp_path / "findings.json"

    ran = machimori(
        monkeypatch, "detect", "score", str(town_log), "-o", str(scores), "--darknet", DARKNET,
        "--findings", str(findings),
    )  # fmt: skip

    assert ran.code == 0, ran.err
    scored = rows(scores)
    assert list(scored[0]) == ["uid", "device", "score", "reasons"]
    assert [row["uid"] for row in scored] == [labelled.flow.uid for labelled in town]
    by_uid = {row["uid"]: row for row in scored}
    scan = next(labelled for labelled in town if labelled.kind == "PartOfAHorizontalPortScan")
    assert by_uid[scan.flow.uid]["device"] == INFECTED
    assert all(0.0 <= float(row["score"]) <= 1.0 for row in scored)
    assert "スキャン" in ran.err and "scanning" in ran.err
    written = json.loads(findings.read_text(encoding="utf-8"))
    assert {finding["stage"] for finding in written} >= {"scanning", "command-and-control", "ddos"}


def test_score_learns_from_a_baseline_of_other_devices(
    monkeypatch: pytest.MonkeyPatch, town: list[Labelled], tmp_path: Path
) -> None:
    benign = tmp_path / "benign.log"
    clean = [labelled for labelled in Town(seed=11, hours=1.0).flows() if labelled.label == "benign"]
    benign.write_text(conn_log_text(clean), encoding="utf-8")
    infected = tmp_path / "infected.log"
    infected.write_text(conn_log_text(town), encoding="utf-8")
    scores = tmp_path / "scores.csv"

    ran = machimori(monkeypatch, "detect", "score", str(infected), "--baseline", str(benign), "-o", str(scores))

    assert ran.code == 0, ran.err
    assert f"learned {len(clean)} flows" in ran.err
    irc = next(labelled.flow.uid for labelled in town if labelled.kind == "C&C")
    reasons = {row["uid"]: row["reasons"] for row in rows(scores)}[irc]
    assert "cc.irc" in reasons and "new.service(proto=tcp,port=6667)" in reasons


def test_score_reads_json_lines_and_gzip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import gzip

    town = Town(hours=0.2).flows()
    log = tmp_path / "conn.json.gz"
    with gzip.open(log, "wt", encoding="utf-8") as handle:
        for labelled in town:
            flow = labelled.flow
            handle.write(
                json.dumps(
                    {
                        "ts": flow.ts,
                        "uid": flow.uid,
                        "id.orig_h": flow.orig_h,
                        "id.orig_p": flow.orig_p,
                        "id.resp_h": flow.resp_h,
                        "id.resp_p": flow.resp_p,
                        "proto": flow.proto,
                        "conn_state": flow.conn_state,
                        "label": "Malicious",
                    }
                )
                + "\n"
            )
    scores = tmp_path / "scores.csv"

    ran = machimori(monkeypatch, "detect", "score", str(log), "-o", str(scores))

    assert ran.code == 0, ran.err
    assert len(rows(scores)) == len(town)


def test_a_log_without_fields_is_one_line_with_its_place_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "conn.log"
    log.write_text("1700000000.0\tC1\t10.0.0.1\t1\t10.0.0.2\t23\ttcp\n", encoding="utf-8")

    ran = machimori(monkeypatch, "detect", "score", str(log), "-o", str(tmp_path / "s.csv"))

    assert ran.code == 2
    assert ran.err.strip().startswith(f"machimori: {log}:1: no #fields header")
    assert "Traceback" not in ran.err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["missing.log"], "file not found"),
        (["."], "is a directory"),
        (["{log}", "--darknet", "10.20.999.0/24"], "--darknet: not a network"),
        (["{log}", "--baseline", "missing.log"], "missing.log: file not found"),
        (["{log}", "--indicators", "missing.json"], "missing.json: "),
    ],
)
def test_a_users_mistake_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, arguments: list[str], expected: str
) -> None:
    log = tmp_path / "conn.log"
    log.write_text(conn_log_header(1.7e9), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    filled = [argument.replace("{log}", str(log)) for argument in arguments]

    ran = machimori(monkeypatch, "detect", "score", *filled, "-o", str(tmp_path / "s.csv"))

    assert ran.code == 2, ran.err
    assert expected in ran.err and "Traceback" not in ran.err


def test_bad_lines_are_skipped_counted_and_shown_by_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    town = Town(hours=0.1).flows()
    lines = [conn_log_line(labelled.flow) for labelled in town]
    lines[3] = lines[3].replace("\ttcp\t", "\t70000\t", 1).replace(f"\t{town[3].flow.resp_p}\t", "\tport\t", 1)
    log = tmp_path / "conn.log"
    log.write_text(conn_log_header(town[0].flow.ts) + "".join(lines) + "1700000000.0\tCtrunc\t10.0", encoding="utf-8")
    scores = tmp_path / "scores.csv"

    ran = machimori(monkeypatch, "detect", "score", str(log), "-o", str(scores))

    assert ran.code == 0, ran.err
    assert len(rows(scores)) == len(town) - 1
    assert "skipped 2" in ran.err
    assert f"{log}:12:" in ran.err  # the header is 8 lines: line 12 is the fourth record


def iot23_style(flows: list[Labelled]) -> str:
    """A labelled conn.log as IoT-23 ships it: the label columns joined to the last one by three spaces."""
    header = conn_log_header(flows[0].flow.ts).replace(
        "resp_ip_bytes\n", "resp_ip_bytes\ttunnel_parents   label   detailed-label\n"
    )
    header = header.replace("\tcount\n", "\tcount\tset[string]   string   string\n")
    lines = []
    for labelled in flows:
        label = "Benign" if labelled.label == "benign" else "Malicious"
        detail = "-" if labelled.label == "benign" else labelled.kind
        lines.append(conn_log_line(labelled.flow).rstrip("\n") + f"\t-   {label}   {detail}\n")
    return header + "".join(lines)


def test_eval_scores_a_labelled_log_itself_and_reports_the_metrics_and_the_leak(
    monkeypatch: pytest.MonkeyPatch, town: list[Labelled], tmp_path: Path
) -> None:
    labelled = tmp_path / "conn.log.labeled"
    labelled.write_text(iot23_style(town), encoding="utf-8")

    ran = machimori(monkeypatch, "detect", "eval", str(labelled), "--darknet", DARKNET, "--json")

    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["positives"] == sum(labelled.label != "benign" for labelled in town)
    assert report["roc_auc"] > 0.95
    assert {kind["kind"] for kind in report["per_kind"]["kinds"]} >= {"PartOfAHorizontalPortScan", "DDoS", "C&C"}
    assert report["leakage"]["leaked"] is True  # the synthetic attack sits in the second hour: time alone tells


def test_eval_takes_scores_made_elsewhere_and_a_labels_file(
    monkeypatch: pytest.MonkeyPatch, town: list[Labelled], town_log: Path, tmp_path: Path
) -> None:
    scores, labels = tmp_path / "scores.csv", tmp_path / "labels.csv"
    assert machimori(monkeypatch, "detect", "score", str(town_log), "-o", str(scores)).code == 0
    labels.write_text(
        "uid,label,detail\n" + "".join(f"{item.flow.uid},{item.label},{item.kind}\n" for item in town), encoding="utf-8"
    )

    ran = machimori(monkeypatch, "detect", "eval", str(town_log), "--scores", str(scores), "--labels", str(labels))

    assert ran.code == 0, ran.err
    assert "ROC-AUC" in ran.out and "検出率" in ran.out and "Recall at FPR" in ran.out


def test_eval_without_a_label_column_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, town_log: Path) -> None:
    ran = machimori(monkeypatch, "detect", "eval", str(town_log))

    assert ran.code == 2
    assert str(town_log) in ran.err and "label" in ran.err and "Traceback" not in ran.err

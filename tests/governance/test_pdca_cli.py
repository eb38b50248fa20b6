"""The PDCA cycle as a user runs it: sheet out, filled in by a stakeholder, read back, assessed again."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatomachi" / "city.yaml"


def _machimori(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "machimori.cli", *args], capture_output=True, text=True, check=False)


def _gaps(model: Path, tmp_path: Path) -> set[str]:
    out = tmp_path / "a.json"
    result = _machimori("assess", str(model), "--as-of", "2026-12-01", "-f", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    return {f"{g['requirement']}@{g['scope']}:{g['scope_id']}" for g in json.loads(out.read_text())["gaps"]}


def test_filled_csv_sheet_closes_gaps(tmp_path: Path) -> None:
    model = tmp_path / "city.yaml"
    shutil.copy(EXAMPLE, model)
    before = _gaps(model, tmp_path)

    sheet = tmp_path / "minato-os.csv"
    result = _machimori(
        "assess", str(model), "--as-of", "2026-12-01", "-f", "csv", "--stakeholder", "minato-os", "-o", str(sheet)
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    header, body = rows[0], rows[1:]
    key, status, evidence = (
        header.index("キー / Key"),
        header.index("状態 / Status"),
        header.index("根拠・証跡 / Evidence"),
    )
    filled = [row for row in body if row[key] in before][:3]
    assert len(filled) == 3, "the operator's sheet should contain open gaps"
    for row in filled:
        row[status] = "implemented"
        row[evidence] = "設定変更票 2026-11"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *body])
    sheet.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")

    baseline = tmp_path / "before.json"
    shutil.copy(tmp_path / "a.json", baseline)
    result = _machimori("assess", str(model), "--as-of", "2026-12-01", "--import-sheet", str(sheet))
    assert result.returncode == 0, result.stderr
    after = _gaps(model, tmp_path)

    out = tmp_path / "progress.json"
    result = _machimori(
        "assess", str(model), "--as-of", "2026-12-01", "--baseline", str(baseline), "-f", "json", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "解消 3" in result.stderr
    progress = json.loads(out.read_text())["progress"]
    assert progress["gaps_closed"] == 3 and progress["gaps_opened"] == 0
    assert progress["coverage_now"] > progress["coverage_before"]
    schema = json.loads((EXAMPLE.parents[2] / "docs" / "assessment.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(out.read_text()))
    closed = {row[key] for row in filled}
    assert closed <= before and not closed & after
    assert after == before - closed
    assert "設定変更票 2026-11" in model.read_text(encoding="utf-8")
    assert "# 意図的な不備" in model.read_text(encoding="utf-8"), "comments in the model must survive"


def test_sheet_of_another_model_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "city.yaml"
    shutil.copy(EXAMPLE, model)
    sheet = tmp_path / "sheet.csv"
    assert _machimori("assess", str(model), "-f", "csv", "-o", str(sheet)).returncode == 0
    extra = "components:\n  - id: extra-sensor\n    category: asset\n    owner: minato-city\n"
    text = model.read_text(encoding="utf-8").replace("components:\n", extra, 1)
    other = tmp_path / "other.yaml"
    other.write_text(text, encoding="utf-8")
    original = other.read_bytes()
    result = _machimori("assess", str(other), "--import-sheet", str(sheet))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "another model" in result.stderr
    assert other.read_bytes() == original


def test_bad_baselines_exit_2(tmp_path: Path) -> None:
    not_json = tmp_path / "x.json"
    not_json.write_text("{ nope", encoding="utf-8")
    other_city = tmp_path / "y.json"
    other_city.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "city": {"id": "elsewhere"},
                "as_of": "2026-01-01",
                "summary": {"coverage": 0.5},
                "findings": [],
                "gaps": [],
            }
        ),
        encoding="utf-8",
    )
    for baseline, expected in (
        (not_json, "not an assessment result"),
        (other_city, "not 'minatomachi'"),
        (tmp_path / "missing.json", "not found"),
    ):
        result = _machimori("assess", str(EXAMPLE), "--baseline", str(baseline))
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr

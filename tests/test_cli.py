"""The command line refuses a user's mistakes up front, with one line and exit 2, and prints any text safely."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minatomachi" / "city.yaml"


def _machimori(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-o", "{tmp}/report.pdf"], "cannot tell the format from '.pdf'"),
        (["--stakeholder", "minato-os"], "use it with --format xlsx, csv or md"),
        (["--stakeholder", "minato-os", "-f", "html"], "use it with --format xlsx, csv or md"),
        (["--stakeholder", "nobody", "-f", "md"], "unknown stakeholder 'nobody'"),
        (["-f", "xlsx"], "XLSX needs an output file"),
        (["-f", "html", "-o", "{tmp}"], "cannot write"),
        (["--as-of", "2026-13-01"], "is not a date"),
        (["--fail-on", "severe"], "severe"),
    ],
)
def test_bad_options_exit_2_before_any_work(tmp_path: Path, args: list[str], expected: str) -> None:
    model = tmp_path / "city.yaml"
    shutil.copy(EXAMPLE, model)
    result = _machimori("assess", str(model), *(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_stakeholder_check_comes_before_importing_sheets(tmp_path: Path) -> None:
    model = tmp_path / "city.yaml"
    shutil.copy(EXAMPLE, model)
    sheet = tmp_path / "s.csv"
    assert _machimori("assess", str(model), "-f", "csv", "-o", str(sheet)).returncode == 0
    before = model.read_bytes()
    result = _machimori("assess", str(model), "--import-sheet", str(sheet), "--stakeholder", "nobody", "-f", "md")
    assert result.returncode == 2
    assert model.read_bytes() == before


def test_markup_in_user_text_is_printed_as_text(tmp_path: Path) -> None:
    model = tmp_path / "city.yaml"
    text = EXAMPLE.read_text(encoding="utf-8").replace("ja: 港町", "ja: 港町[/][bold]", 1)
    model.write_text(text, encoding="utf-8")
    result = _machimori("assess", str(model))
    assert result.returncode == 0, result.stderr
    assert "港町[/][bold]" in result.stdout


def test_demo_refuses_a_file_as_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    result = _machimori("demo", "--out", str(target))
    assert result.returncode == 2 and "must be a folder" in result.stderr


def test_sheets_are_not_imported_into_json_models(tmp_path: Path) -> None:
    import json

    from ruamel.yaml import YAML

    model = tmp_path / "city.json"
    model.write_text(json.dumps(YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8")), default=str), "utf-8")
    sheet = tmp_path / "s.csv"
    assert _machimori("assess", str(model), "-f", "csv", "-o", str(sheet)).returncode == 0
    before = model.read_bytes()
    result = _machimori("assess", str(model), "--import-sheet", str(sheet))
    assert result.returncode == 2 and "YAML models only" in result.stderr
    assert model.read_bytes() == before

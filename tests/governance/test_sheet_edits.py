"""Check sheets edited the way people edit them: free text in the status cell, shared due dates."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatomachi" / "city.yaml"


def _machimori(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "machimori.cli", *args], capture_output=True, text=True, check=False)


def _fill(
    tmp_path: Path, changes: dict[str, str], rows: int = 2
) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    model = tmp_path / "city.yaml"
    shutil.copy(EXAMPLE, model)
    sheet = tmp_path / "s.csv"
    assert _machimori("assess", str(model), "-f", "csv", "-o", str(sheet)).returncode == 0
    table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    header = table[0]
    status = header.index("状態 / Status")
    targets = [row for row in table[1:] if row[status] != "implemented"][:rows]
    for row in targets:
        for column, value in changes.items():
            row[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table)
    sheet.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")
    return model, sheet, _machimori("assess", str(model), "--import-sheet", str(sheet))


@pytest.mark.parametrize("text", ["not yet implemented", "partially implemented", "not implemented (planned)"])
def test_free_text_status_is_refused_not_guessed(tmp_path: Path, text: str) -> None:
    model, _, result = _fill(tmp_path, {"状態 / Status": text})
    assert result.returncode == 2, result.stderr
    assert "unknown status" in result.stderr
    assert model.read_bytes() == EXAMPLE.read_bytes()


def test_shared_due_dates_are_written_without_anchors(tmp_path: Path) -> None:
    model, _, result = _fill(tmp_path, {"状態 / Status": "planned", "期限 / Due": "2027-03-31"}, rows=4)
    assert result.returncode == 0, result.stderr
    text = model.read_text(encoding="utf-8")
    assert text.count("2027-03-31") >= 4
    assert "&id" not in text and "*id" not in text

"""Bad city models: every problem reported as file:line:column, exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from machimori.diagnostics import InputError
from machimori.governance.catalog import Catalog
from machimori.governance.model import load_model

from .conftest import clean_model, dump


def _problems(tmp_path: Path, text: str, catalog: Catalog) -> list[str]:
    path = tmp_path / "city.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_model(path, catalog)
    return [str(p) for p in caught.value.problems]


MINIMAL = """\
city:
  id: t
  name: T
  promoter: town
stakeholders:
  - id: town
    kind: promoter
components:
  - id: cam
    category: asset
    owner: town
datasets:
  - id: d
    data_type: open
flows:
  - id: f
    from: cam
    to: cam
    dataset: d
    encrypted: true
    authenticated: true
"""


def test_minimal_model_loads(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_model(path, catalog).components[0].id == "cam"


def test_unknown_key_says_did_you_mean(tmp_path: Path, catalog: Catalog) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("    owner: town", "    ownr: town"), catalog)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'city.yaml'}:11:5: unknown key 'ownr'")
    assert "did you mean 'owner'" in problems[0]


def test_wrong_type_and_bad_enum_are_located(tmp_path: Path, catalog: Catalog) -> None:
    text = MINIMAL.replace("category: asset", "category: asets").replace("encrypted: true", "encrypted: maybe")
    problems = _problems(tmp_path, text, catalog)
    assert any(":10:15:" in p and "did you mean 'asset'" in p for p in problems), problems
    assert any(":20:16:" in p and "encrypted" in p for p in problems), problems


def test_dangling_reference_is_located_with_suggestion(tmp_path: Path, catalog: Catalog) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("    to: cam", "    to: cma"), catalog)
    assert problems == [f"{tmp_path / 'city.yaml'}:18:9: unknown component 'cma' (did you mean 'cam'?) / 未定義の参照"]


def test_missing_required_key(tmp_path: Path, catalog: Catalog) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("    dataset: d\n", ""), catalog)
    assert any("missing required key 'dataset'" in p and ":16:" in p for p in problems), problems


def test_duplicate_ids_point_to_both(tmp_path: Path, catalog: Catalog) -> None:
    text = MINIMAL.replace("datasets:\n", "  - id: cam\n    category: asset\ndatasets:\n")
    problems = _problems(tmp_path, text, catalog)
    assert any("duplicate id 'cam' (first defined at line 9)" in p for p in problems), problems


def test_subcontractor_cycle(tmp_path: Path, catalog: Catalog) -> None:
    text = MINIMAL.replace(
        "components:\n",
        "  - id: a\n    kind: subcontractor\n    parent: b\n  - id: b\n    kind: subcontractor\n    parent: a\ncomponents:\n",
    )
    problems = _problems(tmp_path, text, catalog)
    assert len(problems) == 1 and "cycle in the subcontractor chain: a → b → a" in problems[0]


def test_unknown_requirement_in_status(tmp_path: Path, catalog: Catalog) -> None:
    text = MINIMAL + "statuses:\n  - requirement: CPS.AC-99\n    status: implemented\n"
    problems = _problems(tmp_path, text, catalog)
    assert any(":23:18: unknown requirement 'CPS.AC-99'" in p for p in problems), problems


def test_many_problems_all_reported(tmp_path: Path, catalog: Catalog) -> None:
    data = clean_model(catalog)
    data["components"][0]["owner"] = "nobody"
    data["flows"][0]["dataset"] = "nothing"
    data["stakeholders"][1]["agreements"][0]["with"] = "ghost"
    path = tmp_path / "city.yaml"
    dump(data, path)
    with pytest.raises(InputError) as caught:
        load_model(path, catalog)
    assert len(caught.value.problems) == 3
    assert all(p.line > 0 for p in caught.value.problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("city: [unclosed\n", "invalid YAML"),
        ("- just\n- a list\n", "Input should be a valid dictionary"),
        ("", "Input should be a valid dictionary"),
        (MINIMAL.replace("  id: t\n", "  id: 't t'\n"), "not a valid id"),
    ],
)
def test_cli_exits_2_with_one_line_per_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", "assess", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert all(line.startswith(f"machimori: {path}") for line in result.stderr.strip().splitlines())


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("encrypted: true", "encrypted: 'yes'", "valid boolean"),
        ("encrypted: true", "encrypted: 1", "valid boolean"),
        ("    category: asset\n", "    category: asset\n    layer: '8'\n", "valid integer"),
    ],
)
def test_values_are_not_coerced(tmp_path: Path, catalog: Catalog, replace: str, by: str, expected: str) -> None:
    problems = _problems(tmp_path, MINIMAL.replace(replace, by, 1), catalog)
    assert any(expected in p for p in problems), problems


def test_a_number_is_not_a_date(tmp_path: Path, catalog: Catalog) -> None:
    text = MINIMAL + "statuses:\n  - requirement: CPS.AC-4\n    due: 0\n"
    assert any("YYYY-MM-DD" in p for p in _problems(tmp_path, text, catalog))


def test_status_record_rules(tmp_path: Path, catalog: Catalog) -> None:
    both = MINIMAL + "statuses:\n  - requirement: CPS.AC-4\n    component: cam\n    stakeholder: town\n"
    assert any("not both" in p for p in _problems(tmp_path, both, catalog))
    governance_only = next(r.id for r in catalog.sorted_requirements() if r.categories == ["governance"])
    misplaced = MINIMAL + f"statuses:\n  - requirement: {governance_only}\n    component: cam\n"
    assert any("does not apply to cam" in p for p in _problems(tmp_path, misplaced, catalog))


@pytest.mark.parametrize("bands", ["{low: 30, high: -4}", "{low: 1, medium: 12, high: 10}", "{low: 0}"])
def test_risk_bands_must_rise_within_range(tmp_path: Path, catalog: Catalog, bands: str) -> None:
    problems = _problems(tmp_path, MINIMAL + f"risk_matrix:\n  bands: {bands}\n", catalog)
    assert any("rise from low to critical" in p for p in problems), problems

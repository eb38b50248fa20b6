"""The catalog loader: refuses what is not CPSF, duplicates and dangling references; merges user files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from machimori import yamlfile
from machimori.diagnostics import InputError
from machimori.governance.catalog import Catalog, load_catalog
from machimori.governance.catalog.loader import build_catalog

REQUIREMENT = """\
  - id: {id}
    title: {{ja: 題, en: title}}
    summary: {{ja: 要約, en: summary}}
    categories: [asset]
    provenance: official
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        build_catalog([yamlfile.parse(text.encode(), "user.yaml")])
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("bad_id", ["CPS.SI-2", "CPS.AU-3", "CPS.AC-0", "CPS.ac-1", "NIST.AC-1", "CPS.AC1"])
def test_ids_outside_cpsf_are_rejected_with_position(bad_id: str) -> None:
    problems = _problems("requirements:\n" + REQUIREMENT.format(id=bad_id))
    assert len(problems) == 1
    assert problems[0].startswith("user.yaml:2:9:"), problems
    assert bad_id in problems[0]


def test_sp800_53_codes_are_explained() -> None:
    (problem,) = _problems("requirements:\n" + REQUIREMENT.format(id="CPS.SI-2"))
    assert "not a CPSF category" in problem and "20" in problem


def test_duplicate_in_one_file_is_rejected() -> None:
    text = "requirements:\n" + REQUIREMENT.format(id="CPS.AC-1") + REQUIREMENT.format(id="CPS.AC-1")
    problems = _problems(text)
    assert any("duplicate id 'CPS.AC-1'" in p and p.startswith("user.yaml:7:") for p in problems), problems


def test_dangling_requirement_reference_is_rejected(catalog: Catalog) -> None:
    text = """\
risks:
  - id: R-X-1
    incident: {ja: 事象, en: incident}
    threat: {ja: 脅威, en: threat}
    vulnerability: {ja: 脆弱性, en: vulnerability}
    requirements: [CPS.AC-1, CPS.AC-77]
    likelihood: 3
    impact: 3
    applies_to: {element: flow}
    source: {document: test}
"""
    path_docs = [yamlfile.parse(_built_in(name), name) for name in ("categories.yaml", "cpsf.yaml")]
    with pytest.raises(InputError) as caught:
        build_catalog([*path_docs, yamlfile.parse(text.encode(), "user.yaml")])
    (problem,) = caught.value.problems
    assert str(problem).startswith("user.yaml:6:30:") and "CPS.AC-77" in str(problem)


def test_user_file_replaces_and_adds(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "official.yaml"
    path.write_text(
        "requirements:\n"
        + REQUIREMENT.format(id="CPS.AC-4").replace("題", "公式の題")
        + REQUIREMENT.format(id="CPS.IM-9"),
        encoding="utf-8",
    )
    merged = load_catalog([path])
    assert merged.requirements["CPS.AC-4"].title.ja == "公式の題"
    assert merged.requirements["CPS.AC-4"].provenance == "official"
    assert "CPS.IM-9" in merged.requirements
    assert len(merged.requirements) == len(catalog.requirements) + 1
    assert catalog.requirements["CPS.AC-4"].title.ja != "公式の題", "the built-in catalog must not change"


def test_unknown_key_in_catalog_file() -> None:
    problems = _problems("requirements:\n" + REQUIREMENT.format(id="CPS.AC-1") + "    sumary: x\n")
    assert any("unknown key 'sumary'" in p and "did you mean 'summary'" in p for p in problems), problems


def test_exported_yaml_loads_back_identically(tmp_path: Path, catalog: Catalog) -> None:
    from machimori.governance.catalog.views import export_yaml

    path = tmp_path / "all.yaml"
    path.write_text(export_yaml(catalog), encoding="utf-8")
    again = build_catalog([yamlfile.load(path)])
    assert again.requirements == catalog.requirements
    assert again.risks == catalog.risks


def test_cli_rejects_bad_user_catalog_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("requirements:\n" + REQUIREMENT.format(id="CPS.SI-2"), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", "catalog", "list", "--catalog", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"machimori: {path}:2:9:") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["catalog", "show", "CPS.AC-4"], "CPS.AC-4"),
        (["catalog", "search", "認証"], "CPS.AC-"),
        (["catalog", "list", "--category", "asset", "--lang", "en"], "CPS.AC-3"),
        (["catalog", "list", "--section", "risks"], "R-001-1"),
    ],
)
def test_catalog_commands(args: list[str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_show_unknown_entry_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", "catalog", "show", "CPS.XX-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "no catalog entry" in result.stderr


def _built_in(name: str) -> bytes:
    from importlib import resources

    return resources.files("machimori.governance.catalog").joinpath("data", name).read_bytes()


def test_user_risk_selecting_flows_by_component_conditions_is_rejected() -> None:
    text = """\
risks:
  - id: R-X-2
    incident: {ja: 事象, en: incident}
    threat: {ja: 脅威, en: threat}
    vulnerability: {ja: 脆弱性, en: vulnerability}
    requirements: [CPS.AC-1]
    likelihood: 3
    impact: 3
    applies_to: {element: flow, where: {category: [asset], kind: [camera]}}
    source: {document: test}
"""
    problems = _problems(text)
    assert any("a flow cannot be selected by category, kind" in p and p.startswith("user.yaml:9:17:") for p in problems)

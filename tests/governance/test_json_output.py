"""The documented JSON shapes hold: the assessment output and the city model schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML

from machimori.governance.assessment import assess
from machimori.governance.catalog import Catalog
from machimori.governance.model.jsonschema import city_model_schema
from machimori.governance.model.schema import CityModel
from machimori.governance.reports.json_report import to_json

from .conftest import AS_OF, clean_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minatomachi" / "city.yaml"


def _assessment_schema() -> dict[str, object]:
    return json.loads((ROOT / "docs" / "assessment.schema.json").read_text(encoding="utf-8"))


def test_output_of_a_flawed_model_matches_the_documented_schema(catalog: Catalog) -> None:
    data = clean_model(catalog)
    data["flows"][1]["encrypted"] = False
    data["statuses"] = data["statuses"][:10]
    output = to_json(assess(CityModel.model_validate(data), catalog, as_of=AS_OF), catalog)
    jsonschema.Draft202012Validator(_assessment_schema()).validate(output)
    assert {"summary", "requirements", "risks", "findings", "raci"} <= output.keys()
    summary = output["summary"]
    assert summary["requirements_total"] == len(catalog.requirements)
    assert 0 < summary["requirements_applicable"] <= summary["requirements_total"]
    assert summary["findings_total"] == len(output["findings"]) > 0
    assert 0 <= summary["coverage"] < 1


def test_cli_json_of_the_example_town_matches_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "machimori.cli",
            "assess",
            str(EXAMPLE),
            "--format",
            "json",
            "-o",
            str(out),
            "--as-of",
            "2026-12-01",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(_assessment_schema()).validate(output)
    assert output["as_of"] == "2026-12-01"


def test_published_city_model_schema_is_current() -> None:
    published = json.loads((ROOT / "docs" / "city-model.schema.json").read_text(encoding="utf-8"))
    assert published == city_model_schema(), "run: machimori model schema -o docs/city-model.schema.json"


def test_example_town_validates_against_the_json_schema() -> None:
    data = YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8"))
    plain = json.loads(json.dumps(data, default=str))
    jsonschema.Draft202012Validator(city_model_schema()).validate(plain)

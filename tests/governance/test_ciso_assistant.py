"""The CISO Assistant export: a framework library their importer accepts, holding every CPSF requirement once."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from ruamel.yaml import YAML

from machimori import yamlfile
from machimori.governance.catalog import Catalog, load_catalog
from machimori.governance.catalog.loader import build_catalog
from machimori.governance.catalog.models import CPSF_CATEGORY_CODES
from machimori.governance.ciso_assistant import (
    FRAMEWORK_URN,
    LIBRARY_URN,
    export_framework,
    requirement_urn,
)
from machimori.governance.text import CATEGORY_CODES, Lang

SCHEMA = json.loads(
    resources.files("machimori.governance").joinpath("ciso_assistant_schema.json").read_text(encoding="utf-8")
)
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
LANGS: tuple[Lang, ...] = ("en", "ja")

SMALL_CATALOG = """\
guideline_categories:
  - {id: governance, code: G, name: {ja: ガバナンス, en: Governance}, description: {ja: 方針, en: Policies}}
  - {id: service, code: S, name: {ja: サービス, en: Service}, description: {ja: サービス, en: Services}}
  - {id: city-os, code: O, name: {ja: 都市OS, en: City OS}, description: {ja: 基盤, en: Platform}}
  - {id: asset, code: A, name: {ja: アセット, en: Asset}, description: {ja: 機器, en: Devices}}
cpsf_categories:
  - {code: AM, function: identify, name: {ja: 資産管理, en: Asset Management}, csf11: [ID.AM], csf20: [ID.AM]}
  - {code: AC, function: protect, name: {ja: 認証及びアクセス制御, en: Access Control}, csf11: [PR.AC]}
requirements:
  - id: CPS.AM-1
    title: {ja: 資産の台帳, en: Asset inventory}
    summary: {ja: "yes", en: "on"}
    categories: [governance, asset]
    csf11: [ID.AM-1]
    provenance: inferred
    source: {document: "guideline: risk table", note: "1:20"}
  - id: CPS.AC-4
    title: {ja: 認証, en: Authentication}
    summary: {ja: "認証する\\n二行目", en: "No"}
    categories: [city-os]
    provenance: reconstructed
"""
"""A catalog small enough to read, with values PyYAML (YAML 1.1) would misread if written unquoted (yes, on, No, 1:20)."""


@pytest.fixture(scope="module")
def small_catalog() -> Catalog:
    return build_catalog([yamlfile.parse(SMALL_CATALOG.encode(), "test.yaml")])


@pytest.fixture(scope="module")
def built_in() -> Catalog:
    return load_catalog()


def parse(text: str) -> dict[str, Any]:
    """The export read by YAML 1.1 rules, as CISO Assistant's PyYAML reads it, with dates as ISO strings."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    data = yaml.load(text)
    assert isinstance(data, dict)
    return _jsonable(data)  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def schema_problems(library: dict[str, Any]) -> list[str]:
    """What the JSON Schema finds wrong, one line per error."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(library)]


def frameworks(library: dict[str, Any]) -> list[dict[str, Any]]:
    objects = library["objects"]
    return [objects["framework"]] if "framework" in objects else list(objects["frameworks"])


def structure_problems(library: dict[str, Any]) -> list[str]:
    """The rules across entries that a schema cannot state: URNs, parents, depth, groups, score range."""
    problems = []
    urns = Counter(u.lower() for u in [library["urn"]] + [f["urn"] for f in frameworks(library)])
    for framework in frameworks(library):
        urns.update(node["urn"].lower() for node in framework["requirement_nodes"])
        groups = [g["ref_id"] for g in framework.get("implementation_groups_definition") or []]
        problems += [f"implementation group '{g}' defined twice" for g, n in Counter(groups).items() if n > 1]
        if not 0 <= framework.get("min_score", 0) < framework.get("max_score", 100):
            problems.append(f"{framework['urn']}: min_score must be below max_score and not negative")
        depth: dict[str, int] = {}
        every = {node["urn"].lower() for node in framework["requirement_nodes"]}
        for node in framework["requirement_nodes"]:
            urn, parent = node["urn"].lower(), (node.get("parent_urn") or "").lower()
            expected: int | None = 1
            if parent and parent in depth:
                expected = depth[parent] + 1
            elif parent:
                expected = None
                where = "comes after its child" if parent in every else "is not a node of the framework"
                problems.append(f"{urn}: parent_urn {parent} {where}")
            if expected is not None and node.get("depth") != expected:
                problems.append(f"{urn}: depth {node.get('depth')} should be {expected}")
            depth.setdefault(urn, node.get("depth", 0))
            for group in node.get("implementation_groups") or []:
                if group not in groups:
                    problems.append(f"{urn}: implementation group '{group}' is not defined")
    problems += [f"URN {urn} used {n} times" for urn, n in urns.items() if n > 1]
    return problems


def coverage_problems(library: dict[str, Any], catalog: Catalog, lang: Lang) -> list[str]:
    """Whether the library holds the catalog: every requirement once, under its category, in both languages."""
    other = "ja" if lang == "en" else "en"
    problems = []
    (framework,) = frameworks(library)
    nodes = framework["requirement_nodes"]
    seen = Counter(node["ref_id"] for node in nodes if node["assessable"])
    expected = Counter(catalog.requirements.keys())
    if seen != expected:
        problems.append(f"requirements missing {sorted(expected - seen)}, extra or repeated {sorted(seen - expected)}")
    for node in nodes:
        if not node["assessable"]:
            continue
        requirement = catalog.requirements.get(node["ref_id"])
        if requirement is None:
            continue
        if node["parent_urn"] != requirement_urn(f"CPS.{requirement.category_code}"):
            problems.append(f"{node['ref_id']} is not under its CPSF category")
        if node["implementation_groups"] != [CATEGORY_CODES[c] for c in CATEGORY_CODES if c in requirement.categories]:
            problems.append(f"{node['ref_id']}: implementation groups {node['implementation_groups']}")
        if node["name"] != requirement.title(lang) or node["description"] != requirement.summary(lang):
            problems.append(f"{node['ref_id']}: name or description is not in {lang}")
    entries = [library, framework, *nodes, *framework["implementation_groups_definition"]]
    for entry in entries:
        translated = (entry.get("translations") or {}).get(other, {})
        for key in ("name", "description", "annotation"):
            if entry.get(key) and not translated.get(key):
                problems.append(f"{entry.get('urn') or entry.get('ref_id')}: no {other} translation of {key}")
    if library["locale"] != lang:
        problems.append(f"locale {library['locale']} should be {lang}")
    return problems


@pytest.mark.parametrize("lang", LANGS)
def test_built_in_catalog_exports_a_valid_library(built_in: Catalog, lang: Lang) -> None:
    library = parse(export_framework(built_in, lang=lang))
    assert schema_problems(library) == []
    assert structure_problems(library) == []
    assert coverage_problems(library, built_in, lang) == []
    (framework,) = frameworks(library)
    assert library["urn"] == LIBRARY_URN and framework["urn"] == FRAMEWORK_URN
    assert library["provider"] == "MIC / METI (CPSF)" and library["packager"] == "machimori"
    assert [g["ref_id"] for g in framework["implementation_groups_definition"]] == ["G", "S", "O", "A"]
    categories = [n["ref_id"] for n in framework["requirement_nodes"] if not n["assessable"]]
    assert categories == [f"CPS.{c}" for c in CPSF_CATEGORY_CODES if c in built_in.cpsf_categories]


@pytest.mark.parametrize("lang", LANGS)
def test_small_catalog_exports_a_valid_library(small_catalog: Catalog, lang: Lang) -> None:
    library = parse(export_framework(small_catalog, lang=lang))
    assert schema_problems(library) == []
    assert structure_problems(library) == []
    assert coverage_problems(library, small_catalog, lang) == []
    nodes = {n["ref_id"]: n for n in frameworks(library)[0]["requirement_nodes"]}
    assert nodes["CPS.AM-1"]["implementation_groups"] == ["G", "A"]
    assert nodes["CPS.AM"]["depth"] == 1 and nodes["CPS.AM-1"]["depth"] == 2
    english = nodes["CPS.AM-1"] if lang == "en" else nodes["CPS.AM-1"]["translations"]["en"]
    assert "Governance (G), Asset (A)" in english["annotation"] and "Provenance: inferred" in english["annotation"]


def test_pyyaml_reads_what_we_meant(small_catalog: Catalog, built_in: Catalog) -> None:
    """CISO Assistant loads libraries with PyYAML's safe_load (YAML 1.1): it must see the same values."""
    pyyaml = pytest.importorskip("yaml")
    for catalog in (small_catalog, built_in):
        for lang in LANGS:
            text = export_framework(catalog, lang=lang, publication_date=dt.date(2026, 4, 1))
            seen = pyyaml.safe_load(text)
            assert seen["publication_date"] == dt.date(2026, 4, 1)
            assert _jsonable(seen) == parse(text)
    seen = pyyaml.safe_load(export_framework(small_catalog, lang="en"))
    nodes = {n["ref_id"]: n for n in seen["objects"]["framework"]["requirement_nodes"]}
    assert nodes["CPS.AM-1"]["description"] == "on" and nodes["CPS.AC-4"]["description"] == "No"


def test_japanese_stays_readable(small_catalog: Catalog) -> None:
    text = export_framework(small_catalog, lang="ja")
    assert "資産の台帳" in text and "\\u" not in text
    assert text.startswith("%YAML 1.1\n---\n")
    assert parse(text)["translations"]["en"]["name"].startswith("MIC Smart City Security Guideline")


def test_version_and_date_are_the_callers(small_catalog: Catalog) -> None:
    library = parse(export_framework(small_catalog, version=3, publication_date=dt.date(2026, 1, 2)))
    assert library["version"] == 3 and library["publication_date"] == "2026-01-02"


def test_checker_catches_a_broken_export(small_catalog: Catalog) -> None:
    good = parse(export_framework(small_catalog, lang="en"))
    broken = copy.deepcopy(good)
    nodes = broken["objects"]["framework"]["requirement_nodes"]
    nodes[1]["parent_urn"] = requirement_urn("CPS.ZZ")
    nodes[3]["urn"] = nodes[0]["urn"]
    nodes[2]["depth"] = 2
    nodes.append({**nodes[1], "urn": requirement_urn("cps.am-9"), "implementation_groups": ["X"]})
    problems = structure_problems(broken)
    assert any("cps.zz is not a node" in p for p in problems), problems
    assert any(f"URN {nodes[0]['urn']} used 2 times" in p for p in problems), problems
    assert any("depth 2 should be 1" in p for p in problems), problems
    assert any("'X' is not defined" in p for p in problems), problems
    assert coverage_problems(broken, small_catalog, "en") != []

    for mutate, expected in [
        (
            lambda lib: lib["objects"]["framework"]["requirement_nodes"][0].pop("assessable"),
            "'assessable' is a required",
        ),
        (lambda lib: lib.__setitem__("urn", "urn:machimori:risk:library:MIC smart"), "does not match"),
        (lambda lib: lib["objects"]["framework"]["requirement_nodes"][1].__setitem__("csf", "ID.AM-1"), "Additional"),
        (lambda lib: lib.__setitem__("publication_date", "2026-13-40"), "is not a 'date'"),
        (lambda lib: lib["objects"].__setitem__("frameworks", []), "not valid under any of the given schemas"),
        (lambda lib: lib.__setitem__("name", "x" * 201), "is too long"),
    ]:
        bad = copy.deepcopy(good)
        mutate(bad)
        found = schema_problems(bad)
        assert any(expected in p for p in found), (expected, found)


def test_cli_writes_the_library(tmp_path: Path, built_in: Catalog) -> None:
    from typer.testing import CliRunner

    from machimori.cli import app

    out = tmp_path / "mic-smartcity.yaml"
    result = CliRunner().invoke(
        app, ["catalog", "export", "--format", "ciso-assistant", "--lang", "en", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    library = parse(out.read_text(encoding="utf-8"))
    assert schema_problems(library) == [] and coverage_problems(library, built_in, "en") == []

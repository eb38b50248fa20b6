"""The example town carries one deliberate gap of every finding kind and is otherwise in order; the
benchmark's model generator writes models that load and assess."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from machimori import yamlfile
from machimori.governance.assessment import FINDING_KINDS, assess
from machimori.governance.assessment.result import Assessment
from machimori.governance.catalog import Catalog
from machimori.governance.model import load_model
from machimori.governance.model.schema import CityModel

from .conftest import AS_OF

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minatomachi" / "city.yaml"
GENERATOR = ROOT / "bench" / "generate_model.py"

EXPECTED: dict[str, list[set[str]]] = {
    "unencrypted-flow": [{"camera-to-dashboard", "river-camera", "flood-dashboard", "river-images"}],
    "unauthenticated-flow": [{"pilot-gateway-to-lns", "lorawan-gateway-pilot", "lorawan-server"}],
    "personal-data-in-open-dataset": [{"footfall"}],
    "subcontractor-without-agreement": [{"nagisa-support", "harbor-systems"}],
    "component-without-owner": [{"lorawan-gateway-pilot"}],
    "unowned-requirement": [{"CPS.CO-3", "minato-city", "security-council"}],
    "conflicting-accountability": [{"CPS.MA-1", "water-level-sensor", "minami-keisoku", "minato-bousai"}],
    "no-incident-contact": [{"soyokaze-kankyo"}],
    "overdue-requirement": [
        {"CPS.DS-3", "river-camera"},
        {"CPS.AM-1", "lorawan-gateway-pilot"},
        {"CPS.DS-13", "minato-kanko"},
        {"CPS.IP-8"},
    ],
    "personal-data-without-consent-basis": [{"footfall-analysis", "footfall"}],
}
"""Each finding kind → the elements of each finding the example is built to produce."""


@pytest.fixture(scope="module")
def town(catalog: Catalog) -> tuple[CityModel, Assessment]:
    model = load_model(EXAMPLE, catalog)
    return model, assess(model, catalog, as_of=AS_OF)


def test_every_finding_kind_has_a_deliberate_gap_in_the_example() -> None:
    assert set(EXPECTED) == set(FINDING_KINDS), "add a deliberate gap to the example for each new finding kind"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_example_town_shows_the_deliberate_gap(town: tuple[CityModel, Assessment], kind: str) -> None:
    _, result = town
    found = [{e.id for e in f.elements} for f in result.findings if f.kind == kind]
    assert found, f"no {kind} finding in the example town"
    for elements in EXPECTED[kind]:
        assert any(elements <= ids for ids in found), f"{kind}: expected a finding on {sorted(elements)}, got {found}"


def test_example_town_is_otherwise_in_order(town: tuple[CityModel, Assessment]) -> None:
    _, result = town
    counts = Counter(f.kind for f in result.findings)
    assert counts == {kind: len(gaps) for kind, gaps in EXPECTED.items()}
    assert 0.75 < result.coverage < 0.95


def test_example_town_has_the_documented_size(town: tuple[CityModel, Assessment]) -> None:
    model, result = town
    assert len(model.components) >= 30
    assert len(model.flows) >= 40
    assert len(model.services) >= 3
    assert {c.category for c in model.components} == {"governance", "service", "city-os", "asset"}
    assert {d.data_type for d in model.datasets} == {"open", "limited", "closed"}
    kinds = Counter(s.kind for s in model.stakeholders)
    assert kinds["promoter"] == 1 and kinds["city-os-operator"] == 1 and kinds["service-provider"] >= 3
    assert {"device-vendor", "network-operator", "subcontractor", "municipality"} <= kinds.keys()
    tiers = {s.id: s.parent for s in model.stakeholders}
    assert tiers["nagisa-support"] == "harbor-systems" and tiers["harbor-systems"] == "aoba-care"
    statuses = Counter(r.status for r in model.statuses)
    assert set(statuses) == {"implemented", "partial", "planned", "not-implemented", "not-applicable", "unknown"}
    assert result.requirements_total == sum(1 for r in result.requirements if r.applicable)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_model", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_model", module)
    spec.loader.exec_module(module)
    return module


def test_generated_model_loads_and_assesses(catalog: Catalog, tmp_path: Path) -> None:
    generator = _generator()
    path = generator.write_model(tmp_path / "city.yaml", 200, 2000, seed=1)
    text = path.read_text(encoding="utf-8")
    assert text == generator.generate(200, 2000, seed=1), "same seed, same model"
    assert len(path.read_bytes()) >= yamlfile.FAST_PATH_MIN_BYTES
    assert not yamlfile.needs_full_yaml(text), "generated YAML must stay on the fast path"
    model = load_model(path, catalog)
    assert len(model.components) == 200
    assert len(model.flows) == 2000
    assert len(model.stakeholders) >= 16
    assert len(model.services) >= 3
    assert len(model.statuses) > len(catalog.requirements)
    assert any(s.kind == "subcontractor" and s.parent and s.parent.startswith("sub-") for s in model.stakeholders)
    result = assess(model, catalog, as_of=AS_OF)
    assert result.findings and result.targets
    assert {"unencrypted-flow", "unauthenticated-flow", "unowned-requirement"} <= {f.kind for f in result.findings}


def test_generator_scales_linearly() -> None:
    generator = _generator()
    small, large = generator.Sizes(1000, 10_000), generator.Sizes(10_000, 100_000)
    for name in ("stakeholders", "datasets", "services", "component_records"):
        assert getattr(large, name) == pytest.approx(10 * getattr(small, name), rel=0.02), name
    ratio = len(generator.generate(1000, 10_000)) / len(generator.generate(100, 1000))
    assert 8 < ratio < 12

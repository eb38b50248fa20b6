"""The built-in catalog's content: the facts a reviewer relies on, pinned down.

The expected values below come from the project's fact sheet for the catalog (CPSF v1.0 and the MIC
Smart City Security Guideline): verified and inferred requirement IDs, the applicable categories of
CPS.AC-1..6 in seed 001's measure table, and the four rows of seed 001's risk table.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from machimori.governance.catalog import Catalog
from machimori.governance.catalog.models import CPSF_CATEGORY_CODES, WHERE_KEYS
from machimori.governance.text import Text

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
"""Hiragana, katakana or a CJK ideograph."""

VERIFIED = {
    "CPS.AM-1", "CPS.GV-1", "CPS.RA-1", "CPS.RM-1", "CPS.SC-1",
    "CPS.AC-1", "CPS.AC-2", "CPS.AC-3", "CPS.AC-4", "CPS.AC-5", "CPS.AC-6",
    "CPS.AT-1", "CPS.DS-1", "CPS.IP-1", "CPS.IP-9", "CPS.MA-1",
    "CPS.AE-1", "CPS.CM-1", "CPS.DP-1", "CPS.RP-1",
}  # fmt: skip

INFERRED = {
    "CPS.SC-7", "CPS.SC-8", "CPS.AT-2", "CPS.AT-3", "CPS.IP-2", "CPS.IP-10",
    "CPS.MA-2", "CPS.RA-2", "CPS.CM-6", "CPS.CM-7", "CPS.DS-3",
}  # fmt: skip

AC_CATEGORIES = {
    "CPS.AC-1": {"governance", "service", "city-os", "asset"},
    "CPS.AC-2": {"governance", "service", "city-os", "asset"},
    "CPS.AC-3": {"service", "city-os", "asset"},
    "CPS.AC-4": {"service", "city-os", "asset"},
    "CPS.AC-5": {"governance", "service", "city-os"},
    "CPS.AC-6": {"city-os"},
}

HIGHEST = {
    "AM": 7, "BE": 3, "GV": 4, "RA": 6, "RM": 3, "SC": 11, "AC": 9, "AT": 3, "DS": 15, "IP": 10,
    "MA": 2, "PT": 2, "AE": 3, "CM": 7, "DP": 4, "RP": 4, "CO": 3, "AN": 3, "MI": 1, "IM": 2,
}  # fmt: skip
"""The reconstructed ranges: CPS.<code>-1 .. CPS.<code>-<n>."""

SEED_001_ROWS = {
    "R-001-1": ["CPS.SC-7", "CPS.SC-8"],
    "R-001-2": ["CPS.AT-2", "CPS.AT-3"],
    "R-001-3": ["CPS.IP-2", "CPS.IP-10", "CPS.MA-1", "CPS.MA-2", "CPS.RA-2", "CPS.CM-6", "CPS.CM-7"],
    "R-001-4": ["CPS.DS-3"],
}

SEED = re.compile(r"\bseed 00[0-4]\b", re.IGNORECASE)

COMPONENT_KINDS = {
    "sensor", "camera", "gateway", "actuator", "network", "broker", "api-gateway", "platform",
    "database", "application", "portal", "id-provider", "soc",
}  # fmt: skip
STAKEHOLDER_KINDS = {
    "promoter", "municipality", "city-os-operator", "service-provider", "device-vendor", "network-operator",
    "subcontractor",
}  # fmt: skip


def _assert_bilingual(text: Text, where: str) -> None:
    assert text.ja.strip() and text.en.strip(), f"{where}: empty text"
    assert JAPANESE.search(text.ja), f"{where}: ja text has no Japanese: {text.ja!r}"
    assert not JAPANESE.search(text.en), f"{where}: en text contains Japanese: {text.en!r}"


# --- CPSF categories and requirement IDs ---------------------------------------------------------


def test_all_twenty_cpsf_categories_are_present(catalog: Catalog) -> None:
    assert set(catalog.cpsf_categories) == set(CPSF_CATEGORY_CODES)
    assert len(CPSF_CATEGORY_CODES) == 20
    for code, category in catalog.cpsf_categories.items():
        _assert_bilingual(category.name, code)
        assert category.csf11 and category.csf20, code


def test_every_category_has_requirements(catalog: Catalog) -> None:
    codes = {r.category_code for r in catalog.requirements.values()}
    assert codes == set(CPSF_CATEGORY_CODES)


def test_requirement_ids_are_exactly_the_reconstructed_ranges(catalog: Catalog) -> None:
    expected = {f"CPS.{code}-{n}" for code, top in HIGHEST.items() for n in range(1, top + 1)}
    assert set(catalog.requirements) == expected
    assert len(expected) == 102


def test_no_requirement_id_outside_the_twenty_categories(catalog: Catalog) -> None:
    referenced = set(catalog.requirements)
    for section in (catalog.risks, catalog.concerns, catalog.data_types):
        for entry in section.values():
            referenced.update(entry.requirements)
    for requirement_id in referenced:
        match = re.fullmatch(r"CPS\.([A-Z]{2})-([1-9][0-9]*)", requirement_id)
        assert match, requirement_id
        assert match.group(1) in CPSF_CATEGORY_CODES, requirement_id
    assert referenced <= set(catalog.requirements)


# --- provenance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("requirement_id", sorted(VERIFIED))
def test_verified_requirements_are_marked_verified(catalog: Catalog, requirement_id: str) -> None:
    requirement = catalog.requirements[requirement_id]
    assert requirement.provenance == "verified"
    assert requirement.source is not None and "CPSF" in requirement.source.document


@pytest.mark.parametrize("requirement_id", sorted(INFERRED))
def test_inferred_requirements_are_marked_inferred(catalog: Catalog, requirement_id: str) -> None:
    requirement = catalog.requirements[requirement_id]
    assert requirement.provenance == "inferred"
    assert requirement.source is not None and SEED.search(requirement.source.document)


def test_everything_else_is_marked_reconstructed_and_says_so(catalog: Catalog) -> None:
    for requirement_id, requirement in catalog.requirements.items():
        if requirement_id in VERIFIED | INFERRED:
            continue
        assert requirement.provenance == "reconstructed", requirement_id
        assert requirement.source is not None, requirement_id
        assert "NIST CSF v1.1" in requirement.source.document, requirement_id
        assert requirement.source.note and "official" in requirement.source.note, requirement_id


def test_header_states_the_count_and_the_official_104(catalog: Catalog) -> None:
    text = resources.files("machimori.governance.catalog").joinpath("data", "cpsf.yaml").read_text("utf-8")
    header = "\n".join(line for line in text.splitlines()[:20] if line.startswith("#"))
    stated = re.search(r"holds (\d+) countermeasure requirements", header)
    assert stated and int(stated.group(1)) == len(catalog.requirements)
    assert "104" in header and "--catalog" in header


# --- guideline categories -------------------------------------------------------------------------


@pytest.mark.parametrize("requirement_id", sorted(AC_CATEGORIES))
def test_ac_applicable_categories_match_the_measure_table(catalog: Catalog, requirement_id: str) -> None:
    categories = catalog.requirements[requirement_id].categories
    assert set(categories) == AC_CATEGORIES[requirement_id]
    assert len(categories) == len(set(categories))


def test_layers_map_to_categories(catalog: Catalog) -> None:
    expected = {1: "governance", 2: "governance", 3: "governance", 4: "service",
                5: "city-os", 6: "city-os", 7: "city-os", 8: "asset", 9: None}  # fmt: skip
    assert {n: layer.category for n, layer in catalog.layers.items()} == expected
    assert catalog.layers[8].provenance == "verified"
    assert all(catalog.layers[n].provenance == "inferred" for n in range(1, 8))
    for category in catalog.guideline_categories.values():
        assert sorted(category.layers) == sorted(n for n, c in expected.items() if c == category.id)


def test_four_guideline_categories_and_four_data_types(catalog: Catalog) -> None:
    codes = {g.id: g.code for g in catalog.guideline_categories.values()}
    assert codes == {"governance": "G", "service": "S", "city-os": "O", "asset": "A"}
    assert set(catalog.data_types) == {"open", "limited", "closed", "personal"}
    for data_type in catalog.data_types.values():
        assert data_type.measures and data_type.requirements, data_type.id


# --- texts ----------------------------------------------------------------------------------------


def test_every_requirement_has_japanese_and_english_texts(catalog: Catalog) -> None:
    for requirement_id, requirement in catalog.requirements.items():
        _assert_bilingual(requirement.title, f"{requirement_id}.title")
        _assert_bilingual(requirement.summary, f"{requirement_id}.summary")


def test_every_other_entry_has_japanese_and_english_texts(catalog: Catalog) -> None:
    for risk in catalog.risks.values():
        for name in ("incident", "threat", "vulnerability"):
            _assert_bilingual(getattr(risk, name), f"{risk.id}.{name}")
    for concern in catalog.concerns.values():
        _assert_bilingual(concern.name, f"{concern.id}.name")
        _assert_bilingual(concern.description, f"{concern.id}.description")
        for i, measure in enumerate(concern.measures):
            _assert_bilingual(measure, f"{concern.id}.measures[{i}]")
    for entry in (*catalog.guideline_categories.values(), *catalog.data_types.values()):
        _assert_bilingual(entry.name, f"{entry.id}.name")
        _assert_bilingual(entry.description, f"{entry.id}.description")
    for number, layer in catalog.layers.items():
        _assert_bilingual(layer.name, f"layer {number}")


def test_csf_references_are_well_formed(catalog: Catalog) -> None:
    for requirement_id, requirement in catalog.requirements.items():
        for sub in requirement.csf11:
            assert re.fullmatch(r"(ID|PR|DE|RS|RC)\.[A-Z]{2}-\d{1,2}", sub), (requirement_id, sub)
        for sub in requirement.csf20:
            assert re.fullmatch(r"(GV|ID|PR|DE|RS|RC)\.[A-Z]{2}-\d{2}", sub), (requirement_id, sub)


# --- risks and concerns ---------------------------------------------------------------------------


def test_seed_001_risk_rows_map_to_exactly_the_table_ids(catalog: Catalog) -> None:
    rows = {k: r for k, r in catalog.risks.items() if k.startswith("R-001-")}
    assert set(rows) == set(SEED_001_ROWS)
    for risk_id, expected in SEED_001_ROWS.items():
        assert sorted(rows[risk_id].requirements) == sorted(expected), risk_id
        assert "seed 001" in rows[risk_id].source.document
    # one assumed incident and one threat shared by the four rows
    assert len({r.incident for r in rows.values()}) == 1
    assert len({r.threat for r in rows.values()}) == 1


def test_every_risk_cites_a_seed(catalog: Catalog) -> None:
    for risk in catalog.risks.values():
        assert SEED.search(risk.source.document), f"{risk.id} cites no seed: {risk.source.document}"


def test_there_are_at_least_twelve_risks_beyond_seed_001(catalog: Catalog) -> None:
    assert len([k for k in catalog.risks if not k.startswith("R-001-")]) >= 12


def test_risk_selectors_use_the_model_vocabulary(catalog: Catalog) -> None:
    for risk in catalog.risks.values():
        element = risk.applies_to.element
        given = {k for k, v in risk.applies_to.where.model_dump().items() if v is not None}
        assert given <= WHERE_KEYS[element], (risk.id, given - WHERE_KEYS[element])
        kinds = set(risk.applies_to.where.kind or ())
        allowed = COMPONENT_KINDS if element == "component" else STAKEHOLDER_KINDS
        assert kinds <= allowed, (risk.id, kinds - allowed)


def test_smart_city_concerns_are_present(catalog: Catalog) -> None:
    assert {"coordination", "trust", "supply-chain", "incident-response", "data-linkage"} <= set(catalog.concerns)
    for concern in catalog.concerns.values():
        assert concern.measures and concern.requirements and concern.source.document, concern.id

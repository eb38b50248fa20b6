"""Every finding kind: found on a model with the flaw, absent from the same model without it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from machimori.governance.assessment import FINDING_KINDS, assess
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import CityModel

from .conftest import AS_OF, clean_model

Mutation = Callable[[dict[str, Any]], None]


def _kinds(catalog: Catalog, data: dict[str, Any]) -> dict[str, list[list[str]]]:
    result = assess(CityModel.model_validate(data), catalog, as_of=AS_OF)
    found: dict[str, list[list[str]]] = {}
    for finding in result.findings:
        found.setdefault(finding.kind, []).append([e.id for e in finding.elements])
    return found


def _component(data: dict[str, Any], component_id: str) -> dict[str, Any]:
    return next(c for c in data["components"] if c["id"] == component_id)


def _stakeholder(data: dict[str, Any], stakeholder_id: str) -> dict[str, Any]:
    return next(s for s in data["stakeholders"] if s["id"] == stakeholder_id)


def _flow(data: dict[str, Any], flow_id: str) -> dict[str, Any]:
    return next(f for f in data["flows"] if f["id"] == flow_id)


def _unencrypted(data: dict[str, Any]) -> None:
    _flow(data, "f2")["encrypted"] = False


def _unauthenticated(data: dict[str, Any]) -> None:
    _flow(data, "f1")["authenticated"] = False


def _personal_open(data: dict[str, Any]) -> None:
    data["datasets"].append({"id": "visitors", "data_type": "open", "personal": True})


def _second_tier_without_agreement(data: dict[str, Any]) -> None:
    _stakeholder(data, "sub2")["agreements"] = [{"kind": "nda", "with": "sub1"}]


def _no_owner(data: dict[str, Any]) -> None:
    del _component(data, "sensor")["owner"]


def _unowned(data: dict[str, Any]) -> None:
    data["statuses"] = [s for s in data["statuses"] if s["requirement"] != "CPS.AC-4"]


def _two_accountable(data: dict[str, Any]) -> None:
    data["statuses"].append(
        {"requirement": "CPS.AC-4", "component": "broker", "status": "partial", "accountable": ["town", "osop"]}
    )


def _no_contact(data: dict[str, Any]) -> None:
    del _stakeholder(data, "osop")["incident_contact"]


def _overdue(data: dict[str, Any]) -> None:
    data["statuses"].append(
        {
            "requirement": "CPS.MA-1",
            "component": "sensor",
            "status": "planned",
            "responsible": ["osop"],
            "due": "2026-06-30",
        }
    )


def _no_consent_basis(data: dict[str, Any]) -> None:
    data["services"][0]["consent_basis"] = "none"


FLAWS: dict[str, tuple[Mutation, str]] = {
    "unencrypted-flow": (_unencrypted, "f2"),
    "unauthenticated-flow": (_unauthenticated, "f1"),
    "personal-data-in-open-dataset": (_personal_open, "visitors"),
    "subcontractor-without-agreement": (_second_tier_without_agreement, "sub2"),
    "component-without-owner": (_no_owner, "sensor"),
    "unowned-requirement": (_unowned, "CPS.AC-4"),
    "conflicting-accountability": (_two_accountable, "broker"),
    "no-incident-contact": (_no_contact, "osop"),
    "overdue-requirement": (_overdue, "CPS.MA-1"),
    "personal-data-without-consent-basis": (_no_consent_basis, "watch"),
}


def test_every_kind_has_a_flaw_test() -> None:
    assert set(FLAWS) == set(FINDING_KINDS)


def test_clean_model_has_no_findings(catalog: Catalog) -> None:
    assert _kinds(catalog, clean_model(catalog)) == {}


@pytest.mark.parametrize("kind", sorted(FLAWS))
def test_flaw_is_found_on_the_right_element(catalog: Catalog, kind: str) -> None:
    mutate, element = FLAWS[kind]
    data = clean_model(catalog)
    mutate(data)
    found = _kinds(catalog, data)
    assert kind in found, f"{kind} not found; found {sorted(found)}"
    assert any(element in ids for ids in found[kind])


def test_unencrypted_open_data_is_not_a_finding(catalog: Catalog) -> None:
    data = clean_model(catalog)
    _flow(data, "f1")["encrypted"] = False
    assert "unencrypted-flow" not in _kinds(catalog, data)


def test_expired_agreement_breaks_the_chain(catalog: Catalog) -> None:
    data = clean_model(catalog)
    _stakeholder(data, "sub1")["agreements"] = [{"kind": "data-handling", "with": "care", "expires": "2026-01-31"}]
    found = _kinds(catalog, data)["subcontractor-without-agreement"]
    assert any("sub1" in ids and "care" in ids for ids in found)


def test_subcontractor_without_parent_is_found(catalog: Catalog) -> None:
    data = clean_model(catalog)
    del _stakeholder(data, "sub1")["parent"]
    assert "subcontractor-without-agreement" in _kinds(catalog, data)


def test_subcontractor_of_open_data_only_needs_no_agreement(catalog: Catalog) -> None:
    data = clean_model(catalog)
    _stakeholder(data, "sub2")["agreements"] = []
    data["flows"] = [f for f in data["flows"] if f["id"] != "f3"]
    data["datasets"].append({"id": "timetable", "data_type": "open"})
    data["flows"].append(
        {"id": "f4", "from": "app", "to": "db", "dataset": "timetable", "encrypted": True, "authenticated": True}
    )
    assert "subcontractor-without-agreement" not in _kinds(catalog, data)


def test_prime_contractor_needs_agreement_with_promoter(catalog: Catalog) -> None:
    data = clean_model(catalog)
    _stakeholder(data, "care")["agreements"] = []
    found = _kinds(catalog, data)["subcontractor-without-agreement"]
    assert any("care" in ids and "town" in ids for ids in found)


def test_more_specific_status_record_wins(catalog: Catalog) -> None:
    data = clean_model(catalog)
    data["statuses"].append(
        {"requirement": "CPS.AC-4", "component": "broker", "status": "not-implemented", "responsible": ["osop"]}
    )
    result = assess(CityModel.model_validate(data), catalog, as_of=AS_OF)
    gaps = [(g.target.requirement, g.target.scope_id) for g in result.gaps]
    assert gaps == [("CPS.AC-4", "broker")]
    assert result.raci["CPS.AC-4"]["osop"] == "R"


def test_limited_data_alone_needs_no_agreement(catalog: Catalog) -> None:
    data = clean_model(catalog)
    data["datasets"][1].update(data_type="limited", personal=False)
    _stakeholder(data, "sub2")["agreements"] = [{"kind": "nda", "with": "sub1"}]
    assert "subcontractor-without-agreement" not in _kinds(catalog, data)


def _ids(catalog: Catalog, data: dict[str, Any]) -> list[str]:
    return [f.id for f in assess(CityModel.model_validate(data), catalog, as_of=AS_OF).findings]


def test_finding_ids_are_stable_and_unique(catalog: Catalog) -> None:
    data = clean_model(catalog)
    _unowned(data)
    _overdue(data)
    data["statuses"].append(dict(data["statuses"][-1], due="2026-05-31"))
    before = _ids(catalog, data)
    assert len(before) == len(set(before))
    assert "unowned-requirement:CPS.AC-4" in before
    data["statuses"].append(
        {"requirement": "CPS.AC-4", "component": "sensor", "status": "partial", "responsible": ["osop"]}
    )
    assert "unowned-requirement:CPS.AC-4" in _ids(catalog, data), "one row owned: the same problem, the same id"


def test_a_named_risk_never_ranks_a_gap_below_the_default(catalog: Catalog) -> None:
    data = clean_model(catalog)
    data["statuses"] = []
    result = assess(CityModel.model_validate(data), catalog, as_of=AS_OF)
    assert all(g.score >= 4 for g in result.gaps)
    assert [g.score for g in result.gaps] == sorted((g.score for g in result.gaps), reverse=True)

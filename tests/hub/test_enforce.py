"""Filtering an entity for a subject: the whole entity by its dataset, each personal attribute by the
resident's consent — including a withdrawn consent one request later, and an id that lies about its type."""

from __future__ import annotations

import pytest

from machimori.consent.purposes import DPV
from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.governance.workflow import example_town
from machimori.hub.catalogue import Catalogue
from machimori.hub.enforce import filter_entity
from machimori.hub.entities import Entity, parse_entity
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.platform import Platform
from machimori.policy import Context, Subject

CONTEXTS = Contexts(DocumentLoader())
CORE = CONTEXTS.active(None)
WATCH = "https://minatomachi.example/ngsi-ld/WatchedPosition"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
PURPOSE = DPV + "ServiceProvision"
NOW = "2026-11-30T00:00:00Z"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.from_datasets(load_model(example_town(), load_catalog(())).datasets, CONTEXTS)


def watched(resident: str, entity_id: str = "urn:ngsi-ld:WatchedPosition:1") -> Entity:
    payload = {
        "id": entity_id,
        "type": WATCH,
        "location": {"type": "Point", "coordinates": [139.6, 35.4]},
        "https://minatomachi.example/ngsi-ld/refResident": {"object": f"urn:ngsi-ld:Resident:{resident}"},
        "deviceName": "見守りタグ 7",
    }
    return parse_entity(payload, CORE, now=NOW)


CARE_STAFF = Subject("care-app", "service", "aoba-care", frozenset({("aoba-care", "reader")}))
SERVICE = Subject("care-app", "service", "aoba-care")


def test_owner_staff_see_the_entity_but_personal_attributes_only_with_consent(
    platform: Platform, catalogue: Catalogue
) -> None:
    entity = watched("hanako")
    classification = catalogue.classify(entity.types)
    staff = Subject("clerk", "staff", "aoba-care", frozenset({("aoba-care", "reader")}))
    seen = filter_entity(platform.decisions, staff, Context(PURPOSE), "", entity, classification)
    assert seen.entity is not None and LOCATION not in seen.entity.attributes  # staff are not a consented service
    assert any(name.endswith("deviceName") for name in seen.entity.attributes)


def test_a_consented_service_sees_the_location_until_the_resident_withdraws(
    platform: Platform, catalogue: Catalogue
) -> None:
    entity = watched("hanako")
    classification = catalogue.classify(entity.types)
    platform.consent.give("hanako", "care-app", PURPOSE)
    seen = filter_entity(platform.decisions, CARE_STAFF, Context(PURPOSE), "", entity, classification)
    assert (
        seen.entity is not None
        and LOCATION in seen.entity.attributes
        and all(decision.permit for _, decision in seen.personal)
        and seen.personal
    )
    platform.consent.withdraw("hanako", "care-app", PURPOSE)
    seen = filter_entity(platform.decisions, CARE_STAFF, Context(PURPOSE), "", entity, classification)
    assert seen.entity is not None and LOCATION not in seen.entity.attributes
    assert any(d.rule == "consent-withdrawn" for d in seen.decisions)


def test_another_organisation_sees_nothing_of_closed_data(platform: Platform, catalogue: Catalogue) -> None:
    entity = watched("hanako")
    bus = Subject("bus-app", "service", "minato-kotsu", frozenset({("minato-kotsu", "reader")}))
    seen = filter_entity(platform.decisions, bus, Context(PURPOSE), "", entity, catalogue.classify(entity.types))
    assert seen.entity is None and seen.decisions[0].rule == "closed"


def test_an_id_that_claims_an_open_type_changes_nothing(platform: Platform, catalogue: Catalogue) -> None:
    entity = watched("hanako", entity_id="urn:ngsi-ld:WaterObserved:open-1")
    anyone = Subject("someone", "service", "elsewhere")
    seen = filter_entity(platform.decisions, anyone, Context(), "", entity, catalogue.classify(entity.types))
    assert seen.entity is None


def test_personal_attributes_of_nobody_known_are_never_released(platform: Platform, catalogue: Catalogue) -> None:
    entity = parse_entity(
        {"id": "urn:ngsi-ld:WatchedPosition:2", "type": WATCH, "location": {"type": "Point", "coordinates": [1, 2]}},
        CORE,
        now=NOW,
    )
    seen = filter_entity(platform.decisions, CARE_STAFF, Context(PURPOSE), "", entity, catalogue.classify(entity.types))
    assert seen.entity is not None and LOCATION not in seen.entity.attributes
    assert any(d.rule == "resident-unknown" for d in seen.decisions)

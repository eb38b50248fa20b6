"""Entities on the way in (every malformed part refused with BadRequestData) and on the way out."""

from __future__ import annotations

from typing import Any

import pytest

from machimori.hub.entities import parse_entity, render_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import DEFAULT_VOCAB, ActiveContext, Contexts, DocumentLoader

NOW = "2026-11-30T00:00:00Z"
CONTEXT = {"Vehicle": "https://example.org/Vehicle", "ex": "https://example.org/"}


@pytest.fixture(scope="module")
def context() -> ActiveContext:
    return Contexts(DocumentLoader()).active(CONTEXT)


def vehicle(**attributes: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Vehicle:A1", "type": "Vehicle", **attributes}


def test_a_normalized_entity_is_kept_with_expanded_names(context: ActiveContext) -> None:
    entity = parse_entity(
        vehicle(
            speed={"type": "Property", "value": 42, "unitCode": "KMH", "observedAt": "2026-11-30T09:00:00Z"},
            isParked={"type": "Relationship", "object": "urn:ngsi-ld:Parking:P1"},
            location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [139.6, 35.4]}},
            name={"type": "LanguageProperty", "languageMap": {"ja": "港町バス", "en": "Minato bus"}},
        ),
        context,
        now=NOW,
    )
    assert entity.types == ["https://example.org/Vehicle"]
    assert set(entity.attributes) == {
        DEFAULT_VOCAB + "speed",
        DEFAULT_VOCAB + "isParked",
        "https://uri.etsi.org/ngsi-ld/location",
        DEFAULT_VOCAB + "name",
    }
    speed = entity.attributes[DEFAULT_VOCAB + "speed"][0]
    assert (speed["value"], speed["unitCode"], speed["createdAt"]) == (42, "KMH", NOW)


def test_concise_values_become_properties_and_sub_attributes_are_expanded(context: ActiveContext) -> None:
    entity = parse_entity(
        vehicle(
            speed={"value": 42, "ex:accuracy": {"value": 0.5}},
            brand="港町",
            location={"type": "Point", "coordinates": [139.6, 35.4]},
        ),
        context,
        now=NOW,
    )
    speed = entity.attributes[DEFAULT_VOCAB + "speed"][0]
    assert speed["type"] == "Property" and speed["https://example.org/accuracy"][0]["value"] == 0.5
    assert entity.attributes[DEFAULT_VOCAB + "brand"][0] == {
        "type": "Property",
        "value": "港町",
        "createdAt": NOW,
        "modifiedAt": NOW,
    }
    assert entity.attributes["https://uri.etsi.org/ngsi-ld/location"][0]["type"] == "GeoProperty"


def test_rendering_compacts_with_the_clients_context_in_both_forms(context: ActiveContext) -> None:
    entity = parse_entity(
        vehicle(
            speed={"type": "Property", "value": 42, "ex:accuracy": {"value": 0.5}},
            owner={"object": "urn:ngsi-ld:Person:1"},
        ),
        context,
        now=NOW,
    )
    normalized = render_entity(entity, context)
    assert normalized["type"] == "Vehicle" and normalized["speed"]["ex:accuracy"] == {"type": "Property", "value": 0.5}
    assert "createdAt" not in normalized and "createdAt" in render_entity(entity, context, sys_attrs=True)
    assert render_entity(entity, context, key_values=True) == {
        "id": "urn:ngsi-ld:Vehicle:A1",
        "type": "Vehicle",
        "speed": 42,
        "owner": "urn:ngsi-ld:Person:1",
    }
    only = render_entity(entity, context, attributes=frozenset({DEFAULT_VOCAB + "owner"}))
    assert set(only) == {"id", "type", "owner"}
    core_only = Contexts(DocumentLoader()).active(None)
    assert render_entity(entity, core_only)["type"] == "https://example.org/Vehicle"


def test_several_instances_are_told_apart_by_dataset_id(context: ActiveContext) -> None:
    entity = parse_entity(
        vehicle(
            speed=[
                {"value": 1, "datasetId": "urn:ngsi-ld:Dataset:gps"},
                {"value": 2, "datasetId": "urn:ngsi-ld:Dataset:obd"},
            ]
        ),
        context,
        now=NOW,
    )
    assert len(entity.attributes[DEFAULT_VOCAB + "speed"]) == 2
    with pytest.raises(NgsiLdError, match="datasetId"):
        parse_entity(vehicle(speed=[{"value": 1}, {"value": 2}]), context, now=NOW)


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"type": "Vehicle"}, "URI"),
        ({"id": "not a uri", "type": "Vehicle"}, "URI"),
        ({"id": "urn:ngsi-ld:V:1"}, "type"),
        ({"id": "urn:ngsi-ld:V:1", "type": ["Vehicle", 3]}, "type"),
        (vehicle(**{"bad<name>": 1}), "valid name"),
        (vehicle(**{"x' OR 1=1 --": 1}), "valid name"),
        (vehicle(speed={"type": "Propertyy", "value": 1}), "attribute type"),
        (vehicle(speed={"type": "Property"}), "needs 'value'"),
        (vehicle(speed=None), "null"),
        (vehicle(owner={"type": "Relationship", "object": "not a uri"}), "URI"),
        (vehicle(location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 0]}}), "coordinates"),
        (vehicle(location={"type": "GeoProperty", "value": {"type": "Circle"}}), "GeoJSON"),
        (vehicle(location={"type": "Point", "coordinates": "139,35"}), "coordinates"),
        (vehicle(speed={"value": 1, "observedAt": "yesterday"}), "DateTime"),
        (vehicle(speed={"value": 1, "observedAt": "2026-11-30T09:00:00"}), "time zone"),
        (vehicle(speed={"value": 1, "datasetId": "gps"}), "datasetId"),
        (vehicle(scope="no spaces allowed"), "scope"),
    ],
)
def test_malformed_entities_are_bad_request_data(context: ActiveContext, payload: object, complaint: str) -> None:
    with pytest.raises(NgsiLdError, match=complaint) as raised:
        parse_entity(payload, context, now=NOW)
    assert raised.value.kind is ErrorType.BadRequestData


def test_a_body_that_is_not_an_object_is_an_invalid_request(context: ActiveContext) -> None:
    with pytest.raises(NgsiLdError, match="JSON object") as raised:  # ETSI suite 001_02_02
        parse_entity([], context, now=NOW)
    assert raised.value.kind is ErrorType.InvalidRequest

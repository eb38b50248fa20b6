"""Changes to a stored entity: merge, replace, append, update, one attribute at a time — datasetIds, null,
createdAt kept, modifiedAt moved, the stored entity never touched, bad fragments refused."""

from __future__ import annotations

import copy

import pytest

from machimori.hub import mutations
from machimori.hub.entities import Entity, parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import Contexts, DocumentLoader

THEN = "2026-11-30T00:00:00Z"
NOW = "2026-12-01T09:00:00Z"
EX = "https://example.org/"
CONTEXT = Contexts(DocumentLoader()).active(
    {
        "Vehicle": EX + "Vehicle",
        "Car": EX + "Car",
        "speed": EX + "speed",
        "brand": EX + "brand",
        "source": EX + "source",
        "isParked": EX + "isParked",
        "providedBy": EX + "providedBy",
        "colour": EX + "colour",
        "street": EX + "street",
    }
)
GPS = "urn:ngsi-ld:Dataset:gps"


def stored() -> Entity:
    return parse_entity(
        {
            "id": "urn:ngsi-ld:Vehicle:1",
            "type": "Vehicle",
            "scope": "/Minato",
            "brand": "Toyota",
            "speed": [
                {"type": "Property", "value": 55, "unitCode": "KMH", "source": {"value": "speedometer"}},
                {"type": "Property", "value": 54.5, "datasetId": GPS},
            ],
            "isParked": {
                "type": "Relationship",
                "object": "urn:ngsi-ld:Parking:1",
                "providedBy": {"object": "urn:ngsi-ld:Person:bob"},
            },
            "location": {"type": "Point", "coordinates": [139.6, 35.4]},
            "street": {"type": "LanguageProperty", "languageMap": {"ja": "本町", "en": "Hon-cho"}},
        },
        CONTEXT,
        now=THEN,
    )


def speed(entity: Entity, dataset: str | None = None) -> dict[str, object]:
    return next(i for i in entity.attributes[EX + "speed"] if i.get("datasetId") == dataset)


def refused(kind: ErrorType) -> pytest.RaisesExc[NgsiLdError]:
    return pytest.raises(NgsiLdError, check=lambda error: error.kind is kind)


def test_merge_merges_members_keeps_created_at_and_never_touches_the_stored_entity() -> None:
    before = stored()
    kept = copy.deepcopy(before)
    merged = mutations.merge_entity(
        before, {"speed": {"value": 60, "observedAt": "2026-12-01T08:59:00Z"}, "colour": "red"}, CONTEXT, now=NOW
    )
    default = speed(merged)
    assert default["value"] == 60 and default["unitCode"] == "KMH" and default["observedAt"] == "2026-12-01T08:59:00Z"
    assert default["createdAt"] == THEN and default["modifiedAt"] == NOW
    assert default[EX + "source"] == speed(before)[EX + "source"]  # untouched sub-attribute, times and all
    assert speed(merged, GPS) == speed(before, GPS)  # the other instance untouched
    assert merged.attributes[EX + "colour"][0]["createdAt"] == NOW
    assert merged.created_at == THEN and merged.modified_at == NOW
    assert before == kept


def test_merge_null_deletes_attributes_instances_sub_attributes_and_scope() -> None:
    merged = mutations.merge_entity(
        stored(),
        {
            "brand": "urn:ngsi-ld:null",
            "speed": {"type": "Property", "value": "urn:ngsi-ld:null", "datasetId": GPS},
            "isParked": {"providedBy": "urn:ngsi-ld:null"},
            "location": {"type": "GeoProperty", "value": "urn:ngsi-ld:null"},
            "street": {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"}},
            "scope": "urn:ngsi-ld:null",
        },
        CONTEXT,
        now=NOW,
    )
    assert set(merged.attributes) == {EX + "speed", EX + "isParked"}
    assert [i.get("datasetId") for i in merged.attributes[EX + "speed"]] == [None]
    parked = merged.attributes[EX + "isParked"][0]
    assert EX + "providedBy" not in parked and parked["object"] == "urn:ngsi-ld:Parking:1"
    assert merged.scope is None


def test_merge_adds_types_and_may_change_an_attribute_type() -> None:
    merged = mutations.merge_entity(
        stored(), {"type": "Car", "brand": {"type": "Relationship", "object": "urn:ngsi-ld:Brand:1"}}, CONTEXT, now=NOW
    )
    assert merged.types == [EX + "Car", EX + "Vehicle"]
    brand = merged.attributes[EX + "brand"][0]
    assert brand["type"] == "Relationship" and "value" not in brand and brand["createdAt"] == THEN


@pytest.mark.parametrize(
    "fragment",
    [
        {"id": "urn:ngsi-ld:Vehicle:2"},
        {"speed": {"type": "Nonsense", "value": 1}},
        {"location": {"type": "Point", "coordinates": [500, 1]}},
        {"bad name": 1},
        {"speed": {"type": "Property", "value": 1, "datasetId": "not a uri"}},
        {"speed": {"type": "Property", "value": "urn:ngsi-ld:null", "datasetId": "not a uri"}},
        {"scope": "no spaces allowed"},
        {"type": 7},
        [1, 2],
    ],
)
def test_a_bad_fragment_is_bad_request_data(fragment: object) -> None:
    for change in (mutations.merge_entity, mutations.append_attributes, mutations.update_attributes):
        with refused(ErrorType.BadRequestData):
            change(stored(), fragment, CONTEXT, now=NOW)


def test_replace_keeps_only_id_and_created_at() -> None:
    replaced = mutations.replace_entity(stored(), {"type": "Car", "colour": "blue"}, CONTEXT, now=NOW)
    assert replaced.id == "urn:ngsi-ld:Vehicle:1" and replaced.types == [EX + "Car"]
    assert list(replaced.attributes) == [EX + "colour"] and replaced.scope is None
    assert replaced.created_at == THEN and replaced.modified_at == NOW
    with refused(ErrorType.BadRequestData):
        mutations.replace_entity(stored(), {"id": "urn:ngsi-ld:Vehicle:9", "type": "Car"}, CONTEXT, now=NOW)
    with refused(ErrorType.BadRequestData):
        mutations.replace_entity(stored(), {"colour": "blue"}, CONTEXT, now=NOW)  # a type is required


def test_append_overwrites_or_with_no_overwrite_reports_what_it_left() -> None:
    fragment = {"speed": {"value": 70}, "colour": "red", "scope": "/Kanagawa"}
    appended = mutations.append_attributes(stored(), fragment, CONTEXT, now=NOW)
    assert speed(appended.entity)["value"] == 70 and speed(appended.entity)["createdAt"] == THEN
    assert "unitCode" not in speed(appended.entity)  # append replaces the instance, merge would keep it
    assert appended.entity.scope == ["/Kanagawa"] and not appended.not_updated
    assert set(appended.updated) == {EX + "speed", EX + "colour", "scope"}

    kept = mutations.append_attributes(stored(), fragment, CONTEXT, now=NOW, overwrite=False)
    assert speed(kept.entity)["value"] == 55 and kept.entity.attributes[EX + "colour"][0]["value"] == "red"
    assert kept.entity.scope == ["/Kanagawa", "/Minato"]
    assert [name for name, _ in kept.not_updated] == [EX + "speed"]
    assert set(kept.updated) == {EX + "colour", "scope"}


def test_append_of_a_new_dataset_instance_adds_it_even_without_overwrite() -> None:
    fragment = {"speed": {"value": 3, "datasetId": "urn:ngsi-ld:Dataset:radar"}}
    appended = mutations.append_attributes(stored(), fragment, CONTEXT, now=NOW, overwrite=False)
    assert len(appended.entity.attributes[EX + "speed"]) == 3 and appended.updated == [EX + "speed"]


def test_update_changes_only_what_exists() -> None:
    fragment = {
        "speed": {"value": 99, "datasetId": GPS},
        "colour": "red",
        "brand": {"value": 1, "datasetId": "urn:ngsi-ld:Dataset:none"},
        "type": "Car",
    }
    outcome = mutations.update_attributes(stored(), fragment, CONTEXT, now=NOW)
    assert speed(outcome.entity, GPS)["value"] == 99 and speed(outcome.entity)["value"] == 55
    assert EX + "colour" not in outcome.entity.attributes
    assert outcome.entity.attributes[EX + "brand"][0]["value"] == "Toyota"
    assert outcome.updated == [EX + "speed"]
    assert sorted(name for name, _ in outcome.not_updated) == [EX + "brand", EX + "colour"]
    assert outcome.entity.types == [EX + "Car", EX + "Vehicle"]


def test_update_of_scope_needs_a_scope_and_null_deletes() -> None:
    bare = stored()
    bare.scope = None
    outcome = mutations.update_attributes(bare, {"scope": "/X", "brand": "urn:ngsi-ld:null"}, CONTEXT, now=NOW)
    assert outcome.entity.scope is None and outcome.not_updated[0][0] == "scope"
    assert EX + "brand" not in outcome.entity.attributes and outcome.updated == [EX + "brand"]
    nothing = mutations.update_attributes(bare, {"colour": "red"}, CONTEXT, now=NOW)
    assert not nothing.changed and nothing.entity.modified_at == THEN


def test_partial_update_merges_members_of_the_chosen_instance() -> None:
    updated = mutations.update_attribute(
        stored(), "isParked", EX + "isParked", {"providedBy": {"object": "urn:ngsi-ld:Person:alice"}}, CONTEXT, now=NOW
    )
    parked = updated.attributes[EX + "isParked"][0]
    assert parked["object"] == "urn:ngsi-ld:Parking:1" and parked["createdAt"] == THEN
    assert parked[EX + "providedBy"][0]["object"] == "urn:ngsi-ld:Person:alice"
    by_dataset = mutations.update_attribute(
        stored(), "speed", EX + "speed", {"value": 1, "datasetId": GPS}, CONTEXT, now=NOW
    )
    assert speed(by_dataset, GPS)["value"] == 1 and speed(by_dataset)["value"] == 55
    gone = mutations.update_attribute(
        stored(), "speed", EX + "speed", {"value": "urn:ngsi-ld:null", "datasetId": GPS}, CONTEXT, now=NOW
    )
    assert len(gone.attributes[EX + "speed"]) == 1


@pytest.mark.parametrize(
    ("name", "fragment", "kind"),
    [
        ("speed", {}, ErrorType.BadRequestData),
        ("speed", {"type": "Relationship", "object": "urn:ngsi-ld:X:1"}, ErrorType.BadRequestData),
        ("speed", {"value": 1, "datasetId": "urn:ngsi-ld:Dataset:unknown"}, ErrorType.ResourceNotFound),
        ("colour", {"value": 1}, ErrorType.ResourceNotFound),
        ("type", {"value": 1}, ErrorType.BadRequestData),
    ],
)
def test_partial_update_refusals(name: str, fragment: dict[str, object], kind: ErrorType) -> None:
    with refused(kind):
        mutations.update_attribute(stored(), name, CONTEXT.expand(name), fragment, CONTEXT, now=NOW)


def test_replace_attribute_replaces_one_instance() -> None:
    replaced = mutations.replace_attribute(
        stored(), "speed", EX + "speed", {"type": "Property", "value": 1, "datasetId": GPS}, CONTEXT, now=NOW
    )
    assert speed(replaced, GPS)["value"] == 1 and speed(replaced, GPS)["createdAt"] == THEN
    assert speed(replaced)["unitCode"] == "KMH"
    with refused(ErrorType.ResourceNotFound):
        mutations.replace_attribute(stored(), "colour", EX + "colour", {"value": 1}, CONTEXT, now=NOW)
    with refused(ErrorType.BadRequestData):
        mutations.replace_attribute(stored(), "scope", "scope", {"value": "/x"}, CONTEXT, now=NOW)


def test_delete_attribute_by_dataset_all_or_scope() -> None:
    one = mutations.delete_attribute(stored(), "speed", EX + "speed", dataset=GPS, now=NOW)
    assert [i.get("datasetId") for i in one.attributes[EX + "speed"]] == [None] and one.modified_at == NOW
    default = mutations.delete_attribute(stored(), "speed", EX + "speed", now=NOW)
    assert [i.get("datasetId") for i in default.attributes[EX + "speed"]] == [GPS]
    every = mutations.delete_attribute(stored(), "speed", EX + "speed", every=True, now=NOW)
    assert EX + "speed" not in every.attributes
    assert mutations.delete_attribute(stored(), "scope", "scope", now=NOW).scope is None
    with refused(ErrorType.ResourceNotFound):
        mutations.delete_attribute(stored(), "speed", EX + "speed", dataset="urn:ngsi-ld:Dataset:x", now=NOW)
    with refused(ErrorType.ResourceNotFound):
        mutations.delete_attribute(stored(), "colour", EX + "colour", now=NOW)
    with refused(ErrorType.BadRequestData):
        mutations.delete_attribute(stored(), "speed", EX + "speed", dataset="no uri", now=NOW)

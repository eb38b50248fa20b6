"""datasetId: only the attribute instances of the datasets asked for ("@none": the default instance)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from machimori.hub.entities import parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.representation import parse_representation, represent
from machimori.platform import Platform

from .test_api import WATER, bearer, town  # noqa: F401

CONTEXT = Contexts(DocumentLoader()).active({"@vocab": "https://example.org/"})
FRENCH, GERMAN = "urn:ngsi-ld:Dataset:french-name", "urn:ngsi-ld:Dataset:german-name"
NAMES = [
    {"type": "Property", "value": "Eiffel Tower"},
    {"type": "Property", "value": "Tour Eiffel", "datasetId": FRENCH},
    {"type": "Property", "value": "Eiffelturm", "datasetId": GERMAN},
]
BUILDING = {"id": "urn:ngsi-ld:Building:1", "type": "Building", "name": NAMES, "height": {"value": 300}}


def _shown(**parameters: str) -> dict[str, object]:
    entity = parse_entity(dict(BUILDING), CONTEXT, now="2026-12-01T00:00:00Z")
    return represent(entity, CONTEXT, parse_representation(CONTEXT, **parameters))


def test_only_the_instances_of_the_datasets_asked_for() -> None:
    assert _shown(dataset_id=FRENCH)["name"] == NAMES[1] and "height" not in _shown(dataset_id=FRENCH)
    assert _shown(dataset_id="@none") == {
        "id": BUILDING["id"],
        "type": "Building",
        "name": NAMES[0],
        "height": {
            "type": "Property",
            "value": 300,
        },
    }
    assert _shown(dataset_id=f"{FRENCH},{GERMAN}")["name"] == NAMES[1:]
    assert set(_shown(dataset_id="urn:ngsi-ld:Dataset:spanish-name")) == {"id", "type"}


def test_a_dataset_id_that_is_not_a_uri_is_refused() -> None:
    with pytest.raises(NgsiLdError) as raised:
        parse_representation(CONTEXT, dataset_id="not a uri")
    assert raised.value.kind is ErrorType.BadRequestData


def test_the_api_filters_instances_on_query_and_retrieve(town: tuple[Platform, TestClient]) -> None:  # noqa: F811
    platform, client = town
    _, bousai = bearer(platform, client, "minato-bousai")
    gauge = {"id": "urn:ngsi-ld:WaterObserved:1", "type": WATER, "name": NAMES}
    assert client.post("/ngsi-ld/v1/entities", json=gauge, headers=bousai).status_code == 201
    found = client.get("/ngsi-ld/v1/entities", params={"type": WATER, "datasetId": GERMAN}, headers=bousai)
    assert found.status_code == 200 and found.json()[0]["name"] == NAMES[2]
    one = client.get(f"/ngsi-ld/v1/entities/{gauge['id']}", params={"datasetId": "@none"}, headers=bousai)
    assert one.json()["name"] == NAMES[0]


def test_pick_leaves_out_the_id_unless_picked_and_empty_names_are_refused() -> None:
    assert set(_shown(pick="name")) == {"name"} and set(_shown(pick="id,name")) == {"id", "name"}
    assert set(_shown(attrs="name")) == {"id", "type", "name"}  # attrs keeps the entity's own members
    for text in ("id,,name", "name,", ","):
        with pytest.raises(NgsiLdError) as raised:
            parse_representation(CONTEXT, pick=text)
        assert raised.value.kind is ErrorType.BadRequestData

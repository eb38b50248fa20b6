"""How entities are shown: forms, pick/omit/attrs, lang, the @context's place, GeoJSON — and what is refused."""

from __future__ import annotations

import json

import pytest

from machimori.hub.entities import parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import CORE_CONTEXT, Contexts, DocumentLoader
from machimori.hub.representation import parse_representation, represent
from machimori.hub.respond import entities_response

CONTEXTS = Contexts(DocumentLoader())
CONTEXT = CONTEXTS.active({"@vocab": "https://example.org/"})
ENTITY = parse_entity(
    {
        "id": "urn:ngsi-ld:Shop:1",
        "type": "Shop",
        "name": {"type": "Property", "value": "港の店"},
        "street": {"type": "LanguageProperty", "languageMap": {"ja": "海岸通り", "en": "Kaigan-dori"}},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
        "location": {"type": "Point", "coordinates": [139.6, 35.4]},
    },
    CONTEXT,
    now="2026-12-01T00:00:00Z",
)


def shown(**parameters: str) -> dict[str, object]:
    return represent(ENTITY, CONTEXT, parse_representation(CONTEXT, **parameters))


def test_forms() -> None:
    assert shown()["name"] == {"type": "Property", "value": "港の店"}
    assert shown(options="keyValues")["name"] == "港の店"
    assert shown(format="simplified")["owner"] == "urn:ngsi-ld:Person:1"
    concise = shown(format="concise")
    assert concise["name"] == "港の店" and concise["owner"] == {"object": "urn:ngsi-ld:Person:1"}
    assert concise["location"] == {"type": "Point", "coordinates": [139.6, 35.4]}
    assert "createdAt" in shown(options="sysAttrs") and "createdAt" not in shown()


def test_pick_omit_attrs_and_lang() -> None:
    assert set(shown(attrs="name")) == {"id", "type", "name"}
    assert set(shown(pick="id,name")) == {"id", "name"}
    assert set(shown(omit="name,type")) == {"id", "street", "owner", "location"}
    assert shown(lang="en")["street"] == {"type": "Property", "value": "Kaigan-dori", "lang": "en"}
    assert shown(lang="fr,ja", options="keyValues")["street"] == "海岸通り"


@pytest.mark.parametrize("parameters", [{"format": "pretty"}, {"options": "keyValues,invalid"}])
def test_an_unknown_format_or_option_is_an_invalid_request(parameters: dict[str, str]) -> None:
    with pytest.raises(NgsiLdError) as raised:  # ETSI GS CIM 009 §6.3.20 (suite 018_16)
        parse_representation(CONTEXT, **parameters)
    assert raised.value.kind is ErrorType.InvalidRequest


@pytest.mark.parametrize(
    "parameters",
    [
        {"options": "keyValues,concise"},
        {"pick": "name", "omit": "name"},
        {"pick": "name", "attrs": "name"},
        {"pick": "id;name"},
        {"omit": "name)"},
        {"lang": "ja;drop"},
    ],
)
def test_refused(parameters: dict[str, str]) -> None:
    with pytest.raises(NgsiLdError) as raised:
        parse_representation(CONTEXT, **parameters)
    assert raised.value.kind is ErrorType.BadRequestData


def test_the_context_goes_in_the_body_for_json_ld_and_in_a_link_for_json() -> None:
    linked = CONTEXTS.active("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld")
    as_ld = entities_response(shown(), linked, "application/ld+json")
    assert as_ld.media_type == "application/ld+json" and json.loads(as_ld.body)["@context"] == CORE_CONTEXT
    as_json = entities_response(shown(), linked, "application/json")
    assert "@context" not in json.loads(as_json.body)
    assert as_json.headers["link"].startswith(f'<{CORE_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"')


def test_geojson() -> None:
    one = json.loads(entities_response(shown(), CONTEXT, "application/geo+json").body)
    assert one["type"] == "Feature" and one["geometry"] == {"type": "Point", "coordinates": [139.6, 35.4]}
    assert one["properties"]["name"]["value"] == "港の店" and "id" not in one["properties"]
    many = json.loads(entities_response([shown(options="keyValues")], CONTEXT, "application/geo+json").body)
    assert many["type"] == "FeatureCollection" and many["features"][0]["geometry"]["type"] == "Point"

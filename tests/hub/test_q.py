"""The q language: what it reads, what it matches, and what it refuses (malformed or built to be slow)."""

from __future__ import annotations

import pytest

from machimori.hub.entities import Entity, parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.q import Path, parse_q

NOW = "2026-12-01T00:00:00Z"
CONTEXT = Contexts(DocumentLoader()).active({"@vocab": "https://example.org/"})


def car(**attributes: object) -> Entity:
    return parse_entity({"id": "urn:ngsi-ld:Car:1", "type": "Car", **attributes}, CONTEXT, now=NOW)


def matches(q: str, entity: Entity) -> bool:
    return parse_q(q, CONTEXT).matches(entity)


def test_names_are_expanded_and_paths_split_into_members_and_keys() -> None:
    query = parse_q("speed.observedAt>=2026-01-01T00:00:00Z;engine[power.max]==5", CONTEXT)
    assert {term.path for term in query.terms()} == {
        Path("https://example.org/speed", ("observedAt",)),
        Path("https://example.org/engine", (), ("power", "max")),
    }
    assert query.attributes == {"https://example.org/speed", "https://example.org/engine"}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("speed", True),
        ("!speed", False),
        ("!colour", True),
        ("speed==80", True),
        ("speed==80.0", True),
        ("speed!=80", False),
        ("speed>79;speed<81", True),
        ("speed>=81", False),
        ("speed==70..90", True),
        ("speed==81..90", False),
        ("speed==1,2,80", True),
        ('speed=="80"', False),
        ('brand=="トヨタ"', True),
        ("brand~=^ト", True),
        ("brand!~=^ト", False),
        ("electric==true", True),
        ("electric==1", False),
        ('speed==1|brand=="トヨタ"', True),
        ('(speed==1|brand=="x");electric==true', False),
        ('speed==1;brand=="x"|electric==true', True),
        ('tags=="b"', True),
        ('tags=="z"', False),
        ("owner==urn:ngsi-ld:Person:1", True),
        ("speed.observedAt>=2026-11-30T00:00:00Z", True),
        ("speed.observedAt>2026-12-31T00:00:00Z", False),
        ("engine[power.max]>100", True),
        ("engine[power.min]>100", False),
        ("speed.accuracy==0.5", True),
        ('speed.unitCode=="KMH"', True),
    ],
)
def test_what_matches(q: str, expected: bool) -> None:
    entity = car(
        speed={
            "value": 80,
            "unitCode": "KMH",
            "observedAt": "2026-12-01T09:00:00Z",
            "accuracy": {"value": 0.5},
        },
        brand="トヨタ",
        electric=True,
        tags=["a", "b"],
        owner={"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
        engine={"value": {"power": {"max": 150}}},
    )
    assert matches(q, entity) is expected


@pytest.mark.parametrize(
    "q",
    [
        "",
        "speed==",
        "speed>>1",
        "(speed==1",
        "speed==1)",
        'brand=="unclosed',
        "brand~=(",
        "a" * 5000,
        ";".join(["a==1"] * 65),
        "(" * 9 + "a" + ")" * 9,
        "speed==1 2",
        "engine[power",
    ],
)
def test_what_is_refused_as_bad_request(q: str) -> None:
    with pytest.raises(NgsiLdError) as raised:
        parse_q(q, CONTEXT)
    assert raised.value.kind is ErrorType.BadRequestData


def test_a_pattern_built_to_be_slow_is_refused_not_served() -> None:
    entity = car(name="a" * 40 + "!")
    with pytest.raises(NgsiLdError) as raised:
        matches("name~=^(a|aa)+$", entity)
    assert raised.value.kind is ErrorType.BadRequestData


def test_sql_metacharacters_are_just_characters() -> None:
    entity = car(name="x'; DROP TABLE hub_entities; --")
    assert matches('name=="x\'; DROP TABLE hub_entities; --"', entity)
    assert not matches('name=="\' OR 1=1 --"', entity)

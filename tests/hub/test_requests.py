"""Where a request's @context and tenant come from, and each way of getting it wrong."""

from __future__ import annotations

from typing import Any

import pytest

from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.requests import UnsupportedMediaType, body_context, link_context, tenant_of

LINK = '<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def test_the_tenant_header_is_checked() -> None:
    assert tenant_of(None) == "" and tenant_of("minato_city-1") == "minato_city-1"
    for bad in ("../etc", "a b", "t'; DROP TABLE x", "x" * 65):
        with pytest.raises(NgsiLdError):
            tenant_of(bad)


def test_json_takes_its_context_from_the_link_header() -> None:
    body: dict[str, Any] = {"id": "urn:x:1", "type": "T"}
    assert body_context("application/json", LINK, body) == "https://example.org/ctx.jsonld"
    assert body_context("application/json; charset=utf-8", None, body) is None
    assert link_context('<https://a.example/x>; rel="next", ' + LINK) == "https://example.org/ctx.jsonld"


def test_json_ld_takes_its_context_from_the_body_and_strips_it() -> None:
    body: dict[str, Any] = {"id": "urn:x:1", "type": "T", "@context": ["https://example.org/ctx.jsonld"]}
    assert body_context("application/ld+json", None, body) == ["https://example.org/ctx.jsonld"]
    assert "@context" not in body
    batch = [{"id": "urn:x:1", "@context": {"T": "urn:t"}}, {"id": "urn:x:2", "@context": {"T": "urn:t"}}]
    assert body_context("application/ld+json", None, batch) == {"T": "urn:t"}


@pytest.mark.parametrize(
    ("content_type", "link", "body"),
    [
        ("application/json", None, {"@context": "https://example.org/ctx.jsonld"}),
        ("application/ld+json", None, {"id": "urn:x:1"}),
        ("application/ld+json", LINK, {"@context": "https://example.org/ctx.jsonld"}),
        ("application/json", f"{LINK}, {LINK.replace('ctx', 'other')}", {}),
        ("application/ld+json", None, [{"@context": {"T": "urn:a"}}, {"@context": {"T": "urn:b"}}]),
    ],
)
def test_a_context_in_the_wrong_place_is_bad_request_data(content_type: str, link: str | None, body: Any) -> None:
    with pytest.raises(NgsiLdError) as raised:
        body_context(content_type, link, body)
    assert raised.value.kind is ErrorType.BadRequestData


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "multipart/form-data"])
def test_other_media_types_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        body_context(content_type, None, {})

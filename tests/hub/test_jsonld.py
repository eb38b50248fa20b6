"""@context handling: the core contexts are served from the package, nothing else unless allowed, and
terms expand and compact as JSON-LD says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import CORE_CONTEXT, DEFAULT_VOCAB, ETSI, Contexts, DocumentLoader

SUITE_CONTEXT = {"Vehicle": "https://ngsi-ld-test-suite/context#Vehicle", "ex": "https://example.org/"}


@pytest.fixture
def contexts() -> Contexts:
    return Contexts(DocumentLoader())


def test_core_terms_expand_and_compact_without_any_network(contexts: Contexts) -> None:
    core = contexts.active(None)
    assert core.expand("location") == "https://uri.etsi.org/ngsi-ld/location"
    assert core.expand("Property") == "https://uri.etsi.org/ngsi-ld/Property"
    assert core.compact("https://uri.etsi.org/ngsi-ld/location") == "location"


def test_unknown_terms_fall_back_to_the_etsi_default_vocabulary(contexts: Contexts) -> None:
    core = contexts.active(None)
    assert core.expand("speed") == DEFAULT_VOCAB + "speed"
    assert core.compact(DEFAULT_VOCAB + "speed") == "speed"


def test_a_user_context_adds_terms_prefixes_and_leaves_iris_alone(contexts: Contexts) -> None:
    active = contexts.active(SUITE_CONTEXT)
    assert active.expand("Vehicle") == "https://ngsi-ld-test-suite/context#Vehicle"
    assert active.compact("https://ngsi-ld-test-suite/context#Vehicle") == "Vehicle"
    assert active.expand("ex:speed") == "https://example.org/speed"
    assert active.compact("https://example.org/speed") == "ex:speed"
    assert active.expand("urn:ngsi-ld:Vehicle:1") == "urn:ngsi-ld:Vehicle:1"
    assert active.expand("https://other.example/x") == "https://other.example/x"


@pytest.mark.parametrize("minor", ["", "-v1.3", "-v1.4", "-v1.6", "-v1.7", "-v1.8"])
def test_every_shipped_core_context_is_served_locally(minor: str) -> None:
    active = Contexts(DocumentLoader(), core=f"{ETSI}ngsi-ld-core-context{minor}.jsonld").active(None)
    assert active.expand("GeoProperty") == "https://uri.etsi.org/ngsi-ld/GeoProperty"


def test_a_core_context_in_the_request_gives_way_to_the_brokers_own(contexts: Contexts) -> None:
    mixed = contexts.active([f"{ETSI}ngsi-ld-core-context-v1.3.jsonld", SUITE_CONTEXT])
    assert mixed.expand("Vehicle").endswith("#Vehicle") and mixed.source[0] == CORE_CONTEXT


def test_an_unknown_remote_context_is_ld_context_not_available_and_never_fetched(contexts: Contexts) -> None:
    with pytest.raises(NgsiLdError) as raised:
        contexts.active(["https://example.org/context.jsonld"])
    assert raised.value.kind is ErrorType.LdContextNotAvailable and raised.value.kind.status == 503


def test_remote_contexts_are_fetched_only_when_allowed_and_then_cached(tmp_path: Path) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return json.dumps({"@context": {"Shelter": "https://example.org/Shelter"}}).encode()

    contexts = Contexts(DocumentLoader(fetch=fetch))
    for _ in range(3):
        assert contexts.active("https://example.org/c.jsonld").expand("Shelter") == "https://example.org/Shelter"
    assert fetched == ["https://example.org/c.jsonld"]
    with pytest.raises(NgsiLdError):
        Contexts(DocumentLoader(fetch=fetch)).active("file:///etc/passwd")  # not http(s): never read


def test_an_oversized_or_non_json_remote_context_is_refused() -> None:
    huge = Contexts(DocumentLoader(fetch=lambda url: b" " * (2 << 20)))
    with pytest.raises(NgsiLdError, match="larger"):
        huge.active("https://example.org/huge.jsonld")
    garbage = Contexts(DocumentLoader(fetch=lambda url: b"<html>"))
    with pytest.raises(NgsiLdError, match="not JSON"):
        garbage.active("https://example.org/page.jsonld")


def test_an_operator_folder_serves_further_documents(tmp_path: Path) -> None:
    (tmp_path / "suite.jsonld").write_text(json.dumps({"@context": SUITE_CONTEXT}), encoding="utf-8")
    (tmp_path / "urls.json").write_text(json.dumps({"https://forge.example/suite.jsonld": "suite.jsonld"}))
    contexts = Contexts(DocumentLoader(extra_dir=tmp_path))
    assert contexts.active("https://forge.example/suite.jsonld").expand("Vehicle").endswith("#Vehicle")


@pytest.mark.parametrize("bad", [[1], {"x": {"@id": 5}}, [CORE_CONTEXT, True]])
def test_a_malformed_context_is_bad_request_data(contexts: Contexts, bad: object) -> None:
    with pytest.raises(NgsiLdError) as raised:
        contexts.active(bad)  # type: ignore[arg-type]
    assert raised.value.kind is ErrorType.BadRequestData


def test_error_types_that_share_a_status_stay_distinct() -> None:
    assert ErrorType.BadRequestData is not ErrorType.InvalidRequest
    assert ErrorType.BadRequestData.status == ErrorType.InvalidRequest.status == 400
    assert len(ErrorType) == 11

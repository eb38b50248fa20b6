"""The @context management API: hosted documents kept in the database and used by later requests without
anything being fetched; listed in their tenant, deleted only by their organisation; core contexts stay."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient

from machimori.hub.jsonld import CORE_CONTEXT
from machimori.platform import Platform

from .test_api import WATER, bearer, town  # noqa: F401

Town = tuple[Platform, TestClient]
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
DOCUMENT = {"@context": {"A1": "urn:ngsi-ld:attributes:A1", "Testing": WATER}}


def _add(client: TestClient, headers: dict[str, str], document: object = DOCUMENT) -> str:
    added = client.post("/ngsi-ld/v1/jsonldContexts", json=document, headers=headers)
    assert added.status_code == 201 and added.content == b"", added.text
    location = str(added.headers["location"])
    assert location.startswith("/ngsi-ld/v1/jsonldContexts/")
    return location


def _link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def test_a_hosted_context_is_served_listed_and_used_by_later_requests(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, owner = bearer(platform, client, "minato-bousai")
    location = _add(client, owner)
    local_id = location.rsplit("/", 1)[1]
    assert client.get(location, headers=owner).json() == DOCUMENT
    about = client.get(location, params={"details": "true"}, headers=owner).json()
    assert about["kind"] == "Hosted" and about["localId"] == local_id and about["URL"].endswith(location)
    assert about["createdAt"].endswith("Z")
    listed = client.get("/ngsi-ld/v1/jsonldContexts", headers=owner).json()
    assert about["URL"] in listed and CORE_CONTEXT in listed
    assert [
        c["URL"] for c in client.get("/ngsi-ld/v1/jsonldContexts?kind=Hosted&details=true", headers=owner).json()
    ] == [about["URL"]]
    entity = {"id": "urn:ngsi-ld:Testing:1", "type": "Testing", "A1": 1}
    made = client.post("/ngsi-ld/v1/entities", json=entity, headers={**owner, **_link(about["URL"])})
    assert made.status_code == 201, made.text
    stored = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Testing:1", headers=owner).json()
    assert stored["type"] == WATER and "urn:ngsi-ld:attributes:A1" in stored
    assert client.delete(location, headers=owner).status_code == 204
    assert client.get(location, headers=owner).status_code == 404
    again = client.post(
        "/ngsi-ld/v1/entities", json={**entity, "id": "urn:ngsi-ld:Testing:2"}, headers={**owner, **_link(about["URL"])}
    )
    assert again.status_code == 503 and again.json()["type"] == ERRORS + "LdContextNotAvailable"


def test_only_its_organisation_deletes_it_and_other_tenants_do_not_list_it(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, owner = bearer(platform, client, "minato-bousai")
    _, other = bearer(platform, client, "aoba-care")
    location = _add(client, owner)
    refused = client.delete(location, headers=other)
    assert refused.status_code == 404 and refused.json()["type"] == ERRORS + "ResourceNotFound"
    assert client.get(location, headers=owner).status_code == 200
    elsewhere = client.get(
        "/ngsi-ld/v1/jsonldContexts", params={"kind": "Hosted"}, headers={**owner, "NGSILD-Tenant": "t2"}
    )
    assert elsewhere.json() == []
    assert client.delete(location, headers={**owner, "NGSILD-Tenant": "t2"}).status_code == 404
    assert client.delete(location, headers=owner).status_code == 204


def test_bad_documents_and_parameters_are_refused(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, owner = bearer(platform, client, "minato-bousai")
    headers = {**owner, "Content-Type": "application/json"}
    for body, kind in ((b'{"A1": "x" "A2": "y"}', "InvalidRequest"), (b'{"A1": "urn:x"}', "InvalidRequest")):
        answer = client.post("/ngsi-ld/v1/jsonldContexts", content=body, headers=headers)
        assert answer.status_code == 400 and answer.json()["type"] == ERRORS + kind
    wrong = client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": [3]}, headers=owner)
    assert wrong.json()["type"] == ERRORS + "BadRequestData"
    for params in ({"details": "other"}, {"kind": "other"}):
        assert client.get("/ngsi-ld/v1/jsonldContexts", params=params, headers=owner).status_code == 400
    location = _add(client, owner)
    assert client.delete(location, params={"reload": "true"}, headers=owner).status_code == 400
    assert client.delete(location, params={"reload": "xxx"}, headers=owner).status_code == 400
    unknown = "/ngsi-ld/v1/jsonldContexts/wrong_id_context"
    assert client.delete(unknown, headers=owner).status_code == 404
    assert client.delete(unknown, params={"reload": "true"}, headers=owner).status_code == 400


def test_the_core_context_is_served_and_reloaded_but_never_deleted(town: Town) -> None:  # noqa: F811
    platform, client = town
    _, owner = bearer(platform, client, "minato-bousai")
    core = "/ngsi-ld/v1/jsonldContexts/" + quote(CORE_CONTEXT, safe="")
    assert client.get(core, params={"details": "true"}, headers=owner).json()["kind"] == "Cached"
    assert "@context" in client.get(core, headers=owner).json()
    refused = client.delete(core, headers=owner)
    assert refused.status_code == 400 and refused.json()["type"] == ERRORS + "BadRequestData"
    assert client.delete(core, params={"reload": "true"}, headers=owner).status_code == 204
    assert client.get(core, headers=owner).status_code == 200
    remote = "/ngsi-ld/v1/jsonldContexts/" + quote("https://example.org/context.jsonld", safe="")
    assert client.get(remote, headers=owner).status_code == 404  # nothing is fetched to serve it


def test_without_a_token_the_api_is_closed(town: Town) -> None:  # noqa: F811
    _, client = town
    assert client.get("/ngsi-ld/v1/jsonldContexts").status_code == 401
    assert client.post("/ngsi-ld/v1/jsonldContexts", json=DOCUMENT).status_code == 401

"""The audit API as a client sees it: proofs any RFC 9162 verifier accepts, and every refusal by name."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from machimori.audit import merkle
from machimori.audit.canonical import canonical_json
from machimori.audit.checkpoint import open_checkpoint
from machimori.audit.note import COSIGNATURE_V1, Signer
from machimori.platform import Platform

from .conftest import issue


def b(text: str) -> bytes:
    return base64.b64decode(text)


def fill(client: TestClient, headers: dict[str, str], count: int) -> None:
    for i in range(count):
        assert client.post("/api/v1/audit/entries", json={"event": "x", "i": i}, headers=headers).status_code == 201


def test_a_recorder_appends_and_anyone_verifies_inclusion_against_the_signed_checkpoint(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    recorder = issue(client, admin, "recorder")
    fill(client, recorder, 9)
    posted = {"system": "港町交通", "action": "fare.change", "amount": 210}
    answer = client.post("/api/v1/audit/entries", json=posted, headers=recorder).json()
    assert b(answer["leaf_hash"]) == merkle.leaf_hash(canonical_json(posted))

    note = client.get("/api/v1/audit/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(note.text, platform.audit.verifiers)
    entry = client.get(f"/api/v1/audit/entries/{answer['index']}", headers=recorder).json()
    assert entry["entry"] == posted
    proof = client.get(
        "/api/v1/audit/proof/inclusion", params={"index": answer["index"], "tree_size": checkpoint.size}
    ).json()
    hashes = [b(h) for h in proof["hashes"]]
    assert merkle.verify_inclusion(answer["index"], checkpoint.size, b(entry["leaf_hash"]), hashes, checkpoint.root)


def test_consistency_between_two_checkpoints(client: TestClient, admin: dict[str, str], platform: Platform) -> None:
    fill(client, admin, 5)
    old = open_checkpoint(client.get("/api/v1/audit/checkpoint").text, platform.audit.verifiers)
    fill(client, admin, 12)
    new = open_checkpoint(client.get("/api/v1/audit/checkpoint").text, platform.audit.verifiers)
    proof = client.get("/api/v1/audit/proof/consistency", params={"first": old.size, "second": new.size}).json()
    assert proof["first"] == old.size
    assert merkle.verify_consistency(old.size, new.size, old.root, new.root, [b(h) for h in proof["hashes"]])
    root = client.get(f"/api/v1/audit/roots/{old.size}").json()
    assert b(root["root_hash"]) == old.root


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/audit/proof/inclusion?index=3&tree_size=3", 400),
        ("/api/v1/audit/proof/inclusion?index=0&tree_size=999", 400),
        ("/api/v1/audit/proof/inclusion?index=-1&tree_size=3", 400),
        ("/api/v1/audit/proof/inclusion?index=abc&tree_size=3", 400),
        ("/api/v1/audit/proof/inclusion?index=1", 400),
        ("/api/v1/audit/proof/inclusion?index=99999999999999999999999&tree_size=3", 400),
        ("/api/v1/audit/proof/consistency?first=3&second=2", 400),
        ("/api/v1/audit/proof/consistency?first=1&second=50", 400),
        ("/api/v1/audit/roots/50", 400),
        ("/api/v1/audit/roots/-4", 400),
        ("/api/v1/audit/entries/50", 404),
        ("/api/v1/audit/entries/x1", 400),
    ],
)
def test_bad_requests_get_problem_details(client: TestClient, admin: dict[str, str], path: str, status: int) -> None:
    fill(client, admin, 3)
    response = client.get(path, headers=admin)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"] and body["type"].startswith("https://")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("[1, 2]", 400),
        ('"just text"', 400),
        ("{not json", 400),
        ('{"n": NaN}', 400),
        ('{"big": "' + "x" * 70_000 + '"}', 413),
    ],
)
def test_unloggable_bodies_are_refused_and_nothing_is_logged(
    client: TestClient, admin: dict[str, str], platform: Platform, body: str, status: int
) -> None:
    response = client.post("/api/v1/audit/entries", content=body, headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert platform.audit.head().size == 1  # only the first-run record


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-wrong-token-wrong-token-000", "Basic YWRtaW46YWRtaW4=", "Bearer ", "bearer"],
)
def test_appending_needs_a_valid_token_and_each_refusal_is_an_authentication_event(
    client: TestClient, platform: Platform, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post("/api/v1/audit/entries", json={"forged": True}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    platform.events.flush()
    assert platform.audit.head().size == 1
    from machimori.events import EventQuery, find_events

    failures = find_events(platform.database, EventQuery(class_uid=3002))
    assert failures and failures[0]["status_id"] == 2


def test_roles_are_enforced(client: TestClient, admin: dict[str, str]) -> None:
    auditor = issue(client, admin, "auditor")
    recorder = issue(client, admin, "recorder")
    assert client.post("/api/v1/audit/entries", json={"a": 1}, headers=auditor).status_code == 403
    assert client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=recorder).status_code == 403
    assert client.get("/api/v1/events", headers=recorder).status_code == 403
    assert client.get("/api/v1/audit/export", headers=recorder).status_code == 403
    assert client.get("/api/v1/audit/entries/0").status_code == 401


def test_a_revoked_token_stops_working_at_once(client: TestClient, admin: dict[str, str]) -> None:
    issued = client.post("/api/v1/tokens", json={"name": "vendor", "role": "recorder"}, headers=admin).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert client.post("/api/v1/audit/entries", json={"a": 1}, headers=headers).status_code == 201
    assert client.delete(f"/api/v1/tokens/{issued['id']}", headers=admin).status_code == 204
    assert client.post("/api/v1/audit/entries", json={"a": 2}, headers=headers).status_code == 401
    assert client.delete(f"/api/v1/tokens/{issued['id']}", headers=admin).status_code == 404
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert all("token" not in row and "token_hash" not in row for row in listed)


def test_export_streams_a_file_that_verifies_offline(
    client: TestClient, admin: dict[str, str], platform: Platform, tmp_path: object
) -> None:
    from pathlib import Path

    from machimori.audit.checks import verify_export

    fill(client, admin, 6)
    response = client.get("/api/v1/audit/export", headers=admin)
    assert response.status_code == 200
    path = Path(str(tmp_path)) / "export.jsonl"
    path.write_bytes(response.content)
    report = verify_export(path, platform.audit.verifiers, None)
    assert report.ok and report.entries == 7


def test_a_witness_cosignature_is_added_to_the_checkpoint(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    witness = Signer.generate("witness.example/w", COSIGNATURE_V1)
    platform.audit.witnesses.append(witness.verifier)
    note = client.get("/api/v1/audit/checkpoint").text
    text = note[: note.index("\n\n") + 1]
    line = witness.signature_line(text, 1_800_000_000)
    answer = client.post("/api/v1/audit/checkpoint/cosignatures", params={"tree_size": 1}, content=line)
    assert answer.status_code == 200, answer.text
    assert client.get("/api/v1/audit/checkpoint").text.count("\u2014") == 2
    forged = witness.signature_line(text.replace("\n1\n", "\n7\n"), 1)
    refused = client.post("/api/v1/audit/checkpoint/cosignatures", params={"tree_size": 1}, content=forged)
    assert refused.status_code == 400


def test_health_readiness_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "checks": {"database": "ok", "schema": "ok"}}
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/audit/entries",
        "/api/v1/audit/proof/inclusion",
        "/api/v1/audit/checkpoint",
        "/api/v1/events",
    ):
        assert path in paths


def test_a_huge_body_is_refused_before_it_is_read(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/audit/entries",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_event_search_treats_sql_wildcards_and_quotes_as_text(
    client: TestClient, admin: dict[str, str], platform: Platform
) -> None:
    platform.events.flush()
    assert client.get("/api/v1/events", params={"q": "admin"}, headers=admin).json()["events"]
    for text in ("%", "%admin%", "' OR 1=1 --", '"; DROP TABLE security_events; --'):
        response = client.get("/api/v1/events", params={"q": text}, headers=admin)
        assert response.status_code == 200
        assert response.json()["events"] == []
    assert client.get("/api/v1/events", params={"q": "admin"}, headers=admin).json()["events"]

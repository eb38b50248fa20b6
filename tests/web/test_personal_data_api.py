"""A service reads a resident's personal data over HTTP: permitted exactly as her consent says, from the
next request on — and refused when it forgets its purpose, lacks the scope or has no token at all."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from machimori.consent.purposes import DPV
from machimori.identity.accounts import Kind
from machimori.identity.oauth.clients import register_client
from machimori.platform import Platform

PURPOSE = DPV + "ServiceProvision"


def service_token(client: TestClient, platform: Platform, scope: str) -> tuple[str, str]:
    client_id, secret = register_client(
        platform.database, "港町バス", org="minato-bus", grant_types=["client_credentials"], scope=scope
    )
    assert secret is not None
    issued = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    return client_id, str(issued.json()["access_token"])


def read(client: TestClient, resident: str, token: str | None, purpose: str | None = PURPOSE) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if purpose is not None:
        headers["Data-Purpose"] = purpose
    answer = client.get(f"/api/v1/residents/{resident}/profile", headers=headers)
    return answer.status_code, answer.json()


@pytest.fixture
def hanako(platform: Platform) -> str:
    return platform.accounts.create(Kind.resident, "hanako", "山田花子", "みなとまちの海は青い 2026")


def test_consent_given_then_withdrawn_decides_the_very_next_request(
    client: TestClient, platform: Platform, hanako: str
) -> None:
    service, token = service_token(client, platform, "personal:read")
    status, body = read(client, hanako, token)
    assert (status, body["rule"]) == (403, "consent-none")
    platform.consent.give(hanako, service, PURPOSE)
    status, body = read(client, hanako, token)
    assert status == 200 and body["display_name"] == "山田花子"
    platform.consent.withdraw(hanako, service, PURPOSE)
    status, body = read(client, hanako, token)
    assert (status, body["rule"]) == (403, "consent-withdrawn")
    assert body["type"].endswith("/denied") and "撤回" in body["detail"]
    logged = platform.audit.entry(body["audit_index"]).value()
    assert (logged["action"], logged["decision"], logged["service"]) == ("personal-data.read", "deny", service)


def test_a_purpose_not_consented_to_is_denied(client: TestClient, platform: Platform, hanako: str) -> None:
    service, token = service_token(client, platform, "personal:read")
    platform.consent.give(hanako, service, PURPOSE)
    status, body = read(client, hanako, token, DPV + "PersonalisedAdvertising")
    assert (status, body["rule"]) == (403, "consent-none")
    status, body = read(client, hanako, token, None)
    assert (status, body["rule"]) == (403, "purpose-missing")


def test_a_token_without_the_personal_scope_is_denied_even_with_consent(
    client: TestClient, platform: Platform, hanako: str
) -> None:
    service, token = service_token(client, platform, "city:read")
    platform.consent.give(hanako, service, PURPOSE)
    status, body = read(client, hanako, token)
    assert (status, body["rule"]) == (403, "scope-missing")


@pytest.mark.parametrize("token", [None, "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_no_token_or_a_forged_one_is_401_with_a_bearer_challenge(
    client: TestClient, hanako: str, token: str | None
) -> None:
    answer = client.get(
        f"/api/v1/residents/{hanako}/profile",
        headers={"Data-Purpose": PURPOSE, **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["content-type"] == "application/problem+json"


def test_injection_in_the_resident_id_is_just_an_unknown_resident(client: TestClient, platform: Platform) -> None:
    _, token = service_token(client, platform, "personal:read")
    status, body = read(client, "x' OR '1'='1", token)
    assert (status, body["rule"]) == (403, "consent-none")

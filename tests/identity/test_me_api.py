"""A resident's self-service: passkeys, consent given and withdrawn, and who used her data."""

from __future__ import annotations

from fastapi.testclient import TestClient

from machimori.consent.access import record_access
from machimori.consent.purposes import DPV
from machimori.identity.accounts import Kind
from machimori.identity.soft_authenticator import SoftAuthenticator
from machimori.platform import Platform
from machimori.policy import Action, Context, DataType, Subject, Target

PASSWORD = "みなとまちの海は青い 2026"
PURPOSE = DPV + "ServiceProvision"


def sign_in(client: TestClient, login: str) -> None:
    assert client.post("/api/v1/session", json={"login": login, "password": PASSWORD}).status_code == 200


def test_a_resident_manages_her_consent_and_the_service_obeys_from_the_next_request(
    client: TestClient, platform: Platform
) -> None:
    hanako = platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    sign_in(client, "hanako")
    bus = Subject("bus-app", "service", org="minato-bus")
    her_data = Target("urn:ngsi-ld:Person:hanako", DataType.personal, org="minato-city", resident=hanako)

    def service_asks() -> bool:
        decision = platform.decisions.decide(bus, Action.read, her_data, Context(PURPOSE))
        record_access(platform.audit, platform.database, "bus-app", hanako, PURPOSE, decision)
        return decision.permit

    assert not service_asks()
    receipt = client.post("/api/v1/me/consents", json={"service": "bus-app", "purpose": PURPOSE})
    assert receipt.status_code == 201 and receipt.json()["record"]["parties"]["data_subject"] == hanako
    assert service_asks()
    assert client.get("/api/v1/me/consents").json()[0]["state"] == "given"
    assert (
        client.post("/api/v1/me/consents/withdraw", json={"service": "bus-app", "purpose": PURPOSE}).status_code == 200
    )
    assert not service_asks()
    history = client.get("/api/v1/me/accesses").json()
    assert [entry["permitted"] for entry in history] == [False, True, False]
    bad = client.post("/api/v1/me/consents", json={"service": "bus-app", "purpose": "https://example.com/anything"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def test_nobody_sees_or_changes_another_residents_consent(client: TestClient, platform: Platform) -> None:
    hanako = platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    platform.accounts.create(Kind.resident, "taro", "山田太郎", PASSWORD)
    platform.consent.give(hanako, "bus-app", PURPOSE)
    assert client.get("/api/v1/me/consents").status_code == 401
    sign_in(client, "taro")
    assert client.get("/api/v1/me/consents").json() == []
    client.post("/api/v1/me/consents/withdraw", json={"service": "bus-app", "purpose": PURPOSE})
    assert platform.consent.state(hanako, "bus-app", PURPOSE).value == "given"


def test_a_signed_in_resident_adds_a_passkey_and_then_signs_in_with_it(client: TestClient, platform: Platform) -> None:
    platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    sign_in(client, "hanako")
    phone = SoftAuthenticator(platform.passkeys.origin)
    registration = phone.create(client.post("/api/v1/me/passkeys/options").text)
    assert client.post("/api/v1/me/passkeys", json=registration).status_code == 201
    client.delete("/api/v1/session")
    client.cookies.clear()
    options = client.post("/api/v1/session/passkey/options", json={"login": "hanako"}).text
    answer = client.post(
        "/api/v1/session/passkey", json={"login": "hanako", "credential": phone.get(options, platform.passkeys.rp_id)}
    )
    assert answer.status_code == 200 and answer.json()["aal"] == 2
    replayed = client.post("/api/v1/me/passkeys", json=registration)  # the same answer again
    assert replayed.status_code == 400

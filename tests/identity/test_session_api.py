"""Signing in over HTTP as a resident does — and as an attacker guesses, skips the second factor or steals a cookie."""

from __future__ import annotations

import pyotp
from fastapi.testclient import TestClient

from machimori.identity.accounts import Kind
from machimori.identity.soft_authenticator import SoftAuthenticator
from machimori.platform import Platform

PASSWORD = "みなとまちの海は青い 2026"


def test_password_sign_in_gives_an_aal1_session_and_sign_out_ends_it(client: TestClient, platform: Platform) -> None:
    platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    assert client.get("/api/v1/me").status_code == 401
    answer = client.post("/api/v1/session", json={"login": "hanako", "password": PASSWORD})
    assert answer.status_code == 200 and answer.json()["aal"] == 1
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    me = client.get("/api/v1/me").json()
    assert (me["login"], me["aal"], me["amr"], me["ial"]) == ("hanako", 1, ["pwd"], 0)
    assert client.delete("/api/v1/session").status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_password_and_unknown_login_look_the_same(client: TestClient, platform: Platform) -> None:
    platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    wrong = client.post("/api/v1/session", json={"login": "hanako", "password": "not her password at all"})
    unknown = client.post("/api/v1/session", json={"login": "nobody", "password": "not her password at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["content-type"] == "application/problem+json"


def test_guessing_is_slowed_with_429_and_retry_after(client: TestClient, platform: Platform) -> None:
    platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    statuses = [
        client.post("/api/v1/session", json={"login": "hanako", "password": f"guess number {n:04d}"}).status_code
        for n in range(8)
    ]
    assert statuses[:5] == [401] * 5 and 429 in statuses
    throttled = client.post("/api/v1/session", json={"login": "hanako", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1


def test_the_second_factor_cannot_be_skipped(client: TestClient, platform: Platform) -> None:
    clerk = platform.accounts.create(Kind.staff, "clerk7", "職員7", PASSWORD, org="minato-city")
    totp = pyotp.parse_uri(platform.accounts.enroll_totp(clerk))
    first = client.post("/api/v1/session", json={"login": "clerk7", "password": PASSWORD})
    assert first.json() == {"aal": 0, "second_factor_required": "otp"}
    assert client.get("/api/v1/me").status_code == 401  # a pending session is not a session
    assert client.post("/api/v1/session/otp", json={"code": "000000"}).status_code in (401,)
    done = client.post("/api/v1/session/otp", json={"code": totp.now()})
    assert done.status_code == 200 and done.json()["aal"] == 2 and done.json()["amr"] == ["pwd", "otp"]
    assert client.get("/api/v1/me").json()["acr"] == "urn:machimori:aal2"


def test_a_passkey_signs_in_at_aal2_and_another_accounts_passkey_does_not(
    client: TestClient, platform: Platform
) -> None:
    hanako = platform.accounts.create(Kind.resident, "hanako", "山田花子", None)
    taro = platform.accounts.create(Kind.resident, "taro", "山田太郎", None)
    passkeys = platform.passkeys
    phone, taros = SoftAuthenticator(passkeys.origin), SoftAuthenticator(passkeys.origin)
    passkeys.finish_registration(hanako, phone.create(passkeys.begin_registration(hanako)))
    passkeys.finish_registration(taro, taros.create(passkeys.begin_registration(taro)))
    options = client.post("/api/v1/session/passkey/options", json={"login": "hanako"}).text
    stolen = client.post(
        "/api/v1/session/passkey", json={"login": "hanako", "credential": taros.get(options, passkeys.rp_id)}
    )
    assert stolen.status_code == 401
    options = client.post("/api/v1/session/passkey/options", json={"login": "hanako"}).text
    signed_in = client.post(
        "/api/v1/session/passkey", json={"login": "hanako", "credential": phone.get(options, passkeys.rp_id)}
    )
    assert signed_in.status_code == 200 and signed_in.json()["aal"] == 2
    assert client.get("/api/v1/me").json()["login"] == "hanako"
    unknown = client.post("/api/v1/session/passkey/options", json={"login": "nobody"})
    assert unknown.status_code == 200 and unknown.json()["allowCredentials"] == []


def test_a_forged_cookie_is_not_a_session(client: TestClient) -> None:
    client.cookies.set("mm_session", "forged-session-secret-forged-session-secret")
    assert client.get("/api/v1/me").status_code == 401

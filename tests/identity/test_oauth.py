"""The OAuth provider as a service uses it — and as an attacker forges, replays and stretches its tokens."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from machimori.events import EventQuery, find_events
from machimori.identity.oauth.clients import register_client
from machimori.identity.oauth.provider import Provider, TokenRejected
from machimori.platform import Platform


@pytest.fixture
def provider(client: TestClient) -> Provider:
    oauth: Provider = client.app.state.platform.oauth  # type: ignore[attr-defined]
    return oauth


@pytest.fixture
def service(platform: Platform) -> tuple[str, str]:
    client_id, secret = register_client(
        platform.database,
        "港町バス アプリ",
        org="minato-bus",
        grant_types=["client_credentials"],
        scope="city:read consent:read",
    )
    assert secret is not None
    return client_id, secret


def token_for(client: TestClient, client_id: str, secret: str, **extra: str) -> dict[str, object]:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", **extra}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def test_a_service_gets_a_short_lived_jwt_that_verifies(
    client: TestClient, provider: Provider, service: tuple[str, str]
) -> None:
    issued = token_for(client, *service, scope="city:read")
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 300
    token = provider.verify_access_token(str(issued["access_token"]))
    assert token.client_id == service[0] and token.scopes == {"city:read"}
    assert token.claims["aud"] == provider.audience and token.claims["org"] == "minato-bus"
    header = json.loads(base64.urlsafe_b64decode(str(issued["access_token"]).split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"


def test_discovery_and_jwks(client: TestClient, provider: Provider) -> None:
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["issuer"] == provider.issuer and metadata["token_endpoint"].endswith("/oauth/token")
    keys = client.get("/oauth/jwks").json()["keys"]
    assert len(keys) == 1 and "d" not in keys[0] and keys[0]["kty"] == "EC"


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("mm_nobody", "x"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, "wrong-secret", 401, "invalid_client"),
        ({"grant_type": "password", "username": "a", "password": "b"}, None, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "audit:record"}, None, 400, "invalid_scope"),
        ({}, None, 400, "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_get_oauth_errors(
    client: TestClient, service: tuple[str, str], data: dict[str, str], auth: object, status: int, error: str
) -> None:
    credentials = service if auth is None else ((service[0], "not-the-secret") if auth == "wrong-secret" else auth)
    response = client.post("/oauth/token", data=data, auth=credentials)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def forged(provider: Provider, header: dict[str, str], key: object, **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": provider.issuer,
        "aud": provider.audience,
        "exp": now + 300,
        "iat": now,
        "jti": "x1",
        "client_id": "c",
        "sub": "c",
    }
    body.update(claims)
    return jwt.encode(header, body, key, algorithms=[header["alg"]])  # type: ignore[arg-type]


def test_alg_none_is_rejected(provider: Provider) -> None:
    segments = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in (
            {"alg": "none", "typ": "at+jwt"},
            {"iss": provider.issuer, "aud": provider.audience, "exp": 9999999999},
        )
    ]
    with pytest.raises(TokenRejected):
        provider.verify_access_token(".".join(segments) + ".")


def test_hs256_keyed_with_the_public_key_is_rejected(provider: Provider) -> None:
    public = json.dumps(provider.jwks()["keys"][0]).encode()
    token = forged(provider, {"alg": "HS256", "typ": "at+jwt"}, OctKey.import_key(public))
    with pytest.raises(TokenRejected, match="signature"):
        provider.verify_access_token(token)


def test_a_token_signed_by_another_key_is_rejected(provider: Provider) -> None:
    token = forged(provider, {"alg": "ES256", "typ": "at+jwt"}, ECKey.generate_key("P-256"))
    with pytest.raises(TokenRejected, match="signature"):
        provider.verify_access_token(token)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://elsewhere.example/api"}, "claims"),
        ({"iss": "https://evil.example"}, "claims"),
        ({"exp": int(time.time()) - 10}, "claims"),
    ],
)
def test_wrong_audience_issuer_and_expired_tokens_are_rejected(
    provider: Provider, claims: dict[str, object], reason: str
) -> None:
    token = forged(provider, {"alg": "ES256", "typ": "at+jwt"}, provider.key, **claims)
    with pytest.raises(TokenRejected, match=reason):
        provider.verify_access_token(token)


def test_an_id_token_shaped_jwt_is_not_an_access_token(provider: Provider) -> None:
    token = forged(provider, {"alg": "ES256", "typ": "JWT"}, provider.key)
    with pytest.raises(TokenRejected, match="typ"):
        provider.verify_access_token(token)


def test_a_revoked_token_stops_working_and_introspects_inactive(
    client: TestClient, provider: Provider, service: tuple[str, str]
) -> None:
    access = str(token_for(client, *service)["access_token"])
    active = client.post("/oauth/introspect", data={"token": access}, auth=service).json()
    assert "active" in active, active
    assert active["active"] is True and active["client_id"] == service[0]
    assert client.post("/oauth/revoke", data={"token": access}, auth=service).status_code == 200
    with pytest.raises(TokenRejected, match="revoked"):
        provider.verify_access_token(access)
    assert client.post("/oauth/introspect", data={"token": access}, auth=service).json() == {"active": False}


def test_introspection_needs_client_authentication(client: TestClient, service: tuple[str, str]) -> None:
    access = str(token_for(client, *service)["access_token"])
    assert client.post("/oauth/introspect", data={"token": access}).status_code == 401


def test_every_refused_token_request_is_an_authentication_event(
    client: TestClient, platform: Platform, service: tuple[str, str]
) -> None:
    client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(service[0], "guessed"))
    platform.events.flush()
    refused = find_events(platform.database, EventQuery(class_uid=3002, text="token request"))
    assert len(refused) == 1 and "invalid_client" in refused[0]["message"] and refused[0]["status_id"] == 2

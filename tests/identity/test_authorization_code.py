"""A resident lets an app in — sign-in, consent screen, code with PKCE, tokens — and an attacker tries to
steal, replay or stretch every piece of it."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from machimori.consent.purposes import DPV
from machimori.consent.records import ConsentState
from machimori.events import EventQuery, find_events
from machimori.identity.accounts import Kind
from machimori.identity.oauth.clients import register_client
from machimori.platform import Platform

PASSWORD = "みなとまちの海は青い 2026"
REDIRECT = "http://127.0.0.1:8765/callback"
PURPOSE = DPV + "ServiceProvision"
OTHER_PURPOSE = DPV + "Marketing"


@dataclass
class App:
    client_id: str
    secret: str | None


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@pytest.fixture
def app(platform: Platform) -> App:
    client_id, secret = register_client(
        platform.database,
        "港町 子育てアプリ",
        org="minato-kosodate",
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile personal:read",
        redirect_uris=[REDIRECT],
        public=True,
    )
    return App(client_id, secret)


@pytest.fixture
def hanako(platform: Platform) -> str:
    return platform.accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)


def authorize_url(app: App, pkce: Pkce, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile personal:read",
        "state": "st-123",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "purpose": PURPOSE,
        **overrides,
    }
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v != ""})


def sign_in(client: TestClient, login: str = "hanako") -> None:
    answer = client.post("/signin", data={"login": login, "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def consent_form(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found is not None
    return found.group(1)


def approve(client: TestClient, app: App, pkce: Pkce, decision: str = "approve", **overrides: str) -> dict[str, str]:
    url = authorize_url(app, pkce, **overrides)
    csrf = consent_form(client, url)
    answer = client.post(url, data={"csrf": csrf, "decision": decision}, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange(client: TestClient, app: App, code: str, verifier: str) -> tuple[int, dict[str, object]]:
    answer = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    return answer.status_code, dict(answer.json())


def tokens_for(client: TestClient, app: App) -> dict[str, object]:
    pkce = Pkce.new()
    code = approve(client, app, pkce)["code"]
    status, tokens = exchange(client, app, code, pkce.verifier)
    assert status == 200, tokens
    return tokens


def read_profile(client: TestClient, token: object, resident: str, purpose: str = PURPOSE) -> int:
    headers = {"Authorization": f"Bearer {token}", "Data-Purpose": purpose}
    return client.get(f"/api/v1/residents/{resident}/profile", headers=headers).status_code


def refresh(client: TestClient, app: App, token: object) -> tuple[int, dict[str, object]]:
    answer = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": str(token), "client_id": app.client_id}
    )
    return answer.status_code, dict(answer.json())


def test_a_resident_signs_in_consents_and_the_app_reads_her_data(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    pkce = Pkce.new()
    first = client.get(authorize_url(app, pkce), follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/signin?next=%2Foauth%2Fauthorize")
    signin = client.post(
        "/signin",
        data={"login": "hanako", "password": PASSWORD, "next": authorize_url(app, pkce)},
        follow_redirects=False,
    )
    assert signin.status_code == 303 and signin.headers["location"] == authorize_url(app, pkce)
    page = client.get(authorize_url(app, pkce))
    assert "港町 子育てアプリ" in page.text and "サービスの提供" in page.text
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    answer = approve(client, app, pkce)
    assert answer["state"] == "st-123"
    assert platform.consent.state(hanako, app.client_id, PURPOSE) is ConsentState.given

    status, tokens = exchange(client, app, answer["code"], pkce.verifier)
    assert status == 200, tokens
    claims = platform.oauth.verify_access_token(str(tokens["access_token"])).claims
    assert claims["sub"] == hanako and claims["purposes"] == [PURPOSE]
    assert (claims["acr"], claims["amr"]) == ("urn:machimori:aal1", ["pwd"]) and claims["auth_time"] > 0
    id_token = jwt.decode(str(tokens["id_token"]), KeySet.import_key_set(client.get("/oauth/jwks").json()))
    assert id_token.claims["aud"] == [app.client_id] and id_token.claims["sub"] == hanako
    assert id_token.claims["name"] == "山田花子" and id_token.header["alg"] == "ES256"

    userinfo = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.json() == {"sub": hanako, "name": "山田花子", "preferred_username": "hanako"}
    assert read_profile(client, tokens["access_token"], hanako) == 200
    accesses = client.get("/api/v1/me/accesses").json()
    assert accesses[0]["service"] == app.client_id and accesses[0]["permitted"] is True


def test_withdrawing_consent_kills_the_apps_tokens_at_the_next_request(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    sign_in(client)
    tokens = tokens_for(client, app)
    assert read_profile(client, tokens["access_token"], hanako) == 200
    withdrawn = client.post("/api/v1/me/consents/withdraw", json={"service": app.client_id, "purpose": PURPOSE})
    assert withdrawn.status_code == 200
    assert read_profile(client, tokens["access_token"], hanako) == 401
    status, answer = refresh(client, app, tokens["refresh_token"])
    assert status == 400 and answer["error"] == "invalid_grant"
    assert platform.oauth.authorizations.of_resident(hanako) == []


def test_refresh_tokens_rotate_and_a_replayed_one_revokes_the_whole_grant(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    sign_in(client)
    tokens = tokens_for(client, app)
    status, second = refresh(client, app, tokens["refresh_token"])
    assert status == 200 and second["refresh_token"] != tokens["refresh_token"]
    assert read_profile(client, second["access_token"], hanako) == 200
    status, replay = refresh(client, app, tokens["refresh_token"])  # the thief's copy
    assert status == 400 and replay["error"] == "invalid_grant"
    assert read_profile(client, second["access_token"], hanako) == 401
    status, answer = refresh(client, app, second["refresh_token"])
    assert status == 400 and answer["error"] == "invalid_grant"
    platform.events.flush()
    reuse = find_events(platform.database, EventQuery(text="refresh-token-reuse"))
    assert len(reuse) == 1 and reuse[0]["severity_id"] == 4


def test_a_code_used_twice_is_refused_and_revokes_what_it_gave(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    sign_in(client)
    pkce = Pkce.new()
    code = approve(client, app, pkce)["code"]
    status, tokens = exchange(client, app, code, pkce.verifier)
    assert status == 200
    status, again = exchange(client, app, code, pkce.verifier)
    assert status == 400 and again["error"] == "invalid_grant"
    assert read_profile(client, tokens["access_token"], hanako) == 401


def test_pkce_mismatch_and_missing_verifier_get_errors(client: TestClient, app: App, hanako: str) -> None:
    sign_in(client)
    pkce = Pkce.new()
    code = approve(client, app, pkce)["code"]
    status, answer = exchange(client, app, code, Pkce.new().verifier)
    assert status == 400 and answer["error"] == "invalid_grant"
    code = approve(client, app, pkce)["code"]
    answer = dict(
        client.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": app.client_id,
            },
        ).json()
    )
    assert answer["error"] == "invalid_request"


@pytest.mark.parametrize(
    "overrides",
    [{"code_challenge": ""}, {"code_challenge_method": "plain"}, {"purpose": "https://evil.example/Anything"}],
)
def test_requests_without_s256_pkce_or_with_unknown_purposes_go_back_with_an_error(
    client: TestClient, app: App, hanako: str, overrides: dict[str, str]
) -> None:
    sign_in(client)
    answer = client.get(authorize_url(app, Pkce.new(), **overrides), follow_redirects=False)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["st-123"]


@pytest.mark.parametrize(
    "overrides",
    [{"redirect_uri": "https://evil.example/steal"}, {"redirect_uri": REDIRECT + "/extra"}, {"client_id": "mm_nobody"}],
)
def test_an_unregistered_redirect_uri_or_client_gets_a_page_never_a_redirect(
    client: TestClient, app: App, hanako: str, overrides: dict[str, str]
) -> None:
    sign_in(client)
    answer = client.get(authorize_url(app, Pkce.new(), **overrides), follow_redirects=False)
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "invalid" in answer.text


def test_denying_records_a_refusal_and_tells_the_app(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    sign_in(client)
    answer = approve(client, app, Pkce.new(), decision="deny")
    assert answer["error"] == "access_denied" and "code" not in answer
    assert platform.consent.state(hanako, app.client_id, PURPOSE) is ConsentState.refused


def test_the_consent_form_needs_its_csrf_token_and_a_session(client: TestClient, app: App, hanako: str) -> None:
    sign_in(client)
    url = authorize_url(app, Pkce.new())
    forged = client.post(url, data={"csrf": "0" * 64, "decision": "approve"}, follow_redirects=False)
    assert forged.status_code == 403 and "location" not in forged.headers
    csrf = consent_form(client, url)
    other_request = authorize_url(app, Pkce.new(), state="other")  # a token for one request is not for another
    assert client.post(other_request, data={"csrf": csrf, "decision": "approve"}).status_code == 403
    client.cookies.clear()
    assert client.post(url, data={"csrf": csrf, "decision": "approve"}, follow_redirects=False).status_code == 403


def test_a_code_is_bound_to_the_client_it_was_issued_to(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    other_id, _ = register_client(
        platform.database,
        "別のアプリ",
        org=None,
        grant_types=["authorization_code"],
        scope="openid",
        redirect_uris=[REDIRECT],
        public=True,
    )
    sign_in(client)
    pkce = Pkce.new()
    code = approve(client, app, pkce)["code"]
    status, answer = exchange(client, App(other_id, None), code, pkce.verifier)
    assert status == 400 and answer["error"] == "invalid_grant"


def test_a_token_one_resident_authorized_does_not_reach_another_residents_data(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    taro = platform.accounts.create(Kind.resident, "taro", "山田太郎", PASSWORD)
    platform.consent.give(taro, app.client_id, PURPOSE)
    sign_in(client)
    tokens = tokens_for(client, app)
    assert read_profile(client, tokens["access_token"], taro) == 403
    assert read_profile(client, tokens["access_token"], hanako, OTHER_PURPOSE) == 403


def test_sign_in_never_sends_the_browser_to_another_site(client: TestClient, hanako: str) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        answer = client.post(
            "/signin", data={"login": "hanako", "password": PASSWORD, "next": target}, follow_redirects=False
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_wrong_password_on_the_form_shows_the_form_again(client: TestClient, hanako: str) -> None:
    answer = client.post("/signin", data={"login": "hanako", "password": "not her password at all", "next": "/"})
    assert answer.status_code == 401 and "ログイン名かパスワードが違います" in answer.text
    assert "mm_session" not in answer.headers.get("set-cookie", "")


def test_a_resident_lists_her_apps_and_shuts_one_out_but_not_another_residents(
    client: TestClient, platform: Platform, app: App, hanako: str
) -> None:
    sign_in(client)
    tokens = tokens_for(client, app)
    apps = client.get("/api/v1/me/apps").json()
    assert [(a["client_id"], a["purposes"]) for a in apps] == [(app.client_id, [PURPOSE])]
    platform.accounts.create(Kind.resident, "taro", "山田太郎", PASSWORD)
    client.cookies.clear()
    sign_in(client, "taro")
    assert client.delete(f"/api/v1/me/apps/{apps[0]['grant']}").status_code == 404  # not his
    assert read_profile(client, tokens["access_token"], hanako) == 200
    client.cookies.clear()
    sign_in(client)
    assert client.delete(f"/api/v1/me/apps/{apps[0]['grant']}").status_code == 204
    assert read_profile(client, tokens["access_token"], hanako) == 401
    assert client.get("/api/v1/me/apps").json() == []

"""The service plane in `machimori demo`: over HTTP, as a resident's browser, an app and a service do it."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient
from rich.console import Console

from machimori.consent.purposes import DPV
from machimori.identity.accounts import Kind
from machimori.identity.oauth.clients import register_client
from machimori.identity.passwords import PasswordRejected
from machimori.identity.soft_authenticator import SoftAuthenticator
from machimori.platform import Platform

DEMO_PASSWORD = "みなとまちの海は青い 2026"
DEMO_REDIRECT = "http://127.0.0.1:8765/callback"


def run_service_plane_demo(console: Console, platform: Platform, client: TestClient) -> None:
    """A resident proves who she is, signs in with a passkey, lets an app in on the consent screen, and
    services are permitted or denied exactly as her consent says, from the very next request on."""
    console.rule(
        "サービス: 本人確認・認証・認可・同意 / service plane: identity, authentication, authorization, consent"
    )
    accounts = platform.accounts
    try:
        accounts.create(Kind.resident, "hanako", "山田花子", "password12345678")
    except PasswordRejected as refused:
        console.print(f"弱いパスワードは拒否 / a weak password is refused: {refused}", markup=False)
    hanako = accounts.create(Kind.resident, "hanako", "山田花子", DEMO_PASSWORD)
    clerk = accounts.create(Kind.staff, "clerk1", "窓口職員", "港町の灯台は白い 2026 年", org="minato-city")
    platform.assurance.record_proof(hanako, 3, "jpki", "JPKI 署名用電子証明書を検証", verified_by=clerk)
    console.print(f"身元確認 / identity proven: IAL{platform.assurance.ial(hanako)} (JPKI, verified by clerk1)")

    client.post("/api/v1/session", json={"login": "hanako", "password": DEMO_PASSWORD})
    phone = SoftAuthenticator(platform.passkeys.origin)
    client.post("/api/v1/me/passkeys", json=phone.create(client.post("/api/v1/me/passkeys/options").text))
    client.delete("/api/v1/session")
    client.cookies.clear()
    options = client.post("/api/v1/session/passkey/options", json={"login": "hanako"}).text
    credential = phone.get(options, platform.passkeys.rp_id)
    session = client.post("/api/v1/session/passkey", json={"login": "hanako", "credential": credential}).json()
    console.print(
        f"パスキーでサインイン / signed in with a passkey: {session['acr']} amr={session['amr']}", markup=False
    )

    purpose = DPV + "ServiceProvision"
    app_id, _ = register_client(
        platform.database,
        "港町 子育てアプリ",
        org="minato-kosodate",
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile personal:read",
        redirect_uris=[DEMO_REDIRECT],
        public=True,
    )
    tokens = _authorize_app(client, app_id, purpose)
    claims = json.loads(base64.urlsafe_b64decode(str(tokens["access_token"]).split(".")[1] + "=="))
    console.print(
        f"同意画面で承認 → アプリのトークン / approved on the consent screen → the app's token: "
        f"sub=hanako acr={claims['acr']} amr={claims['amr']} purposes={claims['purposes']}",
        markup=False,
    )

    bus_id, secret = register_client(
        platform.database,
        "港町バス 運行サービス",
        org="minato-bus",
        grant_types=["client_credentials"],
        scope="city:read personal:read consent:read",
    )
    assert secret is not None
    bus = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(bus_id, secret)).json()
    with receiver("/consent-events") as (endpoint, received):
        client.put(
            "/api/v1/consent-events/subscription",
            json={"endpoint": endpoint},
            headers={"Authorization": f"Bearer {bus['access_token']}"},
        )
        _reads(console, client, hanako, purpose, tokens, bus, app_id, bus_id)
        deadline = time.monotonic() + 10  # the server's delivery loop may be sending them already
        while len(received) < 2 and time.monotonic() < deadline:
            platform.consent_notifications.deliver_due()
            time.sleep(0.05)
        console.print(
            "バス会社が受け取った同意の変更 (RFC 8417 SET、ES256 署名) / consent changes pushed to the bus company:"
        )
        changes = [
            change
            for token in received
            for change in json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["events"].values()
        ]
        for change in sorted(changes, key=lambda change: str(change["changed_at"])):
            console.print(f"  {change['state']:9} {change['purpose']}  ({change['changed_at'][:19]})", markup=False)
    _accesses(console, client, {app_id: "子育てアプリ", bus_id: "港町バス"})


def _reads(
    console: Console,
    client: TestClient,
    hanako: str,
    purpose: str,
    tokens: dict[str, object],
    bus: dict[str, object],
    app_id: str,
    bus_id: str,
) -> None:
    """The app and the bus company read Hanako's data before and after she gives and withdraws consent."""

    def read(label: str, token: object) -> None:
        headers = {"Authorization": f"Bearer {token}", "Data-Purpose": purpose}
        answer = client.get(f"/api/v1/residents/{hanako}/profile", headers=headers)
        said = answer.json().get("display_name") or answer.json().get("detail")
        console.print(f"  {label}: {answer.status_code} {said}", markup=False)

    console.print(
        "個人データの読み取り (毎回 decide() が判断し、監査ログへ) / reading personal data, decided per request:"
    )
    read("アプリ (同意済み) / the app, consented", tokens["access_token"])
    read("バス会社 (同意なし) / the bus company, no consent", bus["access_token"])
    client.post("/api/v1/me/consents", json={"service": bus_id, "purpose": purpose})
    read("バス会社 (同意後) / the bus company, after consent", bus["access_token"])
    client.post("/api/v1/me/consents/withdraw", json={"service": bus_id, "purpose": purpose})
    read("バス会社 (撤回の直後) / the bus company, the very next request after withdrawal", bus["access_token"])
    client.post("/api/v1/me/consents/withdraw", json={"service": app_id, "purpose": purpose})
    read("アプリ (撤回後、トークンも失効) / the app after withdrawal: its token is revoked", tokens["access_token"])


def _accesses(console: Console, client: TestClient, names: dict[str, str]) -> None:
    console.print(
        "花子さんが見る利用履歴 / what Hanako sees: who used her data, when, for what (each provable in the audit log)"
    )
    for access in client.get("/api/v1/me/accesses").json():
        verdict = "許可 / permitted" if access["permitted"] else "拒否 / denied"
        console.print(
            f"  {access['time'][:19]}  {names[access['service']]}  {verdict}  (audit #{access['audit_index']})",
            markup=False,
        )


@contextmanager
def receiver(path: str) -> Iterator[tuple[str, list[str]]]:
    """A service's endpoint for what the platform pushes (consent changes, notifications), on loopback:
    it keeps the bodies it is sent."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            self.send_response(202)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}", received
    finally:
        server.shutdown()
        server.server_close()


def _authorize_app(client: TestClient, app_id: str, purpose: str) -> dict[str, object]:
    """What the resident's browser and the app do: authorization request, consent screen, code for tokens."""
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app_id,
            "redirect_uri": DEMO_REDIRECT,
            "scope": "openid profile personal:read",
            "state": secrets.token_urlsafe(8),
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "purpose": purpose,
        }
    )
    screen = client.get(f"/oauth/authorize?{query}").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', screen)
    assert csrf is not None
    approved = client.post(
        f"/oauth/authorize?{query}", data={"csrf": csrf.group(1), "decision": "approve"}, follow_redirects=False
    )
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT}
    return dict(client.post("/oauth/token", data={**form, "client_id": app_id, "code_verifier": verifier}).json())

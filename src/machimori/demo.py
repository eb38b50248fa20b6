"""`machimori demo`: every capability on the example town, then the server on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient
from rich.console import Console

from machimori.audit.checks import verify_export
from machimori.config import Settings
from machimori.consent.purposes import DPV
from machimori.events import EventQuery, find_events
from machimori.governance.served import LoadedCity, load_city
from machimori.governance.workflow import example_town
from machimori.identity.accounts import Kind
from machimori.identity.oauth.clients import register_client
from machimori.identity.passwords import PasswordRejected
from machimori.identity.soft_authenticator import SoftAuthenticator
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

DEMO_ORIGIN = "minatomachi.example/audit"
DEMO_PASSWORD = "みなとまちの海は青い 2026"
DEMO_REDIRECT = "http://127.0.0.1:8765/callback"


def demo_settings(out_dir: Path, port: int) -> Settings:
    """Embedded defaults for the demo: its own data folder, loopback, the example town."""
    return Settings(
        data_dir=out_dir / "data", port=port, audit_origin=DEMO_ORIGIN, city_model=example_town(), log_level="WARNING"
    )


def run_platform_demo(console: Console, settings: Settings) -> list[str]:
    """Record, prove, export, verify and tamper on the demo's audit log; returns what to print when serving."""
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # the demo starts from nothing each time
    assert settings.city_model is not None
    city = load_city(settings.city_model)
    platform = open_platform(settings)
    admin = platform.first_admin_token or ""
    try:
        with TestClient(create_app(platform, city=city, close_platform=False), base_url="http://localhost") as client:
            lines = _record(console, platform, client, city, admin)
            _service_plane(console, platform, client)
        _verify(console, platform, settings.data_dir.parent)
        platform.events.flush()
        _events(console, platform)
    finally:
        platform.close()
    return lines


def _record(console: Console, platform: Platform, client: TestClient, city: LoadedCity, admin: str) -> list[str]:
    console.rule("監査ログ / the tamper-evident audit log (RFC 9162, C2SP checkpoints)")
    headers = {"Authorization": f"Bearer {admin}"}
    recorder = client.post(
        "/api/v1/tokens", json={"name": "港町交通 (bus operator)", "role": "recorder"}, headers=headers
    )
    recorder_token = recorder.json()["token"]
    auditor = client.post("/api/v1/tokens", json={"name": "監査人 (auditor)", "role": "auditor"}, headers=headers)
    auditor_token = auditor.json()["token"]
    report_hash = hashlib.sha256(city.html.encode()).hexdigest()
    platform.audit.append_sync(
        {
            "action": "governance.assessment",
            "city": city.summary["city"]["id"],
            "findings": city.summary["assessment"]["findings_total"],
            "report_sha256": report_hash,
        }
    )
    bus = {"Authorization": f"Bearer {recorder_token}"}
    for stop in ("港町駅前", "市役所前", "港町病院"):
        client.post(
            "/api/v1/audit/entries",
            json={"system": "minato-bus", "action": "timetable.change", "stop": stop},
            headers=bus,
        )
    client.post("/api/v1/audit/entries", json={"forged": True}, headers={"Authorization": "Bearer guessed-token"})
    note = client.get("/api/v1/audit/checkpoint").text
    size = int(note.splitlines()[1])
    proof = client.get("/api/v1/audit/proof/inclusion", params={"index": 2, "tree_size": size}).json()
    console.print(
        f"記録 {size} 件 / {size} entries recorded (first-run, assessment, tokens, the bus operator's changes)"
    )
    console.print("署名付きチェックポイント / signed checkpoint:")
    console.print(note, markup=False, end="")
    console.print(f"包含証明 / inclusion proof of entry 2 in tree {size}: {len(proof['hashes'])} hashes")
    console.print("偽トークンでの記録は拒否 / an append with a guessed token was refused (401) and became an event")
    return [
        f"  admin token (shown once): {admin}",
        f"  auditor token: {auditor_token}",
        f"  recorder token (港町交通): {recorder_token}",
    ]


def _service_plane(console: Console, platform: Platform, client: TestClient) -> None:
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
        scope="city:read personal:read",
    )
    assert secret is not None
    bus = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(bus_id, secret)).json()

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
    console.print(
        "花子さんが見る利用履歴 / what Hanako sees: who used her data, when, for what (each provable in the audit log)"
    )
    names = {app_id: "子育てアプリ", bus_id: "港町バス"}
    for access in client.get("/api/v1/me/accesses").json():
        verdict = "許可 / permitted" if access["permitted"] else "拒否 / denied"
        console.print(
            f"  {access['time'][:19]}  {names[access['service']]}  {verdict}  (audit #{access['audit_index']})",
            markup=False,
        )


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


def _verify(console: Console, platform: Platform, out_dir: Path) -> None:
    console.rule("検証 / verification by someone who only has the public key")
    export = out_dir / "audit-export.jsonl"
    key = out_dir / "city-audit.vkey"
    key.write_text(str(platform.audit.verifiers[0]) + "\n", encoding="ascii")
    with export.open("w", encoding="utf-8") as handle:
        handle.writelines(platform.audit.export())
    report = verify_export(export, platform.audit.verifiers, None)
    console.print(f"{export}: {'OK' if report.ok else 'TAMPERED'} — {report.entries} entries")
    tampered = out_dir / "audit-export-tampered.jsonl"
    tampered.write_text(export.read_text(encoding="utf-8").replace("港町病院", "港町公園"), encoding="utf-8")
    bad = verify_export(tampered, platform.audit.verifiers, None)
    console.print(f"{tampered}: 1 か所を書き換え / one word changed →")
    for finding in bad.findings:
        console.print("  " + finding.describe(), markup=False)
    console.print(f"自分で確かめる / try it: machimori audit verify --log {tampered} --key {key}")


def _events(console: Console, platform: Platform) -> None:
    console.rule("セキュリティイベント / security events (OCSF-shaped)")
    for event in reversed(find_events(platform.database, EventQuery(limit=8))):
        console.print(
            f"  {event['time_dt']}  class {event['class_uid']}  sev {event['severity_id']}  {event['message']}",
            markup=False,
        )

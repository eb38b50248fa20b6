"""`machimori demo`: every capability on the example town, then the server on loopback."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from rich.console import Console

from machimori.audit.checks import verify_export
from machimori.config import Settings
from machimori.demo_detection import run_detection_demo
from machimori.demo_gateway import run_asset_plane_demo
from machimori.demo_hub import run_city_os_demo
from machimori.demo_service import run_service_plane_demo
from machimori.detection.synthetic import DARKNET
from machimori.events import EventQuery, find_events
from machimori.governance.served import LoadedCity, load_city
from machimori.governance.workflow import example_town
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

DEMO_ORIGIN = "minatomachi.example/audit"


def demo_settings(out_dir: Path, port: int) -> Settings:
    """Embedded defaults for the demo: its own data folder, loopback, the example town."""
    town = example_town()
    return Settings(
        data_dir=out_dir / "data",
        port=port,
        audit_origin=DEMO_ORIGIN,
        city_model=town,
        device_models=town.parent / "device-models.yaml",
        log_level="WARNING",
        detection_darknet=[DARKNET],
        detection_quarantine=["scanning", "command-and-control"],
        detection_identity="港町 / Minatomachi",
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
            run_service_plane_demo(console, platform, client)
            run_city_os_demo(console, platform, client)
            run_asset_plane_demo(console, platform, client, {"Authorization": f"Bearer {admin}"})
            run_detection_demo(console, platform, client, {"Authorization": f"Bearer {admin}"})
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

"""The asset plane in `machimori demo`: simulated sensors sending signed readings into the hub, misbehaving ones
refused and quarantined, and device audits that find a Mirai default credential — by record and by probe."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from rich.console import Console

from machimori.gateway.models import DeviceModel, load_models
from machimori.gateway.probing import probe_devices
from machimori.gateway.readings import count_readings
from machimori.gateway.simulate import TelnetLogin, provision, public_key_text, run_http, run_mqtt
from machimori.identity.tokens import Role, create_token
from machimori.platform import Platform

AIR = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
TEMPERATURE = "https://smartdatamodels.org/dataModel.Environment/temperature"
BROKER = "mqtt://127.0.0.1:1883"


def run_asset_plane_demo(console: Console, platform: Platform, client: TestClient, admin: dict[str, str]) -> None:
    """Sensors provisioned, readings verified and stored, attackers quarantined, audits and a probe."""
    console.rule("アセット: IoT ゲートウェイ / asset plane: signed telemetry (COSE), quarantine, device audits")
    models = load_models(platform.settings.device_models)
    fleet = provision(
        client,
        admin,
        models["soyokaze-aq-300"],
        6,
        owner="minato-city",
        vendor="soyokaze-kankyo",
        prefix="env",
        firmware="2.5.1",
    )
    roles = ", ".join(f"{device.client.device_id} {device.behaviour}" for device in fleet[3:])
    tally = run_http(client, fleet, 60, rate=500)
    console.print(
        f"環境センサー 6 台が署名付きで 60 件送信（うち不正 3 台: {roles}）/ 6 sensors sent 60 signed readings over HTTP:"
    )
    console.print("  " + ", ".join(f"{outcome} {count}" for outcome, count in tally.most_common()), markup=False)
    sensors = client.get("/open-data/v1/entities", params={"type": AIR}).json()
    first = next(entity for entity in sensors if entity["id"].endswith(":env-0001"))
    temperature = first[TEMPERATURE]
    console.print(
        f"  ハブの AirQualityObserved（オープンデータ）/ in the hub: {len(sensors)} sensors; env-0001 temperature "
        f"{temperature['value']} {temperature['unitCode']} observedAt {temperature['observedAt']}",
        markup=False,
    )
    quarantined = client.get("/api/v1/devices", params={"status": "quarantined"}, headers=admin).json()
    console.print(f"  ポリシーで隔離 / quarantined by policy: {[device['id'] for device in quarantined]}", markup=False)
    forger = fleet[3]
    again = run_http(client, [forger], 1, rate=100)
    console.print(f"  隔離中の機器が送り続ける / the quarantined forger keeps sending → {dict(again)}", markup=False)
    _, auditor_secret = create_token(platform.database, "監査人 (device auditor)", Role.auditor)
    auditor = {"Authorization": f"Bearer {auditor_secret}"}
    reason = {"reason": "鍵を入れ替えて再設置 / key replaced on site"}
    denied = client.post(f"/api/v1/devices/{forger.client.device_id}/release", json=reason, headers=auditor)
    released = client.post(f"/api/v1/devices/{forger.client.device_id}/release", json=reason, headers=admin)
    console.print(
        f"  隔離の解除 / release: by the auditor → {denied.status_code}; by the admin with a reason → "
        f"{released.status_code} {released.json()['status']} (audit-logged)",
        markup=False,
    )
    _mqtt(console, platform, client, admin, models)
    _audits(console, platform, client, admin)


def _mqtt(
    console: Console, platform: Platform, client: TestClient, admin: dict[str, str], models: dict[str, DeviceModel]
) -> None:
    """The same over MQTT, when the demo's machine has a broker on 1883 (the gateway's workers run in serve)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from machimori.config import Settings
    from machimori.gateway.mqtt import start_mqtt_workers

    broker = urlsplit(BROKER)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        publisher.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    except OSError:
        console.print(f"  MQTT: {BROKER} に接続できないため省略 / no broker at {BROKER}: MQTT part skipped")
        return
    publisher.loop_start()
    topic = f"machimori-demo/{time.time_ns()}"
    settings = Settings(gateway_mqtt_url=BROKER, gateway_mqtt_topic=topic, gateway_mqtt_workers=2)
    workers = start_mqtt_workers(settings, client.app.state.assets.gateway)  # type: ignore[attr-defined]
    try:
        for worker in workers:
            worker.subscribed.wait(10)
        fleet = provision(
            client,
            admin,
            models["soyokaze-aq-300"],
            4,
            owner="minato-city",
            vendor="soyokaze-kankyo",
            prefix="mq",
            protocol="mqtt",
            misbehaving=False,
            firmware="2.5.1",
        )
        before = count_readings(platform.database)
        published = run_mqtt(publisher, fleet, 40, rate=500, topic=topic)
        deadline = time.monotonic() + 20
        while count_readings(platform.database) - before < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        stored = count_readings(platform.database) - before
        console.print(
            f"  MQTT（Mosquitto、共有購読で 2 ワーカー）/ over MQTT, 2 workers on one shared subscription: "
            f"published {published['published']}, stored {stored}",
            markup=False,
        )
    finally:
        for worker in workers:
            worker.close()
        publisher.disconnect()
        publisher.loop_stop()


def _audits(console: Console, platform: Platform, client: TestClient, admin: dict[str, str]) -> None:
    """Two river cameras: one with its own strong login, an old one still on the Mirai default — which the
    audit finds from its fingerprint, and the probe proves by logging in (on loopback: a simulated camera)."""
    assets = client.app.state.assets  # type: ignore[attr-defined]
    with TelnetLogin("root", "xc3511") as old_camera:
        for device_id, firmware, (username, password), endpoints in (
            ("cam-kawaguchi", "5.3.0", ("admin", "k7#Rv!q2Lw9z@Tn4"), []),
            ("cam-ohashi", "4.9.2", ("root", "xc3511"), [f"telnet://127.0.0.1:{old_camera.port}"]),
        ):
            body = {
                "id": device_id,
                "model": "toko-rc-200",
                "owner": "minato-bousai",
                "public_key": public_key_text(Ed25519PrivateKey.generate()),
                "firmware": firmware,
                "address": "127.0.0.1",
                "management_username": username,
                "management_password": password,
                "management_endpoints": endpoints,
            }
            client.post("/api/v1/devices", json=body, headers=admin)
        findings = client.get("/api/v1/devices/audit", headers=admin).json()
        console.print("機器の監査 / device audits (as AWS IoT Device Defender and NICT's NOTICE):")
        for finding in findings:
            console.print(
                f"  {finding['severity']:8} {finding['device']:14} {finding['check']}: {finding['message']}",
                markup=False,
            )
        report = asyncio.run(probe_devices(assets.registry, device_ids=["cam-ohashi"], rate_per_second=20, timeout=2))
    for outcome in report.outcomes:
        console.print(
            f"  能動確認 / active probe of cam-ohashi {outcome.protocol}://{outcome.host}:{outcome.port} → "
            f"{outcome.outcome} ({outcome.username}, {outcome.source})",
            markup=False,
        )

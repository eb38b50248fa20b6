"""The city OS plane in `machimori demo`: the NGSI-LD broker, with a token, a purpose and consent on every request."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient
from rich.console import Console

from machimori.consent.purposes import DPV
from machimori.demo_service import receiver
from machimori.identity.oauth.clients import register_client
from machimori.platform import Platform

WATER = "https://smartdatamodels.org/dataModel.Environment/WaterObserved"
WATCH = "https://minatomachi.example/ngsi-ld/WatchedPosition"
NS = "https://minatomachi.example/ngsi-ld/"
NGSI_LD = "/ngsi-ld/v1"
PURPOSE = DPV + "ServiceProvision"
GAUGES = [
    ("境川 河口", 139.610, 35.440, 1.2),
    ("大岡川 橋", 139.625, 35.445, 2.7),
    ("帷子川 上流", 139.590, 35.470, 3.4),
]


def run_city_os_demo(console: Console, platform: Platform, client: TestClient) -> None:
    """Services write and read the city's data through the broker: each request decided on the entity's
    stored type, personal attributes on the resident's consent, notifications re-decided when sent."""
    console.rule("都市OS: NGSI-LD ブローカー / city OS plane: the NGSI-LD broker (ETSI GS CIM 009)")
    _, bousai = _service(platform, client, "minato-bousai", "港町 防災 水位観測")
    care_id, care = _service(platform, client, "aoba-care", "あおば介護 見守りサービス", personal=True)
    _, bus = _service(platform, client, "minato-kotsu", "港町交通 運行管理")
    gauges = [
        {
            "id": f"urn:ngsi-ld:WaterObserved:gauge-{n}",
            "type": WATER,
            "name": name,
            NS + "waterLevel": {"value": level, "unitCode": "MTR", "observedAt": "2026-12-01T09:00:00Z"},
            "location": {"type": "Point", "coordinates": [lon, lat]},
        }
        for n, (name, lon, lat, level) in enumerate(GAUGES, start=1)
    ]
    upsert = client.post(f"{NGSI_LD}/entityOperations/upsert", json=gauges, headers=bousai)
    console.print(
        f"防災課が水位計 {len(gauges)} 件を一括登録 / the disaster office upserts gauges: {upsert.status_code}"
    )
    high = client.get(f"{NGSI_LD}/entities", params={"type": WATER, "q": f"{NS}waterLevel>2.0"}, headers=bus)
    console.print(f"  q=waterLevel>2.0 → {[e['name']['value'] for e in high.json()]}", markup=False)
    near = client.get(
        f"{NGSI_LD}/entities",
        params={
            "type": WATER,
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": "[139.615,35.442]",
        },
        headers=bus,
    )
    console.print(f"  港町駅から 2 km 以内 / within 2 km of the station → {[e['name']['value'] for e in near.json()]}")
    forged = client.patch(
        f"{NGSI_LD}/entities/urn:ngsi-ld:WaterObserved:gauge-1/attrs", json={NS + "waterLevel": 0.1}, headers=bus
    )
    console.print(
        f"  バス会社が水位を書き換えようとする / the bus company tries to overwrite a gauge: {forged.status_code}"
    )

    hanako = platform.accounts.id_of("hanako")
    watch = {
        "id": "urn:ngsi-ld:WatchedPosition:hanako-tag",
        "type": WATCH,
        "location": {"type": "Point", "coordinates": [139.612, 35.441]},
        NS + "batteryLevel": 0.8,
        NS + "refResident": {"type": "Relationship", "object": f"urn:ngsi-ld:Resident:{hanako}"},
        "deviceName": "見守りタグ 7",
    }
    client.post(f"{NGSI_LD}/entities", json=watch, headers=care)
    claimed = {**watch, "id": "urn:ngsi-ld:OpenThing:1"}
    smuggled = client.post(f"{NGSI_LD}/entities", json=claimed, headers=bus)
    console.print(
        f"見守りタグ（個人の位置）/ a watch tag (a resident's position) created by the care service; "
        f"the bus company's `urn:ngsi-ld:OpenThing:1` of that type: {smuggled.status_code} "
        f"({smuggled.json().get('rule')})",
        markup=False,
    )
    with receiver("/notify") as (endpoint, received):
        client.post(
            f"{NGSI_LD}/subscriptions",
            json={
                "type": "Subscription",
                "entities": [{"type": WATCH}],
                "notification": {"endpoint": {"uri": endpoint, "accept": "application/json"}},
            },
            headers=care,
        )
        _moves(console, client, care_id, care, received)
    hidden = client.get(f"{NGSI_LD}/entities/urn:ngsi-ld:WatchedPosition:hanako-tag", headers=bus)
    console.print(f"バス会社から見守りタグは見えない / the bus company cannot see the tag: {hidden.status_code}")
    types = client.get(f"{NGSI_LD}/types", headers=bus).json()["typeList"]
    console.print(f"バス会社が見つけられる型 / types the bus company can discover: {types}", markup=False)
    public = client.get("/open-data/v1/entities", params={"type": WATER, "count": "true"})
    secret = client.get("/open-data/v1/entities", params={"type": WATCH}).json()
    console.print(
        f"オープンデータ（トークン不要）/ open data, no token: {public.headers['NGSILD-Results-Count']} gauges, "
        f"{len(secret)} watch tags"
    )


def _moves(console: Console, client: TestClient, care_id: str, headers: dict[str, str], received: list[str]) -> None:
    """The tag moves three times: before consent, with consent, after withdrawal (Hanako's own choices, from
    her signed-in session); what the care service reads and is notified of each time."""
    for step, (label, consent) in enumerate(
        [("同意なし / no consent", None), ("同意あり / consented", "give"), ("撤回後 / withdrawn", "withdraw")],
        start=1,
    ):
        if consent == "give":
            client.post("/api/v1/me/consents", json={"service": care_id, "purpose": PURPOSE})
        elif consent == "withdraw":
            client.post("/api/v1/me/consents/withdraw", json={"service": care_id, "purpose": PURPOSE})
        before = len(received)
        client.patch(
            f"{NGSI_LD}/entities/urn:ngsi-ld:WatchedPosition:hanako-tag/attrs",
            json={"location": {"type": "Point", "coordinates": [139.612 + step / 1000, 35.441]}},
            headers=headers,
        )
        seen = client.get(f"{NGSI_LD}/entities/urn:ngsi-ld:WatchedPosition:hanako-tag", headers=headers).json()
        deadline = time.monotonic() + 10
        while len(received) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        notified = json.loads(received[-1])["data"][0] if len(received) > before else {}
        console.print(
            f"  {label}: 読み取り / read → {('location' in seen and 'position shown') or 'position withheld'}; "
            f"通知 / notification → {('location' in notified and 'position sent') or 'position withheld'}",
            markup=False,
        )


def _service(
    platform: Platform, client: TestClient, org: str, name: str, *, personal: bool = False
) -> tuple[str, dict[str, str]]:
    scope = "city:read city:write" + (" personal:read" if personal else "")
    client_id, secret = register_client(
        platform.database, name, org=org, grant_types=["client_credentials"], scope=scope
    )
    assert secret is not None
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)).json()
    return client_id, {"Authorization": f"Bearer {token['access_token']}", "Data-Purpose": PURPOSE}

"""Detection through the running platform: sensors submit conn.log batches, findings become events, the
policy quarantines the registered device through the gateway — and every way around that is refused."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from machimori.detection.synthetic import INFECTED, Labelled
from machimori.detection.zeek import conn_log_header
from machimori.identity.tokens import Role
from machimori.platform import Platform

from ..conftest import ADMIN_TOKEN
from ..gateway.conftest import register, send, stored_events
from .conftest import bearer, conn_log_text

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TEXT = {"content-type": "text/plain"}


def submit(client: TestClient, headers: dict[str, str], body: str | bytes) -> dict[str, object]:
    response = client.post("/api/v1/flows", content=body, headers={**headers, **TEXT})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_a_sensor_reports_the_infected_camera_and_the_policy_quarantines_it(
    detect_client: TestClient, detect_platform: Platform, town: list[Labelled]
) -> None:
    camera = register(detect_client, ADMIN, "cam-44", address=INFECTED)
    bystander = register(detect_client, ADMIN, "sensor-10", address="10.20.0.10")
    sensor = bearer(detect_platform, Role.sensor)

    result = submit(detect_client, sensor, conn_log_text(town))

    findings = result["findings"]
    assert isinstance(findings, list) and findings
    assert {finding["device"] for finding in findings} == {INFECTED}
    assert {"scanning", "command-and-control", "ddos"} <= {finding["stage"] for finding in findings}
    assert all(finding["device_id"] == "cam-44" for finding in findings)
    assert result["quarantined"] == ["cam-44"]  # once: the later findings find it already quarantined
    scanning = next(finding for finding in findings if finding["stage"] == "scanning")
    assert scanning["reasons_ja"] and scanning["reasons_en"] and scanning["flow_uids"]

    events = stored_events(detect_platform, class_uid=2004)
    network = [event for event in events if event["unmapped"].get("finding", "").startswith("network-")]
    assert {event["device"]["uid"] for event in network} == {"cam-44"}
    assert all(event["unmapped"]["detection"]["evidence"] for event in network)
    assert detect_client.get("/api/v1/devices/cam-44", headers=ADMIN).json()["status"] == "quarantined"
    assert detect_client.get("/api/v1/devices/sensor-10", headers=ADMIN).json()["status"] == "active"

    # the quarantined camera's telemetry is refused; the bystander's still goes through
    assert send(detect_client, camera.message()).status_code == 403
    assert send(detect_client, bystander.message()).status_code == 200


def test_findings_are_read_by_an_auditor_and_not_by_a_sensor(
    detect_client: TestClient, detect_platform: Platform, town: list[Labelled]
) -> None:
    sensor = bearer(detect_platform, Role.sensor)
    submit(detect_client, sensor, conn_log_text(town))
    auditor = bearer(detect_platform, Role.auditor)

    listed = detect_client.get("/api/v1/detections", headers=auditor)

    assert listed.status_code == 200
    assert {finding["device"] for finding in listed.json()} == {INFECTED}
    assert detect_client.get("/api/v1/detections", headers=sensor).status_code == 403
    assert detect_client.get("/api/v1/detections").status_code == 401


def test_only_a_sensor_or_the_admin_may_submit_flows(detect_client: TestClient, detect_platform: Platform) -> None:
    line = conn_log_header(1.7e9)
    for headers, status in (
        (ADMIN, 200),
        (bearer(detect_platform, Role.sensor), 200),
        ({}, 401),
        ({"Authorization": "Bearer mmk_forged-token-0123456789abcdefghijklmnopqrstu"}, 401),
        (bearer(detect_platform, Role.auditor), 403),
        (bearer(detect_platform, Role.recorder), 403),
    ):
        response = detect_client.post("/api/v1/flows", content=line, headers={**headers, **TEXT})
        assert response.status_code == status, headers
        if status != 200:
            assert response.headers["content-type"].startswith("application/problem+json")


def test_a_sensor_token_cannot_release_or_manage_devices(detect_client: TestClient, detect_platform: Platform) -> None:
    register(detect_client, ADMIN, "cam-44", address=INFECTED)
    sensor = bearer(detect_platform, Role.sensor)
    detect_client.post("/api/v1/devices/cam-44/quarantine", json={"reason": "test"}, headers=ADMIN)

    release = detect_client.post("/api/v1/devices/cam-44/release", json={"reason": "sensor says so"}, headers=sensor)

    assert release.status_code == 403
    assert detect_client.get("/api/v1/devices/cam-44", headers=ADMIN).json()["status"] == "quarantined"


def test_bad_batches_are_refused_with_problem_details(detect_client: TestClient, detect_platform: Platform) -> None:
    sensor = {**bearer(detect_platform, Role.sensor), **TEXT}
    no_header = "1700000000.0\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n"
    for body, status in ((no_header, 400), (b"\xff\xfe\x00garbage", 400), ("{}\n" * 50_001, 413)):
        response = detect_client.post("/api/v1/flows", content=body, headers=sensor)
        assert response.status_code == status, response.text
        assert response.json()["status"] == status


def test_bad_lines_in_a_batch_are_counted_and_the_rest_is_scored(
    detect_client: TestClient, detect_platform: Platform, town: list[Labelled]
) -> None:
    sensor = bearer(detect_platform, Role.sensor)
    text = conn_log_text(town[:50])
    lines = text.splitlines()
    lines.insert(12, "1700000000.0\tCbad\tnot-an-address-but-fine\tabc\t10.0.0.2\t23\ttcp")
    lines.insert(20, "garbage")

    result = submit(detect_client, sensor, "\n".join(lines) + "\n")

    assert result["scored"] == 50
    skipped = result["skipped"]
    assert isinstance(skipped, dict) and sum(skipped.values()) == 2
    problems = result["problems"]
    assert isinstance(problems, list) and any(problem.startswith("request:13:") for problem in problems)


def test_without_a_policy_nothing_is_quarantined(
    client: TestClient, platform: Platform, admin: dict[str, str], town: list[Labelled]
) -> None:
    register(client, admin, "cam-44", address=INFECTED)
    sensor = bearer(platform, Role.sensor)

    result = submit(client, sensor, conn_log_text(town))

    assert result["findings"] and result["quarantined"] == []
    assert client.get("/api/v1/devices/cam-44", headers=admin).json()["status"] == "active"


def test_json_lines_from_zeek_are_taken_as_well(detect_client: TestClient, detect_platform: Platform) -> None:
    sensor = bearer(detect_platform, Role.sensor)
    body = "".join(
        json.dumps(
            {
                "ts": 1_700_000_000.5 + n,
                "uid": f"C{n}",
                "id.orig_h": INFECTED,
                "id.orig_p": 40000,
                "id.resp_h": f"10.20.99.{n}",
                "id.resp_p": 23,
                "proto": "tcp",
                "conn_state": "S0",
                "orig_pkts": 1,
                "orig_ip_bytes": 60,
            }
        )
        + "\n"
        for n in range(1, 30)
    )

    result = submit(detect_client, sensor, body)

    assert result["scored"] == 29
    findings = result["findings"]
    assert isinstance(findings, list) and findings[0]["stage"] == "scanning"
    assert "scan.darknet" in {evidence["code"] for evidence in findings[0]["evidence"]}


def test_what_the_town_found_is_exported_as_stix_without_its_own_addresses(
    detect_client: TestClient, detect_platform: Platform, town: list[Labelled], tmp_path: Path
) -> None:
    from machimori.detection.indicators import IndicatorSet, load_indicators
    from machimori.detection.synthetic import C2_FALLBACK, C2_SERVER, DDOS_TARGET

    submit(detect_client, bearer(detect_platform, Role.sensor), conn_log_text(town))
    auditor = bearer(detect_platform, Role.auditor)

    response = detect_client.get("/api/v1/detections/stix", headers=auditor)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/stix+json")
    bundle = response.json()
    patterns = " ".join(item["pattern"] for item in bundle["objects"] if item["type"] == "indicator")
    assert C2_SERVER in patterns and C2_FALLBACK in patterns and DDOS_TARGET in patterns
    assert "10.20." not in response.text  # the town's own addresses stay inside
    exported = tmp_path / "found.json"
    exported.write_text(response.text, encoding="utf-8")
    then = town[-1].flow.ts  # the indicators are valid for 30 days after they were seen
    reimported = load_indicators(exported, into=IndicatorSet(clock=lambda: then))
    assert reimported.match_address(C2_SERVER) is not None
    assert detect_client.get("/api/v1/detections/stix", headers=bearer(detect_platform, Role.sensor)).status_code == 403

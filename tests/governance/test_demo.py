"""`machimori demo` shows the governance plane working end to end, without touching the example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatomachi" / "city.yaml"


def test_demo_writes_reports_and_closes_three_gaps(tmp_path: Path) -> None:
    example_before = EXAMPLE.read_bytes()
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "machimori.cli", "demo", "--out", str(out), "--no-serve"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "report-ja.html",
        "assessment.json",
        "check-sheet.xlsx",
        "check-sheet.csv",
        "check-sheet.md",
        "ciso-assistant-library.yaml",
        "city.yaml",
        "check-sheet-minato-os.xlsx",
        "report-after-ja.html",
    ):
        assert (out / name).stat().st_size > 0, name
    assert "対策の不足 解消 3・新規 0" in result.stdout
    assert "personal-data-in-open-dataset" in result.stdout
    assert EXAMPLE.read_bytes() == example_before, "the demo must work on a copy"
    # The platform part: the audit log verified, a tampered copy caught, consent withdrawn and obeyed.
    for name in ("audit-export.jsonl", "city-audit.vkey", "audit-export-tampered.jsonl"):
        assert (out / name).stat().st_size > 0, name
    stdout = " ".join(result.stdout.split())
    assert "audit-export.jsonl: OK" in stdout
    assert ": edited — " in stdout
    assert "signed in with a passkey: urn:machimori:aal2" in stdout
    assert "the bus company, no consent: 403" in stdout
    assert "the bus company, after consent: 200 山田花子" in stdout
    assert "the very next request after withdrawal: 403" in stdout and "is withdrawn" in stdout
    assert "its token is revoked: 401" in stdout
    assert "pushed to the bus company: given https://w3id.org/dpv#ServiceProvision" in stdout
    assert "admin token (shown once): mmk_" in stdout
    assert "q=waterLevel>2.0 → ['大岡川 橋', '帷子川 上流']" in stdout
    assert "within 2 km of the station → ['境川 河口', '大岡川 橋']" in stdout
    assert "tries to overwrite a gauge: 404" in stdout and "of that type: 400 (owner-write)" in stdout
    assert "no consent: 読み取り / read → position withheld; 通知 / notification → position withheld" in stdout
    assert "consented: 読み取り / read → position shown; 通知 / notification → position sent" in stdout
    assert "withdrawn: 読み取り / read → position withheld; 通知 / notification → position withheld" in stdout
    assert "the bus company cannot see the tag: 404" in stdout
    assert "open data, no token: 3 gauges, 0 watch tags" in stdout
    # The asset plane: signed readings into the hub, attackers refused and quarantined, audits and a probe.
    assert "6 sensors sent 60 signed readings over HTTP" in stdout
    assert "bad-signature 5" in stdout and "replay 5" in stdout and "out-of-range 10" in stdout
    assert "in the hub: 4 sensors; env-0001 temperature" in stdout
    assert "quarantined by policy: ['env-0004', 'env-0005']" in stdout
    assert "the quarantined forger keeps sending → {'quarantined': 1}" in stdout
    assert "by the auditor → 403; by the admin with a reason → 200 active" in stdout
    assert "published 40, stored 40" in stdout
    assert "cam-ohashi default-credential: management login 'root' is a default credential (mirai)" in stdout
    assert "active probe of cam-ohashi telnet://127.0.0.1:" in stdout and "→ accepted (root, mirai)" in stdout
    # Network-side detection: the real Muhstik capture's IRC C&C, the town's infected camera found and quarantined.
    assert "(iot23-muhstik-3-1.pcap): 12202 packets → 8 flows" in stdout
    assert "192.168.2.5 command-and-control" in stdout and "111.230.241.23" in stdout
    assert "IRC session (111.230.241.23:2407)" in stdout and "Stratosphere Lab" in stdout
    assert "cam-minato-44 scanning" in stdout and "cam-minato-44 ddos" in stdout
    assert "cam-minato-44 command-and-control" in stdout
    assert "quarantined by policy: ['cam-minato-44']" in stdout
    assert "the quarantined camera's next reading → 403" in stdout
    assert "[ipv4-addr:value = '198.51.100.77']" in stdout
    assert "leak suspected" in stdout

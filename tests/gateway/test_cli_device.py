"""`machimori device …` as an operator uses it: the console entry point (machimori.cli.main) run in-process
through typer's CliRunner isolation — a user's mistake is one line and exit 2, a failed audit exit 1."""

from __future__ import annotations

import hashlib
import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from typer.testing import CliRunner

from machimori.cli import main
from machimori.config import load_settings
from machimori.platform import open_platform

from ..conftest import ADMIN_TOKEN
from .conftest import b64, public_bytes


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """Runs machimori's console entry point on one data directory."""

    def __init__(self, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.data_dir = data_dir
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, input: str | None = None) -> Ran:
        self.monkeypatch.setattr(sys, "argv", ["machimori", *args, "--data-dir", str(self.data_dir)])
        runner = CliRunner()
        with runner.isolation(input=input, env={"MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN}) as (out, err, _):
            try:
                main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            return Ran(code, out.getvalue().decode(), err.getvalue().decode())

    def audit_entries(self) -> list[dict[str, Any]]:
        platform = open_platform(load_settings(environ={}, data_dir=self.data_dir, admin_token=ADMIN_TOKEN))
        try:
            return [platform.audit.entry(i).value() for i in range(platform.audit.head().size)]
        finally:
            platform.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(tmp_path / "data", monkeypatch)


def user_error(ran: Ran, *expected: str) -> None:
    """Exit 2, one line on stderr saying what is wrong, no traceback."""
    assert ran.code == 2, (ran.code, ran.out, ran.err)
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("machimori: ")
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in ran.err + ran.out


def add(cli: Cli, device_id: str, *extra: str, input: str | None = None) -> Ran:
    key = b64(public_bytes(Ed25519PrivateKey.generate()))
    return cli(
        "device", "add", device_id, "--model", "air-quality-sensor", "--owner", "minato-city", "--vendor", "acme",
        *(extra or ("--public-key", key)), input=input,
    )  # fmt: skip


def test_add_with_a_generated_key_writes_a_private_file_and_registers_its_public_half(cli: Cli, tmp_path: Path) -> None:
    key_file = tmp_path / "aq-001.pem"
    ran = add(cli, "aq-001", "--generate-key", str(key_file), "--location", "139.64,35.44", "--firmware", "1.2")
    assert ran.code == 0, ran.err
    record = ran.json
    assert (record["id"], record["status"], record["location"]) == ("aq-001", "active", [139.64, 35.44])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = load_pem_private_key(key_file.read_bytes(), None)
    assert isinstance(private, Ed25519PrivateKey)
    assert record["key_fingerprint"] == hashlib.sha256(public_bytes(private)).hexdigest()
    assert "PRIVATE" not in ran.out + ran.err

    before = key_file.read_bytes()
    user_error(add(cli, "aq-002", "--generate-key", str(key_file)), "already exists")
    assert key_file.read_bytes() == before  # a key is never overwritten
    assert [d["id"] for d in cli("device", "list", "--json").json] == ["aq-001"]


def test_list_show_and_every_status_change_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    assert add(cli, "aq-001").code == 0
    assert add(cli, "aq-002").code == 0
    table = cli("device", "list")
    assert table.code == 0 and "aq-001" in table.out and "aq-002" in table.out
    shown = cli("device", "show", "aq-002").json
    assert shown["id"] == "aq-002" and "public_key" not in shown

    assert cli("device", "quarantine", "aq-002", "--reason", "scanning port 23").json["status"] == "quarantined"
    assert [d["id"] for d in cli("device", "list", "--status", "quarantined", "--json").json] == ["aq-002"]
    missing = cli("device", "release", "aq-002")
    assert missing.code == 2 and "--reason" in missing.err and "Traceback" not in missing.err
    user_error(cli("device", "release", "aq-002", "--reason", " "), "reason")
    assert cli("device", "release", "aq-002", "--reason", "reflashed").json["status"] == "active"
    user_error(cli("device", "release", "aq-002", "--reason", "again"), "aq-002 is active")

    rotated = cli(
        "device", "rotate-key", "aq-001", "--generate-key", str(tmp_path / "new.pem"), "--expires", "2030-01-01"
    )
    assert rotated.code == 0, rotated.err
    assert rotated.json["key_expires_at"] == "2030-01-01T00:00:00Z"
    user_error(cli("device", "rotate-key", "aq-001", "--generate-key", str(tmp_path / "n2.pem"), "--expires", "soon"))
    assert not (tmp_path / "n2.pem").exists()  # nothing written for a command refused

    assert cli("device", "retire", "aq-001", "--reason", "replaced").json["status"] == "retired"
    user_error(cli("device", "quarantine", "aq-001", "--reason", "x"), "retired")
    user_error(cli("device", "rotate-key", "aq-001", "--public-key", b64(public_bytes(Ed25519PrivateKey.generate()))))

    actions = [(e["action"], e["device"], e["actor"], e.get("reason")) for e in cli.audit_entries() if "device" in e]
    assert actions == [
        ("device.add", "aq-001", "cli", None),
        ("device.add", "aq-002", "cli", None),
        ("device.quarantine", "aq-002", "cli", "scanning port 23"),
        ("device.release", "aq-002", "cli", "reflashed"),
        ("device.rotate-key", "aq-001", "cli", None),
        ("device.retire", "aq-001", "cli", "replaced"),
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["device", "show", "nobody"], "no device 'nobody'"),
        (
            ["device", "add", "aq-1", "--model", "flux", "--owner", "o", "--vendor", "v", "--public-key", "{key}"],
            "flux",
        ),
        (
            [
                "device",
                "add",
                "aq 1",
                "--model",
                "air-quality-sensor",
                "--owner",
                "o",
                "--vendor",
                "v",
                "--public-key",
                "{key}",
            ],
            "device id",
        ),
        (
            [
                "device",
                "add",
                "aq-1",
                "--model",
                "air-quality-sensor",
                "--owner",
                "o",
                "--vendor",
                "v",
                "--public-key",
                "not-a-key!",
            ],
            "--public-key",
        ),
        (
            [
                "device",
                "add",
                "aq-1",
                "--model",
                "air-quality-sensor",
                "--owner",
                "o",
                "--vendor",
                "v",
                "--public-key",
                "{key}",
                "--location",
                "north",
            ],
            "--location",
        ),
        (
            [
                "device",
                "add",
                "aq-1",
                "--model",
                "air-quality-sensor",
                "--owner",
                "o",
                "--vendor",
                "v",
                "--public-key",
                "{key}",
                "--location",
                "200,10",
            ],
            "location",
        ),
        (["device", "add", "aq-1", "--model", "air-quality-sensor", "--owner", "o", "--vendor", "v"], "one of"),
        (
            [
                "device",
                "add",
                "aq-1",
                "--model",
                "air-quality-sensor",
                "--owner",
                "o",
                "--vendor",
                "v",
                "--public-key",
                "{key}",
                "--hmac-secret-file",
                "{tmp}/none",
            ],
            "one of",
        ),
        (
            [
                "device",
                "add",
                "aq-1",
                "--model",
                "air-quality-sensor",
                "--owner",
                "o",
                "--vendor",
                "v",
                "--hmac-secret-file",
                "{tmp}/missing.bin",
            ],
            "cannot read",
        ),
        (["device", "import", "{tmp}/missing.csv"], "missing.csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Cli, tmp_path: Path, args: list[str], expected: str) -> None:
    key = b64(public_bytes(Ed25519PrivateKey.generate()))
    ran = cli(*(arg.format(key=key, tmp=tmp_path) for arg in args))
    user_error(ran, expected)
    listed = cli("device", "list", "--json")
    assert listed.code == 0 and listed.json == []


def test_a_taken_id_is_refused_in_one_line(cli: Cli) -> None:
    assert add(cli, "aq-001").code == 0
    user_error(add(cli, "aq-001"), "already registered")


def csv_row(device_id: str, **fields: str) -> dict[str, str]:
    key = b64(public_bytes(Ed25519PrivateKey.generate()))
    return {
        "id": device_id,
        "model": "air-quality-sensor",
        "owner": "minato-city",
        "vendor": "acme",
        "public_key": key,
        **fields,
    }


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    lines = [",".join(columns)] + [",".join(row.get(name, "") for name in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_registers_every_device_of_a_good_file(cli: Cli, tmp_path: Path) -> None:
    rows = [csv_row(f"aq-{n:03}", longitude="139.6", latitude="35.4", firmware="1.0") for n in range(5)]
    ran = cli("device", "import", str(write_csv(tmp_path / "good.csv", rows)))
    assert ran.code == 0, ran.err
    assert "5" in ran.out
    listed = cli("device", "list", "--json").json
    assert [d["id"] for d in listed] == [f"aq-{n:03}" for n in range(5)]
    assert listed[0]["location"] == [139.6, 35.4]


BAD_ROWS = [
    pytest.param({"model": "flux-capacitor"}, "flux-capacitor", id="model"),
    pytest.param({"public_key": "zz"}, "Ed25519", id="key"),
    pytest.param({"id": "../etc"}, "device id", id="id"),
    pytest.param({"owner": ""}, "owner", id="owner"),
    pytest.param({"latitude": "95", "longitude": "139"}, "latitude", id="location"),
]


@pytest.mark.parametrize(("bad", "expected"), [pytest.param(*p.values, id=p.id) for p in BAD_ROWS])
def test_import_with_one_bad_row_registers_nothing(
    cli: Cli, tmp_path: Path, bad: dict[str, str], expected: str
) -> None:
    rows = [csv_row("aq-000"), csv_row("aq-001"), csv_row("aq-002", **bad), csv_row("aq-003")]
    ran = cli("device", "import", str(write_csv(tmp_path / "devices.csv", rows)))
    user_error(ran, expected)
    assert cli("device", "list", "--json").json == []
    assert not [e for e in cli.audit_entries() if e.get("action") == "device.add"]


@pytest.mark.parametrize(("bad", "expected"), BAD_ROWS)
def test_import_names_the_file_and_line_of_the_bad_row(
    cli: Cli, tmp_path: Path, bad: dict[str, str], expected: str
) -> None:
    rows = [csv_row("aq-000"), csv_row("aq-001"), csv_row("aq-002", **bad), csv_row("aq-003")]
    path = write_csv(tmp_path / "devices.csv", rows)
    user_error(cli("device", "import", str(path)), f"{path}:4:", expected)  # the header is line 1


def test_audit_exits_1_with_findings_and_names_the_mirai_default(cli: Cli) -> None:
    assert add(cli, "aq-clean").code == 0
    clean = cli("device", "audit")
    assert clean.code == 0, clean.out + clean.err
    assert "0" in clean.out

    key = b64(public_bytes(Ed25519PrivateKey.generate()))
    added = add(
        cli, "cam-001", "--public-key", key, "--management-user", "root", "--management-password-stdin",
        input="xc3511\n",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert "xc3511" not in added.out
    assert added.json["management"]["weakness"] == "default"

    table = cli("device", "audit")
    assert table.code == 1
    assert "cam-001" in table.out and "default-credential" in table.out and "critical" in table.out
    assert "xc3511" not in table.out + table.err
    findings = cli("device", "audit", "--json")
    assert findings.code == 1
    assert [(f["check"], f["device"], f["severity"]) for f in findings.json] == [
        ("default-credential", "cam-001", "critical")
    ]
    assert "mirai" in findings.json[0]["message"]

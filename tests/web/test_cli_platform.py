"""The platform's commands as an operator and an auditor run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ..conftest import ADMIN_TOKEN
from .server import ServerProcess


def machimori(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A data directory with three entries, a saved checkpoint, an export and the public key beside it."""
    entry = tmp_path / "entry.json"
    for n in range(3):
        entry.write_text(json.dumps({"action": "consent.withdraw", "resident": f"r-{n}"}), encoding="utf-8")
        assert machimori("audit", "append", str(entry), "--data-dir", "data", cwd=tmp_path).returncode == 0
    assert machimori("audit", "checkpoint", "-o", "saved.txt", "--data-dir", "data", cwd=tmp_path).returncode == 0
    assert machimori("audit", "export", "-o", "log.jsonl", "--data-dir", "data", cwd=tmp_path).returncode == 0
    key = machimori("audit", "key", "show", "--data-dir", "data", cwd=tmp_path)
    (tmp_path / "city.vkey").write_text(key.stdout, encoding="utf-8")
    return tmp_path


def test_verify_passes_online_and_offline(logged: Path) -> None:
    online = machimori("audit", "verify", "--checkpoint", "saved.txt", "--data-dir", "data", cwd=logged)
    assert online.returncode == 0, online.stdout + online.stderr
    offline = machimori(
        "audit", "verify", "--log", "log.jsonl", "--key", "city.vkey", "--checkpoint", "saved.txt", cwd=logged
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "all 3 entries verified" in offline.stdout


def test_offline_verify_names_the_edited_line(logged: Path) -> None:
    text = (logged / "log.jsonl").read_text(encoding="utf-8")
    (logged / "edited.jsonl").write_text(text.replace('"r-1"', '"r-9"'), encoding="utf-8")
    result = machimori("audit", "verify", "--log", "edited.jsonl", "--key", "city.vkey", cwd=logged)
    assert result.returncode == 1
    assert "index 1: edited" in result.stdout


def test_a_truncated_export_is_bad_input(logged: Path) -> None:
    lines = (logged / "log.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (logged / "cut.jsonl").write_text("".join(lines[:-2]), encoding="utf-8")
    result = machimori("audit", "verify", "--log", "cut.jsonl", "--key", "city.vkey", cwd=logged)
    assert result.returncode == 2
    assert result.stderr.startswith("machimori: cut.jsonl:")
    assert "truncated" in result.stderr and "Traceback" not in result.stderr


def test_a_checkpoint_signed_by_another_key_is_bad_input(logged: Path) -> None:
    machimori("audit", "key", "generate", "machimori.localhost/audit", "-o", "impostor.key", cwd=logged)
    result = machimori(
        "audit", "verify", "--checkpoint", "saved.txt", "--key", "impostor.vkey", "--data-dir", "data", cwd=logged
    )
    assert result.returncode == 2
    assert "not signed by a trusted key" in result.stderr


def test_offline_verify_needs_the_public_key(logged: Path) -> None:
    result = machimori("audit", "verify", "--log", "log.jsonl", cwd=logged)
    assert result.returncode == 2 and "--key" in result.stderr


def test_bad_json_to_append_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"a": 1,\n  "b": }\n', encoding="utf-8")
    result = machimori("audit", "append", "bad.json", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("machimori: bad.json:2:8:")
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    assert machimori("audit", "append", "list.json", "--data-dir", "data", cwd=tmp_path).returncode == 2


def test_serving_on_a_public_address_without_tls_is_refused(tmp_path: Path) -> None:
    result = machimori("serve", "--host", "0.0.0.0", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 2
    assert "--tls-cert" in result.stderr


def test_a_bad_setting_is_reported_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "machimori.toml").write_text('port = "eighty"\ncolour = 1\n', encoding="utf-8")
    result = machimori("serve", "--config", "machimori.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "machimori.toml: port" in result.stderr and "colour" in result.stderr


def test_append_beside_a_running_server_and_a_witness_cosigns(tmp_path: Path) -> None:
    witness = tmp_path / "witness.key"
    assert (
        machimori(
            "audit", "key", "generate", "witness.example/w1", "-o", str(witness), "--witness", cwd=tmp_path
        ).returncode
        == 0
    )
    server = ServerProcess(tmp_path / "data")
    witnesses = server.data_dir / "keys" / "witnesses"
    witnesses.mkdir(parents=True)
    (witnesses / "w1.vkey").write_text((tmp_path / "witness.vkey").read_text())
    server.start()
    try:
        (tmp_path / "entry.json").write_text('{"action": "operator note"}', encoding="utf-8")
        appended = server.cli("audit", "append", str(tmp_path / "entry.json"))
        assert appended.returncode == 0, appended.stderr
        index = json.loads(appended.stdout)["index"]
        entry = httpx.get(
            f"{server.url}/api/v1/audit/entries/{index}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert entry.json()["entry"] == {"action": "operator note"}
        log_key = server.cli("audit", "key", "show").stdout.strip()
        state = tmp_path / "witness-state.json"
        for _ in range(2):
            cosigned = machimori(
                "audit",
                "witness",
                "--server",
                server.url,
                "--key",
                str(witness),
                "--log-key",
                log_key,
                "--state",
                str(state),
                cwd=tmp_path,
            )
            assert cosigned.returncode == 0, cosigned.stdout + cosigned.stderr
            assert "— witness.example/w1 " in httpx.get(f"{server.url}/api/v1/audit/checkpoint").text
            httpx.post(
                f"{server.url}/api/v1/audit/entries",
                json={"more": True},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        assert json.loads(state.read_text())["size"] == index + 2
    finally:
        server.stop()

"""The account and client commands as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def machimori(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "machimori.cli", *args, "--data-dir", "data"]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, input=stdin, timeout=120)


def test_operator_creates_accounts_grants_roles_and_registers_a_client(tmp_path: Path) -> None:
    first = machimori(
        "account",
        "create",
        "--login",
        "clerk1",
        "--name",
        "職員1",
        "--org",
        "minato-city",
        "--password-stdin",
        cwd=tmp_path,
        stdin="みなとまちの海は青い 2026\n",
    )
    assert first.returncode == 0, first.stderr
    assert "admin token, shown once" in first.stderr  # the first run's credential is not lost
    clerk = json.loads(first.stdout)["id"]
    admin = machimori(
        "account",
        "create",
        "--login",
        "admin1",
        "--name",
        "管理者",
        "--org",
        "minato-city",
        "--password-stdin",
        cwd=tmp_path,
        stdin="港町の灯台は白い 2026 年\n",
    )
    admin_id = json.loads(admin.stdout)["id"]
    assert "shown once" not in admin.stderr
    assert (
        machimori(
            "account", "grant", clerk, "--org", "minato-city", "--role", "admin", "--by", admin_id, cwd=tmp_path
        ).returncode
        == 0
    )
    refused = machimori(
        "account", "grant", clerk, "--org", "minato-city", "--role", "auditor", "--by", admin_id, cwd=tmp_path
    )
    assert refused.returncode == 2 and "separation of duties" in refused.stderr
    self_grant = machimori(
        "account", "grant", admin_id, "--org", "minato-city", "--role", "admin", "--by", admin_id, cwd=tmp_path
    )
    assert self_grant.returncode == 2 and "themselves" in self_grant.stderr
    registered = machimori(
        "client", "register", "--name", "港町バス", "--org", "minato-bus", "--scope", "city:read", cwd=tmp_path
    )
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["client_secret"]
    app = machimori(
        "client", "register", "--name", "子育てアプリ", "--scope", "openid personal:read", "--public",
        "--redirect-uri", "https://app.example/cb", "--redirect-uri", "jp.minato.app:/cb", cwd=tmp_path,
    )  # fmt: skip
    assert app.returncode == 0, app.stderr
    shown = json.loads(app.stdout)
    assert shown["client_secret"] is None and shown["grant_types"] == ["authorization_code", "refresh_token"]


def test_a_weak_password_and_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    weak = machimori(
        "account", "create", "--login", "a", "--name", "b", "--password-stdin", cwd=tmp_path, stdin="password\n"
    )
    assert weak.returncode == 2 and weak.stderr.startswith("machimori: password:") and "Traceback" not in weak.stderr
    kind = machimori(
        "account", "create", "--login", "a", "--name", "b", "--kind", "robot", "--no-password", cwd=tmp_path
    )
    assert kind.returncode == 2 and "--kind" in kind.stderr
    scope = machimori("client", "register", "--name", "x", "--scope", "root:all", cwd=tmp_path)
    assert scope.returncode == 2 and "unknown scope" in scope.stderr
    for uri in ("http://app.example/cb", "https://app.example/cb#frag", "https://*.example/cb"):
        bad = machimori("client", "register", "--name", "x", "--scope", "openid", "--redirect-uri", uri, cwd=tmp_path)
        assert bad.returncode == 2 and bad.stderr.splitlines()[-1].startswith("machimori: --redirect-uri:")
    public = machimori("client", "register", "--name", "x", "--scope", "openid", "--public", cwd=tmp_path)
    assert public.returncode == 2 and "--redirect-uri" in public.stderr

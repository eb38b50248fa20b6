"""Settings precedence and record identifiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from machimori.config import load_settings
from machimori.diagnostics import InputError
from machimori.ids import uuid7


def test_environment_overrides_the_file_and_options_override_both(tmp_path: Path) -> None:
    config = tmp_path / "machimori.toml"
    config.write_text('port = 9000\nhost = "127.0.0.1"\naudit_origin = "file.example/log"\n', encoding="utf-8")
    environ = {"MACHIMORI_PORT": "9100", "MACHIMORI_AUDIT_ORIGIN": ""}
    settings = load_settings(config, environ=environ, host="::1")
    assert (settings.port, settings.host, settings.audit_origin) == (9100, "::1", "file.example/log")
    assert settings.loopback


def test_defaults_are_safe() -> None:
    settings = load_settings(environ={})
    assert settings.host == "127.0.0.1" and settings.admin_token is None
    assert settings.sqlalchemy_url.startswith("sqlite:///") and settings.sqlite_synchronous == "FULL"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MACHIMORI_ADMIN_TOKEN": "short"}, "admin_token"),
        ({"MACHIMORI_PORT": "70000"}, "port"),
        ({"MACHIMORI_SQLITE_SYNCHRONOUS": "OFF"}, "sqlite_synchronous"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_settings(environ=environ)


def test_a_public_host_is_not_loopback() -> None:
    assert not load_settings(environ={"MACHIMORI_HOST": "0.0.0.0"}).loopback


def test_uuid7_is_version_7_and_strictly_increasing() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)

"""Fixtures shared by every test: real databases (SQLite always, PostgreSQL where it runs)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from machimori.config import load_settings
from machimori.platform import Platform, open_platform
from machimori.storage import Database, open_database
from machimori.web.app import create_app

POSTGRES_ADMIN = os.environ.get("MACHIMORI_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
ADMIN_TOKEN = "mmk_test-admin-token-0123456789abcdefghijklmnop"
REQUIRE_SERVICES = os.environ.get("MACHIMORI_REQUIRE_SERVICES") == "1"


def _postgres_admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None if it can."""
    try:
        with _postgres_admin():
            return None
    except Exception as error:  # any failure to connect means: not available
        return f"PostgreSQL at {POSTGRES_ADMIN!r} is not reachable: {error}"


@pytest.fixture(scope="session")
def postgres_reason() -> str | None:
    reason = postgres_unavailable()
    if reason and REQUIRE_SERVICES:
        pytest.fail(f"MACHIMORI_REQUIRE_SERVICES=1 but {reason}")
    return reason


MQTT_BROKER = os.environ.get("MACHIMORI_TEST_MQTT", "mqtt://127.0.0.1:1883")


def mqtt_unavailable() -> str | None:
    """Why the MQTT broker cannot be used here, or None if it can."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(MQTT_BROKER)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=3):
            return None
    except OSError as error:
        return f"MQTT broker at {MQTT_BROKER} is not reachable: {error}"


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The MQTT broker (Mosquitto) the gateway tests publish to; skipped where absent, failed in CI."""
    reason = mqtt_unavailable()
    if reason and REQUIRE_SERVICES:
        pytest.fail(f"MACHIMORI_REQUIRE_SERVICES=1 but {reason}")
    if reason:
        pytest.skip(reason)
    return MQTT_BROKER


@pytest.fixture(scope="session")
def postgres_template(postgres_reason: str | None) -> Iterator[str | None]:
    """A database migrated once per test process, which every test's database is copied from (copying takes
    a fraction of the time the migrations take)."""
    if postgres_reason:
        yield None
        return
    name = f"machimori_template_{uuid.uuid4().hex[:12]}"
    with _postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        open_database(f"postgresql://postgres@127.0.0.1:5432/{name}").dispose()  # migrated, then no connection
        yield name
    finally:
        with _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_reason: str | None, postgres_template: str | None) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, with machimori's schema and nothing else; dropped afterwards."""
    if postgres_reason:
        pytest.skip(postgres_reason)
    name = f"machimori_test_{uuid.uuid4().hex[:12]}"
    with _postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with _postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL of each kind machimori supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'machimori.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database of each kind."""
    db = open_database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Iterator[Platform]:
    settings = load_settings(environ={}, data_dir=tmp_path / "data", database_url=database_url, admin_token=ADMIN_TOKEN)
    opened = open_platform(settings)
    yield opened


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), base_url="http://localhost", raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

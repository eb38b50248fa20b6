"""Fixtures of detection's tests: a synthetic town's labelled traffic as conn.log text, and a platform whose
detection quarantines scanning devices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from machimori.config import load_settings
from machimori.detection.synthetic import DARKNET, Labelled, Town
from machimori.detection.zeek import conn_log_header, conn_log_line
from machimori.identity.tokens import Role, create_token
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

from ..conftest import ADMIN_TOKEN


@pytest.fixture(scope="session")
def town() -> list[Labelled]:
    """Two hours of the synthetic town: sensors, cameras, and one camera infected halfway."""
    return Town(hours=2.0).flows()


def conn_log_text(flows: list[Labelled]) -> str:
    """The flows as a Zeek TSV conn.log."""
    return conn_log_header(flows[0].flow.ts) + "".join(conn_log_line(labelled.flow) for labelled in flows)


@pytest.fixture
def town_log(tmp_path: Path, town: list[Labelled]) -> Path:
    path = tmp_path / "conn.log"
    path.write_text(conn_log_text(town), encoding="utf-8")
    return path


@pytest.fixture
def detect_platform(tmp_path: Path) -> Iterator[Platform]:
    """A SQLite platform whose detection watches the town's darknet and quarantines scanning devices."""
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'machimori.db'}",
        admin_token=ADMIN_TOKEN,
        detection_darknet=[DARKNET],
        detection_quarantine=["scanning", "command-and-control"],
    )
    yield open_platform(settings)


@pytest.fixture
def detect_client(detect_platform: Platform) -> Iterator[TestClient]:
    app = create_app(detect_platform)
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        yield client


def bearer(platform: Platform, role: Role) -> dict[str, str]:
    """Headers with a fresh API token of this role."""
    _, secret = create_token(platform.database, f"test-{role.value}", role)
    return {"Authorization": f"Bearer {secret}"}

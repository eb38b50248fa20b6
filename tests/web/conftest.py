"""An in-process server over a real database of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from machimori.config import load_settings
from machimori.platform import Platform, open_platform
from machimori.web.app import create_app

from .server import ADMIN_TOKEN


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Iterator[Platform]:
    settings = load_settings(environ={}, data_dir=tmp_path / "data", database_url=database_url, admin_token=ADMIN_TOKEN)
    opened = open_platform(settings)
    yield opened


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def issue(client: TestClient, admin: dict[str, str], role: str) -> dict[str, str]:
    token = client.post("/api/v1/tokens", json={"name": f"{role} system", "role": role}, headers=admin).json()["token"]
    return {"Authorization": f"Bearer {token}"}

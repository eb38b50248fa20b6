"""Helpers for tests of the web API (its fixtures are in tests/conftest.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def issue(client: TestClient, admin: dict[str, str], role: str) -> dict[str, str]:
    token = client.post("/api/v1/tokens", json={"name": f"{role} system", "role": role}, headers=admin).json()["token"]
    return {"Authorization": f"Bearer {token}"}

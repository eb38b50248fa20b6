"""An acknowledged append survives SIGKILL of the server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import ADMIN_TOKEN
from .server import ServerProcess

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> ServerProcess:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    return ServerProcess(tmp_path / "data", url)


def test_every_acknowledged_entry_survives_sigkill_and_the_log_verifies(server: ServerProcess, tmp_path: Path) -> None:
    server.start()
    acknowledged: dict[int, tuple[dict[str, object], str]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number: int) -> None:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as client:
            sequence = 0
            while not stop.is_set():
                body = {"action": "crash-test", "writer": number, "seq": sequence}
                try:
                    response = client.post("/api/v1/audit/entries", json=body)
                except httpx.TransportError:
                    return  # the server died mid-request: not acknowledged
                if response.status_code == 201:
                    answer = response.json()
                    with lock:
                        acknowledged[answer["index"]] = (body, answer["leaf_hash"])
                sequence += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL while the writers are still sending
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 400

    server.start()
    try:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as client:
            for index, (body, leaf_hash) in sorted(acknowledged.items()):
                stored = client.get(f"/api/v1/audit/entries/{index}").json()
                assert stored["entry"] == body
                assert stored["leaf_hash"] == leaf_hash
            checkpoint = client.get("/api/v1/audit/checkpoint").text
    finally:
        # SIGTERM: uvicorn shuts down gracefully, then re-raises the signal (so -15, not a crash code).
        assert server.stop() in (0, -15)
    saved = tmp_path / "checkpoint.txt"
    saved.write_text(checkpoint, encoding="utf-8")
    result = server.cli("audit", "verify", "--checkpoint", str(saved))
    assert result.returncode == 0, result.stdout + result.stderr
    assert base64.b64decode(checkpoint.splitlines()[2])

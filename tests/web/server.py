"""Running `machimori serve` as a real process for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..conftest import ADMIN_TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A `machimori serve` child process on a free loopback port."""

    def __init__(
        self, data_dir: Path, database_url: str | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {**os.environ, "MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN, "MACHIMORI_LOG_LEVEL": "WARNING", **self.extra_env}
        if self.database_url:
            env["MACHIMORI_DATABASE_URL"] = self.database_url
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a machimori command against this server's data directory and database."""
        command = [sys.executable, "-m", "machimori.cli", *args, "--data-dir", str(self.data_dir)]
        return subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "machimori.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(command, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready in 30 s")

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

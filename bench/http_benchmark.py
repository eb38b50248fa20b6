"""Durable audit appends over HTTP: `machimori serve` on loopback, clients in another process.

Prints appends/s for one client that waits for each answer and for 64 concurrent clients, on SQLite
(and PostgreSQL with --postgres URL). Run: .venv/bin/python bench/http_benchmark.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOKEN = "mmk_benchmark-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, database_url: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MACHIMORI_ADMIN_TOKEN": TOKEN, "MACHIMORI_LOG_LEVEL": "WARNING"}
    if database_url:
        env["MACHIMORI_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "machimori.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def run_clients(port: int, clients: int, seconds: float) -> float:
    """Appends per second with this many clients, each waiting for every answer."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        sent = 0
        while time.perf_counter() < stop:
            body = json.dumps({"action": "benchmark", "client": number, "seq": sent})
            connection.request("POST", "/api/v1/audit/entries", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"append failed: {response.status}")
            sent += 1
        counts[number] = sent

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL of an empty database to measure too")
    args = parser.parse_args()
    targets = [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else [])
    print("| database | clients | durable appends/s over HTTP |")
    print("| --- | --- | --- |")
    for name, url in targets:
        with tempfile.TemporaryDirectory() as folder:
            port = free_port()
            server = start_server(Path(folder), port, url)
            try:
                for clients in (1, 64):
                    print(f"| {name} | {clients} | {run_clients(port, clients, args.seconds):,.0f} |", flush=True)
            finally:
                server.terminate()
                server.wait()


if __name__ == "__main__":
    main()

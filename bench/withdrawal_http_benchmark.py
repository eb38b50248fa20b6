"""Consent withdrawal to the first denied request over HTTP, across two `machimori serve` processes.

Both servers share one PostgreSQL database and one data directory (the same keys); they are started as
subprocesses on loopback. A resident signed in on server A gives consent to a service; once server B
answers the service's read of her profile with 200, a poller thread keeps asking B back to back (one
keep-alive connection, the service's OAuth access token, a Data-Purpose header) while the resident
withdraws on A. Latency is measured to the moment the first 403 from B is received, from two starts:
A's acknowledgement of the withdrawal (its response received) and the moment the withdrawal was sent.
Residents take turns, so each round works on another resident's cached decisions. All clocks are
time.perf_counter() in this one process. Run:
.venv/bin/python bench/withdrawal_http_benchmark.py [--rounds 200] [--residents 8]
Skips (exit 0) if PostgreSQL is not reachable at --host.
"""

from __future__ import annotations

import argparse
import math
import os
import platform as machine
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import psycopg

from machimori import __version__
from machimori.config import load_settings
from machimori.consent.purposes import DPV
from machimori.identity.accounts import Kind
from machimori.identity.oauth.clients import register_client
from machimori.platform import open_platform

PURPOSE = DPV + "ServiceProvision"
PASSWORD = "みなとまちの海は青い 2026"
ADMIN_TOKEN = "mmk_benchmark-admin-token-0123456789abcdef"
PEERS = (("Ory", 5.0), ("Auth0 FGA", 20.0))  # their published propagation figures, seconds
WAIT = 10.0  # seconds before a round is declared stuck


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


def start_server(name: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`machimori serve` on localhost:port; returns once /readyz answers 200 (database up, schema current)."""
    command = [sys.executable, "-m", "machimori.cli", "serve", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server {name} exited ({process.returncode}):\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://localhost:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server {name} did not become ready:\n{log.read_text(errors='replace')}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Round:
    """What the poller saw in one round."""

    resident: str
    token: str
    hot: threading.Event = field(default_factory=threading.Event)  # B has answered 200
    done: threading.Event = field(default_factory=threading.Event)
    denied_sent: float = 0.0  # when the request that got the first 403 was sent
    denied_at: float = 0.0  # when that 403 was received
    requests: int = 0
    started: float = 0.0
    error: str | None = None


class Poller(threading.Thread):
    """Asks server B for a resident's profile back to back until the first 403 after a 200."""

    def __init__(self, base_url: str) -> None:
        super().__init__(name="poller", daemon=True)
        self.client = httpx.Client(base_url=base_url, headers={"Data-Purpose": PURPOSE}, timeout=WAIT)
        self.rounds: list[Round | None] = []
        self.ready = threading.Condition()
        self.requests = 0
        self.busy = 0.0  # seconds spent polling after B's first 200 of each round

    def submit(self, work: Round | None) -> None:
        with self.ready:
            self.rounds.append(work)
            self.ready.notify()

    def run(self) -> None:
        while True:
            with self.ready:
                self.ready.wait_for(lambda: bool(self.rounds))
                work = self.rounds.pop(0)
            if work is None:
                self.client.close()
                return
            try:
                self.poll(work)
            except Exception as error:  # reported by the main thread
                work.error = f"{type(error).__name__}: {error}"
            work.done.set()

    def poll(self, work: Round) -> None:
        path = f"/api/v1/residents/{work.resident}/profile"
        headers = {"Authorization": f"Bearer {work.token}"}
        deadline = time.perf_counter() + 2 * WAIT
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            response = self.client.get(path, headers=headers)
            received = time.perf_counter()
            if work.hot.is_set():
                work.requests += 1
            if response.status_code == 200:
                if not work.hot.is_set():
                    work.started = received
                    work.hot.set()
            elif response.status_code == 403 and work.hot.is_set():
                if response.json().get("rule") != "consent-withdrawn":
                    raise RuntimeError(f"denied for another reason: {response.text}")
                work.denied_sent, work.denied_at = sent, received
                self.requests += work.requests
                self.busy += received - work.started
                return
            elif response.status_code != 403:  # a 403 before the first 200: B has not seen the consent yet
                raise RuntimeError(f"B answered {response.status_code}: {response.text}")
        raise RuntimeError("no denial within the time allowed")


def summary(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    figures = " | ".join(f"{percentile(ordered, q) * 1000:.1f}" for q in (0.50, 0.95, 0.99))
    return f"| {label} | {len(values)} | {figures} | {ordered[-1] * 1000:.1f} |"


class Service:
    """The service's client credentials and its current access token (5 minutes; renewed between rounds)."""

    def __init__(self, base_url: str, client_id: str, secret: str) -> None:
        self.base_url, self.client_id, self.secret = base_url, client_id, secret
        self.token, self.expires = "", 0.0

    def current(self) -> str:
        if time.monotonic() > self.expires - 60:
            response = httpx.post(
                f"{self.base_url}/oauth/token",
                data={"grant_type": "client_credentials", "scope": "personal:read"},
                auth=(self.client_id, self.secret),
            )
            response.raise_for_status()
            answer = response.json()
            self.token, self.expires = answer["access_token"], time.monotonic() + answer["expires_in"]
        return self.token


def measure(args: argparse.Namespace, url: str, folder: Path) -> None:
    port_a, port_b = free_port(), free_port()
    base_a, base_b = f"http://localhost:{port_a}", f"http://localhost:{port_b}"
    # one public URL for the pair, as behind a load balancer: tokens from either server verify on both
    shared = {
        "MACHIMORI_DATA_DIR": str(folder / "data"),
        "MACHIMORI_DATABASE_URL": url,
        "MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN,
        "MACHIMORI_PUBLIC_URL": base_a,
        "MACHIMORI_LOG_LEVEL": "WARNING",
    }
    # migrate, make the keys, the residents and the service once, before either server starts
    city = open_platform(load_settings(environ=shared))
    try:
        residents = [
            (f"bench-resident-{n}", city.accounts.create(Kind.resident, f"bench-resident-{n}", f"住民 {n}", PASSWORD))
            for n in range(args.residents)
        ]
        client_id, secret = register_client(
            city.database, "bench bus app", org="minato-bus", grant_types=["client_credentials"], scope="personal:read"
        )
    finally:
        city.close()
    assert secret is not None
    environment = {**os.environ, **shared}
    servers = []
    sessions: list[httpx.Client] = []
    poller = Poller(base_b)
    try:
        for name, port in (("A", port_a), ("B", port_b)):
            servers.append(start_server(name, environment, port, folder / f"server-{name}.log"))
        for login, _ in residents:
            session = httpx.Client(base_url=base_a, timeout=WAIT)
            session.post("/api/v1/session", json={"login": login, "password": PASSWORD}).raise_for_status()
            sessions.append(session)
        service = Service(base_a, client_id, secret)
        poller.start()
        from_ack, from_sent, withdraw_rtt, denied_rtt = [], [], [], []
        began = time.perf_counter()
        for number in range(args.rounds):
            session, (_, resident) = sessions[number % len(sessions)], residents[number % len(residents)]
            choice = {"service": client_id, "purpose": PURPOSE}
            session.post("/api/v1/me/consents", json=choice).raise_for_status()
            work = Round(resident, service.current())
            poller.submit(work)
            if not work.hot.wait(WAIT):
                raise RuntimeError(f"round {number}: B never permitted ({work.error})")
            sent = time.perf_counter()
            response = session.post("/api/v1/me/consents/withdraw", json=choice)
            acknowledged = time.perf_counter()
            response.raise_for_status()
            if not work.done.wait(2 * WAIT) or work.error:
                raise RuntimeError(f"round {number}: {work.error or 'no denial'}")
            if work.denied_sent < work.started:
                raise RuntimeError(f"round {number}: denied before the withdrawal was sent")
            from_ack.append(work.denied_at - acknowledged)
            from_sent.append(work.denied_at - sent)
            withdraw_rtt.append(acknowledged - sent)
            denied_rtt.append(work.denied_at - work.denied_sent)
        elapsed = time.perf_counter() - began
    finally:
        poller.submit(None)
        poller.join(WAIT)
        for session in sessions:
            session.close()
        for server in servers:
            stop_server(server)
    report(args, from_ack, from_sent, withdraw_rtt, denied_rtt, poller, elapsed)


def report(
    args: argparse.Namespace,
    from_ack: list[float],
    from_sent: list[float],
    withdraw_rtt: list[float],
    denied_rtt: list[float],
    poller: Poller,
    elapsed: float,
) -> None:
    print()
    print(f"{args.rounds} rounds, {args.residents} residents in turn")
    print("| from … to the first 403 on B | rounds | p50 ms | p95 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(summary("A acknowledged the withdrawal (response received)", from_ack))
    print(summary("the withdrawal was sent to A", from_sent))
    print(summary("(A's withdrawal round trip, for reference)", withdraw_rtt))
    print(summary("(B's round trip of the denied request itself)", denied_rtt))
    early = sum(1 for value in from_ack if value <= 0)
    print(f"rounds where B's first 403 arrived before A's acknowledgement: {early} of {len(from_ack)}")
    rate = poller.requests / poller.busy if poller.busy else 0.0
    print(
        f"poller on B: {poller.requests:,} requests in {poller.busy:.1f} s while hot = {rate:,.0f} requests/s "
        f"(one every {1000 / rate if rate else 0:.2f} ms); whole run {elapsed:.1f} s"
    )
    p99_ack = percentile(sorted(from_ack), 0.99)
    p99_sent = percentile(sorted(from_sent), 0.99)
    verdict = "met" if p99_sent < 0.1 and p99_ack < 0.1 else "NOT met"
    print(f"target p99 < 100 ms: {verdict} (p99 from ack {p99_ack * 1000:.1f} ms, from sent {p99_sent * 1000:.1f} ms)")
    for name, seconds in PEERS:
        print(f"{name} ~{seconds:g} s / p99 from sent: {seconds / p99_sent:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--residents", type=int, default=8, help="residents taking turns")
    parser.add_argument("--host", default="127.0.0.1", help="PostgreSQL host (user postgres, trust auth, port 5432)")
    parser.add_argument("--database", default="machimori_bench_withdrawal", help="made fresh, dropped at the end")
    args = parser.parse_args()
    admin_info = f"host={args.host} port=5432 user=postgres dbname=postgres connect_timeout=3"
    try:
        with psycopg.connect(admin_info, autocommit=True) as admin:
            server_version = admin.execute("SHOW server_version").fetchone()
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{args.database}"')
    except psycopg.OperationalError as error:
        print(f"skipped: PostgreSQL is not reachable at {args.host}:5432 ({str(error).strip()})")
        return
    print(
        f"{date.today()}  machine: {machine.machine()}, {os.cpu_count()} CPUs, {machine.platform()}\n"
        f"machimori {__version__}, Python {machine.python_version()}, PostgreSQL {server_version[0] if server_version else '?'}, "
        f"httpx {httpx.__version__}, psycopg {psycopg.__version__}"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="mm-withdrawal-") as folder:
            measure(args, f"postgresql://postgres@{args.host}:5432/{args.database}", Path(folder))
    finally:
        with psycopg.connect(admin_info, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


if __name__ == "__main__":
    main()

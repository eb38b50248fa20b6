"""The NGSI-LD hub over HTTP: entity creation, batch upsert, retrieval and a typed q query at N stored entities.

For SQLite and for PostgreSQL, each with enforcement ON — a real `machimori serve` with the example town's
city model, a client-credentials token of minato-bousai (owner of the open water-level dataset) and a
Data-Purpose header — and with the decision point BYPASSED (bench/hub_permit_all_server.py: the same app,
tokens and audit log, a decision point that permits everything). Servers run as subprocesses on loopback;
the clients are asyncio tasks in this process on raw HTTP/1.1 keep-alive connections (uvloop), so that the
client takes as little of the two cores as it can.

Per database: N water-level observations are loaded once with POST /entityOperations/upsert (enforced; the
load's own rate is the first upsert figure), then at N entities, in each mode: GET /entities/{id} of random
ids, GET /entities?type=WaterObserved&q=waterLevel>3.0 (about 1.4 % match; first page, default limit 20),
POST /entities with concurrent clients, and upsert batches of new and of existing entities.
The q query is measured as loaded (machimori never runs ANALYZE), then everything after one timed ANALYZE;
where PostgreSQL's autovacuum is off, the load runs ANALYZE at each tenth as autovacuum would. Every figure is
printed with os.getloadavg() at the time, since other work may share the machine. Run:
.venv/bin/python bench/hub_benchmark.py [--entities 1000000] [--databases sqlite,postgresql]
Quick: .venv/bin/python bench/hub_benchmark.py --entities 20000
PostgreSQL (127.0.0.1:5432, trust) is skipped with a message if it is not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform as machine
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import uvloop

import machimori
from machimori import __version__
from machimori.config import load_settings
from machimori.consent.purposes import DPV
from machimori.governance.workflow import example_town
from machimori.identity.oauth.clients import register_client
from machimori.platform import open_platform

HERE = Path(__file__).resolve().parent
WATER = "https://smartdatamodels.org/dataModel.Environment/WaterObserved"
LEVEL = "https://smartdatamodels.org/dataModel.Environment/waterLevel"
DEVICE = "https://smartdatamodels.org/dataModel.Environment/refDevice"
PURPOSE = DPV + "ServiceProvision"
ADMIN_TOKEN = "mmk_benchmark-admin-token-0123456789abcdef"
THRESHOLD = 3.0  # metres: the q filter's warning level (lognormal levels, median 1 m: ~1.4 % above)
RIVERS = ("帷子川", "大岡川", "鶴見川", "境川", "柏尾川", "入江川", "宮川", "侍従川")
EPOCH = datetime(2026, 11, 30, tzinfo=UTC)
PEERS = "Stellio 131–241 creations/s and ~32 complex queries/s (8 vCPU); Scorpio ~320 creations/s (one team's test)"


# --- the entities ------------------------------------------------------------------------------------------


def level_of(n: int) -> float:
    """Entity n's water level in metres: lognormal, median 1.0 m, deterministic in n."""
    return round(min(8.0, random.Random(n).lognormvariate(0.0, 0.5)), 3)


def observation(n: int, version: int = 0) -> dict[str, Any]:
    """Water-level observation n (normalized NGSI-LD, expanded names): a station around 35.4N 139.6E."""
    spot = random.Random(-n - 1)
    observed = EPOCH + timedelta(minutes=10 * version, seconds=n % 600)
    return {
        "id": f"urn:ngsi-ld:WaterObserved:{n}",
        "type": WATER,
        "name": {"type": "Property", "value": f"{RIVERS[n % len(RIVERS)]} 水位観測所 {n}"},
        LEVEL: {
            "type": "Property",
            "value": level_of(n) if version == 0 else round(level_of(n) + 0.01 * version, 3),
            "unitCode": "MTR",
            "observedAt": observed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "location": {
            "type": "GeoProperty",
            "value": {
                "type": "Point",
                "coordinates": [round(139.6 + spot.uniform(-0.1, 0.1), 6), round(35.4 + spot.uniform(-0.1, 0.1), 6)],
            },
        },
        DEVICE: {"type": "Relationship", "object": f"urn:ngsi-ld:Device:water-sensor-{n}"},
    }


def above(count: int) -> int:
    """How many of entities 0..count-1 the q filter selects (waterLevel > THRESHOLD)."""
    return sum(1 for n in range(count) if level_of(n) > THRESHOLD)


# --- a lean HTTP/1.1 client --------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; answers must carry Content-Length (uvicorn's do)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        assert self.reader is not None
        length = f"Content-Length: {len(body)}\r\n" if body or method != "GET" else ""
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost:{self.port}\r\n{length}".encode()
        self.writer.write(head + headers + b"\r\n" + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        size = 0
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                size = int(value)
            elif name.lower() == b"transfer-encoding":
                raise RuntimeError("chunked answers are not handled")
        return status, await self.reader.readexactly(size) if size else b""

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Token:
    """minato-bousai's client-credentials access token from a server, renewed a minute before it expires."""

    def __init__(self, port: int, client_id: str, secret: str) -> None:
        self.port, self.client_id, self.secret = port, client_id, secret
        self.value, self.expires = "", 0.0

    def headers(self, content: bool = False) -> bytes:
        if time.monotonic() > self.expires - 60:
            answer = httpx.post(
                f"http://localhost:{self.port}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.secret),
                timeout=30,
            )
            answer.raise_for_status()
            token = answer.json()
            self.value, self.expires = token["access_token"], time.monotonic() + token["expires_in"]
        lines = [f"Authorization: Bearer {self.value}", f"Data-Purpose: {PURPOSE}"]
        if content:
            lines.append("Content-Type: application/json")
        return "".join(line + "\r\n" for line in lines).encode()


# --- measurements ------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One printed row."""

    database: str
    mode: str
    what: str
    value: str
    target: str
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def check(status: int, body: bytes, expected: int, what: str) -> None:
    if status != expected:
        raise RuntimeError(f"{what}: {status} {body[:500]!r}")


async def create_rate(port: int, token: Token, numbers: range, clients: int) -> float:
    """POST /entities of each entity number, by `clients` concurrent connections; entities/s."""
    headers = token.headers(content=True)
    bodies = iter([json.dumps(observation(n), ensure_ascii=False).encode() for n in numbers])

    async def client() -> None:
        connection = Connection(port)
        try:
            for body in bodies:
                status, answer = await connection.request("POST", "/ngsi-ld/v1/entities", headers, body)
                check(status, answer, 201, "create")
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(numbers) / (time.perf_counter() - began)


async def upsert_rate(
    port: int,
    token: Token,
    numbers: range,
    batch: int,
    version: int = 0,
    clients: int = 2,
    progress: Callable[[int, float], None] | None = None,
) -> float:
    """POST /entityOperations/upsert of the entities in batches, `clients` batches in flight; entities/s."""
    starts = iter(range(numbers.start, numbers.stop, batch))
    done = 0

    async def client() -> None:
        nonlocal done
        connection = Connection(port)
        try:
            for start in starts:
                chosen = range(start, min(start + batch, numbers.stop))
                body = json.dumps([observation(n, version) for n in chosen], ensure_ascii=False).encode()
                status, answer = await connection.request(
                    "POST", "/ngsi-ld/v1/entityOperations/upsert", token.headers(content=True), body
                )
                check(status, answer, 201 if version == 0 else 204, "upsert")
                done += len(chosen)
                if progress is not None:
                    progress(done, time.perf_counter() - began)
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(numbers) / (time.perf_counter() - began)


async def latencies(
    port: int,
    token: Token,
    paths: list[str],
    warm_up: int,
    expect: Callable[[bytes], None],
    limits: tuple[float, float],
) -> str:
    """One client, one request at a time: p50/p95/p99/max in ms of the paths after the first `warm_up`.

    A request that takes longer than `timeout` seconds ends the measurement (the server is then restarted), and
    so does the `budget` of seconds for the whole (the figures then come from the requests made)."""
    timeout, budget = limits
    connection = Connection(port)
    times: list[float] = []
    began = time.perf_counter()
    try:
        for number, path in enumerate(paths):
            if time.perf_counter() - began > budget and times:
                break
            headers = token.headers()
            sent = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(connection.request("GET", path, headers), timeout)
            except TimeoutError:
                return f"TIMED OUT: request {number + 1} took over {timeout:g} s ({len(times)} measured before)"
            elapsed = time.perf_counter() - sent
            check(status, body, 200, path)
            expect(body)
            if number >= warm_up:
                times.append(elapsed)
    finally:
        connection.close()
    ordered = sorted(times)
    p = [percentile(ordered, q) * 1000 for q in (0.5, 0.95, 0.99)]
    cut = f", budget of {budget:g} s spent" if len(times) + warm_up < len(paths) else ""
    return f"p50 {p[0]:.1f} / p95 {p[1]:.1f} / p99 {p[2]:.1f} ms (max {ordered[-1] * 1000:.1f}, n={len(times)}{cut})"


# --- servers -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`machimori serve` (enforced) or the bench's permit-everything server, on a free loopback port."""

    def __init__(self, mode: str, environment: dict[str, str], log: Path) -> None:
        self.port = free_port()
        if mode == "enforced":
            command = [sys.executable, "-m", "machimori.cli", "serve", "--port", str(self.port)]
        else:
            command = [sys.executable, str(HERE / "hub_permit_all_server.py"), "--port", str(self.port)]
        self.log = log
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{mode} server exited:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"http://localhost:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{mode} server did not become ready:\n{log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- one database ------------------------------------------------------------------------------------------


def say(text: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  [{datetime.now():%H:%M:%S} load {load}] {text}", flush=True)


def run_database(args: argparse.Namespace, name: str, url: str, folder: Path, figures: list[Figure]) -> None:
    """Load N entities once, then measure both modes on this database."""
    settings = {
        "MACHIMORI_DATA_DIR": str(folder / "data"),
        "MACHIMORI_DATABASE_URL": url,
        "MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN,
        "MACHIMORI_CITY_MODEL": str(example_town()),
        "MACHIMORI_LOG_LEVEL": "WARNING",
    }
    city = open_platform(load_settings(environ=settings))  # migrate; make the keys and the client once
    try:
        client_id, secret = register_client(
            city.database,
            "bench 防災 app",
            org="minato-bousai",
            grant_types=["client_credentials"],
            scope="city:read city:write",
        )
    finally:
        city.close()
    assert secret is not None
    environment = {**os.environ, **settings}
    n = args.entities
    rng = random.Random(7)
    retrieve_paths = [
        f"/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:{rng.randrange(n)}" for _ in range(args.requests)
    ]
    query = urlencode({"type": WATER, "q": f"{LEVEL}>{THRESHOLD}"})
    query_paths = [f"/ngsi-ld/v1/entities?{query}"] * args.queries
    matching = above(n)
    written = n  # entity numbers from here on are new

    def one(body: bytes) -> None:
        if not body.startswith(b"{"):
            raise RuntimeError(f"not an entity: {body[:200]!r}")

    def page(body: bytes) -> None:
        if len(json.loads(body)) != min(20, matching):
            raise RuntimeError(f"not a full page: {body[:200]!r}")

    def add(mode: str, what: str, value: str, target: str = "") -> None:
        figures.append(Figure(name, mode, what, value, target))
        say(f"{name} {mode}: {what}: {value}")

    limits = (args.timeout, args.budget)
    statistics = "no planner statistics"

    def reads(mode: str, token: Token, port: int) -> None:
        value = uvloop.run(latencies(port, token, retrieve_paths, args.requests // 10, one, limits))
        add(mode, f"GET /entities/{{id}} at {n:,}", value, "p95 < 10 ms")
        value = uvloop.run(latencies(port, token, query_paths, args.queries // 10, page, limits))
        add(mode, f"GET /entities?type&q (~{matching:,} match) at {n:,}, {statistics}", value, "p95 < 50 ms")

    def writes(mode: str, token: Token, port: int) -> None:
        nonlocal written
        numbers = range(written, written + args.creates)
        written += args.creates
        rate = uvloop.run(create_rate(port, token, numbers, args.clients))
        add(mode, f"POST /entities, {args.clients} clients", f"{rate:,.0f} entities/s", "≥ 2,000/s")
        numbers = range(written, written + args.upserts)
        written += args.upserts
        rate = uvloop.run(upsert_rate(port, token, numbers, args.batch))
        add(mode, f"upsert, new, batches of {args.batch:,}", f"{rate:,.0f} entities/s", "≥ 10,000/s")
        chosen = rng.randrange(max(1, n - args.upserts))
        numbers = range(chosen, min(n, chosen + args.upserts))
        rate = uvloop.run(upsert_rate(port, token, numbers, args.batch, version=1))
        add(mode, f"upsert, existing (replace), batches of {args.batch:,}", f"{rate:,.0f} entities/s", "")

    emulate_autovacuum = not url.startswith("sqlite") and not autovacuum(url)
    if not url.startswith("sqlite"):
        statistics = "statistics from autovacuum" + (" (emulated)" if emulate_autovacuum else "")
    if emulate_autovacuum:
        say(f"{name}: autovacuum is off on this server: the load runs ANALYZE at each tenth, as autovacuum would")
    log = folder / "servers.log"
    server = Server("enforced", environment, log)
    try:
        token = Token(server.port, client_id, secret)
        say(f"{name}: loading {n:,} entities with upsert (enforced), batches of {args.batch:,}")
        marks = {step for step in range(n // 10, n + 1, max(1, n // 10))}

        def progress(done: int, elapsed: float) -> None:
            if done in marks:
                say(f"  {done:,} loaded, {done / elapsed:,.0f}/s so far")
                if emulate_autovacuum:  # the server's autovacuum would analyze after each 10 % changed
                    analyze(url)

        rate = uvloop.run(upsert_rate(server.port, token, range(n), args.batch, progress=progress))
        add(
            "enforced",
            f"upsert, new, batches of {args.batch:,}: the load 0 → {n:,}",
            f"{rate:,.0f} entities/s",
            "≥ 10,000/s",
        )
        reads("enforced", token, server.port)
    finally:
        server.stop()
    began = time.perf_counter()
    analyze(url)
    statistics = "after ANALYZE"
    add(
        "—", "ANALYZE (planner statistics; PostgreSQL's autovacuum would do it)", f"{time.perf_counter() - began:.1f} s"
    )
    phases = (("enforced", reads), ("bypassed", reads), ("bypassed", writes), ("enforced", writes))
    for mode, measure in phases:
        server = Server(mode, environment, log)  # a fresh process each: a timed-out query may still be running
        try:
            measure(mode, Token(server.port, client_id, secret), server.port)
        finally:
            server.stop()


def autovacuum(url: str) -> bool:
    """Whether PostgreSQL's autovacuum (which also gathers the planner's statistics) is on."""
    with psycopg.connect(url) as connection:
        setting = connection.execute("SHOW autovacuum").fetchone()
    return setting is not None and setting[0] == "on"


def analyze(url: str) -> None:
    """Gather the planner's statistics, as PostgreSQL's autovacuum does after a load (machimori does not)."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            connection.execute("ANALYZE")
            connection.commit()
    else:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ANALYZE")


@contextmanager
def postgres(args: argparse.Namespace) -> Iterator[str | None]:
    """A fresh PostgreSQL database's URL (dropped afterwards), or None if PostgreSQL is not reachable."""
    admin_info = f"host={args.host} port=5432 user=postgres dbname=postgres connect_timeout=3"
    try:
        with psycopg.connect(admin_info, autocommit=True) as admin:
            version = admin.execute("SHOW server_version").fetchone()
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{args.database}"')
    except psycopg.OperationalError as error:
        print(f"PostgreSQL skipped: not reachable at {args.host}:5432 ({str(error).strip()})")
        yield None
        return
    print(f"PostgreSQL {version[0] if version else '?'}")
    try:
        yield f"postgresql://postgres@{args.host}:5432/{args.database}"
    finally:
        with psycopg.connect(admin_info, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def report(figures: list[Figure], began: float) -> None:
    print(f"\nhub benchmark, {date.today()}, {(time.perf_counter() - began) / 60:.1f} min in all")
    print("| database | mode | measurement | figure | target | load 1/5/15 min |")
    print("| --- | --- | --- | --- | --- | --- |")
    for f in figures:
        load = " / ".join(f"{x:.1f}" for x in f.load)
        print(f"| {f.database} | {f.mode} | {f.what} | {f.value} | {f.target} | {load} |")
    print(f"published peers (not run here): {PEERS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000, help="entities loaded per database")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both, in this order")
    parser.add_argument("--batch", type=int, default=1000, help="entities per upsert request")
    parser.add_argument("--creates", type=int, default=2000, help="POST /entities per mode")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for POST /entities")
    parser.add_argument("--upserts", type=int, default=10_000, help="entities per upsert measurement at N")
    parser.add_argument("--requests", type=int, default=1000, help="GET /entities/{id} per mode (a tenth warm-up)")
    parser.add_argument("--queries", type=int, default=200, help="q queries per mode (a tenth warm-up)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a slow read ends its measurement")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for one latency measurement at most")
    parser.add_argument("--host", default="127.0.0.1", help="PostgreSQL host (user postgres, trust auth, port 5432)")
    parser.add_argument("--database", default="machimori_bench_hub", help="PostgreSQL database, made fresh and dropped")
    args = parser.parse_args()
    print(
        f"{date.today()}  machine: {machine.machine()}, {os.cpu_count()} CPUs, {machine.platform()}\n"
        f"machimori {__version__} from {Path(machimori.__file__).parent}, Python {machine.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__}\n"
        f"{args.entities:,} entities per database; load average at start {os.getloadavg()}"
    )
    figures: list[Figure] = []
    began = time.perf_counter()
    try:
        for kind in args.databases.split(","):
            if kind == "sqlite":
                with tempfile.TemporaryDirectory(prefix="mm-hub-bench-") as folder:
                    run_database(args, "SQLite", f"sqlite:///{folder}/hub.db", Path(folder), figures)
            elif kind == "postgresql":
                with postgres(args) as url:
                    if url is not None:
                        with tempfile.TemporaryDirectory(prefix="mm-hub-bench-") as folder:
                            run_database(args, "PostgreSQL", url, Path(folder), figures)
            else:
                parser.error(f"unknown database {kind!r}")
    finally:
        report(figures, began)


if __name__ == "__main__":
    main()

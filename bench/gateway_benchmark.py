"""Verified telemetry ingest (verify, check, store, update the hub entity) against this machine's raw Ed25519
verification rate, over HTTP and over MQTT (Mosquitto), in one run.

The raw rate is `Ed25519PublicKey.verify` (OpenSSL through `cryptography`) on the very Sig_structures the
devices signed, in one thread — what one core can verify with nothing else to do. The gateway runs as a real
`machimori serve` subprocess (SQLite by default, or PostgreSQL), its MQTT workers on the shared subscription.
All messages are signed before any clock starts, so signing costs the load generator nothing while measuring.

Per transport:
- throughput: every message sent as fast as the gateway takes it (HTTP: concurrent keep-alive connections;
  MQTT: QoS 1 publishes with a deep in-flight window) — accepted messages a second, and the ratio to the raw
  verification rate (target ≥ 50 %);
- latency: an open loop offering 50 % of the raw rate (the target) for --seconds, then one offering half of
  what the gateway sustained back to back; HTTP latency is from each message's scheduled send time to its
  answer (so queueing counts); MQTT latency is from the publish to the moment the stored row is seen (polled
  every 5 ms, so up to 5 ms late). Target: p99 < 50 ms at the target rate.

Run: .venv/bin/python bench/gateway_benchmark.py [--devices 200] [--seconds 10] [--database postgresql]
The load generator shares the machine's cores with the server; os.getloadavg() is printed with each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as machine
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import cbor2
import httpx
import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from hub_benchmark import Connection, free_port, percentile
from machimori import __version__
from machimori.gateway.client import DeviceClient
from machimori.gateway.envelope import open_envelope
from machimori.gateway.simulate import public_key_text

ADMIN_TOKEN = "mmk_bench-admin-token-0123456789abcdefghijklmnop"
# a topic of this run's own: the broker keeps earlier runs' worker sessions (an hour) in the same share group,
# and would hand them their share of this run's messages
TOPIC = f"machimori-bench/{os.getpid()}-{time.time_ns()}"
VALUES = {"temperature": 21.5, "relativeHumidity": 40.0, "pm25": 9.0}
MODELS = """models:
  - id: bench-sensor
    vendor: bench-vendor
    name: {ja: ベンチ用センサー, en: benchmark sensor}
    entity_type: https://smartdatamodels.org/dataModel.Environment/AirQualityObserved
    max_messages_per_minute: 100000000
    measurements:
      temperature: {min: -40, max: 60, unit: CEL}
      relativeHumidity: {min: 0, max: 100, unit: P1}
      pm25: {min: 0, max: 1000, unit: GQ}
"""


def say(text: str) -> None:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  [load {load}] {text}", flush=True)


class Fleet:
    """Registered devices and their clients; messages signed ahead of time."""

    def __init__(self, count: int) -> None:
        self.clients = [DeviceClient(f"bench-{n:05d}", Ed25519PrivateKey.generate()) for n in range(count)]

    def register(self, port: int) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            for client in self.clients:
                assert isinstance(client.key, Ed25519PrivateKey)
                body = {
                    "id": client.device_id,
                    "model": "bench-sensor",
                    "owner": "bench-owner",
                    "public_key": public_key_text(client.key),
                }
                http.post("/api/v1/devices", json=body).raise_for_status()

    def messages(self, count: int) -> list[bytes]:
        return [self.clients[n % len(self.clients)].message(VALUES) for n in range(count)]


def raw_verify_rate(fleet: Fleet, messages: list[bytes]) -> float:
    """Ed25519 verifications a second in one thread, on the messages' own Sig_structures."""
    keys = {client.device_id: client.key.public_key() for client in fleet.clients}  # type: ignore[union-attr]
    work = []
    for raw in messages:
        envelope = open_envelope(raw)
        to_be_signed = cbor2.dumps(["Signature1", envelope.protected, b"", envelope.payload])
        work.append((keys[envelope.device_id], envelope.tag, to_be_signed))
    started = time.perf_counter()
    for key, signature, data in work:
        key.verify(signature, data)
    return len(work) / (time.perf_counter() - started)


class Broker:
    """A Mosquitto of the bench's own on a free port, set for throughput: the packaged configuration caps
    in-flight messages to a subscriber at 20 and drops what queues beyond 1,000 for it."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        config = folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_inflight_messages 1000\nmax_queued_messages 0\nlog_dest none\n",
            encoding="utf-8",
        )
        self.process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Server:
    """`machimori serve` with the bench's device model, on a free port; MQTT workers if a broker is given."""

    def __init__(self, folder: Path, database_url: str | None, mqtt_workers: int = 0, broker: int = 1883) -> None:
        self.port = free_port()
        (folder / "models.yaml").write_text(MODELS, encoding="utf-8")
        environment = {
            **os.environ,
            "MACHIMORI_ADMIN_TOKEN": ADMIN_TOKEN,
            "MACHIMORI_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "MACHIMORI_DEVICE_MODELS": str(folder / "models.yaml"),
            "MACHIMORI_GATEWAY_CLOCK_BEHIND_SECONDS": "3600",
        }
        if database_url:
            environment["MACHIMORI_DATABASE_URL"] = database_url
        if mqtt_workers:
            environment |= {
                "MACHIMORI_GATEWAY_MQTT_URL": f"mqtt://127.0.0.1:{broker}",
                "MACHIMORI_GATEWAY_MQTT_TOPIC": TOPIC,
                "MACHIMORI_GATEWAY_MQTT_WORKERS": str(mqtt_workers),
                "MACHIMORI_GATEWAY_MQTT_CLIENT_ID": f"bench-{os.getpid()}-{time.time_ns()}",
            }
        command = [sys.executable, "-m", "machimori.cli", "serve", "--data-dir", str(folder), "--port", str(self.port)]
        self.log = folder / "server.log"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(self.log.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


# --- HTTP ----------------------------------------------------------------------------------------------------
HEADERS = b"Content-Type: application/cose\r\n"


async def http_throughput(port: int, messages: list[bytes], connections: int) -> tuple[float, list[float]]:
    """Accepted a second with every connection sending back to back; and each request's latency."""
    queue = iter(messages)
    latencies: list[float] = []
    refused = 0

    async def sender() -> None:
        nonlocal refused
        connection = Connection(port)
        for message in queue:
            started = time.perf_counter()
            status, _ = await connection.request("POST", "/api/v1/telemetry", HEADERS, message)
            latencies.append(time.perf_counter() - started)
            refused += status != 200
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    if refused:
        say(f"HTTP: {refused} messages refused")
    return (len(messages) - refused) / elapsed, latencies


async def http_open_loop(
    port: int, messages: list[bytes], rate: float, connections: int, devices: int
) -> tuple[float, list[float]]:
    """Send at a fixed rate; latency from each message's scheduled time (queueing included) to its answer.
    Each device keeps to one connection, so its messages arrive in order (as one device's would)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    latencies: list[float] = []

    async def connection_of(lane: int) -> None:
        connection = Connection(port)
        for n in range(len(messages)):
            if (n % devices) % connections != lane:
                continue
            scheduled = began + n / rate
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            status, _ = await connection.request("POST", "/api/v1/telemetry", HEADERS, messages[n])
            if status == 200:
                latencies.append(loop.time() - scheduled)
        connection.close()

    await asyncio.gather(*(connection_of(lane) for lane in range(min(connections, devices))))
    return len(latencies) / (loop.time() - began), latencies


# --- MQTT ----------------------------------------------------------------------------------------------------
class Rows:
    """Counts stored readings (and when each appeared) by polling the database."""

    def __init__(self, database_url: str | None, folder: Path) -> None:
        self.url = database_url
        self.path = folder / "machimori.db"

    @contextmanager
    def cursor(self) -> Iterator[object]:
        if self.url:
            with closing(psycopg.connect(self.url.replace("postgresql+psycopg", "postgresql"))) as connection:
                connection.autocommit = True
                yield connection
        else:
            with closing(sqlite3.connect(self.path)) as connection:
                yield connection

    def refusals(self) -> dict[str, int]:
        """Telemetry refusals recorded so far, by reason (events are stored in batches: a moment late)."""
        time.sleep(1)
        sql = "SELECT body FROM security_events WHERE body LIKE '%telemetry refused%' OR body LIKE '%folded%'"
        found: dict[str, int] = {}
        with self.cursor() as connection:
            for (body,) in connection.execute(sql).fetchall():  # type: ignore[attr-defined]
                unmapped = json.loads(body).get("unmapped", {})
                reason = str(unmapped.get("reason"))
                found[reason] = found.get(reason, 0) + int(unmapped.get("folded", 1))
        return found

    def newest(self, connection: object, after: int) -> list[tuple[int, str, int]]:
        sql = "SELECT id, device_id, counter FROM device_readings WHERE id > {} ORDER BY id"
        return list(connection.execute(sql.format(int(after))).fetchall())  # type: ignore[attr-defined]


def publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def mqtt_run(rows: Rows, messages: list[bytes], rate: float | None, port: int) -> tuple[float, list[float]]:
    """Publish every message (as fast as possible, or at `rate`); accepted a second (first publish to last row
    seen) and, per message, publish-to-row-seen latency."""
    keys = []
    for raw in messages:
        envelope = open_envelope(raw)
        keys.append((envelope.device_id, cbor2.loads(envelope.payload)["c"]))
    published: dict[tuple[str, int], float] = {}
    seen: dict[tuple[str, int], float] = {}
    with rows.cursor() as connection:
        last = max([row[0] for row in rows.newest(connection, 0)] or [0])
    client = publisher(port)
    done = threading.Event()

    def watch() -> None:
        nonlocal last
        with rows.cursor() as connection:
            while len(seen) < len(messages) and not done.is_set():
                now = time.perf_counter()
                for row_id, device, counter in rows.newest(connection, last):
                    seen[(device, counter)] = now
                    last = row_id
                time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.perf_counter()
    for n, (raw, key) in enumerate(zip(messages, keys, strict=True)):
        if rate is not None:
            ahead = began + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        published[key] = time.perf_counter()
        client.publish(f"{TOPIC}/{key[0]}", raw, qos=1)
    watcher.join(timeout=120)
    done.set()
    client.disconnect()
    client.loop_stop()
    if len(seen) < len(messages):
        say(f"MQTT: only {len(seen)} of {len(messages)} readings stored within the wait")
    finished = max(seen.values()) if seen else time.perf_counter()
    latencies = [seen[key] - published[key] for key in seen if key in published]
    return len(seen) / (finished - began), latencies


# --- report --------------------------------------------------------------------------------------------------
def line(what: str, rate: float, raw: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50, p99 = percentile(ordered, 0.50) * 1000, percentile(ordered, 0.99) * 1000
    return f"{what:44} {rate:9,.0f}/s  {rate / raw:6.1%} of raw   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20000, help="messages in each throughput run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each open-loop run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--mqtt-workers", type=int, default=1)
    args = parser.parse_args()
    print(
        f"machimori {__version__} gateway benchmark — {machine.processor() or machine.machine()}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="machimori-gateway-bench-") as temporary:
        folder = Path(temporary)
        database_url = None
        if args.database == "postgresql":
            name = f"machimori_bench_{os.getpid()}"
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        fleet = Fleet(args.devices)
        throughput_messages = fleet.messages(args.messages)
        raw = raw_verify_rate(fleet, throughput_messages)
        target = raw / 2
        say(f"raw Ed25519 verification (cryptography/OpenSSL, one thread): {raw:,.0f}/s — target {target:,.0f}/s")
        results = []
        broker = Broker(folder)
        server = Server(folder, database_url, mqtt_workers=args.mqtt_workers, broker=broker.port)
        try:
            fleet.register(server.port)
            rate, latencies = asyncio.run(http_throughput(server.port, throughput_messages, args.connections))
            results.append(line(f"HTTP, {args.connections} connections, back to back", rate, raw, latencies))
            say(results[-1])
            for offered in (target, rate / 2):  # the target rate, and half of what the gateway just sustained
                messages = fleet.messages(int(offered * args.seconds))
                got, latencies = asyncio.run(
                    http_open_loop(server.port, messages, offered, args.connections, args.devices)
                )
                results.append(line(f"HTTP, open loop offered {offered:,.0f}/s", got, raw, latencies))
                say(results[-1])
            rows = Rows(database_url, folder)
            rate, latencies = mqtt_run(rows, fleet.messages(args.messages), None, broker.port)
            results.append(line(f"MQTT, {args.mqtt_workers} worker(s), as fast as published", rate, raw, latencies))
            say(results[-1])
            for offered in (target, rate / 2):
                got, latencies = mqtt_run(rows, fleet.messages(int(offered * args.seconds)), offered, broker.port)
                results.append(line(f"MQTT, open loop offered {offered:,.0f}/s", got, raw, latencies))
                say(results[-1])
            say(f"refusals recorded during the run, by reason: {rows.refusals() or 'none'}")
        finally:
            server.stop()
            broker.stop()
            if database_url:
                with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"\nraw Ed25519 verify: {raw:,.0f}/s ({args.database}, {args.devices} devices)")
        for result in results:
            print(result)


if __name__ == "__main__":
    main()

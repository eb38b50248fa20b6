"""Benchmark: the tamper-evident audit log — append throughput, its peer pymerkle, and proof latency at a large tree.

Usage: python bench/audit_benchmark.py [--seconds 10] [--proof-entries 10000000] [--proofs 10000]
                                       [--skip-postgres] [--skip-proofs]
       python bench/audit_benchmark.py --quick        (2 s runs, 100,000-entry proof tree: a smoke test)

What it measures, each append figure on a fresh database (a new temporary directory for SQLite, a new PostgreSQL
database on 127.0.0.1:5432 created for the run and dropped after it), durable as the product runs by default
(SQLite WAL with synchronous=FULL; PostgreSQL as the server is configured, its settings are printed):

  1. 64 writers     64 asyncio tasks, each looping `await log.append(obj)` for --seconds: appends/s (group commits).
  2. single writer  one loop of `log.append_sync(obj)` for --seconds, each call waiting for its commit: appends/s.
  3. pymerkle 7     its SqliteTree as it ships: `append_entry(bytes)` in one loop (a commit per entry), and its batch
                    mode `append_entries` (4,096 entries per call, a commit per call), each for --seconds; with the
                    ratios machimori single writer / pymerkle single, and machimori 64 writers / pymerkle single.
  4. proofs         an N-entry SQLite log (N = --proof-entries) built through the real `await log.append` path
                    (1,024 tasks, synchronous=NORMAL for the build only: the same rows and tree, fewer fsyncs),
                    cached as bench/out/audit-proofs-N.db and reused while its head size is N; then 10,000 random
                    inclusion proofs and 10,000 random consistency proofs, each call timed alone (p50, p99, max),
                    and 100 of each verified against the roots (the run aborts if one fails). --proofs K times
                    K of each instead.

The logged objects are small audit records: action, actor, resource, time, seq. A markdown table of every figure,
with the machine, versions and date, is printed to stdout at the end; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from machimori.audit.log import AuditLog
from machimori.audit.merkle import verify_consistency, verify_inclusion
from machimori.audit.note import Signer
from machimori.storage import Database, open_database

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ORIGIN = "bench.machimori.example/audit"
PG_ADMIN = "host=127.0.0.1 user=postgres dbname=postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
WRITERS = 64
BUILD_TASKS = 1024
BUILD_SYNCHRONOUS = "NORMAL"
PEER_BATCH = 4096
PROOFS = 10_000
VERIFIED = 100
SEED = 9162
ACTIONS = ("model.assess", "model.upload", "token.create", "token.revoke", "finding.accept", "session.login")


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    measurement: str
    backend: str
    figure: str
    notes: str = ""


@dataclass(frozen=True)
class Built:
    """The proof tree on disk and how it came to be."""

    path: Path
    reused: bool
    seconds: float | None
    size_bytes: int


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def audit_object(seq: int, writer: int) -> dict[str, Any]:
    """A small, realistic audit record."""
    return {
        "action": ACTIONS[seq % len(ACTIONS)],
        "actor": f"user-{writer:03d}@city.example",
        "resource": f"/models/district-{seq % 97}/assessments/{seq}",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "seq": seq,
    }


def peer_bytes(obj: dict[str, Any]) -> bytes:
    """The record as pymerkle takes it: compact JSON bytes with sorted keys."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def per_second(figure: float) -> str:
    return f"{figure:,.0f} appends/s"


# --- databases ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    """The URL of a SQLite file in a fresh temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as directory:
        yield f"sqlite:///{directory}/audit.db"


def postgres_admin() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)


def postgres_skip_reason() -> str | None:
    """Why the PostgreSQL figures cannot be taken, or None if the server answers."""
    try:
        with postgres_admin() as connection:
            connection.execute("SELECT 1")
    except Exception as error:  # any failure to reach the server means: skip, and say why
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return None


def postgres_settings() -> str:
    with postgres_admin() as connection:
        server = connection.execute("SHOW server_version").fetchone()[0]
        settings = {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit")}
    return f"PostgreSQL {server} (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"


@contextlib.contextmanager
def postgres_url(tag: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    name = f"bench_audit_{os.getpid()}_{tag}"
    with postgres_admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        with postgres_admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def audit_log(url: str, synchronous: str = "FULL") -> Iterator[AuditLog]:
    """An audit log on the database at url, closed and disposed of afterwards."""
    database: Database = open_database(url, synchronous=synchronous)
    log = AuditLog(database, ORIGIN, [Signer.generate(ORIGIN)])
    try:
        yield log
    finally:
        log.close()
        database.dispose()


# --- appends --------------------------------------------------------------------------------------------------------


async def concurrent_appends(log: AuditLog, writers: int, seconds: float) -> tuple[int, float]:
    """Writers each loop `await log.append` until the deadline; entries appended and seconds taken."""
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + seconds

    async def writer(number: int) -> int:
        done = 0
        while time.perf_counter() < deadline:
            await log.append(audit_object(next(counter), number))
            done += 1
        return done

    counts = await asyncio.gather(*(writer(number) for number in range(writers)))
    return sum(counts), time.perf_counter() - start


def single_appends(append: Callable[[int], object], seconds: float) -> tuple[int, float]:
    """One loop of append(seq) until the deadline; entries appended and seconds taken."""
    start = time.perf_counter()
    deadline = start + seconds
    done = 0
    while time.perf_counter() < deadline:
        append(done)
        done += 1
    return done, time.perf_counter() - start


def machimori_writers(url: str, seconds: float) -> float:
    """Appends/s of WRITERS concurrent asyncio writers."""
    with audit_log(url) as log:
        count, taken = asyncio.run(concurrent_appends(log, WRITERS, seconds))
        assert log.head().size == count
    return count / taken


def machimori_single(url: str, seconds: float) -> float:
    """Appends/s of one synchronous writer."""
    with audit_log(url) as log:
        count, taken = single_appends(lambda seq: log.append_sync(audit_object(seq, 0)), seconds)
        assert log.head().size == count
    return count / taken


@dataclass(frozen=True)
class AppendFigures:
    writers: float
    single: float

    def rows(self, backend: str) -> list[Row]:
        return [
            Row(
                f"machimori, {WRITERS} writers (`await log.append`)",
                backend,
                per_second(self.writers),
                "group commits; every append returns once durable",
            ),
            Row(
                "machimori, single writer (`log.append_sync`)", backend, per_second(self.single), "a commit per append"
            ),
        ]


def append_figures(
    backend: str, url_for: Callable[[str], contextlib.AbstractContextManager[str]], seconds: float
) -> AppendFigures:
    """The 64-writer and single-writer figures on one backend, each on its own fresh database."""
    progress(f"{backend}: {WRITERS} writers, {seconds:g} s")
    with url_for("writers") as url:
        writers = machimori_writers(url, seconds)
    progress(f"{backend}: single writer, {seconds:g} s")
    with url_for("single") as url:
        single = machimori_single(url, seconds)
    return AppendFigures(writers, single)


# --- the peer -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def peer_tree() -> Iterator[Any]:
    """A pymerkle SqliteTree on a fresh file, as it ships (its own connection settings), closed afterwards."""
    import pymerkle

    with (
        tempfile.TemporaryDirectory(prefix="bench-pymerkle-") as directory,
        pymerkle.SqliteTree(os.path.join(directory, "merkle.db")) as tree,
    ):
        yield tree


def peer_settings(tree: Any) -> str:
    journal = tree.con.execute("PRAGMA journal_mode").fetchone()
    synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[tree.con.execute("PRAGMA synchronous").fetchone()]
    return f"journal_mode={journal}, synchronous={synchronous}"


def peer_single(seconds: float) -> tuple[float, str]:
    with peer_tree() as tree:
        settings = peer_settings(tree)
        count, taken = single_appends(lambda seq: tree.append_entry(peer_bytes(audit_object(seq, 0))), seconds)
        assert tree.get_size() == count
    return count / taken, settings


def peer_batch(seconds: float) -> float:
    with peer_tree() as tree:
        start = time.perf_counter()
        deadline = start + seconds
        done = 0
        while time.perf_counter() < deadline:
            tree.append_entries([peer_bytes(audit_object(done + i, 0)) for i in range(PEER_BATCH)])
            done += PEER_BATCH
        taken = time.perf_counter() - start
        assert tree.get_size() == done
    return done / taken


def peer_rows(seconds: float, machimori: AppendFigures) -> list[Row]:
    """pymerkle's single-writer and batch figures, and the ratios of machimori on SQLite to its single writer."""
    pymerkle_version = version("pymerkle")
    progress(f"pymerkle {pymerkle_version}: single writer, {seconds:g} s")
    single, settings = peer_single(seconds)
    progress(f"pymerkle {pymerkle_version}: append_entries in batches of {PEER_BATCH}, {seconds:g} s")
    batch = peer_batch(seconds)
    backend = f"SQLite ({settings})"
    rows = [
        Row(
            f"pymerkle {pymerkle_version}, single writer (`append_entry`)",
            backend,
            f"{single:,.0f} appends/s",
            "one commit per append",
        ),
        Row(
            f"pymerkle {pymerkle_version}, batch mode (`append_entries`, {PEER_BATCH:,} per call)",
            backend,
            f"{batch:,.0f} appends/s",
            "one commit per call: an entry is durable only with its whole batch",
        ),
    ]
    for label, figure in (("single writer", machimori.single), (f"{WRITERS} writers", machimori.writers)):
        rows.append(Row(f"ratio machimori {label} / pymerkle single writer", "SQLite", f"{figure / single:,.2f} ×"))
    return rows


# --- proofs ---------------------------------------------------------------------------------------------------------


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def cached_size(path: Path) -> int | None:
    """The head size of a cached proof log, or None if there is none (or it cannot be read)."""
    if not path.exists():
        return None
    try:
        with audit_log(f"sqlite:///{path}") as log:
            return log.head().size
    except Exception as error:  # a broken cache is rebuilt
        progress(f"cannot reuse {path}: {error}")
        return None


async def build_appends(log: AuditLog, entries: int) -> None:
    """Append entries records through BUILD_TASKS concurrent `await log.append` loops, reporting progress."""
    counter = itertools.count()
    start = time.perf_counter()

    async def writer(number: int) -> None:
        while (seq := next(counter)) < entries:
            await log.append(audit_object(seq, number))

    async def reporter() -> None:
        while True:
            await asyncio.sleep(15)
            done = log.head().size
            speed = done / (time.perf_counter() - start)
            eta = (entries - done) / speed if speed else math.inf
            progress(f"build: {done:,} / {entries:,} entries, {speed:,.0f}/s, about {eta / 60:.1f} min left")

    report = asyncio.create_task(reporter())
    try:
        await asyncio.gather(*(writer(number) for number in range(BUILD_TASKS)))
    finally:
        report.cancel()


def settle_wal(path: Path) -> None:
    """Fold the write-ahead log into the database file so the file stands alone."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def build_proof_log(entries: int) -> Built:
    """The cached N-entry log, built through the product's append path if missing or of another size."""
    path = OUT / f"audit-proofs-{entries}.db"
    if cached_size(path) == entries:
        progress(f"reusing {path} ({entries:,} entries)")
        return Built(path, True, None, file_size(path))
    OUT.mkdir(parents=True, exist_ok=True)
    partial = OUT / f"audit-proofs-{entries}.partial.db"
    for stale in (path, partial):
        for file in (stale, Path(f"{stale}-wal"), Path(f"{stale}-shm")):
            file.unlink(missing_ok=True)
    progress(
        f"building {entries:,} entries: {BUILD_TASKS} tasks of `await log.append`, synchronous={BUILD_SYNCHRONOUS}"
    )
    start = time.perf_counter()
    with audit_log(f"sqlite:///{partial}", synchronous=BUILD_SYNCHRONOUS) as log:
        asyncio.run(build_appends(log, entries))
    seconds = time.perf_counter() - start
    settle_wal(partial)
    partial.rename(path)
    progress(f"built {entries:,} entries in {seconds:,.1f} s ({entries / seconds:,.0f}/s)")
    return Built(path, False, seconds, file_size(path))


def latency(nanoseconds: list[int]) -> str:
    """p50, p99 and max (nearest rank) in milliseconds."""
    ordered = sorted(nanoseconds)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] / 1e6

    return f"p50 {rank(0.50):.3f} ms, p99 {rank(0.99):.3f} ms, max {ordered[-1] / 1e6:.3f} ms"


Case = tuple[int, int]


def time_proofs(
    kind: str,
    count: int,
    case: Callable[[], Case],
    prove: Callable[[int, int], list[bytes]],
    check: Callable[[int, int, list[bytes]], bool],
) -> str:
    """Time count proofs of random cases, each call alone; then verify the first VERIFIED (abort if one fails)."""
    samples: list[int] = []
    kept: list[tuple[Case, list[bytes]]] = []
    started = reported = time.perf_counter()
    for number in range(count):
        a, b = case()
        start = time.perf_counter_ns()
        proof = prove(a, b)
        samples.append(time.perf_counter_ns() - start)
        if number < VERIFIED:
            kept.append(((a, b), proof))
        if time.perf_counter() - reported > 15:
            reported = time.perf_counter()
            left = (reported - started) / (number + 1) * (count - number - 1)
            progress(f"{kind}: {number + 1:,} / {count:,} proofs, about {left / 60:.1f} min left")
    for (a, b), proof in kept:
        if not check(a, b, proof):
            raise SystemExit(f"{kind} proof for ({a}, {b}) does not verify")
    return latency(samples)


def inclusion_latency(log: AuditLog, size: int, count: int, rng: random.Random) -> str:
    """Random inclusion proofs (index < size) in the tree of this size."""
    root = log.root(size)
    if root != log.head().root:
        raise SystemExit(f"the root of size {size} is not the head root")

    def check(index: int, tree_size: int, proof: list[bytes]) -> bool:
        return verify_inclusion(index, tree_size, log.entry(index).leaf_hash, proof, root)

    return time_proofs("inclusion", count, lambda: (rng.randrange(size), size), log.inclusion_proof, check)


def consistency_latency(log: AuditLog, size: int, count: int, rng: random.Random) -> str:
    """Random consistency proofs, 1 ≤ first < second ≤ size."""

    def case() -> Case:
        second = rng.randint(2, size)
        return rng.randrange(1, second), second

    def check(first: int, second: int, proof: list[bytes]) -> bool:
        return verify_consistency(first, second, log.root(first), log.root(second), proof)

    return time_proofs("consistency", count, case, log.consistency_proof, check)


def proof_rows(entries: int, count: int) -> list[Row]:
    built = build_proof_log(entries)
    how = f"{BUILD_TASKS} tasks of `await log.append`, synchronous={BUILD_SYNCHRONOUS} for the build only"
    if built.reused:
        build = Row(
            f"proof tree build, {entries:,} entries",
            "SQLite",
            "reused from bench/out/",
            f"built earlier by this script ({how}); {built.size_bytes / 1e9:,.2f} GB file",
        )
    else:
        assert built.seconds is not None
        build = Row(
            f"proof tree build, {entries:,} entries",
            "SQLite",
            f"{built.seconds:,.1f} s ({entries / built.seconds:,.0f} appends/s)",
            f"{how}; {built.size_bytes / 1e9:,.2f} GB file",
        )
    rng = random.Random(SEED)
    with audit_log(f"sqlite:///{built.path}") as log:
        if log.head().size != entries:
            raise SystemExit(f"{built.path} holds {log.head().size} entries, not {entries}")
        progress(f"timing {count:,} inclusion proofs at size {entries:,}")
        inclusion = inclusion_latency(log, entries, count, rng)
        progress(f"timing {count:,} consistency proofs up to size {entries:,}")
        consistency = consistency_latency(log, entries, count, rng)
    verified = min(count, VERIFIED)
    return [
        build,
        Row(
            f"inclusion proof, {count:,} random (index < {entries:,})",
            "SQLite",
            inclusion,
            f"`log.inclusion_proof`, each call timed alone; {verified} verified",
        ),
        Row(
            f"consistency proof, {count:,} random (1 ≤ first < second ≤ {entries:,})",
            "SQLite",
            consistency,
            f"`log.consistency_proof`, each call timed alone; {verified} verified",
        ),
    ]


# --- report ---------------------------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = ["| measurement | backend | figure | notes |", "|---|---|---|---|"]
    lines += [f"| {row.measurement} | {row.backend} | {row.figure} | {row.notes} |" for row in rows]
    return "\n".join(lines)


def machine(pg: str) -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {pg}, machimori {version('machimori')}, "
        f"{dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}"
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, help="length of each append run (default 10, --quick 2)")
    parser.add_argument(
        "--proof-entries", type=int, help="size of the proof tree (default 10,000,000, --quick 100,000)"
    )
    parser.add_argument("--proofs", type=int, default=PROOFS, help=f"proofs timed of each kind (default {PROOFS:,})")
    parser.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL figures")
    parser.add_argument("--skip-proofs", action="store_true", help="no proof tree build and no proof latencies")
    parser.add_argument("--quick", action="store_true", help="2 s runs and a 100,000-entry proof tree")
    args = parser.parse_args()
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.proof_entries = args.proof_entries or (100_000 if args.quick else 10_000_000)
    if args.proof_entries < 2:
        parser.error("--proof-entries must be at least 2")
    if args.proofs < 1:
        parser.error("--proofs must be at least 1")
    return args


def main() -> None:
    args = parse_arguments()
    sqlite = "SQLite (WAL, synchronous=FULL)"
    on_sqlite = append_figures(sqlite, lambda _tag: sqlite_url(), args.seconds)
    rows = on_sqlite.rows(sqlite)
    pg = "PostgreSQL not measured (--skip-postgres)"
    if not args.skip_postgres:
        reason = postgres_skip_reason()
        if reason is None:
            pg = postgres_settings()
            rows += append_figures(pg, postgres_url, args.seconds).rows(pg)
        else:
            pg = "PostgreSQL figures skipped"
            progress(f"PostgreSQL figures skipped: 127.0.0.1:5432 is unreachable ({reason})")
            rows.append(
                Row("machimori, PostgreSQL figures", "PostgreSQL", "skipped", f"127.0.0.1:5432 unreachable: {reason}")
            )
    rows += peer_rows(args.seconds, on_sqlite)
    if not args.skip_proofs:
        rows += proof_rows(args.proof_entries, args.proofs)
    print(f"# machimori audit log — {machine(pg)}")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()

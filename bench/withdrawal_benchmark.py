"""Withdrawal to first denied decision, across two processes sharing one PostgreSQL.

Process A gives and withdraws a resident's consent; process B keeps asking its own decision point whether
the service may read her data. For each withdrawal, the time from A's call to withdraw (which commits, appends the audit entry and
signs the receipt) to B's first denial
(CLOCK_MONOTONIC is shared by processes on one machine). Run:
.venv/bin/python bench/withdrawal_benchmark.py [--rounds 200] [--postgres URL-of-an-empty-database]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import uuid
from multiprocessing.connection import Connection

import psycopg

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.consent.purposes import DPV
from machimori.consent.records import ConsentStore
from machimori.events import EventStream
from machimori.policy import Action, Context, DataType, DecisionPoint, Subject, Target
from machimori.storage import open_database
from machimori.storage.notify import PostgresNotifier

PURPOSE = DPV + "ServiceProvision"
SERVICE = Subject("bus-app", "service", org="minato-bus")
TARGET = Target("urn:ngsi-ld:Person:hanako", DataType.personal, org="minato-city", resident="hanako")


def open_side(url: str, signer: Signer) -> tuple[ConsentStore, DecisionPoint]:
    database = open_database(url)
    store = ConsentStore(
        database,
        AuditLog(database, signer.name, [signer]),
        EventStream(database),
        signer,
        notifier=PostgresNotifier(database),
    )
    return store, DecisionPoint(store.current, store.version)


def watcher(url: str, key: str, pipe: Connection) -> None:
    """Process B: report the moment each permit turns into a denial (and back)."""
    _, pdp = open_side(url, Signer.parse(key))
    pipe.send("ready")
    last = None
    while True:
        permit = pdp.decide(SERVICE, Action.read, TARGET, Context(PURPOSE)).permit
        if permit != last:
            pipe.send((permit, time.monotonic()))
            last = permit
        if pipe.poll() and pipe.recv() == "stop":
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres", help="URL of an empty database (default: a fresh one on 127.0.0.1)")
    args = parser.parse_args()
    name = None
    url = args.postgres
    if url is None:
        name = f"bench_withdrawal_{uuid.uuid4().hex[:8]}"
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    signer = Signer.generate("bench.example/audit")
    store, _ = open_side(url, signer)
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=watcher, args=(url, str(signer), child))
    process.start()
    assert parent.recv() == "ready"
    latencies = []
    try:
        for _ in range(args.rounds):
            store.give("hanako", "bus-app", PURPOSE)
            while parent.recv()[0] is not True:
                pass
            asked = time.monotonic()  # the resident's withdrawal starts (commit, audit entry, receipt follow)
            store.withdraw("hanako", "bus-app", PURPOSE)
            permit, seen = parent.recv()
            assert permit is False
            latencies.append(seen - asked)
    finally:
        parent.send("stop")
        process.join(10)
        store.notifier.close()
        store.database.dispose()
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"| withdrawal → first denial in another process | {args.rounds} rounds | p50 {p50 * 1000:.1f} ms | "
        f"p99 {p99 * 1000:.1f} ms | max {latencies[-1] * 1000:.1f} ms |"
    )
    if name:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

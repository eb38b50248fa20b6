"""decide() for personal data: machimori's decision point beside AWS Cedar (cedarpy) on the same policy.

10,000 residents × 20 services × 5 purposes; a random third of the 1,000,000 (resident, service, purpose)
triples hold a given consent. Each request asks whether a service may read a resident's data for a
purpose. machimori is timed warm (decisions cached) and cold (cache emptied, consents in memory);
Cedar is given the same facts as one entity graph (services, and residents with their consents) and
the same rule as one policy, both parsed once and reused. Run: .venv/bin/python bench/decide_benchmark.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import cedarpy
from sqlalchemy import insert

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.consent.purposes import DPV_PURPOSES
from machimori.consent.records import ConsentStore
from machimori.events import EventStream
from machimori.ids import uuid7
from machimori.policy import Action, Context, DataType, DecisionPoint, Subject, Target
from machimori.storage import open_database
from machimori.storage.tables import consents

RESIDENTS, SERVICES, PURPOSES = 10_000, 20, 5
CEDAR_POLICY = """permit(principal, action == Action::"read", resource)
when { principal.kind == "service" && context has purpose &&
       resource.consents.contains({service: principal.sid, purpose: context.purpose}) };"""


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    purposes = [p.iri for p in DPV_PURPOSES[:PURPOSES]]
    services = [f"service-{n:02d}" for n in range(SERVICES)]
    residents = [f"resident-{n:05d}" for n in range(RESIDENTS)]
    given = {(r, s, p) for r in residents for s in services for p in purposes if rng.random() < 1 / 3}

    folder = Path(tempfile.mkdtemp())
    database = open_database(f"sqlite:///{folder / 'decide.db'}")
    now = dt.datetime.now(dt.UTC)
    with database.engine.begin() as connection:
        rows = [
            {"id": uuid7(), "resident": r, "service": s, "purpose": p, "state": "given", "changed_at": now}
            for r, s, p in given
        ]
        connection.execute(insert(consents), rows)
    signer = Signer.generate("bench.example/audit")
    audit = AuditLog(database, signer.name, [signer])
    store = ConsentStore(database, audit, EventStream(database), signer)
    pdp = DecisionPoint(store.current, store.version)
    for resident in residents:
        store.current(resident, services[0], purposes[0])  # load every resident's consents into memory

    requests = [(rng.choice(services), rng.choice(residents), rng.choice(purposes)) for _ in range(args.requests)]
    subjects = {s: Subject(s, "service", org=s) for s in services}
    targets = {r: Target(f"urn:ngsi-ld:Person:{r}", DataType.personal, org="city", resident=r) for r in residents}

    def run_machimori() -> tuple[list[int], int]:
        samples, permits = [], 0
        for service, resident, purpose in requests:
            subject, target, context = subjects[service], targets[resident], Context(purpose)
            start = time.perf_counter_ns()
            decision = pdp.decide(subject, Action.read, target, context)
            samples.append(time.perf_counter_ns() - start)
            permits += decision.permit
        return samples, permits

    pdp.policy_changed()
    cold, permits_cold = run_machimori()
    warm, permits_warm = run_machimori()
    expected = sum((r, s, p) in given for s, r, p in requests)
    assert permits_cold == permits_warm == expected, (permits_cold, permits_warm, expected)

    by_resident: dict[str, list[dict[str, str]]] = {r: [] for r in residents}
    for r, s, p in given:
        by_resident[r].append({"service": s, "purpose": p})
    policy = cedarpy.PolicySet.from_str(CEDAR_POLICY)
    graph = [
        {"uid": {"type": "Subject", "id": s}, "attrs": {"kind": "service", "sid": s}, "parents": []} for s in services
    ] + [
        {"uid": {"type": "PersonalData", "id": r}, "attrs": {"consents": by_resident[r]}, "parents": []}
        for r in residents
    ]
    entities = cedarpy.Entities.from_json_str(json.dumps(graph))  # parsed once, reused by every call
    cedar_samples, cedar_permits = [], 0
    cedar_requests = requests[: min(len(requests), 20_000)]
    for service, resident, purpose in cedar_requests:
        request = {
            "principal": f'Subject::"{service}"',
            "action": 'Action::"read"',
            "resource": f'PersonalData::"{resident}"',
            "context": {"purpose": purpose},
        }
        start = time.perf_counter_ns()
        result = cedarpy.is_authorized(request, policy, entities)
        cedar_samples.append(time.perf_counter_ns() - start)
        cedar_permits += result.allowed
    assert cedar_permits == sum((r, s, p) in given for s, r, p in cedar_requests)

    print(
        f"# decide() — {RESIDENTS:,} residents × {SERVICES} services × {PURPOSES} purposes, {len(given):,} consents given"
    )
    print("| engine | requests | p50 µs | p99 µs | mean µs |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, samples in (
        ("machimori decide(), cached", warm),
        ("machimori decide(), cache empty", cold),
        ("cedarpy is_authorized (policy and entities pre-parsed)", cedar_samples),
    ):
        mean = statistics.fmean(samples) / 1000
        print(
            f"| {name} | {len(samples):,} | {percentile(samples, 0.5):.1f} | {percentile(samples, 0.99):.1f} | {mean:.1f} |"
        )
    print(
        f"\nratio cedarpy / machimori p50: cached {percentile(cedar_samples, 0.5) / percentile(warm, 0.5):.0f}×, "
        f"cache empty {percentile(cedar_samples, 0.5) / percentile(cold, 0.5):.0f}×"
    )
    audit.close()


if __name__ == "__main__":
    main()

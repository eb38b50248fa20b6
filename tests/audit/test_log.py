"""The audit log on SQLite and PostgreSQL: appends, proofs any RFC 9162 verifier accepts, checkpoints."""

from __future__ import annotations

import asyncio
import base64
import random
from pathlib import Path

import pytest

from machimori.audit import merkle
from machimori.audit.canonical import canonical_json
from machimori.audit.checkpoint import CheckpointError, open_checkpoint
from machimori.audit.log import AuditLog, EntryRejected
from machimori.audit.note import Signer
from machimori.audit.store import EntryNotFound
from machimori.storage import Database

from .conftest import ORIGIN


def record(i: int) -> dict[str, object]:
    return {"action": "consent.withdraw", "actor": {"uid": f"resident-{i}"}, "seq": i, "note": "同意を撤回"}


def test_appends_get_consecutive_indices_and_leaf_hashes_of_their_canonical_json(audit_log: AuditLog) -> None:
    results = [audit_log.append_sync(record(i)) for i in range(5)]
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    for i, result in enumerate(results):
        assert result.leaf_hash == merkle.leaf_hash(canonical_json(record(i)))
        stored = audit_log.entry(i)
        assert stored.value() == record(i)
        assert stored.leaf_hash == result.leaf_hash


def test_concurrent_writers_share_commits_and_lose_nothing(audit_log: AuditLog) -> None:
    async def writers() -> list[int]:
        results = await asyncio.gather(*(audit_log.append(record(i)) for i in range(300)))
        return [r.index for r in results]

    indices = asyncio.run(writers())
    assert sorted(indices) == list(range(300))
    assert audit_log.head().size == 300


def test_every_proof_verifies_against_the_roots(audit_log: AuditLog) -> None:
    for i in range(45):
        audit_log.append_sync(record(i))
    rng = random.Random(7)
    for _ in range(40):
        size = rng.randint(1, 45)
        index = rng.randrange(size)
        proof = audit_log.inclusion_proof(index, size)
        assert merkle.verify_inclusion(index, size, audit_log.entry(index).leaf_hash, proof, audit_log.root(size))
        first = rng.randint(0, size)
        consistency = audit_log.consistency_proof(first, size)
        assert merkle.verify_consistency(first, size, audit_log.root(first), audit_log.root(size), consistency)


def test_roots_match_a_direct_computation(audit_log: AuditLog) -> None:
    leaves = [merkle.leaf_hash(canonical_json(record(i))) for i in range(20)]
    for i in range(20):
        audit_log.append_sync(record(i))
    frontier = merkle.Frontier()
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf, [])
        assert audit_log.root(size) == frontier.root()
    assert audit_log.root(0) == merkle.EMPTY_ROOT


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda log: log.inclusion_proof(3, 3), "index 3"),
        (lambda log: log.inclusion_proof(0, 4), "larger than the log"),
        (lambda log: log.consistency_proof(2, 1), "from size 2 to size 1"),
        (lambda log: log.consistency_proof(1, 9), "larger than the log"),
        (lambda log: log.root(4), "larger than the log"),
    ],
)
def test_out_of_range_proofs_are_refused(audit_log: AuditLog, call: object, message: str) -> None:
    for i in range(3):
        audit_log.append_sync(record(i))
    with pytest.raises(merkle.ProofError, match=message):
        call(audit_log)  # type: ignore[operator]


def test_unknown_entry_is_not_found(audit_log: AuditLog) -> None:
    with pytest.raises(EntryNotFound):
        audit_log.entry(0)


@pytest.mark.parametrize("bad", [[1, 2], "text", {"x": float("nan")}, {"big": "x" * 70_000}, {"s": "\ud800"}])
def test_unloggable_objects_are_rejected_before_they_reach_the_log(audit_log: AuditLog, bad: object) -> None:
    with pytest.raises(EntryRejected):
        audit_log.append_sync(bad)
    assert audit_log.head().size == 0


def test_checkpoint_is_a_signed_note_of_the_head(audit_log: AuditLog, signer: Signer) -> None:
    for i in range(7):
        audit_log.append_sync(record(i))
    note = audit_log.checkpoint()
    checkpoint = open_checkpoint(note, [signer.verifier], ORIGIN)
    assert (checkpoint.size, checkpoint.root) == (7, audit_log.head().root)
    assert note.splitlines()[2] == base64.b64encode(audit_log.root(7)).decode()
    assert audit_log.checkpoint() == note  # kept, not re-signed
    with pytest.raises(CheckpointError, match="not signed by a trusted key"):
        open_checkpoint(note, [Signer.generate(ORIGIN).verifier])


def test_a_second_process_appending_to_the_same_database_is_sequenced_in(database: Database, signer: Signer) -> None:
    first = AuditLog(database, ORIGIN, [signer])
    second = AuditLog(database, ORIGIN, [signer])  # as `machimori audit append` beside a running server
    try:
        for i in range(10):
            (first if i % 3 else second).append_sync(record(i))
        assert first.head().size == 10
        frontier = merkle.Frontier()
        for i in range(10):
            frontier.append(first.entry(i).leaf_hash, [])
        assert first.head().root == frontier.root()
    finally:
        first.close()
        second.close()


def test_a_database_of_another_log_is_refused(database: Database, signer: Signer) -> None:
    AuditLog(database, ORIGIN, [signer]).close()
    with pytest.raises(ValueError, match="holds the log"):
        AuditLog(database, "other.example/log", [signer])


def test_cosignature_of_a_known_witness_is_kept_and_a_stranger_is_refused(database: Database, signer: Signer) -> None:
    witness = Signer.generate("witness.example/w1", 0x04)
    log = AuditLog(database, ORIGIN, [signer], witnesses=[witness.verifier])
    try:
        log.append_sync(record(0))
        note = log.checkpoint()
        text = note[: note.index("\n\n") + 1]
        cosigned = log.add_cosignature(1, witness.signature_line(text, 1_700_000_000))
        assert log.checkpoint() == cosigned
        stranger = Signer.generate("stranger.example/w", 0x04)
        with pytest.raises(CheckpointError, match="not a witness"):
            log.add_cosignature(1, stranger.signature_line(text, 1))
        forged = witness.signature_line(text.replace("\n1\n", "\n2\n"), 1)
        with pytest.raises(CheckpointError, match="invalid signature"):
            log.add_cosignature(1, forged)
    finally:
        log.close()


def test_proof_nodes_are_read_by_primary_key_not_by_scanning(tmp_path: Path) -> None:
    """A proof at ten million entries stays fast only if each node is a key lookup (SQLite query plan)."""
    from machimori.audit.store import node_query
    from machimori.storage import open_database

    database = open_database(f"sqlite:///{tmp_path / 'plan.db'}")
    statement = node_query([(1, 4), (3, 0), (7, 2)]).compile(database.engine, compile_kwargs={"literal_binds": True})
    with database.engine.connect() as connection:
        plan = " | ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"))
    database.dispose()
    assert "USING PRIMARY KEY" in plan and "SCAN audit_nodes" not in plan, plan

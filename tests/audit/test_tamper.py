"""Tampering with the stored log, as a database administrator could, on SQLite and PostgreSQL.

Each test writes an honest log, saves a checkpoint as an auditor would, then changes rows directly in
the database and shows verification naming the index.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, delete, insert, select, text, update

from machimori.audit import merkle
from machimori.audit.canonical import canonical_json
from machimori.audit.checkpoint import open_checkpoint
from machimori.audit.checks import verify_database
from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.audit.verify import VerifyReport
from machimori.storage import Database
from machimori.storage.tables import audit_checkpoints, audit_entries, audit_head

SIZE = 24


@pytest.fixture
def honest(audit_log: AuditLog, signer: Signer) -> AuditLog:
    for i in range(SIZE):
        audit_log.append_sync({"action": "grant", "seq": i, "who": f"staff-{i % 4}"})
    audit_log.checkpoint()
    return audit_log


def verify(log: AuditLog, signer: Signer) -> VerifyReport:
    return verify_database(log.database, [signer.verifier], open_checkpoint(log.checkpoint(), [signer.verifier]))


def tamper(database: Database, change: Callable[[Connection], None]) -> None:
    with database.engine.begin() as connection:
        change(connection)


def row(connection: Connection, index: int) -> dict[str, object]:
    return dict(connection.execute(select(audit_entries).where(audit_entries.c.idx == index)).one()._mapping)


def kinds(report: VerifyReport) -> list[tuple[int, str]]:
    return [(f.index, f.kind) for f in report.findings]


def test_an_honest_log_verifies(honest: AuditLog, signer: Signer) -> None:
    report = verify(honest, signer)
    assert report.ok, kinds(report)
    assert report.entries == SIZE


def test_an_edited_entry_is_reported_at_its_index(honest: AuditLog, signer: Signer) -> None:
    edited = canonical_json({"action": "grant", "seq": 7, "who": "intruder"}).decode()
    tamper(
        honest.database, lambda c: c.execute(update(audit_entries).where(audit_entries.c.idx == 7).values(entry=edited))
    )
    assert kinds(verify(honest, signer)) == [(7, "edited")]


def test_an_entry_rewritten_with_its_leaf_hash_is_reported_at_its_index(honest: AuditLog, signer: Signer) -> None:
    data = canonical_json({"action": "grant", "seq": 7, "who": "intruder"})
    values = {"entry": data.decode(), "leaf_hash": merkle.leaf_hash(data)}
    tamper(honest.database, lambda c: c.execute(update(audit_entries).where(audit_entries.c.idx == 7).values(**values)))
    assert kinds(verify(honest, signer)) == [(7, "rewritten"), (23, "checkpoint")]


def test_a_deleted_row_is_reported_at_its_index(honest: AuditLog, signer: Signer) -> None:
    tamper(honest.database, lambda c: c.execute(delete(audit_entries).where(audit_entries.c.idx == 11)))
    found = kinds(verify(honest, signer))
    assert found[0] == (11, "missing")


def test_a_deleted_row_with_the_rest_renumbered_is_reported_at_its_index(honest: AuditLog, signer: Signer) -> None:
    def delete_and_shift(connection: Connection) -> None:
        connection.execute(delete(audit_entries).where(audit_entries.c.idx == 11))
        for index in range(12, SIZE):
            connection.execute(update(audit_entries).where(audit_entries.c.idx == index).values(idx=index - 1))

    tamper(honest.database, delete_and_shift)
    found = kinds(verify(honest, signer))
    assert found[0] == (11, "rewritten")
    assert (SIZE - 1, "missing") in found


def test_two_swapped_rows_are_both_reported(honest: AuditLog, signer: Signer) -> None:
    def swap(connection: Connection) -> None:
        five, nine = row(connection, 5), row(connection, 9)
        for index, source in ((5, nine), (9, five)):
            values = {k: v for k, v in source.items() if k != "idx"}
            connection.execute(update(audit_entries).where(audit_entries.c.idx == index).values(**values))

    tamper(honest.database, swap)
    found = kinds(verify(honest, signer))
    assert found[:2] == [(5, "moved"), (9, "moved")]


def test_swapped_entry_texts_are_both_reported(honest: AuditLog, signer: Signer) -> None:
    def swap(connection: Connection) -> None:
        five, nine = row(connection, 5)["entry"], row(connection, 9)["entry"]
        connection.execute(update(audit_entries).where(audit_entries.c.idx == 5).values(entry=nine))
        connection.execute(update(audit_entries).where(audit_entries.c.idx == 9).values(entry=five))

    tamper(honest.database, swap)
    assert kinds(verify(honest, signer)) == [(5, "edited"), (9, "edited")]


@pytest.mark.parametrize("careful", [True, False])
def test_an_inserted_row_is_reported_at_its_index(honest: AuditLog, signer: Signer, careful: bool) -> None:
    def insert_at_3(connection: Connection) -> None:
        for index in range(SIZE - 1, 2, -1):
            connection.execute(update(audit_entries).where(audit_entries.c.idx == index).values(idx=index + 1))
        data = canonical_json({"action": "grant", "seq": -1, "who": "backdated"})
        leaf = merkle.leaf_hash(data)
        # A careful forger even ties the new row to the one before it.
        link = merkle.link_hash(row(connection, 2)["link_hash"], leaf) if careful else bytes(32)  # type: ignore[arg-type]
        connection.execute(insert(audit_entries).values(idx=3, entry=data.decode(), leaf_hash=leaf, link_hash=link))

    tamper(honest.database, insert_at_3)
    found = kinds(verify(honest, signer))
    # The careful forger's row itself links fine, so the break shows on the row after it.
    assert found[0] == ((4, "rewritten") if careful else (3, "moved"))
    assert any(kind == "checkpoint" for _, kind in found)


def test_a_log_rewritten_with_every_hash_recomputed_fails_the_saved_checkpoint(
    honest: AuditLog, signer: Signer
) -> None:
    saved = open_checkpoint(honest.checkpoint(), [signer.verifier])

    def rewrite_everything_from_10(connection: Connection) -> None:
        link = row(connection, 9)["link_hash"]
        for index in range(10, SIZE):
            data = canonical_json({"action": "grant", "seq": index, "who": "rewritten"})
            leaf = merkle.leaf_hash(data)
            link = merkle.link_hash(link, leaf)  # type: ignore[arg-type]
            connection.execute(
                update(audit_entries)
                .where(audit_entries.c.idx == index)
                .values(entry=data.decode(), leaf_hash=leaf, link_hash=link)
            )
        connection.execute(delete(audit_checkpoints))

    tamper(honest.database, rewrite_everything_from_10)
    report = verify_database(honest.database, [signer.verifier], saved)
    assert kinds(report) == [(SIZE - 1, "checkpoint")]


def test_a_forged_kept_checkpoint_is_reported(honest: AuditLog, signer: Signer) -> None:
    def forge(connection: Connection) -> None:
        note = connection.execute(select(audit_checkpoints.c.note)).scalar_one()
        connection.execute(update(audit_checkpoints).values(note=note.replace(f"\n{SIZE}\n", f"\n{SIZE - 1}\n")))

    saved = open_checkpoint(honest.checkpoint(), [signer.verifier])
    tamper(honest.database, forge)
    report = verify_database(honest.database, [signer.verifier], saved)
    assert [f.kind for f in report.findings] == ["checkpoint"]
    assert "invalid signature" in report.findings[0].detail


def test_a_truncated_log_is_shorter_than_the_saved_checkpoint(honest: AuditLog, signer: Signer) -> None:
    saved = open_checkpoint(honest.checkpoint(), [signer.verifier])
    tamper(honest.database, lambda c: c.execute(delete(audit_entries).where(audit_entries.c.idx >= 20)))
    tamper(honest.database, lambda c: c.execute(update(audit_head).values(tree_size=20)))
    report = verify_database(honest.database, [signer.verifier], saved)
    assert (20, "missing") in kinds(report)


def test_raw_sql_edit_of_the_json_is_caught(honest: AuditLog, signer: Signer) -> None:
    statement = text("UPDATE audit_entries SET entry = REPLACE(entry, 'staff-1', 'staff-9') WHERE idx = 13")
    tamper(honest.database, lambda c: c.execute(statement))
    assert kinds(verify(honest, signer)) == [(13, "edited")]
    assert json.loads(honest.entry(13).entry)["who"] == "staff-9"

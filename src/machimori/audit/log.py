"""The audit log: append, prove, checkpoint — RFC 9162 over the database, C2SP checkpoints."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from machimori.audit import merkle, store
from machimori.audit.canonical import NotCanonicalizable, canonical_json
from machimori.audit.checkpoint import Checkpoint, CheckpointError, sign_checkpoint
from machimori.audit.export import export_lines
from machimori.audit.note import NoteError, Signer, Verifier, parse
from machimori.audit.sequencer import Appended, Sequencer
from machimori.storage.engine import Database
from machimori.storage.tables import audit_checkpoints, audit_head

MAX_ENTRY_BYTES = 64 * 1024


class EntryRejected(ValueError):
    """The object cannot be logged (not a JSON object, not canonicalizable, too large)."""


class OriginMismatch(ValueError):
    """The database holds a log with another origin than the one configured."""


def canonical_entry(entry: Any) -> bytes:
    """The canonical bytes of an object to log; EntryRejected if it cannot be logged."""
    if not isinstance(entry, dict):
        raise EntryRejected("an audit entry is a JSON object")
    try:
        data = canonical_json(entry)
    except NotCanonicalizable as error:
        raise EntryRejected(f"not representable as RFC 8785 JSON: {error}") from None
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryRejected(f"an audit entry is at most {MAX_ENTRY_BYTES} bytes of canonical JSON")
    return data


class AuditLog:
    """One tamper-evident log in a database, signed by the operator's keys."""

    def __init__(
        self,
        database: Database,
        origin: str,
        signers: list[Signer],
        witnesses: list[Verifier] | None = None,
    ) -> None:
        self.database = database
        self.signers = signers
        self.witnesses = witnesses or []
        self.origin = self._create_or_check(origin)
        self._sequencer = Sequencer(database)

    def _create_or_check(self, origin: str) -> str:
        with self.database.engine.connect() as connection:
            head = store.read_head(connection)
        if head is None:
            try:
                with self.database.begin() as connection:
                    connection.execute(
                        insert(audit_head).values(
                            id=store.HEAD_ID, origin=origin, tree_size=0, root_hash=merkle.EMPTY_ROOT
                        )
                    )
            except IntegrityError:  # another process created it first
                pass
            with self.database.engine.connect() as connection:
                head = store.read_head(connection)
        assert head is not None
        if head.origin != origin:
            raise OriginMismatch(f"this database holds the log {head.origin!r}, not {origin!r}")
        return head.origin

    @property
    def verifiers(self) -> list[Verifier]:
        return [signer.verifier for signer in self.signers]

    def close(self) -> None:
        """Commit what is queued and stop taking entries."""
        self._sequencer.close()

    async def append(self, entry: Any) -> Appended:
        """Log an object; returns once it is durable."""
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._sequencer.submit(canonical_entry(entry), future)
        return await future

    def append_sync(self, entry: Any) -> Appended:
        """Log an object from synchronous code; returns once it is durable."""
        return self._sequencer.append_now(canonical_entry(entry))

    def append_all_sync(self, entries: list[Any]) -> list[Appended]:
        """Log several objects in order from synchronous code; returns once all are durable."""
        return self._sequencer.append_all_now([canonical_entry(entry) for entry in entries])

    def head(self) -> store.Head:
        with self.database.engine.connect() as connection:
            head = store.read_head(connection)
        assert head is not None
        return head

    def entry(self, index: int) -> store.StoredEntry:
        with self.database.engine.connect() as connection:
            return store.read_entry(connection, index)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self.database.engine.connect() as connection:
            return store.inclusion_proof(connection, index, size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self.database.engine.connect() as connection:
            return store.consistency_proof(connection, first, second)

    def root(self, size: int) -> bytes:
        with self.database.engine.connect() as connection:
            return store.root_at(connection, size)

    def export(self) -> Iterator[str]:
        """The lines of an export file: the log up to a checkpoint signed now, with every kept checkpoint."""
        self.checkpoint()
        size = self.head().size
        with self.database.engine.connect() as connection:
            notes = store.stored_checkpoints(connection)
            yield from export_lines(self.origin, notes, store.iter_entries(connection, 0, size), size)

    def checkpoint(self) -> str:
        """The signed note of the current tree head (signed and kept on first request)."""
        head = self.head()
        with self.database.engine.connect() as connection:
            kept = connection.execute(
                select(audit_checkpoints.c.note).where(audit_checkpoints.c.tree_size == head.size)
            ).scalar_one_or_none()
        if kept is not None:
            return str(kept)
        note = str(sign_checkpoint(Checkpoint(self.origin, head.size, head.root), self.signers))
        try:
            with self.database.begin() as connection:
                connection.execute(
                    insert(audit_checkpoints).values(tree_size=head.size, note=note, created_at=dt.datetime.now(dt.UTC))
                )
        except IntegrityError:
            return self.checkpoint()
        return note

    def add_cosignature(self, tree_size: int, line: str) -> str:
        """Add a witness's cosignature line to the kept checkpoint of that size; returns the new note."""
        with self.database.begin() as connection:
            kept = connection.execute(
                select(audit_checkpoints.c.note).where(audit_checkpoints.c.tree_size == tree_size)
            ).scalar_one_or_none()
            if kept is None:
                raise CheckpointError(f"no checkpoint of size {tree_size} has been published")
            try:
                cosigned = parse(kept).with_signature_line(line)
                added = parse(cosigned.text + "\n" + line).signatures[0]
                witness = [w for w in self.witnesses if (w.name, w.key_id) == (added.name, added.key_id)]
                if not witness:
                    raise CheckpointError(f"{added.name} is not a witness of this log")
                cosigned.verified_by(witness)
            except NoteError as error:
                raise CheckpointError(str(error)) from None
            connection.execute(
                update(audit_checkpoints).where(audit_checkpoints.c.tree_size == tree_size).values(note=str(cosigned))
            )
        return str(cosigned)

"""Verifying a log where it lives: in the database (online) or in an export file (offline)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from machimori.audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from machimori.audit.export import ExportReader
from machimori.audit.note import Verifier
from machimori.audit.store import iter_entries, read_head, stored_checkpoints
from machimori.audit.verify import Finding, Row, VerifyReport, parse_entry, verify_rows
from machimori.diagnostics import InputError
from machimori.storage import Database


def trusted_checkpoint(text: str, source: str, verifiers: list[Verifier]) -> Checkpoint:
    """A checkpoint the user saved earlier; InputError unless a trusted key signed it."""
    try:
        return open_checkpoint(text, verifiers)
    except CheckpointError as error:
        raise InputError.single(
            source, f"チェックポイントを検証できません / checkpoint not accepted: {error}"
        ) from None


def _anchors(notes: Iterable[str], verifiers: list[Verifier], origin: str) -> tuple[list[Checkpoint], list[Finding]]:
    """Kept checkpoints that trusted keys signed; a kept checkpoint with a broken signature is a finding."""
    anchors, findings = [], []
    for text in notes:
        try:
            anchors.append(open_checkpoint(text, verifiers, origin))
        except CheckpointError as error:
            size = text.split("\n")[1] if text.count("\n") > 1 else "?"
            index = int(size) - 1 if size.isdigit() and int(size) > 0 else 0
            findings.append(Finding(index, "checkpoint", f"kept checkpoint of size {size}: {error}"))
    return anchors, findings


def verify_database(database: Database, verifiers: list[Verifier], saved: Checkpoint | None) -> VerifyReport:
    """Verify the stored log against its kept checkpoints and the one the user saved."""
    with database.engine.connect() as connection:
        head = read_head(connection)
        origin = head.origin if head else (saved.origin if saved else "")
        if saved is not None and saved.origin != origin:
            raise InputError.single("--checkpoint", f"the checkpoint is for {saved.origin!r}, this log is {origin!r}")
        anchors, findings = _anchors(stored_checkpoints(connection), verifiers, origin)
        rows = (
            Row(stored.index, parse_entry(stored.entry), stored.leaf_hash, stored.link_hash)
            for stored in iter_entries(connection)
        )
        report = verify_rows(rows, [*anchors, *([saved] if saved else [])])
    report.findings[:0] = findings
    return report


def verify_export(path: Path, verifiers: list[Verifier], saved: Checkpoint | None) -> VerifyReport:
    """Verify an export file with the public key(s) only."""
    reader = ExportReader(path)
    origin = reader.header.origin
    if saved is not None and saved.origin != origin:
        raise InputError.single(str(path), f"the export is of {origin!r}, the checkpoint of {saved.origin!r}")
    anchors, findings = _anchors(reader.header.checkpoints, verifiers, origin)
    if saved is None and not anchors:
        raise InputError.single(
            str(path), "信頼できる署名付きチェックポイントがありません / no checkpoint signed by the given key"
        )
    report = verify_rows(reader.rows(), [*anchors, *([saved] if saved else [])])
    report.findings[:0] = findings
    return report

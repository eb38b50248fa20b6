"""Identity-proofing records: levels a method can reach, no self-verification, every record audit-logged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.identity.assurance import Assurance, ProofingError
from machimori.storage import Database
from machimori.storage.tables import accounts


@pytest.fixture
def assurance(database: Database) -> Iterator[Assurance]:
    import datetime as dt

    with database.engine.begin() as connection:
        for login in ("hanako", "clerk"):
            connection.execute(
                accounts.insert().values(
                    id=login, kind="resident", login=login, display_name=login, created_at=dt.datetime.now(dt.UTC)
                )
            )
    audit = AuditLog(database, "test.example/audit", [Signer.generate("test.example/audit")])
    yield Assurance(database, audit)
    audit.close()


def test_the_highest_proven_level_counts(assurance: Assurance) -> None:
    assert assurance.ial("hanako") == 0
    assurance.record_proof("hanako", 1, "self-asserted", "name and address typed in", verified_by="clerk")
    assurance.record_proof("hanako", 3, "jpki", "JPKI signature certificate, serial ending 4821", verified_by="clerk")
    assurance.record_proof("hanako", 2, "document-image", "driving licence image", verified_by="clerk")
    assert assurance.ial("hanako") == 3
    last = assurance.audit.entry(assurance.audit.head().size - 1).value()
    assert last == {
        "action": "identity.proof",
        "account": "hanako",
        "ial": 2,
        "method": "document-image",
        "by": "clerk",
    }


@pytest.mark.parametrize(
    ("ial", "method", "by", "message"),
    [
        (3, "document-image", "clerk", "up to 2"),
        (2, "self-asserted", "clerk", "up to 1"),
        (1, "horoscope", "clerk", "unknown proofing method"),
        (3, "jpki", "hanako", "their own identity"),
        (4, "in-person", "clerk", "up to 3"),
    ],
)
def test_impossible_proofs_are_refused(assurance: Assurance, ial: int, method: str, by: str, message: str) -> None:
    with pytest.raises(ProofingError, match=message):
        assurance.record_proof("hanako", ial, method, "x", verified_by=by)
    assert assurance.ial("hanako") == 0

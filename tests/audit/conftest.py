"""An audit log on each kind of database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.storage import Database

ORIGIN = "test.machimori.example/audit"


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def audit_log(database: Database, signer: Signer) -> Iterator[AuditLog]:
    log = AuditLog(database, ORIGIN, [signer])
    yield log
    log.close()

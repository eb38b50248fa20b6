"""Identity assurance: how a resident's identity was proven (IAL) — after NIST SP 800-63A and Japan's
guideline on online identity verification for administrative procedures (身元確認保証レベル)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from machimori.audit.log import AuditLog
from machimori.clock import utc_now
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.tables import identity_proofs


@dataclass(frozen=True)
class ProofingMethod:
    """A way of proving identity and the highest IAL it can support."""

    code: str
    max_ial: int
    ja: str
    en: str


METHODS = {
    method.code: method
    for method in (
        ProofingMethod("self-asserted", 1, "本人の申告のみ", "self-asserted, not verified"),
        ProofingMethod(
            "document-image", 2, "本人確認書類の画像と容貌の照合 (eKYC)", "remote: ID document image and a selfie"
        ),
        ProofingMethod("ic-chip-remote", 2, "IC チップの読み取り (遠隔)", "remote: reading the ID card's IC chip"),
        ProofingMethod(
            "jpki", 3, "マイナンバーカードの署名用電子証明書 (JPKI)", "My Number Card signature certificate (JPKI)"
        ),
        ProofingMethod("in-person", 3, "窓口での対面確認", "in person at a municipal counter"),
    )
}


class ProofingError(ValueError):
    """A proofing record that cannot be right (unknown method, a level the method cannot reach …)."""


class Assurance:
    """Identity-proofing records; each is audit-logged."""

    def __init__(self, database: Database, audit: AuditLog, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.database, self.audit, self.clock = database, audit, clock

    def record_proof(self, account_id: str, ial: int, method: str, evidence: str, *, verified_by: str) -> str:
        """Record that account_id's identity was proven at ial by method; the evidence is a description."""
        known = METHODS.get(method)
        if known is None:
            raise ProofingError(f"unknown proofing method {method!r}: {', '.join(METHODS)}")
        if not 1 <= ial <= known.max_ial:
            raise ProofingError(f"{method} supports IAL up to {known.max_ial}, not {ial}")
        if verified_by == account_id:
            raise ProofingError("nobody verifies their own identity / 本人確認を自分で行うことはできません")
        proof_id = uuid7()
        with self.database.begin() as connection:
            connection.execute(
                insert(identity_proofs).values(
                    id=proof_id,
                    account_id=account_id,
                    ial=ial,
                    method=method,
                    evidence=evidence,
                    verified_by=verified_by,
                    verified_at=self.clock(),
                )
            )
        self.audit.append_sync(
            {"action": "identity.proof", "account": account_id, "ial": ial, "method": method, "by": verified_by}
        )
        return proof_id

    def ial(self, account_id: str) -> int:
        """The highest identity assurance level proven for the account (0: never proven)."""
        with self.database.engine.connect() as connection:
            level = connection.execute(
                select(func.max(identity_proofs.c.ial)).where(identity_proofs.c.account_id == account_id)
            ).scalar_one()
        return int(level or 0)

"""Who used a resident's personal data, when, for which purpose: each decision audit-logged and indexed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from machimori.audit.log import AuditLog
from machimori.clock import as_utc, utc_now
from machimori.policy import Decision
from machimori.storage import Database
from machimori.storage.tables import data_accesses


def record_access(
    audit: AuditLog,
    database: Database,
    service: str,
    resident: str,
    purpose: str | None,
    decision: Decision,
    what: str = "profile",
) -> int:
    """Append a decision on personal data to the audit log and index it under the resident; its index."""
    return record_accesses(audit, database, service, purpose, [(resident, what, decision)])[0]


def record_accesses(
    audit: AuditLog,
    database: Database,
    service: str,
    purpose: str | None,
    decisions: list[tuple[str, str, Decision]],
) -> list[int]:
    """Append many decisions on personal data — (resident, what was asked, decision) — in one go and index them.

    Each decision is its own audit entry, so a resident's proof never shows another resident's access.
    """
    if not decisions:
        return []
    now = utc_now()
    appended = audit.append_all_sync(
        [
            {
                "action": "personal-data.read",
                "service": service,
                "resident": resident,
                "data": what,
                "purpose": purpose,
                "decision": "permit" if decision.permit else "deny",
                "rule": decision.rule,
                "time": now.isoformat(),
            }
            for resident, what, decision in decisions
        ]
    )
    with database.begin() as connection:
        connection.execute(
            insert(data_accesses),
            [
                {
                    "audit_index": entry.index,
                    "resident": resident,
                    "service": service,
                    "purpose": purpose,
                    "permitted": decision.permit,
                    "time": now,
                }
                for entry, (resident, _, decision) in zip(appended, decisions, strict=True)
            ],
        )
    return [entry.index for entry in appended]


def accesses_of(database: Database, resident: str, limit: int = 200) -> list[dict[str, Any]]:
    """The resident's data accesses, newest first; each names its audit-log entry so it can be proven."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(data_accesses)
            .where(data_accesses.c.resident == resident)
            .order_by(data_accesses.c.audit_index.desc())
            .limit(limit)
        )
        return [
            {
                "service": row.service,
                "purpose": row.purpose,
                "permitted": row.permitted,
                "time": as_utc(row.time).isoformat(),
                "audit_index": row.audit_index,
            }
            for row in rows
        ]

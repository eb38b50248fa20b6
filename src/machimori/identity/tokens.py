"""API tokens: random bearer secrets shown once, kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, insert, select, update

from machimori.clock import utc_now
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.tables import api_tokens

PREFIX = "mmk_"
MIN_SUPPLIED_LENGTH = 32


class Role(StrEnum):
    """What a token may do."""

    admin = "admin"  # operate the platform: tokens, everything below
    recorder = "recorder"  # a stakeholder's system that records into the audit log
    auditor = "auditor"  # read the audit log, its export and the security events
    sensor = "sensor"  # a network sensor (Zeek) that submits flow records for detection


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to."""

    token_id: str
    name: str
    role: Role


def secret_digest(secret: str) -> bytes:
    """What is stored of a high-entropy secret (token, client secret, session cookie): its SHA-256."""
    return hashlib.sha256(secret.encode()).digest()


def new_token() -> str:
    """A fresh secret with 256 bits of randomness."""
    return PREFIX + secrets.token_urlsafe(32)


def create_token(database: Database, name: str, role: Role, secret: str | None = None) -> tuple[Principal, str]:
    """Store a token (a supplied secret must be ≥32 characters); returns it — the only time it is seen."""
    secret = secret or new_token()
    if len(secret) < MIN_SUPPLIED_LENGTH:
        raise ValueError(f"a token is at least {MIN_SUPPLIED_LENGTH} characters")
    principal = Principal(uuid7(), name, role)
    with database.begin() as connection:
        connection.execute(
            insert(api_tokens).values(
                id=principal.token_id,
                name=name,
                role=role.value,
                token_hash=secret_digest(secret),
                created_at=utc_now(),
            )
        )
    return principal, secret


_ACTIVE_TOKEN = select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role).where(
    api_tokens.c.token_hash == bindparam("token_hash"), api_tokens.c.revoked_at.is_(None)
)


def authenticate(database: Database, secret: str) -> Principal | None:
    """The principal of a valid, unrevoked token, or None."""
    with database.engine.connect() as connection:
        row = connection.execute(_ACTIVE_TOKEN, {"token_hash": secret_digest(secret)}).one_or_none()
    return None if row is None else Principal(row.id, row.name, Role(row.role))


def has_admin(database: Database) -> bool:
    with database.engine.connect() as connection:
        return (
            connection.execute(
                select(api_tokens.c.id).where(api_tokens.c.role == Role.admin.value, api_tokens.c.revoked_at.is_(None))
            ).first()
            is not None
        )


def list_tokens(database: Database) -> list[dict[str, object]]:
    """Every token's id, name, role and dates (never the secret)."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(
                api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at, api_tokens.c.revoked_at
            )
        )
        return [dict(row._mapping) for row in rows]


def revoke_token(database: Database, token_id: str) -> bool:
    """Revoke a token; whether it existed and was active."""
    with database.begin() as connection:
        result = connection.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
    return result.rowcount == 1

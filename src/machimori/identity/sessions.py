"""Sign-in sessions: a random secret in a cookie, its hash in the database, and the AAL it reached.

A session started with a password alone, for an account that has a second factor, is pending (AAL0) and
only a second factor within five minutes makes it usable. Sessions end after 12 hours at most (AAL2
reauthentication bound of NIST SP 800-63B-4) or when the person signs out.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from machimori.clock import as_utc, utc_now
from machimori.identity.tokens import secret_digest
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.tables import sessions

LIFETIME = dt.timedelta(hours=12)
PENDING_LIFETIME = dt.timedelta(minutes=5)


def acr_of(aal: int) -> str:
    """The `acr` value (authentication context class) of an authentication at that AAL."""
    return f"urn:machimori:aal{aal}"


@dataclass(frozen=True)
class Session:
    """An active session."""

    id: str
    account_id: str
    aal: int
    amr: tuple[str, ...]

    @property
    def pending(self) -> bool:
        return self.aal == 0

    @property
    def acr(self) -> str:
        return acr_of(self.aal)


class Sessions:
    """Starts, finds, raises and ends sessions."""

    def __init__(self, database: Database, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.database, self.clock = database, clock

    def start(self, account_id: str, aal: int, amr: list[str]) -> str:
        """A new session's secret (for the cookie); AAL0 means a second factor is still owed."""
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        with self.database.begin() as connection:
            connection.execute(
                insert(sessions).values(
                    id=uuid7(),
                    secret_hash=secret_digest(secret),
                    account_id=account_id,
                    aal=aal,
                    amr=json.dumps(amr),
                    created_at=now,
                    expires_at=now + (LIFETIME if aal > 0 else PENDING_LIFETIME),
                )
            )
        return secret

    def find(self, secret: str, *, pending: bool = False) -> Session | None:
        """The active session with that secret (a pending one only if asked for), else None."""
        with self.database.engine.connect() as connection:
            row = connection.execute(
                select(sessions).where(sessions.c.secret_hash == secret_digest(secret))
            ).one_or_none()
        if row is None or row.ended_at is not None:
            return None
        expires = as_utc(row.expires_at)
        if expires <= self.clock() or (row.aal == 0) != pending:
            return None
        return Session(row.id, row.account_id, row.aal, tuple(json.loads(row.amr)))

    def raise_to(self, secret: str, aal: int, method: str) -> Session | None:
        """Complete a pending session with its second factor; the session, now usable."""
        found = self.find(secret, pending=True)
        if found is None:
            return None
        now = self.clock()
        amr = [*found.amr, method]
        with self.database.begin() as connection:
            connection.execute(
                update(sessions)
                .where(sessions.c.id == found.id)
                .values(aal=aal, amr=json.dumps(amr), expires_at=now + LIFETIME)
            )
        return Session(found.id, found.account_id, aal, tuple(amr))

    def end(self, secret: str) -> None:
        with self.database.begin() as connection:
            connection.execute(
                update(sessions).where(sessions.c.secret_hash == secret_digest(secret)).values(ended_at=self.clock())
            )

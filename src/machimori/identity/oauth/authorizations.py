"""What a resident authorized a client to do: grants, their one-time codes and rotating refresh tokens.

A grant is born when a signed-in resident approves a client on the consent screen. It carries the
purposes she consented to and the assurance of her session (AAL, RFC 8176 methods, time). Its code is
good once, for ten minutes; each refresh token is good once and is replaced by a new one. A code or a
refresh token presented a second time means someone copied it: the whole grant is revoked (RFC 9700
§2.2.2, §4.14), as it is when the resident withdraws a consent it rests on. Access tokens name their
grant, so revoking the grant stops them at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row

from machimori.clock import as_utc, utc_now
from machimori.events import Actor, EventClass, EventStream, SecurityEvent, Severity, Status
from machimori.identity.sessions import acr_of
from machimori.identity.tokens import secret_digest
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.tables import authorization_codes, oauth_grants, refresh_tokens, revoked_tokens

CODE_LIFETIME = dt.timedelta(minutes=10)
REFRESH_LIFETIME = dt.timedelta(days=30)
ACCESS_TOKEN_SECONDS = 300


@dataclass(frozen=True)
class Grant:
    """A resident's standing authorization of one client, for a scope and purposes."""

    id: str
    client_id: str
    account_id: str
    scope: str
    purposes: tuple[str, ...]
    aal: int
    amr: tuple[str, ...]
    auth_time: dt.datetime

    def get_user_id(self) -> str:
        return self.account_id


@dataclass(frozen=True)
class RedeemedCode:
    """An authorization code that was just used, as authlib's grant asks about it."""

    grant: Grant
    redirect_uri: str
    code_challenge: str
    nonce: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.grant.auth_time.timestamp())

    def get_acr(self) -> str:
        return acr_of(self.grant.aal)

    def get_amr(self) -> list[str]:
        return list(self.grant.amr)


@dataclass(frozen=True)
class RotatedRefreshToken:
    """A refresh token that was just used up (a new one is issued in its place)."""

    grant: Grant

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.grant.client_id)

    def get_scope(self) -> str:
        return self.grant.scope


class Authorizations:
    """Creates grants, redeems codes, rotates refresh tokens and revokes grants."""

    def __init__(self, database: Database, events: EventStream, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.database, self.events, self.clock = database, events, clock

    def create(
        self, client_id: str, account_id: str, scope: str, purposes: list[str], aal: int, amr: list[str]
    ) -> Grant:
        """A new grant, approved now by a session of that AAL and those methods."""
        now = self.clock()
        grant = Grant(uuid7(), client_id, account_id, scope, tuple(purposes), aal, tuple(amr), now)
        with self.database.begin() as connection:
            connection.execute(
                insert(oauth_grants).values(
                    id=grant.id,
                    client_id=client_id,
                    account_id=account_id,
                    scope=scope,
                    purposes=json.dumps(purposes),
                    aal=aal,
                    amr=json.dumps(amr),
                    auth_time=now,
                    created_at=now,
                )
            )
        return grant

    def save_code(self, code: str, grant: Grant, redirect_uri: str, code_challenge: str, nonce: str | None) -> None:
        with self.database.begin() as connection:
            connection.execute(
                insert(authorization_codes).values(
                    code_hash=secret_digest(code),
                    grant_id=grant.id,
                    redirect_uri=redirect_uri,
                    code_challenge=code_challenge,
                    nonce=nonce,
                    expires_at=self.clock() + CODE_LIFETIME,
                )
            )

    def redeem_code(self, code: str, client_id: str) -> RedeemedCode | None:
        """Use up a code issued to that client; a code used before revokes its grant and gives None."""
        digest, now = secret_digest(code), self.clock()
        with self.database.begin() as connection:
            row = connection.execute(
                select(authorization_codes).where(authorization_codes.c.code_hash == digest)
            ).one_or_none()
            if row is None:
                return None
            grant = _active_grant(connection, row.grant_id)
            if grant is None or grant.client_id != client_id:
                return None
            if row.used_at is not None:
                reused = True
            else:
                reused = False
                connection.execute(
                    update(authorization_codes).where(authorization_codes.c.code_hash == digest).values(used_at=now)
                )
        if reused:
            self.revoke(grant, "code-reuse")
            return None
        if as_utc(row.expires_at) <= now:
            return None
        return RedeemedCode(grant, row.redirect_uri, row.code_challenge, row.nonce)

    def save_refresh_token(self, token: str, grant: Grant) -> None:
        now = self.clock()
        with self.database.begin() as connection:
            connection.execute(
                insert(refresh_tokens).values(
                    token_hash=secret_digest(token), grant_id=grant.id, issued_at=now, expires_at=now + REFRESH_LIFETIME
                )
            )

    def rotate_refresh_token(self, token: str, client_id: str) -> RotatedRefreshToken | None:
        """Use up a refresh token of that client; one used before revokes its grant and gives None."""
        digest, now = secret_digest(token), self.clock()
        with self.database.begin() as connection:
            row = connection.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == digest)).one_or_none()
            if row is None:
                return None
            grant = _active_grant(connection, row.grant_id)
            if grant is None or grant.client_id != client_id:
                return None
            reused = row.used_at is not None
            if not reused:
                connection.execute(
                    update(refresh_tokens).where(refresh_tokens.c.token_hash == digest).values(used_at=now)
                )
        if reused:
            self.revoke(grant, "refresh-token-reuse")
            return None
        if as_utc(row.expires_at) <= now:
            return None
        return RotatedRefreshToken(grant)

    def revoke(self, grant: Grant, reason: str) -> None:
        """End a grant: its refresh tokens stop working, and so do its access tokens (named by `grant`)."""
        now = self.clock()
        with self.database.begin() as connection:
            ended = connection.execute(
                update(oauth_grants)
                .where(oauth_grants.c.id == grant.id, oauth_grants.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            ).rowcount
            if ended:  # only the one revoker whose update matched gets here
                connection.execute(
                    insert(revoked_tokens).values(
                        jti=grant.id, expires_at=now + dt.timedelta(seconds=ACCESS_TOKEN_SECONDS)
                    )
                )
        if not ended:
            return
        attack = reason.endswith("reuse")
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.AUTHENTICATION,
                activity_id=99,
                severity_id=Severity.HIGH if attack else Severity.INFORMATIONAL,
                status_id=Status.FAILURE if attack else Status.SUCCESS,
                message=f"OAuth grant {grant.id} of {grant.client_id} for {grant.account_id} revoked: {reason}",
                actor=Actor(uid=grant.client_id, app_name=grant.client_id),
                unmapped={"grant": grant.id, "reason": reason, "resident": grant.account_id},
            )
        )

    def revoke_for_consent(self, resident: str, service: str, purpose: str) -> int:
        """Revoke the grants of that service for that resident that rest on a consent to that purpose."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(oauth_grants).where(
                    oauth_grants.c.account_id == resident,
                    oauth_grants.c.client_id == service,
                    oauth_grants.c.revoked_at.is_(None),
                )
            ).all()
        ended = [grant for grant in map(_grant_of, rows) if purpose in grant.purposes]
        for grant in ended:
            self.revoke(grant, "consent-withdrawn")
        return len(ended)

    def revoke_by_resident(self, resident: str, grant_id: str) -> bool:
        """The resident ends one of her own grants; False if she has no active grant with that id."""
        with self.database.engine.connect() as connection:
            grant = _active_grant(connection, grant_id)
        if grant is None or grant.account_id != resident:
            return False
        self.revoke(grant, "resident-revoked")
        return True

    def of_resident(self, resident: str) -> list[dict[str, object]]:
        """The active grants of a resident (which apps she let in, for what)."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(oauth_grants)
                .where(oauth_grants.c.account_id == resident, oauth_grants.c.revoked_at.is_(None))
                .order_by(oauth_grants.c.created_at)
            ).all()
        return [
            {
                "grant": row.id,
                "client_id": row.client_id,
                "scope": row.scope,
                "purposes": json.loads(row.purposes),
                "created_at": as_utc(row.created_at).isoformat(),
            }
            for row in rows
        ]


def _active_grant(connection: Connection, grant_id: str) -> Grant | None:
    row = connection.execute(
        select(oauth_grants).where(oauth_grants.c.id == grant_id, oauth_grants.c.revoked_at.is_(None))
    ).one_or_none()
    return None if row is None else _grant_of(row)


def _grant_of(row: Row[Any]) -> Grant:
    return Grant(
        row.id,
        row.client_id,
        row.account_id,
        row.scope,
        tuple(json.loads(row.purposes)),
        row.aal,
        tuple(json.loads(row.amr)),
        as_utc(row.auth_time),
    )

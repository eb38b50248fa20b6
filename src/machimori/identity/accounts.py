"""Accounts: staff of the city's organisations, residents and service clients; sign-in with a password and TOTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import pyotp
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from machimori.audit.log import AuditLog
from machimori.clock import as_utc, utc_now
from machimori.consent.records import ConsentState
from machimori.events import Actor, Endpoint, EventClass, EventStream, SecurityEvent, Severity, Status
from machimori.identity import passwords
from machimori.identity.throttle import MAX_CONSECUTIVE_FAILURES, SourceLimiter, delay_after
from machimori.ids import uuid7
from machimori.policy import Action, Context, DataType, DecisionPoint, RoleGrant, Subject, Target
from machimori.secretbox import SecretBox
from machimori.storage import Database
from machimori.storage.tables import account_roles, accounts

PRIVILEGED_ROLES = frozenset({"admin", "security-admin", "auditor"})
TOTP_ISSUER = "machimori"


class Kind(StrEnum):
    staff = "staff"
    resident = "resident"
    service = "service"


class AccountError(ValueError):
    """A request about accounts that cannot be done (taken login, self-granted role, conflicting duties …)."""


Outcome = Literal["ok", "second-factor", "wrong", "throttled", "locked"]


@dataclass(frozen=True)
class SignInResult:
    """What a sign-in attempt came to; the same 'wrong' for an unknown login and a wrong password."""

    outcome: Outcome
    account_id: str | None = None
    retry_after: float = 0.0


class Accounts:
    """Creates accounts, grants roles and signs people in; every sign-in is an Authentication event."""

    def __init__(
        self,
        database: Database,
        events: EventStream,
        audit: AuditLog,
        box: SecretBox,
        clock: Callable[[], dt.datetime] = utc_now,
        sources: SourceLimiter | None = None,
        decisions: DecisionPoint | None = None,
    ) -> None:
        self.database, self.events, self.audit, self.box = database, events, audit, box
        self.decisions = decisions or DecisionPoint(lambda *_: (ConsentState.none, None), lambda _: 0)
        self.clock = clock
        self.sources = sources or SourceLimiter()

    def create(self, kind: Kind, login: str, display_name: str, password: str | None, *, org: str | None = None) -> str:
        """A new account; the password is checked against the policy (8 characters only with a second factor later)."""
        hashed = None
        if password is not None:
            normalized = passwords.check_new_password(password, second_factor=False, context=[login, display_name])
            hashed = passwords.hash_password(normalized)
        account_id = uuid7()
        try:
            with self.database.begin() as connection:
                connection.execute(
                    insert(accounts).values(
                        id=account_id,
                        kind=kind.value,
                        org=org,
                        login=login,
                        display_name=display_name,
                        password_hash=hashed,
                        created_at=self.clock(),
                    )
                )
        except IntegrityError:
            raise AccountError(f"login {login!r} is taken") from None
        self._account_event(account_id, login, f"account created ({kind.value})", 1)
        return account_id

    def grant(self, account_id: str, org: str, role: str, *, by: Subject) -> None:
        """Give a role in an organisation, if the decision point permits it (no self-grant, separated
        duties, granted by an administrator of that organisation at AAL2 or the operator at the console)."""
        held = frozenset(r for _, r in self.roles(account_id))
        decision = self.decisions.decide(
            by,
            Action.admin,
            Target(id=f"roles:{org}", data_type=DataType.closed, org=org),
            Context(role_grant=RoleGrant(account_id, role, held)),
        )
        if not decision.permit:
            raise AccountError(f"{decision.reason_en} / {decision.reason_ja}")
        granted_by = by.id
        with self.database.begin() as connection:
            connection.execute(
                insert(account_roles).values(
                    account_id=account_id, org=org, role=role, granted_by=granted_by, granted_at=self.clock()
                )
            )
        self.audit.append_sync(
            {"action": "role.grant", "account": account_id, "org": org, "role": role, "by": granted_by}
        )
        self._account_event(account_id, account_id, f"role {role} in {org} granted by {granted_by}", 7)
        self.decisions.policy_changed()

    def subject_of(self, account_id: str, aal: int) -> Subject:
        """The decision point's subject for an account signed in at that AAL."""
        with self.database.engine.connect() as connection:
            row = connection.execute(select(accounts.c.kind, accounts.c.org).where(accounts.c.id == account_id)).one()
        return Subject(account_id, row.kind, row.org, frozenset(self.roles(account_id)), aal)

    def id_of(self, login: str) -> str | None:
        """The id of the active account with that login, or None."""
        with self.database.engine.connect() as connection:
            return connection.execute(
                select(accounts.c.id).where(accounts.c.login == login, accounts.c.disabled_at.is_(None))
            ).scalar_one_or_none()

    def kind_of(self, account_id: str) -> str | None:
        """The kind of the active account with that id (staff, resident, service), or None."""
        with self.database.engine.connect() as connection:
            return connection.execute(
                select(accounts.c.kind).where(accounts.c.id == account_id, accounts.c.disabled_at.is_(None))
            ).scalar_one_or_none()

    def profile(self, account_id: str) -> dict[str, object]:
        """What an account may see of itself."""
        with self.database.engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.id == account_id)).one()
        return {
            "id": row.id,
            "login": row.login,
            "display_name": row.display_name,
            "kind": row.kind,
            "org": row.org,
            "second_factor": row.totp_secret is not None,
            "roles": [{"org": org, "role": role} for org, role in self.roles(account_id)],
        }

    def roles(self, account_id: str) -> list[tuple[str, str]]:
        """(organisation, role) pairs the account holds."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(account_roles.c.org, account_roles.c.role).where(account_roles.c.account_id == account_id)
            )
            return [(row.org, row.role) for row in rows]

    def sign_in(self, login: str, password: str, source: str) -> SignInResult:
        """Check a password; growing delays after failures, the account locked at the 100th in a row."""
        waited = self.sources.retry_after(source)
        if waited > 0:
            self._auth_event(None, login, source, "throttled source", Status.FAILURE)
            return SignInResult("throttled", retry_after=waited)
        with self.database.engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.login == login)).one_or_none()
        now = self.clock()
        if row is None or row.disabled_at is not None or row.password_hash is None:
            passwords.verify_password(passwords.DUMMY_HASH, password)  # the same work as for a real account
            self.sources.failed(source)
            self._auth_event(None, login, source, "unknown login or no password", Status.FAILURE)
            return SignInResult("wrong")
        if row.locked_at is not None:
            self._auth_event(row.id, login, source, "account locked after 100 failures", Status.FAILURE)
            return SignInResult("locked", row.id)
        next_attempt = as_utc(row.next_attempt_at) if row.next_attempt_at else None
        if next_attempt is not None and now < next_attempt:
            self._auth_event(row.id, login, source, "too soon after failures", Status.FAILURE)
            return SignInResult("throttled", row.id, (next_attempt - now).total_seconds())
        if not passwords.verify_password(row.password_hash, password):
            self.sources.failed(source)
            return self._failed(row.id, login, source, now)
        with self.database.begin() as connection:
            connection.execute(
                update(accounts).where(accounts.c.id == row.id).values(failed_count=0, next_attempt_at=None)
            )
        if row.totp_secret is not None:
            self._auth_event(row.id, login, source, "password accepted; second factor required", Status.SUCCESS)
            return SignInResult("second-factor", row.id)
        self._signed_in(row.id, login, source, ["pwd"])
        return SignInResult("ok", row.id)

    def _failed(self, account_id: str, login: str, source: str, now: dt.datetime) -> SignInResult:
        with self.database.begin() as connection:
            failures = connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(failed_count=accounts.c.failed_count + 1)
                .returning(accounts.c.failed_count)
            ).scalar_one()
            locked = failures >= MAX_CONSECUTIVE_FAILURES
            connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(next_attempt_at=now + delay_after(failures), locked_at=now if locked else None)
            )
        if locked:
            self.audit.append_sync({"action": "account.lock", "account": account_id, "failures": failures})
        self._auth_event(account_id, login, source, f"wrong password ({failures} in a row)", Status.FAILURE)
        return SignInResult("locked" if locked else "wrong", account_id)

    def unlock(self, account_id: str, *, by: str) -> None:
        """Reset the failure count of a locked account (a privileged, audit-logged action)."""
        with self.database.begin() as connection:
            connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(failed_count=0, next_attempt_at=None, locked_at=None)
            )
        self.audit.append_sync({"action": "account.unlock", "account": account_id, "by": by})

    def enroll_totp(self, account_id: str) -> str:
        """A new TOTP seed for the account, as an otpauth:// URI for the authenticator app (shown once)."""
        secret = pyotp.random_base32()
        with self.database.begin() as connection:
            login = connection.execute(select(accounts.c.login).where(accounts.c.id == account_id)).scalar_one()
            connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(totp_secret=self.box.seal(secret.encode(), f"totp:{account_id}"), totp_last_step=0)
            )
        self._account_event(account_id, login, "TOTP enrolled", 3)
        return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=TOTP_ISSUER)

    def verify_totp(self, account_id: str, code: str, source: str) -> bool:
        """Whether the code is valid now (±1 step) and newer than any code used before (no replay)."""
        with self.database.engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.id == account_id)).one()
        if row.totp_secret is None:
            return False
        totp = pyotp.TOTP(self.box.open(row.totp_secret, f"totp:{account_id}").decode())
        now = self.clock().timestamp()
        step = next(
            (
                int(now // totp.interval) + offset
                for offset in (0, -1, 1)
                if code.isdigit() and totp.at(int(now) + offset * totp.interval) == code
            ),
            None,
        )
        if step is None:
            self._auth_event(account_id, row.login, source, "wrong TOTP code", Status.FAILURE)
            return False
        with self.database.begin() as connection:
            claimed = connection.execute(
                update(accounts)
                .where(accounts.c.id == account_id, accounts.c.totp_last_step < step)
                .values(totp_last_step=step)
            ).rowcount
        if claimed != 1:
            self._auth_event(account_id, row.login, source, "TOTP code replayed", Status.FAILURE, Severity.HIGH)
            return False
        self._signed_in(account_id, row.login, source, ["pwd", "otp"])
        return True

    def _signed_in(self, account_id: str, login: str, source: str, methods: list[str]) -> None:
        self._auth_event(account_id, login, source, f"signed in ({'+'.join(methods)})", Status.SUCCESS)
        if any(role in PRIVILEGED_ROLES for _, role in self.roles(account_id)):
            self.audit.append_sync(
                {"action": "signin.privileged", "account": account_id, "amr": methods, "source": source}
            )

    def _auth_event(
        self,
        account_id: str | None,
        login: str,
        source: str,
        message: str,
        status: Status,
        severity: Severity | None = None,
    ) -> None:
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.AUTHENTICATION,
                activity_id=1,
                status_id=status,
                severity_id=severity or (Severity.INFORMATIONAL if status is Status.SUCCESS else Severity.LOW),
                message=f"{login}: {message}",
                actor=Actor(uid=account_id or f"unknown:{login}", name=login),
                src_endpoint=Endpoint(ip=source),
            )
        )

    def _account_event(self, account_id: str, login: str, message: str, activity: int) -> None:
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.ACCOUNT_CHANGE,
                activity_id=activity,
                message=f"{login}: {message}",
                actor=Actor(uid=account_id, name=login),
            )
        )

"""The spine, opened once: database, audit log, event stream and first-run credentials."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from machimori.audit.keys import read_verifier, signing_keys
from machimori.audit.log import AuditLog, OriginMismatch
from machimori.audit.note import Verifier
from machimori.config import Settings
from machimori.consent.notifications import ConsentNotifications
from machimori.consent.records import ConsentStore
from machimori.diagnostics import InputError
from machimori.events import EventClass, EventStream, Resource, SecurityEvent
from machimori.identity import tokens
from machimori.identity.accounts import Accounts
from machimori.identity.assurance import Assurance
from machimori.identity.oauth.provider import Provider
from machimori.identity.passkeys import Passkeys
from machimori.identity.sessions import Sessions
from machimori.policy import DecisionPoint
from machimori.secretbox import SecretBox
from machimori.storage import Database, open_database
from machimori.storage.notify import Notifier, notifier_for

log = logging.getLogger(__name__)
WITNESS_KEYS = "witnesses"


@dataclass
class Platform:
    """What every plane shares in one process."""

    settings: Settings
    database: Database
    audit: AuditLog
    events: EventStream
    notifier: Notifier
    consent: ConsentStore
    decisions: DecisionPoint
    accounts: Accounts
    passkeys: Passkeys
    sessions: Sessions
    assurance: Assurance
    oauth: Provider
    consent_notifications: ConsentNotifications
    first_admin_token: str | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stop pushing consent changes, commit what is queued and release the database."""
        self.consent_notifications.close()
        self.notifier.close()
        self.audit.close()
        self.events.close()
        self.database.dispose()


def witness_keys(keys_dir: Path) -> list[Verifier]:
    """The verifier keys of the witnesses this log accepts (keys/witnesses/*.vkey)."""
    return [read_verifier(str(path)) for path in sorted((keys_dir / WITNESS_KEYS).glob("*.vkey"))]


def open_platform(settings: Settings) -> Platform:
    """Open the database (migrating it), the audit log and the event stream; make the first admin if none."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.sqlalchemy_url, synchronous=settings.sqlite_synchronous)
    try:
        audit = AuditLog(
            database,
            settings.audit_origin,
            signing_keys(settings.keys_dir, settings.audit_origin),
            witness_keys(settings.keys_dir),
        )
    except OriginMismatch as error:
        database.dispose()
        raise InputError.single("audit_origin", str(error)) from None
    events = EventStream(database)
    notifier = notifier_for(database)
    signer = audit.signers[0]
    consent = ConsentStore(database, audit, events, signer, notifier=notifier)
    decisions = DecisionPoint(consent.current, consent.version)
    box = SecretBox.in_keys_dir(settings.keys_dir)
    origin = settings.issuer
    passkeys = Passkeys(database, events, audit, rp_id=urlsplit(origin).hostname or "localhost", origin=origin)
    accounts = Accounts(database, events, audit, box, decisions=decisions)
    oauth = Provider(database, events, consent, accounts, settings.keys_dir, settings.issuer, settings.issuer + "/api")
    notifications = ConsentNotifications(database, events, oauth.key, oauth.issuer)
    consent.within_transaction(notifications.enqueue)
    consent.listen(notifications.changed)
    platform = Platform(
        settings,
        database,
        audit,
        events,
        notifier,
        consent,
        decisions,
        accounts,
        passkeys,
        Sessions(database),
        Assurance(database, audit),
        oauth,
        notifications,
    )
    if not tokens.has_admin(database):
        _, secret = tokens.create_token(database, "admin", tokens.Role.admin, settings.admin_token)
        platform.first_admin_token = None if settings.admin_token else secret
        platform.events.emit(
            SecurityEvent(
                class_uid=EventClass.ACCOUNT_CHANGE,
                activity_id=1,
                message="first admin credential created / 初回の管理者資格情報を作成",
                resources=[Resource(uid="admin", type="api_token")],
            )
        )
        audit.append_sync({"action": "token.create", "role": "admin", "name": "admin", "reason": "first run"})
    return platform

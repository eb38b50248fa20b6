"""Consent records per resident × service × purpose, receipts, and the changes every plane listens to.

The current state of each record is a row; its history is the audit log, where every change is appended.
Receipts are shaped after ISO/IEC TS 27560 (record header, processing, parties, event) and signed with
the municipality's key, so a resident can prove what was agreed.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from machimori.audit.canonical import canonical_json
from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.clock import as_utc, utc_now
from machimori.consent.purposes import PurposeCatalogue
from machimori.events import Actor, EventClass, EventStream, Resource, SecurityEvent
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.notify import EVERYTHING, LocalNotifier, Notifier
from machimori.storage.tables import consents


class ConsentState(StrEnum):
    given = "given"
    refused = "refused"
    withdrawn = "withdrawn"
    expired = "expired"
    none = "none"


class ConsentError(ValueError):
    """A consent request that cannot be recorded (unknown purpose …)."""


@dataclass(frozen=True)
class ConsentChange:
    """What changed, for listeners (decision cache, token revocation, subscribed services)."""

    resident: str
    service: str
    purpose: str
    state: ConsentState
    changed_at: dt.datetime


Listener = Callable[[ConsentChange], None]
TransactionHook = Callable[[Connection, ConsentChange], None]
CHANNEL = "machimori_consent"


class ConsentStore:
    """Records consent and tells listeners at once when it changes.

    Current states are kept in memory per resident (read once, dropped on every change made through
    this store), so decide() does not touch the database. Changes made by another process reach this
    one through a PostgreSQL notification sent with the change's transaction (storage.notify).
    """

    def __init__(
        self,
        database: Database,
        audit: AuditLog,
        events: EventStream,
        signer: Signer,
        purposes: PurposeCatalogue | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        notifier: Notifier | None = None,
    ) -> None:
        self.database, self.audit, self.events, self.signer = database, audit, events, signer
        self.notifier = notifier or LocalNotifier()
        self.purposes = purposes or PurposeCatalogue()
        self.clock = clock
        self._listeners: list[Listener] = []
        self._in_transaction: TransactionHook | None = None
        self._versions: dict[str, int] = {}
        self._index: dict[str, dict[tuple[str, str], tuple[ConsentState, dt.datetime | None]]] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self.notifier.subscribe(CHANNEL, self._changed)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def within_transaction(self, hook: TransactionHook) -> None:
        """Also hand every change to hook inside the transaction that records it (both commit, or neither)."""
        self._in_transaction = hook

    def version(self, resident: str) -> int:
        """A number that moves whenever this resident's consent changes, here or in another process."""
        return self._epoch << 32 | self._versions.get(resident, 0)

    def _changed(self, resident: str) -> None:
        """A change notification: forget what is cached for that resident (or for everyone)."""
        with self._lock:
            if resident == EVERYTHING:
                self._epoch += 1
                self._index.clear()
            else:
                self._versions[resident] = self._versions.get(resident, 0) + 1
                self._index.pop(resident, None)

    def give(self, resident: str, service: str, purpose: str, expires_at: dt.datetime | None = None) -> dict[str, Any]:
        return self._record(resident, service, purpose, ConsentState.given, expires_at)

    def refuse(self, resident: str, service: str, purpose: str) -> dict[str, Any]:
        return self._record(resident, service, purpose, ConsentState.refused, None)

    def withdraw(self, resident: str, service: str, purpose: str) -> dict[str, Any]:
        return self._record(resident, service, purpose, ConsentState.withdrawn, None)

    def state(self, resident: str, service: str, purpose: str) -> ConsentState:
        """The state now (a given consent past its expiry is expired)."""
        return self.current(resident, service, purpose)[0]

    def current(self, resident: str, service: str, purpose: str) -> tuple[ConsentState, dt.datetime | None]:
        """The state now and, for a given consent, when it expires (None: it does not)."""
        records = self._index.get(resident)
        if records is None:
            records = self._load(resident)
        state, expires = records.get((service, purpose), (ConsentState.none, None))
        if state is ConsentState.given and expires is not None and expires <= self.clock():
            return ConsentState.expired, None
        return state, expires if state is ConsentState.given else None

    def _load(self, resident: str) -> dict[tuple[str, str], tuple[ConsentState, dt.datetime | None]]:
        """Read a resident's records into the in-memory index (once; a change here drops them again)."""
        version = self.version(resident)
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(consents.c.service, consents.c.purpose, consents.c.state, consents.c.expires_at).where(
                    consents.c.resident == resident
                )
            ).all()
        records = {
            (row.service, row.purpose): (ConsentState(row.state), as_utc(row.expires_at) if row.expires_at else None)
            for row in rows
        }
        with self._lock:
            if self.version(resident) == version:  # not changed while we read
                self._index[resident] = records
        return records

    def of_resident(self, resident: str) -> list[dict[str, Any]]:
        """Every record of a resident (for the self-service API)."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(consents).where(consents.c.resident == resident).order_by(consents.c.changed_at)
            )
            return [
                {
                    "service": row.service,
                    "purpose": row.purpose,
                    "state": self.state(resident, row.service, row.purpose).value,
                    "changed_at": row.changed_at.isoformat(),
                }
                for row in rows
            ]

    def _record(
        self, resident: str, service: str, purpose: str, state: ConsentState, expires_at: dt.datetime | None
    ) -> dict[str, Any]:
        if purpose not in self.purposes:
            raise ConsentError(f"unknown purpose {purpose!r} / 未登録の利用目的です")
        now = self.clock()
        change = ConsentChange(resident, service, purpose, state, now)
        with self.database.begin() as connection:
            changed = connection.execute(
                update(consents)
                .where(consents.c.resident == resident, consents.c.service == service, consents.c.purpose == purpose)
                .values(state=state.value, changed_at=now, expires_at=expires_at)
            ).rowcount
            record_id = None
            if changed == 0:
                record_id = uuid7()
                connection.execute(
                    insert(consents).values(
                        id=record_id,
                        resident=resident,
                        service=service,
                        purpose=purpose,
                        state=state.value,
                        changed_at=now,
                        expires_at=expires_at,
                    )
                )
            else:
                record_id = connection.execute(
                    select(consents.c.id).where(
                        consents.c.resident == resident, consents.c.service == service, consents.c.purpose == purpose
                    )
                ).scalar_one()
            self.notifier.publish(connection, CHANNEL, resident)  # heard by every process on commit
            if self._in_transaction is not None:
                self._in_transaction(connection, change)
        self._changed(resident)  # and at once in this one
        for listener in list(self._listeners):
            listener(change)
        receipt = self._receipt(record_id, change, now, expires_at)
        appended = self.audit.append_sync({"action": f"consent.{state.value}", "receipt": receipt["record"]})
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.ACCOUNT_CHANGE,
                activity_id=99,
                message=f"consent {state.value}: {resident} → {service} for {purpose}",
                actor=Actor(uid=resident),
                resources=[Resource(uid=record_id, type="consent_record")],
                unmapped={"audit_index": appended.index},
            )
        )
        return receipt

    def _receipt(
        self, record_id: str, change: ConsentChange, now: dt.datetime, expires_at: dt.datetime | None
    ) -> dict[str, Any]:
        """A receipt after ISO/IEC TS 27560, signed with the municipality's key (Ed25519 over its JCS form)."""
        purpose = self.purposes.get(change.purpose)
        record = {
            "schema": "machimori-consent-receipt/1 (ISO/IEC TS 27560)",
            "record_header": {"record_id": record_id, "created": now.isoformat(), "controller": self.signer.name},
            "processing": [
                {
                    "purpose": change.purpose,
                    "purpose_label": {"ja": purpose.ja, "en": purpose.en},
                    "service": change.service,
                }
            ],
            "parties": {"data_subject": change.resident, "recipient": change.service},
            "event": {
                "type": change.state.value,
                "time": now.isoformat(),
                "expires": expires_at.isoformat() if expires_at else None,
            },
        }
        signature = self.signer.private.sign(canonical_json(record))
        return {
            "record": record,
            "signature": {
                "alg": "Ed25519",
                "key": str(self.signer.verifier),
                "value": base64.b64encode(signature).decode(),
            },
        }

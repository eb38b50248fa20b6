"""The outbox of notifications: changes queued per subscription, claimed with a lease, retried with backoff.

A change is queued with the entity before and after it, so what is sent can be decided when it is sent.
A process claims one subscription's due changes at a time by leasing the subscription (rows another process
holds are skipped), so two processes never notify one subscription at once; a lease that runs out (the
process died mid-send) lets another take over, so a notification is delivered at least once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from machimori.clock import as_utc
from machimori.hub.entities import Entity
from machimori.hub.subscription_store import Stored, live, stored
from machimori.hub.subscriptions import Subscription
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.notify import Notifier
from machimori.storage.tables import hub_notifications, hub_subscriptions

CHANNEL = "hub_notifications"
LEASE = dt.timedelta(seconds=60)
FIRST_RETRY = dt.timedelta(seconds=5)
LONGEST_RETRY = dt.timedelta(hours=1)
MAX_ATTEMPTS = 12
Change = tuple[Entity | None, Entity | None]
"""An entity before and after a write (no before: created; no after: deleted)."""


@dataclass(frozen=True)
class Pending:
    """A queued change of one entity for one subscription."""

    id: str
    entity_id: str
    before: Entity | None
    after: Entity | None
    created_at: dt.datetime
    attempts: int


@dataclass(frozen=True)
class Batch:
    """A subscription whose lease this process holds, and its due changes (oldest first)."""

    stored: Stored
    pending: list[Pending]


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait after the given number of failed attempts (5 s doubling, at most 1 h)."""
    return min(FIRST_RETRY * (1 << min(attempts - 1, 20)), LONGEST_RETRY)


class Outbox:
    """Queue changes for subscriptions and hand them out for delivery."""

    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.database, self.notifier = database, notifier

    def queue_in(
        self,
        connection: Connection,
        tenant: str,
        changes: Sequence[Change],
        concerns: Callable[[Subscription, Change], bool],
        now: dt.datetime,
    ) -> int:
        """Queue each change for every live subscription of the tenant it concerns, in the transaction of the
        write itself (so a committed write always has its notifications); how many were queued."""
        subscriptions = live(connection, tenant, now) if changes else []
        rows = [
            _row(tenant, found, change, now)
            for change in changes
            for found in subscriptions
            if (change[1] or change[0]) is not None and concerns(found.subscription, change)
        ]
        if rows:
            connection.execute(insert(hub_notifications), rows)
            self.notifier.publish(connection, CHANNEL, tenant)
        return len(rows)

    def claim(self, now: dt.datetime, limit: int) -> Batch | None:
        """Lease the subscription with the oldest due change and take up to limit of its due changes."""
        s, n = hub_subscriptions.c, hub_notifications.c
        joined = hub_subscriptions.join(
            hub_notifications, and_(n.tenant == s.tenant, n.owner == s.owner, n.subscription == s.id)
        )
        query = (
            select(hub_subscriptions)
            .select_from(joined)
            .where(n.next_attempt_at <= now, or_(s.busy_until.is_(None), s.busy_until <= now))
            .order_by(n.next_attempt_at, n.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=hub_subscriptions)
        )
        with self.database.begin() as connection:
            row = connection.execute(query).first()
            if row is None:
                return None
            key = and_(s.tenant == row.tenant, s.owner == row.owner, s.id == row.id)
            connection.execute(update(hub_subscriptions).where(key).values(busy_until=now + LEASE))
            due = connection.execute(
                select(hub_notifications)
                .where(n.tenant == row.tenant, n.owner == row.owner, n.subscription == row.id, n.next_attempt_at <= now)
                .order_by(n.id)
                .limit(limit)
            ).all()
        return Batch(stored(row), [_pending(item) for item in due])

    def delivered(self, batch: Batch, ids: list[str], now: dt.datetime, *, sent: bool) -> None:
        """Remove the changes that are dealt with; if a notification went out, count it as a success."""
        with self.database.begin() as connection:
            self._remove(connection, ids)
            values: dict[str, Any] = {"busy_until": None}
            if sent:
                values.update(times_sent=hub_subscriptions.c.times_sent + 1, last_notification=now, last_success=now)
            connection.execute(update(hub_subscriptions).where(_key(batch)).values(**values))

    def failed(self, batch: Batch, ids: list[str], now: dt.datetime) -> list[str]:
        """Count a failed notification and retry its changes later; the ids given up on (and removed)."""
        attempts = {p.id: p.attempts + 1 for p in batch.pending if p.id in ids}
        given_up = [pid for pid, count in attempts.items() if count >= MAX_ATTEMPTS]
        with self.database.begin() as connection:
            for pid, count in attempts.items():
                if count < MAX_ATTEMPTS:
                    connection.execute(
                        update(hub_notifications)
                        .where(hub_notifications.c.id == pid)
                        .values(attempts=count, next_attempt_at=now + retry_delay(count))
                    )
            self._remove(connection, given_up)
            c = hub_subscriptions.c
            connection.execute(
                update(hub_subscriptions)
                .where(_key(batch))
                .values(
                    busy_until=None,
                    times_sent=c.times_sent + 1,
                    times_failed=c.times_failed + 1,
                    last_notification=now,
                    last_failure=now,
                )
            )
        return given_up

    def postpone(self, batch: Batch, until: dt.datetime) -> None:
        """Hold the changes until a moment (throttling) and give up the lease."""
        with self.database.begin() as connection:
            connection.execute(
                update(hub_notifications)
                .where(hub_notifications.c.id.in_([p.id for p in batch.pending]))
                .values(next_attempt_at=until)
            )
            connection.execute(update(hub_subscriptions).where(_key(batch)).values(busy_until=None))

    def pending_count(self) -> int:
        """How many changes wait to be notified (for tests and health)."""
        with self.database.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(hub_notifications)).scalar_one())

    @staticmethod
    def _remove(connection: Any, ids: list[str]) -> None:
        if ids:
            connection.execute(delete(hub_notifications).where(hub_notifications.c.id.in_(ids)))


def _row(tenant: str, found: Stored, change: Change, now: dt.datetime) -> dict[str, Any]:
    before, after = change
    entity = after or before
    assert entity is not None
    return {
        "id": uuid7(),
        "tenant": tenant,
        "owner": found.owner.client_id,
        "subscription": found.subscription.id,
        "entity_id": entity.id,
        "before": None if before is None else before.to_json(),
        "after": None if after is None else after.to_json(),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
    }


def _key(batch: Batch) -> Any:
    s = hub_subscriptions.c
    return and_(
        s.tenant == batch.stored.tenant, s.owner == batch.stored.owner.client_id, s.id == batch.stored.subscription.id
    )


def _pending(row: Any) -> Pending:
    return Pending(
        row.id,
        row.entity_id,
        None if row.before is None else Entity.from_json(row.before),
        None if row.after is None else Entity.from_json(row.after),
        as_utc(row.created_at),
        row.attempts,
    )

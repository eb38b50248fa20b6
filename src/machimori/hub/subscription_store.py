"""Where subscriptions are kept: per tenant and per owning service, never visible to another.

A subscription belongs to the service that made it (its client id and organisation) in one tenant; every
read, change and deletion names that owner, so another service finds nothing. The owner's authority when
it subscribed (purpose, scopes, the resident whose token it used) is kept beside it: notifications are
decided on it, and it is never widened afterwards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from machimori.clock import as_utc
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.subscriptions import Delivery, Subscription
from machimori.storage import Database
from machimori.storage.tables import hub_notifications, hub_subscriptions


@dataclass(frozen=True)
class Owner:
    """The service a subscription belongs to, and the authority it subscribed with."""

    client_id: str
    org: str | None
    purpose: str | None = None
    scopes: frozenset[str] = frozenset()
    resident: str | None = None
    grant: str | None = None


@dataclass(frozen=True)
class Stored:
    """A subscription as kept: its tenant, owner, definition and delivery figures."""

    tenant: str
    owner: Owner
    subscription: Subscription
    delivery: Delivery


class SubscriptionStore:
    """Create, read, change and delete the subscriptions of one owner at a time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, tenant: str, owner: Owner, subscription: Subscription, now: dt.datetime) -> None:
        """Keep a new subscription; AlreadyExists if the owner has one with that id in the tenant."""
        values = {
            "tenant": tenant,
            "owner": owner.client_id,
            "id": subscription.id,
            "org": owner.org,
            "purpose": owner.purpose,
            "scopes": " ".join(sorted(owner.scopes)),
            "resident": owner.resident,
            "grant_id": owner.grant,
            "body": subscription.to_json(),
            "active": subscription.is_active,
            "expires_at": subscription.expires_at,
            "created_at": now,
            "modified_at": now,
            "times_sent": 0,
            "times_failed": 0,
        }
        try:
            with self.database.begin() as connection:
                connection.execute(insert(hub_subscriptions).values(**values))
        except IntegrityError:
            raise NgsiLdError(
                ErrorType.AlreadyExists, f"subscription {subscription.id} already exists / 既に存在します"
            ) from None

    def get(self, tenant: str, owner: Owner, subscription_id: str) -> Stored | None:
        """The owner's subscription with that id, if it has one."""
        with self.database.engine.connect() as connection:
            row = connection.execute(
                select(hub_subscriptions).where(_owned(tenant, owner), hub_subscriptions.c.id == subscription_id)
            ).first()
        return None if row is None else stored(row)

    def page(
        self, tenant: str, owner: Owner, *, limit: int, offset: int = 0, count: bool = False
    ) -> tuple[list[Stored], int | None]:
        """The owner's subscriptions by id, a page at a time, and how many it has (if asked)."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(hub_subscriptions)
                .where(_owned(tenant, owner))
                .order_by(hub_subscriptions.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            total = (
                connection.execute(
                    select(func.count()).select_from(hub_subscriptions).where(_owned(tenant, owner))
                ).scalar_one()
                if count
                else None
            )
        return [stored(row) for row in rows], total

    def replace(self, tenant: str, owner: Owner, subscription: Subscription, now: dt.datetime) -> bool:
        """Overwrite the owner's subscription's definition (its authority stays); False if it has none."""
        with self.database.begin() as connection:
            changed = connection.execute(
                update(hub_subscriptions)
                .where(_owned(tenant, owner), hub_subscriptions.c.id == subscription.id)
                .values(
                    body=subscription.to_json(),
                    active=subscription.is_active,
                    expires_at=subscription.expires_at,
                    modified_at=now,
                )
            ).rowcount
        return bool(changed)

    def delete(self, tenant: str, owner: Owner, subscription_id: str) -> bool:
        """Remove the owner's subscription and its undelivered notifications; False if it has none."""
        n = hub_notifications.c
        with self.database.begin() as connection:
            removed = connection.execute(
                delete(hub_subscriptions).where(_owned(tenant, owner), hub_subscriptions.c.id == subscription_id)
            ).rowcount
            if removed:
                connection.execute(
                    delete(hub_notifications).where(
                        n.tenant == tenant, n.owner == owner.client_id, n.subscription == subscription_id
                    )
                )
        return bool(removed)


def live(connection: Connection, tenant: str, now: dt.datetime) -> list[Stored]:
    """The tenant's subscriptions that are active and not expired, read in the caller's transaction."""
    s = hub_subscriptions.c
    rows = connection.execute(
        select(hub_subscriptions).where(
            s.tenant == tenant, s.active.is_(True), or_(s.expires_at.is_(None), s.expires_at > now)
        )
    ).all()
    return [stored(row) for row in rows]


def _owned(tenant: str, owner: Owner) -> Any:
    s = hub_subscriptions.c
    org = s.org.is_(None) if owner.org is None else s.org == owner.org
    return and_(s.tenant == tenant, s.owner == owner.client_id, org)


def stored(row: Row[Any]) -> Stored:
    """A row of hub_subscriptions as a Stored subscription."""
    owner = Owner(
        row.owner,
        row.org,
        row.purpose,
        frozenset(str(row.scopes).split()),
        row.resident,
        row.grant_id,
    )
    delivery = Delivery(
        row.times_sent,
        row.times_failed,
        _utc(row.last_notification),
        _utc(row.last_success),
        _utc(row.last_failure),
    )
    return Stored(row.tenant, owner, Subscription.from_json(row.body), delivery)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else as_utc(moment)

"""Consent changes pushed to the services that subscribed: Security Event Tokens (RFC 8417) over RFC 8935.

A change is queued as a signed token in the transaction that records it, so an acknowledged change is never
without its notification. Deliveries are claimed with a lease before they are sent, so two server processes
never push the same row; a receiver de-duplicates by `jti` all the same (a lease can run out mid-send).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from machimori.clock import as_utc, utc_now
from machimori.consent.records import ConsentChange
from machimori.delivery import DeliveryLoop
from machimori.events import EventClass, EventStream, Resource, SecurityEvent, Severity, Status
from machimori.identity.oauth.keys import ALGORITHM
from machimori.ids import uuid7
from machimori.storage import Database
from machimori.storage.tables import consent_deliveries, consent_subscriptions

log = logging.getLogger(__name__)

EVENT_TYPE = "https://machimori.example/secevent/consent-changed"
MEDIA_TYPE = "application/secevent+jwt"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_ENDPOINT_LENGTH = 2048
LEASE = dt.timedelta(seconds=60)
FIRST_RETRY = dt.timedelta(seconds=5)
LONGEST_RETRY = dt.timedelta(hours=1)
MAX_ATTEMPTS = 12
ERROR_CHARS = 300


class EndpointRefused(ValueError):
    """An endpoint consent changes may not be pushed to."""


@dataclass(frozen=True)
class Subscription:
    """Where a service wants its consent changes pushed."""

    client_id: str
    endpoint: str
    created_at: dt.datetime


@dataclass(frozen=True)
class _Claimed:
    """A delivery this process holds the lease of."""

    id: str
    client_id: str
    endpoint: str
    token: str
    attempts: int


def check_endpoint(endpoint: str) -> str:
    """The endpoint, if changes may be pushed to it: https, or http on a loopback host; no fragment or credentials."""
    if len(endpoint) > MAX_ENDPOINT_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in endpoint):
        raise EndpointRefused(
            f"通知先は空白を含まない {MAX_ENDPOINT_LENGTH} 文字以内の URL にしてください"
            f" / the endpoint must be a URL of at most {MAX_ENDPOINT_LENGTH} characters without spaces"
        )
    try:
        url = httpx.URL(endpoint)  # the parser that sends, so what is checked is where it goes
    except httpx.InvalidURL:
        raise EndpointRefused(f"通知先が URL ではありません / the endpoint is not a URL: {endpoint!r}") from None
    if not ((url.scheme == "https" and url.host) or (url.scheme == "http" and url.host in LOOPBACK_HOSTS)):
        raise EndpointRefused(
            "通知先は https:// の URL か、ループバック(127.0.0.1, localhost, ::1)上の http:// の URL にしてください"
            " / the endpoint must be an https:// URL, or http:// on a loopback host (127.0.0.1, localhost, ::1)"
        )
    if "#" in endpoint:
        raise EndpointRefused("通知先の URL にフラグメント(#)は使えません / the endpoint must not have a fragment")
    if url.userinfo:
        raise EndpointRefused("通知先の URL に認証情報は含められません / the endpoint must not carry credentials")
    return endpoint


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait after the given number of failed attempts (5 s doubling, at most 1 h)."""
    return min(FIRST_RETRY * (1 << (attempts - 1)), LONGEST_RETRY)


class ConsentNotifications(DeliveryLoop):
    """Subscriptions of services, and the queue of consent changes pushed to them."""

    name = "consent-notifications"

    def __init__(
        self,
        database: Database,
        events: EventStream,
        key: ECKey,
        issuer: str,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        super().__init__({"Content-Type": MEDIA_TYPE, "Accept": "application/json"})
        self.database, self.events, self.key, self.issuer, self.clock = database, events, key, issuer, clock

    def subscribe(self, client_id: str, endpoint: str) -> Subscription:
        """Push the service's consent changes to endpoint from now on (replacing an earlier endpoint)."""
        check_endpoint(endpoint)
        values = {"client_id": client_id, "endpoint": endpoint, "created_at": self.clock()}
        dialect = sqlite if self.database.is_sqlite else postgresql
        upsert = dialect.insert(consent_subscriptions).values(values)
        upsert = upsert.on_conflict_do_update(index_elements=["client_id"], set_={"endpoint": endpoint})
        with self.database.begin() as connection:
            connection.execute(upsert)
        subscription = self.subscription(client_id)
        assert subscription is not None
        return subscription

    def unsubscribe(self, client_id: str) -> bool:
        """Stop pushing to the service, dropping what is not delivered yet; whether it was subscribed."""
        with self.database.begin() as connection:
            connection.execute(
                delete(consent_deliveries).where(
                    consent_deliveries.c.client_id == client_id, consent_deliveries.c.delivered_at.is_(None)
                )
            )
            removed = connection.execute(
                delete(consent_subscriptions).where(consent_subscriptions.c.client_id == client_id)
            ).rowcount
        return bool(removed)

    def subscription(self, client_id: str) -> Subscription | None:
        """The service's subscription, if it has one."""
        with self.database.engine.connect() as connection:
            row = connection.execute(
                select(consent_subscriptions).where(consent_subscriptions.c.client_id == client_id)
            ).first()
        return Subscription(row.client_id, row.endpoint, as_utc(row.created_at)) if row else None

    def enqueue(self, connection: Connection, change: ConsentChange) -> None:
        """Queue the change for its service, in the caller's transaction, if the service subscribed."""
        subscribed = connection.execute(
            select(consent_subscriptions.c.client_id).where(consent_subscriptions.c.client_id == change.service)
        ).first()
        if subscribed is None:
            return
        now = self.clock()
        jti = uuid7()
        connection.execute(
            insert(consent_deliveries).values(
                id=jti,
                client_id=change.service,
                token=self.security_event_token(change, jti, now),
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )

    def security_event_token(self, change: ConsentChange, jti: str, issued_at: dt.datetime) -> str:
        """The change as a SET (RFC 8417) for its service, signed with the provider's key."""
        header = {"typ": "secevent+jwt", "alg": ALGORITHM, "kid": self.key.kid}
        claims = {
            "iss": self.issuer,
            "iat": int(issued_at.timestamp()),
            "jti": jti,
            "aud": change.service,
            "events": {
                EVENT_TYPE: {
                    "resident": change.resident,
                    "purpose": change.purpose,
                    "state": change.state.value,
                    "changed_at": change.changed_at.isoformat(),
                }
            },
        }
        return jwt.encode(header, claims, self.key, algorithms=[ALGORITHM])

    def changed(self, change: ConsentChange) -> None:
        """A consent listener: deliver at once what the change queued."""
        self.wake()

    def deliver_due(self, limit: int = 100) -> int:
        """Push up to limit due deliveries, one claim at a time; how many were delivered."""
        delivered = 0
        failing: set[str] = set()
        for _ in range(limit):
            claimed = self._claim(failing)
            if claimed is None:
                break
            error = self._push(claimed)
            if error is None:
                self._delivered(claimed)
                delivered += 1
            else:
                failing.add(claimed.client_id)  # its other rows wait for the next round
                self._failed(claimed, error)
        return delivered

    def _claim(self, skipped: set[str]) -> _Claimed | None:
        """Take the lease of the next due delivery (rows another process holds are skipped)."""
        now = self.clock()
        d = consent_deliveries.c
        query = (
            select(d.id, d.client_id, d.token, d.attempts, consent_subscriptions.c.endpoint)
            .join(consent_subscriptions, consent_subscriptions.c.client_id == d.client_id)
            .where(d.delivered_at.is_(None), d.attempts < MAX_ATTEMPTS, d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, d.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=consent_deliveries)
        )
        if skipped:
            query = query.where(d.client_id.not_in(skipped))
        with self.database.begin() as connection:
            row = connection.execute(query).first()
            if row is None:
                return None
            connection.execute(update(consent_deliveries).where(d.id == row.id).values(next_attempt_at=now + LEASE))
        return _Claimed(row.id, row.client_id, row.endpoint, row.token, row.attempts)

    def _push(self, claimed: _Claimed) -> str | None:
        """POST the token (RFC 8935); None if the receiver accepted it, else what went wrong."""
        try:
            with self.client().stream("POST", claimed.endpoint, content=claimed.token) as response:
                if response.is_success:
                    return None
                body = next(response.iter_bytes(ERROR_CHARS), b"")[:ERROR_CHARS]
                return f"HTTP {response.status_code}: {body.decode(errors='replace')}".strip()
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"

    def _delivered(self, claimed: _Claimed) -> None:
        with self.database.begin() as connection:
            connection.execute(
                update(consent_deliveries)
                .where(consent_deliveries.c.id == claimed.id)
                .values(delivered_at=self.clock(), attempts=claimed.attempts + 1, last_error=None)
            )

    def _failed(self, claimed: _Claimed, error: str) -> None:
        """Record the error and retry later, or give up with a security event after the last attempt."""
        attempts = claimed.attempts + 1
        with self.database.begin() as connection:
            connection.execute(
                update(consent_deliveries)
                .where(consent_deliveries.c.id == claimed.id)
                .values(attempts=attempts, last_error=error, next_attempt_at=self.clock() + retry_delay(attempts))
            )
        log.warning("consent notification %s to %s failed (%d): %s", claimed.id, claimed.client_id, attempts, error)
        if attempts >= MAX_ATTEMPTS:
            self.events.emit(
                SecurityEvent(
                    class_uid=EventClass.API_ACTIVITY,
                    activity_id=99,
                    severity_id=Severity.MEDIUM,
                    status_id=Status.FAILURE,
                    message=f"consent change notification to {claimed.client_id} given up after {attempts} attempts"
                    f" / 同意変更の通知を断念: {error}",
                    resources=[Resource(uid=claimed.id, type="consent_delivery")],
                    unmapped={"client_id": claimed.client_id, "endpoint": claimed.endpoint, "last_error": error},
                )
            )

"""NGSI-LD notifications over HTTP, decided for the subscription's owner when they are sent.

`changed` queues a change in the outbox right after the entity write and before the write is answered,
so every acknowledged write has its notifications queued. A loop started with the web app delivers them.
What a notification carries is decided at the moment it is sent, with the owner's authority as it stands
then (the service still registered, in the same organisation, its resident's grant not revoked), through
the same `filter_entity` as every read: a withdrawn consent drops the resident's personal attributes from
the very next notification, an entity the owner may not read is not sent at all, and q, geoQ and
watchedAttributes are judged only on what the owner may see. Personal data sent is audit-logged like a read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
from sqlalchemy import Connection

from machimori.clock import utc_now
from machimori.consent.access import record_accesses
from machimori.delivery import DeliveryLoop
from machimori.events import Actor, EventClass, Resource, SecurityEvent, Severity, Status
from machimori.hub.catalogue import Catalogue, Classification
from machimori.hub.conformance import ConformanceCatalogue, is_test_tenant, suite_token
from machimori.hub.enforce import Filtered, filter_entity, resident_of
from machimori.hub.entities import Entity
from machimori.hub.jsonld import CORE_CONTEXT, Contexts
from machimori.hub.outbox import CHANNEL, Batch, Change, Outbox, Pending
from machimori.hub.rendering import render_notified, with_changes, with_previous
from machimori.hub.subscription_store import Owner, Stored
from machimori.hub.triggers import fired, matches, selected
from machimori.identity.oauth.clients import find_client
from machimori.identity.oauth.provider import AccessToken
from machimori.ids import uuid7
from machimori.platform import Platform
from machimori.policy import Context, Subject
from machimori.web.security import service_subject, token_context

log = logging.getLogger(__name__)

BATCH = 100
MAX_BODY_BYTES = 1 << 20
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


@dataclass(frozen=True)
class Authority:
    """What the owner may do now: the decision point's subject and context for it."""

    subject: Subject
    context: Context


class Notifications(DeliveryLoop):
    """Queues changes for the subscriptions they concern and delivers them, re-decided, to their endpoints."""

    name = "hub-notifications"

    def __init__(
        self,
        platform: Platform,
        contexts: Contexts,
        catalogue: Catalogue,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        super().__init__()
        self.platform, self.contexts, self.catalogue, self.clock = platform, contexts, catalogue, clock
        self.outbox = Outbox(platform.database, platform.notifier)
        self._listening = False

    def changed(self, connection: Connection, tenant: str, changes: Sequence[Change]) -> int:
        """Queue entities' changes (before, after) in the transaction that writes them; how many were queued."""
        return self.outbox.queue_in(
            connection,
            tenant,
            changes,
            lambda subscription, change: fired(subscription, *change) is not None,
            self.clock(),
        )

    # -- delivery ------------------------------------------------------------------------------------------

    def deliver_due(self, rounds: int = 100) -> int:
        """Deal with up to `rounds` subscriptions' due changes; how many notifications were sent."""
        sent = 0
        for _ in range(rounds):
            batch = self.outbox.claim(self.clock(), BATCH)
            if batch is None:
                break
            sent += self._deliver(batch)
        return sent

    def _deliver(self, batch: Batch) -> int:
        now = self.clock()
        found = batch.stored
        subscription = found.subscription
        ids = [p.id for p in batch.pending]
        if subscription.status(now) != "active":
            self.outbox.delivered(batch, ids, now, sent=False)  # paused or expired: nothing is sent
            return 0
        throttle = subscription.throttling
        last = found.delivery.last_notification
        if throttle is not None and last is not None and last + dt.timedelta(seconds=throttle) > now:
            self.outbox.postpone(batch, last + dt.timedelta(seconds=throttle))
            return 0
        authority = self.authority(found.owner, found.tenant)
        if authority is None:
            self.outbox.delivered(batch, ids, now, sent=False)
            return 0
        data, taken = self._data(found, batch.pending, authority, now)
        if not data:
            self.outbox.delivered(batch, taken, now, sent=False)
            return 0
        error = self._post(found, data, now)
        if error is None:
            self.outbox.delivered(batch, taken, now, sent=True)
            return 1
        given_up = self.outbox.failed(batch, taken, now)
        log.warning("NGSI-LD notification for %s to %s failed: %s", subscription.id, found.owner.client_id, error)
        if given_up:
            self._gave_up(found, error, len(given_up))
        return 0

    def authority(self, owner: Owner, tenant: str) -> Authority | None:
        """The owner's subject and decision context now; None if it may no longer be notified at all."""
        if is_test_tenant(self.platform.settings, tenant) and owner.client_id == suite_token().client_id:
            test = suite_token()
            return Authority(service_subject(test), token_context(test, owner.purpose))
        client = find_client(self.platform.database, owner.client_id)
        if client is None or client.org != owner.org:
            return None
        if owner.grant is not None and self.platform.oauth.is_revoked(owner.grant):
            return None
        registered = frozenset(client.scope.split())
        claims: dict[str, Any] = {"client_id": owner.client_id, "scope": " ".join(sorted(owner.scopes & registered))}
        if client.org:
            claims["org"] = client.org
        if owner.resident is not None and owner.grant is not None:
            claims["sub"], claims["grant"] = owner.resident, owner.grant
        token = AccessToken(claims)  # the standing of the subscription, in the shape every read is decided on
        return Authority(service_subject(token), token_context(token, owner.purpose))

    def _data(
        self, found: Stored, pending: list[Pending], authority: Authority, now: dt.datetime
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The entities to send (one per entity, the latest) and the ids of the changes dealt with."""
        latest: dict[str, dict[str, Any]] = {}
        taken: list[str] = []
        size = 0
        active = self.contexts.active(found.subscription.notification_context())
        for change in pending:
            shown = self._decided(found, change, authority)
            rendered = None if shown is None else render_notified(shown, found.subscription, active, change)
            if rendered is not None:
                size += len(json.dumps(rendered, ensure_ascii=False))
                if latest and size > MAX_BODY_BYTES:
                    break  # the rest go in the next notification
                latest.pop(change.entity_id, None)
                latest[change.entity_id] = rendered
            taken.append(change.id)
        return list(latest.values()), taken

    def _decided(self, found: Stored, change: Pending, authority: Authority) -> Entity | None:
        """The entity as the owner may be notified of it now, or None if this change is not theirs to know."""
        subscription, tenant = found.subscription, found.tenant
        seen_before = self._filtered(tenant, change.before, authority)
        seen_after = self._filtered(tenant, change.after, authority)
        if change.after is not None and seen_after.entity is None:
            self._withheld(found, change.entity_id, seen_after)
            return None
        if change.after is None and seen_before.entity is None:
            return None
        before, after = seen_before.entity, seen_after.entity
        if fired(subscription, before, after) is None:
            return None
        entity = after if after is not None else before
        assert entity is not None
        if not selected(subscription, entity) or not matches(subscription, entity, self.contexts):
            return None
        if after is None:
            gone = replace(entity, attributes={})
            if not subscription.show_changes:
                return gone
            gone = with_previous(gone, before)
            self._log_personal(found, change, seen_before, gone)
            return gone
        previous = subscription.show_changes and self._same_resident(tenant, change)  # else the audit trail misses one
        after = with_changes(after, before, previous=previous)  # deleted attributes shown as deleted (urn:ngsi-ld:null)
        chosen = subscription.attributes
        if chosen is not None:
            after = replace(after, attributes={k: v for k, v in after.attributes.items() if k in chosen})
        self._log_personal(found, change, seen_after, after)
        deleted = [
            name for name in after.attributes if seen_after.entity is None or name not in seen_after.entity.attributes
        ]
        if previous and deleted:  # deleted attributes' previous values were decided on the entity as it was
            self._log_personal(
                found, change, seen_before, replace(after, attributes={k: after.attributes[k] for k in deleted})
            )
        return after

    def _same_resident(self, tenant: str, change: Pending) -> bool:
        """Whether the entity's data was of the same resident (or of none) before and after the change."""
        if change.before is None or change.after is None:
            return True
        was = resident_of(change.before, self._classify(tenant, change.before.types))
        return was == resident_of(change.after, self._classify(tenant, change.after.types))

    def _filtered(self, tenant: str, entity: Entity | None, authority: Authority) -> Filtered:
        if entity is None:
            return Filtered(None)
        return filter_entity(
            self.platform.decisions,
            authority.subject,
            authority.context,
            tenant,
            entity,
            self._classify(tenant, entity.types),
        )

    def _classify(self, tenant: str, types: list[str]) -> Classification:
        """The classification of these types in this tenant (the conformance test tenants have their own)."""
        if is_test_tenant(self.platform.settings, tenant):
            return ConformanceCatalogue(self.catalogue).classify(types)
        return self.catalogue.classify(types)

    def _log_personal(self, found: Stored, change: Pending, filtered: Filtered, shown: Entity) -> None:
        """Decisions on personal data that was about to be sent go to the audit log and the resident's history."""
        stored = change.after if change.after is not None else change.before  # before: a deletion's showChanges
        assert stored is not None
        resident = resident_of(stored, self._classify(found.tenant, stored.types))
        if resident is None or not filtered.personal:
            return
        prefix = f"ngsi-ld:{found.tenant}:{change.entity_id}#"
        made = [
            (resident, target, decision)
            for target, decision in filtered.personal
            if not target.startswith(prefix) or target[len(prefix) :] in shown.attributes or not decision.permit
        ]
        if made:
            record_accesses(
                self.platform.audit, self.platform.database, found.owner.client_id, found.owner.purpose, made
            )

    def _withheld(self, found: Stored, entity_id: str, filtered: Filtered) -> None:
        why = filtered.decisions[0].explain() if filtered.decisions else "no decision"
        self.platform.events.emit(
            SecurityEvent(
                class_uid=EventClass.API_ACTIVITY,
                activity_id=99,
                severity_id=Severity.LOW,
                status_id=Status.FAILURE,
                message=f"NGSI-LD notification of {entity_id} withheld from {found.owner.client_id}"
                f" (subscription {found.subscription.id}): {why}",
                actor=Actor(uid=found.owner.client_id, app_name=found.owner.client_id),
                resources=[Resource(uid=entity_id, type="ngsi-ld-entity")],
            )
        )

    def _gave_up(self, found: Stored, error: str, count: int) -> None:
        self.platform.events.emit(
            SecurityEvent(
                class_uid=EventClass.API_ACTIVITY,
                activity_id=99,
                severity_id=Severity.MEDIUM,
                status_id=Status.FAILURE,
                message=f"NGSI-LD notification of {count} change(s) for {found.subscription.id} given up"
                f" / 通知を断念: {error}",
                actor=Actor(uid=found.owner.client_id, app_name=found.owner.client_id),
                resources=[Resource(uid=found.subscription.id, type="ngsi-ld-subscription")],
                unmapped={"endpoint": found.subscription.endpoint.uri},
            )
        )

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _post(self, found: Stored, data: list[dict[str, Any]], now: dt.datetime) -> str | None:
        """POST the notification; None if the endpoint took it (2xx), else what went wrong (status or error)."""
        subscription = found.subscription
        body: dict[str, Any] = {
            "id": f"urn:ngsi-ld:Notification:{uuid7()}",
            "type": "Notification",
            "subscriptionId": subscription.id,
            "notifiedAt": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "data": data,
        }
        context = subscription.notification_context()
        headers = dict(subscription.endpoint.receiver_info)
        if subscription.endpoint.accept == "application/ld+json":
            body["@context"] = _with_core(context)
            headers["Content-Type"] = "application/ld+json"
        else:
            headers["Content-Type"] = "application/json"
            headers["Link"] = f'<{_link_url(context)}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        if found.tenant:
            headers["NGSILD-Tenant"] = found.tenant
        content = json.dumps(body, ensure_ascii=False).encode()
        try:
            with self.client().stream("POST", subscription.endpoint.uri, content=content, headers=headers) as answer:
                return None if answer.is_success else f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            return type(error).__name__  # not the receiver's words: they are not the subscriber's to read

    def start(self) -> None:
        """Deliver in a daemon thread until close(), woken by every queued change (in any process)."""
        if not self._listening:
            self.platform.notifier.subscribe(CHANNEL, lambda _payload: self.wake())
            self._listening = True
        super().start()


def _with_core(context: Any) -> Any:
    if context is None:
        return CORE_CONTEXT
    items = context if isinstance(context, list) else [context]
    return items if CORE_CONTEXT in items else [*items, CORE_CONTEXT]


def _link_url(context: Any) -> str:
    """The @context a Link header can name: the subscription's if it is one URL, else the core context."""
    if isinstance(context, str):
        return context
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        return str(context[0])
    return CORE_CONTEXT

"""Subscriptions checked on the way in (ETSI errors), kept per tenant and owner, and the changes that fire them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from machimori.hub.entities import Entity, parse_entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.outbox import Outbox, retry_delay
from machimori.hub.subscription_store import Owner, SubscriptionStore
from machimori.hub.subscriptions import (
    Delivery,
    Subscription,
    check_endpoint_uri,
    parse_subscription,
    patch_subscription,
    render_subscription,
)
from machimori.hub.triggers import fired, matches
from machimori.storage import Database
from machimori.storage.notify import LocalNotifier

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
STAMP = "2026-11-30T00:00:00Z"
CONTEXTS = Contexts(DocumentLoader())
LOCAL = {"Vehicle": "https://example.org/Vehicle", "speed": "https://example.org/speed"}
ACTIVE = CONTEXTS.active(LOCAL)
ENDPOINT = {"uri": "http://127.0.0.1:8080/notify"}
OWNER = Owner("mm_client", "minato-kotsu", "https://w3id.org/dpv#ServiceProvision", frozenset({"city:read"}))


def queued(outbox: Outbox, *args: Any) -> int:
    """Queue changes in a transaction of their own, as a write's transaction would."""
    with outbox.database.begin() as connection:
        return outbox.queue_in(connection, *args)


def parse(payload: dict[str, Any], context: Any = LOCAL) -> Subscription:
    return parse_subscription(payload, context, CONTEXTS, now=NOW, new_id=lambda: "urn:ngsi-ld:Subscription:new")


def vehicles(**extra: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Vehicle"}], "notification": {"endpoint": ENDPOINT}, **extra}


def car(speed: float | None = 50, number: int = 1, **attributes: Any) -> Entity:
    payload: dict[str, Any] = {"id": f"urn:ngsi-ld:Vehicle:{number}", "type": "Vehicle", **attributes}
    if speed is not None:
        payload["speed"] = speed
    return parse_entity(payload, ACTIVE, now=STAMP)


def test_a_subscription_is_kept_with_expanded_names_and_shown_with_the_reader_s_context() -> None:
    subscription = parse(
        vehicles(
            watchedAttributes=["speed"],
            q="speed>40",
            notification={"endpoint": ENDPOINT, "attributes": ["speed"], "format": "keyValues"},
            throttling=5,
            expiresAt="2027-01-01T00:00:00Z",
        )
    )
    assert subscription.id == "urn:ngsi-ld:Subscription:new"
    assert subscription.entities[0].type == "https://example.org/Vehicle"
    assert subscription.watched == ("https://example.org/speed",)
    assert subscription.attributes == ("https://example.org/speed",)
    assert subscription.triggers == ("attributeCreated", "attributeUpdated")
    assert subscription.context == LOCAL
    assert Subscription.from_json(subscription.to_json()) == subscription
    shown = render_subscription(subscription, Delivery(), ACTIVE, now=NOW)
    assert shown["entities"] == [{"type": "Vehicle"}] and shown["watchedAttributes"] == ["speed"]
    assert shown["status"] == "active" and shown["notification"]["format"] == "keyValues"
    unknown = render_subscription(subscription, Delivery(), CONTEXTS.active(None), now=NOW)
    assert unknown["entities"] == [{"type": "https://example.org/Vehicle"}]
    assert (
        render_subscription(subscription, Delivery(), ACTIVE, now=dt.datetime(2027, 2, 1, tzinfo=dt.UTC))["status"]
        == "expired"
    )


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"type": "Subscription", "notification": {"endpoint": ENDPOINT}}, ErrorType.BadRequestData),
        (vehicles(type="Entity"), ErrorType.BadRequestData),
        (vehicles(id="not a uri"), ErrorType.BadRequestData),
        ({"type": "Subscription", "entities": [{"type": "Vehicle"}]}, ErrorType.BadRequestData),
        ({**vehicles(), "entities": [{"id": "urn:x:1"}]}, ErrorType.BadRequestData),
        ({**vehicles(), "entities": [{"type": "Vehicle", "idPattern": "("}]}, ErrorType.BadRequestData),
        ({**vehicles(), "entities": []}, ErrorType.BadRequestData),
        (vehicles(watchedAttributes=[]), ErrorType.BadRequestData),
        (vehicles(notificationTrigger=["whenever"]), ErrorType.BadRequestData),
        (vehicles(q="speed>>"), ErrorType.BadRequestData),
        (vehicles(expiresAt="2020-01-01T00:00:00Z"), ErrorType.BadRequestData),
        (vehicles(throttling=-1), ErrorType.BadRequestData),
        (vehicles(isActive="yes"), ErrorType.BadRequestData),
        (vehicles(surprise=1), ErrorType.BadRequestData),
        (vehicles(geoQ={"geometry": "Point", "coordinates": [1, 2], "georel": "nearby"}), ErrorType.BadRequestData),
        (vehicles(notification={"endpoint": {"uri": "mqtt://broker/topic"}}), ErrorType.BadRequestData),
        (vehicles(notification={"endpoint": {"uri": "javascript:alert(1)"}}), ErrorType.BadRequestData),
        (vehicles(notification={"endpoint": ENDPOINT, "format": "xml"}), ErrorType.BadRequestData),
        (vehicles(notification={"endpoint": {**ENDPOINT, "accept": "text/html"}}), ErrorType.BadRequestData),
        (
            vehicles(notification={"endpoint": {**ENDPOINT, "receiverInfo": [{"key": "Host", "value": "x"}]}}),
            ErrorType.BadRequestData,
        ),
        (
            vehicles(notification={"endpoint": {**ENDPOINT, "receiverInfo": [{"key": "X-A", "value": "a\r\nB: c"}]}}),
            ErrorType.BadRequestData,
        ),
        (vehicles(timeInterval=60), ErrorType.OperationNotSupported),
        (vehicles(notification={"endpoint": ENDPOINT, "showChanges": "yes"}), ErrorType.BadRequestData),
    ],
)
def test_faults_are_etsi_errors(payload: dict[str, Any], kind: ErrorType) -> None:
    with pytest.raises(NgsiLdError) as raised:
        parse(payload)
    assert raised.value.kind is kind


@pytest.mark.parametrize(
    "uri",
    [
        "http://user:secret@example.org/n",
        "https://example.org/n#fragment",
        "http:///path-only",
        "https://exa mple.org/n",
        "gopher://example.org/",
        "",
    ],
)
def test_only_plain_http_and_https_endpoints_are_taken(uri: str) -> None:
    with pytest.raises(NgsiLdError) as raised:
        check_endpoint_uri(uri)
    assert raised.value.kind is ErrorType.BadRequestData


def test_a_patch_replaces_members_and_merges_the_notification() -> None:
    subscription = parse(vehicles(notification={"endpoint": ENDPOINT, "format": "keyValues"}))
    changed = patch_subscription(
        subscription,
        {"notification": {"attributes": ["speed"]}, "isActive": False, "q": "speed<10"},
        LOCAL,
        CONTEXTS,
        now=NOW,
    )
    assert changed.format == "keyValues" and changed.attributes == ("https://example.org/speed",)
    assert changed.status(NOW) == "paused" and changed.q == "speed<10" and changed.endpoint == subscription.endpoint
    for fragment in ({"id": "urn:ngsi-ld:Subscription:other"}, {}, {"entities": []}):
        with pytest.raises(NgsiLdError):
            patch_subscription(subscription, fragment, LOCAL, CONTEXTS, now=NOW)


def test_triggers_follow_the_change_and_the_watched_attributes() -> None:
    default = parse(vehicles())
    assert fired(default, None, car()) == "attributeCreated"
    assert fired(default, car(50), car(60)) == "attributeUpdated"
    assert fired(default, car(50), car(50)) is None
    assert fired(default, car(50), None) is None  # deletions only when asked
    deletions = parse(vehicles(notificationTrigger=["entityDeleted", "attributeDeleted"]))
    assert fired(deletions, car(50), None) == "entityDeleted"
    assert fired(deletions, car(50), car(None)) == "attributeDeleted"
    watched = parse(vehicles(watchedAttributes=["speed"]))
    assert fired(watched, car(50), car(50, brand="x")) is None
    assert fired(watched, car(50, brand="x"), car(51, brand="x")) == "attributeUpdated"
    by_id = parse({**vehicles(), "entities": [{"type": "Vehicle", "idPattern": "urn:ngsi-ld:Vehicle:[0-4]"}]})
    assert fired(by_id, None, car(number=3)) and not fired(by_id, None, car(number=7))
    other_type = parse({**vehicles(), "entities": [{"type": "Shelter"}]})
    assert fired(other_type, None, car()) is None


def test_q_and_geo_queries_select_entities() -> None:
    fast = parse(vehicles(q="speed>40"))
    assert matches(fast, car(50), CONTEXTS) and not matches(fast, car(30), CONTEXTS)
    near = parse(vehicles(geoQ={"geometry": "Point", "coordinates": [139.6, 35.4], "georel": "near;maxDistance==1000"}))
    here = car(location={"type": "Point", "coordinates": [139.601, 35.4]})
    far = car(location={"type": "Point", "coordinates": [139.7, 35.4]})
    assert matches(near, here, CONTEXTS) and not matches(near, far, CONTEXTS)
    assert not matches(near, car(), CONTEXTS)  # no location, no match


@pytest.fixture
def store(database: Database) -> SubscriptionStore:
    return SubscriptionStore(database)


def test_a_subscription_belongs_to_its_owner_and_tenant(store: SubscriptionStore) -> None:
    subscription = parse(vehicles(id="urn:ngsi-ld:Subscription:1"))
    store.create("", OWNER, subscription, NOW)
    with pytest.raises(NgsiLdError) as raised:
        store.create("", OWNER, subscription, NOW)
    assert raised.value.kind is ErrorType.AlreadyExists
    found = store.get("", OWNER, subscription.id)
    assert found is not None and found.subscription == subscription and found.owner == OWNER
    intruders = [Owner("mm_other", "minato-kotsu"), Owner("mm_client", "another-org"), Owner("mm_client", None)]
    for intruder in intruders:
        assert store.get("", intruder, subscription.id) is None
        assert store.page("", intruder, limit=10, count=True) == ([], 0)
        assert not store.replace("", intruder, subscription, NOW)
        assert not store.delete("", intruder, subscription.id)
    assert store.get("minato", OWNER, subscription.id) is None
    assert store.replace(
        "", OWNER, patch_subscription(subscription, {"isActive": False}, LOCAL, CONTEXTS, now=NOW), NOW
    )
    paused = store.get("", OWNER, subscription.id)
    assert paused is not None and not paused.subscription.is_active and paused.owner.scopes == OWNER.scopes
    assert store.delete("", OWNER, subscription.id) and store.get("", OWNER, subscription.id) is None


def test_the_outbox_queues_only_for_live_subscriptions_of_the_tenant(
    store: SubscriptionStore, database: Database
) -> None:
    outbox = Outbox(database, LocalNotifier())
    store.create("", OWNER, parse(vehicles(id="urn:ngsi-ld:Subscription:live")), NOW)
    store.create("", OWNER, parse(vehicles(id="urn:ngsi-ld:Subscription:paused", isActive=False)), NOW)
    store.create("minato", OWNER, parse(vehicles(id="urn:ngsi-ld:Subscription:elsewhere")), NOW)
    soon = parse(vehicles(id="urn:ngsi-ld:Subscription:soon", expiresAt="2026-12-01T00:00:00Z"))
    store.create("", OWNER, soon, NOW)
    later = NOW + dt.timedelta(days=2)
    assert queued(outbox, "", [(None, car())], lambda s, change: fired(s, *change) is not None, later) == 1
    batch = outbox.claim(later, 10)
    assert batch is not None and batch.stored.subscription.id == "urn:ngsi-ld:Subscription:live"
    assert [p.after for p in batch.pending] == [car()]
    assert outbox.claim(later, 10) is None  # leased
    assert outbox.failed(batch, [batch.pending[0].id], later) == []
    assert outbox.claim(later, 10) is None  # waiting for its retry
    retried = outbox.claim(later + retry_delay(1), 10)
    assert retried is not None and retried.pending[0].attempts == 1
    outbox.delivered(retried, [p.id for p in retried.pending], later, sent=True)
    assert outbox.pending_count() == 0
    found = store.get("", OWNER, "urn:ngsi-ld:Subscription:live")
    assert found is not None and found.delivery.times_sent == 2 and found.delivery.times_failed == 1
    assert store.delete("", OWNER, "urn:ngsi-ld:Subscription:live")


def test_deleting_a_subscription_drops_what_it_was_not_sent(store: SubscriptionStore, database: Database) -> None:
    outbox = Outbox(database, LocalNotifier())
    store.create("", OWNER, parse(vehicles(id="urn:ngsi-ld:Subscription:1")), NOW)
    assert queued(outbox, "", [(None, car()), (car(), None)], lambda s, change: True, NOW) == 2
    assert store.delete("", OWNER, "urn:ngsi-ld:Subscription:1")
    assert outbox.pending_count() == 0
    assert queued(outbox, "", [(None, car())], lambda s, change: True, NOW) == 0  # nothing left to notify


def test_retries_back_off_up_to_an_hour() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert retry_delay(30) == dt.timedelta(hours=1)

"""Subscriptions end to end: notifications reach a real HTTP receiver, decided for the subscription's owner
when they are sent — another service cannot touch a subscription, a withdrawn consent removes the
resident's personal attributes, an unreadable type and another tenant's writes notify nothing."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from machimori.config import load_settings
from machimori.governance.workflow import example_town
from machimori.hub.broker import Hub, open_hub
from machimori.hub.entities import Entity, parse_entity
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.notifications import Notifications
from machimori.hub.subscription_store import Owner
from machimori.hub.subscriptions import Subscription, parse_subscription
from machimori.identity.oauth.clients import register_client
from machimori.platform import Platform, open_platform
from machimori.storage.tables import oauth_clients

from ..conftest import ADMIN_TOKEN
from .test_api import PURPOSE, WATCH, WATER, bearer, town, watched  # noqa: F401 (town is a fixture)

LOCATION = "location"
SUBSCRIPTIONS = "/ngsi-ld/v1/subscriptions"


@dataclass
class Receiver:
    """A local HTTP endpoint that keeps what is POSTed to it and answers with `status`."""

    url: str
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    status: int = 204

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    kept = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            kept.received.append((dict(self.headers.items()), json.loads(self.rfile.read(length))))
            self.send_response(kept.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    kept.url = f"http://127.0.0.1:{server.server_address[1]}/notify"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield kept
    server.shutdown()
    server.server_close()


Served = tuple[Platform, TestClient, Receiver]


@pytest.fixture
def served(town: tuple[Platform, TestClient], receiver: Receiver) -> Served:  # noqa: F811
    """The example town's API, its notification loop running, and a receiver of notifications."""
    platform, client = town
    return platform, client, receiver


def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    """Wait until the condition holds (delivery runs in the background), failing after a deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not delivered before the deadline"
        time.sleep(0.05)


def drained(hub: Hub) -> Callable[[], bool]:
    """True once nothing waits in the outbox (a change dealt with: sent, or decided to be withheld)."""
    return lambda: hub.notifications.outbox.pending_count() == 0


def subscription(endpoint: str, entity_type: str = WATCH, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": entity_type}],
        "notification": {"endpoint": {"uri": endpoint}},
        **extra,
    }


def hub_of(client: TestClient) -> Hub:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    return hub


def test_a_created_entity_is_notified_with_the_subscription_s_context_and_counted(served: Served) -> None:
    platform, client, receiver = served
    _, bousai = bearer(platform, client, "minato-bousai")
    link = (
        '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    )
    made = client.post(
        SUBSCRIPTIONS,
        json=subscription(receiver.url, WATER, notification={"endpoint": {"uri": receiver.url}, "format": "keyValues"}),
        headers={**bousai, "Link": link},
    )
    assert made.status_code == 201, made.text
    location = made.headers["location"]
    assert location.startswith("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:")
    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": {"value": 1.2}}
    assert client.post("/ngsi-ld/v1/entities", json=water, headers=bousai).status_code == 201
    eventually(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    assert body["type"] == "Notification" and body["subscriptionId"] == location.rsplit("/", 1)[1]
    assert body["data"] == [{"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": 1.2}]
    assert body["id"].startswith("urn:ngsi-ld:Notification:") and body["notifiedAt"].endswith("Z")
    assert headers["Content-Type"] == "application/json" and "json-ld#context" in headers["Link"]
    eventually(lambda: client.get(location, headers=bousai).json()["notification"].get("timesSent") == 1)
    shown = client.get(location, headers=bousai).json()
    assert shown["status"] == "active" and shown["notification"]["status"] == "ok"
    assert "lastSuccess" in shown["notification"] and shown["entities"] == [{"type": WATER}]


def test_another_service_can_neither_see_nor_change_nor_delete_a_subscription(served: Served) -> None:
    platform, client, receiver = served
    _, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    _, care_again = bearer(platform, client, "aoba-care")  # another client of the same organisation
    made = client.post(SUBSCRIPTIONS, json=subscription(receiver.url, id="urn:ngsi-ld:Subscription:s1"), headers=care)
    assert made.status_code == 201
    one = "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:s1"
    for intruder in (bus, care_again):
        assert client.get(one, headers=intruder).status_code == 404
        assert client.get(one, headers=intruder).json()["type"].endswith("ResourceNotFound")
        assert client.get(SUBSCRIPTIONS, headers=intruder).json() == []
        patched = client.patch(
            one, json={"notification": {"endpoint": {"uri": "http://127.0.0.1:9/x"}}}, headers=intruder
        )
        assert patched.status_code == 404
        assert client.delete(one, headers=intruder).status_code == 404
    assert client.get(one, headers={**care, "NGSILD-Tenant": "other"}).status_code == 404
    mine = client.get(one, headers=care).json()
    assert mine["notification"]["endpoint"]["uri"] == receiver.url
    # the same id is the intruder's own, apart from the owner's: no AlreadyExists tells it the id is taken
    assert (
        client.post(
            SUBSCRIPTIONS, json=subscription(receiver.url, id="urn:ngsi-ld:Subscription:s1"), headers=bus
        ).status_code
        == 201
    )
    assert client.delete(one, headers=care).status_code == 204
    assert client.get(one, headers=care).status_code == 404
    assert client.get(one, headers=bus).status_code == 200


def test_a_withdrawn_consent_stops_the_resident_s_personal_attributes_at_once(served: Served) -> None:
    platform, client, receiver = served
    care_id, care = bearer(platform, client, "aoba-care")
    subscriber = {**care, "Data-Purpose": PURPOSE}
    assert client.post(SUBSCRIPTIONS, json=subscription(receiver.url), headers=subscriber).status_code == 201
    platform.consent.give("hanako", care_id, PURPOSE)
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    eventually(lambda: len(receiver.received) == 1)
    first = receiver.bodies()[0]["data"][0]
    assert first[LOCATION]["value"]["coordinates"] == [139.6, 35.4] and first["deviceName"]["value"] == "見守りタグ 7"
    platform.consent.withdraw("hanako", care_id, PURPOSE)
    assert (
        client.post("/ngsi-ld/v1/entities", json=watched("urn:ngsi-ld:WatchedPosition:2"), headers=care).status_code
        == 201
    )
    eventually(lambda: len(receiver.received) == 2)
    second = receiver.bodies()[1]["data"][0]
    assert second["id"] == "urn:ngsi-ld:WatchedPosition:2"
    assert LOCATION not in second and second["deviceName"]["value"] == "見守りタグ 7"


def test_without_a_purpose_personal_attributes_are_never_notified(served: Served) -> None:
    platform, client, receiver = served
    care_id, care = bearer(platform, client, "aoba-care")
    platform.consent.give("hanako", care_id, PURPOSE)
    assert client.post(SUBSCRIPTIONS, json=subscription(receiver.url), headers=care).status_code == 201
    client.post("/ngsi-ld/v1/entities", json=watched(), headers=care)
    eventually(lambda: len(receiver.received) == 1)
    assert LOCATION not in receiver.bodies()[0]["data"][0]


def test_a_subscription_to_a_type_its_owner_may_not_read_is_never_notified(served: Served) -> None:
    platform, client, receiver = served
    _, care = bearer(platform, client, "aoba-care")
    _, bus = bearer(platform, client, "minato-kotsu")
    spy = {**bus, "Data-Purpose": PURPOSE}
    assert client.post(SUBSCRIPTIONS, json=subscription(receiver.url), headers=spy).status_code == 201
    by_pattern = subscription(receiver.url)
    by_pattern["entities"] = [{"type": WATCH, "idPattern": ".*"}]
    assert client.post(SUBSCRIPTIONS, json=by_pattern, headers=spy).status_code == 201
    watching = {
        "type": "Subscription",
        "watchedAttributes": [LOCATION],
        "notification": {"endpoint": {"uri": receiver.url}},
    }
    assert client.post(SUBSCRIPTIONS, json=watching, headers=spy).status_code == 201
    events: list[str] = []
    platform.events.transport.listen(lambda event: events.append(event.message))
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    eventually(drained(hub_of(client)))
    assert receiver.received == []
    assert len([message for message in events if "withheld" in message]) == 3  # each denial is an event


def test_patching_a_subscription_never_widens_what_it_receives(served: Served) -> None:
    platform, client, receiver = served
    _, care = bearer(platform, client, "aoba-care")
    _, bousai = bearer(platform, client, "minato-bousai")
    made = client.post(SUBSCRIPTIONS, json=subscription(receiver.url, WATER), headers=bousai)
    one = made.headers["location"]
    widened = {
        "entities": [{"type": WATCH}, {"type": WATER}],
        "q": "deviceName",
        "notification": {"attributes": [LOCATION, "deviceName"]},
    }
    assert client.patch(one, json=widened, headers=bousai).status_code == 204
    assert client.get(one, headers=bousai).json()["notification"]["attributes"] == [LOCATION, "deviceName"]
    assert client.post("/ngsi-ld/v1/entities", json=watched(), headers=care).status_code == 201
    eventually(drained(hub_of(client)))
    assert receiver.received == []  # minato-bousai may not read aoba-care's closed watch data


def test_another_tenant_s_writes_do_not_notify(served: Served) -> None:
    platform, client, receiver = served
    _, bousai = bearer(platform, client, "minato-bousai")
    assert client.post(SUBSCRIPTIONS, json=subscription(receiver.url, WATER), headers=bousai).status_code == 201
    other = {**bousai, "NGSILD-Tenant": "minato"}
    elsewhere = {"id": "urn:ngsi-ld:WaterObserved:elsewhere", "type": WATER, "waterLevel": 3.0}
    assert client.post("/ngsi-ld/v1/entities", json=elsewhere, headers=other).status_code == 201
    here = {"id": "urn:ngsi-ld:WaterObserved:here", "type": WATER, "waterLevel": 1.0}
    assert client.post("/ngsi-ld/v1/entities", json=here, headers=bousai).status_code == 201
    eventually(lambda: len(receiver.received) >= 1)
    eventually(drained(hub_of(client)))
    assert [e["id"] for body in receiver.bodies() for e in body["data"]] == ["urn:ngsi-ld:WaterObserved:here"]


def test_deletion_is_notified_when_asked_and_a_failing_endpoint_is_retried(served: Served) -> None:
    platform, client, receiver = served
    _, bousai = bearer(platform, client, "minato-bousai")
    asked = subscription(receiver.url, WATER, notificationTrigger=["entityDeleted"])
    one = client.post(SUBSCRIPTIONS, json=asked, headers=bousai).headers["location"]
    water = {"id": "urn:ngsi-ld:WaterObserved:river-1", "type": WATER, "waterLevel": 1.2}
    client.post("/ngsi-ld/v1/entities", json=water, headers=bousai)
    receiver.status = 500
    assert client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterObserved:river-1", headers=bousai).status_code == 204
    eventually(lambda: len(receiver.received) == 1)
    eventually(lambda: client.get(one, headers=bousai).json()["notification"].get("timesFailed") == 1)
    shown = client.get(one, headers=bousai).json()["notification"]
    assert shown["status"] == "failed" and "lastFailure" in shown
    assert hub_of(client).notifications.outbox.pending_count() == 1  # kept for a retry
    deleted = receiver.bodies()[0]["data"]
    assert deleted[0]["id"] == "urn:ngsi-ld:WaterObserved:river-1" and "deletedAt" in deleted[0]
    assert "waterLevel" not in deleted[0]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"type": "Subscription", "entities": [{"type": "T"}], "notification": {"endpoint": {"uri": "ftp://x/y"}}},
            400,
            "BadRequestData",
        ),
        (
            {
                "type": "Subscription",
                "entities": [{"type": "T"}],
                "notification": {"endpoint": {"uri": "file:///etc/passwd"}},
            },
            400,
            "BadRequestData",
        ),
        ({"type": "Subscription", "entities": [{"type": "T"}]}, 400, "BadRequestData"),
        ({"type": "Subscription", "notification": {"endpoint": {"uri": "http://127.0.0.1/n"}}}, 400, "BadRequestData"),
        ({}, 400, "BadRequestData"),
        (
            {
                "type": "Subscription",
                "entities": [{"type": "T"}],
                "timeInterval": 10,
                "notification": {"endpoint": {"uri": "http://127.0.0.1/n"}},
            },
            422,
            "OperationNotSupported",
        ),
    ],
)
def test_bad_subscriptions_get_etsi_errors(served: Served, body: dict[str, Any], status: int, error: str) -> None:
    platform, client, _ = served
    _, bousai = bearer(platform, client, "minato-bousai")
    answer = client.post(SUBSCRIPTIONS, json=body, headers=bousai)
    assert answer.status_code == status and answer.json()["type"].endswith(error), answer.text


def test_subscription_api_basics(served: Served) -> None:
    platform, client, receiver = served
    _, bousai = bearer(platform, client, "minato-bousai")
    assert (
        client.post(SUBSCRIPTIONS, content=b"{oops", headers={**bousai, "Content-Type": "application/json"})
        .json()["type"]
        .endswith("InvalidRequest")
    )
    for number in range(3):
        body = subscription(receiver.url, WATER, id=f"urn:ngsi-ld:Subscription:{number}")
        assert client.post(SUBSCRIPTIONS, json=body, headers=bousai).status_code == 201
    again = client.post(
        SUBSCRIPTIONS, json=subscription(receiver.url, WATER, id="urn:ngsi-ld:Subscription:0"), headers=bousai
    )
    assert again.status_code == 409 and again.json()["type"].endswith("AlreadyExists")
    page = client.get(SUBSCRIPTIONS, params={"limit": 2, "offset": 1, "count": "true"}, headers=bousai)
    assert [s["id"] for s in page.json()] == ["urn:ngsi-ld:Subscription:1", "urn:ngsi-ld:Subscription:2"]
    assert page.headers["NGSILD-Results-Count"] == "3"
    assert client.get(SUBSCRIPTIONS, params={"limit": 0}, headers=bousai).status_code == 400
    assert client.get("/ngsi-ld/v1/subscriptions/not a uri", headers=bousai).json()["type"].endswith("BadRequestData")
    paused = client.patch(
        "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:0", json={"isActive": False}, headers=bousai
    )
    assert paused.status_code == 204
    assert (
        client.get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:0", headers=bousai).json()["status"] == "paused"
    )
    assert client.post(SUBSCRIPTIONS, json=subscription(receiver.url)).status_code == 401


@dataclass
class Quiet:
    """The example town's platform and hub with no delivery loop: the test delivers when it wants."""

    platform: Platform
    hub: Hub
    now: list[dt.datetime]

    def owner(self, org: str, purpose: str | None = PURPOSE, scope: str = "city:read personal:read") -> Owner:
        client_id, _ = register_client(
            self.platform.database, f"{org} app", org=org, grant_types=["client_credentials"], scope=scope
        )
        return Owner(client_id, org, purpose, frozenset(scope.split()))


def queue_change(hub: Hub, tenant: str, before: Entity | None, after: Entity | None) -> int:
    """Queue a change's notifications as a write would (in a transaction), without writing the entity."""
    with hub.store.database.begin() as connection:
        return hub.notifications.changed(connection, tenant, [(before, after)])


@pytest.fixture
def quiet(tmp_path: Path, database_url: str) -> Iterator[Quiet]:
    settings = load_settings(
        environ={},
        data_dir=tmp_path / "data",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        city_model=example_town(),
    )
    platform = open_platform(settings)
    hub = open_hub(platform)
    now = [dt.datetime.now(dt.UTC)]
    hub.notifications = Notifications(platform, hub.contexts, hub.catalogue, clock=lambda: now[0])
    yield Quiet(platform, hub, now)
    hub.notifications.close()
    platform.close()


def watch_subscription(receiver: Receiver, **extra: Any) -> Subscription:
    return parse_subscription(
        subscription(receiver.url, **extra),
        None,
        Contexts(DocumentLoader()),
        now=dt.datetime.now(dt.UTC),
        new_id=lambda: "urn:ngsi-ld:Subscription:watch",
    )


def stored_watch(resident: str = "hanako", entity_id: str = "urn:ngsi-ld:WatchedPosition:1") -> Entity:
    return parse_entity(
        watched(entity_id, resident), Contexts(DocumentLoader()).active(None), now="2026-11-30T00:00:00Z"
    )


def test_a_consent_withdrawn_after_the_change_but_before_delivery_is_honoured(quiet: Quiet, receiver: Receiver) -> None:
    care = quiet.owner("aoba-care")
    quiet.hub.subscriptions.create("", care, watch_subscription(receiver), quiet.now[0])
    quiet.platform.consent.give("hanako", care.client_id, PURPOSE)
    queue_change(quiet.hub, "", None, stored_watch())
    quiet.platform.consent.withdraw("hanako", care.client_id, PURPOSE)
    assert quiet.hub.notifications.deliver_due() == 1
    sent = receiver.bodies()[0]["data"][0]
    assert sent["id"] == "urn:ngsi-ld:WatchedPosition:1" and "deviceName" in sent and LOCATION not in sent
    quiet.platform.consent.give("hanako", care.client_id, PURPOSE)
    queue_change(quiet.hub, "", None, stored_watch(entity_id="urn:ngsi-ld:WatchedPosition:2"))
    assert quiet.hub.notifications.deliver_due() == 1
    assert receiver.bodies()[1]["data"][0][LOCATION]["value"]["coordinates"] == [139.6, 35.4]


def test_a_revoked_service_is_notified_no_more(quiet: Quiet, receiver: Receiver) -> None:
    care = quiet.owner("aoba-care")
    quiet.hub.subscriptions.create("", care, watch_subscription(receiver), quiet.now[0])
    queue_change(quiet.hub, "", None, stored_watch())
    with quiet.platform.database.begin() as connection:
        connection.execute(
            update(oauth_clients).where(oauth_clients.c.client_id == care.client_id).values(revoked_at=quiet.now[0])
        )
    assert quiet.hub.notifications.deliver_due() == 0
    assert receiver.received == [] and quiet.hub.notifications.outbox.pending_count() == 0


def test_a_subscription_keeps_no_more_scope_than_its_client_is_registered_for(quiet: Quiet, receiver: Receiver) -> None:
    care = quiet.owner("aoba-care", scope="city:read")
    widened = Owner(care.client_id, care.org, care.purpose, frozenset({"city:read", "personal:read"}))
    quiet.hub.subscriptions.create("", widened, watch_subscription(receiver), quiet.now[0])
    quiet.platform.consent.give("hanako", care.client_id, PURPOSE)
    queue_change(quiet.hub, "", None, stored_watch())
    assert quiet.hub.notifications.deliver_due() == 1
    assert LOCATION not in receiver.bodies()[0]["data"][0]


def test_throttling_holds_changes_and_sends_the_latest_once_the_interval_has_passed(
    quiet: Quiet, receiver: Receiver
) -> None:
    care = quiet.owner("aoba-care")
    quiet.hub.subscriptions.create("", care, watch_subscription(receiver, throttling=60), quiet.now[0])
    first = stored_watch()
    queue_change(quiet.hub, "", None, first)
    assert quiet.hub.notifications.deliver_due() == 1
    renamed = parse_entity(
        {**watched(), "deviceName": "見守りタグ 8"}, Contexts(DocumentLoader()).active(None), now="2026-11-30T00:01:00Z"
    )
    renamed_again = parse_entity(
        {**watched(), "deviceName": "見守りタグ 9"}, Contexts(DocumentLoader()).active(None), now="2026-11-30T00:02:00Z"
    )
    queue_change(quiet.hub, "", first, renamed)
    queue_change(quiet.hub, "", renamed, renamed_again)
    assert quiet.hub.notifications.deliver_due() == 0  # within 60 s of the last notification
    quiet.now[0] += dt.timedelta(seconds=61)
    assert quiet.hub.notifications.deliver_due() == 1
    latest = receiver.bodies()[1]["data"]
    assert [e["deviceName"]["value"] for e in latest] == ["見守りタグ 9"]


def test_an_expired_or_paused_subscription_sends_nothing(quiet: Quiet, receiver: Receiver) -> None:
    care = quiet.owner("aoba-care")
    soon = (quiet.now[0] + dt.timedelta(minutes=5)).isoformat()
    quiet.hub.subscriptions.create("", care, watch_subscription(receiver, expiresAt=soon), quiet.now[0])
    queue_change(quiet.hub, "", None, stored_watch())
    quiet.now[0] += dt.timedelta(minutes=10)
    assert quiet.hub.notifications.deliver_due() == 0
    assert queue_change(quiet.hub, "", None, stored_watch(entity_id="urn:ngsi-ld:WatchedPosition:2")) == 0
    assert receiver.received == [] and quiet.hub.notifications.outbox.pending_count() == 0
    paused = watch_subscription(receiver, isActive=False)
    quiet.hub.subscriptions.create("", quiet.owner("aoba-care"), paused, quiet.now[0])
    assert queue_change(quiet.hub, "", None, stored_watch(entity_id="urn:ngsi-ld:WatchedPosition:3")) == 0


def test_a_batch_of_changes_is_queued_at_once_and_sent_as_one_notification(quiet: Quiet, receiver: Receiver) -> None:
    care = quiet.owner("aoba-care")
    asked = watch_subscription(receiver, notificationTrigger=["entityCreated", "entityDeleted"])
    quiet.hub.subscriptions.create("", care, asked, quiet.now[0])
    one, two = stored_watch(), stored_watch(entity_id="urn:ngsi-ld:WatchedPosition:2")
    with quiet.hub.store.database.begin() as connection:
        quiet.hub.notifications.changed(connection, "", [(None, one), (None, two), (one, None)])
    assert quiet.hub.notifications.outbox.pending_count() == 3
    assert quiet.hub.notifications.deliver_due() == 1
    data = receiver.bodies()[0]["data"]
    assert [(e["id"], "deletedAt" in e) for e in data] == [
        ("urn:ngsi-ld:WatchedPosition:2", False),
        ("urn:ngsi-ld:WatchedPosition:1", True),
    ]

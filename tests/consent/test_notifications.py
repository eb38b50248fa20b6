"""Consent changes pushed to subscribed services as signed SETs, received by a real HTTP receiver."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from machimori.clock import as_utc, utc_now
from machimori.consent.notifications import (
    EVENT_TYPE,
    MAX_ATTEMPTS,
    ConsentNotifications,
    EndpointRefused,
    check_endpoint,
)
from machimori.consent.purposes import DPV
from machimori.events import EventQuery, find_events
from machimori.identity.oauth.clients import register_client
from machimori.platform import Platform
from machimori.storage.tables import consent_deliveries

PURPOSE = DPV + "ServiceProvision"


@dataclass
class Receiver:
    """An RFC 8935 push endpoint on 127.0.0.1 that records each request and answers with `status`."""

    status: int = 202
    delay: float = 0.0
    posts: list[tuple[dict[str, str], str]] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    @property
    def tokens(self) -> list[str]:
        return [body for _, body in self.posts]


def serve(status: int = 202) -> tuple[Receiver, ThreadingHTTPServer]:
    """A receiver listening in a thread of its own, and its server (to shut down)."""
    receiver = Receiver(status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            time.sleep(receiver.delay)
            receiver.posts.append((dict(self.headers.items()), body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            receiver.received.set()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made, server = serve()
    yield made
    server.shutdown()


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    made, server = serve(500)
    yield made
    server.shutdown()


@pytest.fixture
def notifications(client: TestClient, platform: Platform) -> ConsentNotifications:
    """The platform's notifications with its background loop stopped, so each test delivers by hand."""
    platform.consent_notifications.close()
    return platform.consent_notifications


def service(platform: Platform, name: str) -> tuple[str, str]:
    client_id, secret = register_client(
        platform.database, name, org=name, grant_types=["client_credentials"], scope="city:read consent:read"
    )
    assert secret is not None
    return client_id, secret


def bearer(client: TestClient, credentials: tuple[str, str], scope: str = "consent:read") -> dict[str, str]:
    answer = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=credentials)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def subscribed(client: TestClient, platform: Platform, name: str, endpoint: str) -> str:
    """A new service subscribed to endpoint over the API; its client id."""
    credentials = service(platform, name)
    answer = client.put(
        "/api/v1/consent-events/subscription", json={"endpoint": endpoint}, headers=bearer(client, credentials)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["endpoint"] == endpoint and answer.json()["client_id"] == credentials[0]
    return credentials[0]


def deliveries(platform: Platform, client_id: str) -> list[dict[str, object]]:
    with platform.database.engine.connect() as connection:
        rows = connection.execute(select(consent_deliveries).where(consent_deliveries.c.client_id == client_id))
        return [dict(row._mapping) for row in rows]


def test_a_subscribed_service_receives_sets_that_verify_against_the_jwks(
    client: TestClient, platform: Platform, notifications: ConsentNotifications, receiver: Receiver
) -> None:
    bus = subscribed(client, platform, "minato-bus", receiver.url)
    platform.consent.give("hanako", bus, PURPOSE)
    platform.consent.withdraw("hanako", bus, PURPOSE)
    assert notifications.deliver_due() == 2
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json())
    states = []
    for headers, token in receiver.posts:
        assert headers["Content-Type"] == "application/secevent+jwt" and headers["Accept"] == "application/json"
        decoded = jwt.decode(token, jwks, algorithms=["ES256"])
        assert decoded.header["typ"] == "secevent+jwt" and decoded.header["kid"] == jwks.keys[0].kid
        claims = decoded.claims
        assert claims["aud"] == bus and claims["iss"] == platform.oauth.issuer and claims["jti"] and claims["iat"]
        event = claims["events"][EVENT_TYPE]
        assert event["resident"] == "hanako" and event["purpose"] == PURPOSE
        assert dt.datetime.fromisoformat(event["changed_at"]).tzinfo is not None
        states.append(event["state"])
    assert states == ["given", "withdrawn"]
    assert all(row["delivered_at"] and row["attempts"] == 1 for row in deliveries(platform, bus))
    assert notifications.deliver_due() == 0 and len(receiver.posts) == 2  # delivered rows are not sent again


def test_a_set_is_not_an_access_token(
    client: TestClient, platform: Platform, notifications: ConsentNotifications, receiver: Receiver
) -> None:
    bus = subscribed(client, platform, "minato-bus", receiver.url)
    platform.consent.give("hanako", bus, PURPOSE)
    notifications.deliver_due()
    answer = client.get(
        "/api/v1/consent-events/subscription", headers={"Authorization": f"Bearer {receiver.tokens[0]}"}
    )
    assert answer.status_code == 401


def test_a_failing_receiver_gets_a_retry_later_and_finally_a_security_event(
    client: TestClient, platform: Platform, notifications: ConsentNotifications, failing_receiver: Receiver
) -> None:
    bus = subscribed(client, platform, "minato-bus", failing_receiver.url)
    platform.consent.give("hanako", bus, PURPOSE)
    assert notifications.deliver_due() == 0
    [row] = deliveries(platform, bus)
    assert row["attempts"] == 1 and row["delivered_at"] is None and str(row["last_error"]).startswith("HTTP 500")
    assert as_utc(row["next_attempt_at"]) > utc_now()  # type: ignore[arg-type]
    assert notifications.deliver_due() == 0 and len(failing_receiver.posts) == 1  # not due yet
    for _ in range(MAX_ATTEMPTS):  # let every retry fall due at once
        with platform.database.begin() as connection:
            connection.execute(update(consent_deliveries).values(next_attempt_at=utc_now() - dt.timedelta(seconds=1)))
        notifications.deliver_due()
    assert len(failing_receiver.posts) == MAX_ATTEMPTS  # and then it stops
    platform.events.flush()
    assert len(find_events(platform.database, EventQuery(text="given up"))) == 1


@pytest.mark.parametrize(
    "endpoint",
    ["http://10.0.0.1/events", "ftp://127.0.0.1/events", "https://example.org/events#x", "http://u:p@127.0.0.1/", "x"],
)
def test_an_endpoint_that_is_not_https_or_loopback_is_refused(
    client: TestClient, platform: Platform, endpoint: str
) -> None:
    headers = bearer(client, service(platform, "minato-bus"))
    answer = client.put("/api/v1/consent-events/subscription", json={"endpoint": endpoint}, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"].endswith("/bad-endpoint") and " / " in answer.json()["detail"]


@pytest.mark.parametrize("endpoint", ["https://example.org/events", "http://localhost:8080/e", "http://[::1]/e"])
def test_https_and_loopback_http_endpoints_are_accepted(endpoint: str) -> None:
    assert check_endpoint(endpoint) == endpoint


def test_http_on_another_host_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="https://"):
        check_endpoint("http://127.0.0.1.example.org/")
    assert issubclass(EndpointRefused, ValueError)


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_a_token_without_consent_read_is_forbidden(client: TestClient, platform: Platform, method: str) -> None:
    headers = bearer(client, service(platform, "minato-bus"), scope="city:read")
    answer = client.request(
        method, "/api/v1/consent-events/subscription", json={"endpoint": "https://example.org/e"}, headers=headers
    )
    assert answer.status_code == 403 and "insufficient_scope" in answer.headers["www-authenticate"]


def test_without_a_token_it_is_unauthorized(client: TestClient) -> None:
    assert client.get("/api/v1/consent-events/subscription").status_code == 401


def test_another_service_never_receives_a_change_about_a_different_service(
    client: TestClient, platform: Platform, notifications: ConsentNotifications, receiver: Receiver
) -> None:
    other, server = serve()
    try:
        bus = subscribed(client, platform, "minato-bus", receiver.url)
        subscribed(client, platform, "sakura-taxi", other.url)
        platform.consent.give("hanako", bus, PURPOSE)
        platform.consent.give("taro", "not-subscribed-app", PURPOSE)
        assert notifications.deliver_due() == 1
        assert len(receiver.posts) == 1 and other.posts == []
    finally:
        server.shutdown()


def test_subscription_can_be_read_replaced_and_removed(
    client: TestClient, platform: Platform, notifications: ConsentNotifications, receiver: Receiver
) -> None:
    credentials = service(platform, "minato-bus")
    headers = bearer(client, credentials)
    path = "/api/v1/consent-events/subscription"
    assert client.get(path, headers=headers).status_code == 404
    assert client.put(path, json={"endpoint": "https://bus.example/e"}, headers=headers).status_code == 200
    assert client.put(path, json={"endpoint": receiver.url}, headers=headers).status_code == 200
    assert client.get(path, headers=headers).json()["endpoint"] == receiver.url
    last = platform.audit.entry(platform.audit.head().size - 1).value()
    assert last == {"action": "consent.subscription.set", "client_id": credentials[0], "endpoint": receiver.url}
    assert client.delete(path, headers=headers).status_code == 204
    assert client.get(path, headers=headers).status_code == 404
    platform.consent.give("hanako", credentials[0], PURPOSE)
    assert deliveries(platform, credentials[0]) == [] and notifications.deliver_due() == 0


def test_two_processes_never_send_one_row_twice(
    client: TestClient, platform: Platform, notifications: ConsentNotifications, receiver: Receiver
) -> None:
    receiver.delay = 0.05  # slow enough that the two deliver at the same time
    bus = subscribed(client, platform, "minato-bus", receiver.url)
    for n in range(8):
        platform.consent.give(f"resident-{n}", bus, PURPOSE)
    second = ConsentNotifications(platform.database, platform.events, platform.oauth.key, platform.oauth.issuer)
    counts: list[int] = []
    workers = [threading.Thread(target=lambda n=n: counts.append(n.deliver_due())) for n in (notifications, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    second.close()
    assert sum(counts) == 8 and len(receiver.tokens) == 8 and len(set(receiver.tokens)) == 8


def test_the_running_server_pushes_right_after_a_change(
    client: TestClient, platform: Platform, receiver: Receiver
) -> None:
    bus = subscribed(client, platform, "minato-bus", receiver.url)
    platform.consent.give("hanako", bus, PURPOSE)
    assert receiver.received.wait(10), "the delivery loop never pushed the change"

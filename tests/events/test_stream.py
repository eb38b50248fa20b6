"""The event stream on SQLite and PostgreSQL: emit, store, search, live delivery."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

from machimori.events import (
    Actor,
    Device,
    EventClass,
    EventQuery,
    EventStream,
    SecurityEvent,
    Severity,
    Status,
    find_events,
)
from machimori.storage import Database


@pytest.fixture
def stream(database: Database) -> Iterator[EventStream]:
    events = EventStream(database)
    yield events
    events.close()


def sample(stream: EventStream) -> None:
    stream.emit(
        SecurityEvent(
            class_uid=EventClass.AUTHENTICATION,
            activity_id=1,
            status_id=Status.FAILURE,
            severity_id=Severity.MEDIUM,
            message="password rejected for clerk-7",
            actor=Actor(uid="clerk-7", org="港町役場"),
            tenant="minatomachi",
        )
    )
    stream.emit(
        SecurityEvent(
            class_uid=EventClass.DETECTION_FINDING,
            activity_id=1,
            severity_id=Severity.HIGH,
            message="telnet scanning from camera-12 / カメラ12からのtelnet走査",
            device=Device(uid="camera-12", ip="10.0.3.12"),
            unmapped={"fan_out": 412},
        )
    )
    stream.emit(SecurityEvent(class_uid=EventClass.API_ACTIVITY, activity_id=2, message="entity read"))
    stream.flush()


def test_events_are_stored_in_ocsf_shape(stream: EventStream, database: Database) -> None:
    sample(stream)
    newest = find_events(database, EventQuery())
    assert [e["class_uid"] for e in newest] == [6003, 2004, 3002]
    finding = newest[1]
    assert finding["type_uid"] == 200401 and finding["category_uid"] == 2
    assert finding["device"] == {"uid": "camera-12", "ip": "10.0.3.12"}
    assert finding["unmapped"] == {"fan_out": 412}
    assert newest[2]["actor"]["user"] == {"uid": "clerk-7", "org": {"name": "港町役場"}}
    assert newest[2]["metadata"]["tenant_uid"] == "minatomachi"


@pytest.mark.parametrize(
    ("query", "classes"),
    [
        (EventQuery(class_uid=3002), [3002]),
        (EventQuery(min_severity=Severity.HIGH), [2004]),
        (EventQuery(actor="clerk-7"), [3002]),
        (EventQuery(device="camera-12"), [2004]),
        (EventQuery(tenant="minatomachi"), [3002]),
        (EventQuery(text="telnet"), [2004]),
        (EventQuery(text="カメラ12"), [2004]),
        (EventQuery(text="100%_"), []),
        (EventQuery(text="fan_out"), [2004]),
        (EventQuery(until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)), []),
        (EventQuery(since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)), [6003, 2004, 3002]),
    ],
)
def test_search_filters(stream: EventStream, database: Database, query: EventQuery, classes: list[int]) -> None:
    sample(stream)
    assert [e["class_uid"] for e in find_events(database, query)] == classes


def test_pages_follow_each_other_without_overlap(stream: EventStream, database: Database) -> None:
    for i in range(7):
        stream.emit(SecurityEvent(class_uid=EventClass.API_ACTIVITY, message=f"call {i}"))
    stream.flush()
    first = find_events(database, EventQuery(limit=4))
    second = find_events(database, EventQuery(limit=4, before=first[-1]["metadata"]["uid"]))
    messages = [e["message"] for e in first + second]
    assert messages == [f"call {i}" for i in range(6, -1, -1)]


def test_subscribers_receive_events_live(stream: EventStream) -> None:
    async def listen() -> list[str]:
        subscription = stream.subscribe()
        stream.emit(SecurityEvent(class_uid=EventClass.ACCOUNT_CHANGE, message="role granted"))
        event = await asyncio.wait_for(subscription.queue.get(), timeout=5)
        stream.unsubscribe(subscription)
        stream.emit(SecurityEvent(class_uid=EventClass.ACCOUNT_CHANGE, message="after unsubscribe"))
        await asyncio.sleep(0.05)
        return [event.message, str(subscription.queue.qsize())]

    assert asyncio.run(listen()) == ["role granted", "0"]


def test_closing_stores_what_was_queued(database: Database) -> None:
    events = EventStream(database)
    for i in range(50):
        events.emit(SecurityEvent(class_uid=EventClass.NETWORK_ACTIVITY, message=f"flow {i}"))
    events.close()
    assert len(find_events(database, EventQuery(limit=1000))) == 50

"""The one event stream: emit() stores events in batches and hands them to live subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import insert

from machimori.events.model import SecurityEvent
from machimori.storage import Database
from machimori.storage.batches import drain
from machimori.storage.tables import security_events

log = logging.getLogger(__name__)
EVENT_COLUMNS = ("uid", "time", "class_uid", "severity_id", "tenant", "actor", "device", "message", "body")
Listener = Callable[[SecurityEvent], None]


class Transport(Protocol):
    """Carries events between the processes that share one stream (in-process, LISTEN/NOTIFY, NATS …)."""

    def publish(self, event: SecurityEvent) -> None: ...

    def listen(self, listener: Listener) -> None: ...


class LocalTransport:
    """Delivers events to listeners in this process."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def publish(self, event: SecurityEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)


class Subscription:
    """Live events for one asyncio consumer; events beyond its buffer are dropped and counted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = 1000) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[SecurityEvent] = asyncio.Queue(size)
        self.dropped = 0
        self.active = True

    def offer(self, event: SecurityEvent) -> None:
        if self.active:
            self._loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: SecurityEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1


def row_of(event: SecurityEvent) -> tuple[object, ...]:
    """The stored columns of an event, in EVENT_COLUMNS order."""
    return (
        event.uid,
        event.time,
        int(event.class_uid),
        int(event.severity_id),
        event.tenant,
        event.actor.uid if event.actor else None,
        event.device.uid if event.device else None,
        event.message,
        json.dumps(event.to_ocsf(), ensure_ascii=False),
    )


class EventStream:
    """Where every plane reports what happened."""

    def __init__(self, database: Database, transport: Transport | None = None, interval: float = 0.2) -> None:
        self._database = database
        self._interval = interval
        self._queue: queue.SimpleQueue[SecurityEvent | None] = queue.SimpleQueue()
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._wake = threading.Event()
        self.transport = transport or LocalTransport()
        self.transport.listen(self._fan_out)
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()

    def emit(self, event: SecurityEvent) -> None:
        """Report an event: it is stored (in the next batch) and published to subscribers."""
        with self._idle:
            self._pending += 1
        self._queue.put(event)
        self.transport.publish(event)

    def subscribe(self) -> Subscription:
        """Live events from now on, for the calling event loop."""
        subscription = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.active = False
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def _fan_out(self, event: SecurityEvent) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            try:
                subscription.offer(event)
            except RuntimeError:  # its loop has closed
                self.unsubscribe(subscription)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event emitted so far is stored."""
        self._wake.set()
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Store what is queued and stop."""
        self._wake.set()
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            stopping = first is None
            if not stopping:
                # Store at most every `interval` seconds, so that on SQLite the event writer seldom
                # competes with the audit log's sequencer for the database's one write lock.
                self._wake.wait(self._interval)
            if not stopping:
                stopping = drain(self._queue, batch, 10_000)
            if batch:
                self._store(batch)
            with self._idle:
                if self._pending == 0:
                    self._wake.clear()
            if stopping:
                return

    def _store(self, batch: list[SecurityEvent]) -> None:
        try:
            with self._database.begin() as connection:
                connection.execute(
                    insert(security_events), [dict(zip(EVENT_COLUMNS, row_of(e), strict=True)) for e in batch]
                )
        except Exception:
            log.exception("storing %d security events failed", len(batch))
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

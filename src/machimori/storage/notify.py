"""Change notifications between processes that share one database (PostgreSQL LISTEN/NOTIFY).

On SQLite a town runs one process, so notifications stay in that process. On PostgreSQL a notification
sent inside a transaction reaches every listening process when, and only if, the transaction commits.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, event, text

from machimori.storage.engine import Database

log = logging.getLogger(__name__)
Callback = Callable[[str], None]
EVERYTHING = "*"  # the payload that means: anything on this channel may have changed


class Notifier(Protocol):
    """Sends and receives short text payloads on named channels."""

    def publish(self, connection: Connection, channel: str, payload: str) -> None:
        """Send on commit of the connection's transaction."""

    def subscribe(self, channel: str, callback: Callback) -> None: ...

    def close(self) -> None: ...


class LocalNotifier:
    """Notifications within this process only."""

    def __init__(self) -> None:
        self._callbacks: defaultdict[str, list[Callback]] = defaultdict(list)

    def publish(self, connection: Connection, channel: str, payload: str) -> None:
        def deliver(_: Connection) -> None:
            for callback in list(self._callbacks[channel]):
                callback(payload)

        event.listen(connection, "commit", deliver, once=True)  # like NOTIFY: only if it commits

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._callbacks[channel].append(callback)

    def close(self) -> None:
        self._callbacks.clear()


class PostgresNotifier:
    """LISTEN/NOTIFY: a listener thread per process with its own connection."""

    def __init__(self, database: Database) -> None:
        self._url = database.engine.url
        self._callbacks: defaultdict[str, list[Callback]] = defaultdict(list)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def publish(self, connection: Connection, channel: str, payload: str) -> None:
        connection.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})

    def subscribe(self, channel: str, callback: Callback) -> None:
        with self._lock:
            self._callbacks[channel].append(callback)
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="pg-listen", daemon=True)
                self._thread.start()
        self._ready.wait(10)

    def _listen(self) -> None:
        import psycopg

        url = self._url
        conninfo = psycopg.conninfo.make_conninfo(
            host=url.host or "", port=str(url.port or 5432), user=url.username or "", dbname=url.database or ""
        )
        if url.password:
            conninfo = psycopg.conninfo.make_conninfo(conninfo, password=url.password)
        connected_before = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    listening: set[str] = set()
                    if connected_before:  # notifications sent while we were away are lost: say so
                        self._dispatch_all(EVERYTHING)
                    connected_before = True
                    while not self._stop.is_set():
                        with self._lock:
                            channels = set(self._callbacks)
                        for channel in channels - listening:
                            connection.execute(f'LISTEN "{channel}"')
                            listening.add(channel)
                        self._ready.set()
                        for notice in connection.notifies(timeout=0.5):
                            self._dispatch(notice.channel, notice.payload)
            except Exception:
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
                self._stop.wait(1.0)

    def _dispatch(self, channel: str, payload: str) -> None:
        for callback in list(self._callbacks.get(channel, ())):
            try:
                callback(payload)
            except Exception:
                log.exception("notification callback failed")

    def _dispatch_all(self, payload: str) -> None:
        for channel in list(self._callbacks):
            self._dispatch(channel, payload)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def notifier_for(database: Database) -> Notifier:
    """The notifier that reaches every process using this database."""
    return LocalNotifier() if database.is_sqlite else PostgresNotifier(database)

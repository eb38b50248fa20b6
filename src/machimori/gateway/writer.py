"""The gateway's writer: checked readings committed in batches — the device's counter window re-checked under
the row's lock, the signed message kept, the hub entity updated — and each caller told once it is durable."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from machimori.gateway.envelope import Reading
from machimori.gateway.window import CounterWindow
from machimori.hub.observations import Observation, record_observations
from machimori.hub.store import EntityStore
from machimori.storage import Database
from machimori.storage.batches import drain
from machimori.storage.tables import device_readings, devices

log = logging.getLogger(__name__)
MAX_BATCH = 512


@dataclass(frozen=True)
class Outcome:
    """What the gateway decided on one message."""

    accepted: bool
    reason: str | None = None
    message: str = ""
    device_id: str | None = None
    counter: int | None = None


@dataclass
class Pending:
    """A verified, checked reading waiting for its transaction."""

    device_id: str
    tenant: str
    key_fingerprint: str
    reading: Reading
    envelope: bytes
    transport: str
    received_at: dt.datetime
    observation: Observation
    done: concurrent.futures.Future[Outcome]


class Writer:
    """Commits pending readings in batches from one thread; `windows` tells the gateway the counters it saw."""

    def __init__(self, database: Database, store: EntityStore) -> None:
        self.database = database
        self.store = store
        self.windows: dict[str, CounterWindow] = {}  # as committed
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="machimori-gateway-writer", daemon=True)
        self._thread.start()

    def put(self, pending: Pending) -> None:
        self._queue.put(pending)

    def close(self) -> None:
        """Commit what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch = [] if first is None else [first]
            stopping = first is None
            if not stopping:
                stopping = drain(self._queue, batch, MAX_BATCH)
            if batch:
                try:
                    self._commit(batch)
                except Exception:  # never let one batch end the thread: every later reading would wait forever
                    log.exception("gateway writer: batch of %d readings failed", len(batch))

    def _commit(self, batch: list[Pending]) -> None:
        try:
            with self.database.begin() as connection:
                kept, outcomes, windows = self._write(connection, batch)
        except Exception as error:  # the database failed: nobody is told their reading is stored
            log.exception("gateway batch of %d readings not committed", len(batch))
            for pending in batch:
                if not pending.done.done():  # a caller that stopped waiting is told nothing
                    pending.done.set_exception(error)
            return
        # only once committed: a batch that failed must not make the device's resend look like a replay
        self.windows.update(windows)
        for pending, outcome in zip(kept, outcomes, strict=True):
            pending.done.set_result(outcome)

    def _write(
        self, connection: Connection, batch: list[Pending]
    ) -> tuple[list[Pending], list[Outcome], dict[str, CounterWindow]]:
        """Decide and write the batch: the readings still waited for, their outcomes, and the counter windows
        of the devices it advanced."""
        ids = list(dict.fromkeys(pending.device_id for pending in batch))
        query = select(
            devices.c.id, devices.c.status, devices.c.key_fingerprint, devices.c.counter_top, devices.c.counter_window
        ).where(devices.c.id.in_(ids))
        if not self.database.is_sqlite:  # SQLite's write lock is already held (BEGIN IMMEDIATE)
            query = query.with_for_update()
        rows = {row.id: row for row in connection.execute(query)}
        # From here on a caller can no longer cancel; one that already did (its HTTP request went away) gets
        # nothing stored, so the device's resend is taken rather than refused as a replay.
        batch = [pending for pending in batch if pending.done.set_running_or_notify_cancel()]
        windows = {row.id: CounterWindow(row.counter_top, row.counter_window) for row in rows.values()}
        outcomes: list[Outcome] = []
        accepted: list[Pending] = []
        for pending in batch:
            outcome = self._decide(pending, rows.get(pending.device_id), windows)
            outcomes.append(outcome)
            if outcome.accepted:
                accepted.append(pending)
        if not accepted:
            return batch, outcomes, {}
        connection.execute(insert(device_readings), [_reading_row(pending) for pending in accepted])
        seen = {pending.device_id: pending.received_at for pending in accepted}
        connection.execute(
            update(devices)
            .where(devices.c.id == bindparam("device"))
            .values(counter_top=bindparam("top"), counter_window=bindparam("window"), last_seen_at=bindparam("seen")),
            [
                {"device": device, "top": windows[device].top, "window": windows[device].seen, "seen": at}
                for device, at in seen.items()
            ],
        )
        by_tenant: dict[str, list[Observation]] = defaultdict(list)
        for pending in accepted:
            by_tenant[pending.tenant].append(pending.observation)
        for tenant, observations in by_tenant.items():
            record_observations(self.store, connection, tenant, observations)
        return batch, outcomes, {device: windows[device] for device in seen}

    @staticmethod
    def _decide(pending: Pending, row: Any, windows: dict[str, CounterWindow]) -> Outcome:
        device, counter = pending.device_id, pending.reading.counter
        if row is None:
            return Outcome(False, "unknown-device", "the device is not registered", device, counter)
        status = row.status
        if status != "active":
            return Outcome(False, status, f"the device is {status}", device, counter)
        if row.key_fingerprint != pending.key_fingerprint:
            return Outcome(False, "key-changed", "signed with a key the device no longer has", device, counter)
        window = windows[device]
        refusal = window.refusal(counter)
        if refusal is not None:
            return Outcome(False, refusal, f"counter {counter} (highest accepted {window.top})", device, counter)
        windows[device] = window.accepted(counter)
        return Outcome(True, None, "stored", device, counter)


def _reading_row(pending: Pending) -> dict[str, object]:
    return {
        "device_id": pending.device_id,
        "counter": pending.reading.counter,
        "observed_at": pending.reading.time,
        "received_at": pending.received_at,
        "transport": pending.transport,
        "envelope": pending.envelope,
        "reading": pending.reading.values,
    }

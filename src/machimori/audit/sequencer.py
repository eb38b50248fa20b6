"""The single writer of the audit log: queued appends are sequenced and committed in groups."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from machimori.audit.merkle import FIRST_LINK, Frontier, leaf_hash, link_hash
from machimori.audit.store import HEAD_ID, read_hashes
from machimori.storage.engine import Database
from machimori.storage.raw import RawStatement
from machimori.storage.tables import audit_entries, audit_head, audit_nodes

log = logging.getLogger(__name__)
MAX_BATCH = 4096
ENTRY_COLUMNS = ("idx", "entry", "leaf_hash", "link_hash")
NODE_COLUMNS = ("level", "idx", "hash")
AnyFuture = asyncio.Future[Any] | concurrent.futures.Future[Any]


@dataclass(frozen=True)
class Appended:
    """Where an entry landed: its index and leaf hash, durable once returned."""

    index: int
    leaf_hash: bytes


@dataclass(frozen=True)
class _Request:
    canonical: bytes
    future: AnyFuture


class LogClosed(RuntimeError):
    """The log is shutting down and takes no more entries."""


def load_frontier(connection: Connection, size: int) -> Frontier:
    """The frontier of the stored tree of this size, read from its O(log n) stored nodes."""
    ids = Frontier.node_ids(size)
    hashes = read_hashes(connection, ids)
    return Frontier(size, [(level, hashes[(level, index)]) for level, index in ids])


class Sequencer:
    """Owns a writer thread; every append goes through it, and each batch is one transaction.

    Several processes may each run a sequencer on the same database: the head row is locked for the
    length of a batch (SQLite BEGIN IMMEDIATE, PostgreSQL SELECT … FOR UPDATE), and a sequencer that
    finds the head moved by another process reloads its frontier before appending.
    """

    def __init__(self, database: Database, max_batch: int = MAX_BATCH) -> None:
        self._database = database
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._frontier: Frontier | None = None
        self._root = b""
        self._link = FIRST_LINK
        self._closed = False
        self._connection: _Writer | None = None
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="audit-sequencer", daemon=True)
        self._thread.start()

    def submit(self, canonical: bytes, future: AnyFuture) -> None:
        """Queue canonical entry bytes; the future gets an Appended once the entry is durable."""
        with self._lock:
            if self._closed:
                raise LogClosed("the audit log is closed")
            self._queue.put(_Request(canonical, future))

    def append_now(self, canonical: bytes) -> Appended:
        """Append from a thread that may block: it commits itself (and whatever is queued) if nobody is writing."""
        return self.append_all_now([canonical])[0]

    def append_all_now(self, canonicals: list[bytes]) -> list[Appended]:
        """Append several entries in order, in one transaction when this thread gets to write them itself."""
        futures: list[concurrent.futures.Future[Appended]] = [concurrent.futures.Future() for _ in canonicals]
        requests = [_Request(canonical, future) for canonical, future in zip(canonicals, futures, strict=True)]
        with self._lock:
            if self._closed:
                raise LogClosed("the audit log is closed")
            leader = self._writing.acquire(blocking=False)
            if not leader:
                for request in requests:
                    self._queue.put(request)
        if leader:
            try:
                for start in range(0, len(requests), self._max_batch):
                    batch, stopping = self._drain(requests[start : start + self._max_batch])
                    if stopping:  # close() was asked meanwhile: leave its mark for the writer thread
                        self._queue.put(None)
                    self._commit_batch(batch)
            finally:
                self._writing.release()
        return [future.result() for future in futures]

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._drop_connection()

    def _drain(self, batch: list[_Request]) -> tuple[list[_Request], bool]:
        """Add what is queued to batch (up to the batch limit); whether close was asked."""
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            with self._writing:
                batch, stopping = self._drain([first])
                self._commit_batch(batch)

    def _commit_batch(self, batch: list[_Request]) -> None:
        try:
            results: list[Appended] | BaseException = self._write(batch)
        except Exception as error:  # delivered to every caller of the batch
            log.exception("audit batch of %d failed", len(batch))
            self._frontier = None
            self._drop_connection()
            results = error
        _deliver(batch, results)

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _write(self, batch: list[_Request]) -> list[Appended]:
        if self._connection is None:
            self._connection = _Writer(self._database)
        writer = self._connection
        head_size, head_root = writer.begin()
        try:
            return self._sequence(writer, batch, head_size, head_root)
        except BaseException:
            writer.rollback()
            raise

    def _sequence(self, writer: _Writer, batch: list[_Request], head_size: int, head_root: bytes) -> list[Appended]:
        frontier = self._frontier
        if frontier is None or frontier.size != head_size or self._root != head_root:
            frontier = writer.load_frontier(head_size)
            self._link = writer.last_link(head_size)
        link = self._link
        entries, results = [], []
        completed: list[tuple[int, int, bytes]] = []
        for request in batch:
            index = frontier.size
            digest = leaf_hash(request.canonical)
            link = link_hash(link, digest)
            frontier.append(digest, completed)
            entries.append((index, request.canonical.decode(), digest, link))
            results.append(Appended(index, digest))
        root = frontier.root()
        writer.commit(entries, completed, frontier.size, root)
        self._frontier, self._root, self._link = frontier, root, link
        return results


class _Writer:
    """The sequencer's own driver connection with its statements compiled once."""

    def __init__(self, database: Database) -> None:
        dialect = database.engine.dialect
        self._sqlite = database.is_sqlite
        self._engine = database.engine
        self._connection = database.engine.raw_connection()
        self._head = RawStatement.compile(
            select(audit_head.c.tree_size, audit_head.c.root_hash)
            .where(audit_head.c.id == bindparam("id"))
            .with_for_update(),
            dialect,
        )
        self._entries = RawStatement.compile(insert(audit_entries), dialect)
        self._nodes = RawStatement.compile(insert(audit_nodes), dialect)
        self._update = RawStatement.compile(
            update(audit_head)
            .where(audit_head.c.id == bindparam("id"))
            .values(tree_size=bindparam("size"), root_hash=bindparam("root")),
            dialect,
        )
        self._cursor = self._connection.cursor()

    def begin(self) -> tuple[int, bytes]:
        """Start a transaction holding the write lock; the head's size and root."""
        if self._sqlite:
            self._cursor.execute("BEGIN IMMEDIATE")
        size, root = self._head.execute(self._cursor, {"id": HEAD_ID}).fetchone()
        return int(size), bytes(root)

    def load_frontier(self, size: int) -> Frontier:
        with self._engine.connect() as connection:
            return load_frontier(connection, size)

    def last_link(self, size: int) -> bytes:
        """The link hash of the last stored row of a tree of this size."""
        if size == 0:
            return FIRST_LINK
        with self._engine.connect() as connection:
            return bytes(
                connection.execute(
                    select(audit_entries.c.link_hash).where(audit_entries.c.idx == size - 1)
                ).scalar_one()
            )

    def commit(
        self,
        entries: list[tuple[int, str, bytes, bytes]],
        nodes: list[tuple[int, int, bytes]],
        size: int,
        root: bytes,
    ) -> None:
        """Write a batch and commit it."""
        self._entries.execute_many(self._cursor, ENTRY_COLUMNS, entries)
        if nodes:
            self._nodes.execute_many(self._cursor, NODE_COLUMNS, nodes)
        self._update.execute(self._cursor, {"id": HEAD_ID, "size": size, "root": root})
        if self._sqlite:
            self._cursor.execute("COMMIT")
        else:
            self._connection.commit()

    def rollback(self) -> None:
        try:
            if self._sqlite:
                self._cursor.execute("ROLLBACK")
            else:
                self._connection.rollback()
        except Exception:
            log.warning("rollback of a failed audit batch failed", exc_info=True)

    def close(self) -> None:
        self._cursor.close()
        self._connection.close()


def _deliver(batch: Iterable[_Request], results: list[Appended] | BaseException) -> None:
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = defaultdict(list)
    for position, request in enumerate(batch):
        outcome = results if isinstance(results, BaseException) else results[position]
        future = request.future
        if isinstance(future, asyncio.Future):
            per_loop[future.get_loop()].append((future, outcome))
        elif isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    for loop, settlements in per_loop.items():
        with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody waits for these
            loop.call_soon_threadsafe(_settle, settlements)


def _settle(settlements: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in settlements:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

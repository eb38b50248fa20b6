"""Group commit: writes that arrive together share one transaction, so one disk flush answers many requests.

A thread that asks for a write while nobody is writing becomes the leader: it takes what is queued (its
own write and those of threads that arrived meanwhile), runs each in a savepoint of one transaction and
commits. A write that fails (a duplicate key, say) is rolled back to its savepoint and its error goes to
its own caller only; the others commit. Every caller returns once its write is durable (or has failed).
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from machimori.storage.engine import Database

T = TypeVar("T")
MAX_GROUP = 256


@dataclass
class _Write:
    job: Callable[[Connection], Any]
    done: concurrent.futures.Future[Any]


class GroupCommit:
    """Runs write jobs (each a function of a connection) in shared transactions."""

    def __init__(self, database: Database, max_group: int = MAX_GROUP) -> None:
        self.database = database
        self.max_group = max_group
        self._queue: queue.SimpleQueue[_Write] = queue.SimpleQueue()
        self._writing = threading.Lock()

    def run(self, job: Callable[[Connection], T]) -> T:
        """Run the job in a transaction (perhaps shared with others); its result once committed."""
        write = _Write(job, concurrent.futures.Future())
        self._queue.put(write)
        while not write.done.done():
            if self._writing.acquire(timeout=0.05):
                try:
                    self._commit_queued()
                finally:
                    self._writing.release()
        result: T = write.done.result()
        return result

    def _commit_queued(self) -> None:
        group: list[_Write] = []
        while len(group) < self.max_group:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not group:
            return
        if len(group) == 1:  # alone: its own transaction, no savepoint needed
            self._commit_alone(group[0])
            return
        outcomes: list[tuple[_Write, bool, Any]] = []
        try:
            with self.database.begin() as connection:
                for write in group:
                    savepoint = connection.begin_nested()
                    try:
                        outcome = write.job(connection)
                    except Exception as error:  # this write's own failure: the others go on
                        savepoint.rollback()
                        outcomes.append((write, False, error))
                    else:
                        savepoint.commit()
                        outcomes.append((write, True, outcome))
        except BaseException as error:  # the commit itself failed: nothing of the group is written
            for write in group:
                write.done.set_exception(error)
            return
        for write, succeeded, outcome in outcomes:
            if succeeded:
                write.done.set_result(outcome)
            else:
                write.done.set_exception(outcome)

    def _commit_alone(self, write: _Write) -> None:
        try:
            with self.database.begin() as connection:
                outcome = write.job(connection)
        except BaseException as error:
            write.done.set_exception(error)
        else:
            write.done.set_result(outcome)

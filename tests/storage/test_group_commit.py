"""Group commit: concurrent writes share transactions; each caller gets its own result or its own error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, func, insert, select

from machimori.storage import Database
from machimori.storage.group_commit import GroupCommit

metadata = MetaData()
numbers = Table("group_commit_numbers", metadata, Column("n", Integer, primary_key=True))


@pytest.fixture
def writes(database: Database) -> GroupCommit:
    metadata.create_all(database.engine)
    return GroupCommit(database)


def test_every_write_of_many_threads_is_committed_and_answered(writes: GroupCommit) -> None:
    def write(n: int) -> int:
        def job(connection: Connection) -> int:
            connection.execute(insert(numbers).values(n=n))
            return n

        return writes.run(job)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(write, range(400)))
    assert results == list(range(400))
    with writes.database.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(numbers)).scalar_one() == 400


def test_a_failing_write_fails_alone(writes: GroupCommit) -> None:
    writes.run(lambda connection: connection.execute(insert(numbers).values(n=7)))

    def write(n: int) -> str:
        try:
            writes.run(lambda connection: connection.execute(insert(numbers).values(n=n)))
        except Exception as error:  # the duplicate's own error
            return type(error).__name__
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = dict(zip(range(20), pool.map(write, range(20)), strict=True))
    assert outcomes[7] == "IntegrityError"
    assert all(outcome == "ok" for n, outcome in outcomes.items() if n != 7)
    with writes.database.engine.connect() as connection:
        assert sorted(connection.execute(select(numbers.c.n)).scalars()) == list(range(20))

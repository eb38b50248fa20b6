"""Opening the database: engine settings per dialect, and the schema brought up to date."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from machimori.diagnostics import InputError


@dataclass(frozen=True)
class Database:
    """An engine and what kind of database it talks to."""

    engine: Engine
    url: str

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so a transaction
        that reads before it writes waits its turn instead of failing with "database is locked"."""
        with self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection, connection.begin():
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=16)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

    return engine


def open_database(url: str, *, synchronous: str = "FULL", migrate: bool = True) -> Database:
    """Connect to the database at url and (by default) upgrade its schema to the newest migration."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError.single("MACHIMORI_DATABASE_URL", f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, synchronous)
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        engine = create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)
    else:
        raise InputError.single(
            "MACHIMORI_DATABASE_URL", f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    database = Database(engine, url)
    if migrate:
        from machimori.storage.migrate import upgrade

        try:
            upgrade(database)
        except OperationalError as error:
            database.dispose()
            raise InputError.single("MACHIMORI_DATABASE_URL", f"cannot open the database: {error.orig}") from None
    return database

"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from machimori.storage import Database
from machimori.storage.migrate import current_revision, head_revision
from machimori.storage.tables import metadata


def test_migrated_schema_matches_the_tables(database: Database) -> None:
    assert current_revision(database) == head_revision()
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []

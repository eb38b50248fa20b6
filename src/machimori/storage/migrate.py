"""Schema migrations with Alembic, run from code (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from machimori.storage.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database: Database) -> Config:
    """An Alembic configuration pointing at machimori's migrations and this database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    config.attributes["engine"] = database.engine
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to revision."""
    command.upgrade(alembic_config(database), revision)


def head_revision() -> str | None:
    """The newest migration shipped with this version."""
    return _script().get_current_head()


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def current_revision(database: Database) -> str | None:
    """The migration the database is at."""
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

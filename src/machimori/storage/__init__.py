"""Storage: one SQLAlchemy engine over SQLite (embedded default) or PostgreSQL, schema by Alembic."""

from machimori.storage.engine import Database, open_database

__all__ = ["Database", "open_database"]

"""Statements compiled once for the database's driver, for hot write paths that skip per-call SQL building."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class RawStatement:
    """SQL text in the driver's parameter style, and the order of its parameters if positional."""

    sql: str
    positions: tuple[str, ...] | None

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> RawStatement:
        compiled = statement.compile(dialect=dialect)
        positional = dialect.positional
        order = getattr(compiled, "positiontup", None) or ()
        return cls(str(compiled), tuple(order) if positional else None)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The values in the form the driver takes."""
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        cursor.execute(self.sql, self.parameters(values))
        return cursor

    def execute_many(self, cursor: Any, names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Run once per row; each row gives the values of names, in that order."""
        if self.positions is None:
            cursor.executemany(self.sql, [dict(zip(names, row, strict=True)) for row in rows])
        elif self.positions == names:
            cursor.executemany(self.sql, rows)
        else:
            order = [names.index(name) for name in self.positions]
            cursor.executemany(self.sql, [tuple(row[i] for i in order) for row in rows])

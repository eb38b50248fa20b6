"""Finding stored events: time range, class, severity, actor, device, tenant, text."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select, true

from machimori.clock import as_utc
from machimori.storage import Database
from machimori.storage.tables import security_events

MAX_LIMIT = 1000


@dataclass(frozen=True)
class EventQuery:
    """Filters on stored events; every one is optional. Results come newest first."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    class_uid: int | None = None
    min_severity: int | None = None
    actor: str | None = None
    device: str | None = None
    tenant: str | None = None
    text: str | None = None
    before: str | None = None
    limit: int = 100

    def statement(self) -> Select[Any]:
        table = security_events
        conditions = []
        if self.since is not None:
            conditions.append(table.c.time >= as_utc(self.since))
        if self.until is not None:
            conditions.append(table.c.time < as_utc(self.until))
        if self.class_uid is not None:
            conditions.append(table.c.class_uid == self.class_uid)
        if self.min_severity is not None:
            conditions.append(table.c.severity_id >= self.min_severity)
        for column, value in (
            (table.c.actor, self.actor),
            (table.c.device, self.device),
            (table.c.tenant, self.tenant),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.text:
            conditions.append(
                or_(
                    table.c.message.contains(self.text, autoescape=True),
                    table.c.body.contains(self.text, autoescape=True),
                )
            )
        if self.before is not None:
            conditions.append(table.c.uid < self.before)
        limit = max(1, min(self.limit, MAX_LIMIT))
        return (
            select(table.c.uid, table.c.body).where(and_(true(), *conditions)).order_by(table.c.uid.desc()).limit(limit)
        )


def find_events(database: Database, query: EventQuery) -> list[dict[str, Any]]:
    """Stored events matching the query, as OCSF-shaped JSON, newest first."""
    with database.engine.connect() as connection:
        return [json.loads(row.body) for row in connection.execute(query.statement())]

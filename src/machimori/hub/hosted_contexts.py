"""@context documents the hub hosts (ETSI GS CIM 009 §5.13): added through /jsonldContexts, kept in the database.

Each has a random local id, so its URL (`…/ngsi-ld/v1/jsonldContexts/{id}`) names one document whatever the
tenant; the hub's DocumentLoader serves those URLs from here, so requests can use a hosted @context without
anything being fetched. A document is listed in the tenant it was added in and deleted only by its
organisation there.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from machimori.storage import Database
from machimori.storage.tables import hub_contexts

HOSTED = "Hosted"
_LOCAL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class HostedContext:
    """A hosted @context document and who added it, where and when."""

    id: str
    tenant: str
    owner: str
    org: str | None
    kind: str
    body: Any
    created_at: dt.datetime


def is_local_id(text: str) -> bool:
    """Whether text has the form of a hosted @context's local id."""
    return _LOCAL_ID.match(text) is not None


class HostedContexts:
    """The hosted @context documents in the database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, tenant: str, owner: str, org: str | None, body: Any, now: dt.datetime) -> str:
        """Keep a document; its new local id."""
        local_id = str(uuid.uuid4())
        row = {"id": local_id, "tenant": tenant, "owner": owner, "org": org, "kind": HOSTED, "body": body}
        with self.database.begin() as connection:
            connection.execute(insert(hub_contexts), [{**row, "created_at": now}])
        return local_id

    def get(self, local_id: str) -> HostedContext | None:
        if not is_local_id(local_id):
            return None
        with self.database.engine.connect() as connection:
            row = connection.execute(select(hub_contexts).where(hub_contexts.c.id == local_id)).first()
        return None if row is None else _hosted(row._mapping)

    def document(self, local_id: str) -> Any:
        """The document with this local id (None if there is none): the DocumentLoader's lookup."""
        found = self.get(local_id)
        return None if found is None else found.body

    def in_tenant(self, tenant: str) -> list[HostedContext]:
        """The documents added in a tenant, oldest first."""
        query = select(hub_contexts).where(hub_contexts.c.tenant == tenant).order_by(hub_contexts.c.created_at)
        with self.database.engine.connect() as connection:
            return [_hosted(row._mapping) for row in connection.execute(query.limit(10_000))]

    def delete(self, local_id: str) -> bool:
        with self.database.begin() as connection:
            return bool(connection.execute(delete(hub_contexts).where(hub_contexts.c.id == local_id)).rowcount)


def _hosted(row: Any) -> HostedContext:
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite keeps no zone; every time stored is UTC
        created = created.replace(tzinfo=dt.UTC)
    return HostedContext(row["id"], row["tenant"], row["owner"], row["org"], row["kind"], row["body"], created)

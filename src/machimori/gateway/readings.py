"""The readings the gateway stored, each with the signed message it came in, so anyone holding the device's
public key can check again, at any time, that nobody altered it."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select

from machimori.storage import Database
from machimori.storage.tables import device_readings


def recent_readings(database: Database, device_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """A device's newest readings first: values, times, transport and the signed envelope (base64url)."""
    query = (
        select(device_readings)
        .where(device_readings.c.device_id == device_id)
        .order_by(device_readings.c.counter.desc())
        .limit(limit)
    )
    with database.engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        {
            "counter": row["counter"],
            "observedAt": _rfc3339(row["observed_at"]),
            "receivedAt": _rfc3339(row["received_at"]),
            "transport": row["transport"],
            "values": row["reading"],
            "envelope": base64.urlsafe_b64encode(row["envelope"]).decode().rstrip("="),
        }
        for row in rows
    ]


def count_readings(database: Database, device_id: str | None = None) -> int:
    """How many readings are stored (for one device, or in all)."""
    query = select(func.count()).select_from(device_readings)
    if device_id is not None:
        query = query.where(device_readings.c.device_id == device_id)
    with database.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _rfc3339(moment: Any) -> str:
    text: str = moment.isoformat()
    if moment.tzinfo is None:  # SQLite gives naive UTC back
        text += "Z"
    return text.replace("+00:00", "Z")

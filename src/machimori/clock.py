"""Time in UTC: now, and times read back from a database that does not keep the zone (SQLite)."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC time; a naive one is taken to be UTC (how machimori stores every time)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)

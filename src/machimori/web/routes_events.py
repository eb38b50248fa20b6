"""Security events over HTTP: search, and a live stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from machimori.events import EventQuery, find_events
from machimori.events.query import MAX_LIMIT
from machimori.identity.tokens import Principal
from machimori.web.security import platform_of, require

router = APIRouter(prefix="/api/v1/events", tags=["events"])
Auditor = Annotated[Principal, Depends(require("events.read"))]


@router.get("")
def search_events(
    request: Request,
    _: Auditor,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    class_uid: Annotated[int | None, Query(ge=0)] = None,
    min_severity: Annotated[int | None, Query(ge=0, le=99)] = None,
    actor: str | None = None,
    device: str | None = None,
    tenant: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the message or anywhere in the event")] = None,
    before: Annotated[str | None, Query(description="the uid of the last event of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """Stored events, newest first, OCSF-shaped."""
    query = EventQuery(since, until, class_uid, min_severity, actor, device, tenant, q, before, limit)
    events = find_events(platform_of(request).database, query)
    last = events[-1]["metadata"]["uid"] if len(events) == limit else None
    return {"events": events, "next_before": last}


@router.get("/stream")
async def stream_events(request: Request, _: Auditor) -> StreamingResponse:
    """Events as they happen, as Server-Sent Events (one `data:` line of OCSF JSON per event)."""
    stream = platform_of(request).events
    subscription = stream.subscribe()

    async def messages() -> AsyncIterator[str]:
        try:
            yield ": machimori security events\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"id: {event.uid}\nevent: {int(event.class_uid)}\ndata: {json.dumps(event.to_ocsf(), ensure_ascii=False)}\n\n"
        finally:
            stream.unsubscribe(subscription)

    return StreamingResponse(messages(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

"""Taking work off a queue in batches, for the writer threads that commit many items in one transaction."""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def drain(source: queue.SimpleQueue[T | None], batch: list[T], limit: int) -> bool:
    """Move what is queued into `batch` (up to `limit` items in all); True if the stop sentinel (None) came."""
    while len(batch) < limit:
        try:
            item = source.get_nowait()
        except queue.Empty:
            return False
        if item is None:
            return True
        batch.append(item)
    return False

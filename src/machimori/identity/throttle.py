"""Throttling failed sign-ins as NIST SP 800-63B-4 asks: growing delays, at most 100 consecutive failures.

There is no short lock-out an attacker could use to lock residents out: the first failures cost nothing,
then each further failure doubles the wait, and only the 100th consecutive failure locks the account
until it is reset. Per source address, a sliding window bounds guessing across many accounts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict, deque

FREE_FAILURES = 5
MAX_CONSECUTIVE_FAILURES = 100
MAX_DELAY = dt.timedelta(minutes=15)
SOURCE_WINDOW_SECONDS = 600.0
SOURCE_MAX_FAILURES = 60


def delay_after(failures: int) -> dt.timedelta:
    """How long an account waits after this many consecutive failures."""
    if failures < FREE_FAILURES:
        return dt.timedelta(0)
    return min(dt.timedelta(seconds=2 ** min(failures - FREE_FAILURES, 20)), MAX_DELAY)


class SourceLimiter:
    """Failed sign-ins per source address in a sliding window (in this process)."""

    def __init__(self, limit: int = SOURCE_MAX_FAILURES, window: float = SOURCE_WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, source: str, now: float) -> deque[float]:
        stamps = self._failures[source]
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        return stamps

    def retry_after(self, source: str, now: float | None = None) -> float:
        """Seconds this source must wait before trying again (0 if it may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stamps = self._recent(source, now)
            return 0.0 if len(stamps) < self.limit else stamps[0] + self.window - now

    def failed(self, source: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(source, now).append(now)

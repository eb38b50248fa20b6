"""A delivery loop: a daemon thread that pushes what is due over HTTP, every second and at once when woken.

Consent-change events (RFC 8417) and NGSI-LD notifications are both delivered this way; each subclass
says what is due (`deliver_due`) and uses `client()` for its requests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import httpx

log = logging.getLogger("machimori.delivery")
TIMEOUT_SECONDS = 5.0
POLL_SECONDS = 1.0


class DeliveryLoop:
    """Runs `deliver_due` in a daemon thread until `close()`; `wake()` makes it look at once."""

    name = "delivery"

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._headers = dict(headers or {})
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self) -> int:
        """Deliver what is due now; how many were delivered."""
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def client(self) -> httpx.Client:
        """The HTTP client (time-outs, no redirects followed), made on first use so one-shot commands do not
        pay for it."""
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, headers=self._headers)
            return self._http

    def start(self) -> None:
        """Run the loop in a daemon thread until close()."""
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self.run, args=(self._stop,), name=self.name, daemon=True)
            self._thread.start()

    def run(self, stop: threading.Event) -> None:
        """Deliver what is due every second, and at once when woken, until stop is set."""
        while not stop.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
            except Exception:  # the database away for a moment must not end the loop
                log.exception("%s: a delivery round failed", self.name)
            self._wake.wait(POLL_SECONDS)

    def close(self) -> None:
        """Stop the loop (letting a delivery under way finish) and close the HTTP connections."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT_SECONDS * 2)
            self._thread = None
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

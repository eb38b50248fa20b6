"""The checks a verified reading passes before it is stored: its time, its values against the device model,
and the device's message rate."""

from __future__ import annotations

import datetime as dt
import re
import sys
import threading
import time
from dataclasses import dataclass

from machimori.gateway.envelope import EnvelopeRejected, Reading
from machimori.gateway.models import DeviceModel

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls and DEL, but tab, line feed and CR
MAX_DOUBLE = int(sys.float_info.max)


@dataclass(frozen=True)
class TimeBounds:
    """How far a reading's time may lie ahead of the gateway's clock, and how old it may be."""

    ahead: dt.timedelta = dt.timedelta(seconds=60)
    behind: dt.timedelta = dt.timedelta(minutes=15)

    def check(self, reading: Reading, now: dt.datetime) -> None:
        """EnvelopeRejected('clock-skew') if the reading's time is out of bounds."""
        if reading.time > now + self.ahead:
            raise EnvelopeRejected("clock-skew", f"the reading is {(reading.time - now).total_seconds():.0f} s ahead")
        if reading.time < now - self.behind:
            raise EnvelopeRejected("clock-skew", f"the reading is {(now - reading.time).total_seconds():.0f} s old")


def check_values(reading: Reading, model: DeviceModel) -> None:
    """EnvelopeRejected('schema' or 'out-of-range') unless every value is one the model allows."""
    for name, value in reading.values.items():
        measurement = model.measurements.get(name)
        if measurement is None:
            raise EnvelopeRejected("schema", f"{name}: the model {model.id} reports no such value")
        kind = measurement.type
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "boolean" and not isinstance(value, bool):
            raise EnvelopeRejected("schema", f"{name}: expected true or false")
        if kind == "text":
            if not isinstance(value, str):
                raise EnvelopeRejected("schema", f"{name}: expected text")
            if CONTROL.search(value):  # NUL fits no PostgreSQL text; the others are terminal and log escapes
                raise EnvelopeRejected("schema", f"{name}: control characters in text")
            if measurement.choices is not None and value not in measurement.choices:
                raise EnvelopeRejected("out-of-range", f"{name}: {value[:40]!r} is not one of the model's choices")
        if kind in ("number", "integer"):
            if not numeric or (kind == "integer" and not isinstance(value, int)):
                raise EnvelopeRejected("schema", f"{name}: expected a {kind}")
            assert isinstance(value, int | float)
            if isinstance(value, int) and not -MAX_DOUBLE <= value <= MAX_DOUBLE:  # no double, so no store, holds it
                raise EnvelopeRejected("out-of-range", f"{name}: {str(value)[:20]}… is not a representable number")
            if (measurement.min is not None and value < measurement.min) or (
                measurement.max is not None and value > measurement.max
            ):
                raise EnvelopeRejected(
                    "out-of-range", f"{name}: {value} is outside [{measurement.min}, {measurement.max}]"
                )


class RateLimits:
    """A token bucket per device: a minute's worth of messages as the burst, refilled evenly."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # device id → (tokens, at)
        self._lock = threading.Lock()

    def take(self, device_id: str, per_minute: int) -> None:
        """EnvelopeRejected('rate-limited') if the device has used up its rate."""
        moment = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(device_id, (float(per_minute), moment))
            tokens = min(float(per_minute), tokens + (moment - at) * per_minute / 60)
            if tokens < 1:
                self._buckets[device_id] = (tokens, moment)
                raise EnvelopeRejected("rate-limited", f"more than {per_minute} messages a minute")
            self._buckets[device_id] = (tokens - 1, moment)

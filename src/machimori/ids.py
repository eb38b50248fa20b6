"""Record identifiers: UUIDv7 (RFC 9562), time-ordered."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A new UUIDv7: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    return str(uuid.UUID(int=value))

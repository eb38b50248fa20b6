"""Record identifiers: UUIDv7 (RFC 9562), time-ordered and monotonic within a process."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, 74 random bits) of the last identifier


def uuid7() -> str:
    """A new UUIDv7; identifiers made in the same millisecond count up (RFC 9562 §6.2, method 2)."""
    global _last
    millis = time.time_ns() // 1_000_000
    with _lock:
        last_millis, last_random = _last
        if millis <= last_millis:
            millis, random_bits = last_millis, last_random + 1
        else:
            random_bits = int.from_bytes(os.urandom(10), "big") >> 8 & ((1 << 73) - 1)  # headroom to count up
        _last = (millis, random_bits)
    rand_a, rand_b = random_bits >> 62 & 0xFFF, random_bits & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0x2 << 62 | rand_b
    return str(uuid.UUID(int=value))

"""The anti-replay window of a device's message counters (as IPsec, RFC 4303 §3.4.3, and OSCORE, RFC 8613 §7.4)."""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 32  # OSCORE's default: messages may arrive out of order by up to 32 counters


@dataclass(frozen=True)
class CounterWindow:
    """The highest counter accepted and which of the WINDOW counters just below it were accepted too."""

    top: int = 0
    seen: int = 0  # bit i set: counter top - 1 - i was accepted

    def refusal(self, counter: int) -> str | None:
        """Why the counter must be refused ('replay' or 'counter-too-old'), or None if it is fresh."""
        if counter > self.top:
            return None
        if counter == self.top or counter <= self.top - 1 - WINDOW:
            return "replay" if counter == self.top else "counter-too-old"
        return "replay" if self.seen >> (self.top - 1 - counter) & 1 else None

    def accepted(self, counter: int) -> CounterWindow:
        """The window once this (fresh) counter is accepted."""
        if counter > self.top:
            shift = counter - self.top
            if not self.top or shift > WINDOW:
                # nothing accepted before, or a jump past the window: no bit survives (and shifting by the jump
                # itself would build an integer of `shift` bits — gigabytes for a jump to 10**12 or 2**62)
                return CounterWindow(counter, 0)
            seen = (self.seen << shift) | (1 << (shift - 1))
            return CounterWindow(counter, seen & ((1 << WINDOW) - 1))
        return CounterWindow(self.top, self.seen | 1 << (self.top - 1 - counter))

"""What a reader skipped: counts per reason and the first few places, so bad input is reported, never fatal."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from machimori.diagnostics import Problem

#: How many skipped places are kept with their location; the rest are only counted (memory stays bounded).
EXAMPLES_KEPT = 20


@dataclass
class ReadReport:
    """Lines, packets or flows a reader read, and those it skipped with why."""

    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[Problem] = field(default_factory=list)

    def skip(self, file: str, line: int, reason: str) -> None:
        """Count one skipped line (or packet, record number) under its reason; keep the first few places."""
        self.skipped[reason] += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(Problem(file, line, 0, reason))

    @property
    def skipped_total(self) -> int:
        """How many were skipped, whatever the reason."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line for people: how much was read and skipped, by reason (ja / en)."""
        if not self.skipped:
            return f"{self.read} 件読み込み / read {self.read}"
        reasons = ", ".join(f"{reason}: {count}" for reason, count in self.skipped.most_common())
        return f"{self.read} 件読み込み、{self.skipped_total} 件スキップ / read {self.read}, skipped {self.skipped_total} ({reasons})"

"""Verification of a whole log: every leaf recomputed, every row's place checked, every checkpoint matched."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from machimori.audit import merkle
from machimori.audit.canonical import NotCanonicalizable, canonical_json
from machimori.audit.checkpoint import Checkpoint

FindingKind = Literal["edited", "rewritten", "moved", "missing", "duplicate", "checkpoint"]

_EXPLANATIONS: dict[str, tuple[str, str]] = {
    "edited": ("記録の内容が書き換えられています", "the entry was edited: it no longer hashes to its leaf hash"),
    "rewritten": (
        "この行がハッシュごと書き換えられたか、直前に行が挿入・削除されています",
        "this row was rewritten with its hashes, or a row just before it was inserted or deleted",
    ),
    "moved": (
        "この行は本来の位置にありません(挿入・入れ替え)",
        "this row is not where it was logged: it was inserted or moved",
    ),
    "missing": ("行が削除されています", "rows were deleted"),
    "duplicate": ("同じ位置の行が重複しているか順序が乱れています", "a row repeats an index or is out of order"),
    "checkpoint": (
        "署名済みチェックポイントと一致しません(この範囲のどこかが改ざんされています)",
        "the log does not match a signed checkpoint: something in this range was changed",
    ),
}


@dataclass(frozen=True)
class Row:
    """One stored row as read from the database or an export: the entry is the parsed JSON value."""

    index: int
    entry: Any
    leaf_hash: bytes
    link_hash: bytes


@dataclass(frozen=True)
class Finding:
    """One kind of tampering at one index (for ranges, the first index)."""

    index: int
    kind: FindingKind
    detail: str = ""

    def describe(self) -> str:
        ja, en = _EXPLANATIONS[self.kind]
        extra = f" ({self.detail})" if self.detail else ""
        return f"index {self.index}: {self.kind} — {ja} / {en}{extra}"


@dataclass
class VerifyReport:
    """What verification found."""

    entries: int = 0
    anchors: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    uncovered: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def _leaf_of(entry: Any) -> bytes | None:
    try:
        return merkle.leaf_hash(canonical_json(entry))
    except NotCanonicalizable:
        return None


def verify_rows(rows: Iterable[Row], anchors: Iterable[Checkpoint]) -> VerifyReport:
    """Check rows in index order against each other and against trusted checkpoints."""
    by_size: dict[int, Checkpoint] = {}
    for given in anchors:
        by_size.setdefault(given.size, given)
    report = VerifyReport(anchors=sorted(by_size))
    findings = report.findings
    frontier = merkle.Frontier()
    expected = 0
    previous_link = merkle.FIRST_LINK
    broken: list[int] = []  # rows whose link to the row before does not hold
    if 0 in by_size and by_size[0].root != merkle.EMPTY_ROOT:
        findings.append(Finding(0, "checkpoint", "size 0"))
    for row in rows:
        if row.index < expected:
            findings.append(Finding(row.index, "duplicate"))
            continue
        if row.index > expected:
            findings.append(Finding(expected, "missing", f"{row.index - expected} row(s): {expected}…{row.index - 1}"))
            expected = row.index
        if _leaf_of(row.entry) != row.leaf_hash:
            findings.append(Finding(row.index, "edited"))
        if merkle.link_hash(previous_link, row.leaf_hash) != row.link_hash:
            broken.append(row.index)
        previous_link = row.link_hash
        frontier.append(row.leaf_hash, [])
        expected += 1
        anchor = by_size.get(expected)
        if anchor is not None and (frontier.size != expected or frontier.root() != anchor.root):
            findings.append(Finding(expected - 1, "checkpoint", f"checkpoint of size {anchor.size}"))
    report.entries = expected
    findings.extend(_place_findings(broken))
    for size in sorted(by_size):
        if size > expected:
            findings.append(Finding(expected, "missing", f"the log ends at {expected}; a checkpoint covers {size}"))
            break
    covered = max(by_size, default=0)
    report.uncovered = max(0, expected - covered)
    findings.sort(key=lambda finding: (finding.index, finding.kind))
    return report


def _place_findings(broken: list[int]) -> list[Finding]:
    """Rows out of place: a row whose links on both sides break was moved or inserted there."""
    found: list[Finding] = []
    broken_set = set(broken)
    for index in broken:
        if index - 1 in broken_set and any(f.index == index - 1 and f.kind == "moved" for f in found):
            continue  # the link after a moved row breaks because of that row
        if index + 1 in broken_set:
            found.append(Finding(index, "moved"))
        else:
            found.append(Finding(index, "rewritten"))
    return found


def parse_entry(text: str) -> Any:
    """The stored entry text as a JSON value (an unparsable text is kept as text and fails its leaf)."""
    try:
        return json.loads(text)
    except ValueError:
        return text

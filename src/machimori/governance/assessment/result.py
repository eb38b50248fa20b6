"""The assessment's results; docs/assessment.schema.json documents their JSON form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from machimori.governance.model.schema import StatusValue
from machimori.governance.text import CategoryId, Text

ScopeKind = Literal["component", "stakeholder"]
Rating = Literal["low", "medium", "high", "critical"]
RATINGS: tuple[Rating, ...] = ("low", "medium", "high", "critical")
"""Ratings from least to most severe."""
ElementKind = Literal["flow", "component", "stakeholder", "dataset", "service", "requirement"]

DONE: frozenset[str] = frozenset({"implemented", "not-applicable"})
PROGRESS: dict[str, float] = {
    "implemented": 1.0,
    "partial": 0.5,
    "planned": 0.0,
    "not-implemented": 0.0,
    "unknown": 0.0,
}
"""How much of a requirement a status counts as met, for coverage."""


@dataclass(slots=True)
class Target:
    """One applicable requirement on one component or stakeholder: a row of a check sheet."""

    requirement: str
    category: CategoryId
    scope: ScopeKind
    scope_id: str
    status: StatusValue = "unknown"
    responsible: tuple[str, ...] = ()
    accountable: tuple[str, ...] = ()
    consulted: tuple[str, ...] = ()
    informed: tuple[str, ...] = ()
    evidence: str | None = None
    due: dt.date | None = None

    @property
    def key(self) -> str:
        """A stable key for this row, used to read filled check sheets back."""
        return f"{self.requirement}@{self.scope}:{self.scope_id}"

    @property
    def owned(self) -> bool:
        """Somebody is responsible or accountable."""
        return bool(self.responsible or self.accountable)


@dataclass(slots=True)
class Element:
    """A reference to a model element."""

    kind: ElementKind
    id: str


@dataclass(slots=True)
class Finding:
    """A problem the assessment found in the model, with a stable kind and the elements involved."""

    kind: str
    rating: Rating
    score: int
    message_ja: str
    message_en: str
    elements: list[Element]
    requirements: list[str] = field(default_factory=list)

    key: str = ""
    """What the finding is about (a flow, a requirement on a component, ...): stable between runs."""

    @property
    def id(self) -> str:
        """kind:key — the same problem keeps the same id from one assessment to the next."""
        return f"{self.kind}:{self.key}"


@dataclass(slots=True)
class RiskInstance:
    """A catalog risk instantiated on one concrete element of the model."""

    risk: str
    element: Element
    likelihood: int
    impact: int
    score: int
    rating: Rating
    open_requirements: list[str]

    @property
    def status(self) -> Literal["open", "mitigated"]:
        """Mitigated when every requirement that answers the risk is met on the element."""
        return "open" if self.open_requirements else "mitigated"


@dataclass(slots=True)
class Gap:
    """An applicable requirement not yet met on a target, ranked by likelihood × impact."""

    target: Target
    likelihood: int
    impact: int
    score: int
    rating: Rating
    risks: tuple[str, ...]


@dataclass(slots=True)
class RequirementResult:
    """How one requirement stands across the city."""

    id: str
    applicable: bool
    targets: int
    implemented: int
    coverage: float
    statuses: dict[str, int]


@dataclass
class Assessment:
    """Everything the assessment found for one city model at one date."""

    city_id: str
    city_name: Text
    as_of: dt.date
    catalog_sources: list[str]
    targets: list[Target]
    requirements: list[RequirementResult]
    risks: list[RiskInstance]
    findings: list[Finding]
    gaps: list[Gap]
    raci: dict[str, dict[str, str]]
    coverage_by_category: dict[str, float]
    coverage_by_stakeholder: dict[str, float]
    coverage: float
    requirements_total: int

    @property
    def requirements_applicable(self) -> int:
        """Requirements with at least one target in this city."""
        return sum(1 for r in self.requirements if r.applicable)

    @property
    def risks_open(self) -> int:
        """Risk instances with at least one requirement not yet met."""
        return sum(1 for r in self.risks if r.open_requirements)

"""The catalog's entries as typed records, and the file format that holds them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from machimori.governance.text import CategoryId, DataTypeId, Strict, Text

REQUIREMENT_ID = re.compile(r"^CPS\.([A-Z]{2})-([1-9][0-9]*)$")

CPSF_CATEGORY_CODES: tuple[str, ...] = (
    "AM", "BE", "GV", "RA", "RM", "SC", "AC", "AT", "DS", "IP",
    "MA", "PT", "AE", "CM", "DP", "RP", "CO", "AN", "MI", "IM",
)  # fmt: skip
"""The 20 categories of CPSF v1.0; any other ``CPS.XX`` code is not a CPSF requirement."""

Provenance = Literal["verified", "inferred", "reconstructed", "official"]
CsfFunction = Literal["identify", "protect", "detect", "respond", "recover", "respond-recover"]
ElementKind = Literal["flow", "component", "stakeholder", "dataset", "service"]


class GuidelineCategory(Strict):
    """One of the guideline's four security categories."""

    id: CategoryId
    code: Literal["G", "S", "O", "A"]
    name: Text
    description: Text
    layers: list[int] = Field(default_factory=list)


class Layer(Strict):
    """A layer of the Smart City Reference Architecture and the category it falls under."""

    number: int = Field(ge=1, le=9)
    name: Text
    category: CategoryId | None = None
    provenance: Provenance = "inferred"


class CpsfCategory(Strict):
    """A CPSF category, named after its NIST CSF 1.1 counterpart."""

    code: str
    function: CsfFunction
    name: Text
    csf11: list[str] = Field(default_factory=list)
    csf20: list[str] = Field(default_factory=list)

    @field_validator("code")
    @classmethod
    def _is_cpsf_code(cls, code: str) -> str:
        if code not in CPSF_CATEGORY_CODES:
            raise ValueError(f"'{code}' is not one of CPSF's 20 categories ({', '.join(CPSF_CATEGORY_CODES)})")
        return code


class Source(Strict):
    """Where an entry's facts come from."""

    document: str
    note: str | None = None


class Requirement(Strict):
    """A CPSF countermeasure requirement."""

    id: str
    title: Text
    summary: Text
    categories: list[CategoryId] = Field(min_length=1)
    csf11: list[str] = Field(default_factory=list)
    csf20: list[str] = Field(default_factory=list)
    provenance: Provenance
    source: Source | None = None

    @field_validator("id")
    @classmethod
    def _is_cpsf_id(cls, value: str) -> str:
        match = REQUIREMENT_ID.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a CPSF requirement ID (expected CPS.XX-n)")
        if match.group(1) not in CPSF_CATEGORY_CODES:
            raise ValueError(
                f"'{value}': '{match.group(1)}' is not a CPSF category "
                "(CPSF has 20: AM BE GV RA RM SC AC AT DS IP MA PT AE CM DP RP CO AN MI IM)"
            )
        return value

    @property
    def category_code(self) -> str:
        """The CPSF category code, e.g. 'AC' for CPS.AC-4."""
        return self.id[4:6]

    @property
    def number(self) -> int:
        """The number within the category, e.g. 4 for CPS.AC-4."""
        return int(self.id.split("-")[1])


class Where(Strict):
    """Conditions that select the model elements a risk applies to; every condition given must hold."""

    category: list[CategoryId] | None = None
    from_category: list[CategoryId] | None = None
    to_category: list[CategoryId] | None = None
    data_type: list[DataTypeId] | None = None
    personal: bool | None = None
    crosses_boundary: bool | None = None
    encrypted: bool | None = None
    authenticated: bool | None = None
    kind: list[str] | None = None


WHERE_KEYS: dict[str, frozenset[str]] = {
    "flow": frozenset(
        {"from_category", "to_category", "data_type", "personal", "crosses_boundary", "encrypted", "authenticated"}
    ),
    "component": frozenset({"category", "kind", "personal", "data_type"}),
    "stakeholder": frozenset({"kind", "personal"}),
    "dataset": frozenset({"data_type", "personal"}),
    "service": frozenset({"personal"}),
}
"""The conditions each kind of element can be selected by."""


class Selector(Strict):
    """Which elements of a city model a risk is instantiated on."""

    element: ElementKind
    where: Where = Field(default_factory=Where)

    @model_validator(mode="after")
    def _conditions_fit_the_element(self) -> Selector:
        given = {key for key, value in self.where if value is not None}
        unusable = sorted(given - WHERE_KEYS[self.element])
        if unusable:
            raise ValueError(
                f"a {self.element} cannot be selected by {', '.join(unusable)} "
                f"(it can by: {', '.join(sorted(WHERE_KEYS[self.element]))})"
            )
        return self


class Risk(Strict):
    """A row of the risk table: assumed incident, threat, vulnerability and the requirements that answer it."""

    id: str = Field(pattern=r"^R-[A-Z0-9-]+$")
    incident: Text
    threat: Text
    vulnerability: Text
    requirements: list[str] = Field(min_length=1)
    likelihood: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    applies_to: Selector
    source: Source


class Concern(Strict):
    """A smart-city-specific concern of the guideline and the measures it asks for."""

    id: str
    name: Text
    description: Text
    measures: list[Text] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    source: Source


class DataType(Strict):
    """A data type of guideline v3.0 (open, limited, closed) or the personal-data marker."""

    id: Literal["open", "limited", "closed", "personal"]
    name: Text
    description: Text
    measures: list[Text] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)


class CatalogFile(Strict):
    """The format of a catalog file, built in or a user's: every section is optional."""

    guideline_categories: list[GuidelineCategory] = Field(default_factory=list)
    layers: list[Layer] = Field(default_factory=list)
    cpsf_categories: list[CpsfCategory] = Field(default_factory=list)
    requirements: list[Requirement] = Field(default_factory=list)
    risks: list[Risk] = Field(default_factory=list)
    concerns: list[Concern] = Field(default_factory=list)
    data_types: list[DataType] = Field(default_factory=list)


class Catalog(Strict):
    """The merged catalog, every section keyed by its ID."""

    guideline_categories: dict[str, GuidelineCategory]
    layers: dict[int, Layer]
    cpsf_categories: dict[str, CpsfCategory]
    requirements: dict[str, Requirement]
    risks: dict[str, Risk]
    concerns: dict[str, Concern]
    data_types: dict[str, DataType]
    sources: list[str] = Field(default_factory=list)

    def sorted_requirements(self) -> list[Requirement]:
        """Requirements in CPSF order: by category as CPSF lists them, then by number."""
        order = {code: i for i, code in enumerate(CPSF_CATEGORY_CODES)}
        return sorted(self.requirements.values(), key=lambda r: (order[r.category_code], r.number))

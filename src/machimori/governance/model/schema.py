"""The city model file format; docs/city-model.schema.json is generated from these classes."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from machimori.governance.text import CategoryId, DataTypeId, Date, Flag, Level, Strict, Text

StakeholderKind = Literal[
    "promoter",
    "municipality",
    "city-os-operator",
    "service-provider",
    "device-vendor",
    "network-operator",
    "subcontractor",
]
AgreementKind = Literal["security-requirements", "data-handling", "nda"]
StatusValue = Literal["implemented", "partial", "planned", "not-implemented", "not-applicable", "unknown"]
ConsentBasis = Literal["consent", "contract", "legal-obligation", "public-task", "vital-interest", "none"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
Id = str


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"'{value}' is not a valid id (letters, digits, '.', '_', ':', '-'; no spaces)")
    return value


class Named(Strict):
    """An element with an id and a name that may be one string or ja/en."""

    id: Id
    name: str | Text | None = None
    description: str | None = None

    _valid_id = field_validator("id")(_check_id)

    def label(self, lang: Literal["ja", "en"] = "ja") -> str:
        """The name in ``lang`` where given, else the id."""
        if isinstance(self.name, Text):
            return self.name(lang)
        return self.name or self.id


class Contact(Strict):
    """Who to call when something happens."""

    name: str
    email: str | None = None
    phone: str | None = None


class Agreement(Strict):
    """An agreement a stakeholder holds with another (security requirements, data handling, NDA)."""

    kind: AgreementKind
    with_: Id = Field(alias="with")
    reference: str | None = None
    expires: Date | None = None


class Stakeholder(Named):
    """An organisation of the smart city and, for subcontractors, who delegated work to it."""

    kind: StakeholderKind
    parent: Id | None = None
    incident_contact: Contact | None = None
    agreements: list[Agreement] = Field(default_factory=list)


class Component(Named):
    """A part of the city's system: a device, a network, a platform function, an application."""

    category: CategoryId
    layer: Level | None = Field(default=None, ge=1, le=9)
    kind: str | None = None
    owner: Id | None = None
    operator: Id | None = None
    hosted_by: Id | None = None


class NgsiLdBinding(Strict):
    """How a dataset appears in the city OS: its NGSI-LD entity types, which attributes are personal, and
    which Relationship names the resident the data is about. Names are terms of `context` (default: the
    NGSI-LD core context) or full IRIs."""

    types: list[str] = Field(min_length=1)
    context: str | None = None
    personal_attributes: list[str] = Field(default_factory=list)
    resident_attribute: str | None = None


class Dataset(Named):
    """Data that flows in the city, with its data type and whether it is personal."""

    data_type: DataTypeId
    personal: Flag = False
    owner: Id | None = None
    handling_policy: str | None = None
    ngsi_ld: NgsiLdBinding | None = None


class Flow(Strict):
    """Data moving from one component to another."""

    id: Id
    from_: Id = Field(alias="from")
    to: Id
    dataset: Id
    protocol: str | None = None
    encrypted: Flag
    authenticated: Flag
    crosses_boundary: Flag | None = None

    _valid_id = field_validator("id")(_check_id)


class Purpose(Strict):
    """A purpose for which a service uses data."""

    id: Id
    description: str | Text | None = None


class Service(Named):
    """A service offered to residents or the city, with its purposes and consent basis."""

    provider: Id
    components: list[Id] = Field(default_factory=list)
    datasets: list[Id] = Field(default_factory=list)
    purposes: list[Purpose] = Field(default_factory=list)
    consent_basis: ConsentBasis = "none"


class StatusRecord(Strict):
    """How far a requirement is met, for one component, one stakeholder, or the whole city, and who owns it."""

    requirement: str
    component: Id | None = None
    stakeholder: Id | None = None
    status: StatusValue = "unknown"
    responsible: list[Id] = Field(default_factory=list)
    accountable: list[Id] = Field(default_factory=list)
    consulted: list[Id] = Field(default_factory=list)
    informed: list[Id] = Field(default_factory=list)
    evidence: str | None = None
    due: Date | None = None

    @field_validator("responsible", "accountable", "consulted", "informed", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


Rating = Literal["low", "medium", "high", "critical"]


def _default_bands() -> dict[Rating, int]:
    return {"low": 1, "medium": 5, "high": 10, "critical": 17}


class RiskMatrix(Strict):
    """Likelihood × impact rating: a score at or above a band's threshold gets that band's rating."""

    bands: dict[Rating, Level] = Field(default_factory=_default_bands)

    @model_validator(mode="after")
    def _rising(self) -> RiskMatrix:
        order = [r for r in ("low", "medium", "high", "critical") if r in self.bands]
        thresholds = [self.bands[r] for r in order]
        if any(not 1 <= t <= 25 for t in thresholds) or thresholds != sorted(set(thresholds)):
            raise ValueError(
                "bands must be scores between 1 and 25 that rise from low to critical "
                "(likelihood and impact are 1–5) / 1〜25 の範囲で low から critical へ増加させてください"
            )
        return self


class City(Strict):
    """The city being assessed."""

    id: Id
    name: str | Text
    promoter: Id

    _valid_id = field_validator("id")(_check_id)


class CityModel(Strict):
    """A whole city model file."""

    city: City
    stakeholders: list[Stakeholder] = Field(default_factory=list)
    components: list[Component] = Field(default_factory=list)
    datasets: list[Dataset] = Field(default_factory=list)
    flows: list[Flow] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    statuses: list[StatusRecord] = Field(default_factory=list)
    risk_matrix: RiskMatrix = Field(default_factory=RiskMatrix)

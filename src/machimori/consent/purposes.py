"""The purpose catalogue: W3C Data Privacy Vocabulary (DPV) purposes and the city's own."""

from __future__ import annotations

from dataclasses import dataclass

DPV = "https://w3id.org/dpv#"


@dataclass(frozen=True)
class Purpose:
    """A purpose a service may declare for using personal data."""

    iri: str
    ja: str
    en: str


DPV_PURPOSES = tuple(
    Purpose(DPV + name, ja, en)
    for name, ja, en in (
        ("ServiceProvision", "サービスの提供", "providing the service"),
        ("ServicePersonalisation", "サービスの個別化", "personalising the service"),
        ("ServiceOptimisation", "サービスの改善", "optimising the service"),
        ("ResearchAndDevelopment", "研究開発", "research and development"),
        ("Marketing", "マーケティング", "marketing"),
        ("PersonalisedAdvertising", "個人向け広告", "personalised advertising"),
        ("FraudPreventionAndDetection", "不正の防止と検知", "preventing and detecting fraud"),
        ("EnforceSecurity", "セキュリティの確保", "enforcing security"),
        ("LegalCompliance", "法令の遵守", "complying with the law"),
        ("CommunicationManagement", "連絡", "communicating with the person"),
    )
)


class PurposeCatalogue:
    """Known purposes by IRI (DPV's, plus any the city adds)."""

    def __init__(self, extra: tuple[Purpose, ...] = ()) -> None:
        self._by_iri = {purpose.iri: purpose for purpose in (*DPV_PURPOSES, *extra)}

    def __contains__(self, iri: object) -> bool:
        return iri in self._by_iri

    def get(self, iri: str) -> Purpose:
        """The purpose with that IRI; KeyError if the catalogue does not know it."""
        return self._by_iri[iri]

    def all(self) -> list[Purpose]:
        return list(self._by_iri.values())

"""Which dataset an entity belongs to, by its stored (expanded) type — never by its id.

Built from the city model's datasets that say how they appear in the city OS (`ngsi_ld`). An entity of
a type no dataset claims is treated as closed data of nobody, so nobody but an administrator sees it
until the city model says what it is. A dataset that lists personal attributes is personal in those
attributes only (each is decided as personal data of the resident its `resident_attribute` names); a
personal dataset without such a list is personal throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from machimori.governance.model.schema import Dataset
from machimori.hub.jsonld import Contexts
from machimori.policy import DataType


@dataclass(frozen=True)
class Classification:
    """What the decision point needs to know about an entity's data."""

    dataset: str | None
    data_type: DataType
    owner: str | None
    personal_attributes: frozenset[str] = frozenset()
    resident_attribute: str | None = None

    def is_personal(self, attribute: str) -> bool:
        """Whether an (expanded) attribute is personal data: named so, or in a dataset that is personal."""
        return self.data_type is DataType.personal or attribute in self.personal_attributes


UNCLASSIFIED = Classification(None, DataType.closed, None)


class Catalogue:
    """Classifications by expanded entity type."""

    def __init__(self, by_type: dict[str, Classification]) -> None:
        self._by_type = by_type

    @classmethod
    def from_datasets(cls, datasets: Iterable[Dataset], contexts: Contexts) -> Catalogue:
        """The catalogue of the datasets that have an NGSI-LD binding (names expanded with their context)."""
        by_type: dict[str, Classification] = {}
        for dataset in datasets:
            binding = dataset.ngsi_ld
            if binding is None:
                continue
            active = contexts.active(binding.context)
            kind = (
                DataType.personal
                if dataset.personal and not binding.personal_attributes
                else DataType(dataset.data_type)
            )
            classification = Classification(
                dataset.id,
                kind,
                dataset.owner,
                frozenset(active.expand(name) for name in binding.personal_attributes),
                active.expand(binding.resident_attribute) if binding.resident_attribute else None,
            )
            for name in binding.types:
                expanded = active.expand(name)
                if expanded in by_type:
                    raise ValueError(
                        f"type {expanded} is claimed by two datasets: {by_type[expanded].dataset}, {dataset.id}"
                    )
                by_type[expanded] = classification
        return cls(by_type)

    @property
    def resident_attributes(self) -> frozenset[str]:
        """The attributes by which any dataset names the resident its data is about."""
        return frozenset(c.resident_attribute for c in self._by_type.values() if c.resident_attribute is not None)

    def classify(self, types: Iterable[str]) -> Classification:
        """The classification of an entity with these expanded types (the strictest if several apply)."""
        found = [self._by_type[t] for t in types if t in self._by_type]
        if not found:
            return UNCLASSIFIED
        order = {DataType.open: 0, DataType.limited: 1, DataType.closed: 2, DataType.personal: 3}
        return max(found, key=lambda c: (order[c.data_type], len(c.personal_attributes)))

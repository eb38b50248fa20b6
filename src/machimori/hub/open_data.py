"""What the open-data endpoint may publish: open datasets only, and never personal data.

An entity is published if its stored type belongs to an open dataset of the city model; the attributes its
dataset marks personal are dropped; and an entity that names a resident (it carries the attribute by
which any dataset of the city model points at a resident) is not published at all, because it is a
resident's data written under an open type — a mislabelled record, which the city should hear about.
"""

from __future__ import annotations

from dataclasses import replace

from machimori.hub.catalogue import Catalogue
from machimori.hub.entities import Entity
from machimori.policy import DataType


def published(catalogue: Catalogue, entity: Entity) -> Entity | None:
    """The entity as the open-data endpoint shows it (None: not at all)."""
    classification = catalogue.classify(entity.types)
    if classification.data_type is not DataType.open:
        return None
    if catalogue.resident_attributes & set(entity.attributes):
        return None
    kept = {name: v for name, v in entity.attributes.items() if name not in classification.personal_attributes}
    return replace(entity, attributes=kept)


def mislabelled(catalogue: Catalogue, entity: Entity) -> bool:
    """Whether an entity of an open dataset carries a resident's data (withheld, and worth an event)."""
    classification = catalogue.classify(entity.types)
    return classification.data_type is DataType.open and bool(catalogue.resident_attributes & set(entity.attributes))

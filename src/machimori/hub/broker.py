"""The broker's parts, put together over the platform's database and city model."""

from __future__ import annotations

from dataclasses import dataclass

from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.hub.catalogue import Catalogue
from machimori.hub.jsonld import Contexts, DocumentLoader
from machimori.hub.store import EntityStore
from machimori.platform import Platform


@dataclass
class Hub:
    """The broker's parts: contexts, the city model's classification and the entity store."""

    contexts: Contexts
    catalogue: Catalogue
    store: EntityStore


def open_hub(platform: Platform) -> Hub:
    """The hub over the platform's database, classifying by the city model it was started with (if any)."""
    contexts = Contexts(DocumentLoader())
    datasets = (
        load_model(platform.settings.city_model, load_catalog(())).datasets if platform.settings.city_model else []
    )
    return Hub(contexts, Catalogue.from_datasets(datasets, contexts), EntityStore(platform.database))

"""The broker's parts, put together over the platform's database and city model."""

from __future__ import annotations

from dataclasses import dataclass, field

from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.hub.catalogue import Catalogue
from machimori.hub.hosted_contexts import HostedContexts
from machimori.hub.jsonld import Contexts, DocumentLoader, fetch_context
from machimori.hub.notifications import Notifications
from machimori.hub.store import EntityStore
from machimori.hub.subscription_store import SubscriptionStore
from machimori.platform import Platform


@dataclass
class Hub:
    """The broker's parts: contexts, the city model's classification, the entity store (which queues each
    write's notifications in the write's own transaction) and the subscriptions."""

    contexts: Contexts
    catalogue: Catalogue
    store: EntityStore
    subscriptions: SubscriptionStore
    notifications: Notifications = field(repr=False)


def open_hub(platform: Platform) -> Hub:
    """The hub over the platform's database, classifying by the city model it was started with (if any)."""
    settings = platform.settings
    contexts = Contexts(
        DocumentLoader(
            settings.hub_contexts_dir,
            fetch_context if settings.hub_fetch_contexts else None,
            hosted=HostedContexts(platform.database).document,
        )
    )
    datasets = (
        load_model(platform.settings.city_model, load_catalog(())).datasets if platform.settings.city_model else []
    )
    catalogue = Catalogue.from_datasets(datasets, contexts)
    notifications = Notifications(platform, contexts, catalogue)
    return Hub(
        contexts,
        catalogue,
        EntityStore(platform.database, on_change=notifications.changed),  # notifications in the write's commit
        SubscriptionStore(platform.database),
        notifications,
    )

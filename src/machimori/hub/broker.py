"""The broker's parts, put together over the platform's database and city model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from machimori.governance.catalog import load_catalog
from machimori.governance.model.loader import load_model
from machimori.hub.catalogue import Catalogue
from machimori.hub.entities import Entity
from machimori.hub.hosted_contexts import HostedContexts
from machimori.hub.jsonld import Contexts, DocumentLoader, fetch_context
from machimori.hub.notifications import Notifications
from machimori.hub.store import EntityStore
from machimori.hub.subscription_store import SubscriptionStore
from machimori.platform import Platform
from machimori.storage.group_commit import GroupCommit


@dataclass
class Hub:
    """The broker's parts: contexts, the city model's classification and the entity store."""

    contexts: Contexts
    catalogue: Catalogue
    store: EntityStore
    subscriptions: SubscriptionStore
    notifications: Notifications = field(repr=False)

    def changed(self, tenant: str, before: Entity | None, after: Entity | None) -> None:
        """An entity was written (no before: created; no after: deleted): queue its notifications.

        Call it after every successful write and before answering, so an acknowledged write is never
        without its notifications."""
        self.notifications.changed(tenant, [(before, after)])

    def changed_many(self, tenant: str, changes: Sequence[tuple[Entity | None, Entity | None]]) -> None:
        """Many entities were written (a batch): queue their notifications in one transaction."""
        self.notifications.changed(tenant, changes)


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
    writes = GroupCommit(platform.database)  # entity writes and their notifications share commits
    return Hub(
        contexts,
        catalogue,
        EntityStore(platform.database, writes),
        SubscriptionStore(platform.database),
        Notifications(platform, contexts, catalogue, writes=writes),
    )

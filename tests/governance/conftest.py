"""Shared builders: a small, clean city model that tests then break one way at a time."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from ruamel.yaml import YAML

from machimori.governance.catalog import Catalog, load_catalog

AS_OF = dt.date(2026, 12, 1)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def clean_model(catalog: Catalog) -> dict[str, Any]:
    """A small town with no flaw of any finding kind."""
    contact = {"name": "CSIRT", "email": "csirt@example.jp"}
    agreements = lambda *pairs: [{"kind": k, "with": w} for k, w in pairs]  # noqa: E731
    return copy.deepcopy(
        {
            "city": {"id": "testtown", "name": {"ja": "試験町", "en": "Test Town"}, "promoter": "town"},
            "stakeholders": [
                {"id": "town", "kind": "promoter", "incident_contact": contact},
                {
                    "id": "osop",
                    "kind": "city-os-operator",
                    "incident_contact": contact,
                    "agreements": agreements(("data-handling", "town"), ("security-requirements", "town")),
                },
                {
                    "id": "care",
                    "kind": "service-provider",
                    "incident_contact": contact,
                    "agreements": agreements(("data-handling", "town")),
                },
                {
                    "id": "sub1",
                    "kind": "subcontractor",
                    "parent": "care",
                    "incident_contact": contact,
                    "agreements": agreements(("data-handling", "care")),
                },
                {
                    "id": "sub2",
                    "kind": "subcontractor",
                    "parent": "sub1",
                    "incident_contact": contact,
                    "agreements": agreements(("data-handling", "sub1")),
                },
            ],
            "components": [
                {"id": "sensor", "category": "asset", "kind": "sensor", "owner": "town", "operator": "osop"},
                {"id": "broker", "category": "city-os", "kind": "broker", "owner": "town", "operator": "osop"},
                {"id": "app", "category": "service", "kind": "application", "owner": "care", "operator": "sub1"},
                {"id": "db", "category": "service", "kind": "database", "owner": "care", "operator": "sub2"},
            ],
            "datasets": [
                {"id": "air", "data_type": "open", "personal": False},
                {"id": "residents", "data_type": "closed", "personal": True, "owner": "care"},
            ],
            "flows": [
                {
                    "id": "f1",
                    "from": "sensor",
                    "to": "broker",
                    "dataset": "air",
                    "encrypted": True,
                    "authenticated": True,
                },
                {
                    "id": "f2",
                    "from": "broker",
                    "to": "app",
                    "dataset": "residents",
                    "encrypted": True,
                    "authenticated": True,
                },
                {
                    "id": "f3",
                    "from": "app",
                    "to": "db",
                    "dataset": "residents",
                    "encrypted": True,
                    "authenticated": True,
                },
            ],
            "services": [
                {
                    "id": "watch",
                    "provider": "care",
                    "components": ["app"],
                    "datasets": ["residents"],
                    "purposes": [{"id": "elderly-watch"}],
                    "consent_basis": "consent",
                }
            ],
            "statuses": [
                {"requirement": r, "status": "implemented", "responsible": ["town"], "accountable": ["town"]}
                for r in catalog.requirements
            ],
        }
    )


def dump(data: dict[str, Any], path: Any) -> None:
    yaml = YAML()
    with open(path, "w", encoding="utf-8") as handle:
        yaml.dump(data, handle)

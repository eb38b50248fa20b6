"""The guideline catalog: categories, CPSF requirements, risks, concerns and data types."""

from machimori.governance.catalog.loader import load_catalog
from machimori.governance.catalog.models import Catalog

__all__ = ["Catalog", "load_catalog"]

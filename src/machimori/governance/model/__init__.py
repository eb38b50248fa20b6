"""The city model: stakeholders, components, datasets, flows, services and requirement status records."""

from machimori.governance.model.loader import load_model
from machimori.governance.model.schema import CityModel

__all__ = ["CityModel", "load_model"]

"""The JSON Schema of the city model format, for editors and for docs/city-model.schema.json."""

from __future__ import annotations

from typing import Any

from machimori.governance.model.schema import CityModel

SCHEMA_ID = "https://machimori.city/schemas/city-model/v1.json"
ROLES = ("responsible", "accountable", "consulted", "informed")


def city_model_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a city model file."""
    schema = CityModel.model_json_schema(by_alias=True, mode="validation")
    record = schema["$defs"]["StatusRecord"]["properties"]
    for role in ROLES:  # the loader also takes a single id for a role
        record[role] = {
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            "title": record[role].get("title", role),
        }
    return {
        **schema,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "machimori city model / 都市モデル",
    }

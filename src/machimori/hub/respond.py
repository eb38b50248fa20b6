"""Answers that carry entities, in the form the client accepts (ETSI GS CIM 009 §6.3.6).

`application/ld+json`: each entity carries its `@context`; `application/json` (the default): the @context
goes in a Link header. The @context is the one the request named (or the core context).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from machimori.hub.jsonld import CORE_CONTEXT, ActiveContext
from machimori.hub.requests import CONTEXT_REL, JSON, JSON_LD

GEO_JSON = "application/geo+json"


def wants_json_ld(accept: str | None) -> bool:
    """Whether the client asked for application/ld+json rather than application/json."""
    kinds = [part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")]
    return JSON_LD in kinds and (JSON not in kinds or kinds.index(JSON_LD) < kinds.index(JSON))


def context_of(context: ActiveContext) -> str | list[Any]:
    """The @context to show: what the request named (one URL as a string), or the core context."""
    named = [
        item if item.startswith(("http://", "https://", "urn:")) else json.loads(item)
        for item in context.source
        if item != CORE_CONTEXT
    ]
    if not named:
        return CORE_CONTEXT
    return named[0] if len(named) == 1 and isinstance(named[0], str) else named


def wants_geo_json(accept: str | None) -> bool:
    return GEO_JSON in (accept or "")


def feature(entity: dict[str, Any], geometry_property: str) -> dict[str, Any]:
    """An entity as a GeoJSON Feature: its geometry property's value as the geometry (RFC 7946)."""
    properties = {name: value for name, value in entity.items() if name not in ("id", "@context")}
    found = entity.get(geometry_property)
    geometry = found.get("value", found) if isinstance(found, dict) and "coordinates" not in found else found
    return {"id": entity.get("id"), "type": "Feature", "geometry": geometry, "properties": properties}


def entities_response(
    body: dict[str, Any] | list[dict[str, Any]],
    context: ActiveContext,
    accept: str | None,
    headers: dict[str, str] | None = None,
    status: int = 200,
    geometry_property: str = "location",
) -> JSONResponse:
    """One entity or a list, with its @context placed as the client accepts (JSON-LD, JSON or GeoJSON)."""
    headers = dict(headers or {})
    shown = context_of(context)
    if wants_geo_json(accept):
        compact = context.compact(context.expand(geometry_property))
        if isinstance(body, list):
            features: Any = {"type": "FeatureCollection", "features": [feature(e, compact) for e in body]}
        else:
            features = {**feature(body, compact), "@context": shown}
        return JSONResponse(features, status_code=status, media_type=GEO_JSON, headers=headers)
    if wants_json_ld(accept):
        for item in body if isinstance(body, list) else [body]:
            item["@context"] = shown
        return JSONResponse(body, status_code=status, media_type=JSON_LD, headers=headers)
    link = shown if isinstance(shown, str) else next((i for i in shown if isinstance(i, str)), CORE_CONTEXT)
    headers["Link"] = f'<{link}>; rel="{CONTEXT_REL}"; type="{JSON_LD}"'
    return JSONResponse(body, status_code=status, media_type=JSON, headers=headers)

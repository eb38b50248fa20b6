"""Geo-queries (ETSI GS CIM 009 §4.10): `georel`, `geometry`, `coordinates` and `geoproperty`.

`near;maxDistance==m` and `near;minDistance==m` measure in metres on a local plane around the reference
geometry (an equirectangular projection: within a city the error is far below a GPS fix's); `within`,
`contains`, `intersects`, `disjoint`, `equals` and `overlaps` are the Simple Features relations, tested by
GEOS (shapely). The database narrows candidates by the bounding box of `location` first; the relation
decides.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from machimori.hub.entities import GEOMETRY_TYPES, Entity, check_geometry
from machimori.hub.errors import bad_request
from machimori.hub.jsonld import ActiveContext

RELATIONS = frozenset({"near", "within", "contains", "intersects", "disjoint", "equals", "overlaps"})
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
METRES_PER_DEGREE = 111_320.0
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class GeoQuery:
    """A parsed geo-query: the relation (with a distance for near), the reference geometry, the property."""

    relation: str
    reference: BaseGeometry
    geoproperty: str = LOCATION
    max_distance: float | None = None
    min_distance: float | None = None

    def matches(self, entity: Entity) -> bool:
        """Whether any instance of the entity's geoproperty stands in the relation to the reference."""
        for instance in entity.attributes.get(self.geoproperty, []):
            value = instance.get("value")
            if isinstance(value, dict) and value.get("type") in GEOMETRY_TYPES:
                try:
                    geometry = shape(value)
                except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
                    continue
                if self._holds(geometry):
                    return True
        return False

    def _holds(self, geometry: BaseGeometry) -> bool:
        if self.relation == "near":
            metres = _metres(self.reference, geometry)
            if self.max_distance is not None and metres > self.max_distance:
                return False
            return not (self.min_distance is not None and metres < self.min_distance)
        test = {
            "within": geometry.within,
            "contains": geometry.contains,
            "intersects": geometry.intersects,
            "disjoint": geometry.disjoint,
            "equals": geometry.equals,
            "overlaps": geometry.overlaps,
        }[self.relation]
        return bool(test(self.reference))

    @property
    def box(self) -> Box | None:
        """A box every matching `location` lies in or touches (None: no such bound)."""
        if self.geoproperty != LOCATION or self.relation == "disjoint":
            return None
        if self.relation == "near":
            if self.max_distance is None:
                return None
            min_lon, min_lat, max_lon, max_lat = self.reference.bounds
            lat_margin = self.max_distance / METRES_PER_DEGREE
            widest = max(abs(min_lat), abs(max_lat)) + lat_margin
            lon_margin = self.max_distance / (METRES_PER_DEGREE * max(math.cos(math.radians(min(widest, 89.9))), 1e-6))
            return min_lon - lon_margin, min_lat - lat_margin, max_lon + lon_margin, max_lat + lat_margin
        bounds: Box = self.reference.bounds
        return bounds


def parse_geo_query(
    georel: str | None,
    geometry: str | None,
    coordinates: str | Any | None,
    geoproperty: str | None,
    context: ActiveContext,
) -> GeoQuery | None:
    """The geo-query the parameters ask for (None if none); BadRequestData if they are incomplete or wrong."""
    if georel is None and geometry is None and coordinates is None:
        return None
    if not georel or not geometry or coordinates is None:
        raise bad_request(
            "a geo-query needs georel, geometry and coordinates / georel・geometry・coordinates が必要です"
        )
    relation, *modifiers = georel.split(";")
    if relation not in RELATIONS:
        raise bad_request(f"georel {relation!r} is not one of {', '.join(sorted(RELATIONS))}")
    distances: dict[str, float] = {}
    for modifier in modifiers:
        name, _, number = modifier.partition("==")
        if relation != "near" or name not in ("maxDistance", "minDistance"):
            raise bad_request(f"georel modifier {modifier!r}: only near takes maxDistance== or minDistance==")
        try:
            distances[name] = float(number)
        except ValueError:
            raise bad_request(f"georel {modifier!r}: the distance must be a number of metres") from None
        if distances[name] < 0 or not math.isfinite(distances[name]):
            raise bad_request(f"georel {modifier!r}: the distance must be a non-negative number of metres")
    if relation == "near" and not distances:
        raise bad_request("georel near needs maxDistance==<metres> or minDistance==<metres>")
    if geometry not in GEOMETRY_TYPES - {"GeometryCollection"}:
        raise bad_request(f"geometry {geometry!r} is not a GeoJSON geometry type")
    if isinstance(coordinates, str):
        try:
            coordinates = json.loads(coordinates)
        except ValueError:
            raise bad_request("coordinates must be a JSON array of numbers / coordinates は JSON の配列です") from None
    value = {"type": geometry, "coordinates": coordinates}
    check_geometry("coordinates", value)
    try:
        reference = shape(value)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException) as error:
        raise bad_request(f"the geometry is not valid: {error}") from None
    return GeoQuery(
        relation,
        reference,
        context.expand(geoproperty) if geoproperty else LOCATION,
        distances.get("maxDistance"),
        distances.get("minDistance"),
    )


def _metres(reference: BaseGeometry, geometry: BaseGeometry) -> float:
    """The shortest distance between two lon/lat geometries in metres, on a plane centred on the reference."""
    centre = reference.centroid
    scale_x = METRES_PER_DEGREE * math.cos(math.radians(centre.y))

    def project(geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: (xy - [centre.x, centre.y]) * [scale_x, METRES_PER_DEGREE])

    return float(project(reference).distance(project(geometry)))

"""NGSI-LD entities: checked on the way in, kept with expanded names, compacted on the way out.

An entity is kept as `Entity(id, types, attributes)` where type and attribute names are expanded IRIs
and each attribute is a list of instances (several when they differ by `datasetId`). Instances keep
their members as NGSI-LD gives them (value, object, unitCode, observedAt, sub-attributes …) with
sub-attribute names expanded too; the broker adds createdAt/modifiedAt.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from machimori.hub.errors import bad_request, invalid_request
from machimori.hub.jsonld import ActiveContext

# The member holding each attribute type's value (required; the value shown in keyValues form).
MAIN_MEMBER = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
ATTRIBUTE_TYPES = frozenset(MAIN_MEMBER)
PREVIOUS_MEMBER = {kind: "previous" + main[0].upper() + main[1:] for kind, main in MAIN_MEMBER.items()}
_NOTIFIED_MEMBERS = frozenset(PREVIOUS_MEMBER.values())  # only ever set by a notification (showChanges)
GEO_ATTRIBUTES = frozenset({"location", "observationSpace", "operationSpace"})
CORE_MEMBERS = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"})
SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "deletedAt"})
INSTANCE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "objectType",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "datasetId",
        "observedAt",
        "unitCode",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "lang",
    }
)
GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)
# ETSI GS CIM 009 §4.6.2: characters a name may not contain.
_FORBIDDEN_IN_NAMES = re.compile(r"[<>\"'=;()\s]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
MAX_NAME_LENGTH = 512


def is_uri(text: object) -> bool:
    """Whether text is an absolute URI (scheme ':' something), as NGSI-LD ids must be."""
    return isinstance(text, str) and len(text) <= 2048 and _URI.match(text) is not None


def parse_datetime(text: object, where: str) -> dt.datetime:
    """An RFC 3339 date-time in UTC; BadRequestData naming where it was."""
    if not isinstance(text, str):
        raise bad_request(f"{where}: a DateTime string is required")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{where}: {text!r} is not an ISO 8601 DateTime") from None
    if parsed.tzinfo is None:
        raise bad_request(f"{where}: {text!r} has no time zone (use Z)")
    return parsed.astimezone(dt.UTC)


@dataclass
class Entity:
    """An entity with expanded type and attribute names."""

    id: str
    types: list[str]
    attributes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scope: list[str] | None = None
    created_at: str | None = None
    modified_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form (expanded names)."""
        body: dict[str, Any] = {"id": self.id, "type": self.types, "attributes": self.attributes}
        if self.scope is not None:
            body["scope"] = self.scope
        body["createdAt"], body["modifiedAt"] = self.created_at, self.modified_at
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Entity:
        return cls(
            body["id"],
            body["type"],
            body["attributes"],
            body.get("scope"),
            body.get("createdAt"),
            body.get("modifiedAt"),
        )


def parse_entity(payload: object, context: ActiveContext, *, now: str) -> Entity:
    """An entity from a request body (normalized or concise form); BadRequestData on any fault."""
    if not isinstance(payload, dict):
        raise invalid_request("an entity must be a JSON object / エンティティは JSON オブジェクトです")
    entity_id = payload.get("id", payload.get("@id"))
    if not is_uri(entity_id):
        raise bad_request(f"id must be a URI, got {entity_id!r} / id は URI でなければなりません")
    types = _types(payload.get("type", payload.get("@type")), context)
    entity = Entity(str(entity_id), types, created_at=now, modified_at=now)
    if "scope" in payload:
        entity.scope = _scope(payload["scope"])
    for name, value in payload.items():
        if name in CORE_MEMBERS or name in ("@id", "@type"):
            continue
        entity.attributes[context.expand(_checked_name(name))] = parse_attribute(name, value, context, now=now)
    return entity


def _types(value: object, context: ActiveContext) -> list[str]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(name, str) and name for name in names):
        raise bad_request("type must be a name or a list of names / type が必要です")
    expanded = {context.expand(_checked_name(str(name))) for name in names}
    if any(name.startswith("@") for name in expanded):
        raise bad_request("type must name an entity type, not a JSON-LD keyword / type にキーワードは使えません")
    return sorted(expanded)


def _scope(value: object) -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    if not all(isinstance(scope, str) and re.fullmatch(r"/?[\w\-/#+]+", scope) for scope in scopes):
        raise bad_request("scope must be one or more paths like /Madrid/Gardens")
    return [str(scope) for scope in scopes]


def _checked_name(name: str) -> str:
    if not name or len(name) > MAX_NAME_LENGTH or _FORBIDDEN_IN_NAMES.search(name):
        raise bad_request(f"{name[:80]!r} is not a valid name (ETSI GS CIM 009 §4.6.2) / 名前に使えない文字があります")
    return name


def parse_attribute(name: str, value: object, context: ActiveContext, *, now: str) -> list[dict[str, Any]]:
    """An attribute's instances; a bare value (concise form) becomes a Property or GeoProperty."""
    instances = value if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) else [value]
    parsed = [_instance(name, instance, context, now) for instance in instances]
    datasets = [instance.get("datasetId") for instance in parsed]
    if len(set(map(str, datasets))) != len(datasets):
        raise bad_request(f"{name}: two instances with the same datasetId / datasetId が重複しています")
    return parsed


def _instance(name: str, value: object, context: ActiveContext, now: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        if value is None:
            raise bad_request(f"{name}: null is not a value (delete the attribute instead)")
        kind = "GeoProperty" if name in GEO_ATTRIBUTES else "Property"
        if kind == "GeoProperty":
            check_geometry(name, value)
        return {"type": kind, "value": value, "createdAt": now, "modifiedAt": now}
    given = value.get("type")
    if given in GEOMETRY_TYPES and "value" not in value:  # concise: the GeoJSON geometry itself
        check_geometry(name, value)
        return {"type": "GeoProperty", "value": value, "createdAt": now, "modifiedAt": now}
    kind = _implied_type(name, value) if given is None else given
    if not isinstance(kind, str) or kind not in ATTRIBUTE_TYPES:
        raise bad_request(f"{name}: type {kind!r} is not an attribute type ({', '.join(sorted(ATTRIBUTE_TYPES))})")
    instance: dict[str, Any] = {"type": kind}
    for member, member_value in value.items():
        if member in SYSTEM_MEMBERS or member == "type":
            continue
        if member in INSTANCE_MEMBERS:
            instance[member] = member_value
        else:  # a sub-attribute
            expanded = context.expand(_checked_name(member))
            instance[expanded] = parse_attribute(member, member_value, context, now=now)
    _check_instance(name, kind, instance)
    instance["createdAt"], instance["modifiedAt"] = now, now
    return instance


def _implied_type(name: str, value: dict[str, Any]) -> str:
    """The attribute type a concise instance implies by its members."""
    for kind, member in MAIN_MEMBER.items():
        if member != "value" and member in value:
            return kind
    if "value" in value:
        return "GeoProperty" if name in GEO_ATTRIBUTES else "Property"
    raise bad_request(f"{name}: an attribute needs a type or a value / 属性には type か value が必要です")


def _check_instance(name: str, kind: str, instance: dict[str, Any]) -> None:
    required = MAIN_MEMBER[kind]
    if required not in instance or instance[required] is None:
        raise bad_request(f"{name}: a {kind} needs {required!r} / {kind} には {required} が必要です")
    if kind == "Relationship":
        targets = instance["object"] if isinstance(instance["object"], list) else [instance["object"]]
        if not targets or not all(is_uri(target) for target in targets):
            raise bad_request(f"{name}: a Relationship's object must be a URI (or a list of URIs)")
    if kind == "GeoProperty" or name in GEO_ATTRIBUTES:
        check_geometry(name, instance.get("value"))
    if "datasetId" in instance and not is_uri(instance["datasetId"]):
        raise bad_request(f"{name}: datasetId must be a URI")
    if "observedAt" in instance:
        parse_datetime(instance["observedAt"], f"{name}.observedAt")
    if kind == "LanguageProperty" and not (
        isinstance(instance["languageMap"], dict)
        and all(isinstance(v, str | list) for v in instance["languageMap"].values())
    ):
        raise bad_request(f"{name}: a languageMap maps language tags to strings")


def check_geometry(name: str, value: object) -> None:
    """A GeoJSON geometry (RFC 7946) with numbers where coordinates go."""
    if not isinstance(value, dict) or value.get("type") not in GEOMETRY_TYPES:
        raise bad_request(f"{name}: a GeoProperty's value must be a GeoJSON geometry")
    if value["type"] == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list):
            raise bad_request(f"{name}: a GeometryCollection needs geometries")
        for member in members:
            check_geometry(name, member)
        return
    depth = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}
    if not _coordinates(value.get("coordinates"), depth[value["type"]]):
        raise bad_request(f"{name}: the coordinates of a {value['type']} are malformed / 座標の形が違います")


def _coordinates(value: object, depth: int) -> bool:
    if depth == 0:
        return (
            isinstance(value, list)
            and 2 <= len(value) <= 3
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
            and -180 <= value[0] <= 180
            and -90 <= value[1] <= 90
        )
    return isinstance(value, list) and len(value) > 0 and all(_coordinates(v, depth - 1) for v in value)


def render_entity(
    entity: Entity,
    context: ActiveContext,
    *,
    key_values: bool = False,
    sys_attrs: bool = False,
    attributes: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The entity as a client reads it: names compacted with its context, normalized or keyValues form,
    only the expanded attribute names asked for (None: all), system times only if asked."""
    types = [context.compact(name) for name in entity.types]
    body: dict[str, Any] = {"id": entity.id, "type": types[0] if len(types) == 1 else types}
    if entity.scope is not None:
        body["scope"] = entity.scope[0] if len(entity.scope) == 1 else entity.scope
    if sys_attrs and not key_values:
        body["createdAt"], body["modifiedAt"] = entity.created_at, entity.modified_at
    for name, instances in entity.attributes.items():
        if attributes is not None and name not in attributes:
            continue
        shown = [_render_instance(i, context, key_values=key_values, sys_attrs=sys_attrs) for i in instances]
        body[context.compact(name)] = shown[0] if len(shown) == 1 else shown
    return body


def _render_instance(instance: dict[str, Any], context: ActiveContext, *, key_values: bool, sys_attrs: bool) -> Any:
    if key_values:
        return instance[MAIN_MEMBER[instance["type"]]]
    shown: dict[str, Any] = {}
    for member, value in instance.items():
        if member in SYSTEM_MEMBERS:
            if sys_attrs:
                shown[member] = value
        elif member in INSTANCE_MEMBERS or member in _NOTIFIED_MEMBERS:
            shown[member] = value
        else:
            rendered = [_render_instance(i, context, key_values=False, sys_attrs=sys_attrs) for i in value]
            shown[context.compact(member)] = rendered[0] if len(rendered) == 1 else rendered
    return shown

"""An entity as a notification carries it: normalized, keyValues or concise, compacted with the subscription's
@context; a deleted entity as its id, type and deletedAt."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from machimori.hub.entities import MAIN_MEMBER, PREVIOUS_MEMBER, Entity, render_entity
from machimori.hub.jsonld import ActiveContext
from machimori.hub.subscriptions import Subscription

if TYPE_CHECKING:
    from machimori.hub.outbox import Pending

# The attribute type each main member implies in the concise form (ETSI GS CIM 009 §4.5.2).
_IMPLIED = {
    "value": "Property",
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}


def render_notified(
    entity: Entity, subscription: Subscription, context: ActiveContext, change: Pending
) -> dict[str, Any]:
    """The entity (already filtered and cut to the attributes asked for) in the subscription's format."""
    if change.after is None:
        types = [context.compact(name) for name in entity.types]
        deleted = change.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        shown: dict[str, Any] = {"id": entity.id, "type": types[0] if len(types) == 1 else types, "deletedAt": deleted}
        if entity.attributes:  # showChanges: what the deleted entity's attributes were
            rendered = render_entity(entity, context, key_values=False, sys_attrs=False)
            shown.update((k, v) for k, v in rendered.items() if k not in ("id", "type", "scope"))
        return shown
    key_values = subscription.format == "keyValues"
    body = render_entity(entity, context, key_values=key_values, sys_attrs=subscription.sys_attrs)
    if subscription.format != "concise":
        return body
    return {
        name: value if name in ("id", "type", "scope", "createdAt", "modifiedAt") else concise(value)
        for name, value in body.items()
    }


NULL = "urn:ngsi-ld:null"


def with_changes(after: Entity, before: Entity | None, *, previous: bool) -> Entity:
    """The entity as a notification of a change shows it: each attribute instance the change deleted is there
    as deleted (urn:ngsi-ld:null), and with `previous` (showChanges) each changed or deleted instance carries
    what it was (previousValue, previousObject, previousLanguageMap, …). `before` must already be filtered for
    the subscriber, so nothing it may not see is ever shown."""
    if before is None:
        return after
    attributes: dict[str, list[dict[str, Any]]] = {}
    for name, instances in after.attributes.items():
        earlier = {instance.get("datasetId"): instance for instance in before.attributes.get(name, [])}
        shown = []
        for instance in instances:
            kind = instance.get("type", "")
            old = earlier.get(instance.get("datasetId"))
            main = MAIN_MEMBER.get(kind)
            changed = (
                main is not None and old is not None and old.get("type") == kind and old.get(main) != instance.get(main)
            )
            if previous and changed and main is not None and old is not None:
                instance = {**instance, PREVIOUS_MEMBER[kind]: old.get(main)}
            shown.append(instance)
        attributes[name] = shown
    for name, instances in before.attributes.items():
        remaining = {instance.get("datasetId") for instance in after.attributes.get(name, [])}
        gone = [
            _deleted(instance, previous)
            for instance in instances
            if instance.get("type") in MAIN_MEMBER and instance.get("datasetId") not in remaining
        ]
        if gone:
            attributes[name] = [*attributes.get(name, []), *gone]
    return replace(after, attributes={name: shown for name, shown in attributes.items() if shown})


def with_previous(after: Entity, before: Entity | None) -> Entity:
    """showChanges: the changed and deleted attribute instances with what they were (see with_changes)."""
    return with_changes(after, before, previous=True)


def _deleted(instance: dict[str, Any], previous: bool) -> dict[str, Any]:
    kind = instance["type"]
    main = MAIN_MEMBER[kind]
    shown = {"type": kind, main: {"@none": NULL} if kind == "LanguageProperty" else NULL}
    if previous:
        shown[PREVIOUS_MEMBER[kind]] = instance.get(main)
    if "datasetId" in instance:
        shown["datasetId"] = instance["datasetId"]
    return shown


def concise(value: Any) -> Any:
    """A normalized attribute (or list of instances) in the concise form: implied types dropped, a bare value
    where nothing else is said."""
    if isinstance(value, list):
        return [concise(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    shown = {k: v for k, v in value.items() if k != "type"}
    main = next((member for member in _IMPLIED if member in shown), None)
    geo = kind == "GeoProperty"
    if main is None or (_IMPLIED[main] != kind and not geo):
        return value  # not an attribute instance this form can shorten
    shown = {
        k: concise(v) if isinstance(v, dict) and "type" in v and k not in _IMPLIED else v for k, v in shown.items()
    }
    if geo:
        return shown["value"] if len(shown) == 1 else shown
    if main == "value" and len(shown) == 1 and not isinstance(shown["value"], dict):
        return shown["value"]
    return shown

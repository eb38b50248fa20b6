"""Changes to a stored entity (ETSI GS CIM 009 §5.6): replace, merge, append, update, and one attribute at a time.

Pure functions: each takes the stored entity and a request's fragment (names as the client wrote them,
with its active @context) and returns a new entity, never touching the one given. Fragments are checked
by `parse_entity`, so a fault is BadRequestData as on create. Instances are matched by `datasetId` (none:
the default instance). `urn:ngsi-ld:null` deletes: an attribute, an instance, a sub-attribute or the scope.
An instance that is overwritten keeps its createdAt; whatever changes gets modifiedAt = the request time,
and so does the entity.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from machimori.hub.entities import (
    CORE_MEMBERS,
    INSTANCE_MEMBERS,
    MAIN_MEMBER,
    SYSTEM_MEMBERS,
    Entity,
    is_uri,
    parse_entity,
)
from machimori.hub.errors import bad_request, not_found
from machimori.hub.jsonld import ActiveContext

NULL = "urn:ngsi-ld:null"
SCOPE = "scope"
Instance = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """The entity after a change, which attributes (expanded names, or 'scope') were updated and which were
    not, each with the reason why not."""

    entity: Entity
    updated: list[str] = field(default_factory=list)
    not_updated: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.updated)


@dataclass
class _Part:
    """One attribute of a fragment: its name as given, the instances to write and the datasetIds to delete."""

    name: str
    expanded: str
    instances: list[Any] = field(default_factory=list)
    deletions: list[str | None] = field(default_factory=list)


@dataclass
class _Fragment:
    """A request's fragment: types to add, scope (None: not given, []: delete), attributes."""

    types: list[str] | None
    scope: list[str] | None
    parts: list[_Part]


def is_null(value: object) -> bool:
    """Whether an attribute (or one instance of it) is the NGSI-LD null that deletes it."""
    if value == NULL:
        return True
    if not isinstance(value, dict):
        return False
    for member in MAIN_MEMBER.values():
        if member in value:
            given = value[member]
            return bool(given == NULL or given == [NULL] or (member == "languageMap" and given == {"@none": NULL}))
    return False


def dataset_of(instance: Any) -> str | None:
    """The datasetId of an instance as given (None: the default instance)."""
    dataset = instance.get("datasetId") if isinstance(instance, dict) else None
    if dataset is not None and not is_uri(dataset):
        raise bad_request(f"datasetId must be a URI, got {dataset!r} / datasetId は URI です")
    return dataset


def replace_entity(stored: Entity, payload: object, context: ActiveContext, *, now: str) -> Entity:
    """The entity a replacement (§5.6.18) makes: the body alone, with the stored entity's id and createdAt."""
    body = _object(payload, "an entity")
    _same_id(stored, body)
    replaced = parse_entity({**body, "id": stored.id}, context, now=now)
    replaced.created_at = stored.created_at
    return replaced


def merge_entity(stored: Entity, payload: object, context: ActiveContext, *, now: str) -> Entity:
    """The entity a merge (§5.6.17) makes: types added, scope replaced, each instance's members merged into
    the stored instance with the same datasetId (or added), null deleting."""
    fragment = _read(stored, payload, context)
    entity = _copy(stored)
    _merge_types(entity, fragment.types)
    if fragment.scope is not None:
        entity.scope = fragment.scope or None
    for part in fragment.parts:
        held = entity.attributes.get(part.expanded, [])
        _delete_instances(entity, part.expanded, part.deletions)
        filled = [_filled(part.name, raw, _match(held, dataset_of(raw)), context) for raw in part.instances]
        for instance in _parsed(stored, part.name, filled, context, now):
            _put(entity, part.expanded, instance, now)
    entity.modified_at = now
    return entity


def append_attributes(
    stored: Entity, payload: object, context: ActiveContext, *, now: str, overwrite: bool = True
) -> Outcome:
    """Append attributes (§5.6.3): new attributes and instances added; an existing instance replaced
    unless `overwrite` is False (then reported as not updated); types added; scope replaced (or added to)."""
    fragment = _read(stored, payload, context)
    entity = _copy(stored)
    updated: list[str] = []
    refused: list[tuple[str, str]] = []
    _merge_types(entity, fragment.types)
    if fragment.scope is not None:
        entity.scope = sorted({*(entity.scope or []), *fragment.scope}) if not overwrite else (fragment.scope or None)
        updated.append(SCOPE)
    for part in fragment.parts:
        held = entity.attributes.get(part.expanded, [])
        if not overwrite and any(_match(held, dataset) is not None for dataset in part.deletions):
            refused.append((part.expanded, "noOverwrite: the attribute exists / 既存の属性は上書きしません"))
            continue
        _delete_instances(entity, part.expanded, part.deletions)
        instances = _parsed(stored, part.name, part.instances, context, now)
        clashes = [i for i in instances if _match(held, i.get("datasetId")) is not None]
        if not overwrite and clashes:
            refused.append((part.expanded, "noOverwrite: the attribute exists / 既存の属性は上書きしません"))
            continue
        for instance in instances:
            _put(entity, part.expanded, instance, now)
        updated.append(part.expanded)
    return _outcome(stored, entity, updated, refused, now, types_added=fragment.types)


def update_attributes(stored: Entity, payload: object, context: ActiveContext, *, now: str) -> Outcome:
    """Update attributes (§5.6.2): only instances that exist (same datasetId) are replaced; any other
    attribute is reported as not updated; types added; scope replaced if the entity has one."""
    fragment = _read(stored, payload, context)
    entity = _copy(stored)
    updated: list[str] = []
    refused: list[tuple[str, str]] = []
    _merge_types(entity, fragment.types)
    if fragment.scope is not None:
        if entity.scope is None:
            refused.append((SCOPE, "the entity has no scope / scope がありません"))
        else:
            entity.scope = fragment.scope or None
            updated.append(SCOPE)
    for part in fragment.parts:
        held = entity.attributes.get(part.expanded, [])
        instances = _parsed(stored, part.name, part.instances, context, now)
        wanted = [*part.deletions, *(i.get("datasetId") for i in instances)]
        missing = [dataset for dataset in wanted if _match(held, dataset) is None]
        if missing:
            refused.append((part.expanded, _missing_reason(missing[0])))
            continue
        _delete_instances(entity, part.expanded, part.deletions)
        for instance in instances:
            _put(entity, part.expanded, instance, now)
        updated.append(part.expanded)
    return _outcome(stored, entity, updated, refused, now, types_added=fragment.types)


def update_attribute(
    stored: Entity, name: str, expanded: str, payload: object, context: ActiveContext, *, now: str
) -> Entity:
    """Partial attribute update (§5.6.4): the members given merged into the instance with the given
    datasetId (or the default one); ResourceNotFound if there is none; null deletes the instance."""
    body = _object(payload, "an attribute fragment")
    if not body:
        raise bad_request("the fragment is empty / 更新する内容がありません")
    held = _existing(stored, name, expanded)
    dataset = dataset_of(body)
    current = _match(held, dataset)
    if current is None:
        raise not_found(_missing_reason(dataset))
    entity = _copy(stored)
    if is_null(body):
        _delete_instances(entity, expanded, [dataset])
    else:
        if "type" in body and body["type"] != current["type"]:
            raise bad_request(
                f"{name}: type {body['type']!r} does not match {current['type']!r} / 属性の型が一致しません"
            )
        (instance,) = _parsed(stored, name, [_filled(name, body, current, context)], context, now)
        _put(entity, expanded, instance, now)
    entity.modified_at = now
    return entity


def replace_attribute(
    stored: Entity, name: str, expanded: str, payload: object, context: ActiveContext, *, now: str
) -> Entity:
    """Replace an attribute (§5.6.19): the instance with the fragment's datasetId (or the default one)
    becomes the fragment; ResourceNotFound if the entity has no such instance."""
    body = _object(payload, "an attribute")
    held = _existing(stored, name, expanded)
    dataset = dataset_of(body)
    if _match(held, dataset) is None:
        raise not_found(_missing_reason(dataset))
    entity = _copy(stored)
    (instance,) = _parsed(stored, name, [body], context, now)
    _put(entity, expanded, instance, now)
    entity.modified_at = now
    return entity


def delete_attribute(
    stored: Entity, name: str, expanded: str, *, dataset: str | None = None, every: bool = False, now: str
) -> Entity:
    """Delete an attribute (§5.6.5): the instance with `dataset` (None: the default one), or every
    instance; 'scope' deletes the scope; ResourceNotFound if there is nothing to delete."""
    entity = _copy(stored)
    if name == SCOPE:
        if entity.scope is None:
            raise not_found("the entity has no scope / scope がありません")
        entity.scope = None
    else:
        held = _existing(stored, name, expanded)
        if every:
            del entity.attributes[expanded]
        else:
            if dataset is not None and not is_uri(dataset):
                raise bad_request(f"datasetId must be a URI, got {dataset!r} / datasetId は URI です")
            if _match(held, dataset) is None:
                raise not_found(_missing_reason(dataset))
            _delete_instances(entity, expanded, [dataset])
    entity.modified_at = now
    return entity


# ----------------------------------------------------------------------------------------------------------


def _object(payload: object, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise bad_request(f"the body must be {what} as a JSON object / 本文は JSON オブジェクトです")
    return payload


def _same_id(stored: Entity, body: dict[str, Any]) -> None:
    given = body.get("id", body.get("@id"))
    if given is not None and given != stored.id:
        raise bad_request(f"the body's id {given!r} is not the entity's {stored.id} / id が一致しません")


def _read(stored: Entity, payload: object, context: ActiveContext) -> _Fragment:
    """A fragment split into what is written and what is deleted; names and types checked by parse_entity."""
    body = _object(payload, "an entity fragment")
    _same_id(stored, body)
    given_types = body.get("type", body.get("@type"))
    checked = parse_entity({"id": stored.id, "type": given_types if given_types is not None else "_"}, context, now="")
    types = checked.types if given_types is not None else None
    scope: list[str] | None = None
    if SCOPE in body:
        scope = (
            []
            if body[SCOPE] in (NULL, [NULL])
            else parse_entity({"id": stored.id, "type": "_", SCOPE: body[SCOPE]}, context, now="").scope
        )
    parts = []
    for name, value in body.items():
        if name in CORE_MEMBERS or name in ("@id", "@type"):
            continue
        part = _Part(name, context.expand(name))
        items = value if isinstance(value, list) and value and all(isinstance(v, dict) for v in value) else [value]
        for item in items:
            if is_null(item):
                part.deletions.append(dataset_of(item))
            else:
                part.instances.append(item)
        parts.append(part)
    return _Fragment(types, scope, parts)


def _parsed(stored: Entity, name: str, raws: list[Any], context: ActiveContext, now: str) -> list[Instance]:
    """Instances checked as on create (a one-attribute entity through parse_entity)."""
    if not raws:
        return []
    entity = parse_entity({"id": stored.id, "type": "_", name: raws if len(raws) > 1 else raws[0]}, context, now=now)
    (instances,) = entity.attributes.values()
    return instances


def _filled(name: str, raw: Any, current: Instance | None, context: ActiveContext) -> Any:
    """The instance a merge writes: the stored one's members (none if the attribute type changes) with the
    fragment's on top; a null sub-attribute removed."""
    if current is None or not isinstance(raw, dict):
        return raw
    kind = raw.get("type", current["type"])
    if kind != current["type"]:
        return raw
    merged: dict[str, Any] = {k: v for k, v in current.items() if k not in SYSTEM_MEMBERS}
    for member, value in raw.items():
        if member in INSTANCE_MEMBERS:
            merged[member] = value
            continue
        expanded = context.expand(member)
        merged.pop(expanded, None)
        if not is_null(value):
            merged[member] = value
    merged["type"] = kind
    return merged


def _put(entity: Entity, expanded: str, instance: Instance, now: str) -> None:
    """Write an instance over the one with its datasetId (keeping that one's createdAt and untouched
    sub-attributes' times) or beside the others."""
    instances = entity.attributes.setdefault(expanded, [])
    dataset = instance.get("datasetId")
    for index, old in enumerate(instances):
        if old.get("datasetId") == dataset:
            instance["createdAt"] = old.get("createdAt", now)
            for member, value in instance.items():
                if member not in INSTANCE_MEMBERS and old.get(member) == _without_times(value, old.get(member)):
                    instance[member] = old[member]
            instances[index] = instance
            return
    instances.append(instance)


def _without_times(value: Any, old: Any) -> Any:
    """value with the system times of old (so an unchanged sub-attribute compares equal to old)."""
    if not isinstance(value, list) or not isinstance(old, list) or len(value) != len(old):
        return value
    kept = []
    for new_instance, old_instance in zip(value, old, strict=True):
        if not isinstance(new_instance, dict) or not isinstance(old_instance, dict):
            return value
        kept.append({**new_instance, **{k: old_instance[k] for k in SYSTEM_MEMBERS if k in old_instance}})
    return kept


def _delete_instances(entity: Entity, expanded: str, datasets: Iterable[str | None]) -> None:
    doomed = set(datasets)
    if not doomed or expanded not in entity.attributes:
        return
    kept = [i for i in entity.attributes[expanded] if i.get("datasetId") not in doomed]
    if kept:
        entity.attributes[expanded] = kept
    else:
        del entity.attributes[expanded]


def _match(instances: list[Instance], dataset: str | None) -> Instance | None:
    return next((i for i in instances if i.get("datasetId") == dataset), None)


def _existing(stored: Entity, name: str, expanded: str) -> list[Instance]:
    if name in CORE_MEMBERS or name.startswith("@"):
        raise bad_request(f"{name!r} is not an attribute / {name} は属性ではありません")
    held = stored.attributes.get(expanded)
    if not held:
        raise not_found(f"the entity has no attribute {name} / 属性 {name} がありません")
    return held


def _missing_reason(dataset: str | None) -> str:
    if dataset is None:
        return "no default instance (without datasetId) / datasetId のない既定のインスタンスがありません"
    return f"no instance with datasetId {dataset} / datasetId {dataset} のインスタンスがありません"


def _merge_types(entity: Entity, types: list[str] | None) -> None:
    if types:
        entity.types = sorted({*entity.types, *types})


def _copy(entity: Entity) -> Entity:
    return Entity(
        entity.id,
        list(entity.types),
        copy.deepcopy(entity.attributes),
        list(entity.scope) if entity.scope is not None else None,
        entity.created_at,
        entity.modified_at,
    )


def _outcome(
    stored: Entity,
    entity: Entity,
    updated: list[str],
    refused: list[tuple[str, str]],
    now: str,
    *,
    types_added: list[str] | None,
) -> Outcome:
    if updated or (types_added and entity.types != stored.types):
        entity.modified_at = now
    return Outcome(entity, updated, refused)

"""How an entity is shown (ETSI GS CIM 009 §4.5, §4.21, §6.3.7): normalized, concise or keyValues; with
system times or not; only the members picked, or all but those omitted (`attrs` is the older `pick` of
attributes); a LanguageProperty in one language.

`parse_representation` reads the query parameters and refuses what the specification refuses (an unknown
format or option, a member both picked and omitted, pick or omit beside attrs, a name with characters
names may not hold); `represent` applies it to an entity the caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from machimori.hub.entities import MAIN_MEMBER, Entity, is_uri, render_entity
from machimori.hub.errors import bad_request, invalid_request
from machimori.hub.jsonld import ActiveContext

FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues", "concise": "concise"}
OPTIONS = frozenset({*FORMATS, "sysAttrs"})
ENTITY_MEMBERS = frozenset({"id", "type", "scope"})
MAIN_MEMBERS = frozenset(MAIN_MEMBER.values())
_FORBIDDEN = frozenset("<>\"'=;(){}[]")


@dataclass(frozen=True)
class Representation:
    """What to show of an entity and in which form."""

    form: str = "normalized"
    sys_attrs: bool = False
    pick: frozenset[str] | None = None
    omit: frozenset[str] = frozenset()
    lang: str | None = None
    datasets: frozenset[str] | None = None  # datasetIds of the instances to show ("@none": the default one)

    @property
    def attributes(self) -> frozenset[str] | None:
        """The (expanded) attributes asked for, None for all."""
        return None if self.pick is None else self.pick - ENTITY_MEMBERS


def checked_names(text: str, name: str, context: ActiveContext) -> frozenset[str]:
    """Comma-separated names, expanded (id, type and scope kept as they are); BadRequestData if one is invalid."""
    names = text.split(",")
    if not all(names) or len(names) > 100:
        raise bad_request(f"{name}: a comma-separated list of names / {name} は名前の並びです")
    for item in names:
        if _FORBIDDEN & set(item) or any(c.isspace() for c in item) or len(item) > 512:
            raise bad_request(f"{name}: {item[:80]!r} is not a valid name / 名前に使えない文字があります")
    return frozenset(item if item in ENTITY_MEMBERS else context.expand(item) for item in names)


def parse_representation(
    context: ActiveContext,
    *,
    format: str | None = None,
    options: str | None = None,
    attrs: str | None = None,
    pick: str | None = None,
    omit: str | None = None,
    lang: str | None = None,
    dataset_id: str | None = None,
) -> Representation:
    """The representation the parameters ask for; BadRequestData if they contradict the specification."""
    flags = [flag for flag in (options or "").split(",") if flag]
    unknown = [flag for flag in flags if flag not in OPTIONS]
    if unknown:
        raise invalid_request(
            f"options: {', '.join(unknown)[:100]} unknown (use {', '.join(sorted(OPTIONS))}) / 未知の options です"
        )
    if format is not None and format not in FORMATS:
        raise invalid_request(
            f"format: {format[:40]!r} unknown (use normalized, concise, keyValues or simplified) / 未知の format です"
        )
    forms = {FORMATS[flag] for flag in flags if flag in FORMATS}
    if format is not None:
        forms = {FORMATS[format]}
    if len(forms) > 1:
        raise bad_request("options: only one of keyValues, concise and normalized / 形式は一つだけです")
    if attrs and (pick or omit):
        raise bad_request("attrs cannot be given with pick or omit / attrs と pick・omit は同時に使えません")
    picked = checked_names(pick, "pick", context) if pick else None
    if attrs:  # attributes only: the entity's own members stay
        picked = checked_names(attrs, "attrs", context) | ENTITY_MEMBERS
    omitted = checked_names(omit, "omit", context) if omit else frozenset()
    if picked is not None and picked & omitted:
        raise bad_request("a member cannot be both picked and omitted / pick と omit に同じ名前があります")
    if lang is not None and (not lang or len(lang) > 64 or _FORBIDDEN & set(lang)):
        raise bad_request("lang: a language tag or * / lang は言語タグです")
    datasets = None
    if dataset_id is not None:
        datasets = frozenset(item for item in dataset_id.split(",") if item)
        if not datasets or len(datasets) > 100 or not all(item == "@none" or is_uri(item) for item in datasets):
            raise bad_request("datasetId: URIs or @none, comma-separated / datasetId は URI か @none です")
    form = forms.pop() if forms else "normalized"
    return Representation(form, "sysAttrs" in flags, picked, omitted, lang, datasets)


def represent(entity: Entity, context: ActiveContext, representation: Representation) -> dict[str, Any]:
    """The entity as the representation shows it."""
    kept = {
        name: instances
        for name, instances in entity.attributes.items()
        if name not in representation.omit and (representation.attributes is None or name in representation.attributes)
    }
    if representation.datasets is not None:
        wanted = representation.datasets
        chosen = {
            name: [i for i in instances if i.get("datasetId", "@none") in wanted] for name, instances in kept.items()
        }
        kept = {name: instances for name, instances in chosen.items() if instances}
    shown = Entity(entity.id, entity.types, kept, entity.scope, entity.created_at, entity.modified_at)
    if representation.lang is not None:
        shown.attributes = {name: [_in_language(i, representation.lang) for i in v] for name, v in kept.items()}
    body = render_entity(
        shown, context, key_values=representation.form == "keyValues", sys_attrs=representation.sys_attrs
    )
    if representation.form == "concise":
        body = {name: _concise(value) if name not in ENTITY_MEMBERS else value for name, value in body.items()}
    for member in ENTITY_MEMBERS:
        if member in representation.omit or (representation.pick is not None and member not in representation.pick):
            body.pop(member, None)
    return body


def _in_language(instance: dict[str, Any], lang: str) -> dict[str, Any]:
    """A LanguageProperty as a Property in the language asked for (or the first there is)."""
    if instance.get("type") != "LanguageProperty" or not isinstance(instance.get("languageMap"), dict):
        return instance
    languages: dict[str, Any] = instance["languageMap"]
    chosen = next((tag for tag in lang.split(",") if tag in languages), None)
    if chosen is None:
        chosen = "@none" if "@none" in languages else next(iter(languages), None)
    if chosen is None:
        return instance
    changed = {k: v for k, v in instance.items() if k != "languageMap"}
    changed.update(type="Property", value=languages[chosen])
    if chosen != "@none":
        changed["lang"] = chosen
    return changed


def _concise(value: Any) -> Any:
    """An attribute in concise form: the type left out where the members imply it, a bare value if alone."""
    if isinstance(value, list):
        return [_concise(item) for item in value]
    if not isinstance(value, dict) or "type" not in value:
        return value
    short = {
        k: (_concise(v) if isinstance(v, dict | list) and k not in MAIN_MEMBERS else v)
        for k, v in value.items()
        if k != "type"
    }
    if value["type"] in ("Property", "GeoProperty") and set(short) == {"value"}:
        return short["value"]
    return short

"""The query parameters that shape an answer (format, options, attrs, pick, omit, lang, geometryProperty,
datasetId, join, joinLevel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from machimori.hub.caller import Caller
from machimori.hub.entities import Entity
from machimori.hub.jsonld import ActiveContext
from machimori.hub.linked import Visible, parse_join
from machimori.hub.representation import Representation, parse_representation

Text = Annotated[str | None, Query(max_length=4096)]


@dataclass(frozen=True)
class ShapeParameters:
    """The shaping parameters as given."""

    format: str | None
    options: str | None
    attrs: str | None
    pick: str | None
    omit: str | None
    lang: str | None
    geometry: str
    dataset_id: str | None = None
    join: str | None = None
    join_level: int | None = None

    def joined(self) -> tuple[str | None, int]:
        """The linked-entity join asked for (None, inline or flat) and its depth."""
        return parse_join(self.join, self.join_level)

    def parse(self, context: ActiveContext) -> Representation:
        return parse_representation(
            context,
            format=self.format,
            options=self.options,
            attrs=self.attrs,
            pick=self.pick,
            omit=self.omit,
            lang=self.lang,
            dataset_id=self.dataset_id,
        )


def shape_parameters(
    format: Text = None,
    options: Text = None,
    attrs: Text = None,
    pick: Text = None,
    omit: Text = None,
    lang: Text = None,
    geometryProperty: Annotated[str, Query(max_length=512)] = "location",
    datasetId: Text = None,
    join: Annotated[str | None, Query(max_length=16)] = None,
    joinLevel: int | None = None,
) -> ShapeParameters:
    """A dependency: the shaping parameters."""
    return ShapeParameters(format, options, attrs, pick, omit, lang, geometryProperty, datasetId, join, joinLevel)


def linker(caller: Caller) -> Visible:
    """The entities with some ids as the caller may see them (for joins): hidden or missing ones left out."""

    def visible(ids: list[str]) -> list[Entity]:
        stored = caller.hub.store.get_many(caller.tenant, ids)
        shown = caller.visible([stored[i] for i in ids if i in stored], "join")
        return [entity for entity in shown if entity is not None]

    return visible


Shape = Annotated[ShapeParameters, Depends(shape_parameters)]

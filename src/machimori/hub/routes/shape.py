"""The query parameters that shape an answer (format, options, attrs, pick, omit, lang, geometryProperty)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from machimori.hub.jsonld import ActiveContext
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

    def parse(self, context: ActiveContext) -> Representation:
        return parse_representation(
            context,
            format=self.format,
            options=self.options,
            attrs=self.attrs,
            pick=self.pick,
            omit=self.omit,
            lang=self.lang,
        )


def shape_parameters(
    format: Text = None,
    options: Text = None,
    attrs: Text = None,
    pick: Text = None,
    omit: Text = None,
    lang: Text = None,
    geometryProperty: Annotated[str, Query(max_length=512)] = "location",
) -> ShapeParameters:
    """A dependency: the shaping parameters."""
    return ShapeParameters(format, options, attrs, pick, omit, lang, geometryProperty)


Shape = Annotated[ShapeParameters, Depends(shape_parameters)]

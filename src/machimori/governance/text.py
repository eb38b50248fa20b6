"""Bilingual text, the shared vocabulary of the governance plane."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Lang = Literal["ja", "en"]
CategoryId = Literal["governance", "service", "city-os", "asset"]
DataTypeId = Literal["open", "limited", "closed"]

CATEGORY_IDS: tuple[CategoryId, ...] = ("governance", "service", "city-os", "asset")
CATEGORY_CODES: dict[CategoryId, str] = {"governance": "G", "service": "S", "city-os": "O", "asset": "A"}


class Strict(BaseModel):
    """Base for input models: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Text(Strict):
    """The same text in Japanese and English."""

    ja: str
    en: str

    def __call__(self, lang: Lang) -> str:
        """The text in ``lang``."""
        return self.ja if lang == "ja" else self.en

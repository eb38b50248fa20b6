"""Bilingual text, the shared vocabulary of the governance plane."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictInt

Lang = Literal["ja", "en"]
CategoryId = Literal["governance", "service", "city-os", "asset"]
DataTypeId = Literal["open", "limited", "closed"]

CATEGORY_IDS: tuple[CategoryId, ...] = ("governance", "service", "city-os", "asset")
CATEGORY_CODES: dict[CategoryId, str] = {"governance": "G", "service": "S", "city-os": "O", "asset": "A"}


def _not_a_number(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a date is written YYYY-MM-DD / 日付は YYYY-MM-DD で書きます")
    return value


Date = Annotated[dt.date, BeforeValidator(_not_a_number)]
"""A date written as a date (YYYY-MM-DD), never a number read as one."""
Flag = StrictBool
"""true or false, never "yes", "off" or 1."""
Level = StrictInt
"""A whole number written as one."""


class Strict(BaseModel):
    """Base for input models: unknown keys are errors; flags, numbers and dates are typed with Flag, Level, Date."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Text(Strict):
    """The same text in Japanese and English."""

    ja: str
    en: str

    def __call__(self, lang: Lang) -> str:
        """The text in ``lang``."""
        return self.ja if lang == "ja" else self.en

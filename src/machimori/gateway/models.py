"""Device models: what each kind of device may report (names, types, ranges, units), the Smart Data Models
entity its readings update, the vendor's minimum firmware and its factory-default logins."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from machimori import yamlfile
from machimori.diagnostics import InputError
from machimori.validation import validate_document

BUILT_IN = "device-models.yaml"
_VERSION = re.compile(r"[A-Za-z_-]*([0-9]+(?:\.[0-9]+)*)")  # a prefix of letters (v, FW), then 1.2.3


class Measurement(BaseModel):
    """One value a device reports: its type, its physical range and its UN/CEFACT unit code."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["number", "integer", "text", "boolean"] = "number"
    min: float | None = None
    max: float | None = None
    unit: str | None = Field(None, description="UN/CEFACT common code, e.g. CEL, MTR, GQ, 2N")
    attribute: str | None = Field(None, description="the NGSI-LD attribute (an expanded URI); default: beside the type")
    choices: list[str] | None = Field(None, description="the texts allowed, for type text")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> Measurement:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max / min が max より大きい")
        return self


class DefaultLogin(BaseModel):
    """A factory-default management login the vendor ships."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    username: str
    password: str


class DeviceModel(BaseModel):
    """A kind of device a vendor makes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    vendor: str | None = Field(None, description="the device-vendor stakeholder; None for a generic model")
    name: dict[Literal["ja", "en"], str]
    entity_type: str = Field(description="the Smart Data Models type (expanded URI) its readings update")
    firmware_minimum: str | None = None
    key_lifetime_days: int = Field(365, ge=1, description="keys older than this are reported by audits")
    max_messages_per_minute: int = Field(120, ge=1, description="more from one device is refused as a flood")
    default_logins: list[DefaultLogin] = Field(default_factory=list)
    measurements: dict[str, Measurement] = Field(min_length=1)

    def attribute_of(self, name: str) -> str:
        """The expanded NGSI-LD attribute a measurement updates."""
        given = self.measurements[name].attribute
        return given or self.entity_type.rsplit("/", 1)[0] + "/" + name


class DeviceModels(BaseModel):
    """A device models file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    models: list[DeviceModel]


def load_models(extra: Path | None = None) -> dict[str, DeviceModel]:
    """The built-in device models, then the operator's file (same id: the operator's wins)."""
    models = dict(_built_in())
    if extra is not None:
        document = yamlfile.load(extra)
        for model in validate_document(document, DeviceModels).models:
            models[model.id] = model
    return models


@functools.cache
def _built_in() -> tuple[tuple[str, DeviceModel], ...]:
    raw = resources.files(__package__).joinpath(BUILT_IN).read_bytes()
    document = yamlfile.parse(raw, BUILT_IN)
    return tuple((model.id, model) for model in validate_document(document, DeviceModels).models)


def version_tuple(version: str) -> tuple[int, ...]:
    """A dotted firmware version as numbers ('2.10.1' > '2.9'); InputError if it has no numbers.

    The numbers are the dotted run at the start, after a prefix of letters such as 'v' or 'FW'; a suffix
    ('-rc1', 'b3', '+build7') is not a number of the version, so '1.0-rc5' is not above '1.0.3'."""
    found = _VERSION.match(version.strip())
    if found is None or any(len(part) > 18 for part in found.group(1).split(".")):
        raise InputError.single("firmware", f"{version!r} is not a version / バージョンではありません")
    return tuple(int(part) for part in found.group(1).split("."))

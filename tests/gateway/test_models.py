"""Device models: the built-in file, an operator's file on top, its problems at file:line, firmware versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from machimori.diagnostics import InputError
from machimori.gateway.models import DeviceModel, Measurement, load_models, version_tuple

BUILT_IN_IDS = {"air-quality-sensor", "noise-sensor", "water-level-sensor", "weather-station"}

STREET_LIGHT = """\
models:
  - id: street-light
    vendor: lumen-corp
    name: {ja: 街路灯, en: Street light}
    entity_type: https://smartdatamodels.org/dataModel.Streetlighting/Streetlight
    firmware_minimum: "4.2.0"
    key_lifetime_days: 90
    default_logins:
      - {username: admin, password: admin}
    measurements:
      powerState: {type: text, choices: ["on", "off"]}
      illuminance: {min: 0, max: 100000, unit: LUX, attribute: "https://example.org/lux"}
  - id: noise-sensor
    name: {en: Noise sensor (city variant)}
    entity_type: https://smartdatamodels.org/dataModel.Environment/NoiseLevelObserved
    max_messages_per_minute: 6
    measurements:
      LAeq: {min: 20, max: 130, unit: 2N}
"""


def write(tmp_path: Path, text: str, name: str = "models.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[tuple[str, int, str]]:
    with pytest.raises(InputError) as error:
        load_models(path)
    return [(p.file, p.line, p.message) for p in error.value.problems]


def test_built_in_models_load() -> None:
    models = load_models()
    assert set(models) == BUILT_IN_IDS
    air = models["air-quality-sensor"]
    assert air.entity_type == "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
    assert air.measurements["temperature"] == Measurement(min=-40, max=60, unit="CEL")
    assert air.vendor is None and air.firmware_minimum is None
    assert (air.key_lifetime_days, air.max_messages_per_minute) == (365, 120)
    for model in models.values():
        assert model.name["en"] and model.name["ja"]
        assert model.measurements
        for measurement in model.measurements.values():
            assert measurement.min is not None and measurement.max is not None
            assert measurement.min <= measurement.max
            assert measurement.unit


def test_operator_file_overrides_and_extends_by_id(tmp_path: Path) -> None:
    models = load_models(write(tmp_path, STREET_LIGHT))
    assert set(models) == BUILT_IN_IDS | {"street-light"}
    light = models["street-light"]
    assert light.vendor == "lumen-corp"
    assert light.firmware_minimum == "4.2.0"
    assert light.key_lifetime_days == 90
    assert [(d.username, d.password) for d in light.default_logins] == [("admin", "admin")]
    assert light.measurements["powerState"].choices == ["on", "off"]
    noise = models["noise-sensor"]
    assert noise.name == {"en": "Noise sensor (city variant)"}
    assert set(noise.measurements) == {"LAeq"}  # replaced whole, not merged
    assert noise.max_messages_per_minute == 6
    assert models["weather-station"] == load_models()["weather-station"]


def test_operator_file_does_not_change_the_built_ins_for_later_callers(tmp_path: Path) -> None:
    load_models(write(tmp_path, STREET_LIGHT))
    again = load_models()
    assert set(again) == BUILT_IN_IDS
    assert "LAmax" in again["noise-sensor"].measurements


def test_unknown_key_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
models:
  - id: street-light
    name: {en: Street light}
    entity_type: https://smartdatamodels.org/dataModel.Streetlighting/Streetlight
    colour: red
    measurements:
      powerState: {type: text}
""",
    )
    [(file, line, message)] = problems(path)
    assert (file, line) == (str(path), 5)
    assert "colour" in message


def test_unknown_measurement_key_is_reported_with_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
models:
  - id: street-light
    name: {en: Street light}
    entity_type: https://smartdatamodels.org/dataModel.Streetlighting/Streetlight
    measurements:
      illuminance:
        min: 0
        maximum: 10
""",
    )
    [(file, line, message)] = problems(path)
    assert (file, line) == (str(path), 8)
    assert "maximum" in message and "max" in message


def test_several_problems_each_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
models:
  - id: street-light
    name: {en: Street light}
    entity_type: https://smartdatamodels.org/dataModel.Streetlighting/Streetlight
    measurements:
      illuminance: {min: 100, max: 0, unit: LUX}
  - id: Bad_ID
    name: {en: x}
    entity_type: https://example.org/x/Thing
    measurements:
      a: {}
  - id: no-measurements
    name: {en: y}
    entity_type: https://example.org/x/Thing
    key_lifetime_days: 0
    measurements: {}
""",
    )
    found = problems(path)
    assert {file for file, _, _ in found} == {str(path)}
    lines = {line: message for _, line, message in found}
    assert "min is above max" in lines[6]
    assert "id" in lines[7]
    assert "key_lifetime_days" in lines[15]
    assert "measurements" in lines[16]


@pytest.mark.parametrize(
    "bad_id",
    [
        "Bad_ID",
        "-leading",
        "has space",
        "a" * 65,
        "'; DROP TABLE device_models;--",
        "../x",
        "abc\n",
        "abc\x00",
        "",
        "ｘ",
    ],
)
def test_bad_model_ids_are_refused(tmp_path: Path, bad_id: str) -> None:
    path = write(
        tmp_path,
        f"""\
models:
  - name: {{en: x}}
    entity_type: https://example.org/x/Thing
    id: {json.dumps(bad_id)}
    measurements:
      a: {{}}
""",
    )
    [(file, line, message)] = problems(path)
    assert (file, line) == (str(path), 4)
    assert "models.0.id" in message or "control character" in message  # NUL: refused by the YAML reader itself


def test_missing_required_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - id: thing\n    name: {en: x}\n    measurements:\n      a: {}\n")
    [(file, line, message)] = problems(path)
    assert file == str(path) and line == 2
    assert "entity_type" in message


def test_yaml_syntax_error_is_reported_at_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - id: ok\n    name: {en: x\n")
    [(file, line, message)] = problems(path)
    assert file == str(path) and line >= 3
    assert "YAML" in message


def test_missing_operator_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    [(file, _, message)] = problems(path)
    assert file == str(path) and "not found" in message


def test_min_above_max_is_refused_directly() -> None:
    with pytest.raises(ValidationError, match="min is above max"):
        Measurement(min=5, max=1)
    assert Measurement(min=1, max=1).max == 1


def test_attribute_of_defaults_beside_the_entity_type() -> None:
    air = load_models()["air-quality-sensor"]
    assert air.attribute_of("pm25") == "https://smartdatamodels.org/dataModel.Environment/pm25"


def test_attribute_of_explicit(tmp_path: Path) -> None:
    light = load_models(write(tmp_path, STREET_LIGHT))["street-light"]
    assert light.attribute_of("illuminance") == "https://example.org/lux"
    assert light.attribute_of("powerState") == "https://smartdatamodels.org/dataModel.Streetlighting/powerState"


def test_attribute_of_an_unknown_measurement_raises() -> None:
    with pytest.raises(KeyError):
        load_models()["air-quality-sensor"].attribute_of("radiation")


def test_models_are_frozen() -> None:
    air = load_models()["air-quality-sensor"]
    with pytest.raises(ValidationError):
        air.vendor = "mallory"  # type: ignore[misc]
    assert isinstance(air, DeviceModel)


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("2.10.1", (2, 10, 1)),
        ("2.9", (2, 9)),
        ("10", (10,)),
        (" 3.1 ", (3, 1)),
        ("v2.1", (2, 1)),
        ("FW1.2.3", (1, 2, 3)),
        ("1.0-rc1", (1, 0)),
        ("1.0.3+build.77", (1, 0, 3)),
        ("1.2a3", (1, 2)),  # was (1, 23): the digits of "2a3" run together
        ("2.0b10", (2, 0)),
        ("007.01", (7, 1)),
        ("1.²", (1,)),  # was a ValueError from int('²'), which the audit did not catch
    ],
)
def test_version_tuple(text: str, numbers: tuple[int, ...]) -> None:
    assert version_tuple(text) == numbers


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("2.9", "2.10.1"),
        ("2.9.9", "2.10"),
        ("1.9", "10.0"),
        ("1.0", "1.0.1"),
        ("1.0-rc1", "1.0.1"),
        ("1.0-rc5", "1.0.3"),  # was (1, 0, 5) > (1, 0, 3): a pre-release passed a later minimum
        ("1.2a3", "1.3"),  # was (1, 23) > (1, 3)
        ("v4.1.9", "4.2.0"),
    ],
)
def test_version_ordering(lower: str, higher: str) -> None:
    assert version_tuple(lower) < version_tuple(higher)


def test_a_pre_release_is_not_above_its_release() -> None:
    assert not version_tuple("1.0-rc1") > version_tuple("1.0")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "abc",
        "latest",
        "v",
        "-",
        ".",
        ".1",
        "x.y.z",
        "١.٢",
        "9" * 5000,  # was a ValueError (int() refuses over 4300 digits), which the audit did not catch
        "1." + "9" * 5000,
    ],
)
def test_garbage_versions_are_input_errors(garbage: str) -> None:
    with pytest.raises(InputError) as error:
        version_tuple(garbage)
    assert error.value.problems[0].file == "firmware"

"""Whatever a user writes, loading a model ends in a model or located problems, never a crash."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from machimori import yamlfile
from machimori.diagnostics import InputError
from machimori.governance.assessment import assess
from machimori.governance.catalog import Catalog
from machimori.governance.model.loader import check_model

from .conftest import AS_OF

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minatomachi" / "city.yaml"

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.text(max_size=12), st.sampled_from(["asset", "CPS.AC-4", "x"])
)
_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _example() -> dict[str, Any]:
    return YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8"))


def _load(data: Any, catalog: Catalog) -> None:
    buffer = io.StringIO()
    YAML().dump(data, buffer)
    try:
        model = check_model(yamlfile.parse(buffer.getvalue().encode(), "fuzz.yaml"), catalog)
    except InputError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml" and problem.message
        return
    assess(model, catalog, as_of=AS_OF)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    section=st.sampled_from(["city", "stakeholders", "components", "datasets", "flows", "services", "statuses"]),
    index=st.integers(0, 5),
    key=st.sampled_from(
        [
            "id",
            "kind",
            "parent",
            "owner",
            "from",
            "to",
            "dataset",
            "category",
            "status",
            "due",
            "accountable",
            "agreements",
            "name",
            "encrypted",
            "bogus",
        ]
    ),
    value=_value,
)
def test_one_wrong_value_anywhere(catalog: Catalog, section: str, index: int, key: str, value: Any) -> None:
    data = _example()
    target = data[section]
    if isinstance(target, list):
        target = target[index % len(target)]
    target[key] = value
    _load(data, catalog)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(["stakeholders", "components", "flows", "statuses"]), value=_value)
def test_a_section_replaced_by_anything(catalog: Catalog, section: str, value: Any) -> None:
    data = _example()
    data[section] = value
    _load(data, catalog)

"""Read a city model file and check that every reference in it resolves."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path

from machimori import yamlfile
from machimori.diagnostics import InputError, Problem
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import CityModel
from machimori.validation import did_you_mean, validate_document


def load_model(path: str | Path, catalog: Catalog) -> CityModel:
    """Load and check a city model; raise InputError listing every problem with file:line:column."""
    document = yamlfile.load(path)
    return check_model(document, catalog)


def check_model(document: yamlfile.Document, catalog: Catalog) -> CityModel:
    """Validate a parsed model document against the schema, its own references and the catalog."""
    model = validate_document(document, CityModel)
    problems = list(reference_problems(model, document, catalog))
    if problems:
        raise InputError(problems)
    return model


def reference_problems(model: CityModel, document: yamlfile.Document, catalog: Catalog) -> Iterator[Problem]:
    """Duplicate ids, references to unknown elements, and cycles in the delegation chain."""
    stakeholders = yield from _unique(document, "stakeholders", [s.id for s in model.stakeholders])
    components = yield from _unique(document, "components", [c.id for c in model.components])
    datasets = yield from _unique(document, "datasets", [d.id for d in model.datasets])
    yield from _unique(document, "flows", [f.id for f in model.flows])
    yield from _unique(document, "services", [s.id for s in model.services])

    def ref(loc: Sequence[str | int], value: str | None, known: set[str], what: str) -> Iterator[Problem]:
        if value is not None and value not in known:
            yield document.problem(loc, f"unknown {what} '{value}'{did_you_mean(value, known)} / 未定義の参照")

    yield from ref(["city", "promoter"], model.city.promoter, stakeholders, "stakeholder")
    for i, s in enumerate(model.stakeholders):
        yield from ref(["stakeholders", i, "parent"], s.parent, stakeholders, "stakeholder")
        for j, agreement in enumerate(s.agreements):
            yield from ref(["stakeholders", i, "agreements", j, "with"], agreement.with_, stakeholders, "stakeholder")
    for i, c in enumerate(model.components):
        for key in ("owner", "operator", "hosted_by"):
            yield from ref(["components", i, key], getattr(c, key), stakeholders, "stakeholder")
    for i, d in enumerate(model.datasets):
        yield from ref(["datasets", i, "owner"], d.owner, stakeholders, "stakeholder")
    for i, f in enumerate(model.flows):
        yield from ref(["flows", i, "from"], f.from_, components, "component")
        yield from ref(["flows", i, "to"], f.to, components, "component")
        yield from ref(["flows", i, "dataset"], f.dataset, datasets, "dataset")
    for i, sv in enumerate(model.services):
        yield from ref(["services", i, "provider"], sv.provider, stakeholders, "stakeholder")
        for j, c_id in enumerate(sv.components):
            yield from ref(["services", i, "components", j], c_id, components, "component")
        for j, d_id in enumerate(sv.datasets):
            yield from ref(["services", i, "datasets", j], d_id, datasets, "dataset")
    requirements = set(catalog.requirements)
    category_of = {c.id: c.category for c in model.components}
    for i, st in enumerate(model.statuses):
        yield from ref(["statuses", i, "requirement"], st.requirement, requirements, "requirement")
        yield from ref(["statuses", i, "component"], st.component, components, "component")
        if st.component and st.stakeholder:
            yield document.problem(
                ["statuses", i, "stakeholder"],
                "a status record names a component or a stakeholder, not both / 構成要素か関係者のどちらか一方を指定します",
            )
        requirement = catalog.requirements.get(st.requirement)
        category = category_of.get(st.component or "")
        if requirement and category and category not in requirement.categories:
            yield document.problem(
                ["statuses", i, "component"],
                f"{st.requirement} does not apply to {st.component} (a {category} component); it applies to "
                f"{', '.join(requirement.categories)} / この要件はこの構成要素に適用されません",
            )
        yield from ref(["statuses", i, "stakeholder"], st.stakeholder, stakeholders, "stakeholder")
        for role in ("responsible", "accountable", "consulted", "informed"):
            for j, who in enumerate(getattr(st, role)):
                yield from ref(["statuses", i, role, j], who, stakeholders, "stakeholder")
    yield from _delegation_cycles(model, document)


def _unique(document: yamlfile.Document, section: str, ids: Iterable[str]) -> Generator[Problem, None, set[str]]:
    seen: dict[str, int] = {}
    for index, value in enumerate(ids):
        if value in seen:
            line, _ = document.locate([section, seen[value], "id"])
            yield document.problem([section, index, "id"], f"duplicate id '{value}' (first defined at line {line})")
        else:
            seen[value] = index
    return set(seen)


def _delegation_cycles(model: CityModel, document: yamlfile.Document) -> Iterator[Problem]:
    parent = {s.id: s.parent for s in model.stakeholders if s.parent}
    index = {s.id: i for i, s in enumerate(model.stakeholders)}
    reported: set[str] = set()
    for start in parent:
        path, current = [start], parent.get(start)
        while current is not None and current not in path:
            path.append(current)
            current = parent.get(current)
        if current is not None:
            cycle = path[path.index(current) :]
            key = min(cycle)
            if key not in reported:
                reported.add(key)
                chain = " → ".join([*cycle, current])
                yield document.problem(
                    ["stakeholders", index[key], "parent"],
                    f"cycle in the subcontractor chain: {chain} / 委託関係が循環しています",
                )

"""Instantiate the catalog's risks on the model's elements and rank the gaps by likelihood × impact."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from machimori.governance.assessment.index import ModelIndex
from machimori.governance.assessment.result import DONE, Element, Gap, Rating, RiskInstance, ScopeKind, Target
from machimori.governance.catalog.models import Catalog, Risk
from machimori.governance.model.schema import RiskMatrix

Scope = tuple[ScopeKind, str]
"""("component", id) or ("stakeholder", id)."""

DEFAULT_LIKELIHOOD = 2
DEFAULT_IMPACT = 2


def rate(score: int, matrix: RiskMatrix) -> Rating:
    """The rating band a likelihood × impact score falls in."""
    rating: Rating = "low"
    for band, threshold in sorted(matrix.bands.items(), key=lambda item: item[1]):
        if score >= threshold:
            rating = band
    return rating


@dataclass(slots=True)
class _Match:
    element: Element
    scopes: tuple[Scope, ...]
    likelihood: int
    impact: int


def instantiate(
    index: ModelIndex, catalog: Catalog, targets: dict[tuple[str, Scope], Target]
) -> tuple[list[RiskInstance], list[Gap]]:
    """Risk instances on concrete elements, and every unmet target as a gap ranked by its worst risk."""
    matrix = index.model.risk_matrix
    instances: list[RiskInstance] = []
    worst: dict[tuple[str, Scope], tuple[int, int, int]] = {}
    for risk in catalog.risks.values():
        open_at: dict[Scope, frozenset[str]] = {}
        for match in _matches(index, risk):
            open_requirements: set[str] = set()
            applicable = False
            score = match.likelihood * match.impact
            for scope in match.scopes:
                if scope not in open_at:
                    open_at[scope] = frozenset(
                        r for r in risk.requirements if (t := targets.get((r, scope))) and t.status not in DONE
                    )
                open_requirements |= open_at[scope]
                applicable = applicable or any((r, scope) in targets for r in risk.requirements)
                previous = worst.get((risk.id, scope))
                if previous is None or score > previous[0]:
                    worst[(risk.id, scope)] = (score, match.likelihood, match.impact)
            if not applicable:
                open_requirements = set(risk.requirements)
            instances.append(
                RiskInstance(
                    risk=risk.id,
                    element=match.element,
                    likelihood=match.likelihood,
                    impact=match.impact,
                    score=score,
                    rating=rate(score, matrix),
                    open_requirements=sorted(open_requirements),
                )
            )
    return instances, _rank_gaps(index, catalog, targets, worst)


def _rank_gaps(
    index: ModelIndex,
    catalog: Catalog,
    targets: dict[tuple[str, Scope], Target],
    worst: dict[tuple[str, Scope], tuple[int, int, int]],
) -> list[Gap]:
    best: dict[tuple[str, Scope], tuple[int, int, int, list[str]]] = {}
    for (risk_id, scope), (score, likelihood, impact) in worst.items():
        for requirement in catalog.risks[risk_id].requirements:
            key = (requirement, scope)
            if key not in targets:
                continue
            current = best.get(key)
            if current is None:
                best[key] = (score, likelihood, impact, [risk_id])
            else:
                current[3].append(risk_id)
                if score > current[0]:
                    best[key] = (score, likelihood, impact, current[3])
    matrix = index.model.risk_matrix
    gaps = []
    for key, target in targets.items():
        if target.status in DONE:
            continue
        found = best.get(key)
        if found is None:
            personal = _handles_personal(index, key[1])
            likelihood, impact = DEFAULT_LIKELIHOOD, DEFAULT_IMPACT + (1 if personal else 0)
            risks: tuple[str, ...] = ()
        else:
            _, likelihood, impact, risk_ids = found
            risks = tuple(sorted(set(risk_ids)))
        score = likelihood * impact
        gaps.append(Gap(target, likelihood, impact, score, rate(score, matrix), risks))
    order = {r: i for i, r in enumerate(catalog.requirements)}
    gaps.sort(key=lambda g: (-g.score, order.get(g.target.requirement, 0), g.target.scope_id))
    return gaps


def _handles_personal(index: ModelIndex, scope: Scope) -> bool:
    kind, element_id = scope
    if kind == "component":
        return element_id in index.personal_components
    return any(c in index.personal_components for c in index.components_of.get(element_id, ()))


def _bump(value: int, by: int) -> int:
    return max(1, min(5, value + by))


def _matches(index: ModelIndex, risk: Risk) -> Iterator[_Match]:
    """Every element the risk's selector picks, with its scopes and adjusted likelihood and impact."""
    where = risk.applies_to.where
    element = risk.applies_to.element
    components = index.components
    if element == "flow":
        for flow in index.model.flows:
            dataset = index.datasets[flow.dataset]
            sender, receiver = components[flow.from_], components[flow.to]
            crosses = index.crosses_boundary(flow)
            if not (
                _in(where.from_category, sender.category)
                and _in(where.to_category, receiver.category)
                and _in(where.data_type, dataset.data_type)
                and _is(where.personal, dataset.personal)
                and _is(where.crosses_boundary, crosses)
                and _is(where.encrypted, flow.encrypted)
                and _is(where.authenticated, flow.authenticated)
            ):
                continue
            exposed = int(crosses) + int(not (flow.encrypted and flow.authenticated))
            yield _Match(
                Element("flow", flow.id),
                _component_scopes(index, flow.from_, flow.to),
                _bump(risk.likelihood, exposed),
                _bump(risk.impact, int(dataset.personal)),
            )
    elif element == "component":
        for component in index.model.components:
            personal = component.id in index.personal_components
            types = index.data_types_of.get(component.id, set())
            if (
                _in(where.category, component.category)
                and _in(where.kind, component.kind)
                and _is(where.personal, personal)
                and (where.data_type is None or bool(types.intersection(where.data_type)))
            ):
                yield _Match(
                    Element("component", component.id),
                    _component_scopes(index, component.id),
                    risk.likelihood,
                    _bump(risk.impact, int(personal)),
                )
    elif element == "stakeholder":
        for stakeholder in index.model.stakeholders:
            personal = _handles_personal(index, ("stakeholder", stakeholder.id))
            if _in(where.kind, stakeholder.kind) and _is(where.personal, personal):
                own: Scope = ("stakeholder", stakeholder.id)
                runs = sorted(index.components_of.get(stakeholder.id, ()))
                scopes = tuple(dict.fromkeys((own, *_component_scopes(index, *runs))))
                yield _Match(
                    Element("stakeholder", stakeholder.id), scopes, risk.likelihood, _bump(risk.impact, int(personal))
                )
    elif element == "dataset":
        users: dict[str, set[str]] = {}
        for flow in index.model.flows:
            users.setdefault(flow.dataset, set()).update((flow.from_, flow.to))
        for dataset in index.model.datasets:
            if _in(where.data_type, dataset.data_type) and _is(where.personal, dataset.personal):
                yield _Match(
                    Element("dataset", dataset.id),
                    _component_scopes(index, *sorted(users.get(dataset.id, ()))),
                    risk.likelihood,
                    _bump(risk.impact, int(dataset.personal)),
                )
    elif element == "service":
        for service in index.model.services:
            personal = any(index.datasets[d].personal for d in service.datasets)
            if _is(where.personal, personal):
                provider: Scope = ("stakeholder", service.provider)
                scopes = tuple(dict.fromkeys((*_component_scopes(index, *service.components), provider)))
                yield _Match(Element("service", service.id), scopes, risk.likelihood, _bump(risk.impact, int(personal)))


def _component_scopes(index: ModelIndex, *component_ids: str) -> tuple[Scope, ...]:
    """The components and the organisations that own or operate them."""
    scopes: dict[Scope, None] = {}
    for component_id in component_ids:
        scopes[("component", component_id)] = None
    for component_id in component_ids:
        component = index.components[component_id]
        for who in (component.owner, component.operator):
            if who:
                scopes[("stakeholder", who)] = None
    return tuple(scopes)


def _in(allowed: Sequence[object] | None, value: object) -> bool:
    return allowed is None or value in allowed


def _is(expected: bool | None, value: bool) -> bool:
    return expected is None or expected == value

"""Instantiate the catalog's risks on the model's elements and rank the gaps by likelihood × impact."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from machimori.governance.assessment.applicability import TargetsByScope
from machimori.governance.assessment.index import ModelIndex, Scope
from machimori.governance.assessment.result import DONE, Element, Gap, Rating, RiskInstance, Target
from machimori.governance.catalog.models import Catalog, Risk
from machimori.governance.model.schema import RiskMatrix

DEFAULT_LIKELIHOOD = 2
DEFAULT_IMPACT = 2


def rate(score: int, matrix: RiskMatrix) -> Rating:
    """The rating band a likelihood × impact score falls in."""
    return _table(matrix)[score]


def _table(matrix: RiskMatrix) -> tuple[Rating, ...]:
    return _ratings(tuple(sorted(matrix.bands.items(), key=lambda item: item[1])))


@functools.cache
def _ratings(bands: tuple[tuple[Rating, int], ...]) -> tuple[Rating, ...]:
    """The rating of every score 0..25 for bands sorted by threshold."""
    table: list[Rating] = []
    for score in range(26):
        rating: Rating = "low"
        for band, threshold in bands:
            if score >= threshold:
                rating = band
        table.append(rating)
    return tuple(table)


@dataclass(slots=True)
class _Match:
    element: Element
    scopes: tuple[Scope, ...]
    likelihood: int
    impact: int


def instantiate(index: ModelIndex, catalog: Catalog, targets: TargetsByScope) -> tuple[list[RiskInstance], list[Gap]]:
    """Risk instances on concrete elements, and every unmet target as a gap ranked by its worst risk."""
    table = _table(index.model.risk_matrix)
    instances: list[RiskInstance] = []
    worst: dict[Scope, dict[str, tuple[int, int, int]]] = defaultdict(dict)
    nothing: dict[str, Target] = {}
    for risk in catalog.risks.values():
        # scope → (requirements of the risk not met there, whether any requirement applies there)
        at_scope: dict[Scope, tuple[frozenset[str], bool]] = {}
        everything = sorted(risk.requirements)
        for match in _matches(index, risk):
            open_requirements: set[str] = set()
            applicable = False
            score = match.likelihood * match.impact
            for scope in match.scopes:
                known = at_scope.get(scope)
                if known is None:
                    here = targets.get(scope, nothing)
                    met = [here[r] for r in risk.requirements if r in here]
                    known = at_scope[scope] = (frozenset(t.requirement for t in met if t.status not in DONE), bool(met))
                open_requirements |= known[0]
                applicable = applicable or known[1]
                by_risk = worst[scope]
                previous = by_risk.get(risk.id)
                if previous is None or score > previous[0]:
                    by_risk[risk.id] = (score, match.likelihood, match.impact)
            instances.append(
                RiskInstance(
                    risk=risk.id,
                    element=match.element,
                    likelihood=match.likelihood,
                    impact=match.impact,
                    score=score,
                    rating=table[score],
                    open_requirements=sorted(open_requirements) if applicable else everything,
                )
            )
    return instances, _rank_gaps(index, catalog, targets, worst)


def _rank_gaps(
    index: ModelIndex, catalog: Catalog, targets: TargetsByScope, worst: dict[Scope, dict[str, tuple[int, int, int]]]
) -> list[Gap]:
    table = _table(index.model.risk_matrix)
    gaps = []
    for scope, here in targets.items():
        best: dict[str, tuple[int, int, int, list[str]]] = {}
        for risk_id, (score, likelihood, impact) in worst.get(scope, {}).items():
            for requirement in catalog.risks[risk_id].requirements:
                if requirement not in here:
                    continue
                current = best.get(requirement)
                if current is None:
                    best[requirement] = (score, likelihood, impact, [risk_id])
                else:
                    current[3].append(risk_id)
                    if score > current[0]:
                        best[requirement] = (score, likelihood, impact, current[3])
        default_impact = DEFAULT_IMPACT + int(_handles_personal(index, scope))
        default_score = DEFAULT_LIKELIHOOD * default_impact
        for requirement, target in here.items():
            if target.status in DONE:
                continue
            found = best.get(requirement)
            risks = tuple(sorted(found[3])) if found else ()
            if found is None or found[0] < default_score:  # a named risk never ranks a gap below the default
                gaps.append(Gap(target, DEFAULT_LIKELIHOOD, default_impact, default_score, table[default_score], risks))
            else:
                score, likelihood, impact, _ = found
                gaps.append(Gap(target, likelihood, impact, score, table[score], risks))
    order = {r.id: i for i, r in enumerate(catalog.sorted_requirements())}
    gaps.sort(key=lambda g: (-g.score, order[g.target.requirement], g.target.scope_id))
    return gaps


def _handles_personal(index: ModelIndex, scope: Scope) -> bool:
    kind, element_id = scope
    if kind == "component":
        return element_id in index.personal_components
    return element_id in index.personal_stakeholders


def _bump(value: int, by: int) -> int:
    return max(1, min(5, value + by))


def _matches(index: ModelIndex, risk: Risk) -> Iterator[_Match]:
    """Every element the risk's selector picks, with its scopes and adjusted likelihood and impact."""
    where = risk.applies_to.where
    element = risk.applies_to.element
    if element == "flow":
        for shape, facts in index.flows_by_shape.items():
            from_category, to_category, data_type, personal, crosses, encrypted, authenticated = shape
            if not (
                _in(where.from_category, from_category)
                and _in(where.to_category, to_category)
                and _in(where.data_type, data_type)
                and _is(where.personal, personal)
                and _is(where.crosses_boundary, crosses)
                and _is(where.encrypted, encrypted)
                and _is(where.authenticated, authenticated)
            ):
                continue
            likelihood = _bump(risk.likelihood, int(crosses) + int(not (encrypted and authenticated)))
            impact = _bump(risk.impact, int(personal))
            for fact in facts:
                yield _Match(Element("flow", fact.flow.id), fact.scopes, likelihood, impact)
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
                    index.scopes_of(component.id),
                    risk.likelihood,
                    _bump(risk.impact, int(personal)),
                )
    elif element == "stakeholder":
        for stakeholder in index.model.stakeholders:
            personal = _handles_personal(index, ("stakeholder", stakeholder.id))
            if _in(where.kind, stakeholder.kind) and _is(where.personal, personal):
                own: Scope = ("stakeholder", stakeholder.id)
                runs = sorted(index.components_of.get(stakeholder.id, ()))
                scopes = tuple(dict.fromkeys((own, *index.scopes_of(*runs))))
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
                    index.scopes_of(*sorted(users.get(dataset.id, ()))),
                    risk.likelihood,
                    _bump(risk.impact, int(dataset.personal)),
                )
    elif element == "service":
        for service in index.model.services:
            personal = any(index.datasets[d].personal for d in service.datasets)
            if _is(where.personal, personal):
                provider: Scope = ("stakeholder", service.provider)
                scopes = tuple(dict.fromkeys((*index.scopes_of(*service.components), provider)))
                yield _Match(Element("service", service.id), scopes, risk.likelihood, _bump(risk.impact, int(personal)))


def _in(allowed: Sequence[object] | None, value: object) -> bool:
    return allowed is None or value in allowed


def _is(expected: bool | None, value: bool) -> bool:
    return expected is None or expected == value

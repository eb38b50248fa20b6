"""Which requirements apply where, and who is responsible for each: the rows of the check sheets."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from machimori.governance.assessment.index import ModelIndex, Scope
from machimori.governance.assessment.result import ScopeKind, Target
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import StatusRecord, StatusValue
from machimori.governance.text import CategoryId

_ORDER = {"not-implemented": 0, "unknown": 0, "planned": 1, "partial": 2, "implemented": 3, "not-applicable": 4}


TargetsByScope = dict[Scope, dict[str, Target]]
"""Targets by scope, then by requirement ID, in CPSF order."""


def applicable_targets(index: ModelIndex, catalog: Catalog) -> TargetsByScope:
    """One target per applicable (requirement, component) and (governance requirement, stakeholder).

    A requirement applies to every component of a guideline category it lists; requirements that list
    the governance category also apply to each stakeholder as an organisation.
    """
    by_category: dict[str, list[str]] = defaultdict(list)
    for requirement in catalog.sorted_requirements():
        for category in requirement.categories:
            by_category[category].append(requirement.id)
    governance = by_category["governance"]
    resolve = _StatusResolver(index.model.statuses)
    targets: TargetsByScope = {}
    for stakeholder in index.model.stakeholders:
        sid = stakeholder.id
        targets[("stakeholder", sid)] = {
            rid: _target(rid, "governance", "stakeholder", sid, resolve.for_stakeholder(rid, sid)) for rid in governance
        }
    # Components run by the same stakeholders share their resolved rows; only component records differ.
    shared: dict[tuple[tuple[str, ...], str], list[_Merged | None]] = {}
    for component in index.model.components:
        cid, category = component.id, component.category
        runners = tuple(who for who in dict.fromkeys((component.owner, component.operator)) if who)
        requirement_ids = by_category[category]
        row = shared.get((runners, category))
        if row is None:
            row = shared[(runners, category)] = [resolve.for_runners(rid, runners) for rid in requirement_ids]
        own = resolve.by_component.get(cid)
        here: dict[str, Target] = {}
        for rid, merged in zip(requirement_ids, row, strict=True):
            if own and rid in own:
                merged = _merge(own[rid])
            here[rid] = _target(rid, category, "component", cid, merged)
        targets[("component", cid)] = here
    return targets


def flatten(targets: TargetsByScope) -> list[Target]:
    """Every target as one list: stakeholders first, then components, requirements in CPSF order."""
    return [target for here in targets.values() for target in here.values()]


def _target(requirement: str, category: CategoryId, scope: ScopeKind, scope_id: str, merged: _Merged | None) -> Target:
    if merged is None:
        return Target(requirement, category, scope, scope_id)
    return Target(requirement, category, scope, scope_id, *merged)


class _StatusResolver:
    """Finds and merges the status records that govern a target: the most specific scope wins.

    For a component: records naming the component, else records naming its owner or operator (no
    component), else city-wide records. For a stakeholder: records naming it, else city-wide records.
    Many targets share one set of records, so merged results are kept.
    """

    def __init__(self, records: Iterable[StatusRecord]) -> None:
        self.by_component: dict[str, dict[str, list[StatusRecord]]] = defaultdict(lambda: defaultdict(list))
        self.by_stakeholder: dict[tuple[str, str], list[StatusRecord]] = defaultdict(list)
        city_wide: dict[str, list[StatusRecord]] = defaultdict(list)
        for record in records:
            if record.component:
                self.by_component[record.component][record.requirement].append(record)
            elif record.stakeholder:
                self.by_stakeholder[(record.requirement, record.stakeholder)].append(record)
            else:
                city_wide[record.requirement].append(record)
        self.city = {requirement: _merge(found) for requirement, found in city_wide.items()}

    def for_runners(self, requirement: str, runners: tuple[str, ...]) -> _Merged | None:
        """Records for a requirement on a component without records of its own, run by ``runners``."""
        found = [r for who in runners for r in self.by_stakeholder.get((requirement, who), ())]
        return _merge(found) if found else self.city.get(requirement)

    def for_stakeholder(self, requirement: str, stakeholder_id: str) -> _Merged | None:
        """The merged records for a governance requirement on a stakeholder."""
        found = self.by_stakeholder.get((requirement, stakeholder_id))
        return _merge(found) if found else self.city.get(requirement)


_Merged = tuple[
    StatusValue, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], str | None, dt.date | None
]


def _merge(records: list[StatusRecord]) -> _Merged:
    """Merge records of equal specificity: the least advanced status, the union of every role."""
    dues = [r.due for r in records if r.due]
    return (
        min((r.status for r in records), key=_ORDER.__getitem__),
        _union(r.responsible for r in records),
        _union(r.accountable for r in records),
        _union(r.consulted for r in records),
        _union(r.informed for r in records),
        "; ".join(dict.fromkeys(r.evidence for r in records if r.evidence)) or None,
        min(dues) if dues else None,
    )


def _union(groups: Iterable[list[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(who for group in groups for who in group))

"""Which requirements apply where, and who is responsible for each: the rows of the check sheets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from machimori.governance.assessment.index import ModelIndex
from machimori.governance.assessment.result import Target
from machimori.governance.catalog import Catalog
from machimori.governance.model.schema import StatusRecord

_ORDER = {"not-implemented": 0, "unknown": 0, "planned": 1, "partial": 2, "implemented": 3, "not-applicable": 4}


def applicable_targets(index: ModelIndex, catalog: Catalog) -> list[Target]:
    """One target per applicable (requirement, component) and (governance requirement, stakeholder).

    A requirement applies to every component of a guideline category it lists; requirements that list
    the governance category also apply to each stakeholder as an organisation.
    """
    by_category: dict[str, list[str]] = defaultdict(list)
    governance: list[str] = []
    for requirement in catalog.sorted_requirements():
        for category in requirement.categories:
            by_category[category].append(requirement.id)
        if "governance" in requirement.categories:
            governance.append(requirement.id)
    resolve = _StatusResolver(index, index.model.statuses)
    targets: list[Target] = []
    for stakeholder in index.model.stakeholders:
        for requirement_id in governance:
            targets.append(resolve(Target(requirement_id, "governance", "stakeholder", stakeholder.id)))
    for component in index.model.components:
        for requirement_id in by_category[component.category]:
            targets.append(resolve(Target(requirement_id, component.category, "component", component.id)))
    return targets


class _StatusResolver:
    """Finds the status records that govern a target: the most specific scope wins.

    For a component: records naming the component, else records naming its owner or operator (no
    component), else city-wide records. For a stakeholder: records naming it, else city-wide records.
    """

    def __init__(self, index: ModelIndex, records: Iterable[StatusRecord]) -> None:
        self.index = index
        self.by_component: dict[tuple[str, str], list[StatusRecord]] = defaultdict(list)
        self.by_stakeholder: dict[tuple[str, str], list[StatusRecord]] = defaultdict(list)
        self.city_wide: dict[str, list[StatusRecord]] = defaultdict(list)
        for record in records:
            if record.component:
                self.by_component[(record.requirement, record.component)].append(record)
            elif record.stakeholder:
                self.by_stakeholder[(record.requirement, record.stakeholder)].append(record)
            else:
                self.city_wide[record.requirement].append(record)

    def __call__(self, target: Target) -> Target:
        records = self._records(target)
        if records:
            _apply(target, records)
        return target

    def _records(self, target: Target) -> list[StatusRecord]:
        requirement = target.requirement
        if target.scope == "component":
            found = self.by_component.get((requirement, target.scope_id))
            if found:
                return found
            component = self.index.components[target.scope_id]
            found = [
                r
                for who in dict.fromkeys((component.owner, component.operator))
                if who
                for r in self.by_stakeholder.get((requirement, who), ())
            ]
            if found:
                return found
        else:
            found = self.by_stakeholder.get((requirement, target.scope_id))
            if found:
                return found
        return self.city_wide.get(requirement, [])


def _apply(target: Target, records: list[StatusRecord]) -> None:
    """Merge records of equal specificity: the least advanced status, the union of every role."""
    target.status = min((r.status for r in records), key=_ORDER.__getitem__)
    target.responsible = _union(r.responsible for r in records)
    target.accountable = _union(r.accountable for r in records)
    target.consulted = _union(r.consulted for r in records)
    target.informed = _union(r.informed for r in records)
    target.evidence = "; ".join(dict.fromkeys(r.evidence for r in records if r.evidence)) or None
    dues = [r.due for r in records if r.due]
    target.due = min(dues) if dues else None


def _union(groups: Iterable[list[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(who for group in groups for who in group))

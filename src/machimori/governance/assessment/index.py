"""Facts derived once from a city model: who operates what, which components touch which data."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from machimori.governance.assessment.result import ScopeKind
from machimori.governance.model.schema import (
    CityModel,
    Component,
    Dataset,
    Flow,
    Service,
    Stakeholder,
)

Scope = tuple[ScopeKind, str]
"""("component", id) or ("stakeholder", id): what a check-sheet row is about."""


@dataclass(frozen=True, slots=True)
class FlowFacts:
    """A flow with what the assessment asks of it, computed once."""

    flow: Flow
    dataset: Dataset
    from_category: str
    to_category: str
    crosses: bool
    scopes: tuple[Scope, ...]


@dataclass
class ModelIndex:
    """Lookups over a city model that every assessment step shares."""

    model: CityModel
    stakeholders: dict[str, Stakeholder] = field(init=False)
    components: dict[str, Component] = field(init=False)
    datasets: dict[str, Dataset] = field(init=False)
    services: dict[str, Service] = field(init=False)
    components_of: dict[str, set[str]] = field(init=False)
    """Stakeholder id → components it owns or operates."""
    data_types_of: dict[str, set[str]] = field(init=False)
    """Component id → data types of the datasets it sends or receives."""
    personal_components: set[str] = field(init=False)
    """Components that send or receive personal data."""
    flows_of: dict[str, list[Flow]] = field(init=False)
    """Component id → flows it sends or receives."""

    def __post_init__(self) -> None:
        model = self.model
        self.stakeholders = {s.id: s for s in model.stakeholders}
        self.components = {c.id: c for c in model.components}
        self.datasets = {d.id: d for d in model.datasets}
        self.services = {s.id: s for s in model.services}
        self.components_of = defaultdict(set)
        for c in model.components:
            for who in {c.owner, c.operator}:
                if who:
                    self.components_of[who].add(c.id)
        self.data_types_of = defaultdict(set)
        self.personal_components = set()
        self.flows_of = defaultdict(list)
        for flow in model.flows:
            dataset = self.datasets[flow.dataset]
            for end in (flow.from_, flow.to):
                self.data_types_of[end].add(dataset.data_type)
                self.flows_of[end].append(flow)
                if dataset.personal:
                    self.personal_components.add(end)

    @cached_property
    def flow_facts(self) -> list[FlowFacts]:
        """Every flow with its dataset, endpoint categories, boundary crossing and scopes."""
        return [
            FlowFacts(
                flow,
                self.datasets[flow.dataset],
                self.components[flow.from_].category,
                self.components[flow.to].category,
                self.crosses_boundary(flow),
                self.scopes_of(flow.from_, flow.to),
            )
            for flow in self.model.flows
        ]

    @cached_property
    def flows_by_shape(self) -> dict[tuple[str, str, str, bool, bool, bool, bool], list[FlowFacts]]:
        """Flows grouped by what risk selectors look at, so a selector is tested once per group.

        The key is (from category, to category, data type, personal, crosses boundary, encrypted,
        authenticated).
        """
        groups: dict[tuple[str, str, str, bool, bool, bool, bool], list[FlowFacts]] = defaultdict(list)
        for fact in self.flow_facts:
            flow, dataset = fact.flow, fact.dataset
            shape = (
                fact.from_category,
                fact.to_category,
                dataset.data_type,
                dataset.personal,
                fact.crosses,
                flow.encrypted,
                flow.authenticated,
            )
            groups[shape].append(fact)
        return dict(groups)

    @cached_property
    def personal_stakeholders(self) -> set[str]:
        """Stakeholders that own or operate a component that sends or receives personal data."""
        return {who for who, components in self.components_of.items() if components & self.personal_components}

    def scopes_of(self, *component_ids: str) -> tuple[Scope, ...]:
        """The components and the stakeholders that own or operate them."""
        if len(component_ids) == 1:
            return self._scopes_of_one[component_ids[0]]
        scopes: dict[Scope, None] = {("component", c): None for c in component_ids}
        for component_id in component_ids:
            scopes.update(dict.fromkeys(self._scopes_of_one[component_id][1:]))
        return tuple(scopes)

    @cached_property
    def _scopes_of_one(self) -> dict[str, tuple[Scope, ...]]:
        """Component id → the component, then its owner and operator."""
        result: dict[str, tuple[Scope, ...]] = {}
        for component in self.model.components:
            runners: list[Scope] = [
                ("stakeholder", who) for who in dict.fromkeys((component.owner, component.operator)) if who
            ]
            result[component.id] = (("component", component.id), *runners)
        return result

    def organisation(self, component_id: str) -> str | None:
        """The stakeholder that runs a component: its operator, else its owner."""
        component = self.components[component_id]
        return component.operator or component.owner

    def crosses_boundary(self, flow: Flow) -> bool:
        """Whether a flow leaves one organisation for another (as stated, else from operators)."""
        if flow.crosses_boundary is not None:
            return flow.crosses_boundary
        return self.organisation(flow.from_) != self.organisation(flow.to)

    def is_sensitive(self, dataset: Dataset) -> bool:
        """Personal, limited or closed data: what must not travel in clear."""
        return dataset.personal or dataset.data_type in ("limited", "closed")

    def handles_personal_or_closed(self, stakeholder_id: str) -> bool:
        """Whether a stakeholder owns personal or closed data, or runs or hosts a component that carries it."""

        def matters(dataset: Dataset) -> bool:
            return dataset.personal or dataset.data_type == "closed"

        if any(d.owner == stakeholder_id and matters(d) for d in self.datasets.values()):
            return True
        runs = set(self.components_of.get(stakeholder_id, ()))
        runs |= {c.id for c in self.components.values() if c.hosted_by == stakeholder_id}
        return any(matters(self.datasets[flow.dataset]) for c_id in runs for flow in self.flows_of.get(c_id, ()))

    def delegation_chain(self, stakeholder_id: str) -> list[str]:
        """The stakeholder and each parent up the subcontracting chain (the model is acyclic)."""
        chain = [stakeholder_id]
        parent = self.stakeholders[stakeholder_id].parent
        while parent is not None:
            chain.append(parent)
            parent = self.stakeholders[parent].parent
        return chain

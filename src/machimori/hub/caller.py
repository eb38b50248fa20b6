"""Who is calling the NGSI-LD API, and what the decision point lets them write and see.

Every route takes a `Caller`: the verified access token of the calling service, the tenant it names and
the purpose it declares in `Data-Purpose`. Writes are decided on the entity as a whole; reads are
filtered attribute by attribute, every decision on personal data is audit-logged (and kept in the
resident's access history) and every denial is an event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Header, Request

from machimori.consent.access import record_accesses
from machimori.events import Actor, EventClass, Resource, SecurityEvent, Severity, Status
from machimori.hub.broker import Hub
from machimori.hub.conformance import suite_identity, token_or_test
from machimori.hub.enforce import entity_target, filter_entity, resident_of
from machimori.hub.entities import Entity
from machimori.hub.requests import tenant_of
from machimori.identity.oauth.provider import AccessToken
from machimori.platform import Platform
from machimori.policy import Action, Context, DataType, Decision, Subject, Target
from machimori.web.security import platform_of, service_subject, token_context


@dataclass
class Caller:
    """A service calling the hub with a token, for one tenant and one declared purpose."""

    platform: Platform
    hub: Hub
    token: AccessToken
    tenant: str
    purpose: str | None

    @cached_property
    def subject(self) -> Subject:
        return service_subject(self.token)

    @cached_property
    def context(self) -> Context:
        return token_context(self.token, self.purpose)

    def may_write(self, entity: Entity, what: str, *, report: bool = True) -> Decision:
        """The decision on writing the entity (as stored, or as it would be stored), as a whole and under each
        of its types alone — no write gives an entity a type of a dataset the caller may not write; the first
        denial is an event (unless `report` is False: the caller reports denials together, see `refused`)."""
        whole = self._decide_write(entity)
        decision = whole
        if whole.permit and len(entity.types) > 1:
            decision = next(
                (d for d in (self._decide_write(replace(entity, types=[t])) for t in entity.types) if not d.permit),
                whole,
            )
        if not decision.permit and report:
            self.platform.events.emit(self._denied(what, entity.id, decision.explain()))
        return decision

    def refused(self, what: str, decisions: list[tuple[str, Decision]]) -> None:
        """Writes denied together (a purge): one event for them all."""
        if len(decisions) == 1:
            self.platform.events.emit(self._denied(what, decisions[0][0], decisions[0][1].explain()))
        elif decisions:
            rules = ", ".join(sorted({decision.rule for _, decision in decisions}))
            self.platform.events.emit(self._denied(what, f"{len(decisions)} entities", f"refused ({rules})"))

    def _decide_write(self, entity: Entity) -> Decision:
        classification = self.hub.catalogue.classify(entity.types)
        target = entity_target(self.tenant, entity, classification)
        return self.platform.decisions.decide(self.subject, Action.write, target, self.context)

    def written(self, entity: Entity, what: str) -> None:
        """A write of personal data goes to the audit log."""
        classification = self.hub.catalogue.classify(entity.types)
        if classification.data_type is DataType.personal or classification.personal_attributes:
            self.platform.audit.append_sync(
                {
                    "action": f"ngsi-ld.{what}",
                    "tenant": self.tenant,
                    "entity": entity.id,
                    "by": self.token.client_id,
                    "resident": resident_of(entity, classification),
                }
            )

    def may_discover(self, type_name: str) -> bool:
        """Whether discovery may show the caller this entity type: its dataset is readable as a whole."""
        classification = self.hub.catalogue.classify([type_name])
        if classification.data_type is DataType.personal:
            return False
        target = Target(f"ngsi-ld:{self.tenant}:type:{type_name}", classification.data_type, classification.owner)
        return self.platform.decisions.decide(self.subject, Action.read, target, self.context).permit

    def sees(self, entity: Entity, what: str = "retrieve") -> Entity | None:
        """The entity as far as the caller may read it now (None: not at all)."""
        return self.visible([entity], what)[0]

    def visible(self, entities: list[Entity], what: str = "query") -> list[Entity | None]:
        """Each entity as far as the caller may read it now (None: not at all), decided one by one.

        The decisions on personal data are audit-logged together; what is hidden is one event.
        """
        shown: list[Entity | None] = []
        personal: list[tuple[str, str, Decision]] = []
        hidden: list[tuple[str, Decision]] = []
        for entity in entities:
            classification = self.hub.catalogue.classify(entity.types)
            filtered = filter_entity(
                self.platform.decisions, self.subject, self.context, self.tenant, entity, classification
            )
            resident = resident_of(entity, classification)
            if resident is not None:
                personal.extend((resident, about, decision) for about, decision in filtered.personal)
            if filtered.entity is None:
                hidden.append((entity.id, filtered.decisions[0]))
            shown.append(filtered.entity)
        if personal:
            record_accesses(self.platform.audit, self.platform.database, self.token.client_id, self.purpose, personal)
        if len(hidden) == 1:
            self.platform.events.emit(self._denied(what, hidden[0][0], hidden[0][1].explain()))
        elif hidden:
            rules = ", ".join(sorted({decision.rule for _, decision in hidden}))
            self.platform.events.emit(self._denied(what, f"{len(hidden)} entities", f"hidden ({rules})"))
        return shown

    def _denied(self, what: str, entity_id: str, why: str) -> SecurityEvent:
        return SecurityEvent(
            class_uid=EventClass.API_ACTIVITY,
            activity_id=99,
            severity_id=Severity.LOW,
            status_id=Status.FAILURE,
            message=f"NGSI-LD {what} of {entity_id} denied to {self.token.client_id}: {why}",
            actor=Actor(uid=self.token.client_id, app_name=self.token.client_id),
            resources=[Resource(uid=entity_id, type="ngsi-ld-entity")],
        )


def calling(
    request: Request,
    token: Annotated[AccessToken | None, Depends(token_or_test)],
    tenant: Annotated[str | None, Header(alias="NGSILD-Tenant", max_length=64)] = None,
    purpose: Annotated[str | None, Header(alias="Data-Purpose", max_length=512)] = None,
) -> Caller:
    """A dependency: the caller of this request (without a token: the conformance suite, if that test
    setting is on — see hub/conformance)."""
    hub: Hub = request.app.state.hub
    platform = platform_of(request)
    setting = platform.settings.hub_conformance_tenant
    if token is None and setting is not None:
        test_hub, test_token, test_tenant = suite_identity(hub, setting, tenant_of(tenant))
        return Caller(platform, test_hub, test_token, test_tenant, purpose)
    if token is None:  # not reached: without the setting a missing token is a 401
        raise RuntimeError("no access token")
    return Caller(platform, hub, token, tenant_of(tenant), purpose)


CallerOf = Annotated[Caller, Depends(calling)]

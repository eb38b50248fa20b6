"""What of an entity a subject may see: the decision point asked for the entity and for each personal attribute.

The entity is decided on its classification (the dataset its stored type belongs to). Personal attributes
of a dataset that is not personal throughout are decided each as personal data of the resident the
dataset's `resident_attribute` names (`urn:…:<account id>`: the last segment is the account). Denied
attributes are dropped from the answer; a denied entity is not shown at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from machimori.hub.catalogue import Classification
from machimori.hub.entities import Entity
from machimori.policy import Action, Context, DataType, Decision, DecisionPoint, Subject, Target


@dataclass(frozen=True)
class Filtered:
    """The part of an entity a subject may see (None: nothing), the decisions it rests on, and which of
    them were on personal data (with what they were about)."""

    entity: Entity | None
    decisions: list[Decision] = field(default_factory=list)
    personal: list[tuple[str, Decision]] = field(default_factory=list)


def resident_of(entity: Entity, classification: Classification) -> str | None:
    """The account id of the resident the entity's data is about, if its dataset names one."""
    if classification.resident_attribute is None:
        return None
    instances = entity.attributes.get(classification.resident_attribute)
    target = instances[0].get("object") if instances else None
    return target.rsplit(":", 1)[-1] if isinstance(target, str) and target else None


def entity_target(tenant: str, entity: Entity, classification: Classification) -> Target:
    """The decision point's target for the entity as a whole."""
    resident = resident_of(entity, classification) if classification.data_type is DataType.personal else None
    return Target(f"ngsi-ld:{tenant}:{entity.id}", classification.data_type, classification.owner, resident)


def filter_entity(
    decisions: DecisionPoint,
    subject: Subject,
    context: Context,
    tenant: str,
    entity: Entity,
    classification: Classification,
    action: Action = Action.read,
) -> Filtered:
    """The entity as far as the subject may see it, attribute by attribute."""
    target = entity_target(tenant, entity, classification)
    whole = decisions.decide(subject, action, target, context)
    personal = [(target.id, whole)] if classification.data_type is DataType.personal else []
    if not whole.permit:
        return Filtered(None, [whole], personal)
    made = [whole]
    if classification.data_type is DataType.personal or not classification.personal_attributes:
        return Filtered(entity, made, personal)
    resident = resident_of(entity, classification)
    kept = {}
    for name, instances in entity.attributes.items():
        if name in classification.personal_attributes:
            target = Target(f"ngsi-ld:{tenant}:{entity.id}#{name}", DataType.personal, classification.owner, resident)
            decision = decisions.decide(subject, action, target, context)
            made.append(decision)
            personal.append((target.id, decision))
            if not decision.permit:
                continue
        kept[name] = instances
    return Filtered(replace(entity, attributes=kept), made, personal)

"""Whether a caller may write an entity as it would be stored: as a whole and under each of its types.

A write that gives an entity a type in a dataset the caller does not own is refused, even if the entity's
classification as a whole (the strictest of its types) is the caller's own.
"""

from __future__ import annotations

from dataclasses import replace

from machimori.hub.caller import Caller
from machimori.hub.entities import Entity
from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.policy import Decision


def may_become(caller: Caller, entity: Entity, what: str) -> Decision:
    """The decision on writing the entity: the first denial among the whole and each type alone."""
    decision = caller.may_write(entity, what)
    if not decision.permit or len(entity.types) == 1:
        return decision
    for kind in entity.types:
        alone = caller.may_write(replace(entity, types=[kind]), what)
        if not alone.permit:
            return alone
    return decision


def refusal(decision: Decision) -> NgsiLdError:
    """The error for a write the decision point denied (as on create)."""
    return NgsiLdError(ErrorType.InvalidRequest, f"{decision.reason_en} / {decision.reason_ja}", rule=decision.rule)

"""The answer to a write the decision point refused."""

from __future__ import annotations

from machimori.hub.errors import ErrorType, NgsiLdError
from machimori.policy import Decision


def refusal(decision: Decision) -> NgsiLdError:
    """The error for a write the decision point denied (as on create)."""
    return NgsiLdError(ErrorType.InvalidRequest, f"{decision.reason_en} / {decision.reason_ja}", rule=decision.rule)

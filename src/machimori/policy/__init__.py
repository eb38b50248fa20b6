"""The one decision point every plane asks: decide(subject, action, resource, context)."""

from machimori.policy.decide import Action, Context, DataType, Decision, DecisionPoint, RoleGrant, Subject, Target

__all__ = ["Action", "Context", "DataType", "Decision", "DecisionPoint", "RoleGrant", "Subject", "Target"]

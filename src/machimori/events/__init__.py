"""Security events: one OCSF-shaped model, one stream every plane emits to."""

from machimori.events.model import Actor, Device, Endpoint, EventClass, Resource, SecurityEvent, Severity, Status
from machimori.events.query import EventQuery, find_events
from machimori.events.stream import EventStream, LocalTransport, Subscription, Transport

__all__ = [
    "Actor",
    "Device",
    "Endpoint",
    "EventClass",
    "EventQuery",
    "EventStream",
    "LocalTransport",
    "Resource",
    "SecurityEvent",
    "Severity",
    "Status",
    "Subscription",
    "Transport",
    "find_events",
]

"""Signed telemetry in, whichever way it arrives (HTTP or MQTT): verified, checked, stored, or refused with a reason.

The order is chosen so that nobody but the device can spend the device's budget: the signature is checked
before anything the message says is believed; replays are refused before the rate limit counts them.
Every refusal is an event (a flood of the same refusal from one device is folded into one event per
window); refusals that suggest an attack count towards the quarantine policy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import threading
import time
from collections import deque
from dataclasses import dataclass

from machimori.clock import utc_now
from machimori.events import Device, Endpoint, EventClass, EventStream, Resource, SecurityEvent, Severity, Status
from machimori.gateway.checks import RateLimits, TimeBounds, check_values
from machimori.gateway.envelope import Envelope, EnvelopeRejected, Reading, open_envelope
from machimori.gateway.models import DeviceModel
from machimori.gateway.registry import DeviceRecord, DeviceStatus, Registry, RegistryError
from machimori.gateway.window import CounterWindow
from machimori.gateway.writer import Outcome, Pending, Writer
from machimori.hub.observations import LOCATION, Observation
from machimori.hub.store import EntityStore

CACHE_SECONDS = 60.0  # how long a worker trusts its copy of a device's key and status (the commit re-checks both)
SUSPICIOUS = frozenset(
    {"bad-signature", "wrong-algorithm", "replay", "counter-too-old", "key-changed", "topic-mismatch"}
)
AUTHENTICATION = SUSPICIOUS | {"unknown-device", "quarantined", "retired", "clock-skew"}
UNREGISTERED = frozenset({"unknown-device"})  # refusals whose device id nobody registered
POLICY_ACTOR = "gateway-policy"
RELOAD_ON = frozenset({"bad-signature", "wrong-algorithm"})  # refusals a stale copy of the key could cause


@dataclass(frozen=True)
class QuarantinePolicy:
    """Quarantine a device after `after` suspicious refusals (bad signature, replay …) within `within`."""

    after: int = 5
    within: dt.timedelta = dt.timedelta(minutes=10)


@dataclass
class _Known:
    record: DeviceRecord
    model: DeviceModel
    verifier: object
    loaded: float


class Gateway:
    """Takes signed messages from devices and answers, for each, accepted or refused (and why)."""

    def __init__(
        self,
        registry: Registry,
        store: EntityStore,
        events: EventStream,
        *,
        bounds: TimeBounds | None = None,
        policy: QuarantinePolicy | None = None,
    ) -> None:
        self.registry = registry
        self.events = events
        self.bounds = bounds or TimeBounds()
        self.policy = policy or QuarantinePolicy()
        self.writer = Writer(registry.database, store)
        self.limits = RateLimits()
        self.reports = RejectionReports(events)
        self._known: dict[str, _Known] = {}
        self._suspicious: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        self.writer.close()
        self.reports.flush()

    def receive(self, raw: bytes, transport: str, source: str | None = None, timeout: float = 30) -> Outcome:
        """Decide on one message; returns once an accepted reading is durable."""
        return self.submit(raw, transport, source).result(timeout=timeout)

    def submit(
        self, raw: bytes, transport: str, source: str | None = None, *, claimed_device: str | None = None
    ) -> concurrent.futures.Future[Outcome]:
        """Decide on one message (sent as `claimed_device`, e.g. by its MQTT topic, if given); the future
        resolves when it is refused or its reading is durable."""
        done: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        received_at = utc_now()
        envelope: Envelope | None = None
        reading: Reading | None = None
        try:
            envelope = open_envelope(raw)
            started = time.monotonic()
            known = self._device(envelope.device_id)
            try:
                reading = envelope.verified_reading(known.verifier)  # type: ignore[arg-type]
            except EnvelopeRejected as refusal:
                if refusal.reason not in RELOAD_ON or known.loaded >= started:
                    raise
                # our copy of the key may be older than a rotation made elsewhere (the CLI, another worker)
                known = self._device(envelope.device_id, reload=True)
                reading = envelope.verified_reading(known.verifier)  # type: ignore[arg-type]
            # only a message the device really signed is held against it (the kid is proven now)
            if claimed_device is not None and claimed_device != envelope.device_id:
                raise EnvelopeRejected("topic-mismatch", f"sent on the topic of {claimed_device[:40]!r}")
            self._check(known, reading, received_at)
        except EnvelopeRejected as refusal:
            device = envelope.device_id if envelope else None
            counter = reading.counter if reading else None
            outcome = Outcome(False, refusal.reason, str(refusal), device, counter)
            self.refused(outcome, transport, source)
            done.set_result(outcome)
            return done
        done.add_done_callback(lambda finished: self._after_commit(finished, transport, source))
        self.writer.put(
            Pending(
                known.record.id,
                known.record.tenant,
                known.record.key_fingerprint,
                reading,
                raw,
                transport,
                received_at,
                observation_of(known.record, known.model, reading),
                done,
            )
        )
        return done

    def forget(self, record: DeviceRecord) -> None:
        """Drop this worker's copy of a device (its status or key changed)."""
        with self._lock:
            self._known.pop(record.id, None)

    # --- the checks ----------------------------------------------------------------------------------
    def _device(self, device_id: str, *, reload: bool = False) -> _Known:
        with self._lock:
            known = self._known.get(device_id)
        if reload or known is None or time.monotonic() - known.loaded > CACHE_SECONDS:
            found = self.registry.lookup(device_id)
            if found is None:
                raise EnvelopeRejected("unknown-device", "the device is not registered")
            record, key, window = found
            self.writer.windows.setdefault(device_id, window)  # replays of stored counters refused early
            model = self.registry.models.get(record.model)
            if model is None:
                raise EnvelopeRejected("schema", f"the device's model {record.model} is no longer configured")
            known = _Known(record, model, key.verifier(), time.monotonic())
            with self._lock:
                self._known[device_id] = known
        if known.record.status != DeviceStatus.active:
            raise EnvelopeRejected(known.record.status.value, f"the device is {known.record.status.value}")
        return known

    def _check(self, known: _Known, reading: Reading, now: dt.datetime) -> None:
        window = self.writer.windows.get(known.record.id, CounterWindow())
        refusal = window.refusal(reading.counter)  # early answer; the commit decides under the row's lock
        if refusal is not None:
            raise EnvelopeRejected(refusal, f"counter {reading.counter} (highest accepted {window.top})")
        self.bounds.check(reading, now)
        check_values(reading, known.model)
        self.limits.take(known.record.id, known.model.max_messages_per_minute)

    # --- refusals ------------------------------------------------------------------------------------
    def _after_commit(self, finished: concurrent.futures.Future[Outcome], transport: str, source: str | None) -> None:
        if not finished.cancelled() and finished.exception() is None and not finished.result().accepted:
            self.refused(finished.result(), transport, source)

    def refused(self, outcome: Outcome, transport: str, source: str | None) -> None:
        """Report a refusal, and quarantine the device if its suspicious refusals reach the policy's bound."""
        self.reports.report(outcome, transport, source)
        if outcome.device_id is None or outcome.reason not in SUSPICIOUS:
            return
        moment = time.monotonic()
        with self._lock:
            recent = self._suspicious.setdefault(outcome.device_id, deque())
            recent.append(moment)
            while recent and recent[0] < moment - self.policy.within.total_seconds():
                recent.popleft()
            reached = len(recent) >= self.policy.after
            if reached:
                recent.clear()
        if reached:
            record = self.registry.get(outcome.device_id)
            if record is not None and record.status == DeviceStatus.active:
                reason = f"policy: {self.policy.after} suspicious refusals ({outcome.reason}) / ポリシーによる隔離"
                # its status may have changed meanwhile (quarantined or retired by someone else): nothing to do
                with contextlib.suppress(RegistryError):
                    self.forget(self.registry.quarantine(outcome.device_id, reason, POLICY_ACTOR))


def observation_of(record: DeviceRecord, model: DeviceModel, reading: Reading) -> Observation:
    """The hub entity a reading updates: the model's Smart Data Models type, one per device."""
    observed = reading.time.isoformat().replace("+00:00", "Z")
    short_type = model.entity_type.rstrip("/").rsplit("/", 1)[-1]
    namespace = model.entity_type.rsplit("/", 1)[0]
    attributes: dict[str, dict[str, object]] = {}
    for name, value in reading.values.items():
        instance: dict[str, object] = {"type": "Property", "value": value, "observedAt": observed}
        unit = model.measurements[name].unit
        if unit:
            instance["unitCode"] = unit
        attributes[model.attribute_of(name)] = instance
    attributes[namespace + "/dateObserved"] = {"type": "Property", "value": observed}
    attributes[namespace + "/refDevice"] = {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{record.id}"}
    if record.location:
        point = {"type": "Point", "coordinates": list(record.location)}
        attributes[LOCATION] = {"type": "GeoProperty", "value": point}
    return Observation(f"urn:ngsi-ld:{short_type}:{record.id}", model.entity_type, attributes)


class RejectionReports:
    """Each refusal as an event — but at most `burst` of the same (device, reason) per window, the rest
    counted and reported in one summary, so a flood cannot flood the event stream too. Refusals naming no
    registered device (unknown ids, messages that name none) are counted by reason alone: made-up ids are
    free to an attacker, so they must not open a fresh allowance (nor a fresh counter in memory) each."""

    def __init__(self, events: EventStream, burst: int = 20, window: float = 10.0) -> None:
        self.events = events
        self.burst = burst
        self.window = window
        self._counts: dict[tuple[str | None, str | None], tuple[float, int]] = {}
        self._swept = time.monotonic()
        self._lock = threading.Lock()

    def report(self, outcome: Outcome, transport: str, source: str | None) -> None:
        device = None if outcome.reason in UNREGISTERED else outcome.device_id
        key = (device, outcome.reason)
        moment = time.monotonic()
        summaries: list[tuple[tuple[str | None, str | None], int]] = []
        with self._lock:
            started, count = self._counts.get(key, (moment, 0))
            if moment - started > self.window:
                if count > self.burst:
                    summaries.append((key, count - self.burst))
                started, count = moment, 0
            self._counts[key] = (started, count + 1)
            if moment - self._swept > self.window:  # tell what other windows folded, and forget them
                self._swept = moment
                for other, (other_started, other_count) in list(self._counts.items()):
                    if other != key and moment - other_started > self.window:
                        del self._counts[other]
                        if other_count > self.burst:
                            summaries.append((other, other_count - self.burst))
        for summary_key, folded in summaries:  # a swept window may have been of the other transport
            told = transport if summary_key == key else ""
            self._emit(Outcome(False, summary_key[1], "", summary_key[0]), told, None, folded=folded)
        if count < self.burst:
            self._emit(outcome, transport, source)

    def flush(self) -> None:
        """Report what was folded and not yet told."""
        with self._lock:
            folded = {key: count - self.burst for key, (_, count) in self._counts.items() if count > self.burst}
            self._counts.clear()
        for (device, reason), count in folded.items():
            self._emit(Outcome(False, reason, "", device), "", None, folded=count)

    def _emit(self, outcome: Outcome, transport: str, source: str | None, folded: int = 0) -> None:
        authentication = outcome.reason in AUTHENTICATION
        text = f"telemetry refused: {outcome.reason} / テレメトリを拒否: {outcome.message}"
        if folded:
            text = f"{folded} more telemetry refusals ({outcome.reason}) folded / 同種の拒否 {folded} 件を集約"
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.AUTHENTICATION if authentication else EventClass.API_ACTIVITY,
                activity_id=1,
                severity_id=Severity.MEDIUM if outcome.reason in SUSPICIOUS else Severity.LOW,
                status_id=Status.FAILURE,
                message=text,
                device=None if outcome.device_id is None else Device(uid=outcome.device_id),
                resources=[Resource(uid=outcome.device_id or "unknown", type="device")],
                src_endpoint=Endpoint(ip=source) if source else None,
                unmapped={
                    "reason": outcome.reason,
                    "transport": transport,
                    "counter": outcome.counter,
                    **({"folded": folded} if folded else {}),
                },
            )
        )

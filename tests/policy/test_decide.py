"""The decision point as services, staff and residents meet it — and as each would try to get past it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from machimori.audit.canonical import canonical_json
from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.consent.purposes import DPV
from machimori.consent.records import ConsentError, ConsentState, ConsentStore
from machimori.events import EventStream
from machimori.policy import Action, Context, DataType, DecisionPoint, Subject, Target
from machimori.storage import Database

SERVICE = Subject("bus-app", "service", org="minato-bus")
OTHER_SERVICE = Subject("ad-app", "service", org="adco")
PROVISION = DPV + "ServiceProvision"
ADVERTISING = DPV + "PersonalisedAdvertising"
HANAKO_DATA = Target("urn:ngsi-ld:Person:hanako", DataType.personal, org="minato-city", resident="hanako")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def store(database: Database) -> Iterator[ConsentStore]:
    signer = Signer.generate("minatomachi.example/audit")
    events = EventStream(database, interval=0)
    audit = AuditLog(database, signer.name, [signer])
    yield ConsentStore(database, audit, events, signer, clock=Clock())
    audit.close()
    events.close()


@pytest.fixture
def pdp(store: ConsentStore) -> DecisionPoint:
    return DecisionPoint(store.current, store.version, store.clock)


def read(pdp: DecisionPoint, subject: Subject, target: Target, purpose: str | None = None) -> bool:
    return pdp.decide(subject, Action.read, target, Context(purpose)).permit


def test_a_service_reads_personal_data_only_for_a_consented_purpose(store: ConsentStore, pdp: DecisionPoint) -> None:
    assert not read(pdp, SERVICE, HANAKO_DATA, PROVISION)
    store.give("hanako", "bus-app", PROVISION)
    decision = pdp.decide(SERVICE, Action.read, HANAKO_DATA, Context(PROVISION))
    assert decision.permit and decision.obligations == ("audit-log",)
    assert not read(pdp, SERVICE, HANAKO_DATA, ADVERTISING)  # a purpose she did not consent to
    assert not read(pdp, SERVICE, HANAKO_DATA)  # no purpose declared
    assert not read(pdp, OTHER_SERVICE, HANAKO_DATA, PROVISION)  # another service


def test_a_withdrawn_consent_denies_the_very_next_request(store: ConsentStore, pdp: DecisionPoint) -> None:
    store.give("hanako", "bus-app", PROVISION)
    assert read(pdp, SERVICE, HANAKO_DATA, PROVISION)
    assert read(pdp, SERVICE, HANAKO_DATA, PROVISION)  # now from the cache
    store.withdraw("hanako", "bus-app", PROVISION)
    decision = pdp.decide(SERVICE, Action.read, HANAKO_DATA, Context(PROVISION))
    assert not decision.permit and decision.rule == "consent-withdrawn"
    assert "撤回" in decision.explain()


def test_an_expired_consent_denies(store: ConsentStore, pdp: DecisionPoint) -> None:
    start = store.clock()
    store.give("hanako", "bus-app", PROVISION, expires_at=start + dt.timedelta(days=30))
    assert read(pdp, SERVICE, HANAKO_DATA, PROVISION)
    assert read(pdp, SERVICE, HANAKO_DATA, PROVISION)  # cached
    store.clock.now = start + dt.timedelta(days=31)  # type: ignore[attr-defined]
    assert store.state("hanako", "bus-app", PROVISION) is ConsentState.expired
    assert not read(pdp, SERVICE, HANAKO_DATA, PROVISION)  # the cached permit ended with the consent


def test_residents_read_their_own_data_and_nobody_elses(pdp: DecisionPoint) -> None:
    assert read(pdp, Subject("hanako", "resident"), HANAKO_DATA)
    assert not read(pdp, Subject("taro", "resident"), HANAKO_DATA)
    assert not read(
        pdp,
        Subject("clerk", "staff", org="minato-city", roles=frozenset({("minato-city", "admin")})),
        HANAKO_DATA,
        PROVISION,
    )


def test_open_limited_and_closed_data(pdp: DecisionPoint) -> None:
    anyone = Subject("x", "service", org="elsewhere")
    assert read(pdp, anyone, Target("bus-stops", DataType.open, org="minato-bus"))
    limited = Target("ridership", DataType.limited, org="minato-bus")
    assert not read(pdp, anyone, limited)
    assert read(pdp, Subject("y", "service", org="elsewhere", roles=frozenset({("minato-bus", "reader")})), limited)
    closed = Target("fleet-keys", DataType.closed, org="minato-bus")
    owner_reader = Subject("z", "staff", org="minato-bus", roles=frozenset({("minato-bus", "reader")}))
    assert read(pdp, owner_reader, closed)
    assert not read(pdp, Subject("z2", "staff", org="other", roles=frozenset({("minato-bus", "reader")})), closed)
    assert not pdp.decide(anyone, Action.write, Target("bus-stops", DataType.open, org="minato-bus"), Context()).permit


def test_privileged_actions_need_the_role_and_aal2(pdp: DecisionPoint) -> None:
    audit_log = Target("audit-log", DataType.closed, org="minato-city")
    admin_aal1 = Subject("a", "staff", org="minato-city", roles=frozenset({("minato-city", "admin")}), aal=1)
    assert pdp.decide(admin_aal1, Action.admin, audit_log, Context()).rule == "aal2"
    admin_aal2 = Subject("a", "staff", org="minato-city", roles=frozenset({("minato-city", "admin")}), aal=2)
    assert pdp.decide(admin_aal2, Action.admin, audit_log, Context()).permit
    outsider = Subject("o", "staff", org="other", roles=frozenset({("other", "admin")}), aal=3)
    assert pdp.decide(outsider, Action.admin, audit_log, Context()).rule == "admin-role"


def test_a_role_change_takes_effect_at_once(pdp: DecisionPoint) -> None:
    limited = Target("ridership", DataType.limited, org="minato-bus")
    before = Subject("y", "service", org="elsewhere")
    assert not read(pdp, before, limited)
    pdp.policy_changed()
    after = Subject("y", "service", org="elsewhere", roles=frozenset({("minato-bus", "reader")}))
    assert read(pdp, after, limited)


def test_unknown_purposes_are_refused_and_receipts_are_signed(store: ConsentStore) -> None:
    with pytest.raises(ConsentError):
        store.give("hanako", "bus-app", "https://example.com/made-up-purpose")
    receipt = store.give("hanako", "bus-app", PROVISION)
    import base64

    from machimori.audit.note import Verifier

    verifier = Verifier.parse(receipt["signature"]["key"])
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(verifier.public).verify(
        base64.b64decode(receipt["signature"]["value"]), canonical_json(receipt["record"])
    )
    assert receipt["record"]["parties"] == {"data_subject": "hanako", "recipient": "bus-app"}
    assert store.of_resident("hanako")[0]["state"] == "given"
    last = store.audit.entry(store.audit.head().size - 1).value()
    assert last["action"] == "consent.given"


def test_a_forged_receipt_does_not_verify(store: ConsentStore) -> None:
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from machimori.audit.note import Verifier

    receipt = store.give("hanako", "bus-app", PROVISION)
    receipt["record"]["processing"][0]["purpose"] = ADVERTISING
    key = Ed25519PublicKey.from_public_bytes(Verifier.parse(receipt["signature"]["key"]).public)
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(receipt["signature"]["value"]), canonical_json(receipt["record"]))


def test_a_resident_sees_who_used_her_data_and_can_prove_it(store: ConsentStore, pdp: DecisionPoint) -> None:
    from machimori.audit import merkle
    from machimori.consent.access import accesses_of, record_access

    store.give("hanako", "bus-app", PROVISION)
    for subject, purpose in ((SERVICE, PROVISION), (OTHER_SERVICE, ADVERTISING)):
        decision = pdp.decide(subject, Action.read, HANAKO_DATA, Context(purpose))
        record_access(store.audit, store.database, subject.id, "hanako", purpose, decision)
    seen = accesses_of(store.database, "hanako")
    assert [(a["service"], a["permitted"]) for a in seen] == [("ad-app", False), ("bus-app", True)]
    assert accesses_of(store.database, "taro") == []
    head = store.audit.head()
    entry = store.audit.entry(seen[1]["audit_index"])
    proof = store.audit.inclusion_proof(entry.index, head.size)
    assert merkle.verify_inclusion(entry.index, head.size, entry.leaf_hash, proof, head.root)
    assert entry.value()["purpose"] == PROVISION


def test_a_target_can_demand_aal_and_ial(pdp: DecisionPoint) -> None:
    tax_record = Target(
        "tax-2026-hanako", DataType.personal, org="minato-city", resident="hanako", min_aal=2, min_ial=2
    )
    weak = Subject("hanako", "resident", aal=1, ial=3)
    unproven = Subject("hanako", "resident", aal=2, ial=1)
    strong = Subject("hanako", "resident", aal=2, ial=2)
    assert pdp.decide(weak, Action.read, tax_record, Context()).rule == "aal-required"
    assert pdp.decide(unproven, Action.read, tax_record, Context()).rule == "ial-required"
    assert pdp.decide(strong, Action.read, tax_record, Context()).permit

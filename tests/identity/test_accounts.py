"""Signing in, as a resident does and as an attacker tries: guessing, replaying, granting oneself power."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.events import EventQuery, EventStream, find_events
from machimori.identity.accounts import AccountError, Accounts, Kind
from machimori.identity.passwords import PasswordRejected
from machimori.identity.throttle import MAX_CONSECUTIVE_FAILURES, SourceLimiter
from machimori.policy import Subject
from machimori.secretbox import SealBroken, SecretBox
from machimori.storage import Database

PASSWORD = "みなとまちの海は青い 2026"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(database: Database, tmp_path: Path, clock: Clock) -> Iterator[Accounts]:
    events = EventStream(database, interval=0)
    audit = AuditLog(database, "test.example/audit", [Signer.generate("test.example/audit")])
    yield Accounts(
        database, events, audit, SecretBox.in_keys_dir(tmp_path / "keys"), clock, SourceLimiter(limit=10_000)
    )
    audit.close()
    events.close()


def test_a_resident_signs_in_with_the_right_password(accounts: Accounts) -> None:
    resident = accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    assert accounts.sign_in("hanako", PASSWORD, "192.0.2.1").outcome == "ok"
    result = accounts.sign_in("hanako", PASSWORD.replace("青", "赤"), "192.0.2.1")
    assert (result.outcome, result.account_id) == ("wrong", resident)
    assert accounts.sign_in("nobody", PASSWORD, "192.0.2.1").outcome == "wrong"


def test_a_weak_password_cannot_be_set(accounts: Accounts) -> None:
    with pytest.raises(PasswordRejected):
        accounts.create(Kind.resident, "taro", "山田太郎", "password1234567")
    with pytest.raises(AccountError, match="taken"):
        accounts.create(Kind.resident, "hanako2", "a", PASSWORD)
        accounts.create(Kind.resident, "hanako2", "b", PASSWORD)


def test_101_wrong_passwords_lock_the_account_but_the_first_failures_cost_nothing(
    accounts: Accounts, clock: Clock, database: Database
) -> None:
    accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    for _ in range(4):
        assert accounts.sign_in("hanako", "wrong guess number x", "198.51.100.7").outcome == "wrong"
    assert accounts.sign_in("hanako", PASSWORD, "192.0.2.1").outcome == "ok"  # no lock-out for a few typos
    outcomes = []
    for attempt in range(MAX_CONSECUTIVE_FAILURES + 1):
        result = accounts.sign_in("hanako", f"guess {attempt:04d} of an attacker", "198.51.100.7")
        if result.outcome == "throttled":  # a guess before the delay ran out is refused without being tried
            outcomes.append("throttled")
            clock.advance(result.retry_after)
            result = accounts.sign_in("hanako", f"guess {attempt:04d} of an attacker", "198.51.100.7")
        outcomes.append(result.outcome)
    assert outcomes.count("wrong") == MAX_CONSECUTIVE_FAILURES - 1
    assert outcomes[-2:] == ["locked", "locked"]
    assert accounts.sign_in("hanako", PASSWORD, "192.0.2.1").outcome == "locked"  # even the right one now
    accounts.events.flush()
    failures = find_events(database, EventQuery(class_uid=3002, limit=1000))
    assert sum(1 for event in failures if event["status_id"] == 2) >= MAX_CONSECUTIVE_FAILURES


def test_delays_grow_after_the_free_failures(accounts: Accounts, clock: Clock) -> None:
    accounts.create(Kind.resident, "hanako", "山田花子", PASSWORD)
    for _ in range(6):
        result = accounts.sign_in("hanako", "wrong guess number x", "198.51.100.7")
        if result.outcome == "throttled":
            clock.advance(result.retry_after)
    waits = []
    for _ in range(3):
        accounts.sign_in("hanako", "wrong guess number x", "198.51.100.7")
        result = accounts.sign_in("hanako", PASSWORD, "192.0.2.1")
        assert result.outcome == "throttled"
        waits.append(result.retry_after)
        clock.advance(result.retry_after)
    assert waits[0] < waits[1] < waits[2]


def test_a_source_that_guesses_across_many_accounts_is_slowed(accounts: Accounts) -> None:
    accounts.sources = SourceLimiter(limit=5, window=600)
    for n in range(5):
        accounts.sign_in(f"someone-{n}", "wrong guess number x", "203.0.113.9")
    assert accounts.sign_in("someone-6", "wrong guess number x", "203.0.113.9").outcome == "throttled"
    assert accounts.sign_in("someone-6", "wrong guess number x", "192.0.2.1").outcome == "wrong"


def test_totp_is_required_and_a_used_code_cannot_be_replayed(accounts: Accounts, clock: Clock) -> None:
    staff = accounts.create(Kind.staff, "clerk7", "港町役場 職員7", PASSWORD, org="minato-city")
    uri = accounts.enroll_totp(staff)
    totp = pyotp.parse_uri(uri)
    assert accounts.sign_in("clerk7", PASSWORD, "192.0.2.1").outcome == "second-factor"
    code = totp.at(clock.now)
    assert accounts.verify_totp(staff, code, "192.0.2.1")
    assert not accounts.verify_totp(staff, code, "192.0.2.1")  # replay
    clock.advance(30)
    assert not accounts.verify_totp(staff, code, "192.0.2.1")  # an older step, still inside the window
    assert accounts.verify_totp(staff, totp.at(clock.now), "192.0.2.1")
    assert not accounts.verify_totp(staff, "12345", "192.0.2.1")
    assert not accounts.verify_totp(staff, "abcdef", "192.0.2.1")


def test_a_totp_seed_moved_to_another_account_does_not_open(accounts: Accounts, tmp_path: Path) -> None:
    box = SecretBox.in_keys_dir(tmp_path / "keys")
    sealed = box.seal(b"JBSWY3DPEHPK3PXP", "totp:account-a")
    assert box.open(sealed, "totp:account-a") == b"JBSWY3DPEHPK3PXP"
    with pytest.raises(SealBroken):
        box.open(sealed, "totp:account-b")
    with pytest.raises(SealBroken):
        SecretBox(bytes(32)).open(sealed, "totp:account-a")


OPERATOR = Subject("operator:test", "operator")


def test_nobody_grants_themselves_a_role_and_duties_stay_separated(accounts: Accounts) -> None:
    admin = accounts.create(Kind.staff, "admin1", "管理者", PASSWORD, org="minato-city")
    clerk = accounts.create(Kind.staff, "clerk1", "職員", PASSWORD, org="minato-city")
    with pytest.raises(AccountError, match="themselves"):
        accounts.grant(clerk, "minato-city", "admin", by=accounts.subject_of(clerk, 2))
    accounts.grant(admin, "minato-city", "admin", by=OPERATOR)
    with pytest.raises(AccountError, match="AAL2"):
        accounts.grant(clerk, "minato-city", "admin", by=accounts.subject_of(admin, 1))
    accounts.grant(clerk, "minato-city", "admin", by=accounts.subject_of(admin, 2))
    with pytest.raises(AccountError, match="separation of duties"):
        accounts.grant(clerk, "minato-city", "auditor", by=accounts.subject_of(admin, 2))
    with pytest.raises(AccountError, match="separation of duties"):
        accounts.grant(clerk, "minato-city", "auditor", by=OPERATOR)  # not even the operator
    assert accounts.roles(clerk) == [("minato-city", "admin")]


def test_an_admin_of_one_organisation_grants_nothing_in_another(accounts: Accounts) -> None:
    bus_admin = accounts.create(Kind.staff, "busadmin", "バス管理者", PASSWORD, org="minato-bus")
    clerk = accounts.create(Kind.staff, "clerk1", "職員", PASSWORD, org="minato-city")
    accounts.grant(bus_admin, "minato-bus", "admin", by=OPERATOR)
    with pytest.raises(AccountError, match="admin role in this organisation"):
        accounts.grant(clerk, "minato-city", "reader", by=accounts.subject_of(bus_admin, 2))
    accounts.grant(clerk, "minato-bus", "reader", by=accounts.subject_of(bus_admin, 2))
    assert accounts.roles(clerk) == [("minato-bus", "reader")]


def test_a_privileged_sign_in_is_audit_logged(accounts: Accounts) -> None:
    admin = accounts.create(Kind.staff, "admin1", "管理者", PASSWORD, org="minato-city")
    accounts.grant(admin, "minato-city", "admin", by=OPERATOR)
    before = accounts.audit.head().size
    assert accounts.sign_in("admin1", PASSWORD, "192.0.2.1").outcome == "ok"
    assert accounts.audit.head().size == before + 1
    assert accounts.audit.entry(before).value()["action"] == "signin.privileged"

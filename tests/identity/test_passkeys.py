"""Passkeys: a resident registers one and signs in with it — and every way an attacker would try to reuse one."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from machimori.audit.log import AuditLog
from machimori.audit.note import Signer
from machimori.events import EventStream
from machimori.identity.accounts import Accounts, Kind
from machimori.identity.passkeys import PasskeyRejected, Passkeys
from machimori.identity.soft_authenticator import SoftAuthenticator
from machimori.secretbox import SecretBox
from machimori.storage import Database

RP_ID, ORIGIN = "city.example", "https://city.example"


@pytest.fixture
def setup(database: Database, tmp_path: Path) -> Iterator[tuple[Passkeys, str, str]]:
    events = EventStream(database, interval=0)
    audit = AuditLog(database, "test.example/audit", [Signer.generate("test.example/audit")])
    accounts = Accounts(database, events, audit, SecretBox.in_keys_dir(tmp_path))
    hanako = accounts.create(Kind.resident, "hanako", "山田花子", None)
    taro = accounts.create(Kind.resident, "taro", "山田太郎", None)
    yield Passkeys(database, events, audit, RP_ID, ORIGIN), hanako, taro
    audit.close()
    events.close()


def register(passkeys: Passkeys, account: str, device: SoftAuthenticator) -> str:
    return passkeys.finish_registration(account, device.create(passkeys.begin_registration(account)))


def test_register_then_sign_in_reaches_aal2(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, _ = setup
    phone = SoftAuthenticator(ORIGIN)
    register(passkeys, hanako, phone)
    for _ in range(2):
        assertion = phone.get(passkeys.begin_sign_in(hanako), RP_ID)
        assert passkeys.finish_sign_in(hanako, assertion, "192.0.2.1") == 2


def test_an_assertion_for_another_account_is_refused(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, taro = setup
    phone, taros_key = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    register(passkeys, hanako, phone)
    register(passkeys, taro, taros_key)
    # Taro answers Hanako's sign-in challenge with his own passkey.
    assertion = taros_key.get(passkeys.begin_sign_in(hanako), RP_ID)
    with pytest.raises(PasskeyRejected, match="does not belong"):
        passkeys.finish_sign_in(hanako, assertion, "198.51.100.7")


def test_a_replayed_assertion_is_refused(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, _ = setup
    phone = SoftAuthenticator(ORIGIN)
    register(passkeys, hanako, phone)
    assertion = phone.get(passkeys.begin_sign_in(hanako), RP_ID)
    passkeys.finish_sign_in(hanako, assertion, "192.0.2.1")
    with pytest.raises(PasskeyRejected, match="challenge"):
        passkeys.finish_sign_in(hanako, assertion, "198.51.100.7")


def test_a_phishing_origin_is_refused(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, _ = setup
    phone = SoftAuthenticator(ORIGIN)
    register(passkeys, hanako, phone)
    phone.origin = "https://city-example.phish"
    with pytest.raises(PasskeyRejected):
        passkeys.finish_sign_in(hanako, phone.get(passkeys.begin_sign_in(hanako), RP_ID), "203.0.113.5")


def test_a_cloned_authenticator_is_caught_by_its_counter(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, _ = setup
    phone = SoftAuthenticator(ORIGIN)
    register(passkeys, hanako, phone)
    clone = copy.deepcopy(phone)
    passkeys.finish_sign_in(hanako, phone.get(passkeys.begin_sign_in(hanako), RP_ID), "192.0.2.1")
    passkeys.finish_sign_in(hanako, phone.get(passkeys.begin_sign_in(hanako), RP_ID), "192.0.2.1")
    with pytest.raises(PasskeyRejected):
        passkeys.finish_sign_in(hanako, clone.get(passkeys.begin_sign_in(hanako), RP_ID), "203.0.113.5")


def test_a_tampered_signature_and_missing_user_verification_are_refused(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, _ = setup
    phone = SoftAuthenticator(ORIGIN)
    register(passkeys, hanako, phone)
    assertion = phone.get(passkeys.begin_sign_in(hanako), RP_ID)
    signature = bytearray(assertion["response"]["signature"].encode())
    signature[-3] = ord("A") if signature[-3] != ord("A") else ord("B")
    assertion["response"]["signature"] = signature.decode()
    with pytest.raises(PasskeyRejected):
        passkeys.finish_sign_in(hanako, assertion, "203.0.113.5")
    phone.user_verified = False
    with pytest.raises(PasskeyRejected):
        passkeys.finish_sign_in(hanako, phone.get(passkeys.begin_sign_in(hanako), RP_ID), "203.0.113.5")


def test_registration_answers_only_its_own_challenge(setup: tuple[Passkeys, str, str]) -> None:
    passkeys, hanako, taro = setup
    phone = SoftAuthenticator(ORIGIN)
    answer = phone.create(passkeys.begin_registration(hanako))
    with pytest.raises(PasskeyRejected, match="challenge"):
        passkeys.finish_registration(taro, answer)  # Hanako's ceremony used to register for Taro
    with pytest.raises(PasskeyRejected, match="clientDataJSON"):
        passkeys.finish_registration(hanako, {"response": {}})
    assert json.loads(passkeys.begin_registration(hanako))["rp"]["id"] == RP_ID

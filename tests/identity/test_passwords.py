"""The password policy as a resident choosing a password meets it, and as an attacker guessing meets it."""

from __future__ import annotations

import pytest

from machimori.identity.passwords import (
    PasswordRejected,
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)


@pytest.mark.parametrize(
    ("password", "second_factor", "code"),
    [
        ("short one", False, "too-short"),
        ("fourteen chars", False, "too-short"),
        ("seven77", True, "too-short"),
        ("password", True, "common"),
        ("Password2024!", True, "common"),
        ("qwertyuiop", True, "common"),
        ("aaaaaaaaaaaaaaaaaaaa", False, "repetitive"),
        ("abcdefghijklmnopqrs", False, "repetitive"),
        ("x" * 300, False, "too-long"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, second_factor: bool, code: str) -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_new_password(password, second_factor=second_factor)
    assert refused.value.code == code
    assert refused.value.reason_ja and refused.value.reason_en


def test_no_composition_rules_a_long_lowercase_phrase_is_fine() -> None:
    assert check_new_password("みなとまち の うみ は あおい", second_factor=False)
    assert check_new_password("correct horse battery", second_factor=False)
    assert check_new_password("kiku-2026!", second_factor=True)


def test_the_users_own_name_does_not_make_a_password() -> None:
    with pytest.raises(PasswordRejected) as refused:
        check_new_password("hanako.yamada1", second_factor=True, context=["hanako.yamada"])
    assert refused.value.code == "context"


def test_unicode_is_normalized_before_counting_and_hashing() -> None:
    stored = hash_password(check_new_password("ＡＢＣ　みなと　ｔｏｗｎ　２０２６", second_factor=False))
    assert verify_password(stored, "ABC みなと town 2026")


def test_hashes_are_argon2id_and_check_exactly() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert not verify_password("not a hash", "correct horse battery")
    assert not needs_rehash(stored)

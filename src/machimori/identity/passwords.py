"""Passwords after NIST SP 800-63B-4: length, a blocklist, no composition rules, argon2id storage."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_SINGLE_FACTOR = 15  # 800-63B-4 §3.1.1.2: when the password is the only factor
MIN_WITH_SECOND_FACTOR = 8
MAX_LENGTH = 256  # at least 64 must be accepted; the cap only bounds hashing work

_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory profile


@dataclass(frozen=True)
class PasswordRejected(ValueError):
    """A chosen password the policy refuses; reason_ja and reason_en say why, for the user."""

    code: str
    reason_ja: str
    reason_en: str

    def __str__(self) -> str:
        return f"{self.reason_ja} / {self.reason_en}"


def normalize(password: str) -> str:
    """The form that is counted, checked and hashed (NFKC, as 800-63B-4 asks for Unicode)."""
    return unicodedata.normalize("NFKC", password)


@cache
def _blocklist() -> frozenset[str]:
    """Common and breached passwords from zxcvbn's frequency lists (shipped with the package)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def check_new_password(password: str, *, second_factor: bool, context: Iterable[str] = ()) -> str:
    """The normalized password if the policy accepts it; PasswordRejected otherwise."""
    normalized = normalize(password)
    minimum = MIN_WITH_SECOND_FACTOR if second_factor else MIN_SINGLE_FACTOR
    if len(normalized) < minimum:
        raise PasswordRejected(
            "too-short",
            f"{minimum} 文字以上にしてください",
            f"use at least {minimum} characters" + ("" if second_factor else " (or add a second factor: 8)"),
        )
    if len(normalized) > MAX_LENGTH:
        raise PasswordRejected("too-long", f"{MAX_LENGTH} 文字までです", f"use at most {MAX_LENGTH} characters")
    folded = normalized.casefold()
    if folded in _blocklist() or _stripped(folded) in _blocklist():
        raise PasswordRejected(
            "common", "よく使われる・流出したパスワードです", "this password is common or known from breaches"
        )
    if len(set(folded)) <= 2 or _sequential(folded):
        raise PasswordRejected("repetitive", "同じ文字や連続した文字の並びです", "this is a repeated or sequential run")
    for word in context:
        word = normalize(word).casefold()
        if len(word) >= 4 and word in folded and len(folded) - len(word) < minimum:
            raise PasswordRejected(
                "context", "名前やサービス名から推測できます", "this is too close to your name or the service's"
            )
    return normalized


def _stripped(folded: str) -> str:
    """The password without trailing digits and symbols (password2024! → password)."""
    return folded.rstrip("0123456789!@#$%^&*?.-_ ")


def _sequential(folded: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in pairwise(folded)}
    return len(steps) == 1 and steps <= {1, -1}


def hash_password(normalized: str) -> str:
    """An argon2id hash (PHC string) of a normalized password."""
    return _hasher.hash(normalized)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether password matches the stored hash (constant work whether or not it does)."""
    try:
        return _hasher.verify(stored_hash, normalize(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)


DUMMY_HASH = _hasher.hash("machimori: hashed when the account does not exist, so timing does not tell")

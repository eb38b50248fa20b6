"""Default and weak management credentials of devices, kept at rest only as keyed fingerprints."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from machimori.diagnostics import InputError, Problem, read_user_file

MIRAI_SOURCE = "mirai"
PACKAGED_MIRAI = "mirai-credentials.tsv"
HEADER = ("username", "password", "weight")
KEY_BYTES = 32
MIN_ZXCVBN_SCORE = 3
_ZXCVBN_MAX_CHARS = 256  # zxcvbn's work grows with length; a longer password is judged on its start
_FINGERPRINT_DOMAIN = b"machimori/device-credential-fingerprint/v1\x00"


@dataclass(frozen=True)
class CredentialPair:
    """A username and password from a known list; source names the list ("mirai", "vendor:<model id>")."""

    username: str
    password: str
    source: str
    weight: int = 0

    def __repr__(self) -> str:
        return f"CredentialPair(username={self.username!r}, password=<hidden>, source={self.source!r}, weight={self.weight})"


@dataclass(frozen=True)
class CredentialWeakness:
    """Why a credential is unacceptable: reason is default, empty, same-as-username or weak."""

    reason: str
    message: str
    source: str | None = None


def load_mirai(path: Path) -> list[CredentialPair]:
    """The distinct pairs of a Mirai credential list file (duplicates merged, weights summed)."""
    data = read_user_file(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError.single(str(path), f"not UTF-8 text / UTF-8 ではありません: {error.reason}") from None
    return parse_credential_list(text, str(path), MIRAI_SOURCE)


@cache
def _packaged_mirai() -> tuple[CredentialPair, ...]:
    text = resources.files("machimori.gateway").joinpath(PACKAGED_MIRAI).read_text(encoding="utf-8")
    return tuple(parse_credential_list(text, f"machimori/gateway/{PACKAGED_MIRAI}", MIRAI_SOURCE))


def mirai_pairs() -> list[CredentialPair]:
    """The Mirai scanner's pairs from the copy shipped with machimori (loaded once)."""
    return list(_packaged_mirai())


def parse_credential_list(text: str, file: str, source: str) -> list[CredentialPair]:
    """The distinct pairs of a `username<TAB>password<TAB>weight` list; every bad line is an InputError."""
    problems: list[Problem] = []
    weights: dict[tuple[str, str], int] = {}
    header_seen = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not header_seen:
            header_seen = True
            if tuple(field.strip().lower() for field in fields) != HEADER:
                problems.append(
                    Problem(
                        file, number, 1, "expected the header username<TAB>password<TAB>weight / 見出し行がありません"
                    )
                )
            continue
        if len(fields) != 3:
            problems.append(
                Problem(
                    file,
                    number,
                    1,
                    f"expected 3 tab-separated fields, found {len(fields)} / タブ区切りの 3 項目が必要です",
                )
            )
            continue
        username, password, weight_text = fields
        if not username:
            problems.append(Problem(file, number, 1, "empty username / ユーザー名が空です"))
            continue
        try:
            weight = int(weight_text)
        except ValueError:
            weight = -1
        if weight < 0:
            column = len(username) + len(password) + 3
            problems.append(
                Problem(
                    file, number, column, f"weight {weight_text!r} is not a whole number ≥ 0 / 重みは 0 以上の整数です"
                )
            )
            continue
        weights[username, password] = weights.get((username, password), 0) + weight
    if not header_seen:
        problems.append(Problem(file, 0, 0, "no header and no pairs / 見出し行も組もありません"))
    if problems:
        raise InputError(problems)
    return [CredentialPair(user, password, source, weight) for (user, password), weight in weights.items()]


class Fingerprinter:
    """Keyed HMAC-SHA256 fingerprints of (username, password): comparable, not reversible without the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the fingerprint key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "Fingerprinter(key=<hidden>)"

    def fingerprint(self, username: str, password: str) -> str:
        """The hex fingerprint of one credential."""
        return hmac.new(self._key, _canonical(username, password), hashlib.sha256).hexdigest()


def _canonical(username: str, password: str) -> bytes:
    """A domain tag, then each field as a 4-byte big-endian length and its UTF-8 bytes."""
    parts = [_FINGERPRINT_DOMAIN]
    for field in (username, password):
        encoded = field.encode("utf-8")
        parts += [len(encoded).to_bytes(4, "big"), encoded]
    return b"".join(parts)


def weakness(username: str, password: str, defaults: Sequence[CredentialPair]) -> CredentialWeakness | None:
    """Why this credential must not be used on a device, or None if it is acceptable."""
    for pair in defaults:
        if pair.username == username and pair.password == password:
            return CredentialWeakness(
                "default",
                f"既定のログイン情報です（{pair.source} の一覧、ユーザー名 {pair.username}）"
                f" / a default credential (in the {pair.source} list, username {pair.username!r})",
                pair.source,
            )
    if not password:
        return CredentialWeakness("empty", "パスワードが空です / the password is empty")
    if password.casefold() == username.casefold():
        return CredentialWeakness("same-as-username", "パスワードがユーザー名と同じです / the password is the username")
    from zxcvbn import zxcvbn

    score = int(zxcvbn(password[:_ZXCVBN_MAX_CHARS], user_inputs=[username])["score"])
    if score < MIN_ZXCVBN_SCORE:
        return CredentialWeakness(
            "weak",
            f"推測されやすいパスワードです（強度 {score}/4、{MIN_ZXCVBN_SCORE} 以上が必要）"
            f" / the password is easy to guess (strength {score}/4, at least {MIN_ZXCVBN_SCORE} needed)",
        )
    return None


def matching_default(
    fingerprint: str, defaults: Sequence[CredentialPair], fingerprinter: Fingerprinter
) -> CredentialPair | None:
    """The default pair whose fingerprint equals a stored one, or None (every pair is compared)."""
    found: CredentialPair | None = None
    stored = fingerprint.lower().encode("ascii", "replace")
    for pair in defaults:
        candidate = fingerprinter.fingerprint(pair.username, pair.password).encode("ascii")
        if hmac.compare_digest(candidate, stored) and found is None:
            found = pair
    return found

"""Default-credential lists, keyed fingerprints and the weakness check."""

from __future__ import annotations

from pathlib import Path

import pytest

from machimori.diagnostics import InputError
from machimori.gateway.credentials import (
    CredentialPair,
    Fingerprinter,
    load_mirai,
    matching_default,
    mirai_pairs,
    weakness,
)

SHARED_LIST = Path(__file__).resolve().parents[3] / "shared" / "reference" / "mirai-credentials.tsv"
STRONG = ("cam-gw-07", "vT3!qP9#mW2x@Lr8")
KEY = bytes(range(32))


def _check_mirai(pairs: list[CredentialPair]) -> None:
    assert len(pairs) == 61
    by_pair = {(p.username, p.password): p for p in pairs}
    assert len(by_pair) == 61
    assert by_pair["root", "xc3511"].weight == 10
    assert by_pair["guest", "12345"].weight == 2
    assert by_pair["root", ""].weight == 4
    assert sum(p.weight for p in pairs) == 152
    assert {p.source for p in pairs} == {"mirai"}


@pytest.mark.skipif(not SHARED_LIST.exists(), reason="the shared reference list is not on this machine")
def test_load_mirai_reads_the_shared_reference_list() -> None:
    _check_mirai(load_mirai(SHARED_LIST))


def test_packaged_copy_has_the_same_pairs() -> None:
    pairs = mirai_pairs()
    _check_mirai(pairs)
    assert pairs[0] == CredentialPair("root", "xc3511", "mirai", 10)
    pairs.clear()  # a caller's list is its own; the cache is untouched
    assert len(mirai_pairs()) == 61


def test_pair_repr_hides_the_password() -> None:
    assert "xc3511" not in repr(CredentialPair("root", "xc3511", "mirai", 10))


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("# c\nusername\tpassword\tweight\nroot xc3511 10\n", 3, "3 tab-separated fields"),
        ("username\tpassword\tweight\nroot\tvizxv\tten\n", 2, "weight 'ten'"),
        ("username\tpassword\tweight\nroot\tvizxv\t-1\n", 2, "weight '-1'"),
        ("username\tpassword\tweight\n\tvizxv\t1\n", 2, "empty username"),
        ("user\tpass\n", 1, "header"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = tmp_path / "list.tsv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_mirai(path)
    assert f"{path}:{line}:" in str(caught.value)
    assert words in str(caught.value)


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text("username\tpassword\tweight\nroot\n\nadmin\tadmin\tx\nok\tok\t1\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_mirai(path)
    assert [p.line for p in caught.value.problems] == [2, 4]


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_mirai(tmp_path / "absent.tsv")


def test_fingerprint_is_stable_keyed_and_unambiguous() -> None:
    one = Fingerprinter(KEY)
    assert one.fingerprint("admin", "admin") == Fingerprinter(KEY).fingerprint("admin", "admin")
    assert len(one.fingerprint("admin", "admin")) == 64
    assert one.fingerprint("admin", "admin") != Fingerprinter(bytes(32)).fingerprint("admin", "admin")
    assert one.fingerprint("ab", "c") != one.fingerprint("a", "bc")
    assert one.fingerprint("admin", "") != one.fingerprint("", "admin")
    assert KEY.hex() not in repr(one) and "key=<hidden>" in repr(one)


def test_fingerprint_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Fingerprinter(b"short")


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("admin", "admin", "default"),
        ("root", "", "default"),  # the empty password of root is itself a Mirai pair
        ("operator", "", "empty"),
        ("sensor-gw", "Sensor-GW", "same-as-username"),
        ("operator", "password1", "weak"),
        ("kawasaki", "kawasaki2024", "weak"),
    ],
)
def test_weakness_reasons(username: str, password: str, reason: str) -> None:
    found = weakness(username, password, mirai_pairs())
    assert found is not None
    assert found.reason == reason
    assert " / " in found.message


def test_default_weakness_names_source_and_username_only() -> None:
    vendor = [CredentialPair("svc", "Zx9!vendor-default-kP2#", "vendor:acme-cam-2")]
    found = weakness("svc", "Zx9!vendor-default-kP2#", [*mirai_pairs(), *vendor])
    assert found is not None and found.reason == "default"
    assert found.source == "vendor:acme-cam-2"
    assert "svc" in found.message and "acme-cam-2" in found.message
    assert "Zx9!vendor-default-kP2#" not in found.message


def test_strong_credential_has_no_weakness() -> None:
    assert weakness(*STRONG, mirai_pairs()) is None


def test_matching_default_finds_the_pair_behind_a_fingerprint() -> None:
    fingerprinter = Fingerprinter(KEY)
    stored = fingerprinter.fingerprint("admin", "admin")
    match = matching_default(stored, mirai_pairs(), fingerprinter)
    assert match is not None and (match.username, match.password, match.source) == ("admin", "admin", "mirai")
    assert matching_default(fingerprinter.fingerprint(*STRONG), mirai_pairs(), fingerprinter) is None
    other_key = Fingerprinter(bytes(32))
    assert matching_default(other_key.fingerprint("admin", "admin"), mirai_pairs(), fingerprinter) is None

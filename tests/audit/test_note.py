"""Signed notes: the published Go and C2SP test vectors, and every way a note can be forged or mangled."""

from __future__ import annotations

import pytest

from machimori.audit import note

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def test_signing_reproduces_the_go_test_vector() -> None:
    signer = note.Signer.parse(PETER_SKEY)
    assert str(signer.verifier) == PETER_VKEY
    assert str(signer) == PETER_SKEY
    assert str(note.sign(TEXT, [signer])) == TEXT + "\n" + PETER_SIG


def test_only_given_keys_count_and_unknown_signatures_are_ignored() -> None:
    signed = note.parse(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    peter, enoch = note.Verifier.parse(PETER_VKEY), note.Verifier.parse(ENOCH_VKEY)
    assert signed.verified_by([peter]) == [peter]
    assert signed.verified_by([peter, enoch]) == [peter, enoch]
    other = note.Signer.generate("PeterNeumann").verifier
    assert signed.verified_by([other]) == []


def test_the_c2sp_example_verifies_and_its_separator_is_the_last_blank_line() -> None:
    key = note.Verifier.parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
    signed = note.parse(
        "This is an example message.\n\n— example.com/foo "
        "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
    )
    assert signed.verified_by([key]) == [key]
    poem = note.parse("line one\n\nline three\n\n" + PETER_SIG)
    assert poem.text == "line one\n\nline three\n"


def test_a_tampered_signature_from_a_known_key_rejects_the_note() -> None:
    forged = note.parse(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:])
    with pytest.raises(note.NoteError, match="invalid signature for key PeterNeumann"):
        forged.verified_by([note.Verifier.parse(PETER_VKEY)])


def test_an_edited_text_does_not_verify() -> None:
    edited = note.parse(TEXT.replace("answer", "question") + "\n" + PETER_SIG)
    with pytest.raises(note.NoteError):
        edited.verified_by([note.Verifier.parse(PETER_VKEY)])


@pytest.mark.parametrize(
    "text",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG.rstrip("\n"),
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_refused(text: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse(text)


def test_every_truncation_and_mangling_of_a_verifier_key_is_refused() -> None:
    for end in range(len(PETER_VKEY)):
        with pytest.raises(note.NoteError):
            note.Verifier.parse(PETER_VKEY[:end])
    for position in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:position] + chr(ord(PETER_VKEY[position]) + 1) + PETER_VKEY[position + 1 :]
        try:
            parsed = note.Verifier.parse(mangled)
        except note.NoteError:
            continue
        assert parsed == note.Verifier.parse(PETER_VKEY)  # only case-insensitive hex can survive


def test_signer_key_with_a_wrong_key_id_is_refused() -> None:
    with pytest.raises(note.NoteError, match="does not match"):
        note.Signer.parse(PETER_SKEY.replace("c74f20a3", "c74f20a4"))


def test_cosignature_signs_the_timestamped_message_and_verifies() -> None:
    witness = note.Signer.generate("witness.example/w1", note.COSIGNATURE_V1)
    checkpoint = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    line = witness.signature_line(checkpoint, timestamp=1679315147)
    cosigned = note.parse(checkpoint + "\n" + line)
    assert len(cosigned.signatures[0].signature) == 72
    assert cosigned.verified_by([witness.verifier]) == [witness.verifier]
    reparsed = note.Verifier.parse(str(witness.verifier))
    assert reparsed.key_type == note.COSIGNATURE_V1
    # An Ed25519 note key with the same name and public key has another key ID and does not match.
    plain = note.Verifier(witness.name, note.ED25519, witness.verifier.public)
    assert cosigned.verified_by([plain]) == []


def test_adding_a_cosignature_keeps_the_log_signature() -> None:
    log = note.Signer.parse(PETER_SKEY)
    witness = note.Signer.generate("witness", note.COSIGNATURE_V1)
    signed = note.sign(TEXT, [log])
    both = signed.with_signature_line(witness.signature_line(TEXT, 1))
    again = both.with_signature_line(witness.signature_line(TEXT, 2))
    assert len(again.signatures) == 2
    assert note.parse(str(again)).verified_by([log.verifier, witness.verifier]) == [log.verifier, witness.verifier]

"""C2SP signed notes with Ed25519 keys, and cosignature/v1 witness signatures.

Formats follow c2sp.org/signed-note and c2sp.org/tlog-cosignature (as Go's golang.org/x/mod/sumdb/note):
a verifier key is ``name+hhhhhhhh+base64(type ‖ public key)``, a signer key is
``PRIVATE+KEY+name+hhhhhhhh+base64(type ‖ seed)``, and each signature line is
``— name base64(key id ‖ signature)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
_DASH = "\u2014 "


class NoteError(ValueError):
    """A note, key or signature is malformed, or no trusted key signed the note."""


def _check_name(name: str) -> str:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def key_id(name: str, key_type: int, public: bytes) -> bytes:
    """The 4-byte key ID: the first bytes of SHA-256(name ‖ LF ‖ type ‖ public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A public key that checks signatures of one named signer."""

    name: str
    key_type: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.key_type, self.public)

    def message(self, text: str, signature: bytes) -> bytes:
        """The bytes this kind of key signs for a note text."""
        if self.key_type == COSIGNATURE_V1:
            (timestamp,) = struct.unpack(">Q", signature[:8])
            return f"cosignature/v1\ntime {timestamp}\n{text}".encode()
        return text.encode()

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether signature (without the key ID) is this key's signature of the note text."""
        raw = signature[8:] if self.key_type == COSIGNATURE_V1 else signature
        if len(raw) != 64 or (self.key_type == COSIGNATURE_V1 and len(signature) != 72):
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(raw, self.message(text, signature))
        except (InvalidSignature, ValueError):
            return False
        return True

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([self.key_type]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Read a verifier key string; NoteError if it is malformed or its key ID does not match."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is name+keyid+base64key")
        name, hex_id, encoded = parts
        try:
            blob = base64.b64decode(encoded, validate=True)
            if len(hex_id) != 8:
                raise ValueError("key ID is not 8 hex digits")
            expected_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as error:
            raise NoteError(f"verifier key is not valid base64/hex: {error}") from None
        if len(blob) != 33 or blob[0] not in (ED25519, COSIGNATURE_V1) or len(expected_id) != 4:
            raise NoteError("verifier key is not an Ed25519 or cosignature/v1 key")
        verifier = cls(_check_name(name), blob[0], blob[1:])
        if verifier.key_id != expected_id:
            raise NoteError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key that signs notes (type 0x01) or cosigns checkpoints (type 0x04)."""

    name: str
    key_type: int
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str, key_type: int = ED25519) -> Signer:
        """A new random key."""
        return cls(_check_name(name), key_type, Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_type, _raw_public(self.private.public_key()))

    def signature_line(self, text: str, timestamp: int = 0) -> str:
        """The `— name base64` line that signs the note text."""
        verifier = self.verifier
        if self.key_type == COSIGNATURE_V1:
            prefix = struct.pack(">Q", timestamp)
            signature = prefix + self.private.sign(verifier.message(text, prefix))
        else:
            signature = self.private.sign(text.encode())
        return f"{_DASH}{self.name} {base64.b64encode(verifier.key_id + signature).decode()}\n"

    def __str__(self) -> str:
        seed = self.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        encoded = base64.b64encode(bytes([self.key_type]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Read a signer key string; NoteError if it is malformed or its key ID does not match."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+name+keyid+base64key")
        name, hex_id, encoded = parts[2:]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise NoteError(f"signer key is not valid base64: {error}") from None
        if len(blob) != 33 or blob[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("signer key is not an Ed25519 or cosignature/v1 key")
        signer = cls(_check_name(name), blob[0], Ed25519PrivateKey.from_private_bytes(blob[1:]))
        if signer.verifier.key_id.hex() != hex_id.lower():
            raise NoteError(f"signer key {name}: key ID {hex_id} does not match the key")
        return signer


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A note text and its signature lines, before any signature is checked."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(signature.line() for signature in self.signatures)

    def verified_by(self, verifiers: list[Verifier]) -> list[Verifier]:
        """The given keys that signed this note; NoteError if a given key's signature is bad.

        Signatures by keys not given are ignored, as c2sp.org/signed-note asks.
        """
        good = []
        for verifier in verifiers:
            for signature in self.signatures:
                if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
                    continue
                if not verifier.verify(self.text, signature.signature):
                    raise NoteError(f"invalid signature for key {verifier.name}+{verifier.key_id.hex()}")
                good.append(verifier)
                break
        return good

    def with_signature_line(self, line: str) -> Note:
        """This note with one more signature (a line as Signer.signature_line gives)."""
        extra = parse(self.text + "\n" + line).signatures
        kept = [s for s in self.signatures if (s.name, s.key_id) != (extra[0].name, extra[0].key_id)]
        return Note(self.text, (*kept, *extra))


def sign(text: str, signers: list[Signer]) -> Note:
    """Sign a note text with each signer."""
    _check_text(text)
    lines = "".join(signer.signature_line(text) for signer in signers)
    return parse(text + "\n" + lines)


def parse(note: str) -> Note:
    """Split a signed note into text and signatures; NoteError if it is malformed."""
    if not note.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    signatures = []
    for line in block.splitlines():
        if not line.startswith(_DASH):
            raise NoteError(f"signature line does not start with an em dash: {line[:40]!r}")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"signature of {name!r} is not valid base64") from None
        if len(blob) < 5:
            raise NoteError(f"signature of {name!r} is too short")
        signatures.append(NoteSignature(_check_name(name), blob[:4], blob[4:]))
    if not signatures:
        raise NoteError("the note has no signature")
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text ends with a newline")
    if any((ord(ch) < 0x20 and ch != "\n") or ord(ch) == 0x7F for ch in text):
        raise NoteError("note text holds a control character")

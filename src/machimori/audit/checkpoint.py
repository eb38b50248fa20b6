"""Checkpoints of the audit log in the c2sp.org/tlog-checkpoint format."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from machimori.audit import note
from machimori.audit.merkle import HASH_SIZE

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A checkpoint is malformed or not signed by a trusted key."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree size and root hash of a named log."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The note text: origin, size and base64 root hash, one per line."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """Read a checkpoint note text; extension lines are allowed and ignored."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise CheckpointError("a checkpoint is at least three non-empty lines: origin, tree size, root hash")
        origin, size, root = lines[0], lines[1], lines[2]
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError(f"tree size {size!r} is not a decimal number without leading zeroes")
        try:
            digest = base64.b64decode(root, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != HASH_SIZE:
            raise CheckpointError(f"root hash {root!r} is not a base64 SHA-256 hash")
        return cls(origin, int(size), digest)


def sign_checkpoint(checkpoint: Checkpoint, signers: list[note.Signer]) -> note.Note:
    """A signed note of the checkpoint."""
    return note.sign(checkpoint.body(), signers)


def open_checkpoint(text: str, verifiers: list[note.Verifier], origin: str | None = None) -> Checkpoint:
    """The checkpoint in a signed note, once a trusted key's signature on it is verified."""
    try:
        signed = note.parse(text)
        if not signed.verified_by(verifiers):
            names = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers) or "none"
            raise CheckpointError(f"the checkpoint is not signed by a trusted key (trusted: {names})")
    except note.NoteError as error:
        raise CheckpointError(str(error)) from None
    checkpoint = Checkpoint.from_body(signed.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint

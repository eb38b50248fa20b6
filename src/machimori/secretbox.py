"""Secrets sealed at rest (TOTP seeds, device HMAC keys) with AES-256-GCM and a key in the data directory."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from machimori.keyfiles import create_private_file

KEY_FILE = "secrets.key"
_NONCE = 12


class SealBroken(ValueError):
    """A sealed secret was altered, moved to another record, or sealed with another key."""


class SecretBox:
    """Seals small secrets; the associated data binds each one to its record (e.g. purpose and account id)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def in_keys_dir(cls, keys_dir: Path) -> SecretBox:
        """The data directory's box; its key is made (mode 0600) on first use."""
        path = keys_dir / KEY_FILE
        if not path.exists():
            create_private_file(path, AESGCM.generate_key(bit_length=256))
        return cls(path.read_bytes())

    def seal(self, secret: bytes, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, secret, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], bound_to.encode())
        except (InvalidTag, ValueError):
            raise SealBroken(f"sealed secret for {bound_to} does not open") from None

"""A software WebAuthn authenticator (P-256, "none" attestation) for the demo and the tests — what a phone or
security key does. It keeps its key in memory and proves nothing about a device: never accept it in production."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

UP, UV, AT = 0x01, 0x04, 0x40


class SoftAuthenticator:
    """Holds one key pair per relying party, counts signatures, answers create() and get()."""

    def __init__(self, origin: str, user_verified: bool = True) -> None:
        self.origin = origin
        self.user_verified = user_verified
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0

    def _client_data(self, kind: str, options: dict[str, Any]) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": options["challenge"], "origin": self.origin, "crossOrigin": False}
        ).encode()

    def _flags(self, extra: int = 0) -> bytes:
        return bytes([UP | (UV if self.user_verified else 0) | extra])

    def create(self, options_json: str) -> dict[str, Any]:
        options = json.loads(options_json)
        numbers = self.key.public_key().public_numbers()
        cose_key = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + cose_key
        auth_data = rp_hash + self._flags(AT) + struct.pack(">I", self.sign_count) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        credential_id = bytes_to_base64url(self.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(self._client_data("webauthn.create", options)),
                "attestationObject": bytes_to_base64url(attestation),
            },
            "clientExtensionResults": {},
        }

    def get(self, options_json: str, rp_id: str, user_handle: bytes | None = None) -> dict[str, Any]:
        options = json.loads(options_json)
        self.sign_count += 1
        auth_data = hashlib.sha256(rp_id.encode()).digest() + self._flags() + struct.pack(">I", self.sign_count)
        client_data = self._client_data("webauthn.get", options)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        credential_id = bytes_to_base64url(self.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
                **({"userHandle": bytes_to_base64url(user_handle)} if user_handle else {}),
            },
            "clientExtensionResults": {},
        }

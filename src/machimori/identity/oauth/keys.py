"""The provider's token signing key: ECDSA P-256 (ES256, what every JOSE library verifies), kept as a JWK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

from machimori.keyfiles import create_private_file

ALGORITHM = "ES256"
KEY_FILE = "oauth-signing.jwk.json"


def signing_key(keys_dir: Path) -> ECKey:
    """The signing key, made on first use (file mode 0600)."""
    path = keys_dir / KEY_FILE
    if not path.exists():
        key = ECKey.generate_key("P-256", auto_kid=True)
        create_private_file(path, json.dumps(key.as_dict(private=True)).encode())
    return ECKey.import_key(json.loads(path.read_text(encoding="utf-8")))


def public_jwks(key: ECKey) -> dict[str, Any]:
    """The JWKS document: public keys only."""
    public = key.as_dict(private=False)
    public.update({"use": "sig", "alg": ALGORITHM})
    return {"keys": [public]}


def verification_keys(key: ECKey) -> KeySet:
    return KeySet([ECKey.import_key(public_jwks(key)["keys"][0])])

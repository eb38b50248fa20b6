"""OAuth clients: service providers' applications, registered by the city."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from sqlalchemy import insert, select

from machimori.clock import utc_now
from machimori.identity.tokens import secret_digest
from machimori.storage import Database
from machimori.storage.tables import oauth_clients

CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class ClientError(ValueError):
    """A registration that cannot be accepted (a redirect URI that would leak codes …)."""


def check_redirect_uri(uri: str) -> None:
    """Accept https, http on the loopback interface (RFC 8252 §7.3) or an app's private-use scheme
    (RFC 8252 §7.1, with a dot in it); never a fragment or a wildcard."""
    parts = urlsplit(uri)
    if parts.fragment or "*" in uri or not parts.scheme:
        raise ClientError(f"{uri!r}: an absolute URI without fragment or wildcard is required")
    if parts.scheme == "https" and parts.netloc:
        return
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return
    if parts.scheme not in ("http", "https") and "." in parts.scheme:
        return
    raise ClientError(f"{uri!r}: use https, http://127.0.0.1 (loopback) or an app scheme like com.example.app:/cb")


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    """A registered client as authlib's grants ask about it."""

    client_id: str
    secret_hash: bytes | None
    name: str
    org: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The scope asked for (all it was registered for if it asked for none); asking for more than the
        client was registered for is an error, not a quiet cut."""
        if not scope:
            return self.scope
        extra = set(scope.split()) - set(self.scope.split())
        if extra:
            raise InvalidScopeError(description=f"not registered for: {' '.join(sorted(extra))}")
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match only (RFC 9700)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, secret_digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.secret_hash is None:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def register_client(
    database: Database,
    name: str,
    *,
    org: str | None,
    grant_types: list[str],
    scope: str,
    redirect_uris: list[str] | None = None,
    public: bool = False,
) -> tuple[str, str | None]:
    """Register a client; returns its id and (for a confidential client) its secret, shown only now."""
    for uri in redirect_uris or []:
        check_redirect_uri(uri)
    client_id = "mm_" + secrets.token_urlsafe(16)
    secret = None if public else secrets.token_urlsafe(32)
    with database.begin() as connection:
        connection.execute(
            insert(oauth_clients).values(
                client_id=client_id,
                secret_hash=None if secret is None else secret_digest(secret),
                name=name,
                org=org,
                redirect_uris=json.dumps(redirect_uris or []),
                grant_types=json.dumps(grant_types),
                scope=scope,
                created_at=utc_now(),
            )
        )
    return client_id, secret


def find_client(database: Database, client_id: str) -> Client | None:
    """The active client with that id, or None."""
    with database.engine.connect() as connection:
        row = connection.execute(
            select(oauth_clients).where(oauth_clients.c.client_id == client_id, oauth_clients.c.revoked_at.is_(None))
        ).one_or_none()
    if row is None:
        return None
    return Client(
        row.client_id,
        row.secret_hash,
        row.name,
        row.org,
        tuple(json.loads(row.redirect_uris)),
        tuple(json.loads(row.grant_types)),
        row.scope,
    )

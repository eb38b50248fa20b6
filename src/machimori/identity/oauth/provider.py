"""The authorization server: authlib's grants and endpoints over FastAPI, RFC 9068 JWT access tokens."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData, Headers, QueryParams
from starlette.responses import Response

from machimori.events import Actor, EventClass, EventStream, SecurityEvent, Status
from machimori.identity.oauth.clients import Client, find_client
from machimori.identity.oauth.keys import ALGORITHM, public_jwks, signing_key, verification_keys
from machimori.storage import Database
from machimori.storage.tables import revoked_tokens

ACCESS_TOKEN_SECONDS = 300
SCOPES = ("city:read", "city:write", "audit:record", "consent:read", "openid", "profile")


class TokenRejected(ValueError):
    """The token is not one this provider issued for this audience, or no longer valid."""


@dataclass(frozen=True)
class AccessToken:
    """The verified claims of an access token."""

    claims: dict[str, Any]

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scope", "")).split())


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    """Query and form parameters of a request, read before authlib sees it."""

    def __init__(self, query: QueryParams, form: FormData) -> None:
        self._pairs = [*query.multi_items(), *((k, v) for k, v in form.multi_items() if isinstance(v, str))]

    @property
    def data(self) -> dict[str, str]:
        return dict(self._pairs)

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._pairs:
            values[key].append(value)
        return values


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, url: str, headers: Headers, query: QueryParams, form: FormData) -> None:
        super().__init__(method=method, uri=url, headers=headers)
        self.payload = FormPayload(query, form)
        self._query, self._form = query, form

    @property
    def args(self) -> QueryParams:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return {k: v for k, v in self._form.items() if isinstance(v, str)}


class _Tokens(JWTBearerTokenGenerator):  # type: ignore[misc]
    def __init__(self, issuer: str, audience: str, keys: KeySet) -> None:
        super().__init__(issuer, alg=ALGORITHM)
        self._audience, self._keys = audience, keys

    def get_jwks(self) -> KeySet:
        return self._keys

    def get_audiences(self, client: Client, user: Any, scope: str) -> str:
        return self._audience

    def get_extra_claims(self, client: Client, grant_type: str, user: Any, scope: str) -> dict[str, Any]:
        return {"org": client.org} if client.org else {}

    def _get_expires_in(self, client: Client, grant_type: str) -> int:
        return ACCESS_TOKEN_SECONDS


def _posted_token_claims(provider: Provider, request: Any) -> dict[str, Any] | None:
    """The claims of the token a client posted, or None if it is not a valid token of ours."""
    try:
        return provider.verify_access_token(request.form["token"]).claims
    except TokenRejected:
        return None


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662: any authenticated client may ask whether a token is active; our checks decide."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(server=provider)
        self.provider = provider

    def authenticate_token(self, request: Any, client: Client) -> dict[str, Any] | None:
        self.check_params(request, client)
        return _posted_token_claims(self.provider, request)

    def create_introspection_payload(self, token: dict[str, Any] | None) -> dict[str, Any]:
        if not token:
            return {"active": False}
        shown = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "org", "acr", "amr")
        return {"active": True, "token_type": "Bearer", **{k: token[k] for k in shown if k in token}}

    def check_permission(self, token: Any, client: Client, request: Any) -> bool:
        return True


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: a client revokes its own tokens; an unknown or foreign token is answered 200 all the same."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(server=provider)
        self.provider = provider

    def authenticate_token(self, request: Any, client: Client) -> dict[str, Any] | None:
        self.check_params(request, client)
        claims = _posted_token_claims(self.provider, request)
        return claims if claims and claims.get("client_id") == client.client_id else None

    def revoke_token(self, token: dict[str, Any], request: Any) -> None:
        self.provider.revoke(str(token["jti"]), int(token["exp"]))


class Provider(AuthorizationServer):  # type: ignore[misc]
    """machimori's OAuth 2.0 authorization server."""

    def __init__(self, database: Database, events: EventStream, keys_dir: Path, issuer: str, audience: str) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.database, self.events, self.issuer, self.audience = database, events, issuer, audience
        self.key = signing_key(keys_dir)
        self.register_token_generator("default", _Tokens(issuer, audience, KeySet([self.key])))
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(_Introspection(self))
        self.register_endpoint(_Revocation(self))

    def jwks(self) -> dict[str, Any]:
        return public_jwks(self.key)

    def query_client(self, client_id: str) -> Client | None:
        return find_client(self.database, client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        client = request.client
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.AUTHENTICATION,
                activity_id=1,
                status_id=Status.SUCCESS,
                message=f"access token issued to {client.name} ({client.client_id})",
                actor=Actor(uid=client.client_id, name=client.name, org=client.org, app_name=client.name),
                unmapped={"scope": token.get("scope", ""), "grant_type": request.payload.data.get("grant_type")},
            )
        )

    def revoke(self, jti: str, expires: int) -> None:
        try:
            with self.database.begin() as connection:
                connection.execute(
                    insert(revoked_tokens).values(jti=jti, expires_at=dt.datetime.fromtimestamp(expires, dt.UTC))
                )
        except IntegrityError:
            pass  # revoked already

    def is_revoked(self, jti: str | None) -> bool:
        if not jti:
            return True
        with self.database.engine.connect() as connection:
            return (
                connection.execute(select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)).first() is not None
            )

    def verify_access_token(self, token: str, leeway: int = 0) -> AccessToken:
        """The token's claims once every check passed; TokenRejected (with the reason) otherwise.

        Only the provider's own P-256 key and ES256 are accepted, so `alg: none` and an HMAC
        signature keyed with the public key (the classic confusion attack) fail before any claim is read.
        """
        try:
            decoded = jwt.decode(token, verification_keys(self.key), algorithms=[ALGORITHM])
        except (JoseError, ValueError) as error:
            raise TokenRejected(f"signature or format: {type(error).__name__}") from None
        if decoded.header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise TokenRejected("not an access token (typ)")
        registry = JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as error:
            raise TokenRejected(f"claims: {error.description or type(error).__name__}") from None
        if self.is_revoked(decoded.claims.get("jti")):
            raise TokenRejected("revoked")
        return AccessToken(dict(decoded.claims))

    def create_oauth2_request(self, request: StarletteOAuth2Request) -> StarletteOAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        content = json.dumps(body) if isinstance(body, dict) else body
        return Response(content, status_code=status, headers=dict(headers), media_type="application/json")

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_authenticate_client":
            return

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider / OAuth authorization server metadata."""
        base = self.issuer.rstrip("/")
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{base}/oauth/token",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "jwks_uri": f"{base}/oauth/jwks",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(SCOPES),
            "response_types_supported": [],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "subject_types_supported": ["public"],
        }

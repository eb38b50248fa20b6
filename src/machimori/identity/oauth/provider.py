"""The authorization server: authlib's grants and endpoints over FastAPI, RFC 9068 JWT access tokens."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authlib.oauth2 import AuthorizationServer
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
from starlette.responses import Response

from machimori.consent.records import ConsentChange, ConsentState, ConsentStore
from machimori.events import Actor, EventClass, EventStream, SecurityEvent, Status
from machimori.identity.accounts import Accounts
from machimori.identity.oauth.authorizations import ACCESS_TOKEN_SECONDS, Authorizations, Grant
from machimori.identity.oauth.clients import Client, find_client
from machimori.identity.oauth.grants import IdTokens, RequiredPkce, ResidentCode, RotatingRefresh
from machimori.identity.oauth.keys import ALGORITHM, public_jwks, signing_key, verification_keys
from machimori.identity.oauth.requests import StarletteOAuth2Request
from machimori.identity.sessions import acr_of
from machimori.storage import Database
from machimori.storage.tables import revoked_tokens

SCOPES = ("city:read", "city:write", "audit:record", "consent:read", "personal:read", "openid", "profile")


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

    @property
    def resident(self) -> str | None:
        """The resident who authorized this token (authorization code), None for a service's own token."""
        return str(self.claims["sub"]) if "grant" in self.claims else None

    @property
    def purposes(self) -> tuple[str, ...]:
        """The purposes the resident consented to when she authorized it."""
        return tuple(str(p) for p in self.claims.get("purposes", ()))


def _refresh_token(client: Client, grant_type: str, user: Grant | None, scope: str) -> str:
    return secrets.token_urlsafe(32)


class _Tokens(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens; those a resident authorized name her grant, its purposes and her AAL."""

    def __init__(self, issuer: str, audience: str, keys: KeySet) -> None:
        super().__init__(issuer, alg=ALGORITHM, refresh_token_generator=_refresh_token)
        self._audience, self._keys = audience, keys

    def get_jwks(self) -> KeySet:
        return self._keys

    def get_audiences(self, client: Client, user: Any, scope: str) -> str:
        return self._audience

    def get_extra_claims(self, client: Client, grant_type: str, user: Grant | None, scope: str) -> dict[str, Any]:
        claims: dict[str, Any] = {"org": client.org} if client.org else {}
        if user is not None:
            claims.update(grant=user.id, purposes=list(user.purposes))
        return claims

    def get_acr(self, user: Grant | None) -> str | None:
        return acr_of(user.aal) if user else None

    def get_amr(self, user: Grant | None) -> list[str] | None:
        return list(user.amr) if user else None

    def get_auth_time(self, user: Grant | None) -> int | None:
        return int(user.auth_time.timestamp()) if user else None

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
        shown = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "org", "acr", "amr", "auth_time")
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

    def __init__(
        self,
        database: Database,
        events: EventStream,
        consent: ConsentStore,
        accounts: Accounts,
        keys_dir: Path,
        issuer: str,
        audience: str,
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.database, self.events, self.accounts = database, events, accounts
        self.issuer, self.audience = issuer, audience
        self.key = signing_key(keys_dir)
        self.authorizations = Authorizations(database, events)
        self.register_token_generator("default", _Tokens(issuer, audience, KeySet([self.key])))
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(ResidentCode, [RequiredPkce(), IdTokens(self)])
        self.register_grant(RotatingRefresh)
        self.register_endpoint(_Introspection(self))
        self.register_endpoint(_Revocation(self))
        consent.listen(self._consent_changed)

    def _consent_changed(self, change: ConsentChange) -> None:
        """Tokens issued under a consent stop working when it is withdrawn, refused or expired."""
        if change.state is not ConsentState.given:
            self.authorizations.revoke_for_consent(change.resident, change.service, change.purpose)

    def profile_of(self, account_id: str) -> dict[str, Any]:
        """The OpenID Connect `profile` claims of an account."""
        profile = self.accounts.profile(account_id)
        return {"name": profile["display_name"], "preferred_username": profile["login"]}

    def jwks(self) -> dict[str, Any]:
        return public_jwks(self.key)

    def query_client(self, client_id: str) -> Client | None:
        return find_client(self.database, client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        client = request.client
        if "refresh_token" in token:
            self.authorizations.save_refresh_token(token["refresh_token"], request.user)
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.AUTHENTICATION,
                activity_id=1,
                status_id=Status.SUCCESS,
                message=f"access token issued to {client.name} ({client.client_id})",
                actor=Actor(uid=client.client_id, name=client.name, org=client.org, app_name=client.name),
                unmapped={
                    "scope": token.get("scope", ""),
                    "grant_type": request.payload.data.get("grant_type"),
                    "resident": request.user.account_id if request.user else None,
                },
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

    def is_revoked(self, jti: str | None, grant: str | None = None) -> bool:
        """Whether the token, or the grant it was issued under, was revoked."""
        if not jti:
            return True
        names = [jti] if grant is None else [jti, str(grant)]
        with self.database.engine.connect() as connection:
            return (
                connection.execute(select(revoked_tokens.c.jti).where(revoked_tokens.c.jti.in_(names))).first()
                is not None
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
        if self.is_revoked(decoded.claims.get("jti"), decoded.claims.get("grant")):
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
            "authorization_endpoint": f"{base}/oauth/authorize",
            "userinfo_endpoint": f"{base}/oauth/userinfo",
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "acr_values_supported": [acr_of(1), acr_of(2)],
            "claims_supported": ["sub", "name", "preferred_username", "acr", "amr", "auth_time"],
            "authorization_response_iss_parameter_supported": False,
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "subject_types_supported": ["public"],
        }

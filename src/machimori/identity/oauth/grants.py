"""The grants a resident-facing app uses: authorization code with PKCE (S256 only), OpenID Connect on top,
and rotating refresh tokens. Storage is in `authorizations`; these classes only tell authlib where."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import ECKey

from machimori.identity.oauth.authorizations import Grant, RedeemedCode, RotatedRefreshToken
from machimori.identity.oauth.clients import Client
from machimori.identity.oauth.keys import ALGORITHM

if TYPE_CHECKING:
    from machimori.identity.oauth.provider import Provider

ID_TOKEN_SECONDS = 300
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # "none": public apps, with PKCE


class RequiredPkce(CodeChallenge):  # type: ignore[misc]
    """PKCE on every authorization request, with S256 only (RFC 9700 §2.1.1); `plain` is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("'code_challenge' (PKCE) is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("'code_verifier' (PKCE) is required")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: RedeemedCode) -> str:
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: RedeemedCode) -> str:
        return "S256"


class ResidentCode(AuthorizationCodeGrant):  # type: ignore[misc]
    """Authorization code: the resident approves on the consent screen, the app redeems the code once."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: Provider

    def save_authorization_code(self, code: str, request: Any) -> None:
        grant: Grant = request.user
        data = request.payload.data
        self.server.authorizations.save_code(
            code, grant, data.get("redirect_uri", ""), data["code_challenge"], data.get("nonce")
        )

    def query_authorization_code(self, code: str, client: Client) -> RedeemedCode | None:
        return self.server.authorizations.redeem_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: RedeemedCode) -> None:
        """Nothing to do: redeeming used the code up."""

    def authenticate_user(self, authorization_code: RedeemedCode) -> Grant:
        return authorization_code.grant


class RotatingRefresh(RefreshTokenGrant):  # type: ignore[misc]
    """Refresh: each refresh token works once and comes back as a new one; a second use revokes the grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: Provider

    def authenticate_refresh_token(self, refresh_token: str) -> RotatedRefreshToken | None:
        return self.server.authorizations.rotate_refresh_token(refresh_token, self.request.client.client_id)

    def authenticate_user(self, refresh_token: RotatedRefreshToken) -> Grant:
        return refresh_token.grant

    def revoke_old_credential(self, refresh_token: RotatedRefreshToken) -> None:
        """Nothing to do: rotating used the old token up."""


class IdTokens(OpenIDCode):  # type: ignore[misc]
    """OpenID Connect: an ID token beside the access token when the app asked for `openid`."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return False  # a nonce rides on a one-time code, which cannot be replayed

    def resolve_client_private_key(self, client: Client) -> ECKey:
        return self.provider.key

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": str(self.provider.key.kid), "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": [client.client_id], "exp": int(time.time()) + ID_TOKEN_SECONDS}

    def generate_user_info(self, user: Grant, scope: str) -> UserInfo:
        info = UserInfo(sub=user.account_id)
        if "profile" in scope.split():
            info.update(self.provider.profile_of(user.account_id))
        return info

"""WebAuthn passkeys: registration and sign-in ceremonies with one-time challenges (py_webauthn).

A passkey that verifies the user (UV) is a phishing-resistant multi-factor authenticator: a sign-in with it
reaches AAL2. Each challenge is bound to one account and one ceremony and is deleted when used.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from machimori.audit.log import AuditLog
from machimori.clock import utc_now
from machimori.events import Actor, Endpoint, EventClass, EventStream, SecurityEvent, Severity, Status
from machimori.storage import Database
from machimori.storage.tables import accounts, passkeys, webauthn_challenges

CHALLENGE_LIFETIME = dt.timedelta(minutes=5)


class PasskeyRejected(ValueError):
    """A ceremony that failed: unknown or used challenge, wrong account, bad signature, cloned authenticator …"""


class Passkeys:
    """Passkey ceremonies for one relying party (the city's sign-in origin)."""

    def __init__(
        self,
        database: Database,
        events: EventStream,
        audit: AuditLog,
        rp_id: str,
        origin: str,
        rp_name: str = "machimori 街守",
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.database, self.events, self.audit = database, events, audit
        self.rp_id, self.origin, self.rp_name, self.clock = rp_id, origin, rp_name, clock

    def begin_registration(self, account_id: str) -> str:
        """Creation options (JSON for navigator.credentials.create) for a new passkey of the account."""
        with self.database.engine.connect() as connection:
            account = connection.execute(select(accounts).where(accounts.c.id == account_id)).one()
            existing = connection.execute(select(passkeys.c.credential_id).where(passkeys.c.account_id == account_id))
            exclude = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id)) for row in existing]
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_name=account.login,
            user_id=account_id.encode(),
            user_display_name=account.display_name,
            exclude_credentials=exclude,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.REQUIRED
            ),
        )
        self._remember(options.challenge, account_id, "register")
        return str(options_to_json(options))

    def finish_registration(self, account_id: str, credential: dict[str, Any]) -> str:
        """Verify the authenticator's answer and keep the passkey; its credential id."""
        challenge = self._challenge_in(credential)
        self._consume(challenge, account_id, "register")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                require_user_verification=True,
            )
        except (InvalidRegistrationResponse, ValueError, KeyError) as error:
            raise PasskeyRejected(f"registration not accepted: {error}") from None
        credential_id = bytes_to_base64url(verified.credential_id)
        with self.database.begin() as connection:
            connection.execute(
                insert(passkeys).values(
                    credential_id=credential_id,
                    account_id=account_id,
                    public_key=verified.credential_public_key,
                    sign_count=verified.sign_count,
                    created_at=self.clock(),
                )
            )
        self.audit.append_sync({"action": "passkey.register", "account": account_id, "credential": credential_id})
        return credential_id

    def begin_sign_in(self, account_id: str) -> str:
        """Request options (JSON for navigator.credentials.get) listing the account's passkeys."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(select(passkeys.c.credential_id).where(passkeys.c.account_id == account_id))
            allowed = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id)) for row in rows]
        options = generate_authentication_options(
            rp_id=self.rp_id, allow_credentials=allowed, user_verification=UserVerificationRequirement.REQUIRED
        )
        self._remember(options.challenge, account_id, "sign-in")
        return str(options_to_json(options))

    def finish_sign_in(self, account_id: str, credential: dict[str, Any], source: str) -> int:
        """Verify an assertion for the account that asked; the AAL reached (2). PasskeyRejected otherwise."""
        challenge = self._challenge_in(credential)
        self._consume(challenge, account_id, "sign-in")
        with self.database.engine.connect() as connection:
            row = connection.execute(
                select(passkeys).where(passkeys.c.credential_id == str(credential.get("id", "")))
            ).one_or_none()
        if row is None or row.account_id != account_id:
            self._event(account_id, source, "passkey of another account or unknown", Status.FAILURE, Severity.HIGH)
            raise PasskeyRejected("this passkey does not belong to the account signing in")
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=row.public_key,
                credential_current_sign_count=row.sign_count,
                require_user_verification=True,
            )
        except (InvalidAuthenticationResponse, ValueError, KeyError) as error:
            self._event(account_id, source, f"passkey assertion rejected: {error}", Status.FAILURE, Severity.MEDIUM)
            raise PasskeyRejected(f"sign-in not accepted: {error}") from None
        with self.database.begin() as connection:
            connection.execute(
                update(passkeys)
                .where(passkeys.c.credential_id == row.credential_id)
                .values(sign_count=verified.new_sign_count, last_used_at=self.clock())
            )
        self._event(account_id, source, "signed in with a passkey (AAL2)", Status.SUCCESS, Severity.INFORMATIONAL)
        return 2

    def _challenge_in(self, credential: dict[str, Any]) -> bytes:
        try:
            client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
            return base64url_to_bytes(client_data["challenge"])
        except (KeyError, TypeError, ValueError):
            raise PasskeyRejected("the credential has no readable clientDataJSON") from None

    def _remember(self, challenge: bytes, account_id: str, ceremony: str) -> None:
        with self.database.begin() as connection:
            connection.execute(delete(webauthn_challenges).where(webauthn_challenges.c.expires_at < self.clock()))
            connection.execute(
                insert(webauthn_challenges).values(
                    challenge=bytes_to_base64url(challenge),
                    account_id=account_id,
                    ceremony=ceremony,
                    expires_at=self.clock() + CHALLENGE_LIFETIME,
                )
            )

    def _consume(self, challenge: bytes, account_id: str, ceremony: str) -> None:
        """Delete the challenge; PasskeyRejected unless it was issued to this account for this ceremony."""
        with self.database.begin() as connection:
            deleted = connection.execute(
                delete(webauthn_challenges).where(
                    webauthn_challenges.c.challenge == bytes_to_base64url(challenge),
                    webauthn_challenges.c.account_id == account_id,
                    webauthn_challenges.c.ceremony == ceremony,
                    webauthn_challenges.c.expires_at >= self.clock(),
                )
            ).rowcount
        if deleted != 1:
            raise PasskeyRejected("unknown, expired or already used challenge")

    def _event(self, account_id: str, source: str, message: str, status: Status, severity: Severity) -> None:
        self.events.emit(
            SecurityEvent(
                class_uid=EventClass.AUTHENTICATION,
                activity_id=1,
                status_id=status,
                severity_id=severity,
                message=message,
                actor=Actor(uid=account_id),
                src_endpoint=Endpoint(ip=source),
            )
        )

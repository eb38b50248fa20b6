"""The conformance test setting: NGSI-LD requests without a token, served in test tenants only (TEST ONLY).

The ETSI NGSI-LD conformance suite sends no credentials. With `hub_conformance_tenant` set (never by
default, refused on a public address) a request to /ngsi-ld/v1 that carries no Authorization header is
made by a synthetic test service (`ngsi-ld-conformance` of organisation `conformance-test`, scopes
city:read city:write, no resident) in a test tenant of its own: the requested tenant T becomes
`<setting>~` (default tenant) or `<setting>~T`. `~` is refused in a real `NGSILD-Tenant` header, so no
real tenant is ever read or written. In those test tenants, and only there, a type no dataset of the
city model claims is open data of the test organisation; the decision point still decides every
request, so a dataset the city model does claim (personal data above all) stays as protected as
anywhere. A request with a token is handled exactly as without this setting.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from fastapi import Request

from machimori.config import Settings
from machimori.diagnostics import InputError
from machimori.events import EventClass, SecurityEvent, Severity, Status
from machimori.hub.catalogue import Catalogue, Classification
from machimori.identity.oauth.provider import AccessToken
from machimori.platform import Platform
from machimori.policy import DataType
from machimori.web.security import platform_of, verified_token

CLIENT_ID = "ngsi-ld-conformance"
ORGANISATION = "conformance-test"
SCOPES = "city:read city:write"
SEPARATOR = "~"  # never in a real tenant name (requests.tenant_of takes letters, digits, '_' and '-')
TENANT_COLUMN = 64
API_PREFIX = "/ngsi-ld/v1/"

if TYPE_CHECKING:
    from machimori.hub.broker import Hub

log = logging.getLogger("machimori.hub.conformance")


def tenant_for(setting: str, tenant: str) -> str:
    """The test tenant a request for `tenant` ('' = default) is confined to: distinct from every real
    tenant (it contains '~'), distinct for distinct tenants, at most 64 characters."""
    name = f"{setting}{SEPARATOR}{tenant}"
    if len(name) <= TENANT_COLUMN:
        return name
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:24]  # a second '~' marks the shortened form
    keep = TENANT_COLUMN - len(setting) - len(digest) - 2
    return f"{setting}{SEPARATOR}{tenant[:keep]}{SEPARATOR}{digest}"


class ConformanceCatalogue(Catalogue):
    """The city model's classification, except that a type it does not claim is open data of the test
    organisation (used for the test tenants only)."""

    def __init__(self, base: Catalogue) -> None:
        super().__init__({})
        self._base = base

    def classify(self, types: Iterable[str]) -> Classification:
        found = self._base.classify(types)
        if found.dataset is not None:
            return found
        return Classification(None, DataType.open, ORGANISATION)


def is_test_tenant(settings: Settings, tenant: str) -> bool:
    """Whether a tenant is one of the conformance test tenants (only ever with the setting on)."""
    setting = settings.hub_conformance_tenant
    return bool(setting) and tenant.startswith(f"{setting}{SEPARATOR}")


def suite_token() -> AccessToken:
    """The synthetic credential of the conformance suite (never issued, never verifiable)."""
    return AccessToken({"client_id": CLIENT_ID, "org": ORGANISATION, "scope": SCOPES})


def suite_identity(hub: Hub, setting: str, tenant: str) -> tuple[Hub, AccessToken, str]:
    """What a request without a token works with: the hub classifying for the test tenants, the test
    service's credential and the test tenant standing for `tenant`."""
    return replace(hub, catalogue=ConformanceCatalogue(hub.catalogue)), suite_token(), tenant_for(setting, tenant)


def token_or_test(request: Request) -> AccessToken | None:
    """A dependency: the verified token as always; None (the test service) only when the conformance
    setting is on and an NGSI-LD request carries no Authorization header at all."""
    setting = platform_of(request).settings.hub_conformance_tenant
    if setting is not None and "authorization" not in request.headers and request.url.path.startswith(API_PREFIX):
        return None
    return verified_token(request)


def refuse_public(settings: Settings) -> None:
    """The conformance setting only on a server that listens on loopback and declares no proxy in front."""
    if settings.hub_conformance_tenant is None:
        return
    if not settings.loopback or settings.behind_tls_proxy:
        raise InputError.single(
            "hub_conformance_tenant",
            f"適合試験モードはループバックのみで使えます（{settings.host}）/ the conformance test setting serves "
            f"requests without a token and is refused unless the server listens on loopback only "
            f"(host {settings.host}{', behind a proxy' if settings.behind_tls_proxy else ''})",
        )


def announce(platform: Platform) -> None:
    """Say loudly, in the log and as a security event, that the conformance setting is on."""
    setting = platform.settings.hub_conformance_tenant
    if setting is None:
        return
    message = (
        f"NGSI-LD conformance test mode is ON: requests without a token are served in test tenants "
        f"{setting}{SEPARATOR}* / 適合試験モード有効：トークンのない要求を試験用テナントで処理します — never in production"
    )
    log.warning(message)
    platform.events.emit(
        SecurityEvent(
            class_uid=EventClass.API_ACTIVITY,
            activity_id=99,
            severity_id=Severity.HIGH,
            status_id=Status.SUCCESS,
            message=message,
            unmapped={"setting": "hub_conformance_tenant", "tenant_prefix": setting + SEPARATOR},
        )
    )

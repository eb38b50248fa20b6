"""The NGSI-LD broker a guard stands in front of, reached over HTTP with bounded waits and bodies.

Only what the guard chooses is sent: the method, the path under /ngsi-ld/v1, the query, the body and
the headers NGSI-LD needs (Content-Type, Link, Accept, NGSILD-Tenant) — never the caller's own
credentials; the guard's own bearer token for the upstream if one is set. Redirects are not followed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from machimori.diagnostics import InputError
from machimori.hub.errors import ErrorType, NgsiLdError

API = "/ngsi-ld/v1/"
MAX_ANSWER_BYTES = 16 << 20
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
FORWARDED_HEADERS = ("content-type", "link", "accept")


class UpstreamFailed(NgsiLdError):
    """The upstream broker could not be reached or gave an answer the guard will not pass on (HTTP 502)."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorType.InternalError, f"{detail} / 上流のブローカーに問題があります")

    def response(self, status: int | None = None) -> Any:
        return super().response(status or 502)


@dataclass(frozen=True)
class Answer:
    """What the upstream answered."""

    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON; UpstreamFailed if it is not."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError):
            raise UpstreamFailed("the upstream answered something that is not JSON") from None


def checked_url(url: str) -> str:
    """The upstream's base URL (http or https, no query or fragment), without a trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InputError.single(
            "--upstream", f"{url!r}: http(s)://host[:port][/path] が必要です / an http(s) URL of the broker is required"
        )
    return url.rstrip("/")


def entity_path(*segments: str) -> str:
    """A path under /ngsi-ld/v1 from its segments, each percent-encoded (ids may hold '/', '#', '?')."""
    return "/".join(quote(segment, safe=":@") for segment in segments)


class Upstream:
    """The broker behind the guard."""

    def __init__(
        self, base_url: str, token: str | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = checked_url(base_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT, follow_redirects=False, headers=headers, transport=transport, trust_env=False
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        tenant: str = "",
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """One request to the upstream at /ngsi-ld/v1/<path>; UpstreamFailed if it fails or says too much."""
        sent = {name: value for name, value in (headers or {}).items() if name.lower() in FORWARDED_HEADERS}
        if tenant:
            sent["NGSILD-Tenant"] = tenant
        request = self._client.build_request(
            method, self.base_url + API + path, params=list(params), headers=sent, content=body
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise UpstreamFailed(f"the upstream broker did not answer: {type(error).__name__}") from None
        try:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise UpstreamFailed(f"the upstream's answer is larger than {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
        except httpx.HTTPError as error:
            raise UpstreamFailed(f"the upstream's answer broke off: {type(error).__name__}") from None
        finally:
            await response.aclose()
        if 300 <= response.status_code < 400:
            raise UpstreamFailed(f"the upstream redirected ({response.status_code}); the guard follows no redirects")
        return Answer(response.status_code, response.headers, b"".join(chunks))

    async def close(self) -> None:
        await self._client.aclose()

"""Telemetry over HTTP: `POST /api/v1/telemetry`, taken before the API's routing and middleware.

Devices send many small messages; each is authenticated by its own signature, not by a token, so the API's
routing, token checks and access log have nothing to add and would cost more than the gateway's own work.
A message is checked in a small pool of threads (a cache miss reads the registry) and answered once its
reading is durable; every refusal is answered as problem details and reported by the gateway as an event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from machimori.gateway.ingest import Gateway
from machimori.web.problems import problem

PATH = "/api/v1/telemetry"
MAX_BODY = 1024 * 1024  # the gateway refuses envelopes over 4 KiB itself (oversized, with an event)
COSE_TYPES = (b"application/cose", b"application/octet-stream")
COMMIT_WAIT_SECONDS = 30.0  # a database that hangs answers 503 (the device sends again), not never

# what each refusal answers over HTTP
STATUS_OF = {
    "oversized": 413,
    "malformed": 400,
    "schema": 400,
    "clock-skew": 400,
    "out-of-range": 422,
    "unknown-device": 401,
    "bad-signature": 401,
    "wrong-algorithm": 401,
    "key-changed": 401,
    "quarantined": 403,
    "retired": 403,
    "replay": 409,
    "counter-too-old": 409,
    "rate-limited": 429,
}


class TelemetryIngress:
    """ASGI middleware answering telemetry itself and passing every other request on."""

    def __init__(self, app: ASGIApp, gateway: Gateway, threads: int = 4) -> None:
        self.app = app
        self.gateway = gateway
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="machimori-telemetry")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await problem(405, "POST a COSE message / POST で送ってください", headers={"Allow": "POST"})(
                scope, receive, send
            )
            return
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if kind not in COSE_TYPES:
            detail = "send a COSE message as application/cose / application/cose で送ってください"
            await problem(415, detail)(scope, receive, send)
            return
        body = await _body(receive, headers.get(b"content-length"))
        if body is None:
            await problem(413, f"request body over {MAX_BODY} bytes", "body-too-large")(scope, receive, send)
            return
        client = scope.get("client")
        loop = asyncio.get_running_loop()
        try:
            pending = await loop.run_in_executor(
                self.pool, self.gateway.submit, body, "http", client[0] if client else None
            )
            outcome = await asyncio.wait_for(asyncio.wrap_future(pending), COMMIT_WAIT_SECONDS)
        except Exception:  # a timeout too: the database did not take it, the device sends it again
            detail = "the reading was not stored; send it again / 保存できませんでした。再送してください"
            await problem(503, detail, "telemetry-not-stored")(scope, receive, send)
            return
        if outcome.accepted:
            stored = {"accepted": True, "device": outcome.device_id, "counter": outcome.counter}
            await JSONResponse(stored)(scope, receive, send)
            return
        reason = outcome.reason or "refused"
        status = STATUS_OF.get(reason, 400)
        retry = {"Retry-After": "60"} if status == 429 else {}  # no Bearer challenge: the signature is the credential
        refusal = problem(status, f"{reason}: {outcome.message}", f"telemetry-{reason}", retry, reason=reason)
        await refusal(scope, receive, send)


async def _body(receive: Receive, declared: bytes | None) -> bytes | None:
    """The request body, or None if it is (or says it is) over MAX_BODY."""
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

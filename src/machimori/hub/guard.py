"""Guard mode: the hub's enforcement in front of an existing NGSI-LD broker (Orion-LD, Scorpio, Stellio).

Every request is made by a `Caller` (the same OAuth token, tenant and purpose as the hub's own API).
Writes are decided on the entity's stored types, which the guard first reads from the upstream (an id is
never parsed for a type), and on the types a body gives; a write the caller may not make to an entity is
answered as if it did not exist. Reads (one entity, queries, batch query) are fetched whole and
normalized, expanded, filtered by `Caller.sees` (personal attributes by consent, hidden entities left
out), matched again against `q` on what the caller sees, and compacted with the caller's @context.
The upstream's result count and paging headers are not passed on (they would count hidden entities).
Subscriptions and everything else are refused: the upstream would notify subscribers around the guard.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from machimori.diagnostics import InputError
from machimori.hub.broker import open_hub
from machimori.hub.caller import Caller, CallerOf
from machimori.hub.entities import Entity, is_uri, parse_entity, render_entity
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request, not_found
from machimori.hub.jsonld import ActiveContext, ContextValue
from machimori.hub.q import Query, parse_q
from machimori.hub.requests import JSON, UnsupportedMediaType, body_context, json_body, link_context, load_body, now
from machimori.hub.routes.writes import refusal
from machimori.hub.upstream import Answer, Upstream, entity_path
from machimori.hub.upstream_entities import answer_context, entity_from_answer
from machimori.platform import Platform
from machimori.policy import Decision

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD guard"])
PREFIX = b"/ngsi-ld/v1/"
BATCH_WRITES = frozenset({"create", "upsert", "update", "delete", "merge"})
APPLIED_HERE = frozenset({"attrs", "pick", "omit", "options", "format", "count", "lang"})
MAX_BATCH = 1000
LOOKUPS = 8  # stored entities read from the upstream at once
RELAYED_HEADERS = ("content-type",)


class Relayed(Exception):
    """An upstream answer passed on as it is (an error about the request itself)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def install_guard(app: FastAPI, platform: Platform, upstream: Upstream) -> None:
    """Serve /ngsi-ld/v1 of the app by guarding the upstream broker."""
    if platform.settings.hub_conformance_tenant is not None:
        raise InputError.single(
            "hub_conformance_tenant",
            "ガードは適合試験モードを受け付けません / the guard does not take the conformance setting",
        )
    app.state.hub = open_hub(platform)  # contexts and the city model's classification
    app.state.upstream = upstream
    app.include_router(router, dependencies=[Depends(load_body)])

    @app.exception_handler(NgsiLdError)
    async def ngsi_ld_error(request: Request, error: NgsiLdError) -> Response:
        return error.response()

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, error: UnsupportedMediaType) -> Response:
        return NgsiLdError(ErrorType.InvalidRequest, str(error)).response(status=415)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], response_model=None)
async def guarded(request: Request, caller: CallerOf) -> Response:
    """Any NGSI-LD request: decided, forwarded if allowed, its answer filtered."""
    guard = Guard(request, caller, request.app.state.upstream)
    try:
        return await guard.dispatch(request.method, _segments(request))
    except Relayed as relayed:
        return relay(relayed.answer)


def _segments(request: Request) -> list[str]:
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    rest = raw[len(PREFIX) :] if raw.startswith(PREFIX) else b""
    return [unquote_to_bytes(part).decode("utf-8", "replace") for part in rest.rstrip(b"/").split(b"/") if rest]


def relay(answer: Answer, status: int | None = None) -> Response:
    """The upstream's answer as the guard passes it on: status, body, content type, and a Location made
    relative to the guard."""
    headers = {name: answer.headers[name] for name in RELAYED_HEADERS if name in answer.headers}
    location = answer.headers.get("location")
    if location:
        parts = urlsplit(location)
        headers["Location"] = parts.path + (f"?{parts.query}" if parts.query else "")
    return Response(answer.body, status_code=status or answer.status, headers=headers)


def _refused(what: str) -> NgsiLdError:
    return NgsiLdError(
        ErrorType.OperationNotSupported,
        f"{what} is not offered through the guard / ガード経由では提供していません",
    )


@dataclass
class Guard:
    """One request through the guard."""

    request: Request
    caller: Caller
    upstream: Upstream

    async def dispatch(self, method: str, segments: list[str]) -> Response:
        match (method, segments):
            case ("GET", ["entities"]):
                return await self.query()
            case ("POST", ["entities"]):
                return await self.create()
            case ("GET", ["entities", entity_id]):
                return await self.retrieve(entity_id)
            case ("DELETE", ["entities", entity_id]):
                return await self.change(entity_id, "delete", segments)
            case ("PUT", ["entities", entity_id]):
                return await self.change(entity_id, "replace", segments, typed=True)
            case ("PATCH", ["entities", entity_id]):
                return await self.change(entity_id, "merge", segments, typed=True)
            case ("POST" | "PATCH", ["entities", entity_id, "attrs"]):
                return await self.change(entity_id, "update", segments)
            case ("PATCH" | "PUT" | "DELETE", ["entities", entity_id, "attrs", _]):
                return await self.change(entity_id, "update", segments)
            case ("POST", ["entityOperations", "query"]):
                return await self.batch_query()
            case ("POST", ["entityOperations", operation]) if operation in BATCH_WRITES:
                return await self.batch_write(operation)
            case (_, ["subscriptions", *_]):
                raise NgsiLdError(
                    ErrorType.OperationNotSupported,
                    "subscriptions are not offered through the guard: the upstream would notify subscribers "
                    "directly, around the guard's filter / ガード経由のサブスクリプションは提供していません"
                    "（上流が通知をガードを通さず送るため）",
                )
            case _:
                raise _refused(f"{method} /ngsi-ld/v1/{'/'.join(segments)}")

    # -- the upstream ---------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = (),
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        return await self.upstream.call(
            method, path, tenant=self.caller.tenant, params=params, headers=headers, body=body
        )

    async def forward(self, segments: list[str], body: bytes | None = None) -> Answer:
        """The request as it came (path, query, body, NGSI-LD headers) sent upstream."""
        return await self.call(
            self.request.method,
            entity_path(*segments),
            params=self.request.query_params.multi_items(),
            headers=dict(self.request.headers),
            body=await self.request.body() if body is None else body,
        )

    async def stored(self, entity_id: str) -> Entity | None:
        """The entity as the upstream stores it (all attributes, expanded), None if it has none."""
        answer = await self.call("GET", entity_path("entities", entity_id), headers={"Accept": JSON})
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise Relayed(answer)
        item = answer.json()
        return entity_from_answer(item, self.caller.hub.contexts.active(answer_context(answer, item, None)))

    # -- writes ---------------------------------------------------------------------------------------

    async def create(self) -> Response:
        raw = await self.request.body()
        entity = self.parsed(json_body(self.request))
        decision = self.caller.may_write(entity, "create")
        if not decision.permit:
            raise refusal(decision)
        answer = await self.forward(["entities"], raw)
        if answer.status == 201:
            self.caller.written(entity, "create")
        return relay(answer)

    async def change(self, entity_id: str, what: str, segments: list[str], *, typed: bool = False) -> Response:
        """A write to a stored entity: the caller must be allowed to write it as stored (else it does not
        exist), and as it would be if the body gives types."""
        if not is_uri(entity_id):
            raise bad_request(f"{entity_id!r} is not a URI")
        stored = await self.stored(entity_id)
        if stored is None or not self.caller.may_write(stored, what).permit:
            raise not_found(f"no entity {entity_id} / エンティティがありません")
        raw = await self.request.body()
        if typed and raw:
            body = json_body(self.request)
            if isinstance(body, dict) and ("type" in body or "@type" in body):
                given = self.parsed({**body, "id": entity_id})
                types = given.types if what == "replace" else sorted(set(stored.types) | set(given.types))
                attributes = given.attributes if what == "replace" else {**stored.attributes, **given.attributes}
                decision = self.caller.may_write(replace(given, types=types, attributes=attributes), what)
                if not decision.permit:
                    raise refusal(decision)
        answer = await self.forward(segments, raw)
        if answer.status < 300 or answer.status == 207:
            self.caller.written(stored, what)
        return relay(answer)

    def parsed(self, body: Any) -> Entity:
        """An entity of the request's body, read with the request's @context (as the upstream will)."""
        headers = self.request.headers
        context = body_context(headers.get("content-type"), headers.get("link"), body)
        return parse_entity(body, self.caller.hub.contexts.active(context), now=now())

    async def batch_write(self, operation: str) -> Response:
        """A batch: each entity decided alone; the allowed ones go upstream, the others are errors of a
        207 answer (not found, if the caller may not write what is stored)."""
        items = json.loads(await self.request.body() or b"null")
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            raise bad_request(f"a batch is a list of 1 to {MAX_BATCH} entities / バッチは 1〜{MAX_BATCH} 件の配列です")
        verdicts = await _bounded([self.batch_item(operation, item) for item in items])
        allowed = [item for item, (_, error, _) in zip(items, verdicts, strict=True) if error is None]
        errors = [{"entityId": entity_id, "error": error} for entity_id, error, _ in verdicts if error is not None]
        if not allowed:
            return JSONResponse({"success": [], "errors": errors}, status_code=207, media_type=JSON)
        answer = await self.forward(["entityOperations", operation], json.dumps(allowed).encode())
        for _, error, entity in verdicts:
            if error is None and entity is not None and answer.status in (200, 201, 204, 207):
                self.caller.written(entity, operation)
        if not errors:
            return relay(answer)
        if answer.status in (200, 201, 204):
            done = answer.json() if answer.status == 201 and answer.body else None
            success = (
                done if isinstance(done, list) else [entity_id for entity_id, error, _ in verdicts if error is None]
            )
            return JSONResponse({"success": success, "errors": errors}, status_code=207, media_type=JSON)
        if answer.status == 207:
            result = answer.json() or {}
            merged = {"success": result.get("success", []), "errors": [*result.get("errors", []), *errors]}
            return JSONResponse(merged, status_code=207, media_type=JSON)
        return relay(answer)

    async def batch_item(self, operation: str, item: Any) -> tuple[str, dict[str, Any] | None, Entity | None]:
        """The entity id of one batch item, the error that keeps it from the upstream (None: allowed) and
        the entity to audit-log if it is written."""
        entity_id = item if operation == "delete" else item.get("id") if isinstance(item, dict) else None
        if not is_uri(entity_id):
            return str(entity_id), _problem(bad_request(f"{entity_id!r} is not a URI")), None
        key = str(entity_id)
        stored = None
        try:
            given = None if operation == "delete" else self.parsed(json.loads(json.dumps(item)))
            if operation != "create":
                stored = await self.stored(key)
                if stored is None and operation in ("update", "merge", "delete"):
                    return key, _problem(not_found(f"no entity {key} / エンティティがありません")), None
                if stored is not None and not self.caller.may_write(stored, operation).permit:
                    return key, _problem(not_found(f"no entity {key} / エンティティがありません")), None
                if given is not None and stored is not None and operation != "upsert":
                    given = replace(given, types=sorted(set(stored.types) | set(given.types)))
            if given is not None:
                decision: Decision = self.caller.may_write(given, operation)
                if not decision.permit:
                    return key, _problem(refusal(decision)), None
        except NgsiLdError as error:
            return key, _problem(error), None
        return key, None, given or stored

    # -- reads ----------------------------------------------------------------------------------------

    def view(self) -> View:
        """How the caller asked to see entities (attrs, pick, omit, options, format), and in what @context."""
        params = self.request.query_params
        link = self.request.headers.get("link")
        active = self.caller.hub.contexts.active(link_context(link))
        return View.of(active, link, params.get("attrs"), params.get("pick"), params.get("omit"), params)

    async def retrieve(self, entity_id: str) -> Response:
        if not is_uri(entity_id):
            raise bad_request(f"{entity_id!r} is not a URI")
        view = self.view()
        stored = await self.stored(entity_id)
        seen = self.caller.sees(stored) if stored is not None else None
        if seen is None:
            raise not_found(f"no entity {entity_id} / エンティティがありません")
        return JSONResponse(view.render(seen), media_type=JSON)

    async def query(self) -> Response:
        view = self.view()
        params = self.request.query_params
        q = parse_q(params["q"], view.active) if params.get("q") else None
        geo = view.active.expand(params.get("geoproperty") or "location") if params.get("georel") else None
        sent = [(name, value) for name, value in params.multi_items() if name not in APPLIED_HERE]
        answer = await self.call("GET", "entities", params=[*sent, ("options", "sysAttrs")], headers=view.headers)
        return self.filtered(answer, view, q, geo)

    async def batch_query(self) -> Response:
        body = json_body(self.request)
        if not isinstance(body, dict):
            raise bad_request("a query is a JSON object / 問い合わせは JSON オブジェクトです")
        sent = {name: value for name, value in body.items() if name not in ("attrs", "pick", "omit")}
        headers = self.request.headers
        context = body_context(headers.get("content-type"), headers.get("link"), dict(body))
        active = self.caller.hub.contexts.active(context)
        attrs = body.get("attrs")
        view = View.of(
            active, None, ",".join(attrs) if isinstance(attrs, list) else None, None, None, self.request.query_params
        )
        q = parse_q(body["q"], active) if isinstance(body.get("q"), str) and body["q"] else None
        geo_q = body.get("geoQ")
        geo = active.expand(geo_q.get("geoproperty") or "location") if isinstance(geo_q, dict) else None
        params = [(n, v) for n, v in self.request.query_params.multi_items() if n not in APPLIED_HERE]
        forwarded = {name: value for name, value in headers.items() if name.lower() in ("content-type", "link")}
        answer = await self.call(
            "POST",
            "entityOperations/query",
            params=[*params, ("options", "sysAttrs")],
            headers={**forwarded, "Accept": JSON},
            body=json.dumps(sent).encode(),
        )
        return self.filtered(answer, view, q, geo, asked=context)

    def filtered(
        self, answer: Answer, view: View, q: Query | None, geo: str | None, asked: ContextValue = None
    ) -> Response:
        """The upstream's entities as far as the caller may see them; an entity is left out if it is
        hidden, if it no longer matches q on what the caller sees, or if the geo-query's attribute is hidden."""
        if answer.status != 200:
            raise Relayed(answer)
        items = answer.json()
        if not isinstance(items, list):
            raise Relayed(answer)
        asked = asked if asked is not None else link_context(view.link)
        shown = []
        for item in items:
            entity = entity_from_answer(item, self.caller.hub.contexts.active(answer_context(answer, item, asked)))
            seen = self.caller.sees(entity, "query")
            if seen is None or (q is not None and not q.matches(seen)):
                continue
            if geo is not None and geo in entity.attributes and geo not in seen.attributes:
                continue
            shown.append(view.render(seen))
        return JSONResponse(shown, media_type=JSON)


@dataclass(frozen=True)
class View:
    """How entities are shown to the caller."""

    active: ActiveContext
    link: str | None
    chosen: frozenset[str] | None
    omitted: frozenset[str]
    key_values: bool
    sys_attrs: bool

    @classmethod
    def of(
        cls, active: ActiveContext, link: str | None, attrs: str | None, pick: str | None, omit: str | None, params: Any
    ) -> View:
        names = [n for n in f"{attrs or ''},{pick or ''}".split(",") if n and n not in ("id", "type")]
        flags = set((params.get("options") or "").split(","))
        key_values = "keyValues" in flags or params.get("format") in ("keyValues", "simplified")
        return cls(
            active,
            link,
            frozenset(active.expand(n) for n in names) if names else None,
            frozenset(active.expand(n) for n in (omit or "").split(",") if n),
            key_values,
            "sysAttrs" in flags,
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Accept": JSON, **({"Link": self.link} if self.link else {})}

    def render(self, entity: Entity) -> dict[str, Any]:
        kept = {name: value for name, value in entity.attributes.items() if name not in self.omitted}
        return render_entity(
            replace(entity, attributes=kept),
            self.active,
            key_values=self.key_values,
            sys_attrs=self.sys_attrs,
            attributes=self.chosen,
        )


def _problem(error: NgsiLdError) -> dict[str, Any]:
    body = {"type": error.kind.uri, "title": error.kind.value, "status": error.kind.status, "detail": error.detail}
    body.update(error.extra)
    return body


async def _bounded(calls: list[Any]) -> list[Any]:
    """Awaits the calls, at most LOOKUPS at a time, in order."""
    gate = asyncio.Semaphore(LOOKUPS)

    async def one(call: Any) -> Any:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(call) for call in calls)))

"""The @context management API (ETSI GS CIM 009 §5.13): add, list, serve and delete @context documents.

`Hosted` documents are added through the API and kept in the database (hub/hosted_contexts): listed in the
tenant they were added in, deleted only by the organisation that added them (to anyone else they do not
exist), served to anyone who names their id — as the DocumentLoader resolves their URL for every request.
`Cached` documents are those the broker holds for a URL: the ETSI core contexts it ships and the
documents of the operator's folder are listed; a document fetched from the web (only if the operator
allowed fetching) is served by its URL but not listed, so no tenant learns which URLs another one used.
Nothing is fetched here: serving or reloading a URL only reads what the broker holds locally.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from machimori.clock import utc_now
from machimori.hub.caller import Caller, CallerOf
from machimori.hub.errors import ErrorType, NgsiLdError, bad_request, not_found
from machimori.hub.hosted_contexts import HOSTED, HostedContext, HostedContexts, is_local_id
from machimori.hub.jsonld import HOSTED_PATH, MAX_DOCUMENT_BYTES, DocumentLoader
from machimori.hub.requests import JSON

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])
CACHED = "Cached"
KINDS = frozenset({HOSTED, CACHED, "ImplicitlyCreated"})
Flag = Annotated[str | None, Query(max_length=32)]


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise bad_request(f"{name} is true or false / {name} は true か false です")


def _store(caller: Caller) -> HostedContexts:
    return HostedContexts(caller.platform.database)


def _url(request: Request, local_id: str) -> str:
    return str(request.base_url).rstrip("/") + HOSTED_PATH + local_id


def _time(moment: Any) -> str:
    return str(moment.isoformat().replace("+00:00", "Z"))


def _details(url: str, local_id: str, kind: str, created_at: Any) -> dict[str, Any]:
    return {"URL": url, "localId": local_id, "kind": kind, "createdAt": _time(created_at)}


def _checked(body: Any) -> Any:
    """The document to host: a JSON object with an @context of URLs and objects."""
    if not isinstance(body, dict) or "@context" not in body:
        raise NgsiLdError(
            ErrorType.InvalidRequest, 'the body must be {"@context": ...} / 本文は @context を持つオブジェクトです'
        )
    context = body["@context"]
    items = context if isinstance(context, list) else [context]
    if not items or not all(isinstance(item, dict) or (isinstance(item, str) and item) for item in items):
        raise bad_request("@context must be a URL, an object or a list of them / @context は URL かオブジェクトです")
    return body


@router.post("/jsonldContexts", status_code=201, response_model=None)
async def add_context(request: Request, caller: CallerOf) -> Response:
    """Add a Hosted @context (§5.13.2): 201 with its URL path in Location."""
    raw = await request.body()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise bad_request(f"an @context document is at most {MAX_DOCUMENT_BYTES} bytes / 文書が大きすぎます")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise NgsiLdError(ErrorType.InvalidRequest, "the body is not valid JSON / 本文が JSON ではありません") from None
    document = _checked(body)
    local_id = await run_in_threadpool(
        _store(caller).add, caller.tenant, caller.token.client_id, caller.subject.org, document, utc_now()
    )
    return Response(status_code=201, headers={"Location": HOSTED_PATH + local_id})


@router.get("/jsonldContexts", response_model=None)
def list_contexts(request: Request, caller: CallerOf, details: Flag = None, kind: Flag = None) -> Response:
    """List @contexts (§5.13.3): their URLs, or their details."""
    detailed = _flag(details, "details")
    if kind is not None and kind not in KINDS:
        raise bad_request(f"kind is one of {', '.join(sorted(KINDS))} / kind が不正です")
    found: list[dict[str, Any]] = []
    if kind in (None, HOSTED):
        found += [
            _details(_url(request, h.id), h.id, h.kind, h.created_at) for h in _store(caller).in_tenant(caller.tenant)
        ]
    if kind in (None, CACHED):
        loader = caller.hub.contexts.loader
        found += [_details(url, url, CACHED, at) for url, at in loader.cached() if _listed(loader, url)]
    return JSONResponse(found if detailed else [item["URL"] for item in found], media_type=JSON)


def _listed(loader: DocumentLoader, url: str) -> bool:
    """Whether a cached URL is the operator's (shipped or in the operator's folder), not one a tenant fetched."""
    return loader.is_core(url) or loader.is_local(url)


def _hosted(context_id: str, caller: Caller) -> HostedContext | None:
    local_id = context_id.rsplit(HOSTED_PATH, 1)[-1]
    return _store(caller).get(local_id) if is_local_id(local_id) else None


@router.get("/jsonldContexts/{context_id:path}", response_model=None)
def serve_context(request: Request, context_id: str, caller: CallerOf, details: Flag = None) -> Response:
    """Serve an @context (§5.13.4): the document, or its details."""
    detailed = _flag(details, "details")
    hosted = _hosted(context_id, caller)
    if hosted is not None:
        about = _details(_url(request, hosted.id), hosted.id, hosted.kind, hosted.created_at)
        return JSONResponse(about if detailed else hosted.body, media_type=JSON)
    held = caller.hub.contexts.loader.held(context_id) if context_id.startswith(("http://", "https://")) else None
    if held is None:
        raise not_found(f"no @context {context_id[:200]} / @context がありません")
    document, loaded_at = held
    return JSONResponse(_details(context_id, context_id, CACHED, loaded_at) if detailed else document, media_type=JSON)


@router.delete("/jsonldContexts/{context_id:path}", status_code=204, response_model=None)
def delete_context(context_id: str, caller: CallerOf, reload: Flag = None) -> Response:
    """Delete an @context (§5.13.5): a Hosted one by its organisation; a Cached one dropped (reload: loaded
    again from where the broker holds it, LdContextNotAvailable if it cannot be)."""
    again = _flag(reload, "reload")
    hosted = _hosted(context_id, caller)
    if hosted is not None and hosted.tenant == caller.tenant and hosted.org == caller.subject.org:
        if again:
            raise bad_request("a Hosted @context cannot be reloaded / Hosted の @context は再読み込みできません")
        _store(caller).delete(hosted.id)
        caller.hub.contexts.forget()
        return Response(status_code=204)
    loader = caller.hub.contexts.loader
    known = context_id.startswith(("http://", "https://")) and loader.held(context_id) is not None
    if not known:
        if again:
            raise bad_request(f"no @context {context_id[:200]} to reload / 再読み込みする @context がありません")
        raise not_found(f"no @context {context_id[:200]} / @context がありません")
    if loader.is_core(context_id) and not again:
        raise bad_request("the core @context cannot be deleted / コアの @context は削除できません")
    loader.forget(context_id)
    caller.hub.contexts.forget()
    if again:
        loader.document(context_id)  # LdContextNotAvailable (503) if it cannot be loaded again
    return Response(status_code=204)

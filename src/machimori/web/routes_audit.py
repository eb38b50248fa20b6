"""The audit log over HTTP: entries in, entries/proofs/checkpoints/roots/export out."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from machimori.events import Actor, EventClass, Resource, SecurityEvent
from machimori.identity.tokens import Principal
from machimori.web.security import platform_of, require

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Index = Annotated[int, Query(ge=0, le=2**62)]


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class Appended(BaseModel):
    index: int
    leaf_hash: str


class EntryOut(BaseModel):
    index: int
    entry: dict[str, Any]
    leaf_hash: str


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    hashes: list[str]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    hashes: list[str]


class Root(BaseModel):
    tree_size: int
    root_hash: str


@router.post("/entries", status_code=201, response_model=Appended)
async def append_entry(
    request: Request,
    entry: Annotated[dict[str, Any], Body(description="any JSON object; it is logged as its RFC 8785 form")],
    principal: Annotated[Principal, Depends(require("audit.append"))],
) -> Appended:
    """Record an object in the city's log; answers once it is durable."""
    platform = platform_of(request)
    appended = await platform.audit.append(entry)
    platform.events.emit(
        SecurityEvent(
            class_uid=EventClass.API_ACTIVITY,
            activity_id=1,
            message=f"audit entry {appended.index} recorded by {principal.name} / 監査ログに記録",
            actor=Actor(uid=principal.token_id, name=principal.name),
            resources=[Resource(uid=str(appended.index), type="audit_entry")],
        )
    )
    return Appended(index=appended.index, leaf_hash=b64(appended.leaf_hash))


@router.get("/entries/{index}", response_model=EntryOut)
def get_entry(
    request: Request,
    index: Annotated[int, Path(ge=0, le=2**62)],
    _: Annotated[Principal, Depends(require("audit.read"))],
) -> EntryOut:
    """One logged object and its leaf hash."""
    stored = platform_of(request).audit.entry(index)
    return EntryOut(index=stored.index, entry=stored.value(), leaf_hash=b64(stored.leaf_hash))


@router.get("/checkpoint", response_class=PlainTextResponse)
def get_checkpoint(request: Request) -> PlainTextResponse:
    """The signed note of the newest tree head (c2sp.org/tlog-checkpoint)."""
    return PlainTextResponse(platform_of(request).audit.checkpoint(), media_type="text/plain; charset=utf-8")


@router.get("/proof/inclusion", response_model=InclusionProof)
def get_inclusion_proof(request: Request, index: Index, tree_size: Index) -> InclusionProof:
    """RFC 9162 inclusion proof of an entry in the tree of tree_size."""
    hashes = platform_of(request).audit.inclusion_proof(index, tree_size)
    return InclusionProof(index=index, tree_size=tree_size, hashes=[b64(h) for h in hashes])


@router.get("/proof/consistency", response_model=ConsistencyProof)
def get_consistency_proof(request: Request, first: Index, second: Index) -> ConsistencyProof:
    """RFC 9162 consistency proof between two tree sizes."""
    hashes = platform_of(request).audit.consistency_proof(first, second)
    return ConsistencyProof(first=first, second=second, hashes=[b64(h) for h in hashes])


@router.get("/roots/{tree_size}", response_model=Root)
def get_root(request: Request, tree_size: Annotated[int, Path(ge=0, le=2**62)]) -> Root:
    """The root hash of the tree of that size."""
    return Root(tree_size=tree_size, root_hash=b64(platform_of(request).audit.root(tree_size)))


@router.post("/checkpoint/cosignatures", response_class=PlainTextResponse)
async def add_cosignature(request: Request, tree_size: Index) -> PlainTextResponse:
    """A witness's cosignature line (c2sp.org/tlog-cosignature, text/plain body) on a published checkpoint."""
    try:
        line = (await request.body()).decode("utf-8").strip() + "\n"
    except UnicodeDecodeError:
        raise HTTPException(400, "the cosignature line is not UTF-8") from None
    return PlainTextResponse(platform_of(request).audit.add_cosignature(tree_size, line))


@router.get("/export")
def export(request: Request, _: Annotated[Principal, Depends(require("audit.export"))]) -> StreamingResponse:
    """The whole log as an export file (JSON Lines) for offline verification."""
    audit = platform_of(request).audit
    return StreamingResponse(
        audit.export(),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="audit-export.jsonl"'},
    )

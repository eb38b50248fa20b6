"""Detection's HTTP API: sensors hand in conn.log batches; the SOC reads findings and exports indicators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from machimori.detection.reading import ReadReport
from machimori.detection.service import Detection, RegistryDirectory, detection_from_settings
from machimori.detection.zeek import ConnLogReader
from machimori.diagnostics import InputError
from machimori.identity.tokens import Principal
from machimori.platform import Platform
from machimori.web.problems import problem
from machimori.web.security import require

router = APIRouter(tags=["detection"])
Sensor = Annotated[Principal, Depends(require("flows.submit"))]
Reader = Annotated[Principal, Depends(require("detections.read"))]
#: Lines taken in one batch (a sensor sends more batches, not bigger ones).
MAX_BATCH_LINES = 50_000
BATCH_NAME = "request"


def install(app: FastAPI, platform: Platform, directory: RegistryDirectory | None) -> Detection:
    """Open the process's detector over the platform and mount its routes."""
    detection = detection_from_settings(platform.settings, platform.events, directory)
    app.state.detection = detection
    app.include_router(router)
    return detection


def detection_of(request: Request) -> Detection:
    detection: Detection = request.app.state.detection
    return detection


@router.post(
    "/api/v1/flows",
    summary="フロー記録を提出 / submit flow records (a chunk of Zeek conn.log, TSV with its header or JSON lines)",
)
async def submit_flows(request: Request, _: Sensor) -> JSONResponse:
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return problem(400, "the body is not UTF-8 text / 本文が UTF-8 ではありません", "flows")
    lines = text.split("\n")  # only newline ends a line, as in a file (a stray \r stays inside its line)
    if len(lines) > MAX_BATCH_LINES:
        return problem(413, f"at most {MAX_BATCH_LINES} lines per batch / 1 回 {MAX_BATCH_LINES} 行まで", "flows")
    report = ReadReport()
    reader = ConnLogReader(BATCH_NAME, report)
    try:
        flows = list(reader.lines(enumerate(lines, start=1)))
    except InputError as error:
        return problem(400, str(error), "flows")
    detection = detection_of(request)
    from starlette.concurrency import run_in_threadpool

    submission = await run_in_threadpool(detection.submit, flows)
    return JSONResponse(
        {
            "read": report.read,
            "skipped": dict(report.skipped),
            "problems": [str(problem) for problem in report.examples],
            **submission.to_dict(),
        }
    )


@router.get("/api/v1/detections", summary="検知結果 / findings of network detection, newest first")
def list_findings(request: Request, _: Reader) -> list[dict[str, Any]]:
    return [finding.to_dict() for finding in detection_of(request).findings()]


@router.get("/api/v1/detections/stix", summary="見つけた指標を STIX 2.1 で / what the town found, as STIX 2.1")
def export_stix(request: Request, _: Reader) -> Response:
    from machimori.detection.sharing import bundle_of

    text = bundle_of(
        detection_of(request).findings(), identity_name=request.app.state.platform.settings.detection_identity
    )
    return Response(text, media_type="application/stix+json;version=2.1")

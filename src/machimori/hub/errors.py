"""NGSI-LD errors: ETSI GS CIM 009 problem types in the RFC 9457 shape."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi.responses import JSONResponse

ETSI_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


class ErrorType(Enum):
    """The ETSI error types and the HTTP status each answers with."""

    InvalidRequest = 400
    BadRequestData = 400
    AlreadyExists = 409
    OperationNotSupported = 422
    ResourceNotFound = 404
    InternalError = 500
    TooComplexQuery = 403
    TooManyResults = 403
    LdContextNotAvailable = 503
    NoMultiTenantSupport = 501
    NonexistentTenant = 404

    @property
    def uri(self) -> str:
        return ETSI_ERRORS + self.name


class NgsiLdError(Exception):
    """A request the broker refuses, with the ETSI error type and a detail a person can act on."""

    def __init__(self, kind: ErrorType, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.extra = kind, detail, extra

    def response(self) -> JSONResponse:
        body = {"type": self.kind.uri, "title": self.kind.name, "status": self.kind.value, "detail": self.detail}
        body.update(self.extra)
        return JSONResponse(body, status_code=self.kind.value, media_type="application/json")


def bad_request(detail: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.BadRequestData, detail)


def invalid_request(detail: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.InvalidRequest, detail)


def not_found(detail: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.ResourceNotFound, detail)

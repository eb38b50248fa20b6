"""NGSI-LD errors: ETSI GS CIM 009 problem types in the RFC 9457 shape."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi.responses import JSONResponse

ETSI_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


class ErrorType(Enum):
    """The ETSI error types (distinct members even where two share an HTTP status)."""

    InvalidRequest = "InvalidRequest"
    BadRequestData = "BadRequestData"
    AlreadyExists = "AlreadyExists"
    OperationNotSupported = "OperationNotSupported"
    ResourceNotFound = "ResourceNotFound"
    InternalError = "InternalError"
    TooComplexQuery = "TooComplexQuery"
    TooManyResults = "TooManyResults"
    LdContextNotAvailable = "LdContextNotAvailable"
    NoMultiTenantSupport = "NoMultiTenantSupport"
    NonexistentTenant = "NonexistentTenant"

    @property
    def uri(self) -> str:
        return ETSI_ERRORS + self.value

    @property
    def status(self) -> int:
        """The HTTP status the type answers with."""
        return _STATUS[self]


_STATUS = {
    ErrorType.InvalidRequest: 400,
    ErrorType.BadRequestData: 400,
    ErrorType.AlreadyExists: 409,
    ErrorType.OperationNotSupported: 422,
    ErrorType.ResourceNotFound: 404,
    ErrorType.InternalError: 500,
    ErrorType.TooComplexQuery: 403,
    ErrorType.TooManyResults: 403,
    ErrorType.LdContextNotAvailable: 503,
    ErrorType.NoMultiTenantSupport: 501,
    ErrorType.NonexistentTenant: 404,
}


class NgsiLdError(Exception):
    """A request the broker refuses, with the ETSI error type and a detail a person can act on."""

    def __init__(self, kind: ErrorType, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.extra = kind, detail, extra

    def response(self, status: int | None = None) -> JSONResponse:
        """The problem details (the error type's own status unless another is given)."""
        code = status or self.kind.status
        body = {"type": self.kind.uri, "title": self.kind.value, "status": code, "detail": self.detail}
        body.update(self.extra)
        return JSONResponse(body, status_code=code, media_type="application/json")


def bad_request(detail: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.BadRequestData, detail)


def invalid_request(detail: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.InvalidRequest, detail)


def not_found(detail: str) -> NgsiLdError:
    return NgsiLdError(ErrorType.ResourceNotFound, detail)

"""Typed errors of the gateway, each with its HTTP status and a stable ``error`` code."""

from __future__ import annotations

from typing import Any

from lienthong.errors import ExitCode, LienThongError


class GatewayError(LienThongError):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        message_vi: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, message_vi=message_vi)
        if code is not None:  # a more precise name than the class's (e.g. "step_closed")
            self.code = code
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.as_dict()
        if self.details is not None:
            body["errors"] = self.details
        return body


class BadHeaders(GatewayError):
    status, code = 400, "bad_headers"


class Unauthenticated(GatewayError):
    status, code = 401, "unauthenticated"
    exit_code = ExitCode.ACCESS_DENIED


class UnknownAgency(Unauthenticated):
    code = "unknown_agency"


class InvalidSignature(Unauthenticated):
    code = "invalid_signature"


class StaleTimestamp(Unauthenticated):
    code = "stale_timestamp"


class ReplayedNonce(Unauthenticated):
    code = "replayed_nonce"


class Forbidden(GatewayError):
    status, code = 403, "forbidden"
    exit_code = ExitCode.ACCESS_DENIED


class NotFound(GatewayError):
    status, code = 404, "not_found"
    exit_code = ExitCode.NOT_FOUND


class Conflict(GatewayError):
    status, code = 409, "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class BodyTooLarge(GatewayError):
    status, code = 413, "body_too_large"


class InvalidPayload(GatewayError):
    status, code = 422, "invalid_payload"


class RateLimited(GatewayError):
    status, code = 429, "rate_limited"
    exit_code = ExitCode.UNAVAILABLE


class Unavailable(GatewayError):
    status, code = 503, "database_unavailable"
    exit_code = ExitCode.UNAVAILABLE

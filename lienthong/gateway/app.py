"""The FastAPI application: authentication, size and rate limits, typed errors, the endpoints.

The request path does no rule checking (no Great Expectations): it authenticates, checks the
payload's structure with pydantic, and writes. The law's rules run later in the procedure flow.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lienthong.catalog import get_catalog, load_agencies
from lienthong.citizen import routes as citizen_routes
from lienthong.db import get_engine
from lienthong.errors import CatalogError, LienThongError, UnknownProcedure
from lienthong.gateway import signing
from lienthong.gateway.accept import DEFAULT_SENDERS, accept_step_result, accept_supplement
from lienthong.gateway.dossiers import DossierBatcher, accept_dossier, dossier_work
from lienthong.gateway.errors import (
    BadHeaders,
    BodyTooLarge,
    Forbidden,
    GatewayError,
    InvalidPayload,
    InvalidSignature,
    RateLimited,
    StaleTimestamp,
    Unavailable,
    UnknownAgency,
)
from lienthong.gateway.inbox import Answer, Delivery
from lienthong.gateway.ratelimit import rate_limiter, retry_after
from lienthong.gateway.schemas import (
    Accepted,
    DossierView,
    ErrorBody,
    StepResultBody,
    SupplementBody,
)
from lienthong.gateway.settings import GatewaySettings, get_gateway_settings
from lienthong.gateway.views import dossier_view, status_path
from lienthong.notify import callbacks as notify_callbacks
from lienthong.payloads import Submission
from lienthong.settings import get_settings

log = logging.getLogger("lienthong.gateway")
TOKEN = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")
NONCE = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": desc}
    for code, desc in {
        400: "missing or malformed signing headers",
        401: "unknown agency, bad signature, stale timestamp or replayed nonce",
        409: "Idempotency-Key reused for a different request",
        413: "body over the size limit",
        422: "payload breaks the schema (field errors listed)",
        429: "the agency's rate limit (Retry-After)",
        503: "database unreachable (Retry-After)",
    }.items()
}
_SIGNED = [
    {
        "name": name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": desc,
    }
    for name, desc in [
        ("X-Agency", "agency code (config/agencies.yaml; DVCQG for the national portal)"),
        ("X-Timestamp", "Unix seconds, within 300 s of the gateway's clock"),
        ("X-Nonce", "8-128 characters [A-Za-z0-9._~-], usable once per agency"),
        (
            "Idempotency-Key",
            "1-128 characters; a redelivery with the same key gets the same answer",
        ),
        ("X-Signature", "hex HMAC-SHA256 of timestamp\\nnonce\\nMETHOD\\npath\\nsha256_hex(body)"),
    ]
]


def _body_of(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "parameters": _SIGNED,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        },
    }


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    # Only where and what: the input values may be personal data.
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


def telemetry_options(enabled: bool) -> dict[str, Any]:
    """FastAPI's own OpenTelemetry spans and metrics (FastAPI >= 0.150, active whenever the
    OpenTelemetry API is importable, which Prefect brings): off unless asked for. Measured on the
    bare endpoint: 0.14 ms CPU per request off, 0.16-0.18 on; the gateway does not use them."""
    if enabled or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


class Gateway:
    """The request checks shared by every signed endpoint."""

    def __init__(self, settings: GatewaySettings, now: Callable[[], float]) -> None:
        self.settings, self.now = settings, now
        self.secrets = {a: [s.get_secret_value() for s in v] for a, v in settings.agency_secrets.items()}
        self.agencies = set(load_agencies(get_settings().config_dir)) | {"DVCQG"}
        self.limiter = rate_limiter(settings.rate_per_second, settings.rate_burst, settings.redis_url)
        self.batcher = (
            DossierBatcher(settings.batch_size, settings.batch_threads) if settings.batch_size > 1 else None
        )

    async def accept_dossier(self, delivery: Delivery, submission: Submission) -> Answer:
        work = dossier_work(delivery, submission, self.status_url)
        if self.batcher is None:
            return await run_in_threadpool(accept_dossier, delivery, submission, self.status_url)
        day = submission.received_local().date().isoformat()
        return await asyncio.wrap_future(self.batcher.submit(delivery, work, day))

    def status_url(self, code: str) -> str:
        return (self.settings.public_url or "").rstrip("/") + status_path(code)

    async def authenticate(self, request: Request, kind: str) -> tuple[Delivery, bytes]:
        h = request.headers
        length = h.get("content-length")
        if length is not None and not length.isdigit():
            raise BadHeaders("Content-Length is not a number", message_vi="Content-Length không hợp lệ.")
        if length is not None and int(length) > self.settings.max_body_bytes:
            raise BodyTooLarge(
                f"body over {self.settings.max_body_bytes} bytes",
                message_vi="Dữ liệu gửi lên vượt quá kích thước cho phép.",
                headers={"Connection": "close"},
            )
        agency, ts, nonce = h.get("x-agency", ""), h.get("x-timestamp", ""), h.get("x-nonce", "")
        key, signature = h.get("idempotency-key", ""), h.get("x-signature", "")
        missing = [
            n
            for n, v in [
                ("X-Agency", agency),
                ("X-Timestamp", ts),
                ("X-Nonce", nonce),
                ("Idempotency-Key", key),
                ("X-Signature", signature),
            ]
            if not v
        ]
        if missing:
            raise BadHeaders(
                f"missing headers: {', '.join(missing)}",
                message_vi="Thiếu tiêu đề bắt buộc: " + ", ".join(missing) + ".",
            )
        if not ts.isdigit():
            raise BadHeaders("X-Timestamp must be Unix seconds", message_vi="X-Timestamp không hợp lệ.")
        if not NONCE.match(nonce) or not TOKEN.match(key):
            raise BadHeaders(
                "X-Nonce must be 8-128 and Idempotency-Key 1-128 characters of "
                "[A-Za-z0-9._~-] (':' allowed in the key)",
                message_vi="X-Nonce hoặc Idempotency-Key không đúng định dạng.",
            )
        if agency not in self.agencies or agency not in self.secrets:
            raise UnknownAgency(f"unknown agency {agency!r}", message_vi="Cơ quan gửi không được đăng ký.")
        if abs(self.now() - int(ts)) > self.settings.timestamp_window_seconds:
            raise StaleTimestamp(
                "X-Timestamp is outside the accepted window",
                message_vi="Thời điểm ký lệch quá 300 giây so với đồng hồ của cổng.",
            )
        body = await self._read(request)
        path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        digest = signing.body_digest(body)
        if not HEX64.match(signature) or not signing.matches(
            self.secrets[agency], signature, ts, nonce, request.method, path, digest
        ):
            raise InvalidSignature("the signature does not match", message_vi="Chữ ký của yêu cầu không hợp lệ.")
        wait = self.limiter.take(agency)
        if wait:
            raise RateLimited(
                f"rate limit of {agency} reached",
                message_vi="Cơ quan gửi quá nhiều yêu cầu; vui lòng thử lại sau.",
                headers={"Retry-After": retry_after(wait)},
            )
        return Delivery(agency, nonce, key, kind, path, digest), body

    def authenticate_read(self, request: Request) -> str:
        """A signed GET: the agency, timestamp and nonce headers and the signature over an empty
        body (no Idempotency-Key: reading changes nothing). Returns the agency."""
        h = request.headers
        agency, ts, nonce, signature = (h.get("x-agency", ""), h.get("x-timestamp", ""), h.get("x-nonce", ""),
                                        h.get("x-signature", ""))
        missing = [n for n, v in [("X-Agency", agency), ("X-Timestamp", ts), ("X-Nonce", nonce),
                                  ("X-Signature", signature)] if not v]
        if missing:
            raise InvalidSignature(
                f"a dossier's status is answered to signed requests only (missing {', '.join(missing)})",
                message_vi="Trạng thái hồ sơ chỉ trả lời yêu cầu có chữ ký của cơ quan; công dân tra cứu bằng "
                "đường dẫn trên Giấy tiếp nhận.",
            )
        if not ts.isdigit() or not NONCE.match(nonce):
            raise BadHeaders("X-Timestamp or X-Nonce malformed", message_vi="X-Timestamp hoặc X-Nonce không hợp lệ.")
        if agency not in self.agencies or agency not in self.secrets:
            raise UnknownAgency(f"unknown agency {agency!r}", message_vi="Cơ quan gửi không được đăng ký.")
        if abs(self.now() - int(ts)) > self.settings.timestamp_window_seconds:
            raise StaleTimestamp("X-Timestamp is outside the accepted window",
                                 message_vi="Thời điểm ký lệch quá 300 giây so với đồng hồ của cổng.")
        path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        if not HEX64.match(signature) or not signing.matches(
            self.secrets[agency], signature, ts, nonce, "GET", path, signing.body_digest(b"")
        ):
            raise InvalidSignature("the signature does not match", message_vi="Chữ ký của yêu cầu không hợp lệ.")
        wait = self.limiter.take(agency)
        if wait:
            raise RateLimited(f"rate limit of {agency} reached",
                              message_vi="Cơ quan gửi quá nhiều yêu cầu; vui lòng thử lại sau.",
                              headers={"Retry-After": retry_after(wait)})
        return agency

    async def _read(self, request: Request) -> bytes:
        """Read the body, giving up as soon as it passes the limit (chunked bodies too)."""
        limit, size, chunks = self.settings.max_body_bytes, 0, []
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(
                    f"body over {limit} bytes",
                    headers={"Connection": "close"},
                    message_vi="Dữ liệu gửi lên vượt quá kích thước cho phép.",
                )
            chunks.append(chunk)
        return b"".join(chunks)


def handles(agency: str, code: str, step_agencies: set[str]) -> bool:
    """Whether ``agency`` may read the dossier: the national portal and the one-stop desk, an
    agency with a step of it, or the one that sent it."""
    if agency in DEFAULT_SENDERS or agency in step_agencies:
        return True
    from sqlalchemy import select

    from lienthong.db import session_scope
    from lienthong.db.models import InboxRow

    with session_scope() as s:
        return s.execute(select(InboxRow.id).where(InboxRow.dossier_code == code, InboxRow.source == agency)
                         .limit(1)).first() is not None


def _parse(model: type[Any], body: bytes) -> Any:
    # orjson then model_validate: the models' NFC validators run on Python values anyway, and
    # pydantic's own JSON path is slower than orjson plus validation of the parsed values.
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidPayload(
            "the body is not JSON",
            details=[{"loc": [], "msg": "Invalid JSON", "type": "json_invalid"}],
            message_vi="Dữ liệu gửi lên không phải JSON hợp lệ.",
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPayload(
            "the payload breaks the schema",
            details=_field_errors(exc),
            message_vi="Dữ liệu hồ sơ không đúng cấu trúc.",
        ) from None


def _check_procedure(sub: Submission) -> None:
    try:
        # The version in force on the reception date (a dossier follows the law of that day).
        get_catalog().get(sub.procedure_code, on=sub.received_local().date()).resolve_options(sub.options)
    except UnknownProcedure as exc:
        raise InvalidPayload(
            exc.message,
            message_vi=exc.message_vi,
            details=[{"loc": ["procedure_code"], "msg": "unknown procedure", "type": "unknown_procedure"}],
        ) from None
    except CatalogError as exc:
        raise InvalidPayload(
            exc.message,
            message_vi=exc.message_vi,
            details=[{"loc": ["options"], "msg": exc.message, "type": "invalid_option"}],
        ) from None


def _json(answer: Answer) -> Response:
    headers = {"Location": answer.body.get("status_url", "")}
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(orjson.dumps(answer.body), status_code=answer.status, headers=headers,
                    media_type="application/json")


def create_app(settings: GatewaySettings | None = None, *, now: Callable[[], float] = time.time) -> FastAPI:
    settings = settings or get_gateway_settings()
    app = FastAPI(
        title="Liên Thông webhook gateway",
        version="1",
        description="Signed intake of dossiers, supplements and agency results. "
        "See docs/gateway.md for the signing scheme.",
        **telemetry_options(settings.telemetry),
    )
    gw = Gateway(settings, now)
    app.state.gateway = gw
    retry = {"Retry-After": str(settings.retry_after_seconds)}

    @app.exception_handler(GatewayError)
    async def _typed(_: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        err = Unavailable(
            "the database is unreachable; nothing was stored",
            message_vi="Hệ thống tạm thời không lưu được yêu cầu; vui lòng gửi lại sau.",
        )
        return JSONResponse(err.body(), status_code=503, headers=retry)

    @app.exception_handler(LienThongError)
    async def _domain(_: Request, exc: LienThongError) -> JSONResponse:
        return JSONResponse(exc.as_dict(), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse(
            {"error": "invalid_request", "message": "the request is not valid", "errors": details},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.post(
        "/v1/dossiers",
        status_code=202,
        response_model=Accepted,
        openapi_extra=_body_of(Submission),
        responses=_ERRORS,
        summary="Submit a new dossier (portal or agency)",
    )
    async def submit_dossier(request: Request) -> Response:
        delivery, body = await gw.authenticate(request, "dossier")
        submission = _parse(Submission, body)
        _check_procedure(submission)
        return _json(await gw.accept_dossier(delivery, submission))

    @app.post(
        "/v1/dossiers/{code}/supplement",
        status_code=202,
        response_model=Accepted,
        openapi_extra=_body_of(SupplementBody),
        summary="The citizen's supplement (Form 02 answered)",
        responses={
            **_ERRORS,
            403: {"model": ErrorBody, "description": "not the dossier's sender"},
            404: {"model": ErrorBody, "description": "no such dossier"},
        },
    )
    async def supplement(code: str, request: Request) -> Response:
        delivery, body = await gw.authenticate(request, "supplement")
        parsed = _parse(SupplementBody, body)
        return _json(await run_in_threadpool(accept_supplement, delivery, code, parsed, gw.status_url))

    @app.post(
        "/v1/steps/{step_id}/result",
        status_code=202,
        response_model=Accepted,
        openapi_extra=_body_of(StepResultBody),
        summary="An agency's result for a step routed to it",
        responses={
            **_ERRORS,
            403: {"model": ErrorBody, "description": "agency not part of the step"},
            404: {"model": ErrorBody, "description": "no such step"},
        },
    )
    async def step_result(step_id: str, request: Request) -> Response:
        delivery, body = await gw.authenticate(request, "step_result")
        parsed = _parse(StepResultBody, body)
        return _json(await run_in_threadpool(accept_step_result, delivery, step_id, parsed, gw.status_url))

    @app.get(
        "/v1/dossiers/{code}",
        response_model=DossierView,
        summary="Status of a dossier (masked), for the agencies and portal that handle it",
        description="Signed like the POSTs, over an empty body, without Idempotency-Key. Dossier codes are "
        "sequential, so the bare code answers nothing; citizens read their status behind the link of "
        "their receipt (/tra-cuu/{token}).",
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                   503: {"model": ErrorBody}},
    )
    async def status(code: str, request: Request) -> DossierView:
        agency = gw.authenticate_read(request)
        view = await run_in_threadpool(dossier_view, code)
        if not await run_in_threadpool(handles, agency, code, {st.agency for st in view.steps}):
            raise Forbidden(f"{agency} does not handle {code}", code="not_a_handler",
                             message_vi="Cơ quan không tham gia giải quyết hồ sơ này.")
        return view

    app.include_router(notify_callbacks.router())
    app.include_router(citizen_routes.router())

    @app.get("/healthz", summary="Liveness and database reachability")
    async def healthz() -> JSONResponse:
        def ping() -> None:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))

        await run_in_threadpool(ping)
        return JSONResponse({"status": "ok", "database": "ok"})

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (Submission, SupplementBody, StepResultBody):
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in js.pop("$defs", {}).items():
                    components.setdefault(name, sub)
                components[model.__name__] = js
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

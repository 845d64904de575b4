"""The gateway's citizen routes, all behind the status capability.

- ``GET /tra-cuu/{token}``: the status page (HTML, Vietnamese);
- ``GET /v1/status/{token}``: the same as JSON (for the portal's or an app's own page).

An unknown, forged or revoked token gets the same 404, and every request counts against the
token's and the client address's limits (429 with Retry-After). Answers are ``no-store`` and
never indexed; the token is never logged.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lienthong.citizen import capability, view
from lienthong.citizen.ratelimit import StatusLimiter
from lienthong.db import session_scope

NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
NOT_FOUND = {"error": "not_found", "message": "no dossier behind this link",
             "message_vi": "Đường dẫn tra cứu không đúng hoặc đã bị thu hồi."}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _lookup(token: str) -> view.CitizenView | None:
    with session_scope() as s:
        row = capability.resolve(s, token)
        if row is None:
            return None
        return view.citizen_view(s, row)


def router(limiter: StatusLimiter | None = None) -> APIRouter:
    s = capability.StatusSettings()
    limits = limiter or StatusLimiter(s.redis_url, s.per_token_per_minute, s.per_ip_per_minute)
    r = APIRouter(tags=["citizen status"])

    def limited(token: str, request: Request) -> int:
        wait = limits.check(token, _client(request))
        return max(1, math.ceil(wait)) if wait else 0

    @r.get("/tra-cuu/{token}", response_class=HTMLResponse, summary="The citizen's status page")
    async def page(token: str, request: Request) -> Response:
        wait = limited(token, request)
        if wait:
            return HTMLResponse(view.too_many_page(wait), status_code=429,
                                headers={**NO_STORE, "Retry-After": str(wait)})
        v = await run_in_threadpool(_lookup, token)
        if v is None:
            return HTMLResponse(view.not_found_page(), status_code=404, headers=NO_STORE)
        return HTMLResponse(view.render_page(v), headers=NO_STORE)

    @r.get("/v1/status/{token}", summary="The citizen's status, as JSON")
    async def status(token: str, request: Request) -> Response:
        wait = limited(token, request)
        if wait:
            return JSONResponse({"error": "rate_limited",
                                 "message_vi": "Quá nhiều lượt tra cứu; vui lòng thử lại sau."},
                                status_code=429, headers={**NO_STORE, "Retry-After": str(wait)})
        v = await run_in_threadpool(_lookup, token)
        if v is None:
            return JSONResponse(NOT_FOUND, status_code=404, headers=NO_STORE)
        return JSONResponse(v.as_dict(), headers=NO_STORE)

    return r

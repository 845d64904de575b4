"""The gateway's citizen routes, all behind the status capability.

- ``GET /tra-cuu/{token}``: the status page (HTML, Vietnamese);
- ``GET /v1/status/{token}``: the same as JSON (for the portal's or an app's own page);
- ``POST /tra-cuu/{token}/danh-gia`` (the page's form) and ``POST /v1/status/{token}/rating``
  (JSON): the satisfaction rating of a delivered dossier, once.

An unknown, forged or revoked token gets the same 404, and every request counts against the
token's and the client address's limits (429 with Retry-After). Answers are ``no-store`` and
never indexed; the token is never logged.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from lienthong.citizen import capability, ratings, view
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
        v = view.citizen_view(s, row)
        v.rating = ratings.state(s, row)
        return v


def _rate(token: str, answers: dict[str, Any], source: str) -> tuple[int, str | None]:
    """(HTTP status, the refusal in Vietnamese or None)."""
    with session_scope() as s:
        row = capability.resolve(s, token)
        if row is None:
            return 404, None
        try:
            ratings.rate(s, row, answers, source=source)
        except ratings.RatingRefused as exc:
            return 409 if "đã được đánh giá" in (exc.message_vi or "") else 422, exc.message_vi
        return 201, None


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
        form = ratings.form_html(token, v.rating) if v.rating is not None else ""
        return HTMLResponse(view.render_page(v, form), headers=NO_STORE)

    @r.post("/tra-cuu/{token}/danh-gia", response_class=HTMLResponse, summary="The rating form of the page")
    async def rate_form(token: str, request: Request) -> Response:
        wait = limited(token, request)
        if wait:
            return HTMLResponse(view.too_many_page(wait), status_code=429,
                                headers={**NO_STORE, "Retry-After": str(wait)})
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        answers = {k[1:]: v[0] for k, v in form.items() if k.startswith("q") and v and v[0]}
        status, refusal = await run_in_threadpool(_rate, token, answers, "status_page")
        if status == 404:
            return HTMLResponse(view.not_found_page(), status_code=404, headers=NO_STORE)
        if status == 201:  # back to the page, which now thanks the citizen
            return RedirectResponse(f"/tra-cuu/{token}#rating", status_code=303, headers=NO_STORE)
        v = await run_in_threadpool(_lookup, token)
        assert v is not None
        form_html = ratings.form_html(token, v.rating, refusal) if v.rating is not None else ""
        return HTMLResponse(view.render_page(v, form_html), status_code=status, headers=NO_STORE)

    @r.post("/v1/status/{token}/rating", summary="Rate a delivered dossier (JSON: {answers: {id: level}})")
    async def rate_json(token: str, request: Request) -> Response:
        wait = limited(token, request)
        if wait:
            return JSONResponse({"error": "rate_limited"}, status_code=429,
                                headers={**NO_STORE, "Retry-After": str(wait)})
        try:
            body = json.loads(await request.body())
            answers = dict(body["answers"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "invalid_payload", "message_vi": "Dữ liệu đánh giá không hợp lệ."},
                                status_code=422, headers=NO_STORE)
        status, refusal = await run_in_threadpool(_rate, token, answers, str(body.get("source", "api")))
        if status == 404:
            return JSONResponse(NOT_FOUND, status_code=404, headers=NO_STORE)
        if status == 201:
            return JSONResponse({"rated": True}, status_code=201, headers=NO_STORE)
        return JSONResponse({"error": "rating_refused", "message_vi": refusal}, status_code=status, headers=NO_STORE)

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

"""A simulator of the national portal's dossier-sync API (the counterpart of :mod:`.client`).

Contract (also in ``docs/portal-api.md``). JSON over HTTP; every answer of the business endpoints
is HTTP 200 with ``{"error_code": int, "message": str}`` (0 = OK), as the portal does:

- ``POST /api/auth/token`` ``{"username", "password"}`` -> ``{"access_token", "expires_in"}``;
  401 on wrong credentials. The other endpoints need ``Authorization: Bearer <token>``, else 401.
- ``POST /api/hoso/create`` ``{"madonvi", "data": HoSo}``: creates the dossier. A known ``MaHoSo``
  answers ``error_code 1`` with ``"Hồ sơ <code> đã tồn tại"`` (the client then calls update).
- ``POST /api/hoso/update`` ``{"madonvi", "data": HoSo}``: replaces it; ``error_code 2`` if unknown.
- ``POST /api/hoso/progress`` ``{"madonvi", "MaHoSo", "TienTrinh": [...]}``: replaces the
  dossier's progress records; ``error_code 2`` if the dossier is unknown.
- ``GET /api/hoso/{code}``: the stored dossier and progress (TraCuuHoSo), 404 if unknown.
- Validation failures answer ``error_code 3`` with the reason: missing fields, a date not in
  ``yyyyMMddHHmmss``, a status outside 1-10, no ``NgayKetThucXuLy`` for statuses 3/8/9/10,
  ``NgayHenTra`` before ``NgayTiepNhan``, the placeholder identity ``000000001``.

Switches, ``POST /_sim/config`` (any subset), and ``GET /_sim/stats`` / ``POST /_sim/reset``:
``failure_rate`` (share of business calls answered 503, seeded), ``fail_after`` (after this many
successful writes every business call answers 503 until reconfigured: a portal going down
mid-run), ``throttle_every`` (every N-th call answers 429 with ``Retry-After``),
``retry_after`` (seconds), ``latency_ms``, ``token_ttl``, ``seed``.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

DATE_RE = re.compile(r"^\d{14}$")
REQUIRED = ("MaHoSo", "MaTTHC", "KenhThucHien", "NgayTiepNhan", "TrangThaiHoSo")
DATE_FIELDS = (
    "NgayNopHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "NgayTra",
    "NgayTuChoi",
    "NgayKetThucXuLy",
)


class PortalState:
    def __init__(self, username: str = "lienthong", password: str = "lienthong") -> None:
        self.username, self.password = username, password
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.dossiers: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, list[dict[str, Any]]] = {}
        self.tokens: dict[str, float] = {}
        self.config: dict[str, Any] = {
            "failure_rate": 0.0,
            "fail_after": None,
            "throttle_every": 0,
            "retry_after": 1,
            "latency_ms": 0,
            "token_ttl": 3600,
            "seed": 7,
        }
        self.rng = random.Random(7)
        self.stats: dict[str, int] = {
            "calls": 0,
            "creates": 0,
            "updates": 0,
            "progress": 0,
            "already_exists": 0,
            "throttled": 0,
            "failed": 0,
            "invalid": 0,
            "writes": 0,
            "tokens": 0,
            "unauthorized": 0,
        }
        self.creates_per_code: dict[str, int] = {}


def _validate(h: dict[str, Any]) -> str | None:
    for f in REQUIRED:
        if h.get(f) in (None, ""):
            return f"Thiếu trường bắt buộc {f}"
    for f in DATE_FIELDS:
        v = h.get(f) or ""
        if v and not DATE_RE.match(str(v)):
            return f"Trường {f} không đúng định dạng yyyyMMddHHmmss"
    st = h.get("TrangThaiHoSo")
    if not isinstance(st, int) or not 1 <= st <= 10:
        return "TrangThaiHoSo phải là số từ 1 đến 10"
    if st in (3, 8, 9, 10) and not h.get("NgayKetThucXuLy"):
        return "Thiếu NgayKetThucXuLy cho hồ sơ đã kết thúc xử lý"
    if h.get("NgayHenTra") and h["NgayHenTra"] < h["NgayTiepNhan"]:
        return "NgayHenTra nhỏ hơn NgayTiepNhan"
    for ident in h.get("DinhDanhCHS") or []:
        if str(ident.get("SoDinhDanh")) in ("000000001", "000000000000"):
            return "Số định danh chủ hồ sơ là giá trị giả"
    return None


def create_app(state: PortalState | None = None) -> FastAPI:
    st = state or PortalState()
    app = FastAPI(title="Cổng DVCQG (simulator)")
    app.state.portal = st

    def ok(message: str = "Thành công") -> dict[str, Any]:
        return {"error_code": 0, "message": message}

    def gate(authorization: str | None) -> JSONResponse | None:
        """Auth, throttling, failures and latency, in that order, for business calls."""
        cfg = st.config
        if cfg["latency_ms"]:
            time.sleep(cfg["latency_ms"] / 1000)
        with st.lock:
            st.stats["calls"] += 1
            token = (authorization or "").removeprefix("Bearer ").strip()
            if st.tokens.get(token, 0) < time.time():
                st.stats["unauthorized"] += 1
                return JSONResponse(
                    {"error_code": 401, "message": "Phiên đăng nhập không hợp lệ"}, 401
                )
            if cfg["throttle_every"] and st.stats["calls"] % cfg["throttle_every"] == 0:
                st.stats["throttled"] += 1
                return JSONResponse(
                    {"error_code": 429, "message": "Vượt quá tần suất cho phép"},
                    429,
                    headers={"Retry-After": str(cfg["retry_after"])},
                )
            down = cfg["fail_after"] is not None and st.stats["writes"] >= cfg["fail_after"]
            if down or (cfg["failure_rate"] and st.rng.random() < cfg["failure_rate"]):
                st.stats["failed"] += 1
                return JSONResponse({"error_code": 503, "message": "Hệ thống đang bận"}, 503)
        return None

    @app.post("/api/auth/token")
    def token(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("username") != st.username or body.get("password") != st.password:
            raise HTTPException(401, "Sai tên đăng nhập hoặc mật khẩu")
        tok = secrets.token_hex(16)
        with st.lock:
            st.tokens[tok] = time.time() + float(st.config["token_ttl"])
            st.stats["tokens"] += 1
        return {"access_token": tok, "expires_in": st.config["token_ttl"]}

    @app.post("/api/hoso/create", response_model=None)
    def create(body: dict[str, Any], authorization: str | None = Header(None)) -> Any:
        if (refused := gate(authorization)) is not None:
            return refused
        h = body.get("data") or {}
        if (problem := _validate(h)) is not None:
            st.stats["invalid"] += 1
            return {"error_code": 3, "message": problem}
        code = h["MaHoSo"]
        with st.lock:
            if code in st.dossiers:
                st.stats["already_exists"] += 1
                return {"error_code": 1, "message": f"Hồ sơ {code} đã tồn tại"}
            st.dossiers[code] = h
            st.stats["creates"] += 1
            st.stats["writes"] += 1
            st.creates_per_code[code] = st.creates_per_code.get(code, 0) + 1
        return ok()

    @app.post("/api/hoso/update", response_model=None)
    def update(body: dict[str, Any], authorization: str | None = Header(None)) -> Any:
        if (refused := gate(authorization)) is not None:
            return refused
        h = body.get("data") or {}
        if (problem := _validate(h)) is not None:
            st.stats["invalid"] += 1
            return {"error_code": 3, "message": problem}
        with st.lock:
            if h["MaHoSo"] not in st.dossiers:
                return {"error_code": 2, "message": f"Hồ sơ {h['MaHoSo']} không tồn tại"}
            st.dossiers[h["MaHoSo"]] = h
            st.stats["updates"] += 1
            st.stats["writes"] += 1
        return ok()

    @app.post("/api/hoso/progress", response_model=None)
    def progress(body: dict[str, Any], authorization: str | None = Header(None)) -> Any:
        if (refused := gate(authorization)) is not None:
            return refused
        code = body.get("MaHoSo")
        records = body.get("TienTrinh") or []
        for rec in records:
            if not 1 <= int(rec.get("TrangThai", 0)) <= 10 or not DATE_RE.match(
                str(rec.get("ThoiDiemXuLy", ""))
            ):
                st.stats["invalid"] += 1
                return {"error_code": 3, "message": "Bản ghi tiến trình không hợp lệ"}
            if len(str(rec.get("NguoiXuLy", ""))) > 50:
                return {"error_code": 3, "message": "NguoiXuLy dài quá 50 ký tự"}
        with st.lock:
            if code not in st.dossiers:
                return {"error_code": 2, "message": f"Hồ sơ {code} không tồn tại"}
            st.progress[code] = records
            st.stats["progress"] += 1
            st.stats["writes"] += 1
        return ok()

    @app.get("/api/hoso/{code}")
    def lookup(code: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        with st.lock:
            if code not in st.dossiers:
                raise HTTPException(404, f"Không tìm thấy hồ sơ {code}")
            return {
                "error_code": 0,
                "data": st.dossiers[code],
                "TienTrinh": st.progress.get(code, []),
            }

    @app.post("/_sim/config")
    async def configure(request: Request) -> dict[str, Any]:
        body = await request.json()
        with st.lock:
            st.config.update({k: v for k, v in body.items() if k in st.config})
            if "seed" in body:
                st.rng = random.Random(body["seed"])
        return st.config

    @app.get("/_sim/stats")
    def stats() -> dict[str, Any]:
        with st.lock:
            return {
                **st.stats,
                "dossiers": len(st.dossiers),
                "max_creates_per_code": max(st.creates_per_code.values(), default=0),
            }

    @app.post("/_sim/reset")
    def reset() -> dict[str, Any]:
        with st.lock:
            st.reset()
        return ok()

    return app


def serve(host: str = "127.0.0.1", port: int = 8720) -> None:
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


class RunningSimulator:
    """The simulator on a local port in a background thread (tests, bench, demo)."""

    def __init__(self, port: int = 0, state: PortalState | None = None) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.state = state or PortalState()
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.state),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> RunningSimulator:
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline:
                raise RuntimeError("portal simulator did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

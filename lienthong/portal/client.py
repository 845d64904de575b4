"""The national portal's API client: token, create-or-update, progress; retries with back-off.

A throttling answer (429) waits the ``Retry-After`` the portal gives; 5xx and network errors back
off exponentially; an expired token is renewed once. ``"đã tồn tại"`` (already exists) on create
turns into an update, so pushing the same dossier twice is harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.errors import ExitCode, LienThongError
from lienthong.portal.payloads import get_portal_config
from lienthong.retry import call_with_retries, exponential


class PortalSettings(BaseSettings):
    """``LIENTHONG_PORTAL_*``: where the portal is and how hard to push it."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_PORTAL_", extra="ignore")

    url: str = "http://127.0.0.1:8720"
    username: str = "lienthong"
    password: SecretStr = SecretStr("lienthong")
    unit_id: str | None = None  # madonvi; the settings' unit_id by default
    timeout_seconds: float = 15.0
    max_retries: int = 6
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    batch_size: int = 500
    concurrency: int = 4


class PortalError(LienThongError):
    """The portal was unreachable or kept failing after the retries: run again later."""

    code = "portal_unavailable"
    exit_code = ExitCode.UNAVAILABLE


class PortalRejected(LienThongError):
    """The portal refused the content (``error_code`` not 0): fix the data, not the network."""

    code = "portal_rejected"

    def __init__(self, message: str, *, error_code: int, message_vi: str | None = None) -> None:
        super().__init__(message, message_vi=message_vi)
        self.error_code = error_code


Outcome = Literal["created", "updated"]


class _TryAgain(Exception):
    """A failure another try may cure: the network, a 5xx, or throttling (with its wait)."""

    def __init__(self, what: str, *, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.retry_after = retry_after


class PortalClient:
    def __init__(
        self,
        settings: PortalSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from lienthong.settings import get_settings

        self.s = settings or PortalSettings()
        self.unit_id = self.s.unit_id or get_settings().unit_id
        self.sleep = sleep
        limits = httpx.Limits(max_connections=max(4, self.s.concurrency * 2))
        self.http = httpx.Client(
            base_url=self.s.url, timeout=self.s.timeout_seconds, limits=limits, transport=transport
        )
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self._markers = get_portal_config().already_exists
        self.retries = 0
        self.throttled = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- auth ---------------------------------------------------------------------------------

    def _login(self, stale: str | None = None) -> str:
        with self._token_lock:
            if self._token is not None and self._token != stale:
                return self._token
            resp = self._send(
                "POST",
                "/api/auth/token",
                {"username": self.s.username, "password": self.s.password.get_secret_value()},
                auth=False,
            )
            if resp.status_code == 401:
                raise PortalRejected(
                    "portal refused the credentials",
                    error_code=401,
                    message_vi="Cổng DVCQG từ chối tài khoản kết nối; kiểm tra cấu hình.",
                )
            self._token = str(resp.json()["access_token"])
            return self._token

    # --- transport with retries ---------------------------------------------------------------

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, auth: bool = True
    ) -> httpx.Response:
        backoff = exponential(self.s.backoff_seconds, self.s.backoff_max_seconds)

        def wait(attempt: int, exc: BaseException) -> float:
            retry_after = exc.retry_after if isinstance(exc, _TryAgain) else None
            return retry_after if retry_after is not None else backoff(attempt, exc)

        try:
            return call_with_retries(
                lambda: self._send_once(method, path, body, auth=auth),
                tries=self.s.max_retries + 1,
                wait=wait,
                when=lambda exc: isinstance(exc, _TryAgain),
                sleep=self.sleep,
            )
        except _TryAgain as exc:
            tries = self.s.max_retries + 1
            if exc.retry_after is not None:
                raise PortalError(
                    f"{path}: still throttled after {tries} tries",
                    message_vi="Cổng DVCQG đang giới hạn tần suất; sẽ đồng bộ lại sau.",
                ) from None
            raise PortalError(
                f"{path}: portal unavailable after {tries} tries ({exc})",
                message_vi="Không kết nối được Cổng DVCQG; sẽ đồng bộ lại sau.",
            ) from None

    def _send_once(
        self, method: str, path: str, body: dict[str, Any] | None, *, auth: bool
    ) -> httpx.Response:
        """One try (an expired token renewed once within it); a failure worth another try raises
        :class:`_TryAgain`."""
        renewed = False
        while True:
            headers = {}
            token = None
            if auth:
                token = self._token or self._login()
                headers["Authorization"] = f"Bearer {token}"
            try:
                resp = self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                self.retries += 1
                raise _TryAgain(type(exc).__name__) from exc
            if resp.status_code == 401 and auth and not renewed:
                renewed = True
                self._login(stale=token)
                continue
            if resp.status_code == 429:
                self.throttled += 1
                raise _TryAgain("HTTP 429", retry_after=_retry_after(resp, self.s.backoff_seconds))
            if resp.status_code >= 500:
                self.retries += 1
                raise _TryAgain(f"HTTP {resp.status_code}")
            return resp

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self._send("POST", path, body)
        if resp.status_code >= 400:
            raise PortalRejected(
                f"{path}: HTTP {resp.status_code}",
                error_code=resp.status_code,
                message_vi="Cổng DVCQG từ chối yêu cầu.",
            )
        data: dict[str, Any] = resp.json()
        return data

    # --- business calls -----------------------------------------------------------------------

    def push_dossier(self, hoso: dict[str, Any]) -> Outcome:
        """Create, or update when the portal says the dossier already exists."""
        answer = self._call("/api/hoso/create", {"madonvi": self.unit_id, "data": hoso})
        if answer.get("error_code") == 0:
            return "created"
        message = str(answer.get("message", ""))
        if any(m in message.lower() for m in self._markers):
            answer = self._call("/api/hoso/update", {"madonvi": self.unit_id, "data": hoso})
            if answer.get("error_code") == 0:
                return "updated"
        raise PortalRejected(
            f"{hoso.get('MaHoSo')}: portal answered {answer.get('error_code')}: "
            f"{answer.get('message')}",
            error_code=int(answer.get("error_code", -1)),
            message_vi=str(answer.get("message") or "Cổng DVCQG từ chối hồ sơ."),
        )

    def push_progress(self, code: str, records: list[dict[str, Any]]) -> None:
        answer = self._call(
            "/api/hoso/progress", {"madonvi": self.unit_id, "MaHoSo": code, "TienTrinh": records}
        )
        if answer.get("error_code") != 0:
            raise PortalRejected(
                f"{code}: progress refused: {answer.get('message')}",
                error_code=int(answer.get("error_code", -1)),
                message_vi=str(answer.get("message") or "Cổng DVCQG từ chối tiến trình."),
            )

    def lookup(self, code: str) -> dict[str, Any] | None:
        resp = self._send("GET", f"/api/hoso/{code}", None)
        return None if resp.status_code == 404 else resp.json()


def _retry_after(resp: httpx.Response, default: float) -> float:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default

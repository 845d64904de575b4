"""HTTP client of the agency API (the contract is in ``lienthong.agencies``)."""

from __future__ import annotations

import httpx

from lienthong.agencies import StepRequest, StepTicket
from lienthong.errors import AgencyError, LienThongError


class AgencyRequestRejected(LienThongError):
    """The agency refused the request itself (4xx): retrying will not help."""

    code = "agency_request_rejected"


class HttpAgencyClient:
    def __init__(self, base_url: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def submit(self, request: StepRequest) -> StepTicket:
        return self._call("POST", "/v1/steps", json=request.model_dump(mode="json"))

    def poll(self, ticket: str) -> StepTicket:
        return self._call("GET", f"/v1/steps/{ticket}")

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: object) -> StepTicket:
        try:
            resp = self._http.request(method, path, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise AgencyError(
                f"agency API unreachable ({method} {path}): {exc.__class__.__name__}",
                message_vi="Không kết nối được hệ thống của cơ quan xử lý; sẽ thử lại.",
            ) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise AgencyError(
                f"agency API answered {resp.status_code} to {method} {path}",
                message_vi="Hệ thống của cơ quan xử lý tạm thời lỗi; sẽ thử lại.",
            )
        if resp.status_code >= 400:
            raise AgencyRequestRejected(
                f"agency API refused {method} {path}: {resp.status_code} {resp.text[:200]}",
                message_vi="Cơ quan xử lý từ chối yêu cầu kết nối.",
            )
        return StepTicket.model_validate(resp.json())

"""Helpers of the gateway tests: a signed client and the agencies' test secrets."""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from lienthong.gateway.app import create_app
from lienthong.gateway.settings import GatewaySettings
from lienthong.gateway.signing import signed_headers
from samples.dossiers import make_submission

SECRETS = {
    "DVCQG": ["dvcqg-secret-0123456789"],
    "CONG_AN_XA": ["police-secret-0123456789"],
    "UBND_XA": ["commune-old-secret-0123", "commune-new-secret-0123"],
    "BHXH": ["bhxh-secret-0123456789ab"],
}
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def submission_json(seed: int = 1, procedure: str = "lien-thong-khai-sinh", **kw: Any) -> bytes:
    sub = make_submission(procedure, random.Random(seed), T, **kw)
    return sub.model_dump_json().encode()


class Signed:
    """An agency's HTTP client: every POST signed with its (first, unless told) secret."""

    def __init__(
        self,
        base_url: str,
        agency: str = "DVCQG",
        secret: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.agency, self.secret = agency, secret or SECRETS[agency][0]
        self.http = httpx.Client(base_url=base_url, timeout=30, transport=transport)

    def post(
        self,
        path: str,
        body: bytes | dict[str, Any],
        *,
        key: str | None = None,
        nonce: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = signed_headers(
            self.agency,
            self.secret,
            "POST",
            path,
            raw,
            idempotency_key=key or secrets.token_hex(8),
            nonce=nonce,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
        return self.http.post(path, content=raw, headers={**h, **(headers or {})})

    def get(self, path: str, *, signed: bool = True) -> httpx.Response:
        """A GET, signed over the empty body (a dossier's status answers signed requests only)."""
        if not signed:
            return self.http.get(path)
        bare = httpx.URL(path).path
        h = signed_headers(self.agency, self.secret, "GET", bare, b"", timestamp=int(time.time()))
        return self.http.get(path, headers=h)


@pytest.fixture(name="gateway")
def gateway_server(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The gateway over real HTTP on the test database; yields its base URL."""
    from tests.conftest import LiveServer

    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    settings = GatewaySettings(rate_per_second=1000, rate_burst=1000, max_body_bytes=64 * 1024)
    with LiveServer(create_app(settings)) as server:
        yield server.url

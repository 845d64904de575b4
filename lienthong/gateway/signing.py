"""The request signature: HMAC-SHA256 over timestamp, nonce, method, path and the body's digest.

Senders and the gateway share this module, so the scheme is written down exactly once:

    string_to_sign = timestamp "\\n" nonce "\\n" METHOD "\\n" path "\\n" sha256_hex(body)
    X-Signature    = lowercase hex of HMAC-SHA256(secret, string_to_sign)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable

SIGNATURE_LENGTH = 64


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def string_to_sign(timestamp: str, nonce: str, method: str, path: str, digest: str) -> bytes:
    return "\n".join((timestamp, nonce, method.upper(), path, digest)).encode("utf-8")


def sign(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    message = string_to_sign(timestamp, nonce, method, path, body_digest(body))
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def matches(
    candidates: Iterable[str],
    signature: str,
    timestamp: str,
    nonce: str,
    method: str,
    path: str,
    digest: str,
) -> bool:
    """True if any active secret (one, or two during a rotation) produced ``signature``."""
    message = string_to_sign(timestamp, nonce, method, path, digest)
    ok = False
    for secret in candidates:  # no early exit: the time taken does not tell which secret matched
        expected = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
        ok |= hmac.compare_digest(expected, signature)
    return ok


def signed_headers(
    agency: str,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    idempotency_key: str | None = None,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Headers of a signed request (what an agency's client, the simulator and the tests send)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    headers = {
        "X-Agency": agency,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, ts, nonce, method, path, body),
        "Content-Type": "application/json",
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers

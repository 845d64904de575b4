"""The webhook gateway: signed intake from portals and agencies into a durable inbox.

Open-source Prefect has no webhooks, so agencies and the national portal POST here. A request is
authenticated (HMAC, timestamp window, one-time nonce), checked for *structure* only, and written
to the inbox table in the same transaction as its idempotency key; a relay then turns inbox rows
into flow runs (``relay.py``). This package never imports Prefect.
"""

from lienthong.gateway.app import create_app

__all__ = ["create_app"]

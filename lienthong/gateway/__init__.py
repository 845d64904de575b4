"""The webhook gateway: signed intake from portals and agencies into a durable inbox.

Open-source Prefect has no webhooks, so agencies and the national portal POST here. A request is
authenticated (HMAC, timestamp window, one-time nonce), checked for *structure* only, and written
to the inbox table in the same transaction as its idempotency key; a relay then turns inbox rows
into flow runs (``relay.py``). This package never imports Prefect.

Nothing is imported here: Alembic's environment imports ``lienthong.gateway.models`` for its
tables, and that must not pull in FastAPI. The app is ``lienthong.gateway.app.create_app``.
"""

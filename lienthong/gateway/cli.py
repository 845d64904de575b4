"""``lienthong gateway`` serves the webhook gateway (``lienthong relay``, which starts flow runs for
its inbox, needs Prefect: it is in ``infra/cli.py``)."""

from __future__ import annotations

import argparse

from lienthong.errors import ExitCode


def _gateway(args: argparse.Namespace) -> int:
    import uvicorn

    from lienthong.gateway.settings import get_gateway_settings

    settings = get_gateway_settings()
    host, port = args.host or settings.host, args.port or settings.port
    workers = args.workers or settings.workers
    # An import string and a factory, so that several worker processes each build their own app.
    uvicorn.run(
        "lienthong.gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=args.log_level,
        access_log=False,
    )
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    g = subparsers.add_parser(
        "gateway",
        help="serve the webhook gateway (FastAPI, uvicorn)",
        description="Signed intake of dossiers, supplements and agency results; see docs/gateway.md.",
    )
    g.add_argument("--host", help="bind address (default LIENTHONG_GATEWAY_HOST, 127.0.0.1)")
    g.add_argument("--port", type=int, help="port (default LIENTHONG_GATEWAY_PORT, 8720)")
    g.add_argument("--workers", type=int, help="uvicorn worker processes (LIENTHONG_GATEWAY_WORKERS)")
    g.add_argument("--log-level", default="info")
    g.set_defaults(handler=_gateway)

"""``lienthong gateway`` serves the webhook gateway; ``lienthong relay`` runs its inbox."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging


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
    return 0


def _relay(args: argparse.Namespace) -> int:
    from infra.gateway_relay import relay  # Prefect lives outside the core package

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = relay()
    if args.once:
        report = worker.run_once()
        print(
            json.dumps(
                {
                    "started": report.started,
                    "resumed": report.resumed,
                    "waiting": report.waiting,
                    "failed": report.failed,
                    "closed": report.closed,
                },
                ensure_ascii=False,
            )
        )
        return 1 if report.failed else 0
    with contextlib.suppress(KeyboardInterrupt):
        worker.run_forever(idle_seconds=args.idle)
    return 0


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

    r = subparsers.add_parser(
        "relay",
        help="start or resume flow runs for the gateway's inbox",
        description="Start a deployment run per received dossier, resume "
        "suspended runs with supplements and agency results.",
    )
    r.add_argument("--once", action="store_true", help="one pass, then exit (1 if a call failed)")
    r.add_argument("--idle", type=float, default=1.0, help="seconds between passes when idle")
    r.set_defaults(handler=_relay)

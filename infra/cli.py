"""The ``lienthong`` command as installed: the core's commands (``lienthong.cli``) and the ones that
need the orchestration layer or the sample generators, which the core must not import.

``prefect-server``, ``serve``, ``demo`` and ``relay`` need Prefect (``infra/``, ``flows/``);
``sample-dossier`` makes test data (``samples/``). Only the module owning the command being run is
imported, as in the core's parser.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence

from lienthong import cli as core
from lienthong.errors import ExitCode

FEATURES: dict[str, tuple[str, ...]] = {
    **core.FEATURES,
    "infra.cli": ("prefect-server", "serve", "demo", "relay"),
    "samples.cli": ("sample-dossier",),
}


def _prefect_server(args: argparse.Namespace) -> int:
    from infra.local import run_prefect_server_foreground

    return run_prefect_server_foreground()


def _serve(args: argparse.Namespace) -> int:
    from infra.deployments import serve_all

    serve_all()
    return ExitCode.OK


def _demo(args: argparse.Namespace) -> int:
    from infra.demo import run_demo

    return run_demo(dossiers=args.dossiers, seed=args.seed, speed=args.speed,
                    keep_running=args.keep_running)


def _relay(args: argparse.Namespace) -> int:
    from infra.gateway_relay import relay

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = relay()
    if args.once:
        report = worker.run_once()
        print(json.dumps({"started": report.started, "resumed": report.resumed, "waiting": report.waiting,
                          "failed": report.failed, "closed": report.closed}, ensure_ascii=False))
        return ExitCode.UNAVAILABLE if report.failed else ExitCode.OK
    with contextlib.suppress(KeyboardInterrupt):
        worker.run_forever(idle_seconds=args.idle)
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("prefect-server", help="the local Prefect server and UI on ./var").set_defaults(
        handler=_prefect_server)
    sub.add_parser("serve", help="serve every deployment (procedures and batch flows)").set_defaults(
        handler=_serve)
    d = sub.add_parser("demo", help="run synthetic dossiers of every procedure end to end")
    d.add_argument("--dossiers", type=int, default=9, help="how many dossiers (default 9, plus follow-ups)")
    d.add_argument("--seed", type=int, default=2026)
    d.add_argument("--speed", type=float, default=3000.0,
                   help="simulated office seconds per real second (default 3000: a working day in ~11 s)")
    d.add_argument("--keep-running", action="store_true",
                   help="leave the Prefect server, simulator and deployments running afterwards")
    d.set_defaults(handler=_demo)
    r = sub.add_parser("relay", help="start or resume flow runs for the gateway's inbox",
                       description="Start a deployment run per received dossier, resume "
                       "suspended runs with supplements and agency results.")
    r.add_argument("--once", action="store_true",
                   help="one pass, then exit (7, unavailable, if a call to Prefect failed)")
    r.add_argument("--idle", type=float, default=1.0, help="seconds between passes when idle")
    r.set_defaults(handler=_relay)


def main(argv: Sequence[str] | None = None) -> int:
    return core.main(argv, features=FEATURES)


if __name__ == "__main__":
    sys.exit(main())

"""``lienthong sample-dossier``: a valid, fictitious dossier payload for trying the other commands.

Test data, not the core: the ``lienthong`` command (``infra/cli.py``) adds it to the core's parser.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime

from lienthong.errors import ExitCode


def _sample(args: argparse.Namespace) -> int:
    from lienthong.catalog import get_catalog
    from lienthong.clock import get_clock, localize
    from samples.dossiers import make_submission

    proc = get_catalog().get(args.procedure)
    received = localize(args.received_at) if args.received_at else get_clock().now()
    submission = make_submission(proc.id, random.Random(args.seed), received,
                                 paper_components=args.paper)
    print(submission.model_dump_json(indent=2, exclude_none=True))
    return ExitCode.OK


def _when(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sample-dossier`` to the ``lienthong`` command."""
    s = subparsers.add_parser(
        "sample-dossier", help="print a valid synthetic dossier payload (JSON)",
        description="Print a valid, fictitious dossier of a catalog procedure as JSON.")
    s.add_argument("--procedure", required=True,
                   help="catalog id (lien-thong-khai-sinh) or national code (2.002621)")
    s.add_argument("--seed", type=int, default=0, help="the same seed gives the same dossier")
    s.add_argument("--received-at", type=_when, help="reception time, ISO 8601 (default: now)")
    s.add_argument("--paper", action="store_true", help="components to digitize are paper ones")
    s.set_defaults(handler=_sample)

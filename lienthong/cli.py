"""The core's commands of ``lienthong``: the ones that need only the core package.

The installed ``lienthong`` command is ``infra.cli``, which adds the commands that need the
orchestration layer (Prefect) or the sample generators to this parser. Only the module owning the
command being run is imported, so the core stays importable (and fast) without them."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime

from lienthong.errors import ExitCode, LienThongError

Handler = Callable[[argparse.Namespace], int]


def _parse_local(value: str) -> datetime:
    from lienthong.clock import localize

    try:
        return localize(datetime.fromisoformat(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc


# --- deadline ---------------------------------------------------------------------------------


def _deadline(args: argparse.Namespace) -> int:
    from lienthong.calendar import TimeLimit, get_calendar
    from lienthong.catalog import get_catalog

    if args.procedure:  # the version in force on the reception date
        limit = get_catalog().get(args.procedure, on=args.received.date()).limit(args.verification)
    else:
        limit = TimeLimit(args.working_days)
    start = args.restart_at or args.received
    print(get_calendar().due(start, limit).isoformat())
    return ExitCode.OK


def _register_deadline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deadline", help="due time of a limit in working days (Asia/Ho_Chi_Minh)",
                       description="Print the due time as one ISO 8601 line with +07:00.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--procedure", help="catalog id or national code: its group limit")
    which.add_argument("--working-days", type=int, help="a limit of N working days (0: same day)")
    p.add_argument("--received", type=_parse_local, required=True, help="reception time, ISO 8601")
    p.add_argument("--restart-at", type=_parse_local,
                   help="when the complete dossier arrived after a supplement request (clock restarts)")
    p.add_argument("--verification", action="store_true", help="use the limit with verification")
    p.set_defaults(handler=_deadline)


# --- database, reception ----------------------------------------------------------------------


def _db_upgrade(args: argparse.Namespace) -> int:
    from lienthong.db.migrate import current, upgrade

    upgrade()
    print("schema at", ", ".join(sorted(current())))
    return ExitCode.OK


def _receive(args: argparse.Namespace) -> int:
    from lienthong.payloads import Submission
    from lienthong.reception import receive

    with open(args.file, encoding="utf-8") as fh:
        submission = Submission.model_validate_json(fh.read())
    receipt = receive(submission, idempotency_key=args.idempotency_key)
    print(json.dumps({"dossier_code": receipt.dossier_code, "due_at": receipt.due_at.isoformat(),
                      "created": receipt.created}, ensure_ascii=False))
    return ExitCode.OK


def _register_core(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="database schema")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply every migration").set_defaults(handler=_db_upgrade)
    r = sub.add_parser("receive", help="receive one dossier payload (JSON file) and print its code")
    r.add_argument("file")
    r.add_argument("--idempotency-key")
    r.set_defaults(handler=_receive)


# --- simulators (applications above the services: nothing else in the core imports them) -------


def _agency_sim(args: argparse.Namespace) -> int:
    import uvicorn

    from lienthong.simulators.agency import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
    return ExitCode.OK


def _portal_sim(args: argparse.Namespace) -> int:
    from lienthong.simulators.portal import serve

    serve(args.host, args.port)
    return ExitCode.OK


def _register_simulators(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("agency-sim", help="serve the bundled agency simulator over HTTP")
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--port", type=int, default=8710)
    a.set_defaults(handler=_agency_sim)
    p = sub.add_parser("portal-sim", help="run the national-portal simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8720)
    p.set_defaults(handler=_portal_sim)


# Feature modules, each with a register(subparsers) function, and the commands each one adds. Only
# the module owning the command being run is imported, so `lienthong digitize` starts fast.
FEATURES: dict[str, tuple[str, ...]] = {
    "lienthong.quality.cli": ("validate",),
    "lienthong.vault.cli": ("vault",),
    "lienthong.reports.cli": ("report", "import-history", "portal-sync", "forms", "sweep"),
    "lienthong.digitize.cli": ("digitize",),
    "lienthong.gateway.cli": ("gateway",),
}

# Commands that read or write the database: before they run, the schema is checked and, on a fresh
# or local database, brought up to date (lienthong.db.migrate.ensure_schema).
DB_COMMANDS = frozenset({"receive", "report", "import-history", "portal-sync", "forms", "sweep",
                         "vault", "gateway", "relay"})

REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_deadline,
    _register_core,
    _register_simulators,
]


def _feature_modules(argv: Sequence[str], features: dict[str, tuple[str, ...]]) -> list[str]:
    command = next((a for a in argv if not a.startswith("-")), None)
    owners = [m for m, commands in features.items() if command in commands]
    return owners or ([] if command in _core_commands() else list(features))


def _core_commands() -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    for register in REGISTRARS:
        register(sub)
    return set(sub.choices)


def build_parser(argv: Sequence[str] | None = None,
                 features: dict[str, tuple[str, ...]] = FEATURES) -> argparse.ArgumentParser:
    """The parser of the core's commands and ``features`` (module -> the commands its
    ``register(subparsers)`` adds); with ``argv``, only the module owning its command is imported."""
    import importlib

    parser = argparse.ArgumentParser(prog="lienthong", description="Liên Thông: inter-agency "
                                     "administrative procedures (thủ tục hành chính liên thông).",
                                     epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(sub)
    modules = list(features) if argv is None else _feature_modules(argv, features)
    for module in modules:
        importlib.import_module(module).register(sub)
    return parser


EPILOG = "exit codes: " + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode) + \
    " (README, Exit codes)"


def _unavailable(exc: Exception) -> bool:
    """A database or HTTP service that did not answer (checked only if its library is loaded)."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    sa, httpx = sys.modules.get("sqlalchemy.exc"), sys.modules.get("httpx")
    if sa is not None:
        kinds += [sa.OperationalError, sa.InterfaceError]
    if httpx is not None:
        kinds.append(httpx.TransportError)
    return isinstance(exc, tuple(kinds))


def main(argv: Sequence[str] | None = None, features: dict[str, tuple[str, ...]] = FEATURES) -> int:
    """Run one command; its status is an :class:`ExitCode` (argparse's usage errors exit 2, BAD_ARGS)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv, features).parse_args(argv)
    handler: Handler = args.handler
    try:
        if args.command in DB_COMMANDS:
            from lienthong.db.migrate import ensure_schema

            ensure_schema()
        return int(handler(args))
    except LienThongError as exc:
        print(f"lienthong: {exc.message}", file=sys.stderr)
        if exc.message_vi != exc.message:
            print(f"  ({exc.message_vi})", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:
        from lienthong.db.migrate import OUTDATED, is_missing_schema

        if is_missing_schema(exc):
            print(f"lienthong: {OUTDATED}", file=sys.stderr)
            return ExitCode.CONFIG
        if _unavailable(exc):
            print(f"lienthong: a service did not answer, run again later: {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
            return ExitCode.UNAVAILABLE
        traceback.print_exc()
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())

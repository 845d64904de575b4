"""``lienthong validate`` (``lienthong sample-dossier``, which makes test data, is ``samples/cli.py``).

``validate`` exits OK (0) when valid, printing nothing; CHECK_FAILED (1) when invalid, printing the
Vietnamese Form 02 lines, one per failing rule; INPUT_FILE (3) when the input is unreadable (not
JSON, or the header is missing or malformed). See ``lienthong.errors.ExitCode``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from lienthong.errors import ExitCode

HEADER = ("procedure_code", "received_at", "channel", "applicant")


def _validate(args: argparse.Namespace) -> int:
    from lienthong.payloads import Submission

    path = Path(args.file)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"lienthong validate: {path}: no such file", file=sys.stderr)
        return ExitCode.INPUT_FILE
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        print(f"lienthong validate: {path}: not JSON ({exc})", file=sys.stderr)
        return ExitCode.INPUT_FILE
    if not isinstance(raw, dict):
        print(f"lienthong validate: {path}: a dossier payload is a JSON object", file=sys.stderr)
        return ExitCode.INPUT_FILE
    missing = [k for k in HEADER if k not in raw]
    if missing:
        print(f"lienthong validate: {path}: the header lacks {', '.join(missing)} "
              f"(required: {', '.join(HEADER)})", file=sys.stderr)
        return ExitCode.INPUT_FILE
    try:
        submission = Submission.model_validate(raw)
    except ValidationError as exc:
        # Structure, not law: a field of the wrong type makes the payload unreadable. Field paths
        # only: the offending values may be personal data.
        where = "; ".join(".".join(str(p) for p in e["loc"]) + f": {e['msg']}"
                          for e in exc.errors())
        print(f"lienthong validate: {path}: not a dossier payload: {where}", file=sys.stderr)
        return ExitCode.INPUT_FILE
    from lienthong.quality.validator import validate_submission

    outcome = validate_submission(submission, dossier_code=args.dossier_code,
                                  engine=args.engine)
    for line in outcome.lines_vi:
        print(line)
    return ExitCode.OK if outcome.ok else ExitCode.CHECK_FAILED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate`` to the ``lienthong`` command."""
    v = subparsers.add_parser(
        "validate", help="check one dossier payload against the law's rules",
        description="Exit 0 (silent) when valid; exit 1 printing the Vietnamese request-for-"
                    "supplement lines, one per failing rule; exit 3 when the file is not JSON "
                    "or lacks the header.")
    v.add_argument("file", help="a payload as JSON (see `lienthong sample-dossier`)")
    v.add_argument("--dossier-code", help="also check the dossier code against the reception date")
    v.add_argument("--engine", choices=("gx", "plain"), default="gx",
                   help="Great Expectations (default) or the plain-Python twin")
    v.set_defaults(handler=_validate)

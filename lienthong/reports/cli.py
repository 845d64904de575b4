"""CLI commands: ``report``, ``import-history``, ``portal-sync``, ``forms render``, ``sweep``. The
main CLI calls :func:`register` with its subparsers."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from lienthong.errors import ExitCode, LienThongError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report", help="on-time figures and the 766 index for a period; writes the HTML report"
    )
    p.add_argument(
        "--from", dest="date_from", required=True, type=date.fromisoformat, help="YYYY-MM-DD"
    )
    p.add_argument(
        "--to",
        dest="date_to",
        required=True,
        type=date.fromisoformat,
        help="YYYY-MM-DD (inclusive)",
    )
    p.add_argument("--agency", help="agency code, e.g. VPDKDD")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=cmd_report)

    p = subparsers.add_parser(
        "import-history",
        help="load dossiers of the previous one-stop software (CSV) as read-only history",
    )
    p.add_argument("file", type=Path)
    p.set_defaults(handler=cmd_import_history)

    p = subparsers.add_parser("portal-sync", help="push changed dossiers to the national portal")
    p.add_argument(
        "--catch-up",
        action="store_true",
        help="walk the whole backlog, resuming from the checkpoint",
    )
    p.add_argument(
        "--reset", action="store_true", help="with --catch-up: start from the first dossier"
    )
    p.add_argument("--batch-size", type=int)
    p.set_defaults(handler=cmd_portal_sync)

    p = subparsers.add_parser("forms", help="one-stop forms (Mẫu 01-05) as PDF")
    fsub = p.add_subparsers(dest="forms_cmd", required=True)
    r = fsub.add_parser("render", help="render a dossier's forms under var/forms/<code>/")
    r.add_argument("code")
    r.add_argument(
        "--form",
        action="append",
        choices=["01", "02", "03", "04", "05"],
        help="form number (repeatable; default: every form the dossier has data for)",
    )
    r.set_defaults(handler=cmd_forms_render)

    p = subparsers.add_parser(
        "sweep", help="one deadline sweep now (warnings, late marks, Form 04 drafts)"
    )
    p.set_defaults(handler=cmd_sweep)


def _fail(exc: LienThongError) -> int:
    print(f"Lỗi: {exc.message_vi}", file=sys.stderr)
    return exc.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from lienthong.index.report import build_report, summary_table

    if args.date_to < args.date_from:
        print("Lỗi: --to phải sau --from", file=sys.stderr)
        return ExitCode.BAD_ARGS
    try:
        report = build_report(args.date_from, args.date_to, agency=args.agency)
    except LienThongError as exc:
        return _fail(exc)
    for warning in report.warnings:
        print(f"Cảnh báo: {warning}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=1))
    else:
        print(summary_table(report))
        p = report.province
        print(f"\nChỉ số 766 ({p.scope}): {p.points} / {p.available_points} điểm có dữ liệu")
        print(f"Báo cáo: {report.files['html']}")
    return ExitCode.OK


def cmd_import_history(args: argparse.Namespace) -> int:
    from lienthong.history import import_history

    try:
        report = import_history(args.file)
    except LienThongError as exc:
        return _fail(exc)
    for bad in report.bad:
        print(f"dòng {bad.line}: {bad.reason}", file=sys.stderr)
    print(
        f"{report.rows} dòng: {report.inserted} đã nhập, {report.unchanged} đã có (không đổi), "
        f"{len(report.bad)} dòng lỗi bị bỏ qua"
    )
    return ExitCode.CHECK_FAILED if report.bad else ExitCode.OK


def cmd_portal_sync(args: argparse.Namespace) -> int:
    from lienthong.portal.sync import catch_up, sync_changed

    def show(r: Any) -> None:
        print(
            f"  {r.processed}/{r.total or '?'} xử lý, {r.sent} đã gửi, "
            f"{r.unchanged} không đổi, {r.rejected} bị từ chối",
            file=sys.stderr,
        )

    try:
        if args.catch_up:
            report = catch_up(reset=args.reset, batch_size=args.batch_size, on_batch=show)
        else:
            report = sync_changed(batch_size=args.batch_size, on_batch=show)
    except LienThongError as exc:
        return _fail(exc)
    print(json.dumps(report.as_dict(), ensure_ascii=False))
    return ExitCode.OK


def cmd_forms_render(args: argparse.Namespace) -> int:
    from lienthong.forms import render_form
    from lienthong.forms.context import FormUnavailable

    forms = args.form or ["01", "02", "03", "04", "05"]
    try:
        for f in forms:
            try:
                print(render_form(args.code, f))
            except FormUnavailable as exc:
                if args.form:
                    raise
                print(f"Mẫu {f}: {exc.message_vi}", file=sys.stderr)
    except LienThongError as exc:
        return _fail(exc)
    return ExitCode.OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from lienthong.notify import relay
    from lienthong.sweep import sweep

    report = sweep()
    sent = relay()
    print(
        json.dumps(
            {
                "open_dossiers": report.open_dossiers,
                "open_steps": report.open_steps,
                "warnings": len(report.warnings),
                "late_steps": len(report.late_steps),
                "late_dossiers": len(report.late_dossiers),
                "apology_drafts": len(report.apology_drafts),
                "notifications": sent,
            },
            ensure_ascii=False,
        )
    )
    return ExitCode.OK

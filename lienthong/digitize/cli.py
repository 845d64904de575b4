"""``lienthong digitize FILE... --out DIR``: searchable PDF, text and JSON per input file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lienthong.digitize.config import load_config
from lienthong.digitize.pipeline import FileResult, digitize_files
from lienthong.errors import ExitCode


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``digitize`` command to the ``lienthong`` CLI's subparsers."""
    p = subparsers.add_parser(
        "digitize",
        help="digitize scanned or born-digital files (PDF, JPEG, PNG, TIFF)",
        description="Write <name>.pdf (searchable), <name>.txt and <name>.json per input file.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--lang", default=None, help="tesseract languages, e.g. vie or vie+eng")
    p.add_argument(
        "--form",
        default=None,
        choices=["birth_certificate", "death_notice"],
        help="the form of every file (default: detected from the text)",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel pages (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)
    return p


def _line(r: FileResult) -> str:
    if r.error is not None:
        return f"{r.name}: LỖI [{r.error.code}] {r.error.message_vi}"
    conf = f"{r.confidence:.1f}" if r.confidence is not None else "-"
    tail = f"  cần kiểm tra: {'; '.join(x['message_vi'] for x in r.reasons)}" if r.review else ""
    return f"{r.name}: {len(r.pages)} trang, độ tin cậy {conf}, {r.seconds:.2f} s{tail}"


def run(args: argparse.Namespace) -> int:
    """OK when every file was digitized (some may need review), INPUT_FILE when one was refused."""
    cfg = load_config()
    if args.workers:
        cfg = load_config(ocr={**cfg.ocr.model_dump(), "workers": args.workers})
    forms = [args.form] * len(args.files) if args.form else None
    t0 = time.perf_counter()
    show_bar = not args.no_progress and sys.stderr.isatty()
    if show_bar:
        results = _with_progress(args, cfg, forms)
    else:
        results = digitize_files(
            args.files,
            args.out,
            cfg,
            forms=forms,
            lang=args.lang,
            on_file=lambda r: print(_line(r), flush=True),
        )
    bad = sum(r.error is not None for r in results)
    pages = sum(len(r.pages) for r in results)
    print(
        f"{len(results)} tệp, {pages} trang, {bad} tệp lỗi, {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return ExitCode.INPUT_FILE if bad else ExitCode.OK


def _with_progress(
    args: argparse.Namespace, cfg: Any, forms: list[str | None] | None
) -> list[FileResult]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("số hóa (trang)"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("pages", total=None)  # known once the files are opened

        def done(r: FileResult) -> None:
            bar.console.print(_line(r), highlight=False)

        return digitize_files(
            args.files,
            args.out,
            cfg,
            forms=forms,
            lang=args.lang,
            on_file=done,
            on_plan=lambda total: bar.update(task, total=total),
            on_page=lambda _i, _p: bar.advance(task),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lienthong")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())

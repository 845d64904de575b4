"""Vietnamese letters in the Prefect UI's run graph: a reproducible patch of the installed UI bundle.

The run graph (PrefectHQ/graphs, drawn with pixi.js) renders its labels with a bitmap font whose
character sheet is built once from ``BitmapFont.ASCII``, so every letter outside U+0020-U+007E is
dropped: "Đăng ký thường trú" is drawn "ng k thng tr" (PrefectHQ/prefect#9764, #21344,
PrefectHQ/graphs#164). Prefect 3.8.8 and 3.9.1 both ship that sheet. This module widens the sheet in
the built bundle to the letters Vietnamese is written with (Latin-1 Supplement, Latin Extended-A,
Ơ/ơ/Ư/ư from Latin Extended-B, and the Vietnamese block of Latin Extended Additional) and nothing
else, so the texture stays small.

It is idempotent, checks that it found exactly what it expects, and patches the bundle Prefect
ships (``prefect/server/ui``) and every copy Prefect has already made of it (``ui_build`` or the
``PREFECT_UI_STATIC_DIRECTORY``), since the server serves the copy, not the source. ``make setup``
runs it; ``python -m infra.ui_patch --check`` exits 1 if a bundle is not patched. docs/ui-patch.md
describes the upstream change this stands in for.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

# The sheet as pixi.js v7 takes it: ranges of [first, last]. JavaScript escapes, so the bundle
# stays ASCII whatever the file's encoding.
VIETNAMESE_CHARS = (
    '[[" ","~"],["\\u00a0","\\u00ff"],["\\u0100","\\u017f"],'
    '["\\u01a0","\\u01a1"],["\\u01af","\\u01b0"],["\\u1ea0","\\u1ef9"]]'
)
MARKER = "/*lienthong:vi-chars*/"
# `h6={resolution:qG,chars:v1.ASCII}` in 3.8.8's minified graph module (names change per build).
_SHEET = re.compile(r"(\{resolution:[\w$]+,chars:)([\w$]+)\.ASCII\}")


class PatchError(RuntimeError):
    """The bundle does not look as expected: a Prefect upgrade changed the graph's font code."""


def bundle_dirs() -> list[Path]:
    """Every UI bundle directory the installed Prefect may serve from (source and copies)."""
    import prefect

    pkg = Path(prefect.__file__).parent / "server"
    candidates = [pkg / "ui", pkg / "ui_build"]
    static = os.environ.get("PREFECT_UI_STATIC_DIRECTORY")
    if static:
        candidates += [Path(static), Path(static) / "v1"]
    return [d for d in dict.fromkeys(candidates) if (d / "assets").is_dir()]


def _graph_modules(bundle: Path) -> Iterable[Path]:
    for path in sorted((bundle / "assets").glob("*.js")):
        text = path.read_text(encoding="utf-8")
        if MARKER in text or _SHEET.search(text):
            yield path


def patch_text(text: str) -> tuple[str, bool]:
    """The module's text with the Vietnamese sheet, and whether it changed (False if already done)."""
    if MARKER in text:
        return text, False
    new, n = _SHEET.subn(lambda m: f"{m.group(1)}{MARKER}{VIETNAMESE_CHARS}}}", text)
    if n != 1:
        raise PatchError(f"expected one ASCII font sheet in the graph module, found {n}")
    return new, True


def patch_bundle(bundle: Path) -> list[Path]:
    """Patch one bundle directory; returns the files changed. Raises PatchError if the graph's font
    sheet is not where it should be."""
    modules = list(_graph_modules(bundle))
    if not modules:
        raise PatchError(f"no run-graph font sheet in {bundle}/assets: has the Prefect UI changed?")
    changed = []
    for path in modules:
        text, did = patch_text(path.read_text(encoding="utf-8"))
        if did:
            tmp = path.with_suffix(".js.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            changed.append(path)
    return changed


def is_patched(bundle: Path) -> bool:
    return any(MARKER in p.read_text(encoding="utf-8") for p in _graph_modules(bundle))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.ui_patch",
                                     description="Vietnamese letters in the Prefect UI's run graph.")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if a bundle is not patched")
    args = parser.parse_args(argv)
    bundles = bundle_dirs()
    if not bundles:
        print("ui-patch: no Prefect UI bundle installed", file=sys.stderr)
        return 1
    status = 0
    for bundle in bundles:
        try:
            if args.check:
                ok = is_patched(bundle)
                print(f"ui-patch: {bundle}: {'patched' if ok else 'NOT patched'}")
                status |= 0 if ok else 1
            else:
                changed = patch_bundle(bundle)
                done = "patched " + ", ".join(p.name for p in changed) if changed else "already patched"
                print(f"ui-patch: {bundle}: {done}")
        except PatchError as exc:
            print(f"ui-patch: {bundle}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())

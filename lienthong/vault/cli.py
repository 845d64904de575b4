"""``lienthong vault …``: verify, read and find results, rotate a seal key (operators of the
one-stop centre).

Exit codes (``lienthong.errors.ExitCode``): OK, CHECK_FAILED when ``verify`` finds tampering, and a
typed error's own (REFUSED for a bad address, NOT_FOUND, ACCESS_DENIED).
Personal data is masked unless ``--unmask`` is given."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lienthong.errors import ExitCode
from lienthong.privacy import mask_address, mask_citizen_id, mask_name
from lienthong.vault.access import OPERATOR
from lienthong.vault.reads import find_results, get_result, presigned_urls, summary
from lienthong.vault.seal import Keyring
from lienthong.vault.settings import get_vault_settings
from lienthong.vault.store import open_store
from lienthong.vault.verify import verify_vault

_ID_KEYS = {"so_dinh_danh", "personal_id", "owner_citizen_id", "citizen_id"}
_NAME_KEYS = {
    "ho_ten",
    "ho_ten_me",
    "ho_ten_cha",
    "nguoi_huong",
    "chu_ho",
    "nguoi_nhan_chuyen_nhuong",
    "full_name",
}
_ADDRESS_KEYS = {"dia_chi", "address"}


def mask_data(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, str) and k in _ID_KEYS:
            out[k] = mask_citizen_id(v)
        elif isinstance(v, str) and k in _NAME_KEYS:
            out[k] = mask_name(v)
        elif isinstance(v, str) and k in _ADDRESS_KEYS:
            out[k] = mask_address(v)
        elif isinstance(v, dict):
            out[k] = mask_data(v)
        else:
            out[k] = v
    return out


def _verify(args: argparse.Namespace) -> int:
    if not args.all and not args.address:
        print("lienthong vault verify: give an ADDRESS or --all", file=sys.stderr)
        return ExitCode.BAD_ARGS
    settings = get_vault_settings()
    report = verify_vault(
        None if args.all else args.address,
        store=open_store(settings),
        keyring=Keyring(settings),
        check_objects=not args.no_objects,
    )
    for p in report.problems:
        print(f"TAMPERED {p}")
    print(
        f"checked {report.results_checked} result(s) and {report.events_checked} chain event(s): "
        f"{'OK' if report.ok else f'{len(report.problems)} problem(s)'}"
    )
    return ExitCode.OK if report.ok else ExitCode.CHECK_FAILED


def _rotate_key(args: argparse.Namespace) -> int:
    from lienthong.clock import get_clock

    keyring = Keyring(get_vault_settings())
    old = keyring.key_id(args.agency, create=True)
    new = keyring.rotate(args.agency, get_clock().now())
    print(f"{args.agency}: seals from now on with {new}; {old} is kept to verify what it sealed")
    return 0


def _get(args: argparse.Namespace) -> int:
    settings = get_vault_settings()
    store = open_store(settings)
    res = get_result(
        args.address,
        agency=args.agency,
        store=store,
        with_pdf=bool(args.pdf),
        purpose="operator" if args.agency == OPERATOR else "read",
    )
    meta = dict(res.metadata)
    data = res.data or {}
    if not args.unmask:
        meta["owner_citizen_id"] = mask_citizen_id(meta.get("owner_citizen_id"))
        data = mask_data(data)
    out: dict[str, Any] = {
        "address": res.address,
        "status": res.status,
        "superseded_by": res.superseded_by,
        "needs_reissue": res.needs_reissue,
        "metadata": meta,
        "data": data,
    }
    if args.url:
        out["urls"] = presigned_urls(
            args.address, agency=args.agency, store=store, expires_seconds=settings.presign_seconds
        )
    if args.pdf:
        Path(args.pdf).write_bytes(res.pdf or b"")
        out["pdf_written_to"] = args.pdf
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return ExitCode.OK


def _find(args: argparse.Namespace) -> int:
    rows = find_results(args.owner, args.result_code, valid_only=args.valid)
    lines = [summary(r, mask=not args.unmask) for r in rows]
    if args.json:
        print(json.dumps(lines, ensure_ascii=False, indent=2))
        return ExitCode.OK
    if not lines:
        print(f"no result of {args.result_code or 'any code'} for {mask_citizen_id(args.owner)}")
        return ExitCode.OK
    for x in lines:
        flag = " RE-ISSUE" if x["needs_reissue"] else ""
        print(
            f"{x['address']}  {x['status']}{flag}  {x['issued_on']}  {x['number']}  {x['name']}  "
            f"owner {x['owner']}  dossier {x['source_dossier_code']}"
        )
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    v = subparsers.add_parser("vault", help="the result vault: verify, get and find results")
    vs = v.add_subparsers(dest="vault_command", required=True)
    p = vs.add_parser(
        "verify", help="re-hash objects, check seals and the event chain (exit 1 on tampering)"
    )
    p.add_argument("address", nargs="?", help="vault://<issuer>/<result code>/<local id>/v<n>")
    p.add_argument("--all", action="store_true", help="every result in the vault")
    p.add_argument("--no-objects", action="store_true", help="skip re-hashing the stored files")
    p.set_defaults(handler=_verify)
    r = vs.add_parser(
        "rotate-key",
        help="give an agency a new generated seal key; results sealed before stay verifiable",
    )
    r.add_argument("agency", help="e.g. UBND_XA")
    r.set_defaults(handler=_rotate_key)
    g = vs.add_parser("get", help="show one result's metadata and data")
    g.add_argument("address")
    g.add_argument("--agency", default=OPERATOR, help="read as this agency (access rules apply)")
    g.add_argument("--pdf", metavar="FILE", help="also write the result's PDF to FILE")
    g.add_argument("--url", action="store_true", help="also print short-lived download URLs")
    g.add_argument("--unmask", action="store_true", help="show personal data in clear")
    g.set_defaults(handler=_get)
    f = vs.add_parser("find", help="results of one owner (and result code)")
    f.add_argument("--owner", required=True, help="owner's personal ID number")
    f.add_argument("--result-code", help="e.g. KQ.G15.000031")
    f.add_argument("--valid", action="store_true", help="only results that may be reused now")
    f.add_argument("--json", action="store_true")
    f.add_argument("--unmask", action="store_true")
    f.set_defaults(handler=_find)

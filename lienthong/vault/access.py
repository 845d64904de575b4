"""Who may read which result: the agency that issued it, or an agency taking part in a procedure
whose catalog marks that result code as reusable (``ComponentSpec.reusable_result``)."""

from __future__ import annotations

from lienthong.catalog import Catalog, Procedure, get_catalog

# Operators of the one-stop centre reading through the CLI: every read is still logged.
OPERATOR = "OPERATOR"


def participants(proc: Procedure) -> set[str]:
    return {s.agency for s in proc.steps}


def reusable_codes(proc: Procedure) -> set[str]:
    return {c.reusable_result for c in proc.components if c.reusable_result}


def may_read(
    agency: str, issuer: str, result_code: str, catalog: Catalog | None = None
) -> tuple[bool, str]:
    """``(allowed, why)``; ``why`` names the rule (or the missing one) for the access log."""
    if agency == OPERATOR:
        return True, "operator of the one-stop centre"
    if agency == issuer:
        return True, "issuer"
    catalog = catalog or get_catalog()
    for proc in catalog:
        if agency in participants(proc) and result_code in reusable_codes(proc):
            return True, f"reusable in {proc.code} ({proc.id})"
    return (
        False,
        f"{agency} neither issued {result_code} nor takes part in a procedure that reuses it",
    )


def legal_basis_text(proc: Procedure) -> str:
    """The procedure and the articles that allow its reuse reads, as written in the access log."""
    bases = "; ".join(f"{b.document} {b.article}".strip() for b in proc.legal_basis)
    return f"{proc.code} {proc.name} — {bases}"

"""Flatten dossiers into rows of the data assets the suites check (dotted column names).

One flat dict per submission holds every field any suite may read; each asset then takes its own
columns. Blank strings become ``None``: an empty field is a missing field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lienthong.catalog import Procedure, get_catalog
from lienthong.clock import localize
from lienthong.codes import parse_procedure_code
from lienthong.errors import LienThongError
from lienthong.payloads import Person, Submission

PERSON_FIELDS = (
    "full_name",
    "citizen_id",
    "sex",
    "date_of_birth",
    "ethnicity",
    "nationality",
    "address",
    "relationship",
)
# The social-insurance funeral allowance: the only allowance with the 90-day filing rule.
SOCIAL_INSURANCE_FUNERAL = "1.014177"


def _is_vietnamese(nationality: Any) -> bool:
    if not isinstance(nationality, str):
        return False
    folded = nationality.strip().casefold()
    return folded in ("việt nam", "viet nam", "vn", "vnm", "vietnam")


ROLES = ("applicant", "mother", "father", "deceased", "transferor", "transferee")


def _blank(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


def _put_model(flat: dict[str, Any], prefix: str, model: Any, names: tuple[str, ...]) -> None:
    if model is None:
        return
    for n in names:
        flat[f"{prefix}.{n}"] = _blank(getattr(model, n, None))


def _put_person(flat: dict[str, Any], role: str, p: Person | None) -> None:
    if p is None:
        return
    _put_model(flat, role, p, PERSON_FIELDS)
    flat[f"{role}.birth_year"] = p.date_of_birth.year if p.date_of_birth else None


def procedure_of(code: str) -> Procedure | None:
    """The catalog procedure of a national code (with or without the local suffix), if any."""
    try:
        return get_catalog().get(parse_procedure_code(code).code)
    except LienThongError:
        return None


def flatten(
    s: Submission,
    *,
    dossier_code: str | None = None,
    appointment_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    """Every field of a submission under its dotted path (``child.sex``, ``components.GCS``)."""
    received = localize(s.received_at)
    flat: dict[str, Any] = {
        "dossier_code": _blank(dossier_code),
        "procedure_code": _blank(s.procedure_code),
        "channel": s.channel,
        "received_at": received,
        "received_date": received.date(),
        "appointment_at": localize(appointment_at) if appointment_at else None,
        "finished_at": localize(finished_at) if finished_at else None,
        "registration_date": s.registration_date,
    }
    for role in ROLES:
        _put_person(flat, role, getattr(s, role))
    _put_model(
        flat,
        "child",
        s.child,
        (
            "full_name",
            "sex",
            "date_of_birth",
            "place_of_birth",
            "hometown",
            "ethnicity",
            "nationality",
        ),
    )
    if s.child is not None:
        flat["child.birth_year"] = s.child.date_of_birth.year
    _put_model(
        flat,
        "birth_certificate",
        s.birth_certificate,
        ("number", "issued_on", "child_sex", "child_date_of_birth", "mother_full_name"),
    )
    if s.deceased is not None:
        flat["deceased.date_of_death"] = s.deceased.date_of_death
    _put_model(flat, "death_notice", s.death_notice, ("number", "issued_on", "issuer"))
    _put_model(
        flat,
        "parcel",
        s.parcel,
        ("certificate_number", "parcel_number", "map_sheet", "area_m2", "address"),
    )
    _put_model(flat, "contract", s.contract, ("number", "notarized_on", "price_vnd"))
    residence = s.extra.get("residence") if isinstance(s.extra.get("residence"), Mapping) else None
    if s.child is not None:
        # Without a residence section the child is registered at the mother's residence.
        res = residence or {}
        flat["residence.address"] = _blank(res.get("address")) or flat.get("mother.address")
        flat["residence.household_head"] = _blank(res.get("household_head"))
        flat["residence.household_head_consent"] = res.get("household_head_consent")
    for person in ("mother", "father"):
        # Derived: True for a Vietnamese parent (who has a personal ID), None otherwise.
        nationality = flat.get(f"{person}.nationality")
        flat[f"{person}.vietnamese"] = True if _is_vietnamese(nationality) else None
    proc = procedure_of(s.procedure_code)
    if proc is not None:
        options = {**proc.default_options(), **s.options}
        try:
            steps = proc.plan(options).steps
        except LienThongError:
            steps = []
        flat["allowance.social_insurance"] = True if any(
            st.procedure_code == SOCIAL_INSURANCE_FUNERAL for st in steps) else None
        for k, v in options.items():
            flat[f"options.{k}"] = v
        given = {c.code for c in s.components if c.file or c.vault_address or c.paper}
        for comp in proc.components:
            flat[f"components.{comp.code}"] = comp.code in given
    return flat


def declaration_of(flat: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The declaration kind and the chosen options of a flattened dossier (for ``applies_to``)."""
    proc = procedure_of(flat.get("procedure_code") or "")
    if proc is None:
        return None, {}
    opts = {k[len("options.") :]: v for k, v in flat.items() if k.startswith("options.")}
    return proc.declaration, opts


def digitized_record(
    meta: Mapping[str, Any],
    *,
    dossier_code: str,
    procedure_code: str,
    component_code: str,
    received_at: datetime,
    confidence: float | None = None,
) -> dict[str, Any]:
    """A row of the ``digitized`` asset from a component's extracted metadata.

    ``meta`` keys (set by digitization): ``owner_citizen_id``, ``document_name``, ``number``,
    ``issued_on``, ``issuer``, ``signer``, ``file_hash`` (SHA-256 hex), optional ``owner_sex`` and
    ``owner_birth_year``.
    """
    from lienthong.quality.checks import as_date

    received = localize(received_at)
    issued = meta.get("issued_on")
    return {
        "dossier_code": dossier_code,
        "procedure_code": procedure_code,
        "component_code": component_code,
        "document_name": _blank(meta.get("document_name")),
        "owner.citizen_id": _blank(meta.get("owner_citizen_id")),
        "owner.sex": meta.get("owner_sex"),
        "owner.birth_year": meta.get("owner_birth_year"),
        "file_hash": _blank(meta.get("file_hash")),
        "issued_on": as_date(issued) if issued else None,
        "received_date": received.date(),
        "confidence": confidence if confidence is not None else meta.get("confidence"),
    }


def result_record(
    *,
    dossier_code: str,
    step_key: str,
    result_code: str | None,
    data_name: str,
    outputs: Mapping[str, Any],
    received_at: datetime,
    finished_at: datetime | None,
    child: Any = None,
) -> dict[str, Any]:
    """A row of the ``agency_results`` asset: one published result of one step.

    For the birth step the child's new personal ID (``outputs["personal_id"]``) is checked against
    the declared child (``child``: the submission's :class:`~lienthong.payloads.Child`)."""
    personal_id = outputs.get("personal_id")
    return {
        "dossier_code": dossier_code,
        "step_key": step_key,
        "result_code": _blank(result_code),
        "result_data_present": outputs.get(data_name) not in (None, "", {}, []),
        "received_at": localize(received_at),
        "finished_at": localize(finished_at) if finished_at else None,
        "child.citizen_id": _blank(personal_id) if isinstance(personal_id, str) else personal_id,
        "child.sex": getattr(child, "sex", None) if personal_id is not None else None,
        "child.birth_year": (
            child.date_of_birth.year if personal_id is not None and child is not None else None
        ),
    }

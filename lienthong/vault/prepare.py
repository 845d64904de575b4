"""A result before it is sealed: the agency's draft, checked and turned into the metadata document
(Circular 01/2023) and the bytes of its objects."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from lienthong.codes import parse_citizen_id, parse_result_code
from lienthong.payloads import nfc
from lienthong.vault.address import VaultAddress
from lienthong.vault.errors import VaultError
from lienthong.vault.render import render_result_pdf
from lienthong.vault.schemas import validate_result_data
from lienthong.vault.seal import canonical_json
from lienthong.vault.store import object_key, sha256_hex

# Metadata fields that are both sealed and kept as index columns (verification compares them).
SEALED_COLUMNS = (
    "address",
    "issuer",
    "result_code",
    "local_id",
    "version",
    "owner_citizen_id",
    "name",
    "number",
    "issued_on",
    "issuing_body",
    "signer",
    "valid_until",
    "permanent",
    "scope",
    "summary",
    "procedure_code",
    "source_dossier_code",
    "source_step",
    "supersedes",
)


@dataclass(frozen=True)
class ResultDraft:
    """What an agency issued, before it is sealed: the data plus the metadata of Circular 01/2023."""

    issuer: str
    result_code: str
    name: str
    local_id: str
    data: dict[str, Any]
    owner_citizen_id: str
    procedure_code: str
    source_dossier_code: str
    issued_on: date
    issuing_body: str
    signer: str
    number: str
    source_step: str | None = None
    valid_until: date | None = None
    scope: str = "Toàn quốc"
    summary: str | None = None
    pdf: bytes | None = None
    inputs: tuple[str, ...] = ()
    version: int = 1
    supersedes: str | None = None


@dataclass(frozen=True)
class PreparedResult:
    address: VaultAddress
    metadata: dict[str, Any]
    pdf: bytes
    data_json: bytes
    inputs: tuple[str, ...] = ()

    def objects(self) -> list[tuple[bytes, str]]:
        return [(self.pdf, "application/pdf"), (self.data_json, "application/json")]

    @property
    def keys(self) -> list[str]:
        return [self.metadata["files"]["pdf"]["key"], self.metadata["files"]["data"]["key"]]

    @property
    def digests(self) -> list[str]:
        return [self.metadata["files"]["pdf"]["sha256"], self.metadata["files"]["data"]["sha256"]]


def _file_entry(data: bytes, content_type: str) -> dict[str, Any]:
    d = sha256_hex(data)
    return {"key": object_key(d), "sha256": d, "size": len(data), "content_type": content_type}


def prepare_result(draft: ResultDraft) -> PreparedResult:
    """Check the draft (codes, owner ID, data against its schema), render the PDF if none was
    supplied, and build the metadata document that will be sealed."""
    parse_result_code(draft.result_code)
    owner = str(parse_citizen_id(draft.owner_citizen_id))
    data = nfc(dict(draft.data))
    validate_result_data(draft.result_code, data)
    address = VaultAddress(draft.issuer, draft.result_code, draft.local_id, draft.version)
    meta: dict[str, Any] = nfc(
        {
            "address": str(address),
            "issuer": draft.issuer,
            "result_code": draft.result_code,
            "local_id": draft.local_id,
            "version": draft.version,
            "owner_citizen_id": owner,
            "name": draft.name,
            "number": draft.number,
            "issued_on": draft.issued_on.isoformat(),
            "issuing_body": draft.issuing_body,
            "signer": draft.signer,
            "valid_until": draft.valid_until.isoformat() if draft.valid_until else None,
            "permanent": draft.valid_until is None,
            "scope": draft.scope,
            "summary": draft.summary,
            "procedure_code": draft.procedure_code,
            "source_dossier_code": draft.source_dossier_code,
            "source_step": draft.source_step,
            "supersedes": draft.supersedes,
        }
    )
    pdf = draft.pdf if draft.pdf is not None else render_result_pdf(meta, data)
    if not pdf.startswith(b"%PDF"):
        raise VaultError(
            f"{address}: the supplied file is not a PDF",
            message_vi="Tệp kết quả gửi kèm không phải PDF.",
        )
    data_json = canonical_json(data)
    meta["files"] = {
        "pdf": _file_entry(pdf, "application/pdf"),
        "data": _file_entry(data_json, "application/json"),
    }
    return PreparedResult(address, meta, pdf, data_json, tuple(sorted(set(draft.inputs))))


def pdf_from(data: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """An agency may attach its own PDF to the data (``_pdf_base64`` or ``_pdf_path``): split it off."""
    data = dict(data)
    raw = data.pop("_pdf_base64", None)
    path = data.pop("_pdf_path", None)
    if raw:
        return data, base64.b64decode(raw)
    if path:
        return data, Path(path).read_bytes()
    return data, None

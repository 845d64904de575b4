"""Result addresses: ``vault://<issuing agency>/<result code>/<local id>/v<version>``.

Issuer + document type + local id, like DigiLocker's URIs; the version grows with each correction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lienthong.codes import parse_result_code
from lienthong.vault.errors import InvalidVaultAddress

_ADDRESS = re.compile(
    r"^vault://(?P<issuer>[A-Z][A-Z0-9_]*)/(?P<code>KQ\.G\d{2}\.\d{6})/(?P<local>[A-Za-z0-9._-]+)/v(?P<v>[1-9]\d*)$"
)
_LOCAL = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@dataclass(frozen=True, order=True)
class VaultAddress:
    issuer: str
    result_code: str
    local_id: str
    version: int = 1

    def __post_init__(self) -> None:
        parse_result_code(self.result_code)
        if not _LOCAL.match(self.local_id):
            raise InvalidVaultAddress(
                f"local id {self.local_id!r} may hold letters, digits, '.', '_' and '-' only",
                message_vi="Mã định danh kết quả trong kho chỉ gồm chữ, số, '.', '_' và '-'.",
            )

    def __str__(self) -> str:
        return f"vault://{self.issuer}/{self.result_code}/{self.local_id}/v{self.version}"

    def with_version(self, version: int) -> VaultAddress:
        return VaultAddress(self.issuer, self.result_code, self.local_id, version)

    @property
    def lineage(self) -> str:
        """The address without its version: every version of one result shares it."""
        return f"vault://{self.issuer}/{self.result_code}/{self.local_id}"


def parse_address(value: str) -> VaultAddress:
    m = _ADDRESS.match((value or "").strip())
    if not m:
        raise InvalidVaultAddress(
            f"{value!r} is not vault://<issuer>/<result code>/<local id>/v<version>",
            message_vi=f"Địa chỉ kho {value!r} không đúng định dạng vault://<cơ quan>/<mã kết quả>/<mã>/v<phiên bản>.",
        )
    return VaultAddress(m["issuer"], m["code"], m["local"], int(m["v"]))


def local_id_for(dossier_code: str, step_key: str) -> str:
    """The local id of a result issued by a dossier's step: stable, so a re-run finds the same address."""
    return f"{dossier_code}.{step_key}"

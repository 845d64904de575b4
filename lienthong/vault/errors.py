"""Typed errors of the result vault; messages never carry unmasked personal data."""

from __future__ import annotations

from lienthong.errors import ExitCode, LienThongError


class VaultError(LienThongError):
    code = "vault_error"


class InvalidVaultAddress(VaultError, ValueError):
    code = "invalid_vault_address"


class ObjectMissing(VaultError, KeyError):
    code = "vault_object_missing"
    exit_code = ExitCode.NOT_FOUND

    def __str__(self) -> str:
        return self.message


class ResultNotFound(VaultError, KeyError):
    code = "vault_result_not_found"
    exit_code = ExitCode.NOT_FOUND

    def __str__(self) -> str:
        return self.message


class ResultDataInvalid(VaultError):
    """The machine-readable data of a result does not match its JSON schema."""

    code = "vault_result_data_invalid"


class AccessDenied(VaultError, PermissionError):
    """An agency asked for a result it neither issued nor may reuse under a procedure it takes part in."""

    code = "vault_access_denied"
    exit_code = ExitCode.ACCESS_DENIED


class PublicationConflict(VaultError):
    """A concurrent writer removed an object this publication needs; publishing again is safe."""

    code = "vault_publication_conflict"
    exit_code = ExitCode.UNAVAILABLE


class SealError(VaultError):
    code = "vault_seal_error"
    exit_code = ExitCode.CONFIG

"""Typed errors of the domain. Each carries an English message for engineers and a Vietnamese one
(``message_vi``) for the official or citizen who reads it; neither contains unmasked personal data."""

from __future__ import annotations


class LienThongError(Exception):
    """Base of every domain error. ``code`` is a stable, machine-readable name."""

    code = "lienthong_error"

    def __init__(self, message: str, *, message_vi: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_vi = message_vi or message

    def as_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message, "message_vi": self.message_vi}


class InvalidCode(LienThongError, ValueError):
    code = "invalid_code"


class InvalidCitizenId(InvalidCode):
    code = "invalid_citizen_id"


class InvalidDossierCode(InvalidCode):
    code = "invalid_dossier_code"


class InvalidProcedureCode(InvalidCode):
    code = "invalid_procedure_code"


class InvalidResultCode(InvalidCode):
    code = "invalid_result_code"


class CatalogError(LienThongError):
    """A procedure definition is not acceptable; the message names the file and the step."""

    code = "catalog_error"


class UnknownProcedure(LienThongError, KeyError):
    code = "unknown_procedure"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class TransitionRefused(LienThongError):
    """A dossier status change that the one-stop rules do not allow."""

    code = "transition_refused"


class SupplementAlreadyRequested(TransitionRefused):
    """A second request for supplement (yêu cầu bổ sung) in the same phase: the law allows one."""

    code = "supplement_already_requested"


class ReappointmentRefused(LienThongError):
    """A second re-appointment (Form 04), or one recorded later than one working day before the deadline."""

    code = "reappointment_refused"


class CalendarError(LienThongError, ValueError):
    code = "calendar_error"


class AgencyError(LienThongError):
    """An agency API failed in a way that may pass (retry it)."""

    code = "agency_error"

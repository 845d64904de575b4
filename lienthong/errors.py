"""Typed errors of the domain. Each carries an English message for engineers and a Vietnamese one
(``message_vi``) for the official or citizen who reads it; neither contains unmasked personal data.

``ExitCode`` is the one table of exit statuses of every ``lienthong`` command (README, "Exit
codes"); each error class says which one it ends a command with (``exit_code``), as OCRmyPDF does."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of every ``lienthong`` command. A script may rely on these numbers."""

    OK = 0
    """Done as asked (``digitize``: every file read, some may await review)."""
    CHECK_FAILED = 1
    """The command ran and what it checked does not pass: a dossier breaks a rule (``validate``),
    a stored result was tampered with (``vault verify``), rows were refused (``import-history``)."""
    BAD_ARGS = 2
    """The command line is wrong (argparse's own status): an unknown option, a missing argument."""
    INPUT_FILE = 3
    """An input file cannot be used: not found, not JSON, not a dossier payload, a scan refused."""
    REFUSED = 4
    """The law or the data refuses what was asked: an invalid code, a transition the rules forbid."""
    NOT_FOUND = 5
    """What was asked for does not exist: a procedure, a dossier, a result, a form's data."""
    ACCESS_DENIED = 6
    """The caller may not have it: an agency reading a result it may not reuse, a bad signature."""
    UNAVAILABLE = 7
    """A service failed or did not answer (database, agency, portal, Prefect): run it again later."""
    CONFIG = 8
    """The configuration or installation is not acceptable: a procedure file, an expectation suite,
    a seal key, a database schema behind the code (``lienthong db upgrade``)."""
    INTERNAL = 9
    """An error the program did not expect (a bug): the traceback is printed; please report it."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT), as shells report it."""


class LienThongError(Exception):
    """Base of every domain error. ``code`` is a stable, machine-readable name; ``exit_code`` is
    the status a command ends with when this error stops it."""

    code = "lienthong_error"
    exit_code = ExitCode.REFUSED

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
    exit_code = ExitCode.CONFIG


class UnknownProcedure(LienThongError, KeyError):
    code = "unknown_procedure"
    exit_code = ExitCode.NOT_FOUND

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
    exit_code = ExitCode.UNAVAILABLE

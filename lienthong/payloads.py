"""The dossier payload contract: what a portal, an agency or an operator submits.

JSON with English snake_case keys. These models check *structure* only (types, the header); the
law's rules (required fields per procedure, dates in order, ID consistency) are the data-quality
suites' job, so a well-formed payload that breaks a rule is still accepted and kept. Every string
is normalised to Unicode NFC on the way in.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


def nfc(value: Any) -> Any:
    """NFC-normalise every string inside a JSON-like value."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {k: nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nfc(v) for v in value]
    return value


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _nfc(cls, data: Any) -> Any:
        return nfc(data)


Sex = Literal["male", "female"]


class Person(_Payload):
    full_name: str
    citizen_id: str | None = None
    date_of_birth: date | None = None
    sex: Sex | None = None
    ethnicity: str | None = None
    nationality: str | None = "Việt Nam"
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    relationship: str | None = None


class Child(_Payload):
    full_name: str
    sex: Sex
    date_of_birth: date
    birth_time: str | None = None
    place_of_birth: str | None = None
    hometown: str | None = None
    ethnicity: str | None = None
    nationality: str | None = "Việt Nam"


class BirthCertificate(_Payload):
    """Giấy chứng sinh: the hospital's birth certificate."""

    number: str
    issued_on: date
    child_sex: Sex
    child_date_of_birth: date
    mother_full_name: str
    issuer: str | None = None
    weight_grams: int | None = None


class Deceased(Person):
    date_of_death: date
    place_of_death: str | None = None
    cause_of_death: str | None = None


class DeathNotice(_Payload):
    """Giấy báo tử: the death notice."""

    number: str
    issued_on: date
    issuer: str


class Parcel(_Payload):
    certificate_number: str
    parcel_number: str
    map_sheet: str
    area_m2: float = Field(gt=0)
    address: str


class TransferContract(_Payload):
    number: str
    notarized_on: date
    price_vnd: int = Field(ge=0)


class Component(_Payload):
    """A dossier component (thành phần hồ sơ): a file reference, or a vault address to reuse."""

    code: str
    name: str
    file: str | None = None
    vault_address: str | None = None
    paper: bool = False


class Submission(_Payload):
    """A dossier as submitted. The header is required; the rest depends on the procedure."""

    procedure_code: str
    received_at: AwareDatetime
    channel: Literal["in_person", "online", "postal"]
    applicant: Person
    options: dict[str, int | str] = {}
    verification: bool = False
    components: list[Component] = []
    # How the applicant wants to be told of the dossier, in order (Zalo ZNS, brandname SMS, to the
    # applicant's phone). Unset: the configured default (config/notify/citizen.yaml); []: no messages.
    notify_by: list[Literal["zalo", "sms"]] | None = None
    # Birth declarations (birth registration and group 1).
    registration_date: date | None = None
    child: Child | None = None
    mother: Person | None = None
    father: Person | None = None
    birth_certificate: BirthCertificate | None = None
    # Death declarations (death registration and group 2).
    deceased: Deceased | None = None
    death_notice: DeathNotice | None = None
    # Land-use-right transfer.
    transferor: Person | None = None
    transferee: Person | None = None
    parcel: Parcel | None = None
    contract: TransferContract | None = None
    # Anything a later procedure needs that has no field yet travels here, untouched.
    extra: dict[str, Any] = {}

    def owner(self) -> Person:
        """The person the dossier is about (chủ hồ sơ)."""
        if self.child is not None:
            return Person(full_name=self.child.full_name, date_of_birth=self.child.date_of_birth,
                          sex=self.child.sex)
        if self.deceased is not None:
            return self.deceased
        if self.transferee is not None:
            return self.transferee
        return self.applicant

    def received_local(self) -> datetime:
        from lienthong.clock import localize

        return localize(self.received_at)

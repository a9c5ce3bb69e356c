from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_text(value: object) -> object:
    """Only "YYYY-MM-DD": no timestamps, no numbers (pydantic would otherwise read 19790101 as a date)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_RE.match(value):
        raise ValueError("Write the date as YYYY-MM-DD.")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
Pregnancy = Literal["none", "pregnant", "breastfeeding", "planning"]
Decision = Literal["candidate", "not_candidate"]
ShortText = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class MedicationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: ShortText
    last_taken: IsoDate | None = None


class IntakeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    pregnancy: Pregnancy
    conditions: list[Annotated[StrictStr, Field(max_length=40)]] = Field(default_factory=list, max_length=40)
    medications: list[MedicationIn] = Field(default_factory=list, max_length=40)
    allergies: list[ShortText] = Field(default_factory=list, max_length=40)
    weight_stable: StrictBool | None = None
    goals: StrictStr = Field(default="", max_length=2000)
    previous_treatments: StrictStr = Field(default="", max_length=2000)


class MedicationOut(Schema):
    name: str
    last_taken: date | None
    medicine: str | None = Field(
        description='The catalogue\'s generic name(s) the line names (several joined by " + "), or null when '
        "none is recognised."
    )
    medicines: list[str] = Field(
        description="Every generic name the line names, e.g. apixaban and ibuprofen."
    )
    classes: list[str] = Field(description="The classes of all of them.")
    unrecognised: list[str] = Field(
        description="Words of the line that look like medicine names and are not in the catalogue."
    )


class IntakeOut(Schema):
    version: int
    pregnancy: str
    conditions: list[str]
    medications: list[MedicationOut]
    allergies: list[str]
    weight_stable: bool | None
    goals: str
    previous_treatments: str
    submitted_as: str
    submitted_at: datetime


class FindingOut(Schema):
    code: str
    severity: str
    rule: str
    message: str
    source: str
    subject: str = Field(
        default="", description="What the finding is about when a code can occur more than once."
    )
    key: str = Field(default="", description="What an acknowledgement names: code, or code:subject.")


class ScreeningOut(Schema):
    verdict: Literal["eligible", "review", "ineligible"]
    findings: list[FindingOut]
    intake_version: int
    rules_version: str


class ScreeningParams(Schema):
    on: IsoDate | None = Field(
        default=None, description="The planned session date; default today (clinic time)."
    )
    formula: int | None = Field(default=None, ge=1, le=2**53, description="A formula id of the formulary.")
    areas: str = Field(
        default="", max_length=500, description="Comma-separated area codes, e.g. abdomen,flanks."
    )


class AcknowledgementIn(Schema):
    """A reason for one warning, named by its ``key`` (from the screening's findings). A bare ``code`` is
    accepted when exactly one warning has that code."""

    model_config = ConfigDict(extra="forbid")

    key: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    code: Annotated[StrictStr, Field(min_length=1, max_length=40)] | None = None
    reason: Annotated[StrictStr, Field(min_length=1, max_length=1000)]

    @model_validator(mode="after")
    def _named(self) -> AcknowledgementIn:
        if (self.key is None) == (self.code is None):
            raise ValueError(_("Name the warning by its key (or, for older clients, its code)."))
        return self

    @property
    def name(self) -> str:
        return self.key if self.key is not None else str(self.code)


class ReviewIn(Schema):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    intake_version: Annotated[StrictInt, Field(ge=1)]
    on: IsoDate | None = None
    formula: Annotated[StrictInt, Field(ge=1, le=2**53)] | None = None
    areas: list[Annotated[StrictStr, Field(max_length=40)]] = Field(default_factory=list, max_length=20)
    acknowledgements: list[AcknowledgementIn] = Field(default_factory=list, max_length=40)
    note: StrictStr = Field(default="", max_length=2000)


class AcknowledgementOut(Schema):
    key: str = ""
    code: str
    subject: str = ""
    reason: str


class ReviewOut(Schema):
    id: int
    decision: str
    verdict: str
    intake_version: int
    rules_version: str
    session_date: date
    formula: int | None
    areas: list[str]
    findings: list[FindingOut]
    acknowledgements: list[AcknowledgementOut]
    note: str
    signed_by: str
    signed_at: datetime
    stale: bool
    stale_reasons: list[str]


class InvitationOut(Schema):
    detail: str
    username: str


class ErrorOut(Schema):
    detail: str


MedicineClassCode = Literal[
    "anticoagulant",
    "antiplatelet",
    "nsaid",
    "5-alpha-reductase-inhibitor",
    "isotretinoin",
    "immunosuppressant",
    "other",
]
MedicineNameText = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class MedicineNameOut(Schema):
    name: str
    is_brand: bool
    clinic_only: bool = Field(description="Added by this clinic (seen by it only).")


class MedicineOut(Schema):
    id: int
    generic_name: str
    classes: list[str]
    clinic_only: bool = Field(description="This clinic's own medicine; false for the shared catalogue.")
    names: list[MedicineNameOut]


class MedicineIn(Schema):
    model_config = ConfigDict(extra="forbid")

    clinic_id: StrictInt | None = None
    generic_name: MedicineNameText
    classes: list[MedicineClassCode] = Field(min_length=1, max_length=7)
    names: list[MedicineNameText] = Field(default_factory=list, max_length=20)


class MedicineNamesIn(Schema):
    model_config = ConfigDict(extra="forbid")

    clinic_id: StrictInt | None = None
    names: list[MedicineNameText] = Field(min_length=1, max_length=20)

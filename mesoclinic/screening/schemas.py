from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

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
    medicine: str | None = Field(description="The catalogue's generic name, or null when not recognised.")
    classes: list[str]


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
    model_config = ConfigDict(extra="forbid")

    code: Annotated[StrictStr, Field(min_length=1, max_length=40)]
    reason: Annotated[StrictStr, Field(min_length=1, max_length=1000)]


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
    code: str
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

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr

from mesoclinic.screening.schemas import IsoDate

Code = Annotated[StrictStr, Field(min_length=1, max_length=40)]
Number = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=12, decimal_places=4)]
Text = Annotated[StrictStr, Field(max_length=2000)]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class FindingOut(Schema):
    key: str
    code: str
    severity: str
    rule: str
    message: str
    source: str


# --- catalogue ----------------------------------------------------------------------------------------------


class GradeOut(Schema):
    value: int
    label: str


class ItemOut(Schema):
    label: str
    grades: list[GradeOut]


class ScaleOut(Schema):
    code: str
    name: str
    kind: str
    minimum: Decimal
    maximum: Decimal
    step: Decimal
    unit: str
    version: str
    better: str
    loinc: str
    rater: str
    landmark: bool
    at_baseline: bool
    derived: bool
    grades: list[GradeOut]
    items: list[ItemOut]


class ViewOut(Schema):
    code: str
    label: str
    instruction: str


class CatalogueOut(Schema):
    scales: list[ScaleOut]
    views: list[ViewOut]
    views_by_indication: dict[str, list[str]]
    fixed_points: dict[str, str]


# --- assessments --------------------------------------------------------------------------------------------


class LandmarkIn(In):
    fixed_point: Code
    direction: Literal["at", "above", "below"]
    distance_cm: Number
    side: Literal["", "left", "right"] = ""


class MeasurementIn(In):
    code: Code
    value: Number | None = Field(default=None, description="The score or quantity (not for Hexsel CSS).")
    items: list[StrictInt] | None = Field(default=None, max_length=10, description="Hexsel CSS: its 5 items.")
    landmark: LandmarkIn | None = Field(
        default=None, description="Where a circumference or thickness is taken (new to this plan)."
    )
    landmark_id: StrictInt | None = Field(default=None, description="One of the plan's landmarks, again.")
    rater: Literal["", "clinician", "patient"] = ""


class AssessmentIn(In):
    plan_id: StrictInt
    kind: Literal["baseline", "session", "follow-up"]
    session_id: StrictInt | None = None
    taken_on: IsoDate | None = None
    measurements: list[MeasurementIn] = Field(default_factory=list, max_length=60)
    note: Text = ""
    reason: Text = Field(default="", description="Needed when a value recorded before is changed.")


class LandmarkOut(Schema):
    id: int
    code: str
    fixed_point: str
    direction: str
    distance_cm: Decimal
    side: str
    label: str


class MeasurementOut(Schema):
    code: str
    value: Decimal
    display: str
    unit: str
    scale_version: str
    loinc: str
    rater: str
    items: list[int] | None
    landmark: LandmarkOut | None
    derived: bool


class PhotoOut(Schema):
    id: int
    assessment: int
    view: str
    content_type: str
    width_px: int
    height_px: int
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    url: str
    thumbnail_url: str


class AssessmentOut(Schema):
    id: int
    plan: int
    kind: str
    session: int | None
    taken_on: date
    after_sessions: int
    note: str | None
    recorded_at: datetime
    measurements: list[MeasurementOut]
    photos: list[PhotoOut]


# --- progress -------------------------------------------------------------------------------------------


class PointOut(Schema):
    assessment: int
    kind: str
    taken_on: date
    after_sessions: int
    value: Decimal
    standard: Decimal
    scale_version: str


class ChangeOut(Schema):
    baseline: Decimal
    latest: Decimal
    delta: Decimal
    percent: Decimal | None
    improvement: Decimal
    verdict: str


class SeriesOut(Schema):
    key: str
    code: str
    label: str
    landmark: str
    unit: str
    loinc: str
    points: list[PointOut]
    change: ChangeOut | None
    chart_url: str


class CriterionOut(Schema):
    description: str
    met: bool | None
    series: str
    improvement: Decimal | None


class AlternativeOut(Schema):
    procedure: str
    label: str


class ProgressOut(Schema):
    plan: int
    status: Literal["responder", "non-responder", "not-yet", "not-measured"]
    status_label: str
    non_responder: bool
    rule: str
    rule_code: str
    criteria: list[CriterionOut]
    judge_after_sessions: int
    sessions_done: int
    findings: list[FindingOut]
    alternatives: list[AlternativeOut]
    improved_on: date | None
    photo_consent: bool
    due: list[str]
    series: list[SeriesOut]
    assessments: list[int]


class PhotoConsentIn(In):
    given: StrictBool


class PhotoConsentOut(Schema):
    plan: int
    given: bool
    recorded_at: datetime


class SettingsIn(In):
    gais_reversed: StrictBool
    record_improvement: StrictBool
    clinic_id: StrictInt | None = None


class SettingsOut(Schema):
    clinic: int
    gais_reversed: bool
    record_improvement: bool


class AssessmentListParams(Schema):
    plan_id: int

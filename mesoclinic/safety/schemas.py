from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictStr

from mesoclinic.lib.ids import MAX_ID
from mesoclinic.screening.schemas import IsoDate

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Kind = Literal[
    "bruising",
    "swelling",
    "bumps",
    "numbness",
    "stinging",
    "itching",
    "discoloration",
    "nausea",
    "pain",
    "sensitivity",
    "redness",
    "rash",
    "infection",
    "scarring",
    "other",
]
Severity = Literal["mild", "moderate", "severe", "life-threatening"]
Outcome = Literal[
    "", "not-recovered", "recovering", "recovered", "recovered-with-sequelae", "fatal", "unknown"
]
Criterion = Literal["death", "life-threatening", "hospitalisation", "disability", "medically-important"]
ActionCode = Literal[
    "none",
    "cold-compress",
    "arnica",
    "topical-antibiotic",
    "oral-antibiotic",
    "antihistamine",
    "analgesic",
    "drainage",
    "culture",
    "referral",
    "treatment-paused",
    "other",
]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class EventIn(In):
    kind: Kind
    onset_on: IsoDate = Field(
        description="The day it began (clinic time); not before the session it follows."
    )
    severity: Severity = "mild"
    area: StrictStr = Field(default="", max_length=40, description='A body-area code, or "" when not at one.')
    other_kind: StrictStr = Field(
        default="", max_length=100, description='What it was, when kind is "other".'
    )
    serious_criteria: list[Criterion] = Field(default_factory=list, max_length=5)
    resolved_on: IsoDate | None = Field(
        default=None, description="The day it was gone; not before the onset."
    )
    outcome: Outcome = Field(default="", description='"" : from the dates (recovered when resolved).')
    actions: list[ActionCode] = Field(default_factory=list, max_length=12)
    actions_note: StrictStr = Field(default="", max_length=500)
    description: StrictStr = Field(default="", max_length=4000)
    clinical_note: StrictStr = Field(default="", max_length=4000, description="Staff only.")
    session_id: Id | None = Field(default=None, description="The session it followed, when known.")


class ReasonIn(In):
    reason: StrictStr = Field(min_length=1, max_length=1000)


class NoteIn(In):
    note: StrictStr = Field(min_length=1, max_length=2000)


class KindOut(Schema):
    code: str
    label: str
    course: str
    course_days: int | None
    link_window_days: int
    source: str


class SessionLinkOut(Schema):
    session: int
    primary: bool
    session_date: date
    days_after: int
    practitioner: int
    room_id: int | None
    device_id: int | None


class LotLinkOut(Schema):
    lot: int
    number: str
    product: str
    via: str
    session: int | None
    exposed_on: date


class FormulaLinkOut(Schema):
    session: int
    formula: int
    version: int
    name: str


class FollowUpOut(Schema):
    id: int
    event: int
    patient: int
    kind: str
    due_on: date
    status: str
    assigned_to: int | None
    note: str
    closed_at: datetime | None


class EventOut(Schema):
    id: int
    patient: int
    kind: str
    kind_label: str
    other_kind: str
    area: str
    severity: str
    serious: bool
    serious_criteria: list[str]
    onset_on: date
    resolved_on: date | None
    expected_end_on: date | None
    past_expected_course: bool
    outcome: str
    actions: list[str]
    actions_note: str
    description: str
    clinical_note: str | None = Field(description="Only for those who read clinical notes.")
    reported_via: str
    reported_at: datetime
    reviewed_at: datetime | None
    retracted_at: datetime | None
    retract_reason: str
    has_photo: bool
    sessions: list[SessionLinkOut]
    formulas: list[FormulaLinkOut] = Field(description="Formulas prepared for the linked sessions.")
    lots: list[LotLinkOut]
    follow_ups: list[FollowUpOut]


class EventSummaryOut(Schema):
    id: int
    kind: str
    kind_label: str
    area: str
    severity: str
    serious: bool
    onset_on: date
    resolved_on: date | None
    outcome: str
    reported_via: str
    retracted: bool
    has_photo: bool
    session: int | None


class FollowUpParams(Schema):
    clinic_id: Id | None = None
    status: Literal["open", "done", "resolved", ""] = "open"
    mine: bool = False


class SignalOut(Schema):
    id: int
    source_kind: str
    source_key: str
    source_label: str
    lot_id: int | None
    recall_url: str | None = Field(description="The lot's page with its recall action (lot signals).")
    level: str
    active: bool
    status: str
    cases: int
    exposed: int
    exposed_sessions: int
    rate: float
    baseline_cases: int
    baseline_patients: int
    baseline_rate: float
    p_value: float
    adjusted_p: float
    window_start: date
    window_end: date
    period_start: date
    first_raised_at: datetime
    last_scanned_at: datetime
    review_note: str


class EvidenceEventOut(Schema):
    id: int
    patient: int
    onset_on: date
    reported_via: str


class SignalDetailOut(SignalOut):
    events: list[EvidenceEventOut]
    sessions: list[int]
    within: list[list[str]]


class ClinicParams(Schema):
    clinic_id: Id | None = None


class ScanOut(Schema):
    today: date
    window_start: date
    period_start: date
    infections: int
    treated_patients: int
    seconds: float
    signals: list[SignalOut]


class RateOut(Schema):
    key: str
    label: str
    sessions: int
    sessions_with_event: int
    per_100: float
    ci95_low_per_100: float
    ci95_high_per_100: float
    small_sample: bool


class ReportParams(Schema):
    clinic_id: Id | None = None
    start: IsoDate | None = None
    end: IsoDate | None = None
    kind: Kind | Literal[""] = ""


class ReportOut(Schema):
    clinic: int
    start: date
    end: date
    kind: str
    small_sample_below_sessions: int
    total: RateOut | None
    by_protocol: list[RateOut]
    by_formula: list[RateOut]
    by_practitioner: list[RateOut]
    by_area: list[RateOut]
    unlinked_events: int

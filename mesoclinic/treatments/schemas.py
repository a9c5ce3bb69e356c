from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictInt, StrictStr

from mesoclinic.screening.schemas import IsoDate

Code = Annotated[StrictStr, Field(min_length=1, max_length=60)]
Reason = Annotated[StrictStr, Field(max_length=1000)]
Depth = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=2)]
Volume = Annotated[Decimal, Field(gt=0, le=999, max_digits=9, decimal_places=3)]
Coordinate = Annotated[float, Field(ge=-10000, le=10000, allow_inf_nan=False)]
Anaesthetic = Literal["none", "lidocaine-prilocaine", "lidocaine", "tetracaine", "other"]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class FindingOut(Schema):
    key: str
    code: str
    severity: str
    rule: str
    message: str
    source: str


class AcknowledgementIn(In):
    key: Code = Field(description="The finding's key (its code, or code:subject when several share a code).")
    reason: Reason


class AcknowledgementOut(Schema):
    key: str
    code: str
    reason: str


# --- catalogue ----------------------------------------------------------------------------------------------


class BodyAreaOut(Schema):
    code: str
    region: str
    side: str
    view: str
    label: str
    outline: list[list[float]]


class TechniqueOut(Schema):
    code: str
    name: str
    depth_min_mm: Decimal
    depth_max_mm: Decimal
    needles: str
    volume_per_point_min_ml: Decimal | None
    volume_per_point_max_ml: Decimal | None
    many_punctures: bool


# --- protocols ----------------------------------------------------------------------------------------------


class ProtocolAreaSchema(In):
    area: Code
    technique: Code
    depth_min_mm: Depth
    depth_max_mm: Depth


class ProtocolContentIn(In):
    sessions_min: StrictInt = Field(ge=1, le=30)
    sessions_max: StrictInt = Field(ge=1, le=30)
    interval_min_days: StrictInt = Field(ge=1, le=365)
    interval_max_days: StrictInt = Field(ge=1, le=365)
    taper_interval_min_days: StrictInt | None = Field(default=None, ge=1, le=365)
    taper_interval_max_days: StrictInt | None = Field(default=None, ge=1, le=365)
    maintenance_interval_days: StrictInt | None = Field(default=None, ge=1, le=730)
    areas: list[ProtocolAreaSchema] = Field(min_length=1, max_length=60)
    summary: StrictStr = Field(default="", max_length=2000)
    formula_note: StrictStr = Field(default="", max_length=2000)
    outcome_measures: list[Code] = Field(default_factory=list, max_length=30)
    non_responder_after_sessions: StrictInt | None = Field(default=None, ge=1, le=30)
    responder_rule: StrictStr = Field(default="", max_length=500)
    combinations: list[Code] = Field(default_factory=list, max_length=20)
    alternatives: list[Code] = Field(default_factory=list, max_length=20)
    aftercare: list[Code] = Field(default_factory=list, max_length=30)
    aftercare_note: StrictStr = Field(default="", max_length=2000)
    formula_ids: list[StrictInt] = Field(default_factory=list, max_length=20)
    source: StrictStr = Field(default="", max_length=500)


class ProtocolCopyIn(In):
    name: StrictStr = Field(default="", max_length=200)


class ProtocolVersionOut(Schema):
    id: int
    number: int
    summary: str
    formula_note: str
    sessions_min: int
    sessions_max: int
    interval_min_days: int
    interval_max_days: int
    taper_interval_min_days: int | None
    taper_interval_max_days: int | None
    maintenance_interval_days: int | None
    areas: list[ProtocolAreaSchema]
    outcome_measures: list[str]
    non_responder_after_sessions: int | None
    responder_rule: str
    combinations: list[str]
    alternatives: list[str]
    aftercare: list[str]
    aftercare_note: str
    formula_ids: list[int]
    source: str


class ProtocolOut(Schema):
    id: int
    code: str
    name: str
    indication: str
    template: bool
    copied_from: int | None
    version: ProtocolVersionOut


class ProtocolSummaryOut(Schema):
    id: int
    code: str
    name: str
    indication: str
    template: bool
    version: int


# --- plans --------------------------------------------------------------------------------------------------


class ProcedureIn(In):
    procedure: Code
    note: StrictStr = Field(default="", max_length=300)


class PlanCreateIn(In):
    protocol_id: StrictInt
    planned_sessions: StrictInt = Field(ge=1, le=30)
    areas: list[Code] = Field(min_length=1, max_length=60)
    formula_ids: list[StrictInt] = Field(default_factory=list, max_length=20)
    procedures: list[ProcedureIn] = Field(default_factory=list, max_length=20)
    goals: StrictStr = Field(default="", max_length=2000)


class PlanUpdateIn(In):
    planned_sessions: StrictInt = Field(ge=1, le=30)
    areas: list[Code] = Field(min_length=1, max_length=60)
    formula_ids: list[StrictInt] = Field(default_factory=list, max_length=20)
    procedures: list[ProcedureIn] = Field(default_factory=list, max_length=20)
    goals: StrictStr = Field(default="", max_length=2000)


class PlanEndIn(In):
    status: Literal["completed", "stopped"]
    reason: StrictStr = Field(default="", max_length=2000)


class ImprovementIn(In):
    on: IsoDate


class ProcedureOut(Schema):
    procedure: str
    label: str
    note: str


class PlanOut(Schema):
    id: int
    patient: int
    protocol: int
    protocol_version: int
    protocol_name: str
    indication: str
    status: str
    planned_sessions: int
    sessions_signed: int
    areas: list[str]
    formula_ids: list[int]
    procedures: list[ProcedureOut]
    goals: str
    stop_reason: str
    improved_on: date | None
    next_earliest: date | None
    next_latest: date | None
    alternatives: list[ProcedureOut]
    created_at: datetime
    activated_at: datetime | None
    ended_at: datetime | None


class GateParams(Schema):
    on: IsoDate | None = None
    practitioner: int | None = None


class GateOut(Schema):
    on: date
    can_start: bool = Field(description="No block: the session may start once every warning has a reason.")
    findings: list[FindingOut]


# --- sessions -----------------------------------------------------------------------------------------------


class CheckInIn(In):
    practitioner_id: StrictInt | None = None
    room_id: StrictInt | None = None
    device_id: StrictInt | None = None
    acknowledgements: list[AcknowledgementIn] = Field(default_factory=list, max_length=50)


class LineIn(In):
    lot_id: StrictInt
    volume_ml: Volume
    vial_id: StrictInt | None = None


class NewPreparationIn(In):
    formula_version_id: StrictInt
    lines: list[LineIn] = Field(min_length=1, max_length=20)
    notes: StrictStr = Field(default="", max_length=2000)


class ChartAreaSchema(In):
    area: Code
    technique: Code
    depth_mm: Depth = Field(description="Intended depth (R-TECH): over 13 mm is refused.")
    points: list[Annotated[list[Coordinate], Field(min_length=2, max_length=2)]] = Field(
        min_length=1, max_length=500, description="[x, y] in the area's body-map view coordinates."
    )
    needle: StrictStr = Field(default="", max_length=60)
    injections: StrictInt | None = Field(default=None, ge=1, le=5000)
    volume_per_point_ml: Volume | None = None
    total_volume_ml: Volume | None = None
    preparation_id: StrictInt | None = None
    new_preparation: StrictInt | None = Field(default=None, ge=0, le=9)
    notes: StrictStr = Field(default="", max_length=500)


class ChartIn(In):
    areas: list[ChartAreaSchema] = Field(min_length=1, max_length=40)
    topical_anaesthetic: Anaesthetic = "none"
    anaesthetic_minutes: StrictInt | None = Field(default=None, ge=0, le=240)
    room_id: StrictInt | None = None
    device_id: StrictInt | None = None
    notes: StrictStr = Field(default="", max_length=2000)
    new_preparations: list[NewPreparationIn] = Field(default_factory=list, max_length=10)
    acknowledgements: list[AcknowledgementIn] = Field(default_factory=list, max_length=100)


class AmendmentIn(ChartIn):
    reason: StrictStr = Field(min_length=1, max_length=2000)


class CosignIn(In):
    note: StrictStr = Field(default="", max_length=2000)


class ChartedAreaOut(Schema):
    area: str
    view: str
    technique: str
    depth_mm: Decimal
    needle: str
    points: list[list[float]]
    injections: int
    volume_per_point_ml: Decimal | None
    total_volume_ml: Decimal
    preparation_id: int
    lots: list[str]
    notes: str | None = Field(description="Clinical note; null for roles that do not read clinical notes.")


class AmendmentOut(Schema):
    id: int
    author: str
    at: datetime
    reason: str
    changes: list[dict[str, object]]


class SessionOut(Schema):
    id: int
    plan: int
    patient: int
    number: int
    planned_sessions: int
    session_date: date
    status: str
    practitioner: int
    room_id: int | None
    device_id: int | None
    checked_in_at: datetime
    gate_findings: list[FindingOut]
    gate_acknowledgements: list[AcknowledgementOut]
    topical_anaesthetic: str
    anaesthetic_minutes: int | None
    notes: str | None
    areas: list[ChartedAreaOut]
    chart_findings: list[FindingOut]
    chart_acknowledgements: list[AcknowledgementOut]
    charted_at: datetime | None
    signed_at: datetime | None
    signed_by: int | None
    cosign_required: bool
    cosigned_at: datetime | None
    cosigned_by: int | None
    amendments: list[AmendmentOut]


class SessionSummaryOut(Schema):
    id: int
    plan: int
    patient: int
    patient_name: str
    number: int
    session_date: date
    practitioner: str
    signed_at: datetime | None


class AftercareOut(Schema):
    session: int
    issued_at: datetime
    language: str
    instructions: list[dict[str, str]]
    note: str

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from mesoclinic.lib.ids import MAX_ID
from mesoclinic.screening.schemas import IsoDate

Day = date  # for fields named ``date``
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _clock_text(value: object) -> object:
    """Only "HH:MM" (clinic time): no seconds, no numbers."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise ValueError("Write the time as HH:MM (24-hour clock, clinic time).")
    return value


Clock = Annotated[time, BeforeValidator(_clock_text)]
Kind = Literal["consultation", "session", "follow_up", "maintenance"]
Reason = Annotated[StrictStr, Field(max_length=1000)]
Note = Annotated[StrictStr, Field(max_length=500)]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class AcknowledgementIn(In):
    key: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    reason: Reason


class FindingOut(Schema):
    key: str
    code: str
    severity: str
    rule: str
    message: str
    source: str


class WhenIn(In):
    date: IsoDate = Field(description="Clinic-local date, YYYY-MM-DD.")
    time: Clock = Field(description="Clinic-local wall-clock time, HH:MM, on the 5-minute grid.")
    fold: Literal[0, 1] | None = Field(
        default=None,
        description="Only for a time that happens twice when the clocks go back: 0 the first, 1 the second.",
    )


class BookingIn(WhenIn):
    patient_id: Id
    kind: Kind
    practitioner_id: Id
    room_id: Id | None = None
    plan_id: Id | None = Field(default=None, description="Required for a session or maintenance session.")
    series_number: Annotated[StrictInt, Field(ge=1, le=30)] | None = Field(
        default=None, description="The plan's session number; default the next one not booked."
    )
    note: Annotated[StrictStr, Field(max_length=300)] = ""
    acknowledgements: list[AcknowledgementIn] = Field(default_factory=list, max_length=20)


class MoveIn(WhenIn):
    practitioner_id: Id | None = None
    room_id: Id | None = None
    acknowledgements: list[AcknowledgementIn] = Field(default_factory=list, max_length=20)


class CancelIn(In):
    reason: Literal["patient-request", "illness", "bruising", "clinic", "plan-ended", "other"]
    note: Note = ""


class NoShowIn(In):
    note: Note = ""


class CheckInIn(In):
    device_id: Id | None = None
    acknowledgements: list[AcknowledgementIn] = Field(default_factory=list, max_length=50)


class AppointmentOut(Schema):
    id: int
    clinic: int
    patient: int
    practitioner: int
    room: int | None
    kind: str
    plan: int | None
    series_number: int | None
    starts_at: datetime
    ends_at: datetime
    local_start: str = Field(description="The start in clinic time, ISO 8601 with its UTC offset.")
    time_zone: str
    status: str
    cancel_reason: str
    status_note: str
    via: str
    treatment_session: int | None
    moved_to: int | None
    booking_findings: list[FindingOut]
    booking_acknowledgements: list[dict[str, str]]


class SlotOut(Schema):
    starts_at: datetime
    ends_at: datetime
    local_start: str
    practitioner: int
    room: int | None


class DaySlotsOut(Schema):
    date: Day
    closed: bool
    slots: list[SlotOut]


class AvailabilityParams(Schema):
    kind: Kind = "session"
    date: IsoDate | None = Field(default=None, description="First clinic-local day; default today.")
    days: int = Field(default=7, ge=1, le=31)
    practitioner: int | None = Field(default=None, ge=1, le=MAX_ID)
    room: int | None = Field(default=None, ge=1, le=MAX_ID)
    patient: int | None = Field(default=None, ge=1, le=MAX_ID, description="Also free for this patient.")
    clinic_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class CalendarParams(Schema):
    date: IsoDate | None = None
    # An int, not Literal[1, 7]: a query string's "7" is not the literal 7 (the service refuses other values).
    days: int = Field(default=1, ge=1, le=7, description="1 (a day) or 7 (a week from the date).")
    practitioner: int | None = Field(default=None, ge=1, le=MAX_ID)
    room: int | None = Field(default=None, ge=1, le=MAX_ID)
    clinic_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class CalendarEntryOut(Schema):
    id: int
    patient: int
    patient_name: str
    record_number: str
    practitioner: int
    room: int | None
    kind: str
    series_number: int | None
    starts_at: datetime
    ends_at: datetime
    local_start: str
    status: str


class CalendarOut(Schema):
    clinic: int
    time_zone: str
    date: Day
    days: int
    closed: list[Day]
    appointments: list[CalendarEntryOut]


class ProposalOut(Schema):
    number: int
    earliest: date
    latest: date | None
    state: Literal["booked", "rebook", "proposed", "no-slot"]
    outside_window: bool
    slot: SlotOut | None
    appointment: int | None = Field(description="The booking (state booked) or the one to replace (rebook).")


class SeriesParams(Schema):
    practitioner: int | None = Field(default=None, ge=1, le=MAX_ID)


class SeriesOut(Schema):
    plan: int
    planned_sessions: int
    sessions_done: int
    interval_min_days: int
    interval_max_days: int
    tapered: bool
    time_zone: str
    proposals: list[ProposalOut]


class PickIn(WhenIn):
    number: Annotated[StrictInt, Field(ge=1, le=30)]
    practitioner_id: Id
    room_id: Id | None = None
    reason: Reason = Field(
        default="", description="Answers the warnings of this booking (outside the window)."
    )


class SeriesBookIn(In):
    picks: list[PickIn] = Field(min_length=1, max_length=30)


class MessageOut(Schema):
    id: int
    kind: str
    appointment: int | None
    plan: int | None
    due_at: datetime
    status: str
    channel: str
    attempts: int
    sent_at: datetime | None
    detail: str


class PreferenceIn(In):
    channel: Literal["email", "sms"]
    reminders: StrictBool
    follow_up: StrictBool
    numbing_cream: StrictBool = True


class PreferenceOut(Schema):
    patient: int
    channel: str
    reminders: bool
    follow_up: bool
    numbing_cream: bool

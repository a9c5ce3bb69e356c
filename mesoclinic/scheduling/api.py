"""Availability, the calendar, bookings, series proposals, check-in, no-show, cancellation, messages and
contact preferences. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import clinic_for_api
from mesoclinic.accounts.policy import Perm
from mesoclinic.patients.services import patient_get
from mesoclinic.scheduling import rules, services
from mesoclinic.scheduling.models import Appointment, Message
from mesoclinic.scheduling.schemas import (
    AppointmentOut,
    AvailabilityParams,
    BookingIn,
    CalendarOut,
    CalendarParams,
    CancelIn,
    CheckInIn,
    DaySlotsOut,
    MessageOut,
    MoveIn,
    NoShowIn,
    PreferenceIn,
    PreferenceOut,
    SeriesBookIn,
    SeriesOut,
    SeriesParams,
)
from mesoclinic.treatments import services as treatments

router = Router(tags=["scheduling"])


def _acknowledgements(items: list[Any]) -> dict[str, str]:
    keys = [item.key for item in items]
    if len(keys) != len(set(keys)):
        raise ValidationError({"acknowledgements": [_("Acknowledge each warning once.")]})
    return {item.key: item.reason for item in items}


def _local(value: Any, zone: Any) -> str:
    return str(value.astimezone(zone).isoformat())


def _appointment_out(row: Appointment) -> dict[str, Any]:
    zone = row.clinic.zone
    return {
        "id": row.pk,
        "clinic": row.clinic_id,
        "patient": row.patient_id,
        "practitioner": row.practitioner_id,
        "room": row.room_id,
        "kind": row.kind,
        "plan": row.plan_id,
        "series_number": row.series_number,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "local_start": _local(row.starts_at, zone),
        "time_zone": row.clinic.time_zone,
        "status": row.status,
        "cancel_reason": row.cancel_reason,
        "status_note": row.status_note,
        "via": row.via,
        "treatment_session": row.treatment_session_id,
        "moved_to": row.moved_to_id,
        "booking_findings": row.booking_findings,
        "booking_acknowledgements": row.booking_acknowledgements,
    }


def _slot_out(slot: rules.Slot, zone: Any) -> dict[str, Any]:
    return {
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "local_start": _local(slot.starts_at, zone),
        "practitioner": slot.practitioner_id,
        "room": slot.room_id,
    }


def _fresh(caller: Caller, appointment_id: int) -> dict[str, Any]:
    return _appointment_out(
        services.appointment_get(caller=caller, appointment_id=appointment_id, audit=False)
    )


def _when(payload: Any) -> services.When:
    return services.When(day=payload.date, clock=payload.time, fold=payload.fold)


# --- the calendar -------------------------------------------------------------------------------------------


@router.get("/scheduling/availability", response=list[DaySlotsOut], summary="Free slots, day by day")
def read_availability(request: HttpRequest, params: Query[AvailabilityParams]) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.SCHEDULE_VIEW, params.clinic_id)
    patient = None
    if params.patient is not None:
        patient = patient_get(
            caller=caller, patient_id=params.patient, perm=Perm.APPOINTMENT_BOOK, audit=False
        )
        if patient.clinic_id != clinic.pk:
            raise ValidationError({"patient": [_("Not a patient of this clinic.")]})
    days = services.availability(
        caller=caller,
        clinic=clinic,
        kind=params.kind,
        first_day=params.date or clinic.today(),
        days=params.days,
        practitioner_id=params.practitioner,
        room_id=params.room,
        patient=patient,
    )
    return [
        {
            "date": entry.day,
            "closed": entry.closure is not None,
            "slots": [_slot_out(slot, clinic.zone) for slot in entry.slots],
        }
        for entry in days
    ]


@router.get("/scheduling/calendar", response=CalendarOut, summary="A day or a week of the clinic's calendar")
def read_calendar(request: HttpRequest, params: Query[CalendarParams]) -> dict[str, Any]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.SCHEDULE_VIEW, params.clinic_id)
    view = services.calendar_view(
        caller=caller,
        clinic=clinic,
        first_day=params.date or clinic.today(),
        days=params.days,
        practitioner_id=params.practitioner,
        room_id=params.room,
    )
    zone = clinic.zone
    return {
        "clinic": clinic.pk,
        "time_zone": clinic.time_zone,
        "date": view.first_day,
        "days": len(view.days),
        "closed": sorted(view.closures),
        "appointments": [
            {
                "id": a.id,
                "patient": a.patient_id,
                "patient_name": a.patient_name,
                "record_number": a.record_number,
                "practitioner": a.practitioner_id,
                "room": a.room_id,
                "kind": a.kind,
                "series_number": a.series_number,
                "starts_at": a.starts_at,
                "ends_at": a.ends_at,
                "local_start": _local(a.starts_at, zone),
                "status": a.status,
            }
            for a in view.appointments
        ],
    }


# --- appointments -------------------------------------------------------------------------------------------


@router.post("/scheduling/appointments", response={201: AppointmentOut}, summary="Book an appointment")
def create_appointment(request: HttpRequest, payload: BookingIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=payload.patient_id, perm=Perm.APPOINTMENT_BOOK, audit=False
    )
    appointment = services.appointment_book(
        caller=caller,
        clinic=patient.clinic,
        patient=patient,
        data=services.BookIn(
            kind=payload.kind,
            practitioner_id=payload.practitioner_id,
            when=_when(payload),
            room_id=payload.room_id,
            plan_id=payload.plan_id,
            series_number=payload.series_number,
            note=payload.note,
            acknowledgements=_acknowledgements(payload.acknowledgements),
        ),
        via=Appointment.Via.API,
    )
    return Status(201, _fresh(caller, appointment.pk))


@router.get("/scheduling/appointments/{appointment_id}", response=AppointmentOut, summary="An appointment")
def read_appointment(request: HttpRequest, appointment_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    return _appointment_out(services.appointment_get(caller=caller, appointment_id=appointment_id))


@router.post(
    "/scheduling/appointments/{appointment_id}/move",
    response={201: AppointmentOut},
    summary="Move an appointment (answers the new one)",
)
def move_appointment(request: HttpRequest, appointment_id: int, payload: MoveIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    found = services.appointment_get(
        caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_BOOK, audit=False
    )
    new = services.appointment_move(
        caller=caller,
        appointment=found,
        when=_when(payload),
        practitioner_id=payload.practitioner_id,
        room_id=payload.room_id,
        acknowledgements=_acknowledgements(payload.acknowledgements),
        via=Appointment.Via.API,
    )
    return Status(201, _fresh(caller, new.pk))


@router.post(
    "/scheduling/appointments/{appointment_id}/cancel",
    response=AppointmentOut,
    summary="Cancel, with a reason",
)
def cancel_appointment(request: HttpRequest, appointment_id: int, payload: CancelIn) -> dict[str, Any]:
    caller = Caller.of(request)
    found = services.appointment_get(
        caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_BOOK, audit=False
    )
    services.appointment_cancel(caller=caller, appointment=found, reason=payload.reason, note=payload.note)
    return _fresh(caller, found.pk)


@router.post(
    "/scheduling/appointments/{appointment_id}/no-show", response=AppointmentOut, summary="Record a no-show"
)
def no_show(request: HttpRequest, appointment_id: int, payload: NoShowIn) -> dict[str, Any]:
    caller = Caller.of(request)
    found = services.appointment_get(
        caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_ATTEND, audit=False
    )
    services.appointment_no_show(caller=caller, appointment=found, note=payload.note)
    return _fresh(caller, found.pk)


@router.post(
    "/scheduling/appointments/{appointment_id}/check-in",
    response=AppointmentOut,
    summary="Check in (a session runs the check-in gate and opens the treatment session)",
)
def check_in(request: HttpRequest, appointment_id: int, payload: CheckInIn) -> dict[str, Any]:
    caller = Caller.of(request)
    found = services.appointment_get(
        caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_ATTEND, audit=False
    )
    if not services.is_staff(caller, found.clinic_id, Perm.APPOINTMENT_ATTEND):
        raise PermissionDenied
    services.appointment_check_in(
        caller=caller,
        appointment=found,
        acknowledgements=_acknowledgements(payload.acknowledgements),
        device_id=payload.device_id,
    )
    return _fresh(caller, found.pk)


@router.get(
    "/scheduling/appointments/{appointment_id}/ics",
    response={200: None},
    summary="The appointment as an iCalendar file",
)
def read_ics(request: HttpRequest, appointment_id: int) -> HttpResponse:
    caller = Caller.of(request)
    found = services.appointment_get(caller=caller, appointment_id=appointment_id, audit=False)
    response = HttpResponse(
        services.appointment_ics(caller=caller, appointment=found), content_type="text/calendar"
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{found.pk}.ics"'
    return response


# --- series -------------------------------------------------------------------------------------------------


def _series_out(view: services.SeriesView) -> dict[str, Any]:
    plan = view.plan
    version = plan.protocol_version
    return {
        "plan": plan.pk,
        "planned_sessions": plan.planned_sessions,
        "sessions_done": len(view.done),
        "interval_min_days": version.interval_min_days,
        "interval_max_days": version.interval_max_days,
        "tapered": plan.improved_on is not None and version.taper_interval_min_days is not None,
        "time_zone": plan.clinic.time_zone,
        "proposals": [
            {
                "number": p.number,
                "earliest": p.earliest,
                "latest": p.latest,
                "state": p.state,
                "outside_window": view.outside(p),
                "slot": _slot_out(p.slot, view.zone) if p.slot else None,
                "appointment": view.bookings[p.number].pk if p.number in view.bookings else None,
            }
            for p in view.proposals
        ],
    }


@router.get(
    "/scheduling/series/{plan_id}", response=SeriesOut, summary="A plan's remaining sessions, proposed"
)
def read_series(request: HttpRequest, plan_id: int, params: Query[SeriesParams]) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = treatments.plan_get(caller=caller, plan_id=plan_id, audit=False)
    return _series_out(services.series_view(caller=caller, plan=plan, practitioner_id=params.practitioner))


@router.post(
    "/scheduling/series/{plan_id}/bookings",
    response={201: list[AppointmentOut]},
    summary="Book (or move) sessions of the series, all or none",
)
def book_series(request: HttpRequest, plan_id: int, payload: SeriesBookIn) -> Status[list[dict[str, Any]]]:
    caller = Caller.of(request)
    plan = treatments.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_VIEW, audit=False)
    booked = services.series_book(
        caller=caller,
        plan=plan,
        picks=[
            services.SeriesPick(
                number=pick.number,
                when=_when(pick),
                practitioner_id=pick.practitioner_id,
                room_id=pick.room_id,
                reason=pick.reason,
            )
            for pick in payload.picks
        ],
        via=Appointment.Via.API,
    )
    return Status(201, [_fresh(caller, row.pk) for row in booked])


# --- a patient's appointments, messages and preferences ----------------------------------------------------


@router.get(
    "/scheduling/patients/{patient_id}/appointments",
    response=list[AppointmentOut],
    summary="The patient's appointments, latest first",
)
def list_appointments(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.APPOINTMENT_VIEW, audit=False)
    rows = services.appointments_of(caller=caller, patient=patient)
    for row in rows:
        row.clinic = patient.clinic
    return [_appointment_out(row) for row in rows]


def _message_out(row: Message) -> dict[str, Any]:
    return {
        "id": row.pk,
        "kind": row.kind,
        "appointment": row.appointment_id,
        "plan": row.plan_id,
        "due_at": row.due_at,
        "status": row.status,
        "channel": row.channel,
        "attempts": row.attempts,
        "sent_at": row.sent_at,
        "detail": row.detail,
    }


@router.get(
    "/scheduling/patients/{patient_id}/messages",
    response=list[MessageOut],
    summary="Messages to the patient (confirmations, reminders, aftercare, follow-up)",
)
def list_messages(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.MESSAGE_VIEW, audit=False)
    return [_message_out(row) for row in services.messages_of(caller=caller, patient=patient)]


def _preference_out(row: Any) -> dict[str, Any]:
    return {
        "patient": row.patient_id,
        "channel": row.channel,
        "reminders": row.reminders,
        "follow_up": row.follow_up,
        "numbing_cream": row.numbing_cream,
    }


@router.get(
    "/scheduling/patients/{patient_id}/contact-preference",
    response=PreferenceOut,
    summary="How the patient is contacted",
)
def read_preference(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.APPOINTMENT_VIEW, audit=False)
    return _preference_out(services.preference_get(caller=caller, patient=patient))


@router.put(
    "/scheduling/patients/{patient_id}/contact-preference",
    response=PreferenceOut,
    summary="Choose the channel and opt out of reminders or follow-up messages",
)
def update_preference(request: HttpRequest, patient_id: int, payload: PreferenceIn) -> dict[str, Any]:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=patient_id, perm=Perm.CONTACT_PREFERENCE_EDIT, audit=False
    )
    return _preference_out(services.preference_update(caller=caller, patient=patient, **payload.model_dump()))

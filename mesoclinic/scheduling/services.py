"""Every read and write of the calendar, the series bookings and the reminder outbox: authorised by the
policy, audited, atomic. Views, the API, the portal and the background tasks all call these functions; the
rules live in ``scheduling.rules``.

Double booking is refused twice: by the rules (so the refusal names the reason) and by the database
(an exclusion constraint on PostgreSQL, triggers on SQLite — migration 0002), which also settles a race
between two desks booking the same slot: the loser gets the ``slot-taken`` refusal, never an error page.

Messages: the rows of the outbox are written in the transaction that makes them due (a booking, a
check-in), together with the task that will deliver them (the database task backend enqueues in the same
transaction). ``message_deliver`` claims a row, sends it outside any transaction with the row's key, and
marks it sent; a row whose claim outlived its lease (the worker died while sending) is resolved by asking
the transport whether the key went out — never by sending it blindly a second time."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.http import Http404
from django.template.loader import select_template
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, Role, User
from mesoclinic.accounts.policy import Perm, authorize, can, may_see_clinic
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import Actor, audit_record
from mesoclinic.clinics.models import Clinic, Room
from mesoclinic.lib.findings import Finding, FindingsRefused
from mesoclinic.lib.ids import is_valid_id
from mesoclinic.patients.models import Patient
from mesoclinic.scheduling import ics, rules, transports
from mesoclinic.scheduling.models import (
    ACTIVE_STATUSES,
    PLAN_KINDS,
    TREATMENT_KINDS,
    Appointment,
    CalendarFeed,
    ClinicClosure,
    ContactPreference,
    Kind,
    Message,
    MessageAttempt,
    MessageKind,
    ScheduleSettings,
    WorkingException,
    WorkingHours,
)
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import Aftercare, TreatmentPlan, TreatmentSession
from mesoclinic.treatments.rules import SeriesRule, aftercare_texts

logger = logging.getLogger("mesoclinic.scheduling")

MAX_TEXT = 500
MAX_DAYS_SHOWN = 31
# A series proposal first searches the days its remaining sessions should need, plus this margin.
SERIES_NEAR_MARGIN_DAYS = 28
SYSTEM_ACTOR = Actor(user_id=None, username="system:messages", role="system", ip=None)
SWEEP_TASK_PATH = "mesoclinic.scheduling.tasks.sweep_messages"


def _refuse(field_name: str, message: str, code: str | None = None) -> ValidationError:
    return ValidationError({field_name: [ValidationError(message, code=code)]})


def _user(caller: Caller) -> User:
    return cast(User, caller.user)


def _text(value: str, field_name: str, limit: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise _refuse(field_name, _("At most %(count)d characters.") % {"count": limit})
    return text


def settings_for(clinic: Clinic) -> ScheduleSettings:
    """The clinic's settings, or the defaults when it has none (not saved)."""
    found = ScheduleSettings.objects.filter(clinic=clinic).first()
    return found or ScheduleSettings(clinic=clinic)


def is_staff(caller: Caller, clinic_id: int, perm: Perm = Perm.APPOINTMENT_BOOK) -> bool:
    """Whether the caller acts as clinic staff (not as the patient on their own record)."""
    return can(caller.user, perm, clinic_id=clinic_id)


def kind_label(kind: str) -> str:
    return str(Kind(kind).label)


# --- practitioners and rooms --------------------------------------------------------------------------------


def clinic_practitioners(clinic: Clinic) -> list[User]:
    return treatments.clinic_practitioners(clinic)


def clinic_rooms(clinic: Clinic) -> list[Room]:
    return list(Room.objects.filter(clinic=clinic, is_active=True).order_by("name", "id"))


def _practitioner(clinic: Clinic, practitioner_id: object) -> User:
    if not is_valid_id(practitioner_id):
        raise _refuse("practitioner_id", _("Choose a practitioner of this clinic."))
    found = (
        User.objects.filter(
            pk=practitioner_id,
            is_active=True,
            memberships__clinic=clinic,
            memberships__is_active=True,
            memberships__role__in=[Role.PRACTITIONER, Role.MEDICAL_DIRECTOR],
        )
        .distinct()
        .first()
    )
    if found is None:
        raise _refuse("practitioner_id", _("Choose a practitioner of this clinic."))
    return found


def _room(clinic: Clinic, room_id: object) -> Room | None:
    if room_id is None:
        return None
    if not is_valid_id(room_id):
        raise _refuse("room_id", _("Unknown room."))
    room = Room.objects.filter(pk=room_id, clinic=clinic, is_active=True).first()
    if room is None:
        raise _refuse("room_id", _("Unknown room."))
    return room


# --- the calendar as the rules see it ----------------------------------------------------------------------


# No appointment is longer than this (the durations are settings, validated against it): an overlap search
# bounds starts_at on both sides, so the (who, starts_at) indexes read a range instead of all the history.
LONGEST = timedelta(minutes=rules.MAX_DURATION_MINUTES)


def _day_bounds(first_day: date, last_day: date, zone: Any) -> tuple[datetime, datetime]:
    """UTC instants covering the local days (with a day's margin for long offsets)."""
    start = rules.resolve(first_day - timedelta(days=1), time(0), zone)
    end = rules.resolve(last_day + timedelta(days=2), time(0), zone)
    return start, end


def _interval(row: Any) -> rules.Interval:
    return rules.Interval(row["starts_at"], row["ends_at"])


def build_calendar(
    clinic: Clinic,
    *,
    practitioner_ids: Sequence[int],
    room_ids: Sequence[int],
    patient_id: int | None,
    first_day: date,
    last_day: date,
    exclude: Iterable[int] = (),
    settings_row: ScheduleSettings | None = None,
) -> rules.Calendar:
    """The facts of the slot search over [first_day, last_day], in five queries whatever the data size."""
    zone = clinic.zone
    schedule = settings_row or settings_for(clinic)
    start, end = _day_bounds(first_day, last_day, zone)
    hours: dict[int, list[rules.Hours]] = {pid: [] for pid in practitioner_ids}
    for row in WorkingHours.objects.filter(clinic=clinic, practitioner_id__in=practitioner_ids):
        hours[row.practitioner_id].append(rules.Hours(row.weekday, row.starts, row.ends))
    exceptions: dict[int, list[rules.DayException]] = {pid: [] for pid in practitioner_ids}
    for ex in WorkingException.objects.filter(
        clinic=clinic, practitioner_id__in=practitioner_ids, on__gte=first_day, on__lte=last_day
    ):
        exceptions[ex.practitioner_id].append(rules.DayException(ex.on, ex.starts, ex.ends, ex.available))
    closures = tuple(
        rules.Closure(c.starts_on, c.ends_on, c.reason)
        for c in ClinicClosure.objects.filter(clinic=clinic, ends_on__gte=first_day, starts_on__lte=last_day)
    )
    who = Q(practitioner_id__in=practitioner_ids) | Q(room_id__in=room_ids)
    if patient_id is not None:
        who |= Q(patient_id=patient_id)
    busy_rows = (
        Appointment.objects.filter(
            who,
            status__in=ACTIVE_STATUSES,
            starts_at__lt=end,
            starts_at__gte=start - LONGEST,
            ends_at__gt=start,
        )
        .exclude(pk__in=list(exclude))
        .values("practitioner_id", "room_id", "patient_id", "starts_at", "ends_at")
    )
    practitioner_busy: dict[int, list[rules.Interval]] = {pid: [] for pid in practitioner_ids}
    room_busy: dict[int, list[rules.Interval]] = {rid: [] for rid in room_ids}
    patient_busy: list[rules.Interval] = []
    for busy in busy_rows:
        interval = _interval(busy)
        if busy["practitioner_id"] in practitioner_busy:
            practitioner_busy[busy["practitioner_id"]].append(interval)
        if busy["room_id"] in room_busy:
            room_busy[busy["room_id"]].append(interval)
        if patient_id is not None and busy["patient_id"] == patient_id:
            patient_busy.append(interval)
    return rules.Calendar(
        zone=zone,
        practitioners={
            pid: rules.PractitionerFacts(
                tuple(hours[pid]), tuple(exceptions[pid]), tuple(practitioner_busy[pid])
            )
            for pid in practitioner_ids
        },
        rooms=list(room_ids),
        room_busy={rid: tuple(room_busy[rid]) for rid in room_ids},
        patient_busy=tuple(patient_busy),
        closures=closures,
        step_minutes=schedule.slot_step_minutes,
        need_room=bool(room_ids),
    )


def _bookable_practitioners(clinic: Clinic) -> list[int]:
    """Practitioners of the clinic with working hours there, in a stable order."""
    with_hours = set(
        WorkingHours.objects.filter(clinic=clinic).values_list("practitioner_id", flat=True).distinct()
    )
    return [user.pk for user in clinic_practitioners(clinic) if user.pk in with_hours]


@dataclass(frozen=True)
class DaySlots:
    day: date
    slots: list[rules.Slot]
    closure: rules.Closure | None = None


def availability(
    *,
    caller: Caller,
    clinic: Clinic,
    kind: str,
    first_day: date,
    days: int = 7,
    practitioner_id: int | None = None,
    room_id: int | None = None,
    patient: Patient | None = None,
    limit_per_day: int = 40,
    now: datetime | None = None,
) -> list[DaySlots]:
    """Free slots for an appointment of ``kind``, day by day (clinic-local days)."""
    if patient is not None:
        authorize(caller.user, Perm.APPOINTMENT_BOOK, clinic_id=clinic.pk, patient=patient)
    else:
        authorize(caller.user, Perm.SCHEDULE_VIEW, clinic_id=clinic.pk)
    if kind not in Kind.values:
        raise _refuse("kind", _("Choose an appointment type."))
    if not 1 <= days <= MAX_DAYS_SHOWN:
        raise _refuse("days", _("From 1 to %(max)d days.") % {"max": MAX_DAYS_SHOWN})
    today = clinic.today()
    if first_day < today - timedelta(days=1) or first_day > today + timedelta(days=800):
        raise _refuse("date", _("Choose a date from today to two years ahead."))
    now = now or timezone.now()
    schedule = settings_for(clinic)
    practitioners = (
        [_practitioner(clinic, practitioner_id).pk]
        if practitioner_id is not None
        else _bookable_practitioners(clinic)
    )
    rooms = [r.pk for r in ([_room(clinic, room_id)] if room_id is not None else clinic_rooms(clinic)) if r]
    last_day = first_day + timedelta(days=days - 1)
    calendar = build_calendar(
        clinic,
        practitioner_ids=practitioners,
        room_ids=rooms,
        patient_id=patient.pk if patient else None,
        first_day=first_day,
        last_day=last_day,
        settings_row=schedule,
    )
    minutes = schedule.minutes_for(kind)
    result: list[DaySlots] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        result.append(
            DaySlots(
                day,
                calendar.slots_on(day, minutes, not_before=now, limit=limit_per_day),
                rules.closure_on(day, calendar.closures),
            )
        )
    return result


# --- booking ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """A clinic-local date and wall-clock time as a person typed them; ``fold`` picks the first (0) or the
    second (1) of a time that happens twice when the clocks go back."""

    day: date
    clock: time
    fold: int | None = None

    @classmethod
    def from_instant(cls, instant: datetime, zone: Any) -> When:
        """The wall-clock time of an instant, with the fold that names it exactly."""
        local = instant.astimezone(zone)
        return cls(day=local.date(), clock=local.time().replace(tzinfo=None, fold=0), fold=local.fold)

    def instant(self, clinic: Clinic) -> datetime:
        if self.clock.second or self.clock.microsecond or self.clock.minute % rules.SLOT_MINUTES:
            raise _refuse(
                "time",
                _("Times are on a %(minutes)d-minute grid.") % {"minutes": rules.SLOT_MINUTES},
                "off-grid",
            )
        if self.fold not in (None, 0, 1):
            raise _refuse("fold", _("Say 0 (the first) or 1 (the second)."))
        try:
            return rules.localize(self.day, self.clock, clinic.zone, fold=self.fold)
        except rules.LocalTimeError as error:
            raise _refuse("time", error.message, error.code) from None


@dataclass(frozen=True)
class BookIn:
    kind: str
    practitioner_id: int
    when: When
    room_id: int | None = None
    plan_id: int | None = None
    series_number: int | None = None
    note: str = ""
    acknowledgements: Mapping[str, str] = field(default_factory=dict)


def _plan_for(patient: Patient, plan_id: object) -> TreatmentPlan:
    if not is_valid_id(plan_id):
        raise _refuse("plan_id", _("Unknown plan."))
    plan = (
        TreatmentPlan.objects.select_related("protocol_version__protocol", "clinic", "patient__clinic")
        .filter(pk=plan_id, patient=patient)
        .first()
    )
    if plan is None:
        raise _refuse("plan_id", _("Unknown plan."))
    return plan


def series_rule(plan: TreatmentPlan) -> SeriesRule:
    version = plan.protocol_version
    return SeriesRule(
        version.interval_min_days,
        version.interval_max_days,
        version.taper_interval_min_days,
        version.taper_interval_max_days,
    )


def _done_dates(plan: TreatmentPlan) -> list[date]:
    return list(
        TreatmentSession.objects.filter(plan=plan).order_by("number").values_list("session_date", flat=True)
    )


def _plan_bookings(plan: TreatmentPlan, exclude: Iterable[int] = ()) -> list[Appointment]:
    # treatment_session is tested here, not in SQL: "treatment_session_id IS NULL" leads SQLite to scan its
    # unique index (every appointment not yet charted) instead of the plan's few rows (appointment_plan_idx).
    rows = (
        Appointment.objects.filter(plan=plan, status=Appointment.Status.BOOKED, series_number__isnull=False)
        .exclude(pk__in=list(exclude))
        .order_by("series_number")
    )
    return [row for row in rows if row.treatment_session_id is None]


def _next_free_number(plan: TreatmentPlan, done: int, exclude: Iterable[int] = ()) -> int:
    taken = {a.series_number for a in _plan_bookings(plan, exclude)}
    number = done + 1
    while number in taken:
        number += 1
    return number


def _window_for(
    plan: TreatmentPlan, number: int, *, today: date, exclude: Iterable[int] = ()
) -> tuple[rules.Window, tuple[int, date] | None]:
    """The window of session ``number`` after the previous one (done or booked), and the number and date of
    the next booked session after it (to warn when this booking makes it too early)."""
    zone = plan.clinic.zone
    done = _done_dates(plan)
    previous: list[date] = list(done[: number - 1])
    following: tuple[int, date] | None = None
    for booking in _plan_bookings(plan, exclude):
        on = rules.local_date(booking.starts_at, zone)
        if booking.series_number is None:
            continue
        if booking.series_number < number:
            previous.append(on)
        elif booking.series_number > number and following is None:
            following = (booking.series_number, on)
    anchor = max(previous) if previous else None
    window = rules.window_after(
        series_rule(plan), anchor=anchor, improved=plan.improved_on is not None, today=today
    )
    return window, following


def _conflicts(
    *,
    practitioner_id: int,
    room_id: int | None,
    patient_id: int,
    interval: rules.Interval,
    exclude: Iterable[int],
) -> tuple[bool, bool, bool]:
    rows = (
        Appointment.objects.filter(
            Q(practitioner_id=practitioner_id)
            | Q(patient_id=patient_id)
            | (Q(room_id=room_id) if room_id else Q(pk__in=[])),
            status__in=ACTIVE_STATUSES,
            starts_at__lt=interval.end,
            starts_at__gte=interval.start - LONGEST,
            ends_at__gt=interval.start,
        )
        .exclude(pk__in=list(exclude))
        .values_list("practitioner_id", "room_id", "patient_id")
    )
    practitioner = room = patient = False
    for other_practitioner, other_room, other_patient in rows:
        practitioner = practitioner or other_practitioner == practitioner_id
        room = room or (room_id is not None and other_room == room_id)
        patient = patient or other_patient == patient_id
    return practitioner, room, patient


def booking_evaluate(
    *,
    clinic: Clinic,
    patient: Patient,
    data: BookIn,
    portal: bool,
    now: datetime,
    exclude: Iterable[int] = (),
) -> tuple[list[Finding], rules.Interval, User, Room | None, TreatmentPlan | None, int | None]:
    """The findings of a booking as asked, and what it resolved to (no writes)."""
    if data.kind not in Kind.values:
        raise _refuse("kind", _("Choose an appointment type."))
    practitioner = _practitioner(clinic, data.practitioner_id)
    room = _room(clinic, data.room_id)
    if room is None and data.kind in TREATMENT_KINDS and clinic_rooms(clinic):
        raise _refuse("room_id", _("A session needs a room."))
    plan = _plan_for(patient, data.plan_id) if data.plan_id is not None else None
    if data.kind in TREATMENT_KINDS and plan is None:
        raise _refuse("plan_id", _("A session belongs to a treatment plan: choose it."))
    schedule = settings_for(clinic)
    start = data.when.instant(clinic)
    interval = rules.Interval(start, start + timedelta(minutes=schedule.minutes_for(data.kind)))
    day = rules.local_date(start, clinic.zone)
    calendar = build_calendar(
        clinic,
        practitioner_ids=[practitioner.pk],
        room_ids=[],
        patient_id=None,
        first_day=day,
        last_day=day,
        settings_row=schedule,
    )
    busy = _conflicts(
        practitioner_id=practitioner.pk,
        room_id=room.pk if room else None,
        patient_id=patient.pk,
        interval=interval,
        exclude=exclude,
    )
    number: int | None = None
    window: rules.Window | None = None
    following: tuple[int, date] | None = None
    if plan is not None and data.kind in TREATMENT_KINDS:
        done = len(_done_dates(plan))
        number = (
            data.series_number if data.series_number is not None else _next_free_number(plan, done, exclude)
        )
        if not 1 <= number <= 30:
            raise _refuse("series_number", _("A session number from 1 to 30."))
        if number <= done:
            raise _refuse(
                "series_number", _("Session %(number)d has taken place already.") % {"number": number}
            )
        window, following = _window_for(
            plan, number, today=rules.local_date(now, clinic.zone), exclude=exclude
        )
    facts = rules.BookingFacts(
        now=now,
        zone=clinic.zone,
        interval=interval,
        working=tuple(calendar.working(practitioner.pk, day)),
        closure=rules.closure_on(day, calendar.closures),
        practitioner_busy=busy[0],
        room_busy=busy[1],
        patient_busy=busy[2],
        horizon_days=schedule.booking_horizon_days,
        window=window,
        plan_status=plan.status if plan is not None else None,
        series_number=number,
        planned_sessions=plan.planned_sessions if plan is not None else None,
        protocol_sessions_max=plan.protocol_version.sessions_max if plan is not None else None,
        treatment=data.kind in TREATMENT_KINDS,
        portal_notice_hours=schedule.portal_notice_hours if portal else None,
        rule=series_rule(plan) if plan is not None else None,
        improved=plan is not None and plan.improved_on is not None,
        next_booked=following,
    )
    return rules.booking_findings(facts), interval, practitioner, room, plan, number


def _acknowledge(
    findings: Sequence[Finding], acknowledgements: Mapping[str, str], *, portal: bool, what: str
) -> list[dict[str, str]]:
    if any(f.severity == "block" for f in findings):
        raise FindingsRefused(list(findings), what)
    warnings = [f for f in findings if f.severity == "warn"]
    if portal and warnings:
        # The patient books only into allowed slots: what needs a reason needs the clinic.
        raise FindingsRefused(list(findings), _("This time is not open for online booking: call the clinic."))
    unknown = sorted(set(acknowledgements) - {f.key for f in warnings})
    if unknown:
        raise _refuse(
            "acknowledgements", _("No warning to acknowledge for: %(keys)s.") % {"keys": ", ".join(unknown)}
        )
    if any(len(str(reason)) > 1000 for reason in acknowledgements.values()):
        raise _refuse("acknowledgements", _("A reason is at most 1000 characters."))
    if rules.unacknowledged(findings, acknowledgements):
        raise FindingsRefused(list(findings), _("Give a reason for each warning to go ahead."))
    return [
        {"key": f.key, "code": f.code, "reason": str(acknowledgements[f.key]).strip()}
        for f in warnings
        if str(acknowledgements.get(f.key, "")).strip()
    ]


def _insert(appointment: Appointment) -> Appointment:
    """Insert in a savepoint: the database's overlap guard (or the one-booking-per-session index) refusing
    it means another desk took the slot a moment ago."""
    try:
        with transaction.atomic():
            appointment.save(force_insert=True)
    except IntegrityError:
        raise FindingsRefused(
            [
                Finding(
                    "slot-taken",
                    "block",
                    "R-SCHED",
                    _("Someone has just booked this time (or this session): choose another."),
                    rules.SOURCE_SCHED,
                )
            ],
            _("The booking cannot be made."),
        ) from None
    return appointment


def _lock_plan(plan: TreatmentPlan | None) -> None:
    if plan is not None:
        TreatmentPlan.objects.select_for_update().filter(pk=plan.pk).first()


def appointment_book(
    *,
    caller: Caller,
    clinic: Clinic,
    patient: Patient,
    data: BookIn,
    via: str = Appointment.Via.DESK,
    now: datetime | None = None,
) -> Appointment:
    """Book one appointment. Blocks refuse it with their reasons (nothing written); each warning needs a
    reason; the patient (portal) books only what needs no reason. The confirmation and the reminders are
    queued in the same transaction."""
    if patient.clinic_id != clinic.pk:
        raise Http404(_("Not found."))
    authorize(caller.user, Perm.APPOINTMENT_BOOK, clinic_id=clinic.pk, patient=patient)
    portal = not is_staff(caller, clinic.pk)
    now = now or timezone.now()
    note = _text(data.note, "note", 300)
    with transaction.atomic():
        if data.plan_id is not None:
            _lock_plan(_plan_for(patient, data.plan_id))
        findings, interval, practitioner, room, plan, number = booking_evaluate(
            clinic=clinic, patient=patient, data=data, portal=portal, now=now
        )
        acks = _acknowledge(
            findings, data.acknowledgements, portal=portal, what=_("The booking cannot be made.")
        )
        appointment = _insert(
            Appointment(
                clinic=clinic,
                patient=patient,
                practitioner=practitioner,
                room=room,
                kind=data.kind,
                plan=plan,
                series_number=number,
                starts_at=interval.start,
                ends_at=interval.end,
                booking_findings=[f.as_dict() for f in findings],
                booking_acknowledgements=acks,
                note=note if not portal else "",
                via=Appointment.Via.PORTAL if portal else via,
                created_at=now,
                created_by=_user(caller),
            )
        )
        _queue_booking_messages(appointment, now=now)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.APPOINTMENT_BOOK,
            clinic_id=clinic.pk,
            patient_id=patient.pk,
            obj=appointment,
            detail={
                "kind": data.kind,
                "starts_at": interval.start.isoformat(),
                "plan": plan.pk if plan else None,
                "number": number,
                "codes": [f.code for f in findings],
                "via": appointment.via,
            },
        )
    return appointment


def _appointment_queryset() -> models.QuerySet[Appointment]:
    return Appointment.objects.select_related(
        "clinic",
        "patient__clinic",
        "practitioner",
        "room",
        "plan__protocol_version__protocol",
        "treatment_session",
    )


def appointment_get(
    *, caller: Caller, appointment_id: int, perm: Perm = Perm.APPOINTMENT_VIEW, audit: bool = True
) -> Appointment:
    """The appointment, if the caller may act on it: another clinic's or a missing id is a 404, a visible
    one without the right a 403."""
    found = _appointment_queryset().filter(pk=appointment_id).first() if is_valid_id(appointment_id) else None
    if found is None or not may_see_clinic(caller.user, found.clinic_id, found.patient):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=found.clinic_id, patient=found.patient)
    if audit:
        audit_record(
            actor=caller.actor(found.clinic_id),
            action=Action.APPOINTMENT_READ,
            clinic_id=found.clinic_id,
            patient_id=found.patient_id,
            obj=found,
        )
    return found


def _lock(appointment: Appointment) -> Appointment:
    return _appointment_queryset().select_for_update(of=("self",)).get(pk=appointment.pk)


def appointment_move(
    *,
    caller: Caller,
    appointment: Appointment,
    when: When,
    practitioner_id: int | None = None,
    room_id: int | None = None,
    acknowledgements: Mapping[str, str] | None = None,
    via: str = Appointment.Via.DESK,
    now: datetime | None = None,
) -> Appointment:
    """Move a booked appointment: the old row is marked moved (its reminders cancelled) and a new row takes
    the new time, with a new confirmation. The new time is checked as a new booking would be."""
    authorize(
        caller.user, Perm.APPOINTMENT_BOOK, clinic_id=appointment.clinic_id, patient=appointment.patient
    )
    portal = not is_staff(caller, appointment.clinic_id)
    now = now or timezone.now()
    with transaction.atomic():
        _lock_plan(appointment.plan)
        old = _lock(appointment)
        if old.status != Appointment.Status.BOOKED:
            raise _refuse("status", _("Only a booked appointment can be moved."))
        if portal and old.starts_at < now + timedelta(hours=settings_for(old.clinic).portal_notice_hours):
            raise _refuse("status", _("This appointment is too close to change online: call the clinic."))
        data = BookIn(
            kind=old.kind,
            practitioner_id=practitioner_id if practitioner_id is not None else old.practitioner_id,
            when=when,
            room_id=room_id if room_id is not None else old.room_id,
            plan_id=old.plan_id,
            series_number=old.series_number,
            note=old.note,
            acknowledgements=acknowledgements or {},
        )
        findings, interval, practitioner, room, plan, number = booking_evaluate(
            clinic=old.clinic, patient=old.patient, data=data, portal=portal, now=now, exclude=[old.pk]
        )
        acks = _acknowledge(
            findings, data.acknowledgements, portal=portal, what=_("The appointment cannot move there.")
        )
        old.status = Appointment.Status.MOVED
        old.ended_at = now
        old.ended_by = _user(caller)
        old.save(update_fields=["status", "ended_at", "ended_by"])
        new = _insert(
            Appointment(
                clinic=old.clinic,
                patient=old.patient,
                practitioner=practitioner,
                room=room,
                kind=old.kind,
                plan=plan,
                series_number=number,
                starts_at=interval.start,
                ends_at=interval.end,
                booking_findings=[f.as_dict() for f in findings],
                booking_acknowledgements=acks,
                note=old.note,
                via=Appointment.Via.PORTAL if portal else via,
                created_at=now,
                created_by=_user(caller),
            )
        )
        old.moved_to = new
        old.save(update_fields=["moved_to"])
        _cancel_messages(old, reason="moved")
        _queue_booking_messages(new, now=now, moved=True)
        audit_record(
            actor=caller.actor(old.clinic_id),
            action=Action.APPOINTMENT_MOVE,
            clinic_id=old.clinic_id,
            patient_id=old.patient_id,
            obj=new,
            detail={
                "from": old.pk,
                "from_starts_at": old.starts_at.isoformat(),
                "starts_at": new.starts_at.isoformat(),
                "codes": [f.code for f in findings],
            },
        )
    return new


def appointment_cancel(
    *, caller: Caller, appointment: Appointment, reason: str, note: str = "", now: datetime | None = None
) -> Appointment:
    """Cancel a booked appointment with a reason; its reminders are cancelled. A delayed session (bruising,
    illness) makes the series propose the following ones again."""
    authorize(
        caller.user, Perm.APPOINTMENT_BOOK, clinic_id=appointment.clinic_id, patient=appointment.patient
    )
    portal = not is_staff(caller, appointment.clinic_id)
    if reason not in Appointment.CancelReason.values:
        raise _refuse("reason", _("Choose a reason."))
    if portal and reason != Appointment.CancelReason.PATIENT:
        raise _refuse("reason", _("Choose a reason."))
    note = _text(note, "note")
    if reason == Appointment.CancelReason.OTHER and not note:
        raise _refuse("note", _("Say why."))
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(appointment)
        if locked.status != Appointment.Status.BOOKED:
            raise _refuse("status", _("Only a booked appointment can be cancelled."))
        if portal and locked.starts_at < now + timedelta(
            hours=settings_for(locked.clinic).portal_notice_hours
        ):
            raise _refuse("status", _("This appointment is too close to change online: call the clinic."))
        locked.status = Appointment.Status.CANCELLED
        locked.cancel_reason = reason
        locked.status_note = note
        locked.ended_at = now
        locked.ended_by = _user(caller)
        locked.save(update_fields=["status", "cancel_reason", "status_note", "ended_at", "ended_by"])
        _cancel_messages(locked, reason="cancelled")
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.APPOINTMENT_CANCEL,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"reason": reason, "note": note[:200]},
        )
    return locked


def appointment_no_show(
    *, caller: Caller, appointment: Appointment, note: str = "", now: datetime | None = None
) -> Appointment:
    """The patient did not come: recorded once the appointment has started; the reminders stop, and the
    series proposes the session again."""
    authorize(
        caller.user, Perm.APPOINTMENT_ATTEND, clinic_id=appointment.clinic_id, patient=appointment.patient
    )
    note = _text(note, "note")
    now = now or timezone.now()
    with transaction.atomic():
        locked = _lock(appointment)
        if locked.status != Appointment.Status.BOOKED:
            raise _refuse("status", _("Only a booked appointment can be a no-show."))
        if now < locked.starts_at:
            raise _refuse("status", _("The appointment has not started yet."))
        locked.status = Appointment.Status.NO_SHOW
        locked.status_note = note
        locked.ended_at = now
        locked.ended_by = _user(caller)
        locked.save(update_fields=["status", "status_note", "ended_at", "ended_by"])
        _cancel_messages(locked, reason="no-show")
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.APPOINTMENT_NO_SHOW,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"note": note[:200]},
        )
    return locked


def appointment_check_in(
    *,
    caller: Caller,
    appointment: Appointment,
    acknowledgements: Mapping[str, str] | None = None,
    device_id: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Check the patient in, on the appointment's day. A session runs the check-in gate
    (``treatments.services.session_check_in``: a block stops it, each warning needs a reason) and the
    appointment is linked to the treatment session it opens; the aftercare, side-effect check and
    infection-watch messages are queued."""
    authorize(
        caller.user, Perm.APPOINTMENT_ATTEND, clinic_id=appointment.clinic_id, patient=appointment.patient
    )
    now = now or timezone.now()
    zone = appointment.clinic.zone
    with transaction.atomic():
        locked = _lock(appointment)
        if locked.status != Appointment.Status.BOOKED:
            raise _refuse("status", _("Only a booked appointment can be checked in."))
        if rules.local_date(now, zone) != rules.local_date(locked.starts_at, zone):
            raise _refuse("status", _("Patients are checked in on the day of their appointment."))
        session: TreatmentSession | None = None
        if locked.kind in TREATMENT_KINDS and locked.plan is not None:
            session = treatments.session_check_in(
                caller=caller,
                plan=locked.plan,
                practitioner_id=locked.practitioner_id,
                room_id=locked.room_id,
                device_id=device_id,
                acknowledgements=acknowledgements,
                now=now,
            )
        locked.status = Appointment.Status.CHECKED_IN
        locked.checked_in_at = now
        locked.checked_in_by = _user(caller)
        locked.treatment_session = session
        locked.save(update_fields=["status", "checked_in_at", "checked_in_by", "treatment_session"])
        if session is not None:
            _queue_session_messages(locked, session, now=now)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.APPOINTMENT_CHECK_IN,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"session": session.pk if session else None},
        )
    return locked


def gate_preview(*, caller: Caller, appointment: Appointment) -> list[Finding]:
    """What the check-in gate says for the appointment's session on its day (no writes but the audit row)."""
    if appointment.kind not in TREATMENT_KINDS or appointment.plan is None:
        return []
    return treatments.gate_evaluate(
        caller=caller,
        plan=appointment.plan,
        on=rules.local_date(appointment.starts_at, appointment.clinic.zone),
        practitioner_id=appointment.practitioner_id,
    )


# --- the series ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesView:
    plan: TreatmentPlan
    proposals: list[rules.Proposal]
    done: list[date]
    zone: Any
    minutes: int
    practitioners: dict[int, User]
    rooms: dict[int, Room]
    bookings: dict[int, Appointment]  # by session number

    def outside(self, proposal: rules.Proposal) -> bool:
        return proposal.outside_window(self.zone)


def _preferred_practitioners(plan: TreatmentPlan, practitioner_id: int | None) -> list[int]:
    if practitioner_id is not None:
        return [_practitioner(plan.clinic, practitioner_id).pk]
    bookable = _bookable_practitioners(plan.clinic)
    last = (
        Appointment.objects.filter(plan=plan, status__in=ACTIVE_STATUSES)
        .order_by("-starts_at")
        .values_list("practitioner_id", flat=True)
        .first()
    ) or (
        TreatmentSession.objects.filter(plan=plan)
        .order_by("-number")
        .values_list("practitioner_id", flat=True)
        .first()
    )
    if last in bookable:
        return [last, *[pid for pid in bookable if pid != last]]
    return bookable


def series_view(
    *,
    caller: Caller,
    plan: TreatmentPlan,
    practitioner_id: int | None = None,
    now: datetime | None = None,
    audit: bool = True,
) -> SeriesView:
    """Every remaining session of the plan with its allowed dates and its booking or first free slot
    (R-SERIES), in a fixed number of queries."""
    authorize(caller.user, Perm.APPOINTMENT_VIEW, clinic_id=plan.clinic_id, patient=plan.patient)
    authorize(caller.user, Perm.PLAN_VIEW, clinic_id=plan.clinic_id, patient=plan.patient)
    now = now or timezone.now()
    clinic = plan.clinic
    zone = clinic.zone
    today = rules.local_date(now, zone)
    schedule = settings_for(clinic)
    done = _done_dates(plan)
    bookings = {a.series_number: a for a in _plan_bookings(plan) if a.series_number is not None}
    practitioners = _preferred_practitioners(plan, practitioner_id)
    room_rows = clinic_rooms(clinic)
    rooms = [room.pk for room in room_rows]
    horizon = today + timedelta(days=schedule.booking_horizon_days)
    rule = series_rule(plan)
    facts = rules.SeriesFacts(
        rule=rule,
        improved=plan.improved_on is not None,
        planned_sessions=plan.planned_sessions,
        done=tuple(done),
        booked={
            number: rules.Booked(a.pk, rules.Slot(a.starts_at, a.ends_at, a.practitioner_id, a.room_id))
            for number, a in bookings.items()
        },
        today=today,
        now=now,
        minutes=schedule.minutes_for(Kind.SESSION),
        horizon=horizon,
    )
    # The search goes day by day and stops at the first free slot, so it first reads only the days the
    # remaining sessions should need (not every booking of the clinic up to the horizon), with that day as
    # its horizon: when no session came out "no-slot", no search reached that day and the proposals are
    # those of the whole horizon. Otherwise (a full calendar, a window far ahead) it runs again on it all.
    longest = max(rule.interval_max_days, rule.taper_interval_max_days or 0)
    remaining = max(plan.planned_sessions - len(done), 0)
    near = min(horizon, today + timedelta(days=(remaining + 1) * longest + SERIES_NEAR_MARGIN_DAYS))
    for last_day in dict.fromkeys((near, horizon)):
        calendar = build_calendar(
            clinic,
            practitioner_ids=practitioners,
            room_ids=rooms,
            patient_id=plan.patient_id,
            first_day=today,
            last_day=last_day,
            settings_row=schedule,
        )
        proposals = rules.series_proposals(dataclasses.replace(facts, horizon=last_day), calendar)
        if all(proposal.state != "no-slot" for proposal in proposals):
            break
    users = {
        u.pk: u
        for u in User.objects.filter(pk__in={*practitioners, *(a.practitioner_id for a in bookings.values())})
    }
    if audit:
        audit_record(
            actor=caller.actor(plan.clinic_id),
            action=Action.SERIES_READ,
            clinic_id=plan.clinic_id,
            patient_id=plan.patient_id,
            obj=plan,
            detail={"proposals": [(p.number, p.state) for p in proposals][:30]},
        )
    return SeriesView(
        plan=plan,
        proposals=proposals,
        done=done,
        zone=zone,
        minutes=facts.minutes,
        practitioners=users,
        rooms={room.pk: room for room in room_rows},
        bookings=bookings,
    )


@dataclass(frozen=True)
class SeriesPick:
    """One session to book (or, when already booked, to move) as staff accepted or adjusted it."""

    number: int
    when: When
    practitioner_id: int
    room_id: int | None = None
    reason: str = ""  # for a warning (a date outside the window)


def _pick_acknowledgements(findings: Sequence[Finding], reason: str, numbers: set[int]) -> dict[str, str]:
    """The reason a pick gives answers its warnings; a following session that comes too soon but is booked
    again in the same batch needs none (its own booking is checked in turn)."""
    acks = {f.key: reason for f in findings if f.severity == "warn" and reason}
    for finding in findings:
        if (
            finding.code == "next-session-too-soon"
            and finding.subject.isdigit()
            and int(finding.subject) in numbers
        ):
            acks.setdefault(finding.key, _("Booked again in the same series booking."))
    return acks


def series_book(
    *,
    caller: Caller,
    plan: TreatmentPlan,
    picks: Sequence[SeriesPick],
    via: str = Appointment.Via.DESK,
    now: datetime | None = None,
) -> list[Appointment]:
    """Book the accepted proposals in one transaction, in session order (each one's window follows the one
    before): all of them, or none with the reasons. A pick for a session already booked moves it. A pick's
    reason answers every warning of its booking."""
    authorize(caller.user, Perm.APPOINTMENT_BOOK, clinic_id=plan.clinic_id, patient=plan.patient)
    if not picks:
        raise _refuse("picks", _("Choose at least one session to book."))
    if len(picks) > 30 or len({p.number for p in picks}) != len(picks):
        raise _refuse("picks", _("Each session once."))
    now = now or timezone.now()
    booked: list[Appointment] = []
    numbers = {pick.number for pick in picks}
    with transaction.atomic():
        for index, pick in enumerate(sorted(picks, key=lambda p: p.number)):
            existing = (
                Appointment.objects.filter(
                    plan=plan, series_number=pick.number, status=Appointment.Status.BOOKED
                )
                .select_related(
                    "clinic", "patient__clinic", "plan__protocol_version__protocol", "plan__clinic"
                )
                .first()
            )
            reason = _text(pick.reason, f"picks.{index}.reason", 1000)
            try:
                data = BookIn(
                    kind=existing.kind if existing else Kind.SESSION,
                    practitioner_id=pick.practitioner_id,
                    when=pick.when,
                    room_id=pick.room_id,
                    plan_id=plan.pk,
                    series_number=pick.number,
                )
                if existing is not None:
                    findings, *_rest = booking_evaluate(
                        clinic=plan.clinic,
                        patient=plan.patient,
                        data=data,
                        portal=not is_staff(caller, plan.clinic_id),
                        now=now,
                        exclude=[existing.pk],
                    )
                    acks = _pick_acknowledgements(findings, reason, numbers)
                    booked.append(
                        appointment_move(
                            caller=caller,
                            appointment=existing,
                            when=pick.when,
                            practitioner_id=pick.practitioner_id,
                            room_id=pick.room_id,
                            acknowledgements=acks,
                            via=via,
                            now=now,
                        )
                    )
                else:
                    findings, *_rest = booking_evaluate(
                        clinic=plan.clinic,
                        patient=plan.patient,
                        data=data,
                        portal=not is_staff(caller, plan.clinic_id),
                        now=now,
                    )
                    acks = _pick_acknowledgements(findings, reason, numbers)
                    booked.append(
                        appointment_book(
                            caller=caller,
                            clinic=plan.clinic,
                            patient=plan.patient,
                            data=dataclasses.replace(data, acknowledgements=acks),
                            via=via,
                            now=now,
                        )
                    )
            except FindingsRefused as refused:
                raise FindingsRefused(
                    refused.findings,
                    _("Session %(number)d: %(message)s")
                    % {"number": pick.number, "message": refused.message},
                ) from None
            except ValidationError as error:
                raise ValidationError(
                    {
                        f"picks.{index}.{name}": messages
                        for name, messages in getattr(error, "message_dict", {"when": error.messages}).items()
                    }
                ) from None
    return booked


@dataclass(frozen=True)
class Choices:
    """The slots a patient may book (or move) one session of a series into."""

    number: int
    window: rules.Window
    slots: list[rules.Slot]
    booking: Appointment | None


def allowed_slots(
    *, caller: Caller, plan: TreatmentPlan, number: int, now: datetime | None = None, limit: int = 24
) -> Choices:
    """Free slots inside the session's window (R-SERIES) that need no reason: not too close (the portal's
    notice), not so late that the next booked session becomes too early."""
    authorize(caller.user, Perm.APPOINTMENT_BOOK, clinic_id=plan.clinic_id, patient=plan.patient)
    now = now or timezone.now()
    clinic = plan.clinic
    schedule = settings_for(clinic)
    today = rules.local_date(now, clinic.zone)
    done = len(_done_dates(plan))
    if not done < number <= plan.planned_sessions:
        raise _refuse("number", _("No such session to book."))
    booking = Appointment.objects.filter(
        plan=plan, series_number=number, status=Appointment.Status.BOOKED
    ).first()
    exclude = [booking.pk] if booking else []
    window, following = _window_for(plan, number, today=today, exclude=exclude)
    first = max(window.earliest, today)
    last = window.latest if window.latest is not None else first + timedelta(days=21)
    if following is not None:
        last = min(
            last,
            following[1] - rules.shortest_interval(series_rule(plan), improved=plan.improved_on is not None),
        )
    last = min(last, today + timedelta(days=schedule.booking_horizon_days))
    slots: list[rules.Slot] = []
    if plan.status == TreatmentPlan.Status.ACTIVE and first <= last:
        calendar = build_calendar(
            clinic,
            practitioner_ids=_preferred_practitioners(plan, None),
            room_ids=[room.pk for room in clinic_rooms(clinic)],
            patient_id=plan.patient_id,
            first_day=first,
            last_day=last,
            exclude=exclude,
            settings_row=schedule,
        )
        not_before = now + timedelta(hours=schedule.portal_notice_hours)
        day = first
        while day <= last and len(slots) < limit:
            slots.extend(
                calendar.slots_on(day, schedule.minutes_for(Kind.SESSION), not_before=not_before, limit=6)
            )
            day += timedelta(days=1)
    return Choices(number, window, slots[:limit], booking)


# --- the calendar views ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """An appointment as the calendar pages and the API show it: a plain row, not models (a week of the clinic
    holds hundreds of appointments, each with its patient, practitioner, room and plan)."""

    id: int
    kind: str
    status: str
    series_number: int | None
    starts_at: datetime
    ends_at: datetime
    patient_id: int
    record_number: str
    given_name: str
    family_name: str
    practitioner_id: int
    practitioner_name: str  # the full name, else the username
    room_id: int | None
    room_name: str  # "" without a room
    planned_sessions: int | None  # of the plan; None without one

    @property
    def patient_name(self) -> str:
        """As ``Patient.full_name``."""
        return f"{self.given_name} {self.family_name}"


_CALENDAR_COLUMNS = (
    "id",
    "kind",
    "status",
    "series_number",
    "starts_at",
    "ends_at",
    "patient_id",
    "patient__record_number",
    "patient__given_name",
    "patient__family_name",
    "practitioner_id",
    "practitioner__first_name",
    "practitioner__last_name",
    "practitioner__username",
    "room_id",
    "room__name",
    "plan__planned_sessions",
)


def _calendar_entry(row: tuple[Any, ...]) -> CalendarEntry:
    (pk, kind, status, number, starts_at, ends_at, patient_id, record_number, given, family) = row[:10]
    practitioner_id, first_name, last_name, username, room_id, room_name, planned_sessions = row[10:]
    return CalendarEntry(
        id=pk,
        kind=kind,
        status=status,
        series_number=number,
        starts_at=starts_at,
        ends_at=ends_at,
        patient_id=patient_id,
        record_number=record_number,
        given_name=given,
        family_name=family,
        practitioner_id=practitioner_id,
        # User.get_full_name() or User.get_username()
        practitioner_name=f"{first_name} {last_name}".strip() or username,
        room_id=room_id,
        room_name=room_name or "",
        planned_sessions=planned_sessions,
    )


@dataclass(frozen=True)
class CalendarView:
    clinic: Clinic
    first_day: date
    days: list[date]
    appointments: list[CalendarEntry]
    practitioners: list[User]
    rooms: list[Room]
    closures: dict[date, rules.Closure]
    practitioner_id: int | None
    room_id: int | None


def calendar_view(
    *,
    caller: Caller,
    clinic: Clinic,
    first_day: date,
    days: int = 1,
    practitioner_id: int | None = None,
    room_id: int | None = None,
) -> CalendarView:
    """A day or a week of the clinic's calendar, for one practitioner or room or for all, in a fixed number
    of queries. Audited with the patients it shows."""
    authorize(caller.user, Perm.SCHEDULE_VIEW, clinic_id=clinic.pk)
    if days not in (1, 7):
        raise _refuse("days", _("A day or a week."))
    practitioners = clinic_practitioners(clinic)
    rooms = clinic_rooms(clinic)
    if practitioner_id is not None and practitioner_id not in {u.pk for u in practitioners}:
        raise _refuse("practitioner", _("Choose a practitioner of this clinic."))
    if room_id is not None and room_id not in {r.pk for r in rooms}:
        raise _refuse("room", _("Unknown room."))
    last_day = first_day + timedelta(days=days - 1)
    zone = clinic.zone
    start = rules.resolve(first_day, time(0), zone)
    end = rules.resolve(last_day + timedelta(days=1), time(0), zone)
    query = Appointment.objects.filter(
        clinic=clinic,
        starts_at__gte=start,
        starts_at__lt=end,
        status__in=[*ACTIVE_STATUSES, Appointment.Status.NO_SHOW],
    )
    if practitioner_id is not None:
        query = query.filter(practitioner_id=practitioner_id)
    if room_id is not None:
        query = query.filter(room_id=room_id)
    appointments = [
        _calendar_entry(row)
        for row in query.order_by("starts_at", "id").values_list(*_CALENDAR_COLUMNS)[:2000]
    ]
    closures = {}
    for closure in ClinicClosure.objects.filter(
        clinic=clinic, ends_on__gte=first_day, starts_on__lte=last_day
    ):
        day = max(closure.starts_on, first_day)
        while day <= min(closure.ends_on, last_day):
            closures[day] = rules.Closure(closure.starts_on, closure.ends_on, closure.reason)
            day += timedelta(days=1)
    audit_record(
        actor=caller.actor(clinic.pk),
        action=Action.CALENDAR_READ,
        clinic_id=clinic.pk,
        detail={
            "from": first_day.isoformat(),
            "days": days,
            "patients": sorted({a.patient_id for a in appointments})[:500],
        },
    )
    return CalendarView(
        clinic=clinic,
        first_day=first_day,
        days=[first_day + timedelta(days=offset) for offset in range(days)],
        appointments=appointments,
        practitioners=practitioners,
        rooms=rooms,
        closures=closures,
        practitioner_id=practitioner_id,
        room_id=room_id,
    )


def appointments_of(
    *, caller: Caller, patient: Patient, upcoming_only: bool = False, limit: int = 50
) -> list[Appointment]:
    authorize(caller.user, Perm.APPOINTMENT_VIEW, clinic_id=patient.clinic_id, patient=patient)
    query = Appointment.objects.filter(patient=patient).select_related(
        "practitioner", "room", "plan__protocol_version__protocol"
    )
    if upcoming_only:
        query = query.filter(status=Appointment.Status.BOOKED, ends_at__gte=timezone.now())
        rows = list(query.order_by("starts_at", "id")[:limit])
    else:
        rows = list(query.order_by("-starts_at", "-id")[:limit])
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.APPOINTMENT_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        detail={"appointments": [a.pk for a in rows]},
    )
    return rows


# --- working hours, exceptions, closures, settings ---------------------------------------------------------


@dataclass(frozen=True)
class HoursIn:
    weekday: int
    starts: time
    ends: time


def hours_of(clinic: Clinic, practitioner_id: int) -> list[WorkingHours]:
    return list(WorkingHours.objects.filter(clinic=clinic, practitioner_id=practitioner_id))


def working_hours_set(
    *, caller: Caller, clinic: Clinic, practitioner_id: int, rows: Sequence[HoursIn]
) -> list[WorkingHours]:
    """Replace a practitioner's usual hours in the clinic. Booked appointments stay as they are."""
    authorize(caller.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk)
    practitioner = _practitioner(clinic, practitioner_id)
    problems: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        if not 0 <= row.weekday <= 6:
            problems.setdefault(f"rows.{index}.weekday", []).append(
                _("A weekday from 0 (Monday) to 6 (Sunday).")
            )
        if row.starts >= row.ends:
            problems.setdefault(f"rows.{index}.ends", []).append(_("The end comes after the start."))
        for clock in (row.starts, row.ends):
            if clock.minute % rules.SLOT_MINUTES or clock.second or clock.microsecond:
                problems.setdefault(f"rows.{index}.starts", []).append(
                    _("Times are on a %(minutes)d-minute grid.") % {"minutes": rules.SLOT_MINUTES}
                )
                break
    by_day: dict[int, list[HoursIn]] = {}
    for row in rows:
        by_day.setdefault(row.weekday, []).append(row)
    for day_rows in by_day.values():
        ordered = sorted(day_rows, key=lambda r: r.starts)
        if any(a.ends > b.starts for a, b in zip(ordered, ordered[1:], strict=False)):
            problems.setdefault("rows", []).append(_("Hours on one day must not overlap."))
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        WorkingHours.objects.filter(clinic=clinic, practitioner=practitioner).delete()
        created = WorkingHours.objects.bulk_create(
            [
                WorkingHours(
                    clinic=clinic, practitioner=practitioner, weekday=r.weekday, starts=r.starts, ends=r.ends
                )
                for r in rows
            ]
        )
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SCHEDULE_CHANGE,
            clinic_id=clinic.pk,
            detail={
                "what": "working-hours",
                "practitioner": practitioner.pk,
                "rows": [[r.weekday, r.starts.isoformat(), r.ends.isoformat()] for r in rows],
            },
        )
    return created


def exception_add(
    *,
    caller: Caller,
    clinic: Clinic,
    practitioner_id: int,
    on: date,
    starts: time | None,
    ends: time | None,
    available: bool,
    reason: str = "",
) -> WorkingException:
    authorize(caller.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk)
    practitioner = _practitioner(clinic, practitioner_id)
    reason = _text(reason, "reason", 200)
    if (starts is None) != (ends is None):
        raise _refuse("ends", _("Give both times, or neither for the whole day."))
    if starts is not None and ends is not None and starts >= ends:
        raise _refuse("ends", _("The end comes after the start."))
    if available and starts is None:
        raise _refuse("starts", _("Extra hours need a start and an end."))
    if on < clinic.today() - timedelta(days=1):
        raise _refuse("on", _("The date has passed."))
    with transaction.atomic():
        row = WorkingException.objects.create(
            clinic=clinic,
            practitioner=practitioner,
            on=on,
            starts=starts,
            ends=ends,
            available=available,
            reason=reason,
        )
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SCHEDULE_CHANGE,
            clinic_id=clinic.pk,
            obj=row,
            detail={
                "what": "exception",
                "practitioner": practitioner.pk,
                "on": on.isoformat(),
                "available": available,
            },
        )
    return row


def exception_remove(*, caller: Caller, clinic: Clinic, exception_id: int) -> None:
    authorize(caller.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk)
    with transaction.atomic():
        row = (
            WorkingException.objects.filter(pk=exception_id, clinic=clinic).first()
            if is_valid_id(exception_id)
            else None
        )
        if row is None:
            raise Http404(_("Not found."))
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SCHEDULE_CHANGE,
            clinic_id=clinic.pk,
            detail={
                "what": "exception-removed",
                "practitioner": row.practitioner_id,
                "on": row.on.isoformat(),
            },
        )
        row.delete()


def closure_add(
    *, caller: Caller, clinic: Clinic, starts_on: date, ends_on: date, reason: str
) -> ClinicClosure:
    """Close the clinic on some days. Appointments already booked then are listed on the settings page to
    be moved; nothing new is booked on them."""
    authorize(caller.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk)
    reason = _text(reason, "reason", 200)
    if not reason:
        raise _refuse("reason", _("Say why the clinic is closed."))
    if starts_on > ends_on:
        raise _refuse("ends_on", _("The last day comes after the first."))
    if (ends_on - starts_on).days > 366:
        raise _refuse("ends_on", _("At most a year at a time."))
    with transaction.atomic():
        row = ClinicClosure.objects.create(clinic=clinic, starts_on=starts_on, ends_on=ends_on, reason=reason)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SCHEDULE_CHANGE,
            clinic_id=clinic.pk,
            obj=row,
            detail={"what": "closure", "from": starts_on.isoformat(), "to": ends_on.isoformat()},
        )
    return row


def closure_remove(*, caller: Caller, clinic: Clinic, closure_id: int) -> None:
    authorize(caller.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk)
    with transaction.atomic():
        row = (
            ClinicClosure.objects.filter(pk=closure_id, clinic=clinic).first()
            if is_valid_id(closure_id)
            else None
        )
        if row is None:
            raise Http404(_("Not found."))
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SCHEDULE_CHANGE,
            clinic_id=clinic.pk,
            detail={
                "what": "closure-removed",
                "from": row.starts_on.isoformat(),
                "to": row.ends_on.isoformat(),
            },
        )
        row.delete()


def booked_on_closures(clinic: Clinic) -> list[Appointment]:
    """Booked appointments that fall on a closure (to be moved)."""
    today = clinic.today()
    closures = list(ClinicClosure.objects.filter(clinic=clinic, ends_on__gte=today))
    if not closures:
        return []
    zone = clinic.zone
    first = min(c.starts_on for c in closures)
    last = max(c.ends_on for c in closures)
    start, end = _day_bounds(first, last, zone)
    rows = Appointment.objects.filter(
        clinic=clinic, status=Appointment.Status.BOOKED, starts_at__gte=start, starts_at__lt=end
    ).select_related("patient", "practitioner")
    found = []
    for row in rows:
        day = rules.local_date(row.starts_at, zone)
        if any(c.starts_on <= day <= c.ends_on for c in closures):
            found.append(row)
    return found


SETTINGS_FIELDS = (
    "consultation_minutes",
    "session_minutes",
    "follow_up_minutes",
    "maintenance_minutes",
    "slot_step_minutes",
    "booking_horizon_days",
    "portal_booking",
    "portal_notice_hours",
    "reminder_time",
    "sms_sender",
)


def settings_update(*, caller: Caller, clinic: Clinic, data: Mapping[str, Any]) -> ScheduleSettings:
    authorize(caller.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk)
    unknown = set(data) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
    problems: dict[str, list[str]] = {}
    for name in ("consultation_minutes", "session_minutes", "follow_up_minutes", "maintenance_minutes"):
        value = data.get(name)
        if value is not None and (
            not 5 <= int(value) <= rules.MAX_DURATION_MINUTES or int(value) % rules.SLOT_MINUTES
        ):
            problems[name] = [_("From 5 to 480 minutes, in steps of 5.")]
    step = data.get("slot_step_minutes")
    if step is not None and (not 5 <= int(step) <= 120 or int(step) % rules.SLOT_MINUTES):
        problems["slot_step_minutes"] = [_("From 5 to 120 minutes, in steps of 5.")]
    horizon = data.get("booking_horizon_days")
    if horizon is not None and not 7 <= int(horizon) <= 730:
        problems["booking_horizon_days"] = [_("From 7 to 730 days.")]
    notice = data.get("portal_notice_hours")
    if notice is not None and not 0 <= int(notice) <= 336:
        problems["portal_notice_hours"] = [_("From 0 to 336 hours.")]
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        row, _created = ScheduleSettings.objects.select_for_update().get_or_create(clinic=clinic)
        for name, value in data.items():
            setattr(row, name, value.strip() if isinstance(value, str) else value)
        row.save()
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SCHEDULE_CHANGE,
            clinic_id=clinic.pk,
            obj=row,
            detail={"what": "settings", "fields": sorted(data)},
        )
    return row


# --- calendar files ----------------------------------------------------------------------------------------


def _event_domain() -> str:
    return str(getattr(settings, "MESSAGE_ID_DOMAIN", "mesoclinic.local"))


def _summary(appointment: Appointment) -> str:
    label = kind_label(appointment.kind)
    if appointment.series_number and appointment.plan is not None:
        return _("%(kind)s %(number)d of %(planned)d") % {
            "kind": label,
            "number": appointment.series_number,
            "planned": appointment.plan.planned_sessions,
        }
    return label


def _patient_event(appointment: Appointment) -> ics.EventFacts:
    clinic = appointment.clinic
    location = ", ".join(
        part for part in (clinic.name, clinic.address_line, clinic.postal_code, clinic.city) if part
    )
    practitioner = appointment.practitioner.get_full_name() or appointment.practitioner.get_username()
    return ics.EventFacts(
        uid=f"appointment-{appointment.pk}@{_event_domain()}",
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        summary=f"{clinic.name}: {_summary(appointment)}",
        location=location,
        description=_("With %(practitioner)s.") % {"practitioner": practitioner},
        cancelled=not appointment.is_active,
    )


def appointment_ics_bytes(appointment: Appointment) -> bytes:
    language = appointment.patient.preferred_language
    with translation.override(language):
        return ics.calendar_file(appointment.clinic.name, [_patient_event(appointment)], stamp=timezone.now())


def appointment_ics(*, caller: Caller, appointment: Appointment) -> bytes:
    """The patient's .ics for one appointment (downloaded, or attached to the confirmation)."""
    authorize(
        caller.user, Perm.APPOINTMENT_VIEW, clinic_id=appointment.clinic_id, patient=appointment.patient
    )
    data = appointment_ics_bytes(appointment)
    audit_record(
        actor=caller.actor(appointment.clinic_id),
        action=Action.APPOINTMENT_PRINT,
        clinic_id=appointment.clinic_id,
        patient_id=appointment.patient_id,
        obj=appointment,
        detail={"format": "ics"},
    )
    return data


def hash_feed_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


FEED_PREFIX = "mcf_"


def feed_active(*, caller: Caller, clinic: Clinic) -> CalendarFeed | None:
    authorize(caller.user, Perm.CALENDAR_FEED, clinic_id=clinic.pk)
    return CalendarFeed.objects.filter(
        clinic=clinic, practitioner_id=caller.user.pk, revoked_at__isnull=True
    ).first()


def feed_create(*, caller: Caller, clinic: Clinic, now: datetime | None = None) -> tuple[CalendarFeed, str]:
    """A new private feed URL for the caller's own appointments in the clinic (any previous one is revoked).
    The token is shown once; only its SHA-256 is kept."""
    authorize(caller.user, Perm.CALENDAR_FEED, clinic_id=clinic.pk)
    now = now or timezone.now()
    token = FEED_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        CalendarFeed.objects.filter(
            clinic=clinic, practitioner_id=caller.user.pk, revoked_at__isnull=True
        ).update(revoked_at=now)
        feed = CalendarFeed.objects.create(
            clinic=clinic, practitioner=_user(caller), token_hash=hash_feed_token(token), created_at=now
        )
        audit_record(
            actor=caller.actor(clinic.pk), action=Action.CALENDAR_FEED_CREATE, clinic_id=clinic.pk, obj=feed
        )
    return feed, token


def feed_revoke(*, caller: Caller, clinic: Clinic, now: datetime | None = None) -> int:
    authorize(caller.user, Perm.CALENDAR_FEED, clinic_id=clinic.pk)
    with transaction.atomic():
        count = CalendarFeed.objects.filter(
            clinic=clinic, practitioner_id=caller.user.pk, revoked_at__isnull=True
        ).update(revoked_at=now or timezone.now())
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.CALENDAR_FEED_REVOKE,
            clinic_id=clinic.pk,
            detail={"revoked": count},
        )
    return count


FEED_PAST_DAYS = 30


def _initials(patient: Patient) -> str:
    return f"{patient.given_name[:1]}. {patient.family_name[:1]}."


FEED_FUTURE_DAYS = 180


def feed_ics(*, token: str, now: datetime | None = None) -> bytes | None:
    """The feed for a token (None: unknown or revoked token, or the practitioner no longer works there).
    Events name the appointment type and the patient's record number, never clinical details."""
    if not token.startswith(FEED_PREFIX) or len(token) > 100:
        return None
    now = now or timezone.now()
    feed = (
        CalendarFeed.objects.select_related("clinic", "practitioner")
        .filter(token_hash=hash_feed_token(token), revoked_at__isnull=True, practitioner__is_active=True)
        .first()
    )
    if (
        feed is None
        or not Membership.objects.filter(
            user_id=feed.practitioner_id, clinic_id=feed.clinic_id, is_active=True
        ).exists()
    ):
        return None
    rows = list(
        Appointment.objects.filter(
            practitioner_id=feed.practitioner_id,
            clinic_id=feed.clinic_id,
            status__in=ACTIVE_STATUSES,
            starts_at__gte=now - timedelta(days=FEED_PAST_DAYS),
            starts_at__lt=now + timedelta(days=FEED_FUTURE_DAYS),
        )
        .select_related("patient", "room", "plan", "clinic")
        .order_by("starts_at")[:3000]
    )
    clinic = feed.clinic
    events = [
        ics.EventFacts(
            uid=f"appointment-{row.pk}@{_event_domain()}",
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            summary=f"{_summary(row)} · {_initials(row.patient)} ({row.patient.record_number})",
            location=", ".join(part for part in (clinic.name, row.room.name if row.room else "") if part),
        )
        for row in rows
    ]
    with transaction.atomic():
        CalendarFeed.objects.filter(pk=feed.pk).update(last_used_at=now)
        audit_record(
            actor=Actor(
                user_id=feed.practitioner_id,
                username=feed.practitioner.get_username(),
                role="calendar-feed",
                ip=None,
            ),
            action=Action.CALENDAR_FEED_READ,
            clinic_id=clinic.pk,
            obj=feed,
            detail={"patients": sorted({row.patient_id for row in rows})[:1000], "events": len(rows)},
        )
    return ics.calendar_file(
        f"{clinic.name} — {feed.practitioner.get_full_name() or feed.practitioner.get_username()}",
        events,
        stamp=now,
    )


# --- contact preferences -----------------------------------------------------------------------------------


def preference_of(patient: Patient) -> ContactPreference:
    return ContactPreference.objects.filter(patient=patient).first() or ContactPreference(patient=patient)


def preference_get(*, caller: Caller, patient: Patient) -> ContactPreference:
    authorize(caller.user, Perm.APPOINTMENT_VIEW, clinic_id=patient.clinic_id, patient=patient)
    found = preference_of(patient)
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.CONTACT_PREFERENCE_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
    )
    return found


def preference_update(
    *, caller: Caller, patient: Patient, channel: str, reminders: bool, follow_up: bool, numbing_cream: bool
) -> ContactPreference:
    """The patient's (or the desk's, for the patient) choices: channel and opt-outs, applied to every message
    not yet sent."""
    authorize(caller.user, Perm.CONTACT_PREFERENCE_EDIT, clinic_id=patient.clinic_id, patient=patient)
    if channel not in ContactPreference.Channel.values:
        raise _refuse("channel", _("Choose email or text message."))
    if channel == "sms" and not patient.phone.strip():
        raise _refuse("channel", _("There is no phone number on the record for text messages."))
    if channel == "email" and not patient.email.strip():
        raise _refuse("channel", _("There is no email address on the record."))
    with transaction.atomic():
        row, _created = ContactPreference.objects.select_for_update().get_or_create(patient=patient)
        row.channel = channel
        row.reminders = bool(reminders)
        row.follow_up = bool(follow_up)
        row.numbing_cream = bool(numbing_cream)
        row.updated_by = _user(caller)
        row.save()
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.CONTACT_PREFERENCE_WRITE,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=row,
            detail={"channel": channel, "reminders": row.reminders, "follow_up": row.follow_up},
        )
    return row


# --- the outbox ---------------------------------------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "MESSAGE_LEASE_SECONDS", 600)))


def _enqueue(message: Message, *, at: datetime) -> None:
    """Queue the delivery task for the row (in the current transaction with the database backend)."""
    from django_tasks_db.backend import DatabaseBackend

    from mesoclinic.scheduling.tasks import deliver_message

    task = deliver_message.using(run_after=at)
    Message.objects.filter(pk=message.pk).update(enqueued_at=timezone.now())
    if isinstance(task.get_backend(), DatabaseBackend):
        task.enqueue(message.pk)
    else:
        pk = message.pk
        transaction.on_commit(lambda: task.enqueue(pk))


def ensure_sweep(*, now: datetime | None = None) -> None:
    """Make sure a sweep is queued (it re-queues itself; this mends the chain if a worker died in it)."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from mesoclinic.scheduling.tasks import sweep_messages

    if not isinstance(sweep_messages.get_backend(), DatabaseBackend):
        return
    if DBTaskResult.objects.filter(task_path=SWEEP_TASK_PATH, status="READY").exists():
        return
    interval = timedelta(seconds=int(getattr(settings, "MESSAGE_SWEEP_SECONDS", 300)))
    sweep_messages.using(run_after=(now or timezone.now()) + interval).enqueue()


def _queue(message: Message) -> Message:
    _enqueue(message, at=message.due_at)
    return message


def _queue_booking_messages(appointment: Appointment, *, now: datetime, moved: bool = False) -> None:
    schedule = settings_for(appointment.clinic)
    treatment = appointment.kind in TREATMENT_KINDS
    for kind in (MessageKind.CONFIRMATION, MessageKind.NSAID, MessageKind.DAY_BEFORE):
        due = rules.appointment_message_due(
            kind,
            starts_at=appointment.starts_at,
            ends_at=appointment.ends_at,
            zone=appointment.clinic.zone,
            now=now,
            reminder_time=schedule.reminder_time,
            treatment=treatment,
        )
        if due is None:
            continue
        message = Message.objects.create(
            clinic=appointment.clinic,
            patient=appointment.patient,
            appointment=appointment,
            kind=kind,
            due_at=due,
            detail="moved" if moved and kind == MessageKind.CONFIRMATION else "",
        )
        _queue(message)
    ensure_sweep(now=now)


def _queue_session_messages(appointment: Appointment, session: TreatmentSession, *, now: datetime) -> None:
    """After a session: aftercare and the side-effect check about it, and the plan's infection watch counted
    from its latest session (a later session moves waiting messages later)."""
    schedule = settings_for(appointment.clinic)
    zone = appointment.clinic.zone
    for kind in (MessageKind.AFTERCARE, MessageKind.SIDE_EFFECT_CHECK):
        due = rules.appointment_message_due(
            kind,
            starts_at=appointment.starts_at,
            ends_at=appointment.ends_at,
            zone=zone,
            now=now,
            reminder_time=schedule.reminder_time,
            treatment=True,
        )
        if due is not None:
            _queue(
                Message.objects.create(
                    clinic=appointment.clinic,
                    patient=appointment.patient,
                    appointment=appointment,
                    kind=kind,
                    due_at=due,
                )
            )
    plan = appointment.plan
    if plan is None:
        return
    for plan_kind in sorted(PLAN_KINDS):
        due = rules.infection_due(
            plan_kind, last_session_on=session.session_date, zone=zone, reminder_time=schedule.reminder_time
        )
        existing = (
            Message.objects.select_for_update()
            .filter(plan=plan, kind=plan_kind, appointment__isnull=True)
            .first()
        )
        if existing is None:
            _queue(
                Message.objects.create(
                    clinic=plan.clinic, patient=plan.patient, plan=plan, kind=plan_kind, due_at=due
                )
            )
        elif existing.status == Message.Status.PENDING and existing.due_at != due:
            existing.due_at = due
            existing.save(update_fields=["due_at"])
            _queue(existing)
    ensure_sweep(now=now)


def _cancel_messages(appointment: Appointment, *, reason: str) -> None:
    Message.objects.filter(appointment=appointment, status=Message.Status.PENDING).update(
        status=Message.Status.CANCELLED, detail=reason
    )


def messages_of(*, caller: Caller, patient: Patient, limit: int = 30) -> list[Message]:
    authorize(caller.user, Perm.MESSAGE_VIEW, clinic_id=patient.clinic_id, patient=patient)
    rows = list(
        Message.objects.filter(patient=patient)
        .select_related("appointment")
        .order_by("-due_at", "-id")[:limit]
    )
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.MESSAGE_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        detail={"messages": [m.pk for m in rows]},
    )
    return rows


def outbox(*, caller: Caller, clinic: Clinic, status: str | None = None, limit: int = 100) -> list[Message]:
    """The clinic's recent messages (failed and uncertain ones first to act on)."""
    authorize(caller.user, Perm.MESSAGE_VIEW, clinic_id=clinic.pk)
    query = Message.objects.filter(clinic=clinic).select_related("patient", "appointment")
    if status:
        if status not in Message.Status.values:
            raise _refuse("status", _("Unknown status."))
        query = query.filter(status=status)
    rows = list(query.order_by("-due_at", "-id")[:limit])
    audit_record(
        actor=caller.actor(clinic.pk),
        action=Action.MESSAGE_READ,
        clinic_id=clinic.pk,
        detail={"patients": sorted({m.patient_id for m in rows})[:500], "status": status or ""},
    )
    return rows


# --- delivery -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    sms: str
    attachments: tuple[transports.Attachment, ...] = ()


def _template_name(language: str, kind: str, suffix: str) -> list[str]:
    base = "infection" if kind in PLAN_KINDS else kind
    return [f"scheduling/messages/{language}/{base}{suffix}", f"scheduling/messages/en/{base}{suffix}"]


def render_message(message: Message) -> Rendered:
    """The message in the patient's language (clinic time for every date)."""
    patient = message.patient
    clinic = message.clinic
    language = patient.preferred_language or settings.LANGUAGE_CODE
    appointment = message.appointment
    preference = preference_of(patient)
    context: dict[str, Any] = {
        "name": patient.given_name,
        "clinic": clinic.name,
        "phone": clinic.phone,
        "address": ", ".join(p for p in (clinic.address_line, clinic.postal_code, clinic.city) if p),
        "zone": clinic.time_zone,
        "numbing": preference.numbing_cream,
        "moved": message.detail == "moved",
        "weeks": rules.INFECTION_WEEKS.get(message.kind),
    }
    attachments: tuple[transports.Attachment, ...] = ()
    if appointment is not None:
        practitioner = appointment.practitioner
        context.update(
            {
                "starts": appointment.starts_at,
                "kind": appointment.kind,
                "treatment": appointment.kind in TREATMENT_KINDS,
                "practitioner": practitioner.get_full_name() or practitioner.get_username(),
                "number": appointment.series_number,
                "planned": appointment.plan.planned_sessions if appointment.plan else None,
            }
        )
        if message.kind == MessageKind.AFTERCARE:
            context.update(_aftercare_context(appointment, language))
        if message.kind == MessageKind.CONFIRMATION:
            attachments = (
                transports.Attachment("appointment.ics", appointment_ics_bytes(appointment), "text/calendar"),
            )
    with translation.override(language), timezone.override(clinic.zone):
        email = select_template(_template_name(language, message.kind, ".txt")).render(context)
        sms = select_template(_template_name(language, message.kind, ".sms.txt")).render(context)
    subject, _sep, body = email.partition("\n")
    return Rendered(subject.strip()[:200], body.strip() + "\n", " ".join(sms.split())[:480], attachments)


def _aftercare_context(appointment: Appointment, language: str) -> dict[str, Any]:
    """The aftercare issued at sign-off, or — before it is signed — the protocol's instructions."""
    session = appointment.treatment_session
    issued = Aftercare.objects.filter(session=session).first() if session is not None else None
    if issued is not None:
        return {"aftercare": [row["text"] for row in issued.instructions], "aftercare_note": issued.note}
    plan = appointment.plan
    if plan is None:
        return {"aftercare": [], "aftercare_note": ""}
    version = plan.protocol_version
    with translation.override(language):
        texts = [text for _code, text in aftercare_texts(version.aftercare)]
    return {"aftercare": texts, "aftercare_note": version.aftercare_note}


def _delivered(channel: str, key: str) -> bool | None:
    if channel == "sms":
        return transports.sms_backend().delivered(key)
    if channel == "email":
        return transports.email_delivered(key)
    return None


def _log(message: Message, outcome: str, *, now: datetime, worker: str, detail: str = "") -> None:
    MessageAttempt.objects.create(
        message=message,
        at=now,
        outcome=outcome,
        channel=message.channel,
        worker=worker[:64],
        detail=detail[:500],
    )
    logger.info("message %s (%s) %s %s", message.pk, message.kind, outcome, detail)


def _audit_sent(message: Message) -> None:
    audit_record(
        actor=SYSTEM_ACTOR,
        action=Action.MESSAGE_SEND,
        clinic_id=message.clinic_id,
        patient_id=message.patient_id,
        obj=message,
        detail={
            "kind": message.kind,
            "channel": message.channel,
            "appointment": message.appointment_id,
            "plan": message.plan_id,
        },
    )


def _finish(
    message: Message, status: str, *, now: datetime, worker: str, outcome: str, detail: str = ""
) -> None:
    message.status = status
    message.claimed_by = ""
    message.claimed_at = None
    if status == Message.Status.SENT:
        message.sent_at = now
    if detail:
        message.detail = detail[:500]
    message.save(update_fields=["status", "claimed_by", "claimed_at", "sent_at", "detail"])
    _log(message, outcome, now=now, worker=worker, detail=detail)
    if status == Message.Status.SENT:
        _audit_sent(message)


def _stale_subject(message: Message) -> str | None:
    """Why a waiting message should not go any more (its appointment changed, the plan moved on)."""
    appointment = message.appointment
    if (
        appointment is not None
        and message.kind in (MessageKind.CONFIRMATION, MessageKind.NSAID, MessageKind.DAY_BEFORE)
        and appointment.status != Appointment.Status.BOOKED
    ):
        return "appointment-" + appointment.status
    return None


def message_deliver(*, message_id: int, worker: str = "", now: datetime | None = None) -> str:
    """Deliver one message once. Answers what happened: sent, recovered (a dead worker's send had gone),
    skipped, failed (retry queued or given up), uncertain, or the row was left alone (done, busy, not-yet,
    missing)."""
    now = now or timezone.now()
    worker = worker or f"pid-{os.getpid()}"
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related(
                "patient",
                "clinic",
                "appointment__practitioner",
                "appointment__plan",
                "appointment__clinic",
                "appointment__patient",
            )
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return "missing"
        decision = rules.claim_decision(
            status=message.status,
            due_at=message.due_at,
            claimed_at=message.claimed_at,
            now=now,
            lease=_lease(),
        )
        if decision in ("done", "busy", "not-yet"):
            return decision
        if decision == "in-doubt":
            went = _delivered(message.channel, message.key)
            if went is True:
                _finish(
                    message,
                    Message.Status.SENT,
                    now=now,
                    worker=worker,
                    outcome="recovered",
                    detail="sent before the worker stopped",
                )
                return "recovered"
            if went is None:
                _finish(
                    message,
                    Message.Status.UNCERTAIN,
                    now=now,
                    worker=worker,
                    outcome="uncertain",
                    detail="the worker stopped while sending; the transport cannot tell whether it went",
                )
                return "uncertain"
        stale = _stale_subject(message)
        if stale:
            _finish(
                message, Message.Status.CANCELLED, now=now, worker=worker, outcome="skipped", detail=stale
            )
            return "skipped"
        preference = preference_of(message.patient)
        channel, address = rules.delivery_choice(
            message.kind,
            rules.Recipient(
                email=message.patient.email,
                phone=message.patient.phone,
                channel=preference.channel,
                reminders=preference.reminders,
                follow_up=preference.follow_up,
            ),
        )
        if channel is None:
            _finish(
                message, Message.Status.SKIPPED, now=now, worker=worker, outcome="skipped", detail=address
            )
            return "skipped"
        try:
            rendered = render_message(message)
        except Exception as error:  # noqa: BLE001 (a broken template must not leave the row claimed)
            _finish(
                message,
                Message.Status.FAILED,
                now=now,
                worker=worker,
                outcome="failed",
                detail=f"render: {error!r}",
            )
            return "failed"
        message.status = Message.Status.SENDING
        message.channel = channel
        message.recipient = address
        message.language = message.patient.preferred_language
        message.attempts += 1
        message.claimed_by = worker[:64]
        message.claimed_at = now
        message.save(
            update_fields=[
                "status",
                "channel",
                "recipient",
                "language",
                "attempts",
                "claimed_by",
                "claimed_at",
            ]
        )
    # The claim is committed: send with no transaction open (a slow SMTP server holds no lock).
    try:
        if channel == "sms":
            transports.sms_backend().send(
                to=address,
                body=rendered.sms,
                key=message.key,
                sender=settings_for(message.clinic).sms_sender or message.clinic.name[:11],
            )
        else:
            transports.send_email(
                to=address,
                subject=rendered.subject,
                body=rendered.body,
                key=message.key,
                attachments=rendered.attachments,
            )
    except Exception as error:  # noqa: BLE001 (any transport failure is retried, then recorded)
        with transaction.atomic():
            locked = Message.objects.select_for_update().get(pk=message.pk)
            delay = rules.retry_delay(locked.attempts)
            if delay is None:
                _finish(
                    locked,
                    Message.Status.FAILED,
                    now=now,
                    worker=worker,
                    outcome="failed",
                    detail=repr(error),
                )
            else:
                locked.status = Message.Status.PENDING
                locked.due_at = now + delay
                locked.claimed_by = ""
                locked.claimed_at = None
                locked.detail = repr(error)[:500]
                locked.save(update_fields=["status", "due_at", "claimed_by", "claimed_at", "detail"])
                _log(locked, "failed", now=now, worker=worker, detail=f"{error!r}; retry in {delay}")
                _enqueue(locked, at=locked.due_at)
        return "failed"
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message.pk)
        _finish(locked, Message.Status.SENT, now=now, worker=worker, outcome="sent")
    return "sent"


def messages_sweep(*, now: datetime | None = None, worker: str = "sweep", limit: int = 200) -> dict[str, int]:
    """Mend what a dead worker left: claims past their lease (resolved without sending twice) and waiting
    messages well past due whose task was lost. Answers how many of each outcome."""
    now = now or timezone.now()
    lease = _lease()
    outcomes: dict[str, int] = {}
    stale = list(
        Message.objects.filter(
            Q(status=Message.Status.SENDING, claimed_at__lt=now - lease)
            | Q(status=Message.Status.PENDING, due_at__lte=now - lease)
        )
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in stale:
        outcome = message_deliver(message_id=pk, worker=worker, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)

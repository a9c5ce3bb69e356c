"""The generator's scheduling family (mesoclinic.scheduling): the calendar behind the generated sessions.

Per clinic:

- its **ScheduleSettings** (30-minute sessions and consultations, 15-minute follow-ups, a 15-minute step:
  ``bench.rows.VISIT_SECONDS`` is the session length the visits were spread with) and **WorkingHours**
  for everyone who treats there: Monday to Saturday, 09:00–20:00;
- a **ClinicClosure** over Christmas after ``as_of`` (nothing is booked on it);
- one **Appointment** per treatment session (kind *session*, the plan and its session number, the visit's
  time for 30 minutes, the session's practitioner and room, *checked in* with the session's check-in
  time and desk, linked to it), booked 3–30 days before by the desk (some through the API);
- before a few of them, the appointment the patient did not keep: **cancelled** (with a reason) or a
  **no-show**, a week earlier at the same time (neither holds its time, so neither can overlap);
- for every active plan with sessions left, its next session **booked** after ``as_of`` (and sometimes the
  one after), on a free 30-minute slot of its last practitioner (or another), outside the closure.

Nobody is double-booked (the guard of scheduling migration 0002): bench/rows.py's ``spread_visits`` moved
the visits apart before the sessions were written, cancelled and missed appointments hold no time, and the
future bookings are placed on a grid of free slots here. The SQLite guard's triggers are dropped during the
load and created again with the indexes (``Context.write(…, without_triggers=True)``); tests check the
no-overlap fact on the generated rows. No audit rows, no outbox messages.

Built in this process (a few µs a row): it reads back what the sessions family wrote (ids, plans, check-in
times) instead of recomputing it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, time, timedelta
from typing import TYPE_CHECKING, Any

from bench.rows import SECONDS_PER_DAY, VISIT_SECONDS, moment_text, next_open_day
from mesoclinic.accounts.models import Role
from mesoclinic.clinics.models import Room
from mesoclinic.scheduling.models import Appointment, ClinicClosure, ScheduleSettings, WorkingHours
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts

FIELDS_APPOINTMENT = (
    "clinic",
    "patient",
    "practitioner",
    "room",
    "kind",
    "plan",
    "series_number",
    "starts_at",
    "ends_at",
    "status",
    "booking_findings",
    "booking_acknowledgements",
    "note",
    "via",
    "treatment_session",
    "moved_to",
    "cancel_reason",
    "status_note",
    "created_at",
    "created_by",
    "checked_in_at",
    "checked_in_by",
    "ended_at",
    "ended_by",
)
OPENS, CLOSES = time(9, 0), time(20, 0)
WEEKDAYS = range(6)  # Monday to Saturday
# Future bookings: 30-minute slots from 09:00 to 19:30.
FUTURE_SLOTS = tuple(9 * 3600 + half * 1800 for half in range(22))
CANCELLED_SHARE = 0.04
NO_SHOW_SHARE = 0.02
SECOND_BOOKING_SHARE = 0.3
API_SHARE = 0.05
CANCEL_REASONS = ("patient-request", "patient-request", "illness", "bruising", "clinic")
DESK_NOTES = ("", "", "", "", "Prefers mornings.", "Parking card given.", "Will call if late.")


def _settings(ctx: Context, data: ClinicData) -> ScheduleSettings:
    return ScheduleSettings(
        clinic=data.clinic,
        updated_at=ctx.midnight - timedelta(days=400),
        consultation_minutes=30,
        session_minutes=VISIT_SECONDS // 60,
        follow_up_minutes=15,
        maintenance_minutes=VISIT_SECONDS // 60,
        slot_step_minutes=15,
    )


def _treating(data: ClinicData) -> list[int]:
    """Everyone who treats in the clinic: its practitioners and medical directors, and whoever the visits
    name."""
    staff = {
        user.pk
        for role in (Role.PRACTITIONER.value, Role.MEDICAL_DIRECTOR.value)
        for user in data.staff.get(role, [])
    }
    return sorted(staff | set(data.visits.practitioner))


def christmas_after(as_of: date) -> tuple[date, date]:
    year = as_of.year if as_of < date(as_of.year, 12, 24) else as_of.year + 1
    return date(year, 12, 24), date(year, 12, 26)


class Grid:
    """Who is booked on which future 30-minute slot of which day (practitioner, room, patient)."""

    def __init__(self, rooms: tuple[int, ...]) -> None:
        self.rooms = rooms
        self.taken: set[tuple[str, int, int, int]] = set()  # (what, id, day, slot index)
        self.patient_days: set[tuple[int, int]] = set()

    def place(
        self, rng: random.Random, day: int, patient: int, preferred: int, others: list[int], closed: set[int]
    ) -> tuple[int, int, int, int | None]:
        """(day, slot second, practitioner, room) of the first day from ``day`` with a free slot for the
        patient and the preferred practitioner, else another one; a free room or none."""
        while True:
            day = next_open_day(day)
            if day in closed or (patient, day) in self.patient_days:
                day += 1
                continue
            first = int(rng.random() * len(FUTURE_SLOTS))
            for who in (preferred, *others):
                for step in range(len(FUTURE_SLOTS)):
                    slot = (first + step) % len(FUTURE_SLOTS)
                    if ("p", who, day, slot) in self.taken:
                        continue
                    room = next((r for r in self.rooms if ("r", r, day, slot) not in self.taken), None)
                    self.taken.add(("p", who, day, slot))
                    if room is not None:
                        self.taken.add(("r", room, day, slot))
                    self.patient_days.add((patient, day))
                    return day, FUTURE_SLOTS[slot], who, room
            day += 1


def appointment_rows(ctx: Context, data: ClinicData) -> Iterator[tuple[Any, ...]]:
    """Every appointment of one clinic, in the order described in the module docstring."""
    rng = ctx.rng("appointments", data.number)
    rand = rng.random
    clinic_id = data.clinic.pk
    offset = data.utc_offset
    visits = data.visits
    desk = [user.pk for user in data.staff.get(Role.FRONT_DESK.value, [])] or _treating(data)
    sessions = list(
        TreatmentSession.objects.filter(clinic_id=clinic_id)
        .order_by("id")
        .values_list(
            "id",
            "plan_id",
            "patient_id",
            "number",
            "practitioner_id",
            "room_id",
            "checked_in_at",
            "checked_in_by",
        )
    )
    if len(sessions) != len(visits):
        raise RuntimeError("the scheduling family runs after the sessions family (one session per visit)")
    last: dict[int, tuple[int, int, int]] = {}  # plan → (sessions so far, last day, practitioner)
    for index, (session_id, plan, patient, number, practitioner, room, checked_in, checked_by) in enumerate(
        sessions
    ):
        day = visits.day[index]
        start = day * SECONDS_PER_DAY + visits.second[index]
        starts, ends = moment_text(start, offset), moment_text(start + VISIT_SECONDS, offset)
        booked = start - (3 + int(rand() * 28)) * SECONDS_PER_DAY - int(rand() * 8 * 3600)
        api = rand() < API_SHARE
        booker = desk[int(rand() * len(desk))]
        note = DESK_NOTES[int(rand() * len(DESK_NOTES))]
        draw = rand()
        if draw < CANCELLED_SHARE + NO_SHOW_SHARE:  # the appointment before this one, not kept
            before = start - 7 * SECONDS_PER_DAY
            missed = draw >= CANCELLED_SHARE
            ended = before + 20 * 60 if missed else before - (1 + int(rand() * 3)) * SECONDS_PER_DAY
            yield (
                clinic_id,
                patient,
                practitioner,
                room,
                "session",
                plan,
                number,
                moment_text(before, offset),
                moment_text(before + VISIT_SECONDS, offset),
                "no_show" if missed else "cancelled",
                "[]",
                "[]",
                note,
                "api" if api else "desk",
                None,
                None,
                "" if missed else CANCEL_REASONS[int(rand() * len(CANCEL_REASONS))],
                "",
                moment_text(min(booked, before - 2 * SECONDS_PER_DAY), offset),
                booker,
                None,
                None,
                moment_text(ended, offset),
                desk[int(rand() * len(desk))],
            )
            booked = ended + 600
        yield (
            clinic_id,
            patient,
            practitioner,
            room,
            "session",
            plan,
            number,
            starts,
            ends,
            "checked_in",
            "[]",
            "[]",
            note,
            "api" if api else "desk",
            session_id,
            None,
            "",
            "",
            moment_text(booked, offset),
            booker,
            checked_in,
            checked_by,
            None,
            None,
        )
        done, _day, _who = last.get(plan, (0, 0, 0))
        last[plan] = (done + 1, day, practitioner)
    # The next sessions of the active plans, after as_of.
    as_of = ctx.as_of.toordinal()
    first_closed, last_closed = christmas_after(ctx.as_of)
    closed = set(range(first_closed.toordinal(), last_closed.toordinal() + 1))
    rooms = tuple(
        Room.objects.filter(clinic_id=clinic_id, is_active=True).order_by("id").values_list("id", flat=True)
    )
    grid = Grid(rooms)
    treating = _treating(data)
    for plan, patient, planned in (
        TreatmentPlan.objects.filter(clinic_id=clinic_id, status=TreatmentPlan.Status.ACTIVE)
        .order_by("id")
        .values_list("id", "patient_id", "planned_sessions")
    ):
        done, day, practitioner = last.get(plan, (0, as_of, treating[0]))
        numbers = [done + 1] + ([done + 2] if rand() < SECOND_BOOKING_SHARE else [])
        for number in numbers:
            if number > planned:
                break
            day = max(day + 14 + int(rand() * 15), as_of + 1 + int(rand() * 21))
            day, second, who, free_room = grid.place(
                rng, day, patient, practitioner, [t for t in treating if t != practitioner], closed
            )
            start = day * SECONDS_PER_DAY + second
            booked = min(start, as_of * SECONDS_PER_DAY) - (1 + int(rand() * 20)) * SECONDS_PER_DAY
            yield (
                clinic_id,
                patient,
                who,
                free_room,
                "session",
                plan,
                number,
                moment_text(start, offset),
                moment_text(start + VISIT_SECONDS, offset),
                "booked",
                "[]",
                "[]",
                DESK_NOTES[int(rand() * len(DESK_NOTES))],
                "api" if rand() < API_SHARE else "desk",
                None,
                None,
                "",
                "",
                moment_text(booked, offset),
                desk[int(rand() * len(desk))],
                None,
                None,
                None,
                None,
            )


def gen_appointments(ctx: Context) -> Counts:
    """Scheduling settings, working hours, a closure and the appointments of every clinic."""
    ctx.insert([_settings(ctx, data) for data in ctx.clinics])
    hours = ctx.insert(
        [
            WorkingHours(clinic=data.clinic, practitioner_id=who, weekday=weekday, starts=OPENS, ends=CLOSES)
            for data in ctx.clinics
            for who in _treating(data)
            for weekday in WEEKDAYS
        ]
    )
    first, last = christmas_after(ctx.as_of)
    closures = ctx.insert(
        [
            ClinicClosure(
                clinic=data.clinic,
                starts_on=first,
                ends_on=last,
                reason="Fermeture de Noël" if data.place.french_share > 0.5 else "Christmas closure",
                created_at=ctx.midnight - timedelta(days=60),
            )
            for data in ctx.clinics
        ]
    )
    written = 0
    for data in ctx.clinics:
        # Built whole before writing: the builder queries the database, which PostgreSQL's COPY would not
        # let it do on the same connection while the copy is open.
        rows = list(appointment_rows(ctx, data))
        written += ctx.write(Appointment, FIELDS_APPOINTMENT, rows, without_triggers=True)
    return {
        "schedule settings": len(ctx.clinics),
        "working hours": len(hours),
        "closure": len(closures),
        "appointment": written,
    }

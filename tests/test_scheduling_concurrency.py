"""Parallel bookings of one slot (issue 7, targets.md #16), on whichever database the suite runs on (SQLite by
default, PostgreSQL with DATABASE_URL): eight desks book the same time at once and exactly one booking is
made — for one practitioner, one room, one patient and one session of a plan — the others are refused with
a reason (never an IntegrityError or "database is locked"), and the database holds no overlap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta

import pytest

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.clinics.models import Clinic, Room
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.patients.models import Patient
from mesoclinic.scheduling import services
from mesoclinic.scheduling.models import Appointment, Kind
from mesoclinic.treatments.models import TreatmentPlan
from tests.factories import PatientFactory, RoomFactory, staff
from tests.parallel import run_in_parallel
from tests.scheduling_support import WEEKDAY_HOURS, Sched, schedule

WRITERS = 8
REFUSALS = {"practitioner-busy", "room-busy", "patient-busy", "slot-taken", "session-booked"}


def _practitioners(s: Sched, count: int) -> list[int]:
    ids = []
    for index in range(count):
        user = staff(s.clinic, Role.PRACTITIONER, last_name=f"Parallel {index}")
        services.working_hours_set(
            caller=s.caller(s.admin), clinic=s.clinic, practitioner_id=user.pk, rows=WEEKDAY_HOURS
        )
        ids.append(user.pk)
    return ids


def _book_all(
    s: Sched,
    hour: int,
    who: Callable[[int], tuple[int, int, int | None]],
    *,
    kind: str = Kind.CONSULTATION,
    plan_id: int | None = None,
    minute: Callable[[int], int] = lambda _index: 0,
    days: Callable[[int], int] = lambda _index: 8,
) -> tuple[list[int], list[str]]:
    """Every writer books (patient, practitioner, room) = ``who(index)`` at ``hour`` (plus ``minute(index)``)
    ``days(index)`` days after the first Monday (by default the Tuesday of the week after)."""
    clinic_pk, desk_pk, now = s.clinic.pk, s.t.desk.pk, s.now
    made: list[int] = []
    refused: list[str] = []

    def body(index: int) -> None:
        patient_pk, practitioner_pk, room_pk = who(index)
        clinic = Clinic.objects.get(pk=clinic_pk)
        patient = Patient.objects.select_related("clinic").get(pk=patient_pk)
        try:
            appointment = services.appointment_book(
                caller=Caller(user=User.objects.get(pk=desk_pk)),
                clinic=clinic,
                patient=patient,
                data=services.BookIn(
                    kind=kind,
                    practitioner_id=practitioner_pk,
                    when=services.When(
                        day=s.monday + timedelta(days=days(index)),
                        clock=time(hour, minute(index)),
                    ),
                    room_id=room_pk,
                    plan_id=plan_id,
                    series_number=1 if plan_id is not None else None,
                ),
                now=now,
            )
        except FindingsRefused as exc:
            refused.extend(f.code for f in exc.findings if f.severity == "block")
        else:
            made.append(appointment.pk)

    assert run_in_parallel(WRITERS, body) == []
    return made, refused


def _no_overlap() -> None:
    rows = list(
        Appointment.objects.filter(status__in=["booked", "checked_in"]).values(
            "practitioner_id", "room_id", "patient_id", "starts_at", "ends_at"
        )
    )
    for index, row in enumerate(rows):
        for other in rows[index + 1 :]:
            if row["starts_at"] < other["ends_at"] and other["starts_at"] < row["ends_at"]:
                for who in ("practitioner_id", "room_id", "patient_id"):
                    assert row[who] is None or row[who] != other[who], (who, row, other)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_bookings_of_one_slot_make_exactly_one_booking() -> None:
    s = schedule(sessions=4)
    patients = [PatientFactory.create(clinic=s.clinic).pk for _ in range(WRITERS)]
    rooms: list[Room] = [RoomFactory.create(clinic=s.clinic, name=f"Cabin {i}") for i in range(WRITERS)]
    practitioners = _practitioners(s, WRITERS)
    practitioner = s.t.practitioner.pk
    shared_room = s.t.room.pk

    # One practitioner, eight patients in eight rooms.
    made, refused = _book_all(s, 9, lambda i: (patients[i], practitioner, rooms[i].pk))
    assert len(made) == 1 and len(refused) == WRITERS - 1 and set(refused) <= REFUSALS, refused
    # One room, eight practitioners and eight patients.
    made, refused = _book_all(s, 11, lambda i: (patients[i], practitioners[i], shared_room))
    assert len(made) == 1 and len(refused) == WRITERS - 1 and set(refused) <= REFUSALS, refused
    # One patient, eight practitioners in eight rooms, at overlapping times (14:00 and 14:05).
    made, refused = _book_all(
        s, 14, lambda i: (s.t.patient.pk, practitioners[i], rooms[i].pk), minute=lambda i: 5 * (i % 2)
    )
    assert len(made) == 1 and len(refused) == WRITERS - 1 and set(refused) <= REFUSALS, refused
    # One session of a plan (its first), eight desks on eight different weekdays.
    plan = TreatmentPlan.objects.get(pk=s.t.plan.pk)
    weekdays = [15, 16, 17, 18, 21, 22, 23, 24]
    made, refused = _book_all(
        s,
        16,
        lambda i: (s.t.patient.pk, practitioner, shared_room),
        kind=Kind.SESSION,
        plan_id=plan.pk,
        days=lambda i: weekdays[i],
    )
    assert len(made) == 1 and refused == ["slot-taken"] * (WRITERS - 1), refused
    assert Appointment.objects.filter(plan=plan, status="booked").count() == 1
    _no_overlap()
    assert Appointment.objects.filter(status="booked").count() == 4

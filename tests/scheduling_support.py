"""A clinic ready to book a series (issue 7), built through the services: the treatments world of
``treat()`` (licensed practitioner, screened candidate, active plan) with working hours, two rooms and a
fixed "now" on a Monday morning a week or two ahead, so that every date in a test is the same whatever day
the suite runs."""

from __future__ import annotations

import os
import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.clinics.models import Clinic, Room
from mesoclinic.patients.models import Patient
from mesoclinic.scheduling import rules, services
from mesoclinic.scheduling.models import Appointment, Kind
from mesoclinic.scheduling.transports import FileSmsBackend, IdempotentFileEmailBackend
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession
from tests.factories import PatientFactory, RoomFactory, staff
from tests.treatments_support import Treat, candidate, sign, treat

WEEKDAY_HOURS = [services.HoursIn(day, time(9), time(17)) for day in range(5)]


def next_monday(zone: ZoneInfo, *, weeks: int = 1) -> date:
    today = timezone.localdate(timezone=zone)
    return today + timedelta(days=7 * weeks - today.weekday())


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo | None = None) -> datetime:
    """A clinic-local wall-clock time as a UTC instant (the test picks times that exist once)."""
    return rules.localize(day, time(hour, minute), zone or ZoneInfo("Europe/Paris"))


@dataclass
class Sched:
    t: Treat
    admin: User
    room2: Room
    monday: date  # the first Monday of the tests
    now: datetime  # 08:00 that Monday, clinic time

    @property
    def clinic(self) -> Clinic:
        return self.t.clinic

    @property
    def plan(self) -> TreatmentPlan:
        return TreatmentPlan.objects.select_related(
            "clinic", "patient__clinic", "protocol_version__protocol"
        ).get(pk=self.t.plan.pk)

    @property
    def patient(self) -> Patient:
        return Patient.objects.select_related("clinic").get(pk=self.t.patient.pk)

    def caller(self, user: User | None = None) -> Caller:
        return Caller(user=User.objects.get(pk=(user or self.t.desk).pk))

    def when(self, day: date, hour: int, minute: int = 0, fold: int | None = None) -> services.When:
        return services.When(day=day, clock=time(hour, minute), fold=fold)

    def book(
        self,
        day: date,
        hour: int,
        minute: int = 0,
        *,
        kind: str = Kind.SESSION,
        patient: Patient | None = None,
        practitioner: User | None = None,
        room: Room | None | bool = True,
        plan: TreatmentPlan | None | bool = True,
        number: int | None = None,
        acknowledgements: dict[str, str] | None = None,
        now: datetime | None = None,
        caller: Caller | None = None,
    ) -> Appointment:
        patient = patient or self.patient
        chosen_room = self.t.room if room is True else (room or None)
        chosen_plan = (
            (self.plan if kind in (Kind.SESSION, Kind.MAINTENANCE) else None) if plan is True else plan
        )
        return services.appointment_book(
            caller=caller or self.caller(),
            clinic=self.clinic,
            patient=patient,
            data=services.BookIn(
                kind=kind,
                practitioner_id=(practitioner or self.t.practitioner).pk,
                when=self.when(day, hour, minute),
                room_id=chosen_room.pk if isinstance(chosen_room, Room) else None,
                plan_id=chosen_plan.pk if isinstance(chosen_plan, TreatmentPlan) else None,
                series_number=number,
                acknowledgements=acknowledgements or {},
            ),
            now=now or self.now,
        )

    def other_patient(self, **kwargs: Any) -> Patient:
        return PatientFactory.create(clinic=self.clinic, **kwargs)


def schedule(
    *,
    clinic: Clinic | None = None,
    sessions: int = 6,
    protocol_code: str = "facial-rejuvenation",
    consented: bool = True,
) -> Sched:
    """``consented``: the plan has a signed, countersigned consent (the check-in gate's no-consent rule)."""
    t = treat(clinic=clinic, sessions=sessions, protocol_code=protocol_code, consented=consented)
    admin = staff(t.clinic, Role.CLINIC_ADMIN)
    room2 = RoomFactory.create(clinic=t.clinic, name="Room B")
    caller = Caller(user=admin)
    for user in (t.practitioner, t.director):
        services.working_hours_set(
            caller=caller, clinic=t.clinic, practitioner_id=user.pk, rows=WEEKDAY_HOURS
        )
    monday = next_monday(t.clinic.zone)
    return Sched(t, admin, room2, monday, at(monday, 8, zone=t.clinic.zone))


def complete(s: Sched, session: TreatmentSession) -> TreatmentSession:
    """Chart and sign an open session (so that the plan's next one can start)."""
    preparation = s.t.prepare(now=session.checked_in_at)
    s.t.chart(session, s.t.chart_area(preparation))
    return sign(s.t, session, now=session.checked_in_at + timedelta(minutes=30))


def second_candidate(s: Sched, **kwargs: Any) -> Patient:
    patient = s.other_patient(**kwargs)
    candidate(patient, s.t.practitioner)
    return patient


# --- transports the worker tests choose by setting ----------------------------------------------------------


class FailingSmsBackend:
    """Every send fails (a provider that is down)."""

    def send(self, *, to: str, body: str, key: str, sender: str) -> None:
        raise ConnectionError("SMS provider unreachable")

    def delivered(self, key: str) -> bool | None:
        return False


class SlowFileSmsBackend(FileSmsBackend):
    """The file backend, slow on both sides of the write: a worker killed at a random moment is often in the
    middle of a send."""

    def send(self, *, to: str, body: str, key: str, sender: str) -> None:
        clock.sleep(0.08)
        super().send(to=to, body=body, key=key, sender=sender)
        clock.sleep(0.08)


class SlowIdempotentEmailBackend(IdempotentFileEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        clock.sleep(0.08)
        sent = super().send_messages(email_messages)
        clock.sleep(0.08)
        return sent


def files(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.glob(f"*{suffix}") if not p.name.startswith(".tmp-"))


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _journal(directory: Path, line: str) -> None:
    """One line per transport call, appended and flushed to disk before the call goes on (a worker killed
    right after still leaves it)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "journal.log").open("a", encoding="utf-8") as stream:
        stream.write(line + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def journal(directory: Path) -> list[str]:
    path = directory / "journal.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


class CountingSmsBackend(FileSmsBackend):
    """The slow file backend that journals every call: ``wrote <key>`` when the message went out, ``again
    <key>`` when send was called for a key that had gone already (a second send)."""

    def send(self, *, to: str, body: str, key: str, sender: str) -> None:
        clock.sleep(0.05)
        went = self.delivered(key)
        super().send(to=to, body=body, key=key, sender=sender)
        _journal(self.directory, f"{'again' if went else 'wrote'} {key}")
        clock.sleep(0.05)


class CountingEmailBackend(IdempotentFileEmailBackend):
    """The same for email, journalled next to the SMS files (``SMS_FILE_PATH``)."""

    def send_messages(self, email_messages: Any) -> int:
        from django.conf import settings

        clock.sleep(0.05)
        keys = [str(m.extra_headers.get("Message-ID", "")).strip("<>").split("@")[0] for m in email_messages]
        went = [self.delivered(m.extra_headers.get("Message-ID", "").strip("<>")) for m in email_messages]
        sent = super().send_messages(email_messages)
        for key, before in zip(keys, went, strict=True):
            _journal(Path(settings.SMS_FILE_PATH), f"{'again' if before else 'wrote'} {key}")
        clock.sleep(0.05)
        return sent

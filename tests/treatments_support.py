"""A clinic ready to treat, built through the services: a licensed practitioner, a screened candidate with a
signed review, a formulary with lots, and an active plan from a protocol template."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary.models import Preparation
from mesoclinic.patients.models import Patient
from mesoclinic.screening.services import review_sign
from mesoclinic.treatments import services
from mesoclinic.treatments.models import BodyArea, Protocol, Technique, TreatmentPlan, TreatmentSession
from mesoclinic.treatments.rules import interior_point
from tests.consent_support import give_consent
from tests.factories import ClinicFactory, DeviceFactory, LicenceFactory, PatientFactory, RoomFactory, staff
from tests.formulary_setup import Setup, build
from tests.screening_support import ensure_catalogues, submit


def ensure_seed() -> None:
    """The seeded areas, techniques and templates come from a data migration; put them back after a flush."""
    ensure_catalogues()
    if BodyArea.objects.exists() and Technique.objects.exists() and Protocol.objects.exists():
        return
    importlib.import_module("mesoclinic.treatments.seed").load(apps, None)


def centre(area: BodyArea) -> list[float]:
    """A point well inside the area."""
    x, y = interior_point(area.outline)
    return [x, y]


@dataclass
class Treat:
    clinic: Clinic
    practitioner: User
    director: User
    desk: User
    patient: Patient
    formulary: Setup
    room: Room
    device: Device
    plan: TreatmentPlan

    def caller(self, user: User | None = None) -> Caller:
        return Caller(user=User.objects.get(pk=(user or self.practitioner).pk))

    def prepare(self, **kwargs: Any) -> Preparation:
        return self.formulary.prepare(self.patient, **kwargs)

    def check_in(self, *, now: datetime | None = None, **kwargs: Any) -> TreatmentSession:
        return services.session_check_in(
            caller=self.caller(),
            plan=self.plan,
            room_id=self.room.pk,
            device_id=self.device.pk,
            now=now,
            **kwargs,
        )

    def area(self, code: str) -> BodyArea:
        return BodyArea.objects.get(code=code)

    def chart_area(
        self, preparation: Preparation, code: str = "forehead", **overrides: Any
    ) -> services.ChartAreaIn:
        area = self.area(code)
        values: dict[str, Any] = {
            "area": code,
            "technique": "nappage",
            "depth_mm": Decimal("1.5"),
            "points": [centre(area)],
            "needle": "32G 4 mm",
            "injections": 40,
            "volume_per_point_ml": Decimal("0.02"),
            "preparation_id": preparation.pk,
        }
        values.update(overrides)
        return services.ChartAreaIn(**values)

    def chart(
        self, session: TreatmentSession, *areas: services.ChartAreaIn, **kwargs: Any
    ) -> TreatmentSession:
        return services.session_chart(
            caller=self.caller(), session=session, chart=services.ChartIn(areas=list(areas), **kwargs)
        )


def candidate(patient: Patient, practitioner: User, *, on: date | None = None, **intake: Any) -> None:
    """An intake without findings that need more than a reason, and a signed "candidate" review."""
    version = submit(patient, practitioner, **intake).version
    review_sign(
        caller=Caller(user=practitioner),
        patient=patient,
        decision="candidate",
        intake_version=version,
        acknowledgements={},
        on=on,
    )


def treat(
    *,
    clinic: Clinic | None = None,
    protocol_code: str = "facial-rejuvenation",
    sessions: int = 6,
    areas: tuple[str, ...] = ("forehead", "cheek-left", "cheek-right", "neck"),
    consented: bool = True,
) -> Treat:
    """An active plan for a screened candidate; ``consented`` gives it a signed, countersigned consent
    (R-PRE-CONSENT), so the check-in gate's ``no-consent`` rule lets its sessions through."""
    ensure_seed()
    clinic = clinic or ClinicFactory.create()
    practitioner = staff(clinic, Role.PRACTITIONER, first_name="Inès", last_name="Morel")
    LicenceFactory.create(user=practitioner, jurisdiction=clinic.jurisdiction, expires_on=date(2099, 1, 1))
    director = staff(clinic, Role.MEDICAL_DIRECTOR, first_name="Paul", last_name="Blanc")
    LicenceFactory.create(user=director, jurisdiction=clinic.jurisdiction, expires_on=date(2099, 1, 1))
    desk = staff(clinic, Role.FRONT_DESK)
    patient = PatientFactory.create(clinic=clinic)
    candidate(patient, practitioner)
    formulary = build(clinic, director)
    room = RoomFactory.create(clinic=clinic)
    device = DeviceFactory.create(clinic=clinic, room=room)
    protocol = Protocol.objects.get(clinic__isnull=True, code=protocol_code)
    caller = Caller(user=practitioner)
    plan = services.plan_create(
        caller=caller,
        patient=patient,
        protocol=protocol,
        data=services.PlanIn(
            planned_sessions=sessions, areas=list(areas), formula_ids=[formulary.formula.pk]
        ),
    )
    plan = services.plan_activate(caller=caller, plan=plan)
    if consented:
        give_consent(plan, practitioner)
    return Treat(clinic, practitioner, director, desk, patient, formulary, room, device, plan)


def days_later(session: TreatmentSession, days: int) -> datetime:
    """A moment ``days`` after the session's check-in (same clock time)."""
    return session.checked_in_at + timedelta(days=days)


def sign(treat: Treat, session: TreatmentSession, *, now: datetime | None = None) -> TreatmentSession:
    return services.session_sign(caller=treat.caller(), session=session, now=now or timezone.now())

"""Shared set-up for the screening tests: the seeded catalogues and intakes written through the service."""

from __future__ import annotations

import importlib
from datetime import date
from typing import Any

from django.apps import apps

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, Role, User
from mesoclinic.patients.models import Patient
from mesoclinic.screening.models import Condition, Intake, MedicineName
from mesoclinic.screening.rules import IntakeAnswers, MedicationAnswer
from tests.factories import staff

SEED_MIGRATIONS = ("0002_seed_catalogues", "0003_french_medicine_names")


def ensure_catalogues() -> None:
    """The catalogues come from data migrations; a transactional test's flush empties them: put them back."""
    if Condition.objects.exists() and MedicineName.objects.exists():
        return
    for name in SEED_MIGRATIONS:
        importlib.import_module(f"mesoclinic.screening.migrations.{name}").seed(apps, None)


def submit(
    patient: Patient,
    user: User,
    *,
    pregnancy: str = "none",
    conditions: tuple[str, ...] = (),
    medications: tuple[tuple[str, date | None], ...] = (),
    allergies: tuple[str, ...] = (),
    weight_stable: bool | None = True,
    goals: str = "Smoother thighs.",
    previous_treatments: str = "",
) -> Intake:
    from mesoclinic.screening.services import intake_submit

    return intake_submit(
        caller=Caller(user=user),
        patient=patient,
        answers=IntakeAnswers(
            pregnancy=pregnancy,
            conditions=conditions,
            medications=tuple(MedicationAnswer(name, last) for name, last in medications),
            allergies=allergies,
            weight_stable=weight_stable,
            goals=goals,
            previous_treatments=previous_treatments,
        ),
    )


def intake_at_desk(patient: Patient, **answers: Any) -> Intake:
    """The patient's latest intake; when there is none, one filled at the desk by a staff member of the
    patient's clinic (screening comes before any preparation or treatment)."""
    latest = Intake.objects.filter(patient=patient).order_by("-version").first()
    if latest is not None and not answers:
        return latest
    membership = (
        Membership.objects.filter(
            clinic_id=patient.clinic_id,
            is_active=True,
            role__in=[Role.FRONT_DESK, Role.PRACTITIONER, Role.MEDICAL_DIRECTOR],
        )
        .select_related("user")
        .order_by("pk")
        .first()
    )
    user = membership.user if membership is not None else staff(patient.clinic, Role.FRONT_DESK)
    return submit(Patient.objects.select_related("clinic").get(pk=patient.pk), user, **answers)

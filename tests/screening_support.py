"""Shared set-up for the screening tests: the seeded catalogues and intakes written through the service."""

from __future__ import annotations

import importlib
from datetime import date

from django.apps import apps

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.patients.models import Patient
from mesoclinic.screening.models import Condition, Intake, MedicineName
from mesoclinic.screening.rules import IntakeAnswers, MedicationAnswer


def ensure_catalogues() -> None:
    """The catalogues come from a data migration; a transactional test's flush empties them: put them back."""
    if Condition.objects.exists() and MedicineName.objects.exists():
        return
    migration = importlib.import_module("mesoclinic.screening.migrations.0002_seed_catalogues")
    migration.seed(apps, None)


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

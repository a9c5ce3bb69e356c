"""The benchmark instrument (bench/, docs/performance.md): the generator's data are deterministic, complete
and consistent with the application's own rules; the floor and the Server-Timing stopwatch work. Nothing
here measures time (that is `make bench`'s job)."""

from __future__ import annotations

import random
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from pytest_django import DjangoAssertNumQueries

from bench.generate import (
    DEFAULT_AS_OF,
    PATIENT_FIELDS,
    SCALES,
    GenerateRefused,
    Pattern,
    generate,
    patient_rows,
)
from bench.names import PLACES
from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, PractitionerLicence, Role, User
from mesoclinic.audit.models import AuditEvent
from mesoclinic.audit.services import audit_problems
from mesoclinic.clinics.models import Clinic
from mesoclinic.floor import ServerTimingMiddleware, floor
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_create
from tests.factories import ClinicFactory


def _rows(stream: str) -> list[tuple[object, ...]]:
    return patient_rows(stream, PLACES[0], 7, range(1, 301), 1, date(2021, 1, 1), DEFAULT_AS_OF)


def test_patient_rows_are_a_function_of_the_seed() -> None:
    assert _rows("1:patients:1:0") == _rows("1:patients:1:0")
    assert _rows("1:patients:1:0") != _rows("2:patients:1:0")


def test_patient_rows_look_like_an_aesthetic_clinic() -> None:
    rows = [dict(zip(PATIENT_FIELDS, row, strict=True)) for row in _rows("1:patients:1:0")]
    assert [row["record_number"] for row in rows[:2]] == ["P-000001", "P-000002"]
    stamps = [str(row["created_at"]) for row in rows]
    assert stamps == sorted(stamps)
    for row in rows:
        born = date.fromisoformat(str(row["date_of_birth"]))
        registered = date.fromisoformat(str(row["created_at"])[:10])
        assert (registered - born).days >= 18 * 365, "registered as an adult"
        assert (DEFAULT_AS_OF - born).days < 77 * 366
        assert row["family_name_folded"] == fold(str(row["family_name"]))
        assert row["given_name_folded"] == fold(str(row["given_name"]))
    women = sum(row["sex"] == "female" for row in rows)
    assert 0.7 < women / len(rows) < 0.97
    assert any(str(row["family_name"]) != str(row["family_name_folded"]).title() for row in rows), "accents"


def test_pattern_fills_digits_and_letters() -> None:
    rng = random.Random(1)  # noqa: S311
    assert Pattern("+33 6 ## ## ## ##")(rng).startswith("+33 6 ")
    postal = Pattern("W1# #AA")(rng)
    assert postal[:2] == "W1" and postal[2].isdigit() and postal[5:].isalpha()


@pytest.mark.django_db
def test_generate_smoke_then_the_application_carries_on() -> None:
    report = generate(SCALES["smoke"], seed=5, workers=1)
    assert report.rows > 200

    clinic = Clinic.objects.get()
    assert Patient.objects.filter(clinic=clinic).count() == 200
    assert clinic.last_record_number == 200
    assert set(Patient.objects.values_list("record_number", flat=True)) == {
        f"P-{number:06d}" for number in range(1, 201)
    }
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == {role.value for role in Role}
    practitioners = Membership.objects.filter(role=Role.PRACTITIONER).count()
    assert 2 <= practitioners <= 4
    assert PractitionerLicence.objects.filter(jurisdiction=clinic.jurisdiction).count() == practitioners + 1

    # No audit rows, and the chain verifies; generated staff can sign in with the documented password.
    assert not AuditEvent.objects.exists()
    assert audit_problems() == []
    desk = User.objects.get(username="c001-desk1")
    assert desk.check_password("mesoclinic-demo-2026")

    # The application continues the record numbers and the ids.
    created = patient_create(
        caller=Caller(user=desk),
        clinic=clinic,
        data={
            "given_name": "Zoé",
            "family_name": "Après",
            "date_of_birth": date(1990, 1, 2),
            "sex": "female",
        },
    )
    assert created.record_number == "P-000201"
    assert created.pk > max(Patient.objects.exclude(pk=created.pk).values_list("pk", flat=True))

    with pytest.raises(GenerateRefused):
        generate(SCALES["smoke"], seed=5, workers=1)
    with pytest.raises(CommandError, match="already has data"):
        call_command("generate", "--scale", "smoke")


def test_floor_is_not_routed_by_default() -> None:
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor")


@pytest.mark.django_db
def test_floor_renders_with_one_query_and_server_timing(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    clinic = ClinicFactory.create(name="Clinique Étoile")
    request = RequestFactory().get(f"/bench/floor?clinic={clinic.pk}")
    timed = ServerTimingMiddleware(floor)
    with django_assert_num_queries(1):
        response = timed(request)
    assert response.status_code == 200
    assert "Clinique Étoile" in response.content.decode()
    header = response["Server-Timing"]
    assert header.startswith("app;dur=") and 'queries;desc="1"' in header

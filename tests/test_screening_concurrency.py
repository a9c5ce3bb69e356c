"""Screening writes under parallel writers, on whichever database the suite runs on (SQLite by default,
PostgreSQL with DATABASE_URL): a review is never signed for an intake that a newer one had already replaced,
and two invitations racing for one sign-in name both get an account."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.patients.models import Patient
from mesoclinic.screening import services
from mesoclinic.screening.models import Intake, Review
from mesoclinic.screening.rules import IntakeAnswers
from tests.conftest import World
from tests.factories import PatientFactory
from tests.screening_support import ensure_catalogues

ROUNDS = 6


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_review_is_never_signed_for_a_replaced_intake(world: World) -> None:
    ensure_catalogues()
    patient_pk = world.patient.pk
    desk_pk, practitioner_pk = world.users["front_desk"].pk, world.users["practitioner"].pk
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def patient() -> Patient:
        return Patient.objects.select_related("clinic").get(pk=patient_pk)

    services.intake_submit(
        caller=Caller(user=User.objects.get(pk=desk_pk)), patient=patient(), answers=IntakeAnswers("none")
    )

    def desk() -> None:
        try:
            start.wait()
            for round_ in range(ROUNDS):
                services.intake_submit(
                    caller=Caller(user=User.objects.get(pk=desk_pk)),
                    patient=patient(),
                    answers=IntakeAnswers("none", goals=f"round {round_}"),
                )
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    def practitioner() -> None:
        try:
            start.wait()
            for _ in range(ROUNDS * 2):
                caller = Caller(user=User.objects.get(pk=practitioner_pk))
                seen = services.screening_run(caller=caller, patient=patient()).intake.version
                try:
                    services.review_sign(
                        caller=caller,
                        patient=patient(),
                        decision="candidate",
                        intake_version=seen,
                        acknowledgements={},
                    )
                except ValidationError as refused:
                    assert set(refused.message_dict) == {"intake_version"}
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=desk), threading.Thread(target=practitioner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Intake.objects.filter(patient_id=patient_pk).count() == ROUNDS + 1
    # Each review was signed while its intake was the latest: every newer version came after the signature.
    for review in Review.objects.filter(patient_id=patient_pk).select_related("intake"):
        newer = Intake.objects.filter(patient_id=patient_pk, version__gt=review.intake.version)
        assert all(intake.submitted_at >= review.signed_at for intake in newer), review.pk


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_invitations_racing_for_one_sign_in_name_both_get_an_account(world: World) -> None:
    ensure_catalogues()
    email = "same.person@example.org"
    patients = [
        PatientFactory.create(clinic=world.clinic, email=email, family_name=f"Twin{n}") for n in range(4)
    ]
    desk_pk = world.users["front_desk"].pk
    errors: list[BaseException] = []
    start = threading.Barrier(len(patients))

    def invite(patient_pk: int) -> None:
        try:
            start.wait()
            services.intake_invite(
                caller=Caller(user=User.objects.get(pk=desk_pk)),
                patient=Patient.objects.select_related("clinic").get(pk=patient_pk),
                site_url="https://clinic.example",
            )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=invite, args=(patient.pk,)) for patient in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    names = sorted(
        Patient.objects.filter(pk__in=[p.pk for p in patients]).values_list("user__username", flat=True)
    )
    assert names == [email, f"{email}-2", f"{email}-3", f"{email}-4"]
    assert len(mail.outbox) == len(patients)

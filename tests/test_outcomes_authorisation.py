"""targets.md #1, #2 and #3 for outcomes: every role × every page and API operation × {own record, other
patient, other clinic}. The expectations are written out by hand, not derived from the policy module. One
world for all roles; each call runs in a savepoint that is rolled back. The front desk, the clinic admin and
the researcher never see a measurement or a photo; the patient sees their own and records nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import get_resolver
from django.utils import timezone
from pytest_django.fixtures import Settings

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.outcomes import services
from mesoclinic.outcomes.models import Assessment, Photo
from mesoclinic.patients.models import Patient
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import Protocol, TreatmentPlan, TreatmentSession
from tests.authorisation_matrix import Operation, matrix_problems, route_patterns
from tests.conftest import ALL_ROLES, World, client_for
from tests.factories import LicenceFactory, staff
from tests.outcomes_support import jpeg
from tests.treatments_support import candidate, ensure_seed

CLINICIANS = frozenset({"practitioner", "medical_director"})
VIEWERS = CLINICIANS | {"patient-own"}
SETTINGS = frozenset({"clinic_admin", "medical_director"})
EVERYONE = frozenset({*ALL_ROLES, "patient-own"})


@dataclass
class Target:
    patient: Patient
    plan: TreatmentPlan
    baseline: Assessment
    photo: Photo
    session: TreatmentSession


def _photo_file(t: Target) -> dict[str, Any]:
    return {"view": "abdomen-left-90", "image": SimpleUploadedFile("p.jpg", jpeg(size=(64, 48)))}


OPERATIONS: list[Operation[Target]] = [
    # Pages.
    Operation("settings", "get", lambda t: "/outcomes/settings/", SETTINGS, patient_level=False),
    Operation(
        "settings-post",
        "post",
        lambda t: "/outcomes/settings/",
        SETTINGS,
        lambda t: {"gais_reversed": "on"},
        patient_level=False,
    ),
    Operation(
        "portal", "get", lambda t: "/outcomes/portal/", frozenset({"patient-own"}), patient_level=False
    ),
    Operation("panel", "get", lambda t: f"/outcomes/patients/{t.patient.pk}/panel/", VIEWERS),
    Operation("progress", "get", lambda t: f"/outcomes/plans/{t.plan.pk}/", VIEWERS),
    Operation("assess", "get", lambda t: f"/outcomes/plans/{t.plan.pk}/assess/?kind=follow-up", CLINICIANS),
    Operation(
        "assess-post",
        "post",
        lambda t: f"/outcomes/plans/{t.plan.pk}/assess/",
        CLINICIANS,
        lambda t: {"kind": "follow-up", "m-weight": "70"},
    ),
    Operation("compare", "get", lambda t: f"/outcomes/plans/{t.plan.pk}/compare/", VIEWERS),
    Operation(
        "consent",
        "post",
        lambda t: f"/outcomes/plans/{t.plan.pk}/consent/",
        VIEWERS,
        lambda t: {"given": "on"},
    ),
    Operation("report", "get", lambda t: f"/outcomes/plans/{t.plan.pk}/report.pdf", VIEWERS),
    Operation("chart", "get", lambda t: f"/outcomes/plans/{t.plan.pk}/charts/weight.svg", VIEWERS),
    Operation("assessment", "get", lambda t: f"/outcomes/assessments/{t.baseline.pk}/", VIEWERS),
    Operation(
        "photo-upload",
        "post",
        lambda t: f"/outcomes/assessments/{t.baseline.pk}/photos/",
        CLINICIANS,
        _photo_file,
    ),
    Operation(
        "capture",
        "get",
        lambda t: f"/outcomes/assessments/{t.baseline.pk}/capture/abdomen-front/",
        CLINICIANS,
    ),
    Operation("photo", "get", lambda t: f"/outcomes/photos/{t.photo.pk}/image", VIEWERS),
    # API.
    Operation("api-catalogue", "get", lambda t: "/api/v1/outcomes/catalogue", EVERYONE, patient_level=False),
    Operation("api-settings", "get", lambda t: "/api/v1/outcomes/settings", SETTINGS, patient_level=False),
    Operation(
        "api-settings-put",
        "put",
        lambda t: "/api/v1/outcomes/settings",
        SETTINGS,
        lambda t: {"gais_reversed": True, "record_improvement": True},
        True,
        patient_level=False,
    ),
    Operation(
        "api-assessments", "get", lambda t: f"/api/v1/outcomes/assessments?plan_id={t.plan.pk}", VIEWERS
    ),
    Operation(
        "api-assessment-create",
        "post",
        lambda t: "/api/v1/outcomes/assessments",
        CLINICIANS,
        lambda t: {
            "plan_id": t.plan.pk,
            "kind": "follow-up",
            "measurements": [{"code": "weight", "value": "70"}],
        },
        True,
    ),
    Operation("api-assessment", "get", lambda t: f"/api/v1/outcomes/assessments/{t.baseline.pk}", VIEWERS),
    Operation(
        "api-photo-upload",
        "post",
        lambda t: f"/api/v1/outcomes/assessments/{t.baseline.pk}/photos",
        CLINICIANS,
        _photo_file,
    ),
    Operation("api-photo", "get", lambda t: f"/api/v1/outcomes/photos/{t.photo.pk}", VIEWERS),
    Operation("api-photo-image", "get", lambda t: f"/api/v1/outcomes/photos/{t.photo.pk}/image", VIEWERS),
    Operation(
        "api-photo-consent",
        "put",
        lambda t: f"/api/v1/outcomes/photo-consent/{t.plan.pk}",
        VIEWERS,
        lambda t: {"given": True},
        True,
    ),
    Operation("api-progress", "get", lambda t: f"/api/v1/outcomes/progress/{t.plan.pk}", VIEWERS),
    Operation("api-report", "get", lambda t: f"/api/v1/outcomes/progress/{t.plan.pk}/report.pdf", VIEWERS),
]


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def _target(patient: Patient, practitioner: User) -> Target:
    """An active localized-fat plan with a baseline (and its photo) and one signed session."""
    caller = Caller(user=practitioner)
    candidate(patient, practitioner)
    protocol = Protocol.objects.get(clinic__isnull=True, code="localized-fat")
    plan = treatments.plan_create(
        caller=caller,
        patient=patient,
        protocol=protocol,
        data=treatments.PlanIn(planned_sessions=6, areas=["flank-left", "flank-right"]),
    )
    plan = treatments.plan_activate(caller=caller, plan=plan)
    today = plan.clinic.today()
    baseline = services.assessment_record(
        caller=caller,
        plan=plan,
        data=services.AssessmentIn(
            kind="baseline",
            taken_on=today - timedelta(days=10),
            measurements=[services.MeasurementIn("weight", "71")],
        ),
    )
    photo = services.photo_upload(
        caller=caller, assessment=baseline, view="abdomen-front", data=jpeg(size=(64, 48))
    )
    moment = timezone.now() - timedelta(days=3)
    session = TreatmentSession.objects.create(
        clinic=plan.clinic,
        plan=plan,
        patient=patient,
        number=1,
        session_date=today - timedelta(days=3),
        practitioner=practitioner,
        status=TreatmentSession.Status.SIGNED,
        checked_in_at=moment,
        checked_in_by=practitioner,
        signed_at=moment,
        signed_by=practitioner,
    )
    return Target(patient, plan, baseline, photo, session)


def _world_targets(world: World) -> dict[str, Target]:
    ensure_seed()
    for role in ("practitioner", "medical_director"):
        LicenceFactory.create(
            user=world.users[role], jurisdiction=world.clinic.jurisdiction, expires_on=date(2099, 1, 1)
        )
    outsider = staff(world.other_clinic, Role.PRACTITIONER)
    LicenceFactory.create(
        user=outsider, jurisdiction=world.other_clinic.jurisdiction, expires_on=date(2099, 1, 1)
    )
    practitioner = world.users["practitioner"]
    return {
        "own": _target(world.own_patient, practitioner),
        "other": _target(world.patient, practitioner),
        "foreign": _target(world.foreign_patient, outsider),
    }


def test_outcome_operation_matrix(world: World) -> None:
    targets = _world_targets(world)
    wrong = matrix_problems(world, OPERATIONS, targets)
    assert wrong == []
    # Nothing the calls did survived their savepoints.
    assert Photo.objects.count() == 3 and Assessment.objects.count() == 3


def test_every_outcomes_route_and_api_operation_is_in_the_matrix() -> None:
    from mesoclinic.api import api

    pages = sorted(p for p in route_patterns(get_resolver()) if p.startswith("outcomes/"))
    covered = {op.name for op in OPERATIONS if not op.name.startswith("api-")}
    assert len(pages) == 13 and len(covered) == 15  # settings and assess have a GET and a POST
    schema: dict[str, dict[str, Any]] = api.get_openapi_schema()["paths"]
    api_operations = {
        (method, path)
        for path, item in schema.items()
        for method in item
        if path.startswith("/api/v1/outcomes")
    }
    assert len(api_operations) == len([op for op in OPERATIONS if op.name.startswith("api-")])


IDOR_URLS = [
    "/outcomes/patients/{patient}/panel/",
    "/outcomes/plans/{plan}/",
    "/outcomes/plans/{plan}/assess/",
    "/outcomes/plans/{plan}/compare/",
    "/outcomes/plans/{plan}/consent/",
    "/outcomes/plans/{plan}/report.pdf",
    "/outcomes/plans/{plan}/charts/weight.svg",
    "/outcomes/assessments/{assessment}/",
    "/outcomes/assessments/{assessment}/photos/",
    "/outcomes/assessments/{assessment}/capture/abdomen-front/",
    "/outcomes/photos/{photo}/image",
    "/api/v1/outcomes/assessments?plan_id={plan}",
    "/api/v1/outcomes/assessments/{assessment}",
    "/api/v1/outcomes/assessments/{assessment}/photos",
    "/api/v1/outcomes/photos/{photo}",
    "/api/v1/outcomes/photos/{photo}/image",
    "/api/v1/outcomes/photo-consent/{plan}",
    "/api/v1/outcomes/progress/{plan}",
    "/api/v1/outcomes/progress/{plan}/report.pdf",
]


def test_idor_probes_with_foreign_ids(world: World) -> None:
    """targets.md #2: another clinic's ids, every method: never 2xx or 3xx, nothing about the record in the
    answer, and the same answer as for an id that does not exist."""
    targets = _world_targets(world)
    foreign = targets["foreign"]
    client = client_for(world.users["medical_director"])
    wrong: list[str] = []
    for url in IDOR_URLS:
        for method in ("get", "post", "put", "delete"):
            answers = []
            for ids in (
                {
                    "patient": foreign.patient.pk,
                    "plan": foreign.plan.pk,
                    "assessment": foreign.baseline.pk,
                    "photo": foreign.photo.pk,
                },
                {"patient": 999999, "plan": 999999, "assessment": 999999, "photo": 999999},
            ):
                path = url.format(**ids)
                with transaction.atomic():
                    response = (
                        client.get(path)
                        if method == "get"
                        else getattr(client, method)(path, data="{}", content_type="application/json")
                    )
                    transaction.set_rollback(True)
                answers.append((response.status_code, response.content))
            (status, content), (missing_status, _missing) = answers
            if status not in {403, 404, 405, 422} or foreign.patient.family_name.encode() in content:
                wrong.append(f"{method} {url}: {status}")
            elif status != missing_status:
                wrong.append(f"{method} {url}: {status} for a foreign id, {missing_status} for a missing one")
    assert wrong == []

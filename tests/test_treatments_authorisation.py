"""targets.md #1 and #2 for protocols, plans and sessions: every role × every page and API operation ×
{own record, other patient, other clinic}. The expectations are written out by hand, not derived from the
policy module. Each role gets one world; each call runs in a savepoint that is rolled back, so that one
operation never changes what the next one sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.patients.models import Patient
from mesoclinic.treatments import services
from mesoclinic.treatments.models import Protocol, TreatmentPlan, TreatmentSession
from tests.authorisation_matrix import Operation, matrix_problems, route_patterns
from tests.conftest import ALL_ROLES, World, client_for
from tests.consent_support import give_consent
from tests.factories import LicenceFactory, staff
from tests.formulary_setup import Setup, build
from tests.treatments_support import candidate, centre, ensure_seed

CARE = {"clinic_admin", "practitioner", "medical_director", "front_desk"}
CLINICAL = {"practitioner", "medical_director"}
DESK_AND_CLINICAL = {"practitioner", "medical_director", "front_desk"}
PLAN_VIEWERS = CARE | {"patient-own"}
AFTERCARE_VIEWERS = DESK_AND_CLINICAL | {"patient-own"}
DIRECTOR = {"medical_director"}


@dataclass
class Target:
    patient: Patient
    plan: TreatmentPlan
    signed: TreatmentSession
    open: TreatmentSession
    preparation_id: int
    clinic_protocol: Protocol


def _chart_body(t: Target) -> dict[str, Any]:
    from mesoclinic.treatments.models import BodyArea

    return {
        "areas": [
            {
                "area": "forehead",
                "technique": "nappage",
                "depth_mm": "1.5",
                "points": [centre(BodyArea.objects.get(code="forehead"))],
                "injections": 20,
                "volume_per_point_ml": "0.02",
                "preparation_id": t.preparation_id,
            }
        ]
    }


def _plan_body(t: Target) -> dict[str, Any]:
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    return {"protocol_id": protocol.pk, "planned_sessions": 5, "areas": ["forehead"]}


def _content(t: Target) -> dict[str, Any]:
    content = services.content_of(services.current_version(t.clinic_protocol))
    data = {k: v for k, v in content.__dict__.items() if k != "areas"}
    data["areas"] = [
        dict(row.__dict__, depth_min_mm=str(row.depth_min_mm), depth_max_mm=str(row.depth_max_mm))
        for row in content.areas
    ]
    return {
        **data,
        "outcome_measures": list(data["outcome_measures"]),
        "formula_ids": list(data["formula_ids"]),
    }


OPERATIONS: list[Operation[Target]] = [
    # Pages.
    Operation("protocols", "get", lambda t: "/treatments/protocols/", frozenset(CARE), patient_level=False),
    Operation(
        "protocol",
        "get",
        lambda t: f"/treatments/protocols/{t.clinic_protocol.pk}/",
        frozenset(CARE),
        patient_level=False,
    ),
    Operation(
        "protocol-copy",
        "post",
        lambda t: f"/treatments/protocols/{t.clinic_protocol.pk}/copy/",
        frozenset(CLINICAL),
        lambda t: {"name": "Copy"},
        patient_level=False,
    ),
    Operation(
        "protocol-edit",
        "get",
        lambda t: f"/treatments/protocols/{t.clinic_protocol.pk}/edit/",
        frozenset(CLINICAL),
        patient_level=False,
    ),
    Operation(
        "cosign-queue", "get", lambda t: "/treatments/cosign/", frozenset(DIRECTOR), patient_level=False
    ),
    Operation(
        "plans-panel",
        "get",
        lambda t: f"/treatments/patients/{t.patient.pk}/plans/panel/",
        frozenset(PLAN_VIEWERS),
    ),
    Operation(
        "plan-new", "get", lambda t: f"/treatments/patients/{t.patient.pk}/plans/new/", frozenset(CLINICAL)
    ),
    Operation("plan", "get", lambda t: f"/treatments/plans/{t.plan.pk}/", frozenset(PLAN_VIEWERS)),
    Operation("plan-edit", "get", lambda t: f"/treatments/plans/{t.plan.pk}/edit/", frozenset(CLINICAL)),
    Operation(
        "plan-activate",
        "post",
        lambda t: f"/treatments/plans/{t.plan.pk}/activate/",
        frozenset(CLINICAL),
        lambda t: {},
    ),
    Operation(
        "plan-end",
        "post",
        lambda t: f"/treatments/plans/{t.plan.pk}/end/",
        frozenset(CLINICAL),
        lambda t: {"status": "stopped", "reason": "x"},
    ),
    Operation(
        "plan-improvement",
        "post",
        lambda t: f"/treatments/plans/{t.plan.pk}/improvement/",
        frozenset(CLINICAL),
        lambda t: {},
    ),
    Operation(
        "check-in", "get", lambda t: f"/treatments/plans/{t.plan.pk}/check-in/", frozenset(DESK_AND_CLINICAL)
    ),
    Operation(
        "check-in-post",
        "post",
        lambda t: f"/treatments/plans/{t.plan.pk}/check-in/",
        frozenset(DESK_AND_CLINICAL),
        lambda t: {},
    ),
    Operation("session", "get", lambda t: f"/treatments/sessions/{t.signed.pk}/", frozenset(CLINICAL)),
    Operation("chart", "get", lambda t: f"/treatments/sessions/{t.open.pk}/chart/", frozenset(CLINICAL)),
    Operation(
        "chart-post",
        "post",
        lambda t: f"/treatments/sessions/{t.open.pk}/chart/",
        frozenset(CLINICAL),
        lambda t: {"areas-TOTAL_FORMS": "0", "areas-INITIAL_FORMS": "0"},
    ),
    Operation(
        "sign", "post", lambda t: f"/treatments/sessions/{t.open.pk}/sign/", frozenset(CLINICAL), lambda t: {}
    ),
    Operation("amend", "get", lambda t: f"/treatments/sessions/{t.signed.pk}/amend/", frozenset(CLINICAL)),
    Operation(
        "cosign",
        "post",
        lambda t: f"/treatments/sessions/{t.signed.pk}/cosign/",
        frozenset(DIRECTOR),
        lambda t: {"note": "ok"},
    ),
    Operation(
        "aftercare",
        "get",
        lambda t: f"/treatments/sessions/{t.signed.pk}/aftercare/",
        frozenset(AFTERCARE_VIEWERS),
    ),
    Operation(
        "aftercare-pdf",
        "get",
        lambda t: f"/treatments/sessions/{t.signed.pk}/aftercare.pdf",
        frozenset(AFTERCARE_VIEWERS),
    ),
    Operation(
        "portal", "get", lambda t: "/treatments/portal/", frozenset({"patient-own"}), patient_level=False
    ),
    # API.
    Operation("api-protocols", "get", lambda t: "/api/v1/protocols", frozenset(CARE), patient_level=False),
    Operation(
        "api-protocol",
        "get",
        lambda t: f"/api/v1/protocols/{t.clinic_protocol.pk}",
        frozenset(CARE),
        patient_level=False,
    ),
    Operation(
        "api-protocol-copy",
        "post",
        lambda t: f"/api/v1/protocols/{t.clinic_protocol.pk}/copy",
        frozenset(CLINICAL),
        lambda t: {"name": "API copy"},
        True,
        patient_level=False,
    ),
    Operation(
        "api-protocol-revise",
        "put",
        lambda t: f"/api/v1/protocols/{t.clinic_protocol.pk}",
        frozenset(CLINICAL),
        _content,
        True,
        patient_level=False,
    ),
    Operation(
        "api-cosign-queue",
        "get",
        lambda t: "/api/v1/sessions/cosign-queue",
        frozenset(DIRECTOR),
        patient_level=False,
    ),
    Operation(
        "api-plans", "get", lambda t: f"/api/v1/patients/{t.patient.pk}/plans", frozenset(PLAN_VIEWERS)
    ),
    Operation(
        "api-plan-create",
        "post",
        lambda t: f"/api/v1/patients/{t.patient.pk}/plans",
        frozenset(CLINICAL),
        _plan_body,
        True,
    ),
    Operation("api-plan", "get", lambda t: f"/api/v1/plans/{t.plan.pk}", frozenset(PLAN_VIEWERS)),
    Operation(
        "api-plan-update",
        "put",
        lambda t: f"/api/v1/plans/{t.plan.pk}",
        frozenset(CLINICAL),
        lambda t: {"planned_sessions": 6, "areas": ["forehead", "cheek-left", "cheek-right", "neck"]},
        True,
    ),
    Operation(
        "api-plan-activate",
        "post",
        lambda t: f"/api/v1/plans/{t.plan.pk}/activate",
        frozenset(CLINICAL),
        lambda t: {},
        True,
    ),
    Operation(
        "api-plan-end",
        "post",
        lambda t: f"/api/v1/plans/{t.plan.pk}/end",
        frozenset(CLINICAL),
        lambda t: {"status": "stopped", "reason": "x"},
        True,
    ),
    Operation(
        "api-plan-improvement",
        "post",
        lambda t: f"/api/v1/plans/{t.plan.pk}/improvement",
        frozenset(CLINICAL),
        lambda t: {"on": timezone.localdate().isoformat()},
        True,
    ),
    Operation("api-gate", "get", lambda t: f"/api/v1/plans/{t.plan.pk}/gate", frozenset(DESK_AND_CLINICAL)),
    Operation(
        "api-check-in",
        "post",
        lambda t: f"/api/v1/plans/{t.plan.pk}/sessions",
        frozenset(DESK_AND_CLINICAL),
        lambda t: {},
        True,
    ),
    Operation("api-session", "get", lambda t: f"/api/v1/sessions/{t.signed.pk}", frozenset(CLINICAL)),
    Operation(
        "api-chart",
        "put",
        lambda t: f"/api/v1/sessions/{t.open.pk}/chart",
        frozenset(CLINICAL),
        _chart_body,
        True,
    ),
    Operation(
        "api-sign",
        "post",
        lambda t: f"/api/v1/sessions/{t.open.pk}/sign",
        frozenset(CLINICAL),
        lambda t: {},
        True,
    ),
    Operation(
        "api-amend",
        "post",
        lambda t: f"/api/v1/sessions/{t.signed.pk}/amendments",
        frozenset(CLINICAL),
        lambda t: {**_chart_body(t), "reason": "typo"},
        True,
    ),
    Operation(
        "api-cosign",
        "post",
        lambda t: f"/api/v1/sessions/{t.signed.pk}/cosign",
        frozenset(DIRECTOR),
        lambda t: {},
        True,
    ),
    Operation(
        "api-aftercare",
        "get",
        lambda t: f"/api/v1/sessions/{t.signed.pk}/aftercare",
        frozenset(AFTERCARE_VIEWERS),
    ),
    Operation(
        "api-aftercare-pdf",
        "get",
        lambda t: f"/api/v1/sessions/{t.signed.pk}/aftercare.pdf",
        frozenset(AFTERCARE_VIEWERS),
    ),
]


def _target(patient: Patient, practitioner: User, director: User, formulary: Setup) -> Target:
    """An active plan with a signed session (ten days ago) and an open one today, and a clinic protocol."""
    caller = Caller(user=practitioner)
    candidate(patient, practitioner)
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    plan = services.plan_create(
        caller=caller,
        patient=patient,
        protocol=protocol,
        data=services.PlanIn(planned_sessions=6, areas=["forehead", "cheek-left", "cheek-right", "neck"]),
    )
    plan = services.plan_activate(caller=caller, plan=plan)
    earlier = timezone.now() - timedelta(days=10)
    give_consent(plan, practitioner, now=earlier)
    first_preparation = formulary.prepare(patient, now=earlier)
    signed = services.session_check_in(caller=caller, plan=plan, now=earlier)
    area = {
        "area": "forehead",
        "technique": "nappage",
        "depth_mm": Decimal("1.5"),
        "injections": 20,
        "volume_per_point_ml": Decimal("0.02"),
    }
    from mesoclinic.treatments.models import BodyArea

    point = [centre(BodyArea.objects.get(code="forehead"))]
    services.session_chart(
        caller=caller,
        session=signed,
        chart=services.ChartIn(
            areas=[services.ChartAreaIn(**area, points=point, preparation_id=first_preparation.pk)]  # type: ignore[arg-type]
        ),
        now=earlier,
    )
    services.session_sign(caller=caller, session=signed, now=earlier)
    preparation = formulary.prepare(patient)
    opened = services.session_check_in(caller=caller, plan=plan)
    copy = services.protocol_copy(
        caller=Caller(user=director), clinic=patient.clinic, protocol=protocol, name=f"Ours {patient.pk}"
    )
    return Target(patient, plan, signed, opened, preparation.pk, copy)


def _world_targets(world: World) -> dict[str, Target]:
    ensure_seed()
    for role in ("practitioner", "medical_director"):
        LicenceFactory.create(
            user=world.users[role], jurisdiction=world.clinic.jurisdiction, expires_on=date(2099, 1, 1)
        )
    practitioner, director = world.users["practitioner"], world.users["medical_director"]
    own_formulary = build(world.clinic, director)
    outsider = staff(world.other_clinic, Role.PRACTITIONER)
    outside_director = staff(world.other_clinic, Role.MEDICAL_DIRECTOR)
    for user in (outsider, outside_director):
        LicenceFactory.create(
            user=user, jurisdiction=world.other_clinic.jurisdiction, expires_on=date(2099, 1, 1)
        )
    other_formulary = build(world.other_clinic, outside_director, prefix="O-")
    return {
        "own": _target(world.own_patient, practitioner, director, own_formulary),
        "other": _target(world.patient, practitioner, director, own_formulary),
        "foreign": _target(world.foreign_patient, outsider, outside_director, other_formulary),
    }


def test_treatment_operation_matrix(world: World) -> None:
    """One world for every role (it is costly to build); each call is rolled back."""
    targets = _world_targets(world)
    wrong = matrix_problems(world, OPERATIONS, targets)
    assert wrong == []


def test_every_treatments_route_is_in_the_matrix() -> None:
    pages = sorted(p for p in route_patterns(get_resolver()) if p.startswith("treatments/"))
    covered = {op.name for op in OPERATIONS if not op.name.startswith("api-")}
    assert len(pages) == 21 and len(covered) == 23  # 21 routes; check-in and chart have a GET and a POST
    api_paths = {
        (method.lower(), path)
        for path, item in client_for_openapi().items()
        for method in item
        if path.startswith(("/api/v1/protocols", "/api/v1/plans", "/api/v1/sessions")) or "/plans" in path
    }
    api_ops = [op for op in OPERATIONS if op.name.startswith("api-")]
    assert len(api_paths) == len(api_ops), sorted(api_paths)


def client_for_openapi() -> dict[str, dict[str, Any]]:
    from mesoclinic.api import api

    schema: dict[str, dict[str, Any]] = api.get_openapi_schema()["paths"]
    return schema


@pytest.mark.parametrize("role", ALL_ROLES)
def test_the_catalogue_is_readable_by_any_signed_in_user(world: World, role: str) -> None:
    ensure_seed()
    client = client_for(world.users[role])
    assert client.get("/api/v1/body-areas").status_code == 200
    assert client.get("/api/v1/techniques").status_code == 200
    assert Client().get("/api/v1/body-areas").status_code == 401


IDOR_URLS = [
    "/treatments/plans/{plan}/",
    "/treatments/plans/{plan}/check-in/",
    "/treatments/plans/{plan}/activate/",
    "/treatments/sessions/{session}/",
    "/treatments/sessions/{session}/chart/",
    "/treatments/sessions/{session}/sign/",
    "/treatments/sessions/{session}/aftercare.pdf",
    "/api/v1/plans/{plan}",
    "/api/v1/plans/{plan}/gate",
    "/api/v1/plans/{plan}/sessions",
    "/api/v1/sessions/{session}",
    "/api/v1/sessions/{session}/chart",
    "/api/v1/sessions/{session}/sign",
    "/api/v1/sessions/{session}/aftercare.pdf",
]


def test_idor_probes_with_foreign_ids(world: World) -> None:
    """targets.md #2: every URL with a plan or session id, every method, with another clinic's id: never 2xx
    or
    3xx, nothing about the record in the answer, and the same answer as for an id that does not exist."""
    targets = _world_targets(world)
    foreign = targets["foreign"]
    client = client_for(world.users["medical_director"])
    wrong: list[str] = []
    for url in IDOR_URLS:
        for method in ("get", "post", "put", "delete"):
            answers = []
            for plan, session in ((foreign.plan.pk, foreign.signed.pk), (999999, 999999)):
                path = url.format(plan=plan, session=session)
                with transaction.atomic():
                    response = (
                        client.get(path)
                        if method == "get"
                        else getattr(client, method)(path, data="{}", content_type="application/json")
                    )
                    transaction.set_rollback(True)
                answers.append((response.status_code, response.content))
            (status, content), (missing_status, missing_content) = answers
            if status not in {403, 404, 405, 422} or foreign.patient.family_name.encode() in content:
                wrong.append(f"{method} {url}: {status}")
            elif status != missing_status:
                wrong.append(f"{method} {url}: {status} for a foreign id, {missing_status} for a missing one")
    assert wrong == []
    foreign.signed.refresh_from_db()
    assert foreign.signed.cosigned_at is None and foreign.plan.status == "active"

"""targets.md #1 and #2 for consent and patient education: every role × every page and API operation ×
{own record, other patient, other clinic}. The expectations are written out by hand, not derived from the
policy module. One world for every role; each call runs in a savepoint that is rolled back.

The targets' consents are withdrawn, so that an authorised countersignature is refused at once (no PDF is
printed per call); the happy paths are in test_consent*.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.test import Client
from django.urls import get_resolver

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.consent import services
from mesoclinic.consent.models import Article, ConsentTemplate
from mesoclinic.patients.models import Patient
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import Protocol, TreatmentPlan
from tests.authorisation_matrix import Operation, call, matrix_problems, route_patterns
from tests.conftest import World, client_for
from tests.consent_support import ensure_consent_seed, ensure_gate_hook, sign_consent
from tests.factories import staff
from tests.treatments_support import ensure_seed

CARE = frozenset({"clinic_admin", "practitioner", "medical_director", "front_desk"})
CONSENT = frozenset({"practitioner", "medical_director", "front_desk", "patient-own"})
COUNTERSIGN = frozenset({"practitioner", "medical_director"})
TEMPLATE_MANAGE = frozenset({"clinic_admin", "medical_director"})
EDUCATION_MANAGE = frozenset({"clinic_admin", "practitioner", "medical_director"})
PATIENT = frozenset({"patient-own"})


@dataclass
class Target:
    patient: Patient
    plan: TreatmentPlan
    consent_id: int
    template_id: int
    article_id: int


def _template_body(t: Target) -> dict[str, Any]:
    return {"title": "T", "procedure": "P", "risks": "R", "evidence": "E", "declaration": "D"}


def _sign_body(t: Target) -> dict[str, Any]:
    """Well-formed, so that the answer is about who asks; the empty signature is then refused (422)."""
    return {
        "patient_id": t.patient.pk,
        "template_version_id": 1,
        "text_sha256": "0" * 64,
        "typed_name": "",
        "signature": "",
    }


OPERATIONS: list[Operation[Target]] = [
    # Pages.
    Operation("home", "get", lambda t: "/consent/", CARE, patient_level=False),
    Operation("template", "get", lambda t: f"/consent/templates/{t.template_id}/", CARE, patient_level=False),
    Operation(
        "template-edit",
        "get",
        lambda t: f"/consent/templates/{t.template_id}/edit/",
        TEMPLATE_MANAGE,
        patient_level=False,
    ),
    Operation(
        "template-edit-post",
        "post",
        lambda t: f"/consent/templates/{t.template_id}/edit/",
        TEMPLATE_MANAGE,
        lambda t: {},
        patient_level=False,
    ),
    Operation("article", "get", lambda t: f"/consent/education/{t.article_id}/", CARE, patient_level=False),
    Operation(
        "article-edit",
        "get",
        lambda t: f"/consent/education/{t.article_id}/edit/",
        EDUCATION_MANAGE,
        patient_level=False,
    ),
    Operation(
        "article-edit-post",
        "post",
        lambda t: f"/consent/education/{t.article_id}/edit/",
        EDUCATION_MANAGE,
        lambda t: {},
        patient_level=False,
    ),
    Operation("settings", "get", lambda t: "/consent/settings/", TEMPLATE_MANAGE, patient_level=False),
    Operation(
        "settings-post",
        "post",
        lambda t: "/consent/settings/",
        TEMPLATE_MANAGE,
        lambda t: {},
        patient_level=False,
    ),
    Operation("panel", "get", lambda t: f"/consent/patients/{t.patient.pk}/panel/", CONSENT),
    Operation("plan", "get", lambda t: f"/consent/plans/{t.plan.pk}/", CONSENT),
    Operation("sign", "get", lambda t: f"/consent/plans/{t.plan.pk}/sign/", CONSENT),
    Operation("sign-post", "post", lambda t: f"/consent/plans/{t.plan.pk}/sign/", CONSENT, lambda t: {}),
    Operation("consent", "get", lambda t: f"/consent/consents/{t.consent_id}/", CONSENT),
    Operation(
        "countersign",
        "post",
        lambda t: f"/consent/consents/{t.consent_id}/countersign/",
        COUNTERSIGN,
        lambda t: {},
    ),
    Operation(
        "withdraw",
        "post",
        lambda t: f"/consent/consents/{t.consent_id}/withdraw/",
        CONSENT,
        lambda t: {"reason": ""},
    ),
    Operation("pdf", "get", lambda t: f"/consent/consents/{t.consent_id}/consent.pdf", CONSENT),
    Operation("portal", "get", lambda t: "/consent/portal/", PATIENT, patient_level=False),
    Operation(
        "portal-article", "get", lambda t: "/consent/portal/education/evidence/", PATIENT, patient_level=False
    ),
    # API.
    Operation(
        "api-settings", "get", lambda t: "/api/v1/consent/settings", TEMPLATE_MANAGE, patient_level=False
    ),
    Operation(
        "api-settings-put",
        "put",
        lambda t: "/api/v1/consent/settings",
        TEMPLATE_MANAGE,
        lambda t: {"validity_months": 12},
        True,
        patient_level=False,
    ),
    Operation("api-templates", "get", lambda t: "/api/v1/consent/templates", CARE, patient_level=False),
    Operation(
        "api-template",
        "get",
        lambda t: f"/api/v1/consent/templates/{t.template_id}",
        CARE,
        patient_level=False,
    ),
    Operation(
        "api-template-revise",
        "post",
        lambda t: f"/api/v1/consent/templates/{t.template_id}/versions",
        TEMPLATE_MANAGE,
        _template_body,
        True,
        patient_level=False,
    ),
    Operation("api-articles", "get", lambda t: "/api/v1/education/articles", CARE, patient_level=False),
    Operation(
        "api-article",
        "get",
        lambda t: f"/api/v1/education/articles/{t.article_id}",
        CARE,
        patient_level=False,
    ),
    Operation(
        "api-article-revise",
        "post",
        lambda t: f"/api/v1/education/articles/{t.article_id}/versions",
        EDUCATION_MANAGE,
        lambda t: {"title": "T", "body": "B"},
        True,
        patient_level=False,
    ),
    Operation("api-patient-consents", "get", lambda t: f"/api/v1/patients/{t.patient.pk}/consents", CONSENT),
    Operation("api-plan", "get", lambda t: f"/api/v1/consent/plan/{t.plan.pk}", CONSENT),
    Operation("api-document", "get", lambda t: f"/api/v1/consent/plan/{t.plan.pk}/document", CONSENT),
    Operation(
        "api-sign",
        "post",
        lambda t: f"/api/v1/consent/plan/{t.plan.pk}/signatures",
        CONSENT,
        _sign_body,
        True,
    ),
    Operation("api-consent", "get", lambda t: f"/api/v1/consent/consents/{t.consent_id}", CONSENT),
    Operation(
        "api-countersign",
        "post",
        lambda t: f"/api/v1/consent/consents/{t.consent_id}/countersign",
        COUNTERSIGN,
        lambda t: {},
        True,
    ),
    Operation(
        "api-withdraw",
        "post",
        lambda t: f"/api/v1/consent/consents/{t.consent_id}/withdraw",
        CONSENT,
        lambda t: {},
        True,
    ),
    Operation("api-pdf", "get", lambda t: f"/api/v1/consent/consents/{t.consent_id}/pdf", CONSENT),
]


def _target(patient: Patient, practitioner: User) -> Target:
    """A draft plan with a consent the patient signed and then withdrew."""
    plan = treatments.plan_create(
        caller=Caller(user=practitioner),
        patient=patient,
        protocol=Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation"),
        data=treatments.PlanIn(planned_sessions=4, areas=["forehead", "neck"]),
    )
    desk = staff(patient.clinic, Role.FRONT_DESK)
    consent = sign_consent(plan, user=desk)
    services.consent_withdraw(
        caller=Caller(user=desk),
        consent=services.consent_get(caller=Caller(user=desk), consent_id=consent.pk),
    )
    template = ConsentTemplate.objects.filter(clinic__isnull=True).order_by("pk").first()
    article = Article.objects.filter(clinic__isnull=True).order_by("pk").first()
    assert template is not None and article is not None
    return Target(patient, plan, consent.pk, template.pk, article.pk)


def _world_targets(world: World) -> dict[str, Target]:
    ensure_seed()
    ensure_consent_seed()
    ensure_gate_hook()
    outsider = staff(world.other_clinic, Role.PRACTITIONER)
    return {
        "own": _target(world.own_patient, world.users["practitioner"]),
        "other": _target(world.patient, world.users["practitioner"]),
        "foreign": _target(world.foreign_patient, outsider),
    }


def test_consent_operation_matrix(world: World) -> None:
    targets = _world_targets(world)
    wrong = matrix_problems(world, OPERATIONS, targets)
    assert wrong == [], "\n".join(wrong)
    # Anonymous: the pages send to sign-in, the API answers 401.
    anonymous = Client()
    for operation in OPERATIONS:
        status = call(anonymous, operation, targets["own"])
        assert status == (401 if operation.name.startswith("api-") else 302), operation.name


def test_every_consent_route_is_in_the_matrix() -> None:
    pages = sorted(p for p in route_patterns(get_resolver()) if p.startswith("consent/"))
    covered = [op for op in OPERATIONS if not op.name.startswith("api-")]
    assert len(pages) == 15 and len(covered) == 19  # 15 routes; the edits, settings and signing also POST
    from mesoclinic.api import api

    paths: dict[str, dict[str, Any]] = api.get_openapi_schema()["paths"]
    consent_ops = {
        (method, path)
        for path, item in paths.items()
        for method in item
        if path.startswith(("/api/v1/consent/", "/api/v1/education/")) or path.endswith("/consents")
    }
    assert len(consent_ops) == len([op for op in OPERATIONS if op.name.startswith("api-")]), sorted(
        consent_ops
    )


def test_idor_probes_with_foreign_ids(world: World) -> None:
    """targets.md #2: every URL with a consent, plan, patient, template or article id, every method, with
    another clinic's id: never 2xx or 3xx, nothing of the record in the answer, the same answer as for an id
    that does not exist."""
    targets = _world_targets(world)
    foreign = targets["foreign"]
    outsider = User.objects.filter(
        memberships__clinic=world.other_clinic, memberships__role=Role.PRACTITIONER
    ).get()
    caller = Caller(user=outsider)
    own_template = services.template_revise(
        caller=Caller(user=staff(world.other_clinic, Role.MEDICAL_DIRECTOR)),
        clinic=world.other_clinic,
        template=ConsentTemplate.objects.get(pk=foreign.template_id),
        content=services.TemplateContent("T", "P", "R", "E", "D"),
    ).template_id
    own_article = services.article_revise(
        caller=caller,
        clinic=world.other_clinic,
        article=Article.objects.get(pk=foreign.article_id),
        title="T",
        body="B",
    ).article_id
    ids = {
        "consent": foreign.consent_id,
        "plan": foreign.plan.pk,
        "patient": foreign.patient.pk,
        "template": own_template,
        "article": own_article,
    }
    urls = [op.url(Target(Patient(pk=0), TreatmentPlan(pk=0), 0, 0, 0)) for op in OPERATIONS]
    probes = sorted({url.replace("/0/", "/{id}/").replace("/0", "/{id}") for url in urls if "/0" in url})
    client = client_for(world.users["medical_director"])
    wrong: list[str] = []
    for url in probes:
        kind = next(
            name
            for name, marker in (
                ("consent", "/consents/"),
                ("plan", "/plan"),
                ("patient", "/patients/"),
                ("template", "/templates/"),
                ("article", "/education/"),
            )
            if marker in url
        )
        for method in ("get", "post", "put", "delete"):
            answers = []
            for value in (ids[kind], 999_999, 2**70):
                path = url.replace("{id}", str(value))
                with transaction.atomic():
                    response = (
                        client.get(path)
                        if method == "get"
                        else getattr(client, method)(path, data="{}", content_type="application/json")
                    )
                    transaction.set_rollback(True)
                answers.append((response.status_code, response.content))
            (status, content), (missing, _content), (huge, _huge) = answers
            if status not in {403, 404, 405, 422} or foreign.patient.family_name.encode() in content:
                wrong.append(f"{method} {url}: {status}")
            elif status != missing or huge != missing:
                wrong.append(f"{method} {url}: {status} foreign, {missing} missing, {huge} huge")
    assert len(probes) >= 15
    assert wrong == [], "\n".join(wrong)
    assert (
        services.consent_get(caller=caller, consent_id=foreign.consent_id, audit=False).withdrawn_at
        is not None
    )

"""Consents built through the services, as the portal and the desk make them (issue 6).

``give_consent(plan)`` is the one call another app's tests need for a plan to pass the check-in gate's
``no-consent`` rule: the patient reads and signs, the practitioner countersigns (one PDF)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.apps import apps

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.consent import services
from mesoclinic.consent.models import Article, Consent, ConsentTemplate, Countersignature
from mesoclinic.consent.seed import load
from mesoclinic.consent.signature import sample_signature
from mesoclinic.treatments.models import TreatmentPlan
from mesoclinic.treatments.services import GATE_HOOKS, register_gate_hook
from tests.factories import staff


def ensure_consent_seed() -> None:
    """The seeded library and templates come from a data migration; put them back after a flush."""
    if not (Article.objects.exists() and ConsentTemplate.objects.exists()):
        load(apps, None)


def ensure_gate_hook() -> None:
    """The hook ConsentConfig.ready registers (a test elsewhere may have replaced it for a while)."""
    if GATE_HOOKS.get("no-consent") is not services.consent_gate:
        register_gate_hook("no-consent", services.consent_gate)


def signer_of(plan: TreatmentPlan) -> User:
    """Who signs for the patient: their portal account, else a front-desk member presenting the tablet."""
    patient = plan.patient
    if patient.user_id is not None:
        return User.objects.get(pk=patient.user_id)
    desk = User.objects.filter(
        memberships__clinic_id=plan.clinic_id, memberships__role=Role.FRONT_DESK, memberships__is_active=True
    ).first()
    return desk or staff(plan.clinic, Role.FRONT_DESK)


def set_price(plan: TreatmentPlan, price: str = "350.00", *, months: int = 12) -> None:
    admin = staff(plan.clinic, Role.CLINIC_ADMIN)
    services.terms_update(
        caller=Caller(user=admin), clinic=plan.clinic, validity_months=months, prices={"": Decimal(price)}
    )


def sign_consent(
    plan: TreatmentPlan,
    *,
    user: User | None = None,
    now: datetime | None = None,
    typed_name: str | None = None,
    signature: bytes | str | None = None,
    ip: str | None = "203.0.113.7",
) -> Consent:
    ensure_consent_seed()
    plan = TreatmentPlan.objects.select_related(
        "clinic", "patient__clinic", "protocol_version__protocol"
    ).get(pk=plan.pk)
    caller = Caller(user=user or signer_of(plan), ip=ip)
    document = services.consent_document(caller=caller, plan=plan, now=now)
    return services.consent_sign(
        caller=caller,
        plan=plan,
        patient_id=plan.patient_id,
        template_version_id=document.template_version.pk,
        text_sha256=document.text_sha256,
        typed_name=typed_name if typed_name is not None else plan.patient.full_name,
        signature=signature if signature is not None else sample_signature(plan.pk),
        now=now,
    )


def countersign(consent: Consent, practitioner: User, *, now: datetime | None = None) -> Countersignature:
    caller = Caller(user=User.objects.get(pk=practitioner.pk), ip="198.51.100.4")
    return services.consent_countersign(
        caller=caller,
        consent=services.consent_get(caller=caller, consent_id=consent.pk, audit=False),
        now=now,
    )


def give_consent(
    plan: TreatmentPlan, practitioner: User | None = None, *, now: datetime | None = None
) -> Consent:
    """A signed and countersigned consent for the plan: the gate lets its sessions through."""
    ensure_gate_hook()
    consent = sign_consent(plan, now=now)
    who = (
        practitioner
        or User.objects.filter(
            memberships__clinic_id=plan.clinic_id,
            memberships__role__in=[Role.PRACTITIONER, Role.MEDICAL_DIRECTOR],
            memberships__is_active=True,
        ).first()
    )
    countersign(consent, who or staff(plan.clinic, Role.PRACTITIONER), now=now)
    return consent

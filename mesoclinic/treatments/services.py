"""Every read and write of protocols, plans and sessions: authorised by the policy, audited, atomic.

Views and the API both call these functions; the rules live in ``treatments.rules``. Stock: lots leave
stock when they are drawn into a preparation (``formulary.services.preparation_create``); a chart consumes
preparations — each by one session only, which the database enforces — and a chart may prepare new ones in
the same transaction, so that the chart and the stock it moves land together or not at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, PractitionerLicence, Role, User
from mesoclinic.accounts.policy import Perm, authorize, can, may_see_clinic
from mesoclinic.accounts.rules import LicenceFacts, licence_findings
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary import rules as formulary_rules
from mesoclinic.formulary import services as formulary
from mesoclinic.formulary.models import (
    Formula,
    FormulaComponent,
    FormulaVersion,
    Preparation,
    PreparationLine,
    ProductLimit,
)
from mesoclinic.lib.findings import Finding, FindingsRefused
from mesoclinic.patients.models import Patient
from mesoclinic.treatments import rules
from mesoclinic.treatments.models import (
    Aftercare,
    BodyArea,
    ChartedArea,
    PlanArea,
    PlanFormula,
    PlanProcedure,
    Protocol,
    ProtocolArea,
    ProtocolFormula,
    ProtocolVersion,
    SessionAmendment,
    SessionPreparation,
    Technique,
    TreatmentPlan,
    TreatmentSession,
)

_DEPTH_QUANTUM = Decimal("0.1")
_VOLUME_QUANTUM = Decimal("0.001")
_MAX_VOLUME_ML = Decimal("999")
# A preparation made this many days before a session counts as made for it (the gate checks its lots).
PREPARATION_FRESH_DAYS = 7
MAX_TEXT = 2000


def _user(caller: Caller) -> User:
    return cast(User, caller.user)


def _refuse(field_name: str, message: str) -> ValidationError:
    return ValidationError({field_name: [message]})


def _decimal(value: Any, field_name: str, *, quantum: Decimal, maximum: Decimal) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise _refuse(field_name, _("Give a number.")) from None
    if not number.is_finite() or abs(number) > maximum:
        raise _refuse(field_name, _("This number is out of range."))
    return number.quantize(quantum)


def _text(value: str, field_name: str, limit: int = MAX_TEXT) -> str:
    text = value.strip()
    if len(text) > limit:
        raise _refuse(field_name, _("At most %(count)d characters.") % {"count": limit})
    return text


# --- catalogue: body areas and techniques ----------------------------------------------------------------


def body_areas() -> list[BodyArea]:
    return list(BodyArea.objects.filter(is_active=True))


def area_label(area: BodyArea) -> str:
    return _(area.label)


def technique_label(technique: Technique) -> str:
    return _(technique.name)


def _technique_facts(technique: Technique) -> rules.TechniqueFacts:
    return rules.TechniqueFacts(
        code=technique.code,
        name=technique_label(technique),
        depth_min_mm=technique.depth_min_mm,
        depth_max_mm=technique.depth_max_mm,
        many_punctures=technique.many_punctures,
    )


# --- protocols ----------------------------------------------------------------------------------------------


def protocols_for(clinic: Clinic) -> models.QuerySet[Protocol]:
    """The seeded templates and this clinic's own protocols."""
    return Protocol.objects.filter(Q(clinic__isnull=True) | Q(clinic=clinic))


def protocol_get(
    *, caller: Caller, protocol_id: int, clinic: Clinic, perm: Perm = Perm.PROTOCOL_VIEW
) -> Protocol:
    authorize(caller.user, perm, clinic_id=clinic.pk)
    protocol = protocols_for(clinic).filter(pk=protocol_id).first()
    if protocol is None:
        raise Http404(_("Not found."))
    return protocol


def current_version(protocol: Protocol) -> ProtocolVersion:
    version = (
        ProtocolVersion.objects.filter(protocol=protocol)
        .prefetch_related(
            Prefetch("areas", queryset=ProtocolArea.objects.select_related("area", "technique")),
            Prefetch("formulas", queryset=ProtocolFormula.objects.select_related("formula")),
        )
        .order_by("-number")
        .first()
    )
    if version is None:
        raise Http404(_("This protocol has no version."))
    return version


def version_with_areas(version_id: int) -> ProtocolVersion:
    return (
        ProtocolVersion.objects.select_related("protocol")
        .prefetch_related(
            Prefetch("areas", queryset=ProtocolArea.objects.select_related("area", "technique"))
        )
        .get(pk=version_id)
    )


@dataclass(frozen=True)
class ProtocolAreaIn:
    area: str
    technique: str
    depth_min_mm: Any
    depth_max_mm: Any


@dataclass(frozen=True)
class ProtocolContent:
    sessions_min: int
    sessions_max: int
    interval_min_days: int
    interval_max_days: int
    areas: Sequence[ProtocolAreaIn]
    summary: str = ""
    formula_note: str = ""
    taper_interval_min_days: int | None = None
    taper_interval_max_days: int | None = None
    maintenance_interval_days: int | None = None
    outcome_measures: Sequence[str] = ()
    non_responder_after_sessions: int | None = None
    responder_rule: str = ""
    combinations: Sequence[str] = ()
    alternatives: Sequence[str] = ()
    aftercare: Sequence[str] = ()
    aftercare_note: str = ""
    formula_ids: Sequence[int] = ()
    source: str = ""


def content_of(version: ProtocolVersion) -> ProtocolContent:
    return ProtocolContent(
        sessions_min=version.sessions_min,
        sessions_max=version.sessions_max,
        interval_min_days=version.interval_min_days,
        interval_max_days=version.interval_max_days,
        areas=[
            ProtocolAreaIn(row.area.code, row.technique.code, row.depth_min_mm, row.depth_max_mm)
            for row in version.areas.all()
        ],
        summary=version.summary,
        formula_note=version.formula_note,
        taper_interval_min_days=version.taper_interval_min_days,
        taper_interval_max_days=version.taper_interval_max_days,
        maintenance_interval_days=version.maintenance_interval_days,
        outcome_measures=list(version.outcome_measures),
        non_responder_after_sessions=version.non_responder_after_sessions,
        responder_rule=version.responder_rule,
        combinations=list(version.combinations),
        alternatives=list(version.alternatives),
        aftercare=list(version.aftercare),
        aftercare_note=version.aftercare_note,
        formula_ids=[row.formula_id for row in version.formulas.all()],
        source=version.source,
    )


def _write_version(
    *, caller: Caller, protocol: Protocol, content: ProtocolContent, number: int
) -> ProtocolVersion:
    """Validate and write one version (inside the caller's transaction)."""
    areas = {area.code: area for area in BodyArea.objects.filter(code__in=[a.area for a in content.areas])}
    techniques = {t.code: t for t in Technique.objects.filter(code__in=[a.technique for a in content.areas])}
    errors: dict[str, list[str]] = {}
    parsed: list[tuple[BodyArea, Technique, Decimal, Decimal]] = []
    for index, row in enumerate(content.areas):
        area, technique = areas.get(row.area), techniques.get(row.technique)
        if area is None:
            errors[f"areas.{index}.area"] = [_("Unknown area.")]
            continue
        if technique is None:
            errors[f"areas.{index}.technique"] = [_("Unknown technique.")]
            continue
        try:
            low = _decimal(
                row.depth_min_mm, f"areas.{index}.depth_min_mm", quantum=_DEPTH_QUANTUM, maximum=Decimal(100)
            )
            high = _decimal(
                row.depth_max_mm, f"areas.{index}.depth_max_mm", quantum=_DEPTH_QUANTUM, maximum=Decimal(100)
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
            continue
        parsed.append((area, technique, low, high))
    if errors:
        raise ValidationError(errors)
    problems = rules.protocol_input_problems(
        sessions_min=content.sessions_min,
        sessions_max=content.sessions_max,
        interval_min_days=content.interval_min_days,
        interval_max_days=content.interval_max_days,
        taper_interval_min_days=content.taper_interval_min_days,
        taper_interval_max_days=content.taper_interval_max_days,
        areas=[(a.code, low, high, t.depth_min_mm, t.depth_max_mm) for a, t, low, high in parsed],
        measures=content.outcome_measures,
        procedures=[*content.combinations, *content.alternatives],
        aftercare=content.aftercare,
    )
    if content.non_responder_after_sessions is not None and not (
        1 <= content.non_responder_after_sessions <= content.sessions_max
    ):
        problems.setdefault("non_responder_after_sessions", []).append(
            _("Judge the response after 1 to %(max)d sessions.") % {"max": content.sessions_max}
        )
    if content.maintenance_interval_days is not None and not 1 <= content.maintenance_interval_days <= 730:
        problems.setdefault("maintenance_interval_days", []).append(_("From 1 to 730 days."))
    formulas: list[Formula] = []
    if content.formula_ids:
        if protocol.clinic_id is None:
            problems.setdefault("formula_ids", []).append(_("A template names its typical formula in words."))
        else:
            found = {
                f.pk: f
                for f in Formula.objects.filter(pk__in=content.formula_ids, clinic_id=protocol.clinic_id)
            }
            missing = [str(pk) for pk in content.formula_ids if pk not in found]
            if missing:
                problems.setdefault("formula_ids", []).append(
                    _("Unknown formula: %(ids)s.") % {"ids": ", ".join(missing)}
                )
            formulas = list(found.values())
    for name, value, limit in (
        ("summary", content.summary, MAX_TEXT),
        ("formula_note", content.formula_note, MAX_TEXT),
        ("responder_rule", content.responder_rule, 500),
        ("aftercare_note", content.aftercare_note, MAX_TEXT),
        ("source", content.source, 500),
    ):
        if len(value) > limit:
            problems.setdefault(name, []).append(_("At most %(count)d characters.") % {"count": limit})
    if problems:
        raise ValidationError(problems)
    version = ProtocolVersion.objects.create(
        protocol=protocol,
        number=number,
        summary=content.summary.strip(),
        formula_note=content.formula_note.strip(),
        sessions_min=content.sessions_min,
        sessions_max=content.sessions_max,
        interval_min_days=content.interval_min_days,
        interval_max_days=content.interval_max_days,
        taper_interval_min_days=content.taper_interval_min_days,
        taper_interval_max_days=content.taper_interval_max_days,
        maintenance_interval_days=content.maintenance_interval_days,
        outcome_measures=list(dict.fromkeys(content.outcome_measures)),
        non_responder_after_sessions=content.non_responder_after_sessions,
        responder_rule=content.responder_rule.strip(),
        combinations=list(dict.fromkeys(content.combinations)),
        alternatives=list(dict.fromkeys(content.alternatives)),
        aftercare=list(dict.fromkeys(content.aftercare)),
        aftercare_note=content.aftercare_note.strip(),
        source=content.source.strip(),
        created_by=_user(caller),
    )
    ProtocolArea.objects.bulk_create(
        ProtocolArea(version=version, area=area, technique=technique, depth_min_mm=low, depth_max_mm=high)
        for area, technique, low, high in parsed
    )
    ProtocolFormula.objects.bulk_create(ProtocolFormula(version=version, formula=f) for f in formulas)
    return version


def protocol_copy(*, caller: Caller, clinic: Clinic, protocol: Protocol, name: str = "") -> Protocol:
    """Copy a template (or another of the clinic's protocols) into the clinic, as its version 1."""
    authorize(caller.user, Perm.PROTOCOL_MANAGE, clinic_id=clinic.pk)
    source_version = current_version(protocol)
    content = content_of(source_version)
    if protocol.clinic_id != clinic.pk:
        content = ProtocolContent(**{**content.__dict__, "formula_ids": ()})
    title = _text(name or protocol.name, "name", 200)
    if not title:
        raise _refuse("name", _("Name the protocol."))
    with transaction.atomic():
        base = protocol.code[:50]
        taken = set(
            Protocol.objects.filter(clinic=clinic, code__startswith=base).values_list("code", flat=True)
        )
        code, suffix = base, 1
        while code in taken:
            suffix += 1
            code = f"{base}-{suffix}"
        if Protocol.objects.filter(clinic=clinic, name=title).exists():
            raise _refuse("name", _("The clinic already has a protocol with this name."))
        copy = Protocol.objects.create(
            clinic=clinic, code=code, name=title, indication=protocol.indication, copied_from=protocol
        )
        _write_version(caller=caller, protocol=copy, content=content, number=1)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.PROTOCOL_WRITE,
            clinic_id=clinic.pk,
            obj=copy,
            detail={"copied_from": protocol.pk, "version": 1},
        )
    return copy


def protocol_revise(*, caller: Caller, protocol: Protocol, content: ProtocolContent) -> ProtocolVersion:
    """Edit a clinic protocol: a new version; plans keep the version they were made from."""
    if protocol.clinic_id is None:
        raise PermissionDenied
    authorize(caller.user, Perm.PROTOCOL_MANAGE, clinic_id=protocol.clinic_id)
    with transaction.atomic():
        locked = Protocol.objects.select_for_update().get(pk=protocol.pk)
        last = (
            ProtocolVersion.objects.filter(protocol=locked)
            .order_by("-number")
            .values_list("number", flat=True)
            .first()
            or 0
        )
        version = _write_version(caller=caller, protocol=locked, content=content, number=last + 1)
        audit_record(
            actor=caller.actor(protocol.clinic_id),
            action=Action.PROTOCOL_WRITE,
            clinic_id=protocol.clinic_id,
            obj=locked,
            detail={"version": version.number},
        )
    return version


# --- plans --------------------------------------------------------------------------------------------------


def _plan_queryset() -> models.QuerySet[TreatmentPlan]:
    return TreatmentPlan.objects.select_related(
        "patient__clinic", "clinic", "protocol_version__protocol", "created_by", "activated_by"
    )


def plan_get(
    *, caller: Caller, plan_id: int, perm: Perm = Perm.PLAN_VIEW, audit: bool = True
) -> TreatmentPlan:
    """The plan, if the caller may act on it: another clinic's or a missing id is a 404, a visible plan
    without the right a 403. Audited as a read of the patient's record."""
    plan = _plan_queryset().filter(pk=plan_id).first()
    if plan is None or not may_see_clinic(caller.user, plan.clinic_id, plan.patient):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=plan.clinic_id, patient=plan.patient)
    if audit:
        audit_record(
            actor=caller.actor(plan.clinic_id),
            action=Action.PLAN_READ,
            clinic_id=plan.clinic_id,
            patient_id=plan.patient_id,
            obj=plan,
        )
    return plan


def plans_of(*, caller: Caller, patient: Patient, audit: bool = True) -> list[TreatmentPlan]:
    authorize(caller.user, Perm.PLAN_VIEW, clinic_id=patient.clinic_id, patient=patient)
    plans: list[TreatmentPlan] = list(
        TreatmentPlan.objects.filter(patient=patient)
        .select_related("protocol_version__protocol")
        .annotate(done=Count("sessions", filter=Q(sessions__status=TreatmentSession.Status.SIGNED)))
        .order_by("-created_at", "-id")
    )
    if audit:
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.PLAN_READ,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            detail={"plans": [plan.pk for plan in plans]},
        )
    return plans


@dataclass(frozen=True)
class PlanIn:
    planned_sessions: int
    areas: Sequence[str]
    formula_ids: Sequence[int] = ()
    procedures: Sequence[tuple[str, str]] = ()  # (code, note)
    goals: str = ""


def _check_plan_input(version: ProtocolVersion, data: PlanIn, clinic: Clinic) -> list[Formula]:
    problems = rules.plan_input_problems(
        planned_sessions=data.planned_sessions,
        sessions_min=version.sessions_min,
        sessions_max=version.sessions_max,
        areas=list(data.areas),
        allowed_areas=[row.area.code for row in version.areas.all()],
        procedures=[code for code, _note in data.procedures],
    )
    if len(data.areas) != len(set(data.areas)):
        problems.setdefault("areas", []).append(_("Each area once."))
    formulas = list(Formula.objects.filter(pk__in=data.formula_ids, clinic=clinic, is_active=True))
    if len(formulas) != len(set(data.formula_ids)):
        problems.setdefault("formula_ids", []).append(_("Unknown or inactive formula."))
    if len(data.goals) > MAX_TEXT:
        problems.setdefault("goals", []).append(_("At most %(count)d characters.") % {"count": MAX_TEXT})
    if any(len(note) > 300 for _code, note in data.procedures):
        problems.setdefault("procedures", []).append(_("A note is at most 300 characters."))
    if len(data.procedures) > 20:
        problems.setdefault("procedures", []).append(_("At most 20 procedures."))
    if problems:
        raise ValidationError(problems)
    return formulas


def _write_plan_parts(plan: TreatmentPlan, data: PlanIn, formulas: Sequence[Formula]) -> None:
    PlanArea.objects.filter(plan=plan).delete()
    PlanFormula.objects.filter(plan=plan).delete()
    PlanProcedure.objects.filter(plan=plan).delete()
    by_code = {area.code: area for area in BodyArea.objects.filter(code__in=data.areas)}
    PlanArea.objects.bulk_create(PlanArea(plan=plan, area=by_code[code]) for code in data.areas)
    PlanFormula.objects.bulk_create(PlanFormula(plan=plan, formula=formula) for formula in formulas)
    PlanProcedure.objects.bulk_create(
        PlanProcedure(plan=plan, procedure=code, note=note.strip(), position=index)
        for index, (code, note) in enumerate(data.procedures)
    )


def plan_create(*, caller: Caller, patient: Patient, protocol: Protocol, data: PlanIn) -> TreatmentPlan:
    """A draft plan for the patient from the protocol's current version."""
    authorize(caller.user, Perm.PLAN_MANAGE, clinic_id=patient.clinic_id, patient=patient)
    if protocol.clinic_id not in (None, patient.clinic_id) or not protocol.is_active:
        raise _refuse("protocol_id", _("Unknown protocol."))
    version = current_version(protocol)
    formulas = _check_plan_input(version, data, patient.clinic)
    with transaction.atomic():
        plan = TreatmentPlan.objects.create(
            clinic=patient.clinic,
            patient=patient,
            protocol_version=version,
            indication=protocol.indication,
            planned_sessions=data.planned_sessions,
            goals=data.goals.strip(),
            created_at=timezone.now(),
            created_by=_user(caller),
        )
        _write_plan_parts(plan, data, formulas)
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.PLAN_WRITE,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=plan,
            detail={"created": True, "protocol_version": version.pk, "areas": list(data.areas)},
        )
    return plan


def plan_update(*, caller: Caller, plan: TreatmentPlan, data: PlanIn) -> TreatmentPlan:
    """Edit a draft plan; an active plan may change its planned sessions and combined procedures only."""
    authorize(caller.user, Perm.PLAN_MANAGE, clinic_id=plan.clinic_id, patient=plan.patient)
    with transaction.atomic():
        locked = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
        version = ProtocolVersion.objects.prefetch_related("areas__area").get(pk=locked.protocol_version_id)
        if locked.status not in (TreatmentPlan.Status.DRAFT, TreatmentPlan.Status.ACTIVE):
            raise _refuse("status", _("A completed or stopped plan cannot change."))
        if locked.status == TreatmentPlan.Status.ACTIVE:
            current_areas = list(locked.areas.values_list("area__code", flat=True))
            current_formulas = list(locked.formulas.values_list("formula_id", flat=True))
            if sorted(data.areas) != sorted(current_areas) or sorted(data.formula_ids) != sorted(
                current_formulas
            ):
                raise _refuse(
                    "areas", _("An active plan keeps its areas and formulas: stop it and make a new plan.")
                )
            done = locked.sessions.count()
            if data.planned_sessions < done:
                raise _refuse("planned_sessions", _("%(done)d sessions are done already.") % {"done": done})
        formulas = _check_plan_input(version, data, locked.clinic)
        locked.planned_sessions = data.planned_sessions
        locked.goals = data.goals.strip()
        locked.save(update_fields=["planned_sessions", "goals"])
        _write_plan_parts(locked, data, formulas)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.PLAN_WRITE,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"planned_sessions": data.planned_sessions, "areas": list(data.areas)},
        )
    return locked


def _review_facts(caller: Caller, patient: Patient) -> rules.ReviewFacts | None:
    from mesoclinic.screening.services import review_get

    state = review_get(caller=caller, patient=patient, audit=False)
    if state is None:
        return None
    return rules.ReviewFacts(decision=state.review.decision, stale_reasons=tuple(state.stale_reasons))


def plan_activate(*, caller: Caller, plan: TreatmentPlan) -> TreatmentPlan:
    """Draft → active, once a practitioner has reviewed a current screening with every warning
    acknowledged."""
    authorize(caller.user, Perm.PLAN_MANAGE, clinic_id=plan.clinic_id, patient=plan.patient)
    with transaction.atomic():
        locked = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
        review = _review_facts(caller, plan.patient)
        findings = rules.activation_findings(review, plan_status=locked.status)
        if findings:
            raise FindingsRefused(findings, _("The plan cannot be activated."))
        from mesoclinic.screening.models import Review

        latest = (
            Review.objects.filter(patient_id=plan.patient_id)
            .order_by("-signed_at", "-id")
            .values_list("id", flat=True)
            .first()
        )
        locked.status = TreatmentPlan.Status.ACTIVE
        locked.activated_at = timezone.now()
        locked.activated_by = _user(caller)
        locked.screening_review_id = latest
        locked.save(update_fields=["status", "activated_at", "activated_by", "screening_review_id"])
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.PLAN_STATUS,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"status": locked.status, "screening_review": latest},
        )
    return locked


def plan_end(*, caller: Caller, plan: TreatmentPlan, status: str, reason: str = "") -> TreatmentPlan:
    """Active → completed, or draft/active → stopped with a reason."""
    authorize(caller.user, Perm.PLAN_MANAGE, clinic_id=plan.clinic_id, patient=plan.patient)
    reason = _text(reason, "reason")
    with transaction.atomic():
        locked = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
        if status == TreatmentPlan.Status.COMPLETED:
            if locked.status != TreatmentPlan.Status.ACTIVE:
                raise _refuse("status", _("Only an active plan can be completed."))
            if locked.sessions.filter(status=TreatmentSession.Status.OPEN).exists():
                raise _refuse("status", _("A session of this plan is still open: sign it first."))
        elif status == TreatmentPlan.Status.STOPPED:
            if locked.status not in (TreatmentPlan.Status.DRAFT, TreatmentPlan.Status.ACTIVE):
                raise _refuse("status", _("This plan has ended already."))
            if not reason:
                raise _refuse("reason", _("Say why the plan is stopped."))
        else:
            raise _refuse("status", _("Choose completed or stopped."))
        locked.status = status
        locked.stop_reason = reason if status == TreatmentPlan.Status.STOPPED else ""
        locked.ended_at = timezone.now()
        locked.ended_by = _user(caller)
        locked.save(update_fields=["status", "stop_reason", "ended_at", "ended_by"])
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.PLAN_STATUS,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"status": status, "reason": reason[:300]},
        )
    return locked


def plan_record_improvement(*, caller: Caller, plan: TreatmentPlan, on: date) -> TreatmentPlan:
    """Record that the skin has improved: later intervals may taper (R-SERIES). The outcomes app calls this
    when a measure shows it; a practitioner may record it too."""
    authorize(caller.user, Perm.PLAN_MANAGE, clinic_id=plan.clinic_id, patient=plan.patient)
    if on > plan.clinic.today():
        raise _refuse("on", _("The date is in the future."))
    with transaction.atomic():
        locked = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status != TreatmentPlan.Status.ACTIVE:
            raise _refuse("status", _("Only an active plan records improvement."))
        locked.improved_on = on
        locked.save(update_fields=["improved_on"])
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.PLAN_WRITE,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"improved_on": on.isoformat()},
        )
    return locked


# --- the check-in gate --------------------------------------------------------------------------------------

# The consent and side-effect apps answer their gate rule here (``register_gate_hook`` in their
# AppConfig.ready):
# a function (plan, on) -> findings. Until one is registered, the gate reports the rule as "not checked".
GateHook = Callable[[TreatmentPlan, date], Sequence[Finding]]
GATE_HOOKS: dict[str, GateHook] = {}


def register_gate_hook(code: str, hook: GateHook) -> None:
    if code not in rules.HOOK_RULES:
        raise ValueError(f"unknown gate hook {code!r}")
    GATE_HOOKS[code] = hook


def _licences(user_id: int) -> tuple[LicenceFacts, ...]:
    return tuple(
        LicenceFacts(jurisdiction=row.jurisdiction, valid_from=row.valid_from, expires_on=row.expires_on)
        for row in PractitionerLicence.objects.filter(user_id=user_id)
    )


def _local_anaesthetic_allergy(allergies: Sequence[str]) -> tuple[str, ...]:
    matched: list[str] = []
    for group in ("amide-local-anaesthetics", "ester-local-anaesthetics"):
        for entry in formulary_rules.allergy_matches(allergies, group):
            if entry not in matched:
                matched.append(entry)
    return tuple(matched)


# The screening rules that speak about one session (R-PRE-NSAID, and anything that makes the day impossible).
SESSION_SCREENING_CODES = frozenset({"nsaid-washout", "age-under-18", "pregnant", "breastfeeding"})


@dataclass(frozen=True)
class PatientDay:
    screened: bool
    findings: tuple[Finding, ...]
    allergies: tuple[str, ...]


def _patient_day(patient: Patient, on: date) -> PatientDay:
    from mesoclinic.screening.services import session_screening

    screening = session_screening(patient=patient, on=on)
    if screening is None:
        return PatientDay(screened=False, findings=(), allergies=())
    findings = tuple(f for f in screening.findings if f.code in SESSION_SCREENING_CODES)
    return PatientDay(screened=True, findings=findings, allergies=screening.allergies)


def _fresh_preparations(patient: Patient, on: date) -> list[Preparation]:
    """The patient's preparations not used by any session, made for a session around ``on``."""
    start = datetime.combine(
        on - timedelta(days=PREPARATION_FRESH_DAYS), datetime.min.time(), tzinfo=patient.clinic.zone
    )
    return list(
        Preparation.objects.filter(patient=patient, session_use__isnull=True, prepared_at__gte=start)
        .select_related("formula_version__formula")
        .prefetch_related(Prefetch("lines", queryset=PreparationLine.objects.select_related("lot")))
        .order_by("prepared_at", "id")
    )


def preparation_label(preparation: Preparation) -> str:
    """How a preparation is named to staff: its formula, version and number (with formula_version__formula
    loaded)."""
    return _("%(formula)s v%(version)d (preparation %(id)d)") % {
        "formula": preparation.formula_version.formula.name,
        "version": preparation.formula_version.number,
        "id": preparation.pk,
    }


def _gate_lots(preparations: Sequence[Preparation]) -> tuple[rules.GateLot, ...]:
    lots: list[rules.GateLot] = []
    for preparation in preparations:
        label = preparation_label(preparation)
        for line in preparation.lines.all():
            lot = line.lot
            lots.append(
                rules.GateLot(
                    preparation=label,
                    lot=formulary_rules.LotFacts(
                        number=lot.number,
                        expires_on=lot.expires_on,
                        recalled=lot.recalled_at is not None,
                        recall_reason=lot.recall_reason,
                        available_ml=Decimal(0),
                    ),
                )
            )
    return tuple(lots)


def _previous_plan_session(
    plan: TreatmentPlan, before: date | None = None, exclude: int | None = None
) -> date | None:
    sessions = TreatmentSession.objects.filter(plan=plan)
    if exclude is not None:
        sessions = sessions.exclude(pk=exclude)
    if before is not None:
        sessions = sessions.filter(session_date__lte=before)
    return sessions.order_by("-session_date").values_list("session_date", flat=True).first()


def gate_facts(
    *, plan: TreatmentPlan, on: date, now: datetime, practitioner_id: int, sessions_done: int | None = None
) -> rules.GateFacts:
    version = plan.protocol_version
    day = _patient_day(plan.patient, on)
    preparations = _fresh_preparations(plan.patient, on)
    limits = _limits_by_version({p.formula_version_id for p in preparations})
    history = tuple(
        (limit, tuple(_limit_history(plan.patient, limit_row)))
        for limit, limit_row in {limit.label: (limit, row) for limit, row in limits.values_flat()}.values()
    )
    hooks: dict[str, tuple[Finding, ...] | None] = {
        code: (tuple(GATE_HOOKS[code](plan, on)) if code in GATE_HOOKS else None) for code in rules.HOOK_RULES
    }
    return rules.GateFacts(
        on=on,
        now=now,
        plan_status=plan.status,
        sessions_done=sessions_done if sessions_done is not None else plan.sessions.count(),
        planned_sessions=plan.planned_sessions,
        protocol_sessions_max=version.sessions_max,
        last_session_on=_previous_plan_session(plan, before=on),
        interval_min_days=version.interval_min_days,
        licences=_licences(practitioner_id),
        jurisdiction=plan.clinic.jurisdiction,
        patient_findings=day.findings,
        patient_screened=day.screened,
        lots=_gate_lots(preparations),
        local_anaesthetic_allergy=_local_anaesthetic_allergy(day.allergies),
        limit_history=history,
        hooks=hooks,
    )


def _practitioner(plan: TreatmentPlan, practitioner_id: int | None, caller: Caller) -> User:
    """The practitioner who will inject: the caller by default; must be a practitioner or medical director of
    the clinic."""
    user_id = practitioner_id if practitioner_id is not None else _user(caller).pk
    roles = set(
        Membership.objects.filter(user_id=user_id, clinic_id=plan.clinic_id, is_active=True).values_list(
            "role", flat=True
        )
    )
    if not roles & {Role.PRACTITIONER, Role.MEDICAL_DIRECTOR}:
        raise _refuse("practitioner_id", _("Choose a practitioner of this clinic."))
    return User.objects.get(pk=user_id)


def gate_evaluate(
    *, caller: Caller, plan: TreatmentPlan, on: date | None = None, practitioner_id: int | None = None
) -> list[Finding]:
    """The check-in gate for a session on ``on`` (default: today in the clinic), without writing anything but
    the audit row."""
    authorize(caller.user, Perm.GATE_VIEW, clinic_id=plan.clinic_id, patient=plan.patient)
    practitioner = _practitioner(plan, practitioner_id, caller)
    day = on or plan.clinic.today()
    if day < plan.clinic.today() - timedelta(days=1) or day > plan.clinic.today() + timedelta(days=365):
        raise _refuse("on", _("Choose a date from today to a year ahead."))
    findings = rules.gate_findings(
        gate_facts(plan=plan, on=day, now=timezone.now(), practitioner_id=practitioner.pk)
    )
    audit_record(
        actor=caller.actor(plan.clinic_id),
        action=Action.GATE_READ,
        clinic_id=plan.clinic_id,
        patient_id=plan.patient_id,
        obj=plan,
        detail={"on": day.isoformat(), "codes": [f.code for f in findings]},
    )
    return findings


def _acknowledgement_list(
    findings: Sequence[Finding], acknowledgements: Mapping[str, str]
) -> list[dict[str, str]]:
    return [
        {"key": finding.key, "code": finding.code, "reason": acknowledgements[finding.key].strip()}
        for finding in findings
        if finding.severity == "warn" and acknowledgements.get(finding.key, "").strip()
    ]


def _check_acknowledgements(
    findings: Sequence[Finding], acknowledgements: Mapping[str, str], what: str
) -> None:
    """Blocks stop the action; every warning needs a reason (R-PRE-*: "warn" needs an acknowledged reason)."""
    blocking = [finding for finding in findings if finding.severity == "block"]
    if blocking:
        raise FindingsRefused(list(findings), what)
    if unknown := sorted(set(acknowledgements) - {f.key for f in findings if f.severity == "warn"}):
        raise _refuse(
            "acknowledgements", _("No warning to acknowledge for: %(keys)s.") % {"keys": ", ".join(unknown)}
        )
    if any(len(reason) > 1000 for reason in acknowledgements.values()):
        raise _refuse("acknowledgements", _("A reason is at most 1000 characters."))
    missing = rules.unacknowledged(findings, acknowledgements)
    if missing:
        raise FindingsRefused(list(findings), _("Give a reason for each warning to go ahead."))


# --- sessions -----------------------------------------------------------------------------------------------


def _session_queryset() -> models.QuerySet[TreatmentSession]:
    """A session with what its pages and services use (the clinic is joined once: see :func:`_one_clinic`)."""
    return TreatmentSession.objects.select_related(
        "plan__protocol_version__protocol",
        "clinic",
        "patient",
        "practitioner",
        "room",
        "device",
        "signed_by",
        "cosigned_by",
    )


def _one_clinic(session: TreatmentSession) -> TreatmentSession:
    """The session's clinic, loaded with it, is also its plan's and its patient's (the same row)."""
    clinic = session.clinic
    for owner in (session.plan, session.patient):
        if owner.clinic_id == clinic.pk:
            owner.clinic = clinic
    return session


def session_get(
    *,
    caller: Caller,
    session_id: int,
    perm: Perm = Perm.SESSION_VIEW,
    audit: bool = True,
    related: bool = True,
) -> TreatmentSession:
    """The session, authorised for ``perm`` (404 when the caller may not know it exists). ``related=False``
    loads only the session and its patient, what authorising needs: for a service that reads the session
    again under its lock."""
    if related:
        session = _session_queryset().filter(pk=session_id).first()
    else:
        session = TreatmentSession.objects.select_related("patient").filter(pk=session_id).first()
    if session is None:
        raise Http404(_("Not found."))
    if related:
        _one_clinic(session)
    session_check(caller=caller, session=session, perm=perm)
    if audit:
        audit_record(
            actor=caller.actor(session.clinic_id),
            action=Action.SESSION_READ,
            clinic_id=session.clinic_id,
            patient_id=session.patient_id,
            obj=session,
        )
    return session


def session_check(*, caller: Caller, session: TreatmentSession, perm: Perm = Perm.SESSION_VIEW) -> None:
    """What :func:`session_get` checks of a session in hand: 404 when the caller may not know it exists, 403
    without ``perm``."""
    if not may_see_clinic(caller.user, session.clinic_id, session.patient):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=session.clinic_id, patient=session.patient)


def _session_own(session: TreatmentSession | None, name: str, pk: int, clinic: Clinic) -> Any:
    """The session's own room or device ``name`` when it is the one asked for and still an active one of the
    clinic (the charting services load both with the session, under its lock); else None."""
    if session is None or getattr(session, f"{name}_id") != pk:
        return None
    row = getattr(session, name)
    return row if row is not None and row.is_active and row.clinic_id == clinic.pk else None


def _room_and_device(
    clinic: Clinic, room_id: int | None, device_id: int | None, current: TreatmentSession | None = None
) -> tuple[Room | None, Device | None]:
    """The active room and device of the clinic (``current``: a session whose own are not read again)."""
    room = device = None
    if room_id is not None:
        room = (
            _session_own(current, "room", room_id, clinic)
            or Room.objects.filter(pk=room_id, clinic=clinic, is_active=True).first()
        )
        if room is None:
            raise _refuse("room_id", _("Unknown room."))
    if device_id is not None:
        device = (
            _session_own(current, "device", device_id, clinic)
            or Device.objects.filter(pk=device_id, clinic=clinic, is_active=True).first()
        )
        if device is None:
            raise _refuse("device_id", _("Unknown device."))
    return room, device


def session_check_in(
    *,
    caller: Caller,
    plan: TreatmentPlan,
    practitioner_id: int | None = None,
    room_id: int | None = None,
    device_id: int | None = None,
    acknowledgements: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> TreatmentSession:
    """Open the next session of the plan after the check-in gate: a block stops it (nothing written), each
    warning needs a reason, stored with the gate's findings."""
    authorize(caller.user, Perm.SESSION_CHECK_IN, clinic_id=plan.clinic_id, patient=plan.patient)
    now = now or timezone.now()
    on = timezone.localdate(now, timezone=plan.clinic.zone)
    practitioner = _practitioner(plan, practitioner_id, caller)
    room, device = _room_and_device(plan.clinic, room_id, device_id)
    reasons = {key: str(reason) for key, reason in (acknowledgements or {}).items()}
    with transaction.atomic():
        locked = _plan_queryset().select_for_update(of=("self",)).get(pk=plan.pk)
        if locked.sessions.filter(status=TreatmentSession.Status.OPEN).exists():
            raise _refuse("plan", _("A session of this plan is already open: chart and sign it first."))
        done = locked.sessions.count()
        findings = rules.gate_findings(
            gate_facts(plan=locked, on=on, now=now, practitioner_id=practitioner.pk, sessions_done=done)
        )
        _check_acknowledgements(findings, reasons, _("The session cannot start."))
        session = TreatmentSession.objects.create(
            clinic=locked.clinic,
            plan=locked,
            patient=locked.patient,
            number=done + 1,
            session_date=on,
            practitioner=practitioner,
            room=room,
            device=device,
            checked_in_at=now,
            checked_in_by=_user(caller),
            gate_findings=[f.as_dict() for f in findings],
            gate_acknowledgements=_acknowledgement_list(findings, reasons),
        )
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.SESSION_CHECK_IN,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=session,
            detail={"plan": locked.pk, "number": session.number, "codes": [f.code for f in findings]},
        )
    return session


@dataclass(frozen=True)
class ChartAreaIn:
    area: str
    technique: str
    depth_mm: Any
    points: Sequence[Sequence[Any]]
    needle: str = ""
    injections: int | None = None
    volume_per_point_ml: Any = None
    total_volume_ml: Any = None
    preparation_id: int | None = None
    new_preparation: int | None = None  # index into ChartIn.new_preparations
    notes: str = ""


@dataclass(frozen=True)
class NewPreparationIn:
    formula_version_id: int
    lines: Sequence[formulary.LineIn]
    notes: str = ""


@dataclass(frozen=True)
class ChartIn:
    areas: Sequence[ChartAreaIn]
    topical_anaesthetic: str = TreatmentSession.Anaesthetic.NONE
    anaesthetic_minutes: int | None = None
    room_id: int | None = None
    device_id: int | None = None
    notes: str = ""
    new_preparations: Sequence[NewPreparationIn] = ()
    acknowledgements: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _ParsedArea:
    area: BodyArea
    technique: Technique
    depth_mm: Decimal
    needle: str
    points: list[list[float]]
    injections: int
    volume_per_point_ml: Decimal | None
    total_volume_ml: Decimal
    preparation_id: int | None
    new_preparation: int | None
    notes: str


def _points(raw: Sequence[Sequence[Any]], field_name: str) -> list[list[float]]:
    points: list[list[float]] = []
    for point in raw:
        if len(point) != 2:
            raise _refuse(field_name, _("Each point is a pair of coordinates."))
        try:
            x, y = float(point[0]), float(point[1])
        except (TypeError, ValueError):
            raise _refuse(field_name, _("Each point is a pair of coordinates.")) from None
        if not (abs(x) < 1e6 and abs(y) < 1e6):
            raise _refuse(field_name, _("A point is off the body map."))
        points.append([round(x, 1), round(y, 1)])
    return points


def _parse_chart(chart: ChartIn) -> tuple[list[_ParsedArea], dict[str, list[str]]]:
    """Types and ranges: everything that is invalid input rather than a finding."""
    errors: dict[str, list[str]] = {}
    if not chart.areas:
        errors["areas"] = [_("Chart at least one area.")]
    if len(chart.areas) > rules.MAX_AREAS_PER_SESSION:
        errors["areas"] = [_("At most %(count)d areas.") % {"count": rules.MAX_AREAS_PER_SESSION}]
        return [], errors
    areas = {
        a.code: a for a in BodyArea.objects.filter(code__in={a.area for a in chart.areas}, is_active=True)
    }
    techniques = {t.code: t for t in Technique.objects.filter(code__in={a.technique for a in chart.areas})}
    parsed: list[_ParsedArea] = []
    for index, row in enumerate(chart.areas):
        prefix = f"areas.{index}"
        area, technique = areas.get(row.area), techniques.get(row.technique)
        row_errors: dict[str, list[str]] = {}
        if area is None:
            row_errors[f"{prefix}.area"] = [_("Unknown area.")]
        if technique is None:
            row_errors[f"{prefix}.technique"] = [_("Unknown technique.")]
        try:
            depth = _decimal(
                row.depth_mm, f"{prefix}.depth_mm", quantum=_DEPTH_QUANTUM, maximum=Decimal(1000)
            )
            points = _points(row.points, f"{prefix}.points")
            per_point = (
                None
                if row.volume_per_point_ml in (None, "")
                else _decimal(
                    row.volume_per_point_ml,
                    f"{prefix}.volume_per_point_ml",
                    quantum=_VOLUME_QUANTUM,
                    maximum=_MAX_VOLUME_ML,
                )
            )
            total = (
                None
                if row.total_volume_ml in (None, "")
                else _decimal(
                    row.total_volume_ml,
                    f"{prefix}.total_volume_ml",
                    quantum=_VOLUME_QUANTUM,
                    maximum=_MAX_VOLUME_ML,
                )
            )
            needle = _text(row.needle, f"{prefix}.needle", 60)
            notes = _text(row.notes, f"{prefix}.notes", 500)
        except ValidationError as exc:
            row_errors.update(exc.message_dict)
            errors.update(row_errors)
            continue
        injections = row.injections if row.injections is not None else len(points)
        if per_point is None and total is None:
            row_errors[f"{prefix}.volume_per_point_ml"] = [
                _("Give the volume per injection or the total volume.")
            ]
        if (row.preparation_id is None) == (row.new_preparation is None):
            row_errors[f"{prefix}.preparation_id"] = [_("Choose the preparation injected in this area.")]
        elif row.new_preparation is not None and not 0 <= row.new_preparation < len(chart.new_preparations):
            row_errors[f"{prefix}.new_preparation"] = [_("No such new preparation.")]
        if row_errors or area is None or technique is None:
            errors.update(row_errors)
            continue
        total_volume = rules.entry_volume(injections, per_point, total)
        parsed.append(
            _ParsedArea(
                area,
                technique,
                depth,
                needle,
                points,
                injections,
                per_point,
                total_volume,
                row.preparation_id,
                row.new_preparation,
                notes,
            )
        )
    if chart.topical_anaesthetic not in TreatmentSession.Anaesthetic.values:
        errors["topical_anaesthetic"] = [_("Unknown topical anaesthetic.")]
    if chart.anaesthetic_minutes is not None and not 0 <= chart.anaesthetic_minutes <= 240:
        errors["anaesthetic_minutes"] = [_("From 0 to 240 minutes.")]
    if len(chart.notes) > MAX_TEXT:
        errors["notes"] = [_("At most %(count)d characters.") % {"count": MAX_TEXT}]
    if len(chart.new_preparations) > 10:
        errors["new_preparations"] = [_("At most 10 new preparations.")]
    return parsed, errors


@dataclass(frozen=True)
class _LimitMatch:
    facts: rules.LimitFacts
    row: ProductLimit


class _LimitsByVersion(dict[int, list[_LimitMatch]]):
    def values_flat(self) -> list[tuple[rules.LimitFacts, ProductLimit]]:
        return [(match.facts, match.row) for matches in self.values() for match in matches]


def _limits_by_version(version_ids: set[int]) -> _LimitsByVersion:
    """The labelled product limits (formulary ProductLimit) that apply to each formula version: a limit of an
    ingredient at the concentration and unit the formula uses it."""
    result = _LimitsByVersion()
    if not version_ids:
        return result
    components = list(
        FormulaComponent.objects.filter(version_id__in=version_ids).select_related("ingredient")
    )
    limits = defaultdict(list)
    for row in ProductLimit.objects.filter(ingredient_id__in={c.ingredient_id for c in components}):
        limits[row.ingredient_id].append(row)
    for component in components:
        for row in limits.get(component.ingredient_id, []):
            if row.concentration == component.concentration and row.concentration_unit == component.unit:
                result.setdefault(component.version_id, []).append(
                    _LimitMatch(
                        rules.LimitFacts(
                            ingredient=component.ingredient.name,
                            label=row.label,
                            source=row.source,
                            max_volume_per_injection_ml=row.max_volume_per_injection_ml,
                            max_injections_per_session=row.max_injections_per_session,
                            max_volume_per_session_ml=row.max_volume_per_session_ml,
                            min_interval_days=row.min_interval_days,
                            max_sessions=row.max_sessions,
                        ),
                        row,
                    )
                )
    return result


def _limit_history(patient: Patient, limit: ProductLimit, exclude_session: int | None = None) -> list[date]:
    """The dates of the patient's sessions that charted a formula with this limited ingredient strength."""
    sessions = TreatmentSession.objects.filter(
        patient=patient,
        areas__preparation__formula_version__components__ingredient_id=limit.ingredient_id,
        areas__preparation__formula_version__components__concentration=limit.concentration,
        areas__preparation__formula_version__components__unit=limit.concentration_unit,
    )
    if exclude_session is not None:
        sessions = sessions.exclude(pk=exclude_session)
    return sorted(set(sessions.values_list("session_date", flat=True)))


def chart_snapshot(session: TreatmentSession) -> dict[str, Any]:
    """The chart as stored, as plain data: what an amendment keeps as "before" and "after"."""
    return {
        "topical_anaesthetic": session.topical_anaesthetic,
        "anaesthetic_minutes": session.anaesthetic_minutes,
        "room_id": session.room_id,
        "device_id": session.device_id,
        "notes": session.notes,
        "areas": [
            {
                "area": row.area.code,
                "technique": row.technique.code,
                "depth_mm": str(row.depth_mm),
                "needle": row.needle,
                "points": row.points,
                "injections": row.injections,
                "volume_per_point_ml": None
                if row.volume_per_point_ml is None
                else str(row.volume_per_point_ml),
                "total_volume_ml": str(row.total_volume_ml),
                "preparation_id": row.preparation_id,
                "notes": row.notes,
            }
            for row in session.areas.select_related("area", "technique").order_by("position")
        ],
    }


def _charter_licence(caller: Caller, session: TreatmentSession) -> list[Finding]:
    """R-PROV: whoever charts the injections holds a current licence in the clinic's jurisdiction."""
    return licence_findings(
        _licences(_user(caller).pk), jurisdiction=session.clinic.jurisdiction, on=session.session_date
    )


# A charted area's stored values, in order: what tells a chart saved again unchanged.
_CHARTED_AREA_FIELDS = (
    "position",
    "area_id",
    "technique_id",
    "depth_mm",
    "needle",
    "points",
    "injections",
    "volume_per_point_ml",
    "total_volume_ml",
    "preparation_id",
    "notes",
)


def _charted_area_values(row: ChartedArea) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in _CHARTED_AREA_FIELDS)


def _write_chart(
    *,
    caller: Caller,
    session: TreatmentSession,
    chart: ChartIn,
    now: datetime,
    allow_new_preparations: bool,
    parsed_chart: tuple[list[_ParsedArea], dict[str, list[str]]] | None = None,
) -> list[Finding]:
    """Validate the chart, evaluate its findings and write it (inside the caller's transaction). Returns the
    findings stored with it. ``parsed_chart``: what :func:`_parse_chart` said of it, when the caller parsed it
    before taking the lock (its errors are raised here all the same)."""
    parsed, errors = parsed_chart if parsed_chart is not None else _parse_chart(chart)
    if chart.new_preparations and not allow_new_preparations:
        errors["new_preparations"] = [
            _("An amendment cannot prepare anything: correct stock in the formulary.")
        ]
    try:
        room, device = _room_and_device(session.clinic, chart.room_id, chart.device_id, current=session)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        room = device = None
    if errors:
        raise ValidationError(errors)
    plan = session.plan
    protocol_areas = {
        row.area_id: row
        for row in ProtocolArea.objects.filter(version_id=plan.protocol_version_id).order_by()
    }
    planned = set(PlanArea.objects.filter(plan_id=plan.pk).order_by().values_list("area_id", flat=True))

    # New preparations are made here, inside the chart's transaction: the stock they move lands with the
    # chart.
    created: list[Preparation] = []
    for index, new in enumerate(chart.new_preparations):
        version_row = (
            FormulaVersion.objects.select_related("formula")
            .filter(pk=new.formula_version_id, formula__clinic=session.clinic)
            .first()
        )
        if version_row is None:
            raise _refuse(f"new_preparations.{index}.formula_version_id", _("Unknown formula version."))
        try:
            created.append(
                formulary.preparation_create(
                    caller=caller,
                    patient=session.patient,
                    formula_version=version_row,
                    lines=new.lines,
                    notes=new.notes,
                    now=now,
                )
            )
        except ValidationError as exc:
            raise ValidationError(
                {f"new_preparations.{index}.{name}": messages for name, messages in exc.message_dict.items()}
            ) from None
    wanted_ids = {row.preparation_id for row in parsed if row.preparation_id is not None}
    existing: dict[int, Preparation] = {}
    used_elsewhere: set[int] = set()  # (one of another patient is refused as unknown before this is asked)
    for found in (
        Preparation.objects.select_for_update(of=("self",))
        .filter(pk__in=wanted_ids, patient_id=session.patient_id)
        .select_related("formula_version__formula")
        .annotate(
            used_elsewhere=Exists(
                SessionPreparation.objects.filter(preparation_id=OuterRef("pk")).exclude(session=session)
            )
        )
    ):
        existing[found.pk] = found
        if found.used_elsewhere:
            used_elsewhere.add(found.pk)
    for index, row in enumerate(parsed):
        if row.preparation_id is not None:
            if row.preparation_id not in existing:
                errors[f"areas.{index}.preparation_id"] = [_("Unknown preparation for this patient.")]
            elif row.preparation_id in used_elsewhere:
                errors[f"areas.{index}.preparation_id"] = [_("This preparation was used in another session.")]
    if errors:
        raise ValidationError(errors)
    for preparation in created:
        existing[preparation.pk] = preparation

    def preparation_of(row: _ParsedArea) -> Preparation:
        if row.preparation_id is not None:
            return existing[row.preparation_id]
        return created[cast(int, row.new_preparation)]

    limits = _limits_by_version({preparation_of(row).formula_version_id for row in parsed})
    entries: list[rules.AreaEntry] = []
    input_errors: dict[str, list[str]] = {}
    for index, row in enumerate(parsed):
        protocol_area = protocol_areas.get(row.area.pk)
        entry = rules.AreaEntry(
            area_code=row.area.code,
            area_label=area_label(row.area),
            outline=row.area.outline,
            technique=_technique_facts(row.technique),
            depth_mm=row.depth_mm,
            points=tuple((p[0], p[1]) for p in row.points),
            injections=row.injections,
            volume_per_point_ml=row.volume_per_point_ml,
            total_volume_ml=row.total_volume_ml,
            protocol_depth=(protocol_area.depth_min_mm, protocol_area.depth_max_mm)
            if protocol_area
            else None,
            planned=row.area.pk in planned,
            limits=tuple(match.facts for match in limits.get(preparation_of(row).formula_version_id, [])),
        )
        for name, messages in rules.entry_problems(entry).items():
            input_errors[f"areas.{index}.{name}"] = messages
        entries.append(entry)
    if input_errors:
        raise ValidationError(input_errors)

    # Volumes charted from each preparation, against what it holds; its lots, still usable today.
    charted: dict[int, Decimal] = defaultdict(Decimal)
    used: dict[int, Preparation] = {}
    for row in parsed:
        preparation = preparation_of(row)
        charted[preparation.pk] += row.total_volume_ml
        used[preparation.pk] = preparation
    overdraws = [
        (preparation_label(used[pk]), volume, used[pk].total_volume_ml)
        for pk, volume in charted.items()
        if volume > used[pk].total_volume_ml
    ]
    lot_findings: list[Finding] = []
    for line in PreparationLine.objects.filter(preparation_id__in=list(used)).select_related("lot"):
        lot = line.lot
        facts = formulary_rules.LotFacts(
            number=lot.number,
            expires_on=lot.expires_on,
            recalled=lot.recalled_at is not None,
            recall_reason=lot.recall_reason,
            available_ml=Decimal(0),
        )
        for finding in formulary_rules.lot_findings(
            facts, volume_ml=Decimal(0), today=session.session_date, now=now
        ):
            lot_findings.append(
                Finding(
                    finding.code,
                    finding.severity,
                    finding.rule,
                    finding.message,
                    finding.source,
                    subject=lot.number,
                )
            )
    day = _patient_day(session.patient, session.session_date)
    previous: dict[str, list[date]] = {
        facts.label: _limit_history(session.patient, row, exclude_session=session.pk)
        for facts, row in limits.values_flat()
    }
    findings = rules.sort_findings(
        [
            *_charter_licence(caller, session),
            *lot_findings,
            *rules.chart_findings(
                entries,
                on=session.session_date,
                previous_sessions=previous,
                anaesthetic=chart.topical_anaesthetic,
                local_anaesthetic_allergy=_local_anaesthetic_allergy(day.allergies),
                preparation_overdraws=overdraws,
            ),
        ]
    )
    _check_acknowledgements(findings, chart.acknowledgements, _("The chart cannot be saved."))

    rows = [
        ChartedArea(
            session=session,
            position=index,
            area=row.area,
            technique=row.technique,
            depth_mm=row.depth_mm,
            needle=row.needle,
            points=row.points,
            injections=row.injections,
            volume_per_point_ml=row.volume_per_point_ml,
            total_volume_ml=row.total_volume_ml,
            preparation=preparation_of(row),
            notes=row.notes,
        )
        for index, row in enumerate(parsed)
    ]
    # The chart's rows are replaced, unless the same chart is saved again (nothing to write then).
    stored = list(
        ChartedArea.objects.filter(session=session).order_by("position").values_list(*_CHARTED_AREA_FIELDS)
    )
    if stored != [_charted_area_values(row) for row in rows]:
        ChartedArea.objects.filter(session=session).delete()
        ChartedArea.objects.bulk_create(rows)
    already = set(SessionPreparation.objects.filter(session=session).values_list("preparation_id", flat=True))
    if stale := already - set(used):
        SessionPreparation.objects.filter(session=session, preparation_id__in=stale).delete()
    try:
        if missing := [pk for pk in used if pk not in already]:
            with transaction.atomic():
                SessionPreparation.objects.bulk_create(
                    SessionPreparation(session=session, preparation_id=pk) for pk in missing
                )
    except IntegrityError:
        # Another session took one of these preparations between our check and this write.
        raise _refuse(
            "areas", _("A preparation was just used in another session: reload and choose again.")
        ) from None
    session.topical_anaesthetic = chart.topical_anaesthetic
    session.anaesthetic_minutes = chart.anaesthetic_minutes
    session.room = room
    session.device = device
    session.notes = chart.notes.strip()
    session.chart_findings = [f.as_dict() for f in findings]
    session.chart_acknowledgements = _acknowledgement_list(findings, chart.acknowledgements)
    session.charted_at = now
    session.charted_by = _user(caller)
    session.save()
    return findings


def session_chart(
    *, caller: Caller, session: TreatmentSession, chart: ChartIn, now: datetime | None = None
) -> TreatmentSession:
    """Save the chart of an open session (it may be saved again until it is signed). The chart, the
    preparations it uses up (and makes) and the stock they move are one transaction."""
    authorize(caller.user, Perm.SESSION_CHART, clinic_id=session.clinic_id, patient=session.patient)
    now = now or timezone.now()
    # The input is parsed before the write lock is taken (its errors still come after the checks below).
    parsed_chart = _parse_chart(chart)
    with transaction.atomic():
        # What charting reads of the session and its plan, patient, clinic, room and device, under the lock.
        locked = _one_clinic(
            TreatmentSession.objects.select_related("plan", "clinic", "patient", "room", "device")
            .select_for_update(of=("self",))
            .get(pk=session.pk)
        )
        if locked.status != TreatmentSession.Status.OPEN:
            raise _refuse("status", _("A signed session is not edited: record an amendment."))
        if locked.plan.status != TreatmentPlan.Status.ACTIVE:
            raise _refuse("status", _("The plan is not active."))
        findings = _write_chart(
            caller=caller,
            session=locked,
            chart=chart,
            now=now,
            allow_new_preparations=True,
            parsed_chart=parsed_chart,
        )
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.SESSION_CHART,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={
                "areas": [row.area for row in chart.areas],
                "new_preparations": len(chart.new_preparations),
                "codes": [f.code for f in findings],
            },
        )
    return locked


def session_sign(
    *, caller: Caller, session: TreatmentSession, now: datetime | None = None
) -> TreatmentSession:
    """Sign a charted session: immutable from now on; the aftercare instructions go to the patient and the
    session may go to the medical director's co-signature queue."""
    authorize(caller.user, Perm.SESSION_CHART, clinic_id=session.clinic_id, patient=session.patient)
    now = now or timezone.now()
    with transaction.atomic():
        locked = _one_clinic(_session_queryset().select_for_update(of=("self",)).get(pk=session.pk))
        if locked.status != TreatmentSession.Status.OPEN:
            raise _refuse("status", _("This session is signed already."))
        if locked.charted_at is None or not locked.areas.exists():
            raise _refuse("status", _("Chart the session before signing it."))
        if caller.user.pk != locked.practitioner_id and not can(
            caller.user, Perm.SESSION_COSIGN, clinic_id=locked.clinic_id
        ):
            raise PermissionDenied
        licence = licence_findings(
            _licences(_user(caller).pk), jurisdiction=locked.clinic.jurisdiction, on=locked.session_date
        )
        if licence:
            raise FindingsRefused(licence, _("The session cannot be signed."))
        clinic = locked.clinic
        signed_before = TreatmentSession.objects.filter(
            clinic=clinic, practitioner_id=locked.practitioner_id, status=TreatmentSession.Status.SIGNED
        ).count()
        locked.cosign_required = rules.cosign_required(
            share_percent=clinic.cosign_share_percent,
            new_practitioner_sessions=clinic.cosign_new_practitioner_sessions,
            signed_before=signed_before,
            sample=rules.cosign_sample(clinic.pk, locked.pk),
        )
        locked.status = TreatmentSession.Status.SIGNED
        locked.signed_at = now
        locked.signed_by = _user(caller)
        locked.save(update_fields=["status", "signed_at", "signed_by", "cosign_required"])
        aftercare = _issue_aftercare(locked, now)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.SESSION_SIGN,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"cosign_required": locked.cosign_required, "aftercare": aftercare.pk},
        )
    return locked


def _issue_aftercare(session: TreatmentSession, now: datetime) -> Aftercare:
    version = session.plan.protocol_version
    language = session.patient.preferred_language
    with translation.override(language):
        instructions = [
            {"code": code, "text": text} for code, text in rules.aftercare_texts(version.aftercare)
        ]
    return Aftercare.objects.create(
        session=session,
        patient=session.patient,
        issued_at=now,
        language=language,
        instructions=instructions,
        note=version.aftercare_note,
    )


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for name in ("topical_anaesthetic", "anaesthetic_minutes", "room_id", "device_id", "notes"):
        if before[name] != after[name]:
            changes.append({"field": name, "before": before[name], "after": after[name]})
    old_areas, new_areas = before["areas"], after["areas"]
    for index in range(max(len(old_areas), len(new_areas))):
        old = old_areas[index] if index < len(old_areas) else None
        new = new_areas[index] if index < len(new_areas) else None
        if old is None or new is None:
            changes.append({"field": f"areas.{index}", "before": old, "after": new})
            continue
        for name in old:
            if old[name] != new.get(name):
                changes.append(
                    {"field": f"areas.{index}.{name}", "before": old[name], "after": new.get(name)}
                )
    return changes


def session_amend(
    *, caller: Caller, session: TreatmentSession, chart: ChartIn, reason: str, now: datetime | None = None
) -> SessionAmendment:
    """Correct a signed session: the chart is replaced, and the amendment keeps the chart before and after,
    the reason, the author and the time. Nothing is prepared by an amendment."""
    authorize(caller.user, Perm.SESSION_CHART, clinic_id=session.clinic_id, patient=session.patient)
    reason = _text(reason, "reason")
    if not reason:
        raise _refuse("reason", _("Say why the session is amended."))
    now = now or timezone.now()
    with transaction.atomic():
        locked = _one_clinic(_session_queryset().select_for_update(of=("self",)).get(pk=session.pk))
        if locked.status != TreatmentSession.Status.SIGNED:
            raise _refuse("status", _("An open session is edited directly; amendments are for signed ones."))
        before = chart_snapshot(locked)
        charted_at, charted_by = locked.charted_at, locked.charted_by
        _write_chart(caller=caller, session=locked, chart=chart, now=now, allow_new_preparations=False)
        # The chart's own timestamps stay those of the signed chart; the amendment carries the new ones.
        TreatmentSession.objects.filter(pk=locked.pk).update(charted_at=charted_at, charted_by=charted_by)
        after = chart_snapshot(locked)
        changes = _changes(before, after)
        if not changes:
            raise _refuse("areas", _("Nothing changed."))
        amendment = SessionAmendment.objects.create(
            session=locked,
            author=_user(caller),
            at=now,
            reason=reason,
            before=before,
            after=after,
            changes=changes,
        )
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.SESSION_AMEND,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"amendment": amendment.pk, "fields": [c["field"] for c in changes][:50]},
        )
    return amendment


def session_cosign(
    *, caller: Caller, session: TreatmentSession, note: str = "", now: datetime | None = None
) -> TreatmentSession:
    """The medical director's co-signature of a signed session in the review queue."""
    authorize(caller.user, Perm.SESSION_COSIGN, clinic_id=session.clinic_id, patient=session.patient)
    note = _text(note, "note")
    with transaction.atomic():
        locked = TreatmentSession.objects.select_for_update().get(pk=session.pk)
        if locked.status != TreatmentSession.Status.SIGNED:
            raise _refuse("status", _("Only a signed session is co-signed."))
        if locked.cosigned_at is not None:
            raise _refuse("status", _("This session is co-signed already."))
        if locked.signed_by_id == caller.user.pk:
            raise _refuse("status", _("A session is co-signed by someone other than its signer."))
        locked.cosigned_at = now or timezone.now()
        locked.cosigned_by = _user(caller)
        locked.cosign_note = note
        locked.save(update_fields=["cosigned_at", "cosigned_by", "cosign_note"])
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.SESSION_COSIGN,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
        )
    return locked


def cosign_queue(*, caller: Caller, clinic: Clinic, limit: int = 100) -> list[TreatmentSession]:
    """Signed sessions waiting for the medical director, oldest first. Audited with the sessions listed."""
    authorize(caller.user, Perm.SESSION_COSIGN, clinic_id=clinic.pk)
    sessions = list(
        TreatmentSession.objects.filter(
            clinic=clinic,
            cosign_required=True,
            cosigned_at__isnull=True,
            status=TreatmentSession.Status.SIGNED,
        )
        .select_related("patient", "practitioner", "plan__protocol_version__protocol")
        .order_by("signed_at", "id")[:limit]
    )
    audit_record(
        actor=caller.actor(clinic.pk),
        action=Action.SESSION_READ,
        clinic_id=clinic.pk,
        detail={"what": "cosign-queue", "sessions": [s.pk for s in sessions]},
    )
    return sessions


def aftercare_get(
    *, caller: Caller, session: TreatmentSession, action: Action = Action.AFTERCARE_READ
) -> Aftercare:
    authorize(caller.user, Perm.AFTERCARE_VIEW, clinic_id=session.clinic_id, patient=session.patient)
    aftercare = Aftercare.objects.filter(session=session).first()
    if aftercare is None:
        raise Http404(_("No aftercare instructions yet: they are issued when the session is signed."))
    audit_record(
        actor=caller.actor(session.clinic_id),
        action=action,
        clinic_id=session.clinic_id,
        patient_id=session.patient_id,
        obj=aftercare,
    )
    return aftercare


def aftercare_of_patient(*, caller: Caller, patient: Patient) -> list[Aftercare]:
    authorize(caller.user, Perm.AFTERCARE_VIEW, clinic_id=patient.clinic_id, patient=patient)
    rows = list(
        Aftercare.objects.filter(patient=patient).select_related("session").order_by("-issued_at")[:50]
    )
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.AFTERCARE_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        detail={"aftercare": [row.pk for row in rows]},
    )
    return rows


# --- the plan page -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanOverview:
    plan: TreatmentPlan
    sessions: list[TreatmentSession]
    areas: list[BodyArea]
    procedures: list[PlanProcedure]
    formulas: list[Formula]
    signed: int
    next_window: tuple[date, date] | None
    open_session: TreatmentSession | None

    @property
    def current_number(self) -> int:
        return self.signed + (1 if self.open_session else 0)


def plan_overview(*, caller: Caller, plan: TreatmentPlan) -> PlanOverview:
    """What the plan page shows, in a fixed number of queries: the sessions with what was done in each."""
    sessions = list(
        TreatmentSession.objects.filter(plan=plan)
        .select_related("practitioner", "room", "device")
        .prefetch_related(
            Prefetch(
                "areas", queryset=ChartedArea.objects.select_related("area", "technique").order_by("position")
            )
        )
        .order_by("number")
    )
    version = plan.protocol_version
    signed = sum(1 for s in sessions if s.status == TreatmentSession.Status.SIGNED)
    last = max((s.session_date for s in sessions), default=None)
    window = rules.next_window(
        rules.SeriesRule(
            version.interval_min_days,
            version.interval_max_days,
            version.taper_interval_min_days,
            version.taper_interval_max_days,
        ),
        last_session_on=last,
        improved=plan.improved_on is not None,
    )
    return PlanOverview(
        plan=plan,
        sessions=sessions,
        areas=[row.area for row in PlanArea.objects.filter(plan=plan).select_related("area")],
        procedures=list(PlanProcedure.objects.filter(plan=plan)),
        formulas=[row.formula for row in PlanFormula.objects.filter(plan=plan).select_related("formula")],
        signed=signed,
        next_window=window,
        open_session=next((s for s in sessions if s.status == TreatmentSession.Status.OPEN), None),
    )


def chartable_preparations(session: TreatmentSession) -> list[Preparation]:
    """The preparations a chart may use: the patient's recent ones that no other session has used."""
    start = datetime.combine(
        session.session_date - timedelta(days=PREPARATION_FRESH_DAYS),
        datetime.min.time(),
        tzinfo=session.clinic.zone,
    )
    return list(
        Preparation.objects.filter(patient_id=session.patient_id)
        .filter(Q(session_use__isnull=True, prepared_at__gte=start) | Q(session_use__session=session))
        .select_related("formula_version__formula")
        .order_by("-prepared_at", "-id")
    )


def clinic_practitioners(clinic: Clinic) -> list[User]:
    """Who may inject in the clinic: its practitioners and medical directors (the gate checks a licence)."""
    return list(
        User.objects.filter(
            memberships__clinic=clinic,
            memberships__is_active=True,
            memberships__role__in=[Role.PRACTITIONER, Role.MEDICAL_DIRECTOR],
            is_active=True,
        )
        .distinct()
        .order_by("last_name", "first_name", "username")
    )

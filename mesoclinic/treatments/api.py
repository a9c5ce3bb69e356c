"""Protocols, plans, the check-in gate, sessions and charts. Thin: parse, call the service, shape the
answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import clinic_for_api
from mesoclinic.accounts.policy import Perm
from mesoclinic.audit.models import Action
from mesoclinic.formulary.models import PreparationLine
from mesoclinic.formulary.services import LineIn
from mesoclinic.patients.services import patient_get
from mesoclinic.treatments import rules, services
from mesoclinic.treatments.documents import aftercare_pdf
from mesoclinic.treatments.models import Protocol, TreatmentPlan, TreatmentSession
from mesoclinic.treatments.schemas import (
    AftercareOut,
    AmendmentIn,
    BodyAreaOut,
    ChartIn,
    CheckInIn,
    CosignIn,
    GateOut,
    GateParams,
    ImprovementIn,
    PlanCreateIn,
    PlanEndIn,
    PlanOut,
    PlanUpdateIn,
    ProtocolContentIn,
    ProtocolCopyIn,
    ProtocolOut,
    ProtocolSummaryOut,
    SessionOut,
    SessionSummaryOut,
    TechniqueOut,
)

router = Router(tags=["treatments"])


# --- shaping ------------------------------------------------------------------------------------------------


def _version_out(version: Any) -> dict[str, Any]:
    content = services.content_of(version)
    return {
        "id": version.pk,
        "number": version.number,
        **{name: getattr(content, name) for name in ProtocolContentIn.model_fields if name != "areas"},
        "areas": [
            {
                "area": row.area,
                "technique": row.technique,
                "depth_min_mm": row.depth_min_mm,
                "depth_max_mm": row.depth_max_mm,
            }
            for row in content.areas
        ],
    }


def _protocol_out(protocol: Protocol) -> dict[str, Any]:
    return {
        "id": protocol.pk,
        "code": protocol.code,
        "name": protocol.name,
        "indication": protocol.indication,
        "template": protocol.is_template,
        "copied_from": protocol.copied_from_id,
        "version": _version_out(services.current_version(protocol)),
    }


def _procedure_out(code: str, note: str = "") -> dict[str, str]:
    return {"procedure": code, "label": rules.procedure_label(code), "note": note}


def _plan_out(caller: Caller, plan: TreatmentPlan) -> dict[str, Any]:
    overview = services.plan_overview(caller=caller, plan=plan)
    version = plan.protocol_version
    return {
        "id": plan.pk,
        "patient": plan.patient_id,
        "protocol": version.protocol_id,
        "protocol_version": version.pk,
        "protocol_name": version.protocol.name,
        "indication": plan.indication,
        "status": plan.status,
        "planned_sessions": plan.planned_sessions,
        "sessions_signed": overview.signed,
        "areas": [area.code for area in overview.areas],
        "formula_ids": [formula.pk for formula in overview.formulas],
        "procedures": [_procedure_out(p.procedure, p.note) for p in overview.procedures],
        "goals": plan.goals,
        "stop_reason": plan.stop_reason,
        "improved_on": plan.improved_on,
        "next_earliest": overview.next_window[0] if overview.next_window else None,
        "next_latest": overview.next_window[1] if overview.next_window else None,
        "alternatives": [_procedure_out(code) for code in version.alternatives],
        "created_at": plan.created_at,
        "activated_at": plan.activated_at,
        "ended_at": plan.ended_at,
    }


def _session_out(session: TreatmentSession) -> dict[str, Any]:
    areas = list(
        session.areas.select_related("area", "technique", "preparation")
        .prefetch_related(
            Prefetch("preparation__lines", queryset=PreparationLine.objects.select_related("lot"))
        )
        .order_by("position")
    )
    # Amendments are recorded on signed sessions only (services.session_amend): an open one has none.
    amendments = (
        []
        if session.status == TreatmentSession.Status.OPEN
        else list(session.amendments.select_related("author").order_by("at", "id"))
    )
    return {
        "id": session.pk,
        "plan": session.plan_id,
        "patient": session.patient_id,
        "number": session.number,
        "planned_sessions": session.plan.planned_sessions,
        "session_date": session.session_date,
        "status": session.status,
        "practitioner": session.practitioner_id,
        "room_id": session.room_id,
        "device_id": session.device_id,
        "checked_in_at": session.checked_in_at,
        "gate_findings": session.gate_findings,
        "gate_acknowledgements": session.gate_acknowledgements,
        "topical_anaesthetic": session.topical_anaesthetic,
        "anaesthetic_minutes": session.anaesthetic_minutes,
        "notes": session.notes,
        "areas": [
            {
                "area": row.area.code,
                "view": row.area.view,
                "technique": row.technique.code,
                "depth_mm": row.depth_mm,
                "needle": row.needle,
                "points": row.points,
                "injections": row.injections,
                "volume_per_point_ml": row.volume_per_point_ml,
                "total_volume_ml": row.total_volume_ml,
                "preparation_id": row.preparation_id,
                "lots": sorted({line.lot.number for line in row.preparation.lines.all()}),
                "notes": row.notes,
            }
            for row in areas
        ],
        "chart_findings": session.chart_findings,
        "chart_acknowledgements": session.chart_acknowledgements,
        "charted_at": session.charted_at,
        "signed_at": session.signed_at,
        "signed_by": session.signed_by_id,
        "cosign_required": session.cosign_required,
        "cosigned_at": session.cosigned_at,
        "cosigned_by": session.cosigned_by_id,
        "amendments": [
            {
                "id": amendment.pk,
                "author": amendment.author.get_full_name() or amendment.author.get_username(),
                "at": amendment.at,
                "reason": amendment.reason,
                "changes": amendment.changes,
            }
            for amendment in amendments
        ],
    }


def _acknowledgements(items: list[Any]) -> dict[str, str]:
    keys = [item.key for item in items]
    if len(keys) != len(set(keys)):
        raise ValidationError({"acknowledgements": [_("Acknowledge each warning once.")]})
    return {item.key: item.reason for item in items}


def _chart_in(payload: ChartIn) -> services.ChartIn:
    return services.ChartIn(
        areas=[
            services.ChartAreaIn(
                area=row.area,
                technique=row.technique,
                depth_mm=row.depth_mm,
                points=row.points,
                needle=row.needle,
                injections=row.injections,
                volume_per_point_ml=row.volume_per_point_ml,
                total_volume_ml=row.total_volume_ml,
                preparation_id=row.preparation_id,
                new_preparation=row.new_preparation,
                notes=row.notes,
            )
            for row in payload.areas
        ],
        topical_anaesthetic=payload.topical_anaesthetic,
        anaesthetic_minutes=payload.anaesthetic_minutes,
        room_id=payload.room_id,
        device_id=payload.device_id,
        notes=payload.notes,
        new_preparations=[
            services.NewPreparationIn(
                formula_version_id=new.formula_version_id,
                lines=[LineIn(line.lot_id, line.volume_ml, line.vial_id) for line in new.lines],
                notes=new.notes,
            )
            for new in payload.new_preparations
        ],
        acknowledgements=_acknowledgements(payload.acknowledgements),
    )


# --- catalogue ----------------------------------------------------------------------------------------------


@router.get("/body-areas", response=list[BodyAreaOut], summary="The body map's areas (our own code system)")
def list_body_areas(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "code": area.code,
            "region": area.region,
            "side": area.side,
            "view": area.view,
            "label": services.area_label(area),
            "outline": area.outline,
        }
        for area in services.body_areas()
    ]


@router.get("/techniques", response=list[TechniqueOut], summary="Injection techniques (R-TECH)")
def list_techniques(request: HttpRequest) -> list[dict[str, Any]]:
    from mesoclinic.treatments.models import Technique

    return [
        {
            "code": t.code,
            "name": services.technique_label(t),
            "depth_min_mm": t.depth_min_mm,
            "depth_max_mm": t.depth_max_mm,
            "needles": t.needles,
            "volume_per_point_min_ml": t.volume_per_point_min_ml,
            "volume_per_point_max_ml": t.volume_per_point_max_ml,
            "many_punctures": t.many_punctures,
        }
        for t in Technique.objects.all()
    ]


# --- protocols ----------------------------------------------------------------------------------------------


@router.get("/protocols", response=list[ProtocolSummaryOut], summary="Templates and the clinic's protocols")
def list_protocols(request: HttpRequest) -> list[dict[str, Any]]:
    clinic = clinic_for_api(request, Perm.PROTOCOL_VIEW)
    protocols = list(services.protocols_for(clinic).filter(is_active=True).prefetch_related("versions"))
    return [
        {
            "id": p.pk,
            "code": p.code,
            "name": p.name,
            "indication": p.indication,
            "template": p.is_template,
            "version": max((v.number for v in p.versions.all()), default=0),
        }
        for p in protocols
    ]


@router.get("/protocols/{protocol_id}", response=ProtocolOut, summary="A protocol and its current version")
def read_protocol(request: HttpRequest, protocol_id: int) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.PROTOCOL_VIEW)
    protocol = services.protocol_get(caller=Caller.of(request), protocol_id=protocol_id, clinic=clinic)
    return _protocol_out(protocol)


@router.post(
    "/protocols/{protocol_id}/copy", response={201: ProtocolOut}, summary="Copy a protocol into the clinic"
)
def copy_protocol(request: HttpRequest, protocol_id: int, payload: ProtocolCopyIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.PROTOCOL_MANAGE)
    protocol = services.protocol_get(caller=caller, protocol_id=protocol_id, clinic=clinic)
    copy = services.protocol_copy(caller=caller, clinic=clinic, protocol=protocol, name=payload.name)
    return Status(201, _protocol_out(copy))


@router.put(
    "/protocols/{protocol_id}", response=ProtocolOut, summary="Revise a clinic protocol (a new version)"
)
def revise_protocol(request: HttpRequest, protocol_id: int, payload: ProtocolContentIn) -> dict[str, Any]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.PROTOCOL_MANAGE)
    protocol = services.protocol_get(
        caller=caller, protocol_id=protocol_id, clinic=clinic, perm=Perm.PROTOCOL_MANAGE
    )
    if protocol.is_template:
        raise PermissionDenied
    data = payload.model_dump()
    data["areas"] = [services.ProtocolAreaIn(**row) for row in data["areas"]]
    services.protocol_revise(caller=caller, protocol=protocol, content=services.ProtocolContent(**data))
    return _protocol_out(protocol)


# --- plans --------------------------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/plans", response=list[PlanOut], summary="The patient's treatment plans")
def list_plans(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.PLAN_VIEW, audit=False)
    return [_plan_out(caller, plan) for plan in services.plans_of(caller=caller, patient=patient)]


@router.post(
    "/patients/{patient_id}/plans", response={201: PlanOut}, summary="Make a draft plan from a protocol"
)
def create_plan(request: HttpRequest, patient_id: int, payload: PlanCreateIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.PLAN_MANAGE, audit=False)
    protocol = services.protocols_for(patient.clinic).filter(pk=payload.protocol_id).first()
    if protocol is None:
        raise ValidationError({"protocol_id": [_("Unknown protocol.")]})
    plan = services.plan_create(caller=caller, patient=patient, protocol=protocol, data=_plan_in(payload))
    return Status(201, _plan_out(caller, services.plan_get(caller=caller, plan_id=plan.pk, audit=False)))


def _plan_in(payload: PlanCreateIn | PlanUpdateIn) -> services.PlanIn:
    return services.PlanIn(
        planned_sessions=payload.planned_sessions,
        areas=payload.areas,
        formula_ids=payload.formula_ids,
        procedures=[(p.procedure, p.note) for p in payload.procedures],
        goals=payload.goals,
    )


@router.get("/plans/{plan_id}", response=PlanOut, summary="A treatment plan")
def read_plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    return _plan_out(caller, services.plan_get(caller=caller, plan_id=plan_id))


@router.put("/plans/{plan_id}", response=PlanOut, summary="Edit a plan")
def update_plan(request: HttpRequest, plan_id: int, payload: PlanUpdateIn) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    services.plan_update(caller=caller, plan=plan, data=_plan_in(payload))
    return _plan_out(caller, services.plan_get(caller=caller, plan_id=plan_id, audit=False))


@router.post("/plans/{plan_id}/activate", response=PlanOut, summary="Activate a draft plan")
def activate_plan(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    services.plan_activate(caller=caller, plan=plan)
    return _plan_out(caller, services.plan_get(caller=caller, plan_id=plan_id, audit=False))


@router.post("/plans/{plan_id}/end", response=PlanOut, summary="Complete or stop a plan")
def end_plan(request: HttpRequest, plan_id: int, payload: PlanEndIn) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    services.plan_end(caller=caller, plan=plan, status=payload.status, reason=payload.reason)
    return _plan_out(caller, services.plan_get(caller=caller, plan_id=plan_id, audit=False))


@router.post("/plans/{plan_id}/improvement", response=PlanOut, summary="Record improvement (intervals taper)")
def record_improvement(request: HttpRequest, plan_id: int, payload: ImprovementIn) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    services.plan_record_improvement(caller=caller, plan=plan, on=payload.on)
    return _plan_out(caller, services.plan_get(caller=caller, plan_id=plan_id, audit=False))


@router.get("/plans/{plan_id}/gate", response=GateOut, summary="Evaluate the check-in gate for a date")
def read_gate(request: HttpRequest, plan_id: int, params: Query[GateParams]) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.GATE_VIEW, audit=False)
    on = params.on or plan.clinic.today()
    findings = services.gate_evaluate(caller=caller, plan=plan, on=on, practitioner_id=params.practitioner)
    return {
        "on": on,
        "can_start": not any(f.severity == "block" for f in findings),
        "findings": [f.as_dict() for f in findings],
    }


# --- sessions -----------------------------------------------------------------------------------------------


@router.post(
    "/plans/{plan_id}/sessions", response={201: SessionOut}, summary="Check in: open the next session"
)
def check_in(request: HttpRequest, plan_id: int, payload: CheckInIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.SESSION_CHECK_IN, audit=False)
    session = services.session_check_in(
        caller=caller,
        plan=plan,
        practitioner_id=payload.practitioner_id,
        room_id=payload.room_id,
        device_id=payload.device_id,
        acknowledgements=_acknowledgements(payload.acknowledgements),
    )
    return Status(
        201,
        _session_out(
            services.session_get(
                caller=caller, session_id=session.pk, perm=Perm.SESSION_CHECK_IN, audit=False
            )
        ),
    )


@router.get(
    "/sessions/cosign-queue", response=list[SessionSummaryOut], summary="Sessions waiting for co-signature"
)
def read_cosign_queue(request: HttpRequest) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.SESSION_COSIGN)
    return [
        {
            "id": s.pk,
            "plan": s.plan_id,
            "patient": s.patient_id,
            "patient_name": s.patient.full_name,
            "number": s.number,
            "session_date": s.session_date,
            "practitioner": s.practitioner.get_full_name() or s.practitioner.get_username(),
            "signed_at": s.signed_at,
        }
        for s in services.cosign_queue(caller=caller, clinic=clinic)
    ]


@router.get("/sessions/{session_id}", response=SessionOut, summary="A session and its chart")
def read_session(request: HttpRequest, session_id: int) -> dict[str, Any]:
    return _session_out(services.session_get(caller=Caller.of(request), session_id=session_id))


@router.put("/sessions/{session_id}/chart", response=SessionOut, summary="Save the chart of an open session")
def save_chart(request: HttpRequest, session_id: int, payload: ChartIn) -> dict[str, Any]:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.SESSION_CHART, audit=False, related=False
    )
    charted = services.session_chart(caller=caller, session=session, chart=_chart_in(payload))
    # The session as saved (read under the chart's lock and written by it): answered without reading it again,
    # after the same check as reading it.
    services.session_check(caller=caller, session=charted)
    return _session_out(charted)


@router.post("/sessions/{session_id}/sign", response=SessionOut, summary="Sign the session (then immutable)")
def sign_session(request: HttpRequest, session_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    session = services.session_get(caller=caller, session_id=session_id, perm=Perm.SESSION_CHART, audit=False)
    services.session_sign(caller=caller, session=session)
    return _session_out(services.session_get(caller=caller, session_id=session_id, audit=False))


@router.post(
    "/sessions/{session_id}/amendments", response={201: SessionOut}, summary="Amend a signed session"
)
def amend_session(request: HttpRequest, session_id: int, payload: AmendmentIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    session = services.session_get(caller=caller, session_id=session_id, perm=Perm.SESSION_CHART, audit=False)
    services.session_amend(caller=caller, session=session, chart=_chart_in(payload), reason=payload.reason)
    return Status(201, _session_out(services.session_get(caller=caller, session_id=session_id, audit=False)))


@router.post(
    "/sessions/{session_id}/cosign", response=SessionOut, summary="Co-sign a session (medical director)"
)
def cosign_session(request: HttpRequest, session_id: int, payload: CosignIn) -> dict[str, Any]:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.SESSION_COSIGN, audit=False
    )
    services.session_cosign(caller=caller, session=session, note=payload.note)
    return _session_out(services.session_get(caller=caller, session_id=session_id, audit=False))


@router.get(
    "/sessions/{session_id}/aftercare", response=AftercareOut, summary="The aftercare issued at sign-off"
)
def read_aftercare(request: HttpRequest, session_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.AFTERCARE_VIEW, audit=False
    )
    aftercare = services.aftercare_get(caller=caller, session=session)
    return {
        "session": session.pk,
        "issued_at": aftercare.issued_at,
        "language": aftercare.language,
        "instructions": aftercare.instructions,
        "note": aftercare.note,
    }


@router.get(
    "/sessions/{session_id}/aftercare.pdf",
    summary="The aftercare instructions as a PDF",
    response={200: None},
)
def read_aftercare_pdf(request: HttpRequest, session_id: int) -> HttpResponse:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.AFTERCARE_VIEW, audit=False
    )
    aftercare = services.aftercare_get(caller=caller, session=session, action=Action.AFTERCARE_PRINT)
    return aftercare_pdf(session, aftercare)

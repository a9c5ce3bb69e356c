"""Side effects, follow-ups, signals and the safety report. Thin: parse, call the service, shape it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Query, Router, Status, UploadedFile

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import clinic_for_api
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.audit.models import Action
from mesoclinic.lib.ids import id_or_404
from mesoclinic.patients.services import patient_get
from mesoclinic.safety import documents, rules, services
from mesoclinic.safety.models import AdverseEvent, FollowUp, SafetySignal
from mesoclinic.safety.schemas import (
    ClinicParams,
    EventIn,
    EventOut,
    EventSummaryOut,
    FollowUpOut,
    FollowUpParams,
    KindOut,
    NoteIn,
    ReasonIn,
    ReportOut,
    ReportParams,
    ScanOut,
    SignalDetailOut,
    SignalOut,
)

router = Router(tags=["safety"])


# --- shaping ------------------------------------------------------------------------------------------------


def _event_in(payload: EventIn) -> services.EventIn:
    return services.EventIn(
        kind=payload.kind,
        onset_on=payload.onset_on,
        severity=payload.severity,
        area=payload.area,
        other_kind=payload.other_kind,
        serious_criteria=tuple(payload.serious_criteria),
        resolved_on=payload.resolved_on,
        outcome=payload.outcome,
        actions=tuple(payload.actions),
        actions_note=payload.actions_note,
        description=payload.description,
        clinical_note=payload.clinical_note,
        session_id=payload.session_id,
    )


def _follow_up_out(follow_up: FollowUp) -> dict[str, Any]:
    return {
        "id": follow_up.pk,
        "event": follow_up.event_id,
        "patient": follow_up.patient_id,
        "kind": follow_up.kind,
        "due_on": follow_up.due_on,
        "status": follow_up.status,
        "assigned_to": follow_up.assigned_to_id,
        "note": follow_up.note,
        "closed_at": follow_up.closed_at,
    }


def _event_out(request: HttpRequest, event: AdverseEvent) -> dict[str, Any]:
    links = services.event_links(event)
    today = event.clinic.today()
    clinical = can(request.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=event.clinic_id)
    return {
        "id": event.pk,
        "patient": event.patient_id,
        "kind": event.kind,
        "kind_label": event.kind_label,
        "other_kind": event.other_kind,
        "area": event.area.code if event.area else "",
        "severity": event.severity,
        "serious": event.serious,
        "serious_criteria": event.serious_criteria,
        "onset_on": event.onset_on,
        "resolved_on": event.resolved_on,
        "expected_end_on": event.expected_end_on,
        "past_expected_course": event.retracted_at is None
        and rules.past_course(event.expected_end_on, event.resolved_on, today),
        "outcome": event.outcome,
        "actions": event.actions,
        "actions_note": event.actions_note,
        "description": event.description,
        "clinical_note": event.clinical_note if clinical else None,
        "reported_via": event.reported_via,
        "reported_at": event.reported_at,
        "reviewed_at": event.reviewed_at,
        "retracted_at": event.retracted_at,
        "retract_reason": event.retract_reason,
        "has_photo": event.has_photo,
        "sessions": [
            {
                "session": link.session_id,
                "primary": link.primary,
                "session_date": link.session_date,
                "days_after": link.days_after,
                "practitioner": link.practitioner_id,
                "room_id": link.room_id,
                "device_id": link.device_id,
            }
            for link in links.sessions
        ],
        "formulas": [
            {"session": f.session_id, "formula": f.formula_id, "version": f.version, "name": f.name}
            for f in links.formulas
        ],
        "lots": [
            {
                "lot": link.lot_id,
                "number": link.lot.number,
                "product": link.lot.product.name,
                "via": link.via,
                "session": link.session_id,
                "exposed_on": link.exposed_on,
            }
            for link in links.lots
        ],
        "follow_ups": [_follow_up_out(f) for f in links.follow_ups],
    }


def _signal_out(signal: SafetySignal) -> dict[str, Any]:
    return {
        "id": signal.pk,
        "source_kind": signal.source_kind,
        "source_key": signal.source_key,
        "source_label": signal.source_label,
        "lot_id": signal.lot_id,
        "recall_url": reverse("formulary:lot", args=[signal.lot_id]) if signal.lot_id else None,
        "level": signal.level,
        "active": signal.active,
        "status": signal.status,
        "cases": signal.cases,
        "exposed": signal.exposed,
        "exposed_sessions": signal.exposed_sessions,
        "rate": signal.rate,
        "baseline_cases": signal.baseline_cases,
        "baseline_patients": signal.baseline_patients,
        "baseline_rate": signal.baseline_rate,
        "p_value": signal.p_value,
        "adjusted_p": signal.adjusted_p,
        "window_start": signal.window_start,
        "window_end": signal.window_end,
        "period_start": signal.period_start,
        "first_raised_at": signal.first_raised_at,
        "last_scanned_at": signal.last_scanned_at,
        "review_note": signal.review_note,
    }


def _rate_out(row: rules.RateRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "sessions": row.sessions,
        "sessions_with_event": row.with_event,
        "per_100": row.per_100,
        "ci95_low_per_100": row.low_per_100,
        "ci95_high_per_100": row.high_per_100,
        "small_sample": row.small_sample,
    }


# --- events -------------------------------------------------------------------------------------------------


@router.get(
    "/adverse-event-kinds", response=list[KindOut], summary="The side effects and their expected course"
)
def list_kinds(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "code": kind.code,
            "label": rules.kind_label(kind.code),
            "course": _(kind.course),
            "course_days": kind.course_days,
            "link_window_days": rules.link_window_days(kind.code),
            "source": kind.source,
        }
        for kind in rules.KINDS.values()
    ]


@router.get(
    "/patients/{patient_id}/adverse-events",
    response=list[EventSummaryOut],
    summary="A patient's side effects",
)
def list_events(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=id_or_404(patient_id), perm=Perm.ADVERSE_EVENT_VIEW, audit=False
    )
    events = services.events_of(caller=caller, patient=patient)
    return [
        {
            "id": event.pk,
            "kind": event.kind,
            "kind_label": event.kind_label,
            "area": event.area.code if event.area else "",
            "severity": event.severity,
            "serious": event.serious,
            "onset_on": event.onset_on,
            "resolved_on": event.resolved_on,
            "outcome": event.outcome,
            "reported_via": event.reported_via,
            "retracted": event.retracted_at is not None,
            "has_photo": event.has_photo,
            "session": next((link.session_id for link in getattr(event, "primary_links", [])), None),
        }
        for event in events
    ]


@router.post(
    "/patients/{patient_id}/adverse-events",
    response={201: EventOut},
    summary="Record a side effect (staff), or report one about yourself (patient)",
)
def record_event(request: HttpRequest, patient_id: int, payload: EventIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=id_or_404(patient_id), audit=False)
    event = services.event_record(caller=caller, patient=patient, data=_event_in(payload))
    return Status(201, _event_out(request, services.event_get(caller=caller, event_id=event.pk, audit=False)))


@router.get("/adverse-events/{event_id}", response=EventOut, summary="A side effect and what it is linked to")
def read_event(request: HttpRequest, event_id: int) -> dict[str, Any]:
    event = services.event_get(caller=Caller.of(request), event_id=event_id)
    return _event_out(request, event)


@router.put("/adverse-events/{event_id}", response=EventOut, summary="Correct or complete a side effect")
def update_event(request: HttpRequest, event_id: int, payload: EventIn) -> dict[str, Any]:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_RECORD, audit=False)
    services.event_update(caller=caller, event=event, data=_event_in(payload))
    return _event_out(request, services.event_get(caller=caller, event_id=event.pk, audit=False))


@router.post(
    "/adverse-events/{event_id}/review", response=EventOut, summary="Mark a patient's report as read"
)
def review_event(request: HttpRequest, event_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_RECORD, audit=False)
    services.event_review(caller=caller, event=event)
    return _event_out(request, services.event_get(caller=caller, event_id=event.pk, audit=False))


@router.post("/adverse-events/{event_id}/retract", response=EventOut, summary="Mark as entered in error")
def retract_event(request: HttpRequest, event_id: int, payload: ReasonIn) -> dict[str, Any]:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_RECORD, audit=False)
    services.event_retract(caller=caller, event=event, reason=payload.reason)
    return _event_out(request, services.event_get(caller=caller, event_id=event.pk, audit=False))


@router.post(
    "/adverse-events/{event_id}/photo",
    response={201: EventOut},
    summary="Add the photo (multipart field 'photo': JPEG, PNG or WebP, at most 10 MB; re-encoded)",
)
def add_photo(request: HttpRequest, event_id: int, photo: File[UploadedFile]) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, audit=False)
    content = photo.read(services.MAX_PHOTO_BYTES + 1)
    services.event_photo_add(caller=caller, event=event, photo=services.PhotoIn(content, photo.name or ""))
    return Status(201, _event_out(request, services.event_get(caller=caller, event_id=event.pk, audit=False)))


@router.get("/adverse-events/{event_id}/photo", summary="The photo (never cached; never the front desk's)")
def read_photo(request: HttpRequest, event_id: int) -> HttpResponse:
    caller = Caller.of(request)
    event = services.event_get(
        caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_PHOTO_VIEW, audit=False
    )
    content, content_type = services.event_photo(caller=caller, event=event)
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "no-store, private"
    return response


# --- follow-ups ---------------------------------------------------------------------------------------------


@router.get("/follow-ups", response=list[FollowUpOut], summary="Side-effect follow-ups of the clinic")
def list_follow_ups(request: HttpRequest, params: Query[FollowUpParams]) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.FOLLOW_UP_MANAGE, params.clinic_id)
    rows = services.follow_ups_of(caller=caller, clinic=clinic, status=params.status, mine=params.mine)
    return [_follow_up_out(f) for f in rows]


@router.post("/follow-ups/{follow_up_id}/close", response=FollowUpOut, summary="Close a follow-up")
def close_follow_up(request: HttpRequest, follow_up_id: int, payload: NoteIn) -> dict[str, Any]:
    caller = Caller.of(request)
    follow_up = services.follow_up_get(caller=caller, follow_up_id=follow_up_id)
    return _follow_up_out(services.follow_up_close(caller=caller, follow_up=follow_up, note=payload.note))


# --- signals ------------------------------------------------------------------------------------------------


@router.get("/safety/signals", response=list[SignalOut], summary="Infection signals (R-SIGNAL)")
def list_signals(request: HttpRequest, params: Query[ClinicParams]) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.SIGNAL_VIEW, params.clinic_id)
    return [_signal_out(signal) for signal in services.signals_of(caller=caller, clinic=clinic)]


@router.post("/safety/signals/scan", response=ScanOut, summary="Scan the clinic's infections now")
def scan_signals(request: HttpRequest, params: Query[ClinicParams]) -> dict[str, Any]:
    caller = Caller.of(request)
    clinic = clinic_for_api(request, Perm.SIGNAL_REVIEW, params.clinic_id)
    outcome = services.signals_scan(caller=caller, clinic=clinic)
    return {
        "today": outcome.result.today,
        "window_start": outcome.result.window_start,
        "period_start": outcome.result.period_start,
        "infections": outcome.result.infections,
        "treated_patients": outcome.result.treated_patients,
        "seconds": outcome.seconds,
        "signals": [_signal_out(signal) for signal in outcome.signals],
    }


@router.get("/safety/signals/{signal_id}", response=SignalDetailOut, summary="A signal and its evidence")
def read_signal(request: HttpRequest, signal_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    signal = services.signal_get(caller=caller, signal_id=signal_id)
    evidence = services.signal_evidence(caller=caller, signal=signal)
    return {
        **_signal_out(signal),
        "events": [
            {"id": e.pk, "patient": e.patient_id, "onset_on": e.onset_on, "reported_via": e.reported_via}
            for e in evidence.events
        ],
        "sessions": [session.pk for session in evidence.sessions],
        "within": [[kind, key] for kind, key, _label in evidence.within],
    }


@router.post("/safety/signals/{signal_id}/review", response=SignalOut, summary="Review a signal")
def review_signal(request: HttpRequest, signal_id: int, payload: NoteIn) -> dict[str, Any]:
    caller = Caller.of(request)
    signal = services.signal_get(caller=caller, signal_id=signal_id, perm=Perm.SIGNAL_REVIEW)
    return _signal_out(services.signal_review(caller=caller, signal=signal, note=payload.note))


# --- the safety report --------------------------------------------------------------------------------------


def _report(request: HttpRequest, params: ReportParams, action: Action) -> services.SafetyReport:
    clinic = clinic_for_api(request, Perm.SAFETY_REPORT_VIEW, params.clinic_id)
    return services.safety_report(
        caller=Caller.of(request),
        clinic=clinic,
        start=params.start,
        end=params.end,
        kind=params.kind,
        action=action,
    )


@router.get(
    "/safety/report",
    response=ReportOut,
    summary="Adverse events per 100 sessions with Wilson intervals (aggregates only)",
)
def read_report(request: HttpRequest, params: Query[ReportParams]) -> dict[str, Any]:
    report = _report(request, params, Action.SAFETY_REPORT_READ)
    return {
        "clinic": report.clinic.pk,
        "start": report.start,
        "end": report.end,
        "kind": report.kind,
        "small_sample_below_sessions": report.small_below,
        "total": _rate_out(report.total) if report.total else None,
        "by_protocol": [_rate_out(row) for row in report.by_protocol],
        "by_formula": [_rate_out(row) for row in report.by_formula],
        "by_practitioner": [_rate_out(row) for row in report.by_practitioner],
        "by_area": [_rate_out(row) for row in report.by_area],
        "unlinked_events": report.unlinked_events,
    }


@router.get("/safety/report.csv", summary="The safety report as CSV")
def read_report_csv(request: HttpRequest, params: Query[ReportParams]) -> HttpResponse:
    return documents.report_csv_response(_report(request, params, Action.SAFETY_REPORT_EXPORT))


@router.get("/safety/report.pdf", summary="The safety report as PDF")
def read_report_pdf(request: HttpRequest, params: Query[ReportParams]) -> HttpResponse:
    return documents.report_pdf_response(_report(request, params, Action.SAFETY_REPORT_EXPORT))

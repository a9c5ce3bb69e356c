"""Side-effect pages: the practitioner's safety dashboard, a patient's side effects, recording and
following them, the signals with their evidence, the safety report, and the patient's own reports in the
portal. Thin: every read and write goes through ``safety.services``, exactly as the API does."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.audit.models import Action
from mesoclinic.clinics.models import Clinic
from mesoclinic.lib.ids import id_or_404
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get
from mesoclinic.safety import documents, rules, services
from mesoclinic.safety.forms import EventForm, NoteForm, PhotoForm, ReportForm, RetractForm, SettingsForm
from mesoclinic.safety.models import AdverseEvent
from mesoclinic.treatments.bodymap import map_views
from mesoclinic.treatments.services import body_areas


def _clinic(request: HttpRequest, perm: Perm) -> Clinic:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, perm, clinic_id=clinic.pk):
        raise PermissionDenied
    return clinic


def _apply_errors(form: Any, error: ValidationError) -> list[str]:
    """Put each message on its field; answer the ones that belong to no field."""
    loose: list[str] = []
    names = {"session_id": "session"}
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    for name, field_messages in error.message_dict.items():
        target = names.get(name, name)
        for message in field_messages:
            if target in form.fields:
                form.add_error(target, message)
            else:
                loose.append(message)
    return loose


def _messages_of(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for group in error.message_dict.values() for message in group]
    return list(error.messages)


def _kinds() -> list[dict[str, Any]]:
    return [
        {
            "code": kind.code,
            "label": _(kind.label),
            "course": _(kind.course),
            "days": kind.course_days,
            "source": kind.source,
        }
        for kind in rules.KINDS.values()
    ]


# --- the practitioner's dashboard ---------------------------------------------------------------------------


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.FOLLOW_UP_MANAGE)
    board = services.dashboard(caller=Caller.of(request), clinic=clinic)
    return render(
        request,
        "safety/dashboard.html",
        {
            "clinic": clinic,
            "board": board,
            "kinds": _kinds(),
            "close_form": NoteForm(),
            "can_scan": can(request.user, Perm.SIGNAL_REVIEW, clinic_id=clinic.pk),
            "can_settings": can(request.user, Perm.SAFETY_SETTINGS_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
@require_POST
def follow_up_close(request: HttpRequest, follow_up_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    follow_up = services.follow_up_get(caller=caller, follow_up_id=follow_up_id)
    form = NoteForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"note": [_("Say what the follow-up found.")]})
        services.follow_up_close(caller=caller, follow_up=follow_up, note=form.cleaned_data["note"])
    except ValidationError as error:
        for message in _messages_of(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Follow-up closed."))
    return redirect("safety:dashboard")


# --- a patient's side effects -------------------------------------------------------------------------------


@login_required
@require_safe
def panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient page's "Side effects" section (loaded by htmx, so the record itself opens at once)."""
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=id_or_404(patient_id), perm=Perm.ADVERSE_EVENT_VIEW, audit=False
    )
    events = services.events_of(caller=caller, patient=patient)
    template = "safety/_panel.html" if request.headers.get("HX-Request") else "safety/panel_page.html"
    return render(
        request,
        template,
        {
            "patient": patient,
            "events": events,
            "today": patient.clinic.today(),
            "can_record": can(request.user, Perm.ADVERSE_EVENT_RECORD, clinic_id=patient.clinic_id),
        },
    )


def _event_form_page(
    request: HttpRequest, patient: Patient, form: EventForm, event: AdverseEvent | None, problems: list[str]
) -> HttpResponse:
    areas = body_areas()
    chosen = form["area"].value() or ""
    return render(
        request,
        "safety/event_form.html",
        {
            "patient": patient,
            "event": event,
            "form": form,
            "problems": problems,
            "views": map_views(areas, planned=[chosen] if chosen else []),
        },
        status=422 if problems or form.errors else 200,
    )


@login_required
def event_new(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=id_or_404(patient_id), perm=Perm.ADVERSE_EVENT_RECORD, audit=False
    )
    form = EventForm(
        request.POST or None,
        request.FILES or None,
        areas=body_areas(),
        sessions=services.patient_sessions(patient),
        initial={"onset_on": patient.clinic.today()},
    )
    problems: list[str] = []
    if request.method == "POST":
        if form.is_valid():
            try:
                event = services.event_record(
                    caller=caller, patient=patient, data=form.event_in(), photo=form.photo_in()
                )
            except ValidationError as error:
                problems = _apply_errors(form, error)
            else:
                messages.success(request, _("Side effect recorded and linked to the session before it."))
                return redirect("safety:event", event_id=event.pk)
        problems = problems or [_("Some fields are not valid: see below.")]
    return _event_form_page(request, patient, form, None, problems)


@login_required
@require_safe
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id)
    links = services.event_links(event)
    clinical = can(request.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=event.clinic_id)
    return render(
        request,
        "safety/event_detail.html",
        {
            "event": event,
            "links": links,
            "clinical": clinical,
            "today": event.clinic.today(),
            "past_course": rules.past_course(event.expected_end_on, event.resolved_on, event.clinic.today())
            and event.retracted_at is None,
            "views": map_views(
                body_areas(), planned=[event.area.code] if event.area else [], only_charted=False
            ),
            "severity": rules.label_of(rules.SEVERITIES, event.severity),
            "outcome": rules.label_of(rules.OUTCOMES, event.outcome),
            "criteria": [rules.label_of(rules.SERIOUS_CRITERIA, c) for c in event.serious_criteria],
            "actions": [rules.label_of(rules.ACTIONS, c) for c in event.actions],
            "can_record": can(request.user, Perm.ADVERSE_EVENT_RECORD, clinic_id=event.clinic_id),
            "can_photo": can(request.user, Perm.ADVERSE_EVENT_PHOTO_VIEW, clinic_id=event.clinic_id),
            "retract_form": RetractForm(),
            "photo_form": PhotoForm(),
            "close_form": NoteForm(),
        },
    )


@login_required
def event_edit(request: HttpRequest, event_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_RECORD, audit=False)
    if event.retracted_at is not None:
        return redirect("safety:event", event_id=event.pk)
    current = services.event_in(event)
    primary = event.session_links.filter(primary=True).values_list("session_id", flat=True).first()
    initial = {
        **current.__dict__,
        "session": str(primary) if primary else "",
        # The outcome the dates give is shown as "from the dates", so that a resolution date alone is enough.
        "outcome": "" if current.outcome in ("not-recovered", "recovered") else current.outcome,
    }
    form = EventForm(
        request.POST or None,
        areas=body_areas(),
        sessions=services.patient_sessions(event.patient),
        photo=False,
        initial=initial,
    )
    problems: list[str] = []
    if request.method == "POST":
        if form.is_valid():
            data = form.event_in()
            if data.session_id is not None and data.session_id == primary:
                data = services.EventIn(**{**data.__dict__, "session_id": None})
            try:
                services.event_update(caller=caller, event=event, data=data)
            except ValidationError as error:
                problems = _apply_errors(form, error)
            else:
                messages.success(request, _("Side effect updated."))
                return redirect("safety:event", event_id=event.pk)
        problems = problems or [_("Some fields are not valid: see below.")]
    return _event_form_page(request, event.patient, form, event, problems)


@login_required
@require_POST
def event_review(request: HttpRequest, event_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_RECORD, audit=False)
    services.event_review(caller=caller, event=event)
    messages.success(request, _("Marked as reviewed."))
    if request.POST.get("next") == "dashboard":
        return redirect("safety:dashboard")
    return redirect("safety:event", event_id=event.pk)


@login_required
@require_POST
def event_retract(request: HttpRequest, event_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_RECORD, audit=False)
    form = RetractForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"reason": [_("Say why it was entered in error.")]})
        services.event_retract(caller=caller, event=event, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        for message in _messages_of(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Marked as entered in error: no longer linked, followed or counted."))
    return redirect("safety:event", event_id=event.pk)


@login_required
@require_POST
def event_photo_add(request: HttpRequest, event_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    event = services.event_get(caller=caller, event_id=event_id, audit=False)
    own = event.patient.user_id == request.user.pk
    form = PhotoForm(request.POST, request.FILES)
    try:
        if not form.is_valid():
            raise ValidationError({"photo": [m for group in form.errors.values() for m in group]})
        services.event_photo_add(caller=caller, event=event, photo=form.photo_in())
    except ValidationError as error:
        for message in _messages_of(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Photo added."))
    return redirect("safety:portal") if own else redirect("safety:event", event_id=event.pk)


@login_required
@require_safe
def event_photo(request: HttpRequest, event_id: int) -> HttpResponse:
    """The photo, to the clinicians and to the patient it shows (never the front desk), never cached."""
    caller = Caller.of(request)
    event = services.event_get(
        caller=caller, event_id=event_id, perm=Perm.ADVERSE_EVENT_PHOTO_VIEW, audit=False
    )
    content, content_type = services.event_photo(caller=caller, event=event)
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "no-store, private"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    return response


# --- signals ----------------------------------------------------------------------------------------------


@login_required
@require_safe
def signals(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.SIGNAL_VIEW)
    found = services.signals_of(caller=Caller.of(request), clinic=clinic)
    return render(
        request,
        "safety/signals.html",
        {
            "clinic": clinic,
            "signals": found,
            "source_labels": {k: _(v) for k, v in rules.SOURCE_LABELS.items()},
            "can_scan": can(request.user, Perm.SIGNAL_REVIEW, clinic_id=clinic.pk),
            "thresholds": services.settings_of(clinic),
        },
    )


@login_required
@require_POST
def scan(request: HttpRequest) -> HttpResponseBase:
    clinic = _clinic(request, Perm.SIGNAL_REVIEW)
    outcome = services.signals_scan(caller=Caller.of(request), clinic=clinic)
    alerts = sum(1 for s in outcome.result.signals if s.level == "alert")
    messages.success(
        request,
        _("Scanned %(infections)d infections: %(signals)d signals, %(alerts)d alerts.")
        % {"infections": outcome.result.infections, "signals": len(outcome.result.signals), "alerts": alerts},
    )
    return redirect("safety:signals")


@login_required
@require_safe
def signal_detail(request: HttpRequest, signal_id: int) -> HttpResponse:
    caller = Caller.of(request)
    signal = services.signal_get(caller=caller, signal_id=signal_id)
    evidence = services.signal_evidence(caller=caller, signal=signal)
    return render(
        request,
        "safety/signal_detail.html",
        {
            "signal": signal,
            "evidence": evidence,
            "source_kind": rules.label_of(rules.SOURCE_LABELS, signal.source_kind),
            "rate_pct": 100 * signal.rate,
            "baseline_pct": 100 * signal.baseline_rate,
            "can_review": can(request.user, Perm.SIGNAL_REVIEW, clinic_id=signal.clinic_id),
            "review_form": NoteForm(),
            "recall_reason": _("Safety signal: %(cases)d infections among %(exposed)d exposed patients.")
            % {"cases": signal.cases, "exposed": signal.exposed},
        },
    )


@login_required
@require_POST
def signal_review(request: HttpRequest, signal_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    signal = services.signal_get(caller=caller, signal_id=signal_id, perm=Perm.SIGNAL_REVIEW)
    form = NoteForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"note": [_("Say what was found and done.")]})
        services.signal_review(caller=caller, signal=signal, note=form.cleaned_data["note"])
    except ValidationError as error:
        for message in _messages_of(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Signal reviewed."))
    return redirect("safety:signal", signal_id=signal.pk)


# --- the safety report ------------------------------------------------------------------------------------


def _report(
    request: HttpRequest, action: Action
) -> tuple[ReportForm, services.SafetyReport | None, list[str]]:
    clinic = _clinic(request, Perm.SAFETY_REPORT_VIEW)
    form = ReportForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return form, None, [_("Some fields are not valid: see below.")]
    data = form.cleaned_data if form.is_bound else {}
    try:
        report = services.safety_report(
            caller=Caller.of(request),
            clinic=clinic,
            start=data.get("start"),
            end=data.get("end"),
            kind=data.get("kind") or "",
            action=action,
        )
    except ValidationError as error:
        return form, None, _apply_errors(form, error) or [_("Some fields are not valid: see below.")]
    return form, report, []


@login_required
@require_safe
def report(request: HttpRequest) -> HttpResponse:
    form, found, problems = _report(request, Action.SAFETY_REPORT_READ)
    return render(
        request,
        "safety/report.html",
        {"form": form, "report": found, "problems": problems, "query": request.GET.urlencode()},
        status=422 if problems else 200,
    )


@login_required
@require_safe
def report_csv(request: HttpRequest) -> HttpResponse:
    form, found, problems = _report(request, Action.SAFETY_REPORT_EXPORT)
    if found is None:
        return HttpResponse(" ".join(problems), status=422, content_type="text/plain; charset=utf-8")
    return documents.report_csv_response(found)


@login_required
@require_safe
def report_pdf(request: HttpRequest) -> HttpResponse:
    form, found, problems = _report(request, Action.SAFETY_REPORT_EXPORT)
    if found is None:
        return HttpResponse(" ".join(problems), status=422, content_type="text/plain; charset=utf-8")
    return documents.report_pdf_response(found)


@login_required
def settings_page(request: HttpRequest) -> HttpResponseBase:
    clinic = _clinic(request, Perm.SAFETY_SETTINGS_MANAGE)
    current = services.settings_of(clinic)
    form = SettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.settings_update(caller=Caller.of(request), clinic=clinic, values=form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Settings saved. They apply from the next scan."))
            return redirect("safety:settings")
    return render(request, "safety/settings.html", {"form": form}, status=422 if form.errors else 200)


# --- the patient's own reports ----------------------------------------------------------------------------


def _own_patient(request: HttpRequest) -> Patient:
    if not request.user.is_authenticated:
        raise Http404
    patient = Patient.objects.filter(user_id=request.user.pk).values_list("pk", flat=True).first()
    if patient is None:
        raise Http404(_("There is no patient record linked to this account."))
    return patient_get(
        caller=Caller.of(request), patient_id=patient, perm=Perm.ADVERSE_EVENT_REPORT, audit=False
    )


@login_required
def portal(request: HttpRequest) -> HttpResponseBase:
    """The patient's side effects and a form to report one (with a photo if they wish)."""
    caller = Caller.of(request)
    patient = _own_patient(request)
    form = EventForm(
        request.POST or None,
        request.FILES or None,
        areas=body_areas(),
        staff=False,
        initial={"onset_on": patient.clinic.today()},
    )
    problems: list[str] = []
    if request.method == "POST":
        if form.is_valid():
            try:
                services.event_record(
                    caller=caller, patient=patient, data=form.event_in(), photo=form.photo_in()
                )
            except ValidationError as error:
                problems = _apply_errors(form, error)
            else:
                messages.success(
                    request, _("Thank you: the clinic has your report and will contact you if needed.")
                )
                return redirect("safety:portal")
        problems = problems or [_("Some fields are not valid: see below.")]
    events = services.events_of(caller=caller, patient=patient)
    return render(
        request,
        "safety/portal.html",
        {"patient": patient, "events": events, "form": form, "problems": problems, "photo_form": PhotoForm()},
        status=422 if problems else 200,
    )

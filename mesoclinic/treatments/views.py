"""Protocol, plan, check-in, charting, sign-off, co-signature and aftercare pages.

Thin: every read and write goes through ``treatments.services``, exactly as the API does."""

from __future__ import annotations

import json
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.audit.models import Action
from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary.models import Formula
from mesoclinic.lib.findings import Finding, FindingsRefused
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get
from mesoclinic.treatments import rules, services
from mesoclinic.treatments.bodymap import map_views
from mesoclinic.treatments.documents import aftercare_pdf
from mesoclinic.treatments.forms import (
    AreaFormSet,
    CheckInForm,
    EndPlanForm,
    PlanForm,
    ProtocolAreaFormSet,
    ProtocolCopyForm,
    ProtocolForm,
    SessionForm,
    acknowledgements_from,
    apply_chart_errors,
    chart_in,
)
from mesoclinic.treatments.models import Technique, TreatmentPlan, TreatmentSession


def _clinic(request: HttpRequest, perm: Perm) -> Clinic:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, perm, clinic_id=clinic.pk):
        raise PermissionDenied
    return clinic


def _finding_rows(findings: list[Finding], acknowledgements: dict[str, str]) -> list[tuple[Finding, str]]:
    return [(finding, acknowledgements.get(finding.key, "")) for finding in findings]


def _error_messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


# --- protocols ----------------------------------------------------------------------------------------------


@login_required
def protocol_list(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.PROTOCOL_VIEW)
    protocols = list(services.protocols_for(clinic).filter(is_active=True).order_by("clinic_id", "name"))
    return render(
        request,
        "treatments/protocol_list.html",
        {
            "templates": [p for p in protocols if p.is_template],
            "own": [p for p in protocols if not p.is_template],
            "can_manage": can(request.user, Perm.PROTOCOL_MANAGE, clinic_id=clinic.pk),
        },
    )


@login_required
def protocol_detail(request: HttpRequest, protocol_id: int) -> HttpResponse:
    clinic = _clinic(request, Perm.PROTOCOL_VIEW)
    protocol = services.protocol_get(caller=Caller.of(request), protocol_id=protocol_id, clinic=clinic)
    version = services.current_version(protocol)
    can_manage = can(request.user, Perm.PROTOCOL_MANAGE, clinic_id=clinic.pk)
    return render(
        request,
        "treatments/protocol_detail.html",
        {
            "protocol": protocol,
            "version": version,
            "versions": protocol.versions.order_by("-number"),
            "measures": [rules.measure_label(code) for code in version.outcome_measures],
            "combinations": [rules.procedure_label(code) for code in version.combinations],
            "alternatives": [rules.procedure_label(code) for code in version.alternatives],
            "aftercare": rules.aftercare_texts(version.aftercare),
            "can_manage": can_manage,
            "copy_form": ProtocolCopyForm(initial={"name": protocol.name}),
        },
    )


@login_required
@require_POST
def protocol_copy(request: HttpRequest, protocol_id: int) -> HttpResponseBase:
    clinic = _clinic(request, Perm.PROTOCOL_MANAGE)
    caller = Caller.of(request)
    protocol = services.protocol_get(caller=caller, protocol_id=protocol_id, clinic=clinic)
    form = ProtocolCopyForm(request.POST)
    if form.is_valid():
        try:
            copy = services.protocol_copy(
                caller=caller, clinic=clinic, protocol=protocol, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            for message in _error_messages(error):
                messages.error(request, message)
        else:
            messages.success(request, _("Copied into the clinic: you can now edit it."))
            return redirect("treatments:protocol", protocol_id=copy.pk)
    return redirect("treatments:protocol", protocol_id=protocol.pk)


@login_required
def protocol_edit(request: HttpRequest, protocol_id: int) -> HttpResponse | HttpResponseBase:
    clinic = _clinic(request, Perm.PROTOCOL_MANAGE)
    caller = Caller.of(request)
    protocol = services.protocol_get(
        caller=caller, protocol_id=protocol_id, clinic=clinic, perm=Perm.PROTOCOL_MANAGE
    )
    if protocol.is_template:
        raise PermissionDenied
    version = services.current_version(protocol)
    content = services.content_of(version)
    formulas = list(Formula.objects.filter(clinic=clinic, is_active=True))
    areas = services.body_areas()
    techniques = list(Technique.objects.all())
    initial = {
        **{name: getattr(content, name) for name in ProtocolForm.base_fields if hasattr(content, name)},
        "formulas": [str(pk) for pk in content.formula_ids],
    }
    form = ProtocolForm(request.POST or None, initial=initial, formulas=formulas)
    area_formset = ProtocolAreaFormSet(
        request.POST or None,
        prefix="areas",
        initial=[row.__dict__ for row in content.areas],
        areas=areas,
        techniques=techniques,
    )
    problems: list[str] = []
    if request.method == "POST" and form.is_valid() and area_formset.is_valid():
        data = form.cleaned_data
        rows = [
            services.ProtocolAreaIn(
                f.cleaned_data["area"],
                f.cleaned_data["technique"],
                f.cleaned_data["depth_min_mm"],
                f.cleaned_data["depth_max_mm"],
            )
            for f in area_formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        new_content = services.ProtocolContent(
            sessions_min=data["sessions_min"],
            sessions_max=data["sessions_max"],
            interval_min_days=data["interval_min_days"],
            interval_max_days=data["interval_max_days"],
            areas=rows,
            summary=data["summary"],
            formula_note=data["formula_note"],
            taper_interval_min_days=data["taper_interval_min_days"],
            taper_interval_max_days=data["taper_interval_max_days"],
            maintenance_interval_days=data["maintenance_interval_days"],
            outcome_measures=data["outcome_measures"],
            non_responder_after_sessions=data["non_responder_after_sessions"],
            responder_rule=data["responder_rule"],
            combinations=data["combinations"],
            alternatives=data["alternatives"],
            aftercare=data["aftercare"],
            aftercare_note=data["aftercare_note"],
            formula_ids=[int(pk) for pk in data["formulas"]],
            source=data["source"],
        )
        try:
            services.protocol_revise(caller=caller, protocol=protocol, content=new_content)
        except ValidationError as error:
            for name, field_messages in error.message_dict.items():
                if name in form.fields:
                    for message in field_messages:
                        form.add_error(name, message)
                else:
                    problems.extend(field_messages)
        else:
            messages.success(
                request, _("Saved as a new version. Plans keep the version they were made from.")
            )
            return redirect("treatments:protocol", protocol_id=protocol.pk)
    return render(
        request,
        "treatments/protocol_form.html",
        {
            "protocol": protocol,
            "version": version,
            "form": form,
            "area_formset": area_formset,
            "problems": problems,
        },
        status=400 if request.method == "POST" else 200,
    )


# --- plans --------------------------------------------------------------------------------------------------


@login_required
def plans_panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient page's "Treatment plans" section (loaded by htmx so the record opens at once)."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.PLAN_VIEW, audit=False)
    plans = services.plans_of(caller=caller, patient=patient)
    return render(
        request,
        "treatments/_plans_panel.html",
        {
            "patient": patient,
            "plans": plans,
            "can_manage": can(request.user, Perm.PLAN_MANAGE, clinic_id=patient.clinic_id, patient=patient),
        },
    )


@login_required
def plan_new(request: HttpRequest, patient_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.PLAN_MANAGE)
    protocols = list(
        services.protocols_for(patient.clinic).filter(is_active=True).order_by("clinic_id", "name")
    )
    chosen_id = request.POST.get("protocol") or request.GET.get("protocol")
    protocol = next((p for p in protocols if str(p.pk) == chosen_id), None)
    if protocol is None:
        return render(request, "treatments/plan_choose.html", {"patient": patient, "protocols": protocols})
    version = services.current_version(protocol)
    form = PlanForm(
        request.POST or None,
        initial={"planned_sessions": version.sessions_min},
        areas=[row.area for row in version.areas.all()],
        formulas=list(Formula.objects.filter(clinic=patient.clinic, is_active=True)),
        procedures=list(dict.fromkeys([*version.combinations, *version.alternatives])),
    )
    if request.method == "POST" and form.is_valid():
        try:
            plan = services.plan_create(
                caller=caller, patient=patient, protocol=protocol, data=form.plan_in()
            )
        except ValidationError as error:
            _apply_form_errors(form, error)
        else:
            messages.success(request, _("Draft plan saved. Activate it once the screening is reviewed."))
            return redirect("treatments:plan", plan_id=plan.pk)
    return render(
        request,
        "treatments/plan_form.html",
        {"patient": patient, "protocol": protocol, "version": version, "form": form},
        status=400 if form.errors else 200,
    )


def _apply_form_errors(form: Any, error: ValidationError) -> None:
    names = {"formula_ids": "formulas"}
    for name, field_messages in error.message_dict.items():
        target = names.get(name, name)
        for message in field_messages:
            form.add_error(target if target in form.fields else None, message)


@login_required
def plan_edit(request: HttpRequest, plan_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE)
    overview = services.plan_overview(caller=caller, plan=plan)
    version = services.version_with_areas(plan.protocol_version_id)
    form = PlanForm(
        request.POST or None,
        initial={
            "planned_sessions": plan.planned_sessions,
            "areas": [a.code for a in overview.areas],
            "formulas": [str(f.pk) for f in overview.formulas],
            "procedures": [p.procedure for p in overview.procedures],
            "goals": plan.goals,
        },
        areas=[row.area for row in version.areas.all()],
        formulas=list(Formula.objects.filter(clinic=plan.clinic, is_active=True)),
        procedures=list(
            dict.fromkeys(
                [*version.combinations, *version.alternatives, *(p.procedure for p in overview.procedures)]
            )
        ),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.plan_update(caller=caller, plan=plan, data=form.plan_in())
        except ValidationError as error:
            _apply_form_errors(form, error)
        else:
            return redirect("treatments:plan", plan_id=plan.pk)
    return render(
        request,
        "treatments/plan_form.html",
        {
            "patient": plan.patient,
            "protocol": version.protocol,
            "version": version,
            "form": form,
            "plan": plan,
        },
        status=400 if form.errors else 200,
    )


@login_required
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id)
    overview = services.plan_overview(caller=caller, plan=plan)
    areas = services.body_areas()
    clinical = can(request.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=plan.clinic_id)
    sessions = [
        {"session": session, "views": map_views(areas, charted=session.areas.all(), only_charted=True)}
        for session in overview.sessions
    ]
    gate: list[Finding] | None = None
    if (
        plan.status == TreatmentPlan.Status.ACTIVE
        and overview.open_session is None
        and can(request.user, Perm.GATE_VIEW, clinic_id=plan.clinic_id)
        and services.clinic_practitioners(plan.clinic)
    ):
        on = overview.next_window[0] if overview.next_window else plan.clinic.today()
        on = max(on, plan.clinic.today())
        try:
            gate = services.gate_evaluate(
                caller=caller, plan=plan, on=on, practitioner_id=_default_practitioner(request, plan)
            )
        except ValidationError:
            gate = None
    version = plan.protocol_version
    return render(
        request,
        "treatments/plan_detail.html",
        {
            "plan": plan,
            "overview": overview,
            "sessions": sessions,
            "plan_views": map_views(areas, planned=[a.code for a in overview.areas], only_charted=False),
            "gate": gate,
            "gate_rows": _finding_rows(gate or [], {}),
            "alternatives": [rules.procedure_label(code) for code in version.alternatives],
            "combinations": [rules.procedure_label(code) for code in version.combinations],
            "clinical": clinical,
            "can_manage": can(request.user, Perm.PLAN_MANAGE, clinic_id=plan.clinic_id, patient=plan.patient),
            "can_check_in": can(request.user, Perm.SESSION_CHECK_IN, clinic_id=plan.clinic_id),
            "can_chart": can(request.user, Perm.SESSION_CHART, clinic_id=plan.clinic_id),
            "end_form": EndPlanForm(),
            "today": plan.clinic.today(),
        },
    )


@login_required
@require_POST
def plan_activate(request: HttpRequest, plan_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    try:
        services.plan_activate(caller=caller, plan=plan)
    except FindingsRefused as refused:
        messages.error(request, refused.message)
        for finding in refused.findings:
            messages.error(request, finding.message)
    else:
        messages.success(request, _("The plan is active."))
    return redirect("treatments:plan", plan_id=plan.pk)


@login_required
@require_POST
def plan_end(request: HttpRequest, plan_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    form = EndPlanForm(request.POST)
    if form.is_valid():
        try:
            services.plan_end(
                caller=caller,
                plan=plan,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            for message in _error_messages(error):
                messages.error(request, message)
    else:
        messages.error(request, _("Choose how the plan ends."))
    return redirect("treatments:plan", plan_id=plan.pk)


@login_required
@require_POST
def plan_improvement(request: HttpRequest, plan_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PLAN_MANAGE, audit=False)
    try:
        services.plan_record_improvement(caller=caller, plan=plan, on=plan.clinic.today())
    except ValidationError as error:
        for message in _error_messages(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Improvement recorded: the next intervals may be longer."))
    return redirect("treatments:plan", plan_id=plan.pk)


# --- check-in -----------------------------------------------------------------------------------------------


def _default_practitioner(request: HttpRequest, plan: TreatmentPlan) -> int:
    practitioners = services.clinic_practitioners(plan.clinic)
    ids = [user.pk for user in practitioners]
    if request.user.pk in ids:
        return int(request.user.pk)
    if not ids:
        raise PermissionDenied
    return ids[0]


@login_required
def check_in(request: HttpRequest, plan_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.SESSION_CHECK_IN)
    practitioners = services.clinic_practitioners(plan.clinic)
    if not practitioners:
        messages.error(request, _("The clinic has no practitioner to inject."))
        return redirect("treatments:plan", plan_id=plan.pk)
    form = CheckInForm(
        request.POST or request.GET or None,
        practitioners=[(u.pk, u.get_full_name() or u.get_username()) for u in practitioners],
        rooms=list(Room.objects.filter(clinic=plan.clinic, is_active=True)),
        devices=list(Device.objects.filter(clinic=plan.clinic, is_active=True)),
        initial={"practitioner": _default_practitioner(request, plan)},
    )
    practitioner_id = _default_practitioner(request, plan)
    if form.is_bound and form.is_valid():
        practitioner_id = form.cleaned_data["practitioner"]
    acknowledgements = acknowledgements_from(request.POST)
    refusal: str | None = None
    if request.method == "POST" and form.is_valid():
        try:
            session = services.session_check_in(
                caller=caller,
                plan=plan,
                practitioner_id=practitioner_id,
                room_id=form.cleaned_data["room"],
                device_id=form.cleaned_data["device"],
                acknowledgements=acknowledgements,
            )
        except FindingsRefused as refused:
            refusal = refused.message
        except ValidationError as error:
            refusal = " ".join(_error_messages(error))
        else:
            messages.success(request, _("Checked in for session %(number)d.") % {"number": session.number})
            if can(request.user, Perm.SESSION_CHART, clinic_id=plan.clinic_id):
                return redirect("treatments:chart", session_id=session.pk)
            return redirect("treatments:plan", plan_id=plan.pk)
    try:
        findings = services.gate_evaluate(caller=caller, plan=plan, practitioner_id=practitioner_id)
    except ValidationError as error:
        findings = []
        refusal = refusal or " ".join(_error_messages(error))
    return render(
        request,
        "treatments/check_in.html",
        {
            "plan": plan,
            "form": form,
            "finding_rows": _finding_rows(findings, acknowledgements),
            "blocked": any(f.severity == "block" for f in findings),
            "refusal": refusal,
        },
        status=422 if refusal else 200,
    )


# --- charting -----------------------------------------------------------------------------------------------


def _chart_page(
    request: HttpRequest, session: TreatmentSession, *, amending: bool
) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    plan = session.plan
    areas = services.body_areas()
    techniques = list(Technique.objects.all())
    preparations = services.chartable_preparations(session)
    rooms = list(Room.objects.filter(clinic=session.clinic, is_active=True))
    devices = list(Device.objects.filter(clinic=session.clinic, is_active=True))
    snapshot = services.chart_snapshot(session)
    session_form = SessionForm(
        request.POST or None,
        rooms=rooms,
        devices=devices,
        initial={
            "topical_anaesthetic": snapshot["topical_anaesthetic"],
            "anaesthetic_minutes": snapshot["anaesthetic_minutes"],
            "room": snapshot["room_id"],
            "device": snapshot["device_id"],
            "notes": snapshot["notes"],
        },
    )
    initial_areas = [
        {**row, "points": _json(row["points"]), "preparation": row["preparation_id"]}
        for row in snapshot["areas"]
    ]
    formset = AreaFormSet(
        request.POST or None,
        prefix="areas",
        initial=initial_areas,
        techniques=techniques,
        preparations=preparations,
    )
    acknowledgements = acknowledgements_from(request.POST)
    findings = [Finding.from_dict(row) for row in session.chart_findings]
    problems: list[str] = []
    reason = request.POST.get("reason", "")
    if request.method == "POST":
        if session_form.is_valid() and formset.is_valid():
            chart = chart_in(session_form, formset, acknowledgements)
            try:
                if amending:
                    services.session_amend(caller=caller, session=session, chart=chart, reason=reason)
                else:
                    services.session_chart(caller=caller, session=session, chart=chart)
            except FindingsRefused as refused:
                findings = refused.findings
                problems.append(refused.message)
            except ValidationError as error:
                problems.extend(apply_chart_errors(session_form, formset, error))
            else:
                if amending:
                    messages.success(request, _("Amendment recorded."))
                    return redirect("treatments:session", session_id=session.pk)
                messages.success(request, _("Chart saved. Sign it when the session is over."))
                return redirect("treatments:chart", session_id=session.pk)
        else:
            problems.append(_("Some fields are not valid: see below."))
    planned = [row.area.code for row in plan.areas.select_related("area")]
    return render(
        request,
        "treatments/chart.html",
        {
            "session": session,
            "plan": plan,
            "views": map_views(areas, planned=planned),
            "session_form": session_form,
            "formset": formset,
            "area_labels": {a.code: services.area_label(a) for a in areas},
            "area_views": {a.code: a.view for a in areas},
            "finding_rows": _finding_rows(findings, acknowledgements),
            "problems": problems,
            "amending": amending,
            "reason": reason,
            "has_preparations": bool(preparations),
            "techniques": techniques,
        },
        status=422 if problems else 200,
    )


def _json(value: Any) -> str:
    return json.dumps(value)


@login_required
def chart(request: HttpRequest, session_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    session = services.session_get(caller=caller, session_id=session_id, perm=Perm.SESSION_CHART)
    if session.status != TreatmentSession.Status.OPEN:
        return redirect("treatments:session", session_id=session.pk)
    return _chart_page(request, session, amending=False)


@login_required
def amend(request: HttpRequest, session_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    session = services.session_get(caller=caller, session_id=session_id, perm=Perm.SESSION_CHART)
    if session.status != TreatmentSession.Status.SIGNED:
        return redirect("treatments:chart", session_id=session.pk)
    return _chart_page(request, session, amending=True)


@login_required
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    caller = Caller.of(request)
    session = services.session_get(caller=caller, session_id=session_id)
    charted = list(
        session.areas.select_related("area", "technique", "preparation__formula_version__formula")
        .prefetch_related("preparation__lines__lot__product")
        .order_by("position")
    )
    return render(
        request,
        "treatments/session_detail.html",
        {
            "session": session,
            "charted": charted,
            "views": map_views(services.body_areas(), charted=charted, only_charted=True),
            "amendments": list(session.amendments.select_related("author").order_by("at", "id")),
            "can_chart": can(request.user, Perm.SESSION_CHART, clinic_id=session.clinic_id),
            "can_cosign": can(request.user, Perm.SESSION_COSIGN, clinic_id=session.clinic_id)
            and session.cosign_required
            and session.cosigned_at is None
            and session.signed_by_id != request.user.pk,
        },
    )


@login_required
@require_POST
def sign(request: HttpRequest, session_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    session = services.session_get(caller=caller, session_id=session_id, perm=Perm.SESSION_CHART, audit=False)
    try:
        services.session_sign(caller=caller, session=session)
    except FindingsRefused as refused:
        messages.error(request, refused.message)
        for finding in refused.findings:
            messages.error(request, finding.message)
        return redirect("treatments:chart", session_id=session.pk)
    except ValidationError as error:
        for message in _error_messages(error):
            messages.error(request, message)
        return redirect("treatments:chart", session_id=session.pk)
    messages.success(request, _("Session signed; the aftercare instructions were issued to the patient."))
    return redirect("treatments:session", session_id=session.pk)


@login_required
def cosign_queue(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.SESSION_COSIGN)
    sessions = services.cosign_queue(caller=Caller.of(request), clinic=clinic)
    return render(request, "treatments/cosign_queue.html", {"sessions": sessions, "clinic": clinic})


@login_required
@require_POST
def cosign(request: HttpRequest, session_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.SESSION_COSIGN, audit=False
    )
    try:
        services.session_cosign(caller=caller, session=session, note=request.POST.get("note", ""))
    except ValidationError as error:
        for message in _error_messages(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Co-signed."))
    return redirect("treatments:cosign_queue")


# --- aftercare ----------------------------------------------------------------------------------------------


@login_required
def aftercare(request: HttpRequest, session_id: int) -> HttpResponse:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.AFTERCARE_VIEW, audit=False
    )
    issued = services.aftercare_get(caller=caller, session=session)
    return render(request, "treatments/aftercare.html", {"session": session, "aftercare": issued})


@login_required
def aftercare_download(request: HttpRequest, session_id: int) -> HttpResponse:
    caller = Caller.of(request)
    session = services.session_get(
        caller=caller, session_id=session_id, perm=Perm.AFTERCARE_VIEW, audit=False
    )
    issued = services.aftercare_get(caller=caller, session=session, action=Action.AFTERCARE_PRINT)
    return aftercare_pdf(session, issued)


@login_required
def portal_treatment(request: HttpRequest) -> HttpResponse:
    """The patient's own plans ("session 4 of 10") and the aftercare instructions they were given."""
    patient = Patient.objects.select_related("clinic").filter(user_id=cast(User, request.user).pk).first()
    if patient is None:
        raise Http404
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient.pk, perm=Perm.PLAN_VIEW, audit=False)
    plans = services.plans_of(caller=caller, patient=patient)
    return render(
        request,
        "treatments/portal.html",
        {
            "patient": patient,
            "plans": plans,
            "aftercare": services.aftercare_of_patient(caller=caller, patient=patient),
        },
    )

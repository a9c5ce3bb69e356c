"""Progress, assessment, photo capture and comparison, report and settings pages, and the patient's own view
in the portal. Thin: every read and write goes through ``outcomes.services``, exactly as the API does."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.outcomes import charts, rules, services
from mesoclinic.outcomes.documents import progress_report_pdf
from mesoclinic.outcomes.forms import AssessmentForm, ConsentForm, PhotoForm, SettingsForm
from mesoclinic.outcomes.models import Assessment, Photo
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession


def _messages_of(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


def _is_own(request: HttpRequest, patient: Patient) -> bool:
    return patient.user_id is not None and patient.user_id == request.user.pk


def _abilities(request: HttpRequest, plan: TreatmentPlan) -> dict[str, bool]:
    clinic_id, patient = plan.clinic_id, plan.patient
    return {
        "can_record": can(request.user, Perm.OUTCOME_RECORD, clinic_id=clinic_id, patient=patient),
        "can_photo": services.open_photo_check(Caller.of(request), plan),
        "can_upload": can(request.user, Perm.PHOTO_UPLOAD, clinic_id=clinic_id, patient=patient)
        and can(request.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=clinic_id),
        "can_consent": can(request.user, Perm.PHOTO_CONSENT, clinic_id=clinic_id, patient=patient),
        "can_report": can(request.user, Perm.PROGRESS_REPORT, clinic_id=clinic_id, patient=patient),
        "clinical": can(request.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=clinic_id),
        "is_own": _is_own(request, patient),
    }


# --- the patient page's panel and the progress page ---------------------------------------------------------


@login_required
def panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient page's "Outcomes" section (loaded by htmx so the record opens at once)."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.OUTCOME_VIEW, audit=False)
    return render(
        request,
        "outcomes/_panel.html",
        {"patient": patient, "summaries": services.summaries_of(caller=caller, patient=patient)},
    )


def _progress_context(request: HttpRequest, progress: services.Progress) -> dict[str, Any]:
    plan = progress.plan
    abilities = _abilities(request, plan)
    unmeasured = (
        services.unmeasured_sessions(plan)
        if abilities["can_record"] and plan.status != TreatmentPlan.Status.DRAFT
        else []
    )
    return {
        "plan": plan,
        "progress": progress,
        "status_label": rules.status_label(progress.response.status),
        "unmeasured": unmeasured,
        "consent_form": ConsentForm(initial={"given": progress.photo_consent}),
        "timepoints": [(a, len(progress.photos.get(a.pk, {}))) for a in progress.assessments],
        **abilities,
    }


@login_required
def progress(request: HttpRequest, plan_id: int) -> HttpResponse:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id)
    result = services.progress_of(caller=caller, plan=plan)
    return render(request, "outcomes/progress.html", _progress_context(request, result))


@login_required
def chart(request: HttpRequest, plan_id: int, key: str) -> HttpResponse:
    """One series as SVG (our own matplotlib output), served as an image with its own tight policy."""
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id)
    result = services.progress_of(caller=caller, plan=plan, audit=False)
    series = result.series_by_key(key)
    if series is None:
        raise Http404(_("Not found."))
    response = HttpResponse(charts.series_svg(series), content_type="image/svg+xml; charset=utf-8")
    response["Content-Security-Policy"] = charts.SVG_CSP
    response["Content-Disposition"] = "inline"
    return response


# --- recording an assessment ------------------------------------------------------------------------------


def _kind_and_session(request: HttpRequest, plan: TreatmentPlan) -> tuple[str, TreatmentSession | None]:
    source = request.POST if request.method == "POST" else request.GET
    kind = source.get("kind", "")
    if kind not in Assessment.Kind.values:
        kind = Assessment.Kind.BASELINE if not plan.assessments.exists() else Assessment.Kind.FOLLOW_UP
    session = None
    if kind == Assessment.Kind.SESSION:
        raw = source.get("session", "")
        session = TreatmentSession.objects.filter(plan=plan, pk=int(raw)).first() if raw.isdigit() else None
        if session is None:
            raise Http404(_("Not found."))
    return kind, session


@login_required
def assess(request: HttpRequest, plan_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.OUTCOME_RECORD)
    kind, session = _kind_and_session(request, plan)
    existing: Assessment | None = None
    if kind == Assessment.Kind.BASELINE:
        existing = Assessment.objects.filter(plan=plan, kind=kind).first()
    elif session is not None:
        existing = Assessment.objects.filter(session=session).first()
    clinic_settings = services.settings_for(plan.clinic)
    measures = rules.allowed_measures(plan.protocol_version.outcome_measures, baseline=kind == "baseline")
    form = AssessmentForm(
        request.POST or None,
        measures=measures,
        landmarks=services.plan_landmarks(plan),
        gais_reversed=clinic_settings.gais_reversed,
        existing=list(existing.measurements.select_related("landmark")) if existing else [],
        fixed_date=existing is not None or session is not None,
        initial={"note": existing.note} if existing else {},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            entries, slots = form.measurements()
            data = services.AssessmentIn(
                kind=kind,
                session_id=session.pk if session else None,
                taken_on=form.cleaned_data.get("taken_on"),
                measurements=entries,
                note=form.cleaned_data["note"],
                reason=form.cleaned_data["reason"],
            )
            try:
                assessment = services.assessment_record(caller=caller, plan=plan, data=data)
            except ValidationError as error:
                form.apply_errors(error, slots)
            else:
                messages.success(request, _("Measurements recorded."))
                return redirect("outcomes:assessment", assessment_id=assessment.pk)
        status = 422
    return render(
        request,
        "outcomes/assess.html",
        {
            "plan": plan,
            "form": form,
            "kind": kind,
            "kind_label": Assessment.Kind(kind).label,
            "session": session,
            "existing": existing,
            "due": rules.due_measures(plan.protocol_version.outcome_measures, baseline=kind == "baseline"),
        },
        status=status,
    )


def _assessment_page(
    request: HttpRequest, assessment: Assessment, photo_form: PhotoForm | None = None, status: int = 200
) -> HttpResponse:
    caller = Caller.of(request)
    measurements, photos = services.assessment_detail(caller=caller, assessment=assessment)
    plan = assessment.plan
    abilities = _abilities(request, plan)
    views = services.photo_views_of(plan)
    rows = [
        {
            "scale": rules.SCALES[row.code],
            "row": row,
            "display": rules.SCALES[row.code].display(row.value),
            "landmark": services.landmark_label(row.landmark) if row.landmark else "",
            "grade": rules.SCALES[row.code].grade_label(int(row.value))
            if rules.SCALES[row.code].kind == "grade"
            and rules.standard_value(row.code, row.value, row.scale_version) == row.value
            else "",
        }
        for row in measurements
    ]
    return render(
        request,
        "outcomes/assessment.html",
        {
            "assessment": assessment,
            "plan": plan,
            "rows": rows,
            "views": [
                (code, rules.view_label(code), rules.view_instruction(code), photos.get(code))
                for code in views
            ],
            "photo_form": photo_form or PhotoForm(views=views),
            **abilities,
        },
        status=status,
    )


@login_required
def assessment_detail(request: HttpRequest, assessment_id: int) -> HttpResponse:
    assessment = services.assessment_get(caller=Caller.of(request), assessment_id=assessment_id)
    return _assessment_page(request, assessment)


@login_required
@require_POST
def photo_upload(request: HttpRequest, assessment_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    assessment = services.assessment_get(caller=caller, assessment_id=assessment_id, perm=Perm.PHOTO_UPLOAD)
    views = services.photo_views_of(assessment.plan)
    form = PhotoForm(request.POST, request.FILES, views=views)
    if form.is_valid():
        upload = form.cleaned_data["image"]
        data = upload.read(
            services.MAX_UPLOAD_READ + 1
        )  # a larger file is refused as too large, never read whole
        try:
            services.photo_upload(
                caller=caller,
                assessment=assessment,
                view=form.cleaned_data["view"],
                data=data,
                name=upload.name or "",
            )
        except ValidationError as error:
            for name, field_messages in error.message_dict.items():
                for message in field_messages:
                    form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, _("Photo saved (re-encoded, without location or camera data)."))
            if request.POST.get("next") == "capture":
                return redirect(
                    "outcomes:capture", assessment_id=assessment.pk, view=form.cleaned_data["view"]
                )
            return redirect("outcomes:assessment", assessment_id=assessment.pk)
    return _assessment_page(request, assessment, photo_form=form, status=422)


@login_required
def capture(request: HttpRequest, assessment_id: int, view: str) -> HttpResponse:
    """The capture screen: the camera (or the file picker with the camera) under the baseline photo of the
    same view, shown as a ghost so the pose and distance can be matched."""
    caller = Caller.of(request)
    assessment = services.assessment_get(caller=caller, assessment_id=assessment_id, perm=Perm.PHOTO_UPLOAD)
    views = services.photo_views_of(assessment.plan)
    if view not in views:
        raise Http404(_("Not found."))
    ghost = services.baseline_photo(assessment.plan, view)
    if ghost is not None and ghost.assessment_id == assessment.pk:
        ghost = None if assessment.kind == Assessment.Kind.BASELINE else ghost
    return render(
        request,
        "outcomes/capture.html",
        {
            "assessment": assessment,
            "plan": assessment.plan,
            "view": view,
            "view_label": rules.view_label(view),
            "instruction": rules.view_instruction(view),
            "ghost": ghost,
            "photo_form": PhotoForm(views=views, initial={"view": view}),
            "upload_url": reverse("outcomes:photo_upload", args=[assessment.pk]),
        },
    )


@login_required
def photo_image(request: HttpRequest, photo_id: int) -> HttpResponse:
    """A photo's bytes, for its clinicians and its patient only; never cached, never sniffed."""
    thumb = request.GET.get("size") == "thumb"
    photo = services.photo_get(caller=Caller.of(request), photo_id=photo_id, thumb=thumb)
    response = HttpResponse(services.photo_bytes(photo, thumb=thumb), content_type=photo.content_type)
    response["Content-Disposition"] = (
        f'inline; filename="photo-{photo.pk}.{photo.content_type.split("/")[1]}"'
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "no-store, private"
    return response


@login_required
def compare(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Two dates of one view side by side, and as a slider over each other."""
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PHOTO_VIEW)
    if not services.open_photo_check(caller, plan):
        raise PermissionDenied
    result = services.progress_of(caller=caller, plan=plan)
    with_photos = [a for a in result.assessments if result.photos.get(a.pk)]
    views = [v for v in result.views if any(v in result.photos.get(a.pk, {}) for a in with_photos)]
    view = request.GET.get("view", "")
    if view not in views:
        view = views[0] if views else ""
    dated = [a for a in with_photos if view in result.photos.get(a.pk, {})]

    def pick(name: str, default: Assessment | None) -> Assessment | None:
        raw = request.GET.get(name, "")
        chosen = next((a for a in dated if raw.isdigit() and a.pk == int(raw)), None)
        return chosen or default

    first = pick("a", dated[0] if dated else None)
    second = pick("b", dated[-1] if dated else None)
    return render(
        request,
        "outcomes/compare.html",
        {
            "plan": plan,
            "views": [(code, rules.view_label(code)) for code in views],
            "view": view,
            "view_label": rules.view_label(view) if view else "",
            "dated": dated,
            "first": first,
            "second": second,
            "first_photo": result.photos[first.pk][view] if first else None,
            "second_photo": result.photos[second.pk][view] if second else None,
            "reveal_steps": list(range(0, 101, 5)),
        },
    )


@login_required
@require_POST
def consent(request: HttpRequest, plan_id: int) -> HttpResponseBase:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PHOTO_CONSENT)
    form = ConsentForm(request.POST)
    given = bool(form.is_valid() and form.cleaned_data["given"])
    services.photo_consent_set(caller=caller, plan=plan, given=given)
    messages.success(
        request,
        _("Photos will appear in the printed report.")
        if given
        else _("Photos will not appear in the printed report."),
    )
    if _is_own(request, plan.patient):
        return redirect("outcomes:portal")
    return redirect("outcomes:progress", plan_id=plan.pk)


@login_required
def report(request: HttpRequest, plan_id: int) -> HttpResponse:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PROGRESS_REPORT)
    return progress_report_pdf(services.progress_for_report(caller=caller, plan=plan))


# --- clinic settings and the portal -----------------------------------------------------------------------


@login_required
def settings_page(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, Perm.OUTCOME_SETTINGS_MANAGE, clinic_id=clinic.pk):
        raise PermissionDenied
    current = services.settings_for(clinic)
    form = SettingsForm(
        request.POST or None,
        initial={"gais_reversed": current.gais_reversed, "record_improvement": current.record_improvement},
    )
    if request.method == "POST" and form.is_valid():
        services.settings_update(
            caller=Caller.of(request),
            clinic=clinic,
            gais_reversed=form.cleaned_data["gais_reversed"],
            record_improvement=form.cleaned_data["record_improvement"],
        )
        messages.success(request, _("Outcome settings saved."))
        return redirect("outcomes:settings")
    return render(
        request,
        "outcomes/settings.html",
        {"form": form, "clinic": clinic, "scales": list(rules.SCALES.values())},
    )


@login_required
def portal(request: HttpRequest) -> HttpResponse:
    """The patient's own progress and photos, plan by plan."""
    patient = Patient.objects.select_related("clinic").filter(user_id=cast(User, request.user).pk).first()
    if patient is None:
        raise Http404
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient.pk, perm=Perm.OUTCOME_VIEW, audit=False)
    plans = [
        summary.plan
        for summary in services.summaries_of(caller=caller, patient=patient)
        if summary.plan.status != TreatmentPlan.Status.DRAFT
    ]
    progresses = [services.progress_of(caller=caller, plan=plan, audit=False) for plan in plans]
    return render(
        request,
        "outcomes/portal.html",
        {
            "patient": patient,
            "items": [
                {
                    "progress": item,
                    "status_label": rules.status_label(item.response.status),
                    "consent_form": ConsentForm(initial={"given": item.photo_consent}),
                    "photos": _portal_photos(item),
                }
                for item in progresses
            ],
        },
    )


def _portal_photos(progress: services.Progress) -> list[tuple[Assessment, list[tuple[str, Photo]]]]:
    return [
        (
            assessment,
            [
                (rules.view_label(view), photo)
                for view, photo in sorted(progress.photos[assessment.pk].items())
            ],
        )
        for assessment in progress.assessments
        if progress.photos.get(assessment.pk)
    ]

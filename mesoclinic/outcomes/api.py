"""Outcomes: the scale catalogue, assessments and their measurements, photos (upload and download), progress
and the progress report. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Status, UploadedFile

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import clinic_for_api
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.outcomes import rules, services
from mesoclinic.outcomes.documents import progress_report_pdf
from mesoclinic.outcomes.models import Assessment, Landmark, Measurement, Photo
from mesoclinic.outcomes.schemas import (
    AssessmentIn,
    AssessmentListParams,
    AssessmentOut,
    CatalogueOut,
    PhotoConsentIn,
    PhotoConsentOut,
    PhotoOut,
    ProgressOut,
    SettingsIn,
    SettingsOut,
)

router = Router(tags=["outcomes"])


# --- shaping ------------------------------------------------------------------------------------------------


def _scale_out(scale: rules.Scale) -> dict[str, Any]:
    return {
        "code": scale.code,
        "name": scale.label,
        "kind": scale.kind,
        "minimum": scale.minimum,
        "maximum": scale.maximum,
        "step": scale.step,
        "unit": scale.unit,
        "version": scale.version,
        "better": scale.better,
        "loinc": scale.loinc,
        "rater": scale.rater,
        "landmark": scale.landmark,
        "at_baseline": not scale.rates_change,
        "derived": scale.derived,
        "grades": [{"value": value, "label": label} for value, label in rules.grade_choices(scale.code)]
        if scale.kind == "grade"
        else [],
        "items": [
            {
                "label": _(item),
                "grades": [{"value": grade, "label": _(label)} for grade, label in enumerate(labels)],
            }
            for item, labels in scale.items
        ],
    }


def _landmark_out(row: Landmark | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row.pk,
        "code": row.code,
        "fixed_point": row.fixed_point,
        "direction": row.direction,
        "distance_cm": row.distance_cm,
        "side": row.side,
        "label": services.landmark_label(row),
    }


def _measurement_out(row: Measurement) -> dict[str, Any]:
    scale = rules.SCALES[row.code]
    return {
        "code": row.code,
        "value": row.value,
        "display": scale.display(row.value),
        "unit": row.unit,
        "scale_version": row.scale_version,
        "loinc": row.loinc,
        "rater": row.rater,
        "items": row.items,
        "landmark": _landmark_out(row.landmark),
        "derived": row.derived,
    }


def _photo_out(photo: Photo) -> dict[str, Any]:
    url = reverse("api:outcomes_photo_image", args=[photo.pk])
    return {
        "id": photo.pk,
        "assessment": photo.assessment_id,
        "view": photo.view,
        "content_type": photo.content_type,
        "width_px": photo.width_px,
        "height_px": photo.height_px,
        "size_bytes": photo.size_bytes,
        "sha256": photo.sha256,
        "uploaded_at": photo.uploaded_at,
        "url": url,
        "thumbnail_url": f"{url}?size=thumb",
    }


def _assessment_out(caller: Caller, assessment: Assessment) -> dict[str, Any]:
    measurements, photos = services.assessment_detail(caller=caller, assessment=assessment)
    clinical = can(caller.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=assessment.clinic_id)
    return {
        "id": assessment.pk,
        "plan": assessment.plan_id,
        "kind": assessment.kind,
        "session": assessment.session_id,
        "taken_on": assessment.taken_on,
        "after_sessions": assessment.after_sessions,
        "note": assessment.note if clinical else None,
        "recorded_at": assessment.recorded_at,
        "measurements": [_measurement_out(row) for row in measurements],
        "photos": [_photo_out(photo) for photo in photos.values()],
    }


def _progress_out(progress: services.Progress) -> dict[str, Any]:
    response = progress.response
    plan = progress.plan
    return {
        "plan": plan.pk,
        "status": response.status,
        "status_label": rules.status_label(response.status),
        "non_responder": response.non_responder,
        "rule": progress.rule_text,
        "rule_code": response.rule.code,
        "criteria": [
            {
                "description": result.criterion.describe(),
                "met": result.met,
                "series": result.best,
                "improvement": result.improvement,
            }
            for result in response.results
        ],
        "judge_after_sessions": progress.judge_after,
        "sessions_done": progress.sessions_done,
        "findings": [finding.as_dict() for finding in response.findings],
        "alternatives": [{"procedure": code, "label": label} for code, label in progress.alternatives],
        "improved_on": plan.improved_on,
        "photo_consent": progress.photo_consent,
        "due": progress.due,
        "assessments": [assessment.pk for assessment in progress.assessments],
        "series": [
            {
                "key": series.key,
                "code": series.code,
                "label": series.label,
                "landmark": series.landmark,
                "unit": series.scale.unit,
                "loinc": series.scale.loinc,
                "points": [
                    {
                        "assessment": point.assessment_id,
                        "kind": point.kind,
                        "taken_on": point.taken_on,
                        "after_sessions": point.after_sessions,
                        "value": point.value,
                        "standard": point.standard,
                        "scale_version": point.version,
                    }
                    for point in series.points
                ],
                "change": None
                if series.change is None
                else {
                    "baseline": series.change.baseline,
                    "latest": series.change.latest,
                    "delta": series.change.delta,
                    "percent": series.change.percent,
                    "improvement": series.change.improvement,
                    "verdict": series.change.verdict,
                },
                "chart_url": reverse("outcomes:chart", args=[plan.pk, series.key]),
            }
            for series in progress.series
        ],
    }


def _assessment_in(payload: AssessmentIn) -> services.AssessmentIn:
    return services.AssessmentIn(
        kind=payload.kind,
        session_id=payload.session_id,
        taken_on=payload.taken_on,
        measurements=[
            services.MeasurementIn(
                code=row.code,
                value=row.value,
                items=row.items,
                landmark=services.LandmarkIn(
                    row.landmark.fixed_point,
                    row.landmark.direction,
                    row.landmark.distance_cm,
                    row.landmark.side,
                )
                if row.landmark
                else None,
                landmark_id=row.landmark_id,
                rater=row.rater,
            )
            for row in payload.measurements
        ],
        note=payload.note,
        reason=payload.reason,
    )


# --- catalogue ----------------------------------------------------------------------------------------------


@router.get("/outcomes/catalogue", response=CatalogueOut, summary="Scales, photo views and landmarks (R-OUT)")
def read_catalogue(request: HttpRequest) -> dict[str, Any]:
    return {
        "scales": [_scale_out(scale) for scale in rules.SCALES.values()],
        "views": [
            {"code": code, "label": rules.view_label(code), "instruction": rules.view_instruction(code)}
            for code in rules.PHOTO_VIEWS
        ],
        "views_by_indication": {key: list(value) for key, value in rules.VIEWS_BY_INDICATION.items()},
        "fixed_points": {key: _(label) for key, label in rules.FIXED_POINTS.items()},
    }


# --- settings -----------------------------------------------------------------------------------------------


@router.get("/outcomes/settings", response=SettingsOut, summary="The clinic's outcome settings")
def read_settings(request: HttpRequest, clinic_id: int | None = None) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.OUTCOME_SETTINGS_MANAGE, clinic_id)
    current = services.settings_for(clinic)
    return {
        "clinic": clinic.pk,
        "gais_reversed": current.gais_reversed,
        "record_improvement": current.record_improvement,
    }


@router.put("/outcomes/settings", response=SettingsOut, summary="Change the clinic's outcome settings")
def update_settings(request: HttpRequest, payload: SettingsIn) -> dict[str, Any]:
    clinic = clinic_for_api(request, Perm.OUTCOME_SETTINGS_MANAGE, payload.clinic_id)
    row = services.settings_update(
        caller=Caller.of(request),
        clinic=clinic,
        gais_reversed=payload.gais_reversed,
        record_improvement=payload.record_improvement,
    )
    return {
        "clinic": clinic.pk,
        "gais_reversed": row.gais_reversed,
        "record_improvement": row.record_improvement,
    }


# --- assessments --------------------------------------------------------------------------------------------


@router.get("/outcomes/assessments", response=list[AssessmentOut], summary="A plan's assessments")
def list_assessments(request: HttpRequest, params: Query[AssessmentListParams]) -> list[dict[str, Any]]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=params.plan_id)
    progress = services.progress_of(caller=caller, plan=plan)
    by_assessment: dict[int, list[Measurement]] = {}
    for row in Measurement.objects.filter(assessment__plan=plan).select_related("landmark"):
        by_assessment.setdefault(row.assessment_id, []).append(row)
    clinical = can(caller.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=plan.clinic_id)
    return [
        {
            "id": a.pk,
            "plan": a.plan_id,
            "kind": a.kind,
            "session": a.session_id,
            "taken_on": a.taken_on,
            "after_sessions": a.after_sessions,
            "note": a.note if clinical else None,
            "recorded_at": a.recorded_at,
            "measurements": [_measurement_out(row) for row in by_assessment.get(a.pk, [])],
            "photos": [_photo_out(photo) for photo in progress.photos.get(a.pk, {}).values()],
        }
        for a in progress.assessments
    ]


@router.post(
    "/outcomes/assessments",
    response={201: AssessmentOut},
    summary="Record a baseline, a session's or a follow-up's measurements (or add to them)",
)
def record_assessment(request: HttpRequest, payload: AssessmentIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=payload.plan_id, perm=Perm.OUTCOME_RECORD)
    assessment = services.assessment_record(caller=caller, plan=plan, data=_assessment_in(payload))
    fresh = services.assessment_get(caller=caller, assessment_id=assessment.pk)
    return Status(201, _assessment_out(caller, fresh))


@router.get("/outcomes/assessments/{assessment_id}", response=AssessmentOut, summary="An assessment")
def read_assessment(request: HttpRequest, assessment_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    return _assessment_out(caller, services.assessment_get(caller=caller, assessment_id=assessment_id))


# --- photos -------------------------------------------------------------------------------------------------


@router.post(
    "/outcomes/assessments/{assessment_id}/photos",
    response={201: PhotoOut},
    summary="Upload a standardised photo (multipart: view, image); re-encoded without EXIF/GPS",
)
def upload_photo(
    request: HttpRequest, assessment_id: int, view: Form[str], image: File[UploadedFile]
) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    assessment = services.assessment_get(caller=caller, assessment_id=assessment_id, perm=Perm.PHOTO_UPLOAD)
    if len(view) > 40:
        raise ValidationError({"view": [_("Choose one of the standard views of this indication.")]})
    data = image.read(services.MAX_UPLOAD_READ + 1)
    photo = services.photo_upload(
        caller=caller, assessment=assessment, view=view, data=data, name=image.name or ""
    )
    return Status(201, _photo_out(photo))


@router.get("/outcomes/photos/{photo_id}", response=PhotoOut, summary="A photo's description")
def read_photo(request: HttpRequest, photo_id: int) -> dict[str, Any]:
    return _photo_out(services.photo_get(caller=Caller.of(request), photo_id=photo_id))


@router.get(
    "/outcomes/photos/{photo_id}/image",
    response={200: None},
    url_name="outcomes_photo_image",
    summary="Download a photo (JPEG or PNG); ?size=thumb for the thumbnail",
)
def read_photo_image(request: HttpRequest, photo_id: int, size: str = "") -> HttpResponse:
    thumb = size == "thumb"
    photo = services.photo_get(caller=Caller.of(request), photo_id=photo_id, thumb=thumb)
    response = HttpResponse(services.photo_bytes(photo, thumb=thumb), content_type=photo.content_type)
    response["Content-Disposition"] = (
        f'attachment; filename="photo-{photo.pk}.{photo.content_type.split("/")[1]}"'
    )
    response["Cache-Control"] = "no-store, private"
    return response


@router.put(
    "/outcomes/photo-consent/{plan_id}",
    response=PhotoConsentOut,
    summary="Whether photos may appear in the printed progress report",
)
def set_photo_consent(request: HttpRequest, plan_id: int, payload: PhotoConsentIn) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PHOTO_CONSENT)
    row = services.photo_consent_set(caller=caller, plan=plan, given=payload.given)
    return {"plan": plan.pk, "given": row.given, "recorded_at": row.recorded_at}


# --- progress -----------------------------------------------------------------------------------------------


@router.get(
    "/outcomes/progress/{plan_id}",
    response=ProgressOut,
    summary="Change from baseline, responder status and the non-responder flag (R-EVID)",
)
def read_progress(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id)
    return _progress_out(services.progress_of(caller=caller, plan=plan))


@router.get(
    "/outcomes/progress/{plan_id}/report.pdf",
    response={200: None},
    summary="The patient's progress report as a PDF (photos only with photo consent)",
)
def read_progress_report(request: HttpRequest, plan_id: int) -> HttpResponse:
    caller = Caller.of(request)
    plan = services.plan_get(caller=caller, plan_id=plan_id, perm=Perm.PROGRESS_REPORT)
    return progress_report_pdf(services.progress_for_report(caller=caller, plan=plan))

"""Intake, screening and review endpoints. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm
from mesoclinic.patients.services import patient_get
from mesoclinic.screening.models import Intake, Review
from mesoclinic.screening.rules import IntakeAnswers, MedicationAnswer
from mesoclinic.screening.schemas import (
    ErrorOut,
    IntakeIn,
    IntakeOut,
    InvitationOut,
    ReviewIn,
    ReviewOut,
    ScreeningOut,
    ScreeningParams,
)
from mesoclinic.screening.services import (
    NoIntake,
    ReviewState,
    finding_dict,
    intake_get,
    intake_invite,
    intake_submit,
    medicine_matches,
    review_get,
    review_sign,
    screening_run,
)

router = Router(tags=["screening"])


def _intake_out(intake: Intake, clinic_id: int) -> dict[str, Any]:
    medications = list(intake.medications.all())
    matches = medicine_matches(clinic_id=clinic_id, names=[m.name for m in medications])
    return {
        "version": intake.version,
        "pregnancy": intake.pregnancy,
        "conditions": list(intake.conditions),
        "medications": [
            {
                "name": m.name,
                "last_taken": m.last_taken,
                "medicine": match.generic_name if (match := matches[m.name]) else None,
                "classes": sorted(match.classes) if match else [],
            }
            for m in medications
        ],
        "allergies": list(intake.allergies),
        "weight_stable": intake.weight_stable,
        "goals": intake.goals,
        "previous_treatments": intake.previous_treatments,
        "submitted_as": intake.submitted_as,
        "submitted_at": intake.submitted_at,
    }


def _review_out(state: ReviewState) -> dict[str, Any]:
    review: Review = state.review
    return {
        "id": review.pk,
        "decision": review.decision,
        "verdict": review.verdict,
        "intake_version": review.intake.version,
        "rules_version": review.rules_version,
        "session_date": review.session_date,
        "formula": review.formula_id,
        "areas": list(review.areas),
        "findings": list(review.findings),
        "acknowledgements": list(review.acknowledgements),
        "note": review.note,
        "signed_by": review.signed_by.get_full_name() or review.signed_by.get_username(),
        "signed_at": review.signed_at,
        "stale": state.stale,
        "stale_reasons": state.stale_reasons,
    }


@router.get("/patients/{patient_id}/intake", response=IntakeOut, summary="Read the latest intake")
def read_intake(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.INTAKE_VIEW, audit=False)
    intake = intake_get(caller=caller, patient=patient)
    if intake is None:
        raise Http404(_("No intake yet."))
    return _intake_out(intake, patient.clinic_id)


@router.put("/patients/{patient_id}/intake", response=IntakeOut, summary="Submit a new intake version")
def put_intake(request: HttpRequest, patient_id: int, payload: IntakeIn) -> dict[str, Any]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.INTAKE_EDIT, audit=False)
    answers = IntakeAnswers(
        pregnancy=payload.pregnancy,
        conditions=tuple(payload.conditions),
        medications=tuple(
            MedicationAnswer(name=m.name, last_taken=m.last_taken) for m in payload.medications
        ),
        allergies=tuple(payload.allergies),
        weight_stable=payload.weight_stable,
        goals=payload.goals,
        previous_treatments=payload.previous_treatments,
    )
    intake = intake_submit(caller=caller, patient=patient, answers=answers)
    return _intake_out(intake, patient.clinic_id)


@router.post(
    "/patients/{patient_id}/intake/invite",
    response={202: InvitationOut},
    summary="Email the patient a link to the portal questionnaire",
)
def invite(request: HttpRequest, patient_id: int) -> Status[dict[str, str]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.INTAKE_INVITE, audit=False)
    user = intake_invite(caller=caller, patient=patient, site_url=request.build_absolute_uri("/"))
    return Status(202, {"detail": _("Invitation sent."), "username": user.get_username()})


@router.get(
    "/patients/{patient_id}/screening",
    response={200: ScreeningOut, 409: ErrorOut},
    summary="Screen the latest intake for a session date",
)
def read_screening(request: HttpRequest, patient_id: int, params: Query[ScreeningParams]) -> Any:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.SCREENING_VIEW, audit=False)
    try:
        result = screening_run(
            caller=caller,
            patient=patient,
            on=params.on,
            formula_id=params.formula,
            areas=[area for area in params.areas.split(",") if area.strip()],
        )
    except NoIntake:
        return Status(409, {"detail": _("The patient has not filled the intake questionnaire yet.")})
    return {
        "verdict": result.screening.verdict,
        "findings": [finding_dict(finding) for finding in result.screening.findings],
        "intake_version": result.screening.intake_version,
        "rules_version": result.screening.rules_version,
    }


@router.get("/patients/{patient_id}/screening/review", response=ReviewOut, summary="Read the latest review")
def read_review(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.SCREENING_VIEW, audit=False)
    state = review_get(caller=caller, patient=patient)
    if state is None:
        raise Http404(_("No review yet."))
    return _review_out(state)


@router.post(
    "/patients/{patient_id}/screening/review",
    response={201: ReviewOut},
    summary="Sign the practitioner's review of the screening",
)
def sign_review(request: HttpRequest, patient_id: int, payload: ReviewIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.SCREENING_REVIEW, audit=False)
    codes = [ack.code for ack in payload.acknowledgements]
    if len(codes) != len(set(codes)):
        raise ValidationError({"acknowledgements": [_("Acknowledge each warning code once.")]})
    review = review_sign(
        caller=caller,
        patient=patient,
        decision=payload.decision,
        intake_version=payload.intake_version,
        acknowledgements={ack.code: ack.reason for ack in payload.acknowledgements},
        note=payload.note,
        on=payload.on,
        formula_id=payload.formula,
        areas=payload.areas,
    )
    return Status(201, _review_out(ReviewState(review=review, latest_intake_version=review.intake.version)))

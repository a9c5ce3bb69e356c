"""Intake, screening and review endpoints. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm, clinics_with
from mesoclinic.clinics.models import Clinic
from mesoclinic.patients.services import patient_get
from mesoclinic.screening.models import Intake, Medicine, Review
from mesoclinic.screening.rules import IntakeAnswers, MedicationAnswer
from mesoclinic.screening.schemas import (
    ErrorOut,
    IntakeIn,
    IntakeOut,
    InvitationOut,
    MedicineIn,
    MedicineNamesIn,
    MedicineOut,
    ReviewIn,
    ReviewOut,
    ScreeningOut,
    ScreeningParams,
)
from mesoclinic.screening.services import (
    InvitationNotSent,
    NoIntake,
    ReviewState,
    finding_dict,
    intake_get,
    intake_invite,
    intake_submit,
    medicine_add,
    medicine_catalogue,
    medicine_get,
    medicine_matches,
    medicine_names_add,
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
                "medicine": " + ".join(matches[m.name].generic_names) or None,
                "medicines": list(matches[m.name].generic_names),
                "classes": sorted(matches[m.name].classes),
                "unrecognised": list(matches[m.name].unrecognised),
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
        # Reviews signed before warnings had keys stored {code, reason}: their key is the code.
        "acknowledgements": [
            {
                "key": ack.get("key") or ack["code"],
                "code": ack["code"],
                "subject": ack.get("subject", ""),
                "reason": ack["reason"],
            }
            for ack in review.acknowledgements
        ],
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
    response={202: InvitationOut, 503: ErrorOut},
    summary="Email the patient a link to the portal questionnaire",
)
def invite(request: HttpRequest, patient_id: int) -> Status[dict[str, str]]:
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.INTAKE_INVITE, audit=False)
    try:
        user = intake_invite(caller=caller, patient=patient, site_url=request.build_absolute_uri("/"))
    except InvitationNotSent as failure:
        return Status(503, {"detail": failure.message})
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
    names = [ack.name for ack in payload.acknowledgements]
    if len(names) != len(set(names)):
        raise ValidationError({"acknowledgements": [_("Acknowledge each warning once.")]})
    review = review_sign(
        caller=caller,
        patient=patient,
        decision=payload.decision,
        intake_version=payload.intake_version,
        acknowledgements={ack.name: ack.reason for ack in payload.acknowledgements},
        note=payload.note,
        on=payload.on,
        formula_id=payload.formula,
        areas=payload.areas,
    )
    state = ReviewState(
        review=review, latest_intake_version=review.intake.version, today=patient.clinic.today()
    )
    return Status(201, _review_out(state))


# --- the medicine catalogue -------------------------------------------------------------------------------


def _clinic(request: HttpRequest, clinic_id: int | None) -> Clinic:
    """The clinic a catalogue call acts in: the one named, or the caller's only clinic with the right."""
    allowed = clinics_with(request.user, Perm.MEDICINE_MANAGE)
    if clinic_id is None:
        if len(allowed) != 1:
            if not allowed:
                raise PermissionDenied
            raise ValidationError({"clinic_id": [_("You work in several clinics: say which one.")]})
        clinic_id = allowed[0]
    elif clinic_id not in allowed:
        raise PermissionDenied
    return Clinic.objects.get(pk=clinic_id)


def _medicine_out(medicine: Medicine) -> dict[str, Any]:
    return {
        "id": medicine.pk,
        "generic_name": medicine.generic_name,
        "classes": list(medicine.classes),
        "clinic_only": medicine.clinic_id is not None,
        "names": [
            {"name": name.name, "is_brand": name.is_brand, "clinic_only": name.clinic_id is not None}
            for name in medicine.names.all()
        ],
    }


@router.get(
    "/screening/medicines", response=list[MedicineOut], summary="Search the medicine catalogue of a clinic"
)
def list_medicines(request: HttpRequest, q: str = "", clinic_id: int | None = None) -> list[dict[str, Any]]:
    clinic = _clinic(request, clinic_id)
    return [
        _medicine_out(medicine)
        for medicine in medicine_catalogue(caller=Caller.of(request), clinic=clinic, q=q[:100])
    ]


@router.post(
    "/screening/medicines",
    response={201: MedicineOut},
    summary="Add a medicine to a clinic's catalogue (for that clinic only)",
)
def create_medicine(request: HttpRequest, payload: MedicineIn) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = _clinic(request, payload.clinic_id)
    medicine = medicine_add(
        caller=caller,
        clinic=clinic,
        generic_name=payload.generic_name,
        classes=list(payload.classes),
        names=payload.names,
    )
    return Status(201, _medicine_out(medicine_get(caller=caller, clinic=clinic, medicine_id=medicine.pk)))


@router.post(
    "/screening/medicines/{medicine_id}/names",
    response={201: MedicineOut},
    summary="Add names (brand names) to a medicine, for a clinic only",
)
def add_medicine_names(
    request: HttpRequest, medicine_id: int, payload: MedicineNamesIn
) -> Status[dict[str, Any]]:
    caller = Caller.of(request)
    clinic = _clinic(request, payload.clinic_id)
    medicine = medicine_get(caller=caller, clinic=clinic, medicine_id=medicine_id)
    updated = medicine_names_add(caller=caller, clinic=clinic, medicine=medicine, names=payload.names)
    return Status(201, _medicine_out(updated))

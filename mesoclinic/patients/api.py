from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm, clinics_with
from mesoclinic.clinics.models import Clinic
from mesoclinic.patients.models import Patient
from mesoclinic.patients.schemas import PatientIn, PatientOut, PatientPage, PatientPatch, SearchParams
from mesoclinic.patients.services import patient_create, patient_get, patient_search, patient_update

router = Router(tags=["patients"])


@router.get("/patients", response=PatientPage, summary="Search patients")
def search_patients(request: HttpRequest, params: Query[SearchParams]) -> PatientPage:
    result = patient_search(
        caller=Caller.of(request),
        text=params.q,
        clinic_id=params.clinic_id,
        limit=params.limit,
        offset=params.offset,
    )
    return PatientPage(
        count=result.total, items=[PatientOut.from_orm(patient) for patient in result.patients]
    )


@router.post("/patients", response={201: PatientOut}, summary="Create a patient")
def create_patient(request: HttpRequest, payload: PatientIn) -> Status[Patient]:
    allowed = clinics_with(request.user, Perm.PATIENT_CREATE)
    if payload.clinic_id is None:
        if len(allowed) != 1:
            if not allowed:
                raise PermissionDenied
            raise ValidationError({"clinic_id": [_("You work in several clinics: say which one.")]})
        clinic_id = allowed[0]
    else:
        if payload.clinic_id not in allowed:
            raise PermissionDenied
        clinic_id = payload.clinic_id
    clinic = Clinic.objects.get(pk=clinic_id)
    data = payload.model_dump(exclude={"clinic_id"})
    return Status(201, patient_create(caller=Caller.of(request), clinic=clinic, data=data))


@router.get("/patients/{patient_id}", response=PatientOut, summary="Read a patient")
def read_patient(request: HttpRequest, patient_id: int) -> Patient:
    return patient_get(caller=Caller.of(request), patient_id=patient_id)


@router.patch("/patients/{patient_id}", response=PatientOut, summary="Update a patient")
def update_patient(request: HttpRequest, patient_id: int, payload: PatientPatch) -> Patient:
    patient = patient_get(
        caller=Caller.of(request), patient_id=patient_id, perm=Perm.PATIENT_UPDATE, audit=False
    )
    data = payload.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in data.items() if value is None)
    if nulls:
        raise ValidationError({name: [_("This field cannot be null.")] for name in nulls})
    return patient_update(caller=Caller.of(request), patient=patient, data=data)

"""Every read and write of the basic patient record: authorised by the policy, audited, atomic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.policy import Perm, authorize, can, clinics_with, may_see_clinic
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.patients.models import Patient
from mesoclinic.patients.rules import birth_date_problem, format_record_number, parse_search

# The fields a person may set on the basic record; everything else is derived or handed out.
EDITABLE_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "email",
    "phone",
    "address_line",
    "city",
    "postal_code",
    "preferred_language",
)


def _validate(patient: Patient) -> None:
    try:
        patient.full_clean(
            exclude=["clinic", "record_number", "user", "family_name_folded", "given_name_folded"]
        )
    except ValidationError as exc:
        errors = exc.message_dict
    else:
        errors = {}
    if isinstance(patient.date_of_birth, date) and "date_of_birth" not in errors:
        problem = birth_date_problem(patient.date_of_birth, patient.clinic.today())
        if problem:
            errors["date_of_birth"] = [problem]
    for name in ("given_name", "family_name"):
        if name not in errors and not str(getattr(patient, name)).strip():
            errors[name] = [_("This field cannot be blank.")]
    if errors:
        raise ValidationError(errors)


def patient_create(*, caller: Caller, clinic: Clinic, data: Mapping[str, Any]) -> Patient:
    authorize(caller.user, Perm.PATIENT_CREATE, clinic_id=clinic.pk)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
    patient = Patient(clinic=clinic, **{k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()})
    _validate(patient)
    with transaction.atomic():
        locked = Clinic.objects.select_for_update().get(pk=clinic.pk)
        locked.last_record_number += 1
        locked.save(update_fields=["last_record_number"])
        patient.record_number = format_record_number(locked.last_record_number)
        patient.save()
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.PATIENT_CREATE,
            clinic_id=clinic.pk,
            patient_id=patient.pk,
            obj=patient,
        )
    return patient


def patient_update(*, caller: Caller, patient: Patient, data: Mapping[str, Any]) -> Patient:
    authorize(caller.user, Perm.PATIENT_UPDATE, clinic_id=patient.clinic_id, patient=patient)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: [_("Unknown field.")] for name in sorted(unknown)})
    changed = sorted(name for name, value in data.items() if getattr(patient, name) != value)
    if not changed:
        return patient
    with transaction.atomic():
        locked = Patient.objects.select_for_update().select_related("clinic").get(pk=patient.pk)
        for name in changed:
            value = data[name]
            setattr(locked, name, value.strip() if isinstance(value, str) else value)
        _validate(locked)
        locked.save()
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.PATIENT_UPDATE,
            clinic_id=locked.clinic_id,
            patient_id=locked.pk,
            obj=locked,
            detail={"fields": changed},
        )
    return locked


def patient_get(
    *, caller: Caller, patient_id: int, perm: Perm = Perm.PATIENT_VIEW, audit: bool = True
) -> Patient:
    """The patient, if this user may act on it. Another clinic's patient or a missing id is a 404 (the answer
    never tells whether the record exists elsewhere); a visible record without the right is a 403."""
    patient = Patient.objects.select_related("clinic").filter(pk=patient_id).first()
    if patient is None or not may_see_clinic(caller.user, patient.clinic_id, patient):
        raise Http404(_("No such patient."))
    if not can(caller.user, perm, clinic_id=patient.clinic_id, patient=patient):
        raise PermissionDenied
    if audit:
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.PATIENT_READ,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=patient,
        )
    return patient


@dataclass(frozen=True)
class SearchResult:
    patients: list[Patient]
    total: int


def _search_queryset(clinic_ids: list[int], text: str) -> QuerySet[Patient]:
    query = parse_search(text)
    patients = Patient.objects.filter(clinic_id__in=clinic_ids)
    if query.record_number is not None:
        return patients.filter(record_number=query.record_number)
    if query.date_of_birth is not None:
        return patients.filter(date_of_birth=query.date_of_birth)
    for prefix in query.name_prefixes:
        patients = patients.filter(
            Q(family_name_folded__startswith=prefix) | Q(given_name_folded__startswith=prefix)
        )
    return patients


def patient_search(
    *, caller: Caller, text: str, clinic_id: int | None = None, limit: int = 50, offset: int = 0
) -> SearchResult:
    """Search the clinics where the user may list patients (or one of them). Audited with the ids shown."""
    allowed = clinics_with(caller.user, Perm.PATIENT_LIST)
    if clinic_id is not None:
        if clinic_id not in allowed:
            raise PermissionDenied
        allowed = [clinic_id]
    if not allowed:
        raise PermissionDenied
    queryset = _search_queryset(allowed, text).select_related("clinic")
    total = queryset.count()
    patients = list(queryset[offset : offset + limit])
    audit_record(
        actor=caller.actor(allowed[0] if len(allowed) == 1 else None),
        action=Action.PATIENT_SEARCH,
        clinic_id=allowed[0] if len(allowed) == 1 else None,
        detail={"query": text[:100], "shown": [patient.pk for patient in patients], "total": total},
    )
    return SearchResult(patients=patients, total=total)


def patient_access_log(*, caller: Caller, patient: Patient, limit: int = 200) -> list[AuditEvent]:
    """Who read or changed this record, newest first. Reading it is itself audited."""
    authorize(caller.user, Perm.PATIENT_ACCESS_LOG, clinic_id=patient.clinic_id, patient=patient)
    events = list(AuditEvent.objects.filter(patient_id=patient.pk).order_by("-seq")[:limit])
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.PATIENT_ACCESS_LOG_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=patient,
    )
    return events

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.patients.forms import PatientForm
from mesoclinic.patients.services import (
    EDITABLE_FIELDS,
    patient_access_log,
    patient_create,
    patient_get,
    patient_search,
    patient_update,
)

PAGE_SIZE = 50


def _apply_errors(form: PatientForm, error: ValidationError) -> None:
    for field, messages in error.message_dict.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


@login_required
def patient_list(request: HttpRequest) -> HttpResponse:
    clinic = current_clinic(request)
    if clinic is None:
        raise PermissionDenied
    text = request.GET.get("q", "")[:100]
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        page = 1
    result = patient_search(
        caller=Caller.of(request),
        text=text,
        clinic_id=clinic.pk,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    context = {
        "q": text,
        "result": result,
        "page": page,
        "has_next": page * PAGE_SIZE < result.total,
        "can_create": can(request.user, Perm.PATIENT_CREATE, clinic_id=clinic.pk),
    }
    template = "patients/_results.html" if request.headers.get("HX-Request") else "patients/list.html"
    return render(request, template, context)


@login_required
def patient_new(request: HttpRequest) -> HttpResponseBase:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, Perm.PATIENT_CREATE, clinic_id=clinic.pk):
        raise PermissionDenied
    form = PatientForm(request.POST or None, initial={"preferred_language": request.LANGUAGE_CODE})
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS}
        try:
            patient = patient_create(caller=Caller.of(request), clinic=clinic, data=data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            return redirect("patients:detail", patient_id=patient.pk)
    return render(
        request,
        "patients/form.html",
        {"form": form, "title": _("New patient")},
        status=400 if form.errors else 200,
    )


@login_required
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(caller=Caller.of(request), patient_id=patient_id)
    context = {
        "patient": patient,
        "can_edit": can(request.user, Perm.PATIENT_UPDATE, clinic_id=patient.clinic_id, patient=patient),
        "can_see_access": can(
            request.user, Perm.PATIENT_ACCESS_LOG, clinic_id=patient.clinic_id, patient=patient
        ),
    }
    return render(request, "patients/detail.html", context)


@login_required
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    patient = patient_get(caller=Caller.of(request), patient_id=patient_id, perm=Perm.PATIENT_UPDATE)
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS}
        try:
            patient_update(
                caller=Caller.of(request),
                patient=patient_get(caller=Caller.of(request), patient_id=patient_id, audit=False),
                data=data,
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            return redirect("patients:detail", patient_id=patient.pk)
    title = _("Edit %(name)s") % {"name": patient.full_name}
    return render(
        request,
        "patients/form.html",
        {"form": form, "title": title, "patient": patient},
        status=400 if form.errors else 200,
    )


@login_required
def patient_access(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(
        caller=Caller.of(request), patient_id=patient_id, perm=Perm.PATIENT_ACCESS_LOG, audit=False
    )
    events = patient_access_log(caller=Caller.of(request), patient=patient)
    return render(request, "patients/access.html", {"patient": patient, "events": events})

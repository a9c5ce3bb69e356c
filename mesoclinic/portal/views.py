"""The patient's own pages. A portal user only ever reaches their own record."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_access_log, patient_get


def _own_patient_id(request: HttpRequest) -> int:
    if not request.user.is_authenticated:
        raise Http404
    patient_id = Patient.objects.filter(user_id=request.user.pk).values_list("pk", flat=True).first()
    if patient_id is None:
        raise Http404(_("There is no patient record linked to this account."))
    return patient_id


@login_required
def home(request: HttpRequest) -> HttpResponse:
    patient = patient_get(caller=Caller.of(request), patient_id=_own_patient_id(request))
    return render(request, "portal/home.html", {"patient": patient})


@login_required
def access(request: HttpRequest) -> HttpResponse:
    patient = patient_get(caller=Caller.of(request), patient_id=_own_patient_id(request), audit=False)
    events = patient_access_log(caller=Caller.of(request), patient=patient)
    return render(request, "portal/access.html", {"patient": patient, "events": events})

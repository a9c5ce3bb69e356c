from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, can


@login_required
def home(request: HttpRequest) -> HttpResponseBase:
    """Send each person to where their work starts."""
    clinic = current_clinic(request)
    if clinic is not None and can(request.user, Perm.PATIENT_LIST, clinic_id=clinic.pk):
        return redirect("patients:list")
    if getattr(request.user, "patient", None) is not None:
        return redirect("portal:home")
    return render(request, "home.html", {"clinic": clinic})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")

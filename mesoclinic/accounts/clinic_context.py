"""The clinic a staff member is working in now (chosen in the header, kept in the session)."""

from __future__ import annotations

from django.http import HttpRequest

from mesoclinic.accounts.policy import clinic_roles
from mesoclinic.clinics.models import Clinic

SESSION_KEY = "clinic_id"


def current_clinic(request: HttpRequest) -> Clinic | None:
    cached: Clinic | None = getattr(request, "_current_clinic", None)
    if cached is not None:
        return cached
    roles = clinic_roles(request.user)
    if not roles:
        return None
    chosen = request.session.get(SESSION_KEY)
    clinic_id = chosen if chosen in roles else min(roles)
    clinic = Clinic.objects.filter(pk=clinic_id).first()
    request._current_clinic = clinic  # type: ignore[attr-defined]
    return clinic


def set_current_clinic(request: HttpRequest, clinic_id: int) -> bool:
    if clinic_id not in clinic_roles(request.user):
        return False
    request.session[SESSION_KEY] = clinic_id
    return True

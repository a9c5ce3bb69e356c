"""The clinic a staff member is working in now (chosen in the header, kept in the session)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _

from mesoclinic.accounts.policy import Perm, clinic_roles, clinics_with
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


def clinic_for_api(request: HttpRequest, perm: Perm, clinic_id: int | None = None) -> Clinic:
    """The clinic an API call acts in: the one named, or the caller's only clinic with this permission. A
    clinic where the caller lacks the permission is a 403; several clinics and none named is a 422."""
    allowed = clinics_with(request.user, perm)
    if clinic_id is None:
        if not allowed:
            raise PermissionDenied
        if len(allowed) > 1:
            raise ValidationError({"clinic_id": [_("You work in several clinics: say which one.")]})
        clinic_id = allowed[0]
    elif clinic_id not in allowed:
        raise PermissionDenied
    return Clinic.objects.get(pk=clinic_id)

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.policy import Perm, clinic_roles, permissions_in
from mesoclinic.clinics.models import Clinic


def navigation(request: HttpRequest) -> dict[str, Any]:
    """What the header shows: the current clinic, the other clinics, and the links this role may follow."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def lazy() -> dict[str, Any]:
        clinic = current_clinic(request)
        perms = permissions_in(user, clinic.pk) if clinic else frozenset()
        return {
            "clinic": clinic,
            "clinics": list(Clinic.objects.filter(pk__in=list(clinic_roles(user))).order_by("name"))
            if len(clinic_roles(user)) > 1
            else [],
            "roles": sorted(clinic_roles(user).get(clinic.pk, ())) if clinic else [],
            "can_list_patients": Perm.PATIENT_LIST in perms,
            "can_create_patients": Perm.PATIENT_CREATE in perms,
            "can_verify_audit": Perm.AUDIT_VERIFY in perms,
            "can_view_formulary": Perm.FORMULARY_VIEW in perms,
            "can_view_protocols": Perm.PROTOCOL_VIEW in perms,
            "can_cosign": Perm.SESSION_COSIGN in perms,
            # issue 6: consent and patient education
            "can_view_consents": Perm.CONSENT_VIEW in perms,
            "can_view_consent_library": Perm.CONSENT_TEMPLATE_VIEW in perms or Perm.EDUCATION_VIEW in perms,
            # issue 9: outcomes
            "can_view_outcomes": Perm.OUTCOME_VIEW in perms,
            "can_manage_outcome_settings": Perm.OUTCOME_SETTINGS_MANAGE in perms,
            # issue 7: scheduling
            "can_view_schedule": Perm.SCHEDULE_VIEW in perms,
            "can_calendar_feed": Perm.CALENDAR_FEED in perms,
            # issue 8: side effects, follow-up and safety signals
            "can_follow_safety": Perm.FOLLOW_UP_MANAGE in perms,
            "can_view_adverse_events": Perm.ADVERSE_EVENT_VIEW in perms,
            "can_view_safety_report": Perm.SAFETY_REPORT_VIEW in perms,
            "is_patient": getattr(user, "patient", None) is not None,
        }

    return {"nav": SimpleLazyObject(lazy)}

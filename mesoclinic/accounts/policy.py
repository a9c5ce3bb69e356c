"""The one authorisation policy: may this user do this action, in this clinic, on this patient?

Answers come from role × clinic × relationship. Staff act through their active memberships; a patient acts
only on their own record. Every view and API operation asks here (tests/test_authorisation.py walks the
whole matrix)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import PermissionDenied

from mesoclinic.accounts.models import Membership, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from mesoclinic.accounts.models import User


class Perm(StrEnum):
    PATIENT_LIST = "patient.list"
    PATIENT_VIEW = "patient.view"
    PATIENT_CREATE = "patient.create"
    PATIENT_UPDATE = "patient.update"
    PATIENT_ACCESS_LOG = "patient.access_log"
    AUDIT_VERIFY = "audit.verify"
    CLINIC_MANAGE = "clinic.manage"
    STAFF_MANAGE = "staff.manage"
    # Intake and screening (R-CAND): medical history is clinical data, not front-desk data.
    INTAKE_VIEW = "intake.view"
    INTAKE_EDIT = "intake.edit"
    INTAKE_INVITE = "intake.invite"
    SCREENING_VIEW = "screening.view"
    SCREENING_REVIEW = "screening.review"
    # Formulary, stock and recalls (R-FORM, R-SIGNAL).
    FORMULARY_VIEW = "formulary.view"
    FORMULARY_MANAGE = "formulary.manage"
    STOCK_MANAGE = "stock.manage"
    PREPARATION_CREATE = "preparation.create"
    LOT_RECALL = "lot.recall"
    EXPOSURE_VIEW = "exposure.view"


_PATIENT_CARE = frozenset({Perm.PATIENT_LIST, Perm.PATIENT_VIEW, Perm.PATIENT_CREATE, Perm.PATIENT_UPDATE})

_CLINICAL = frozenset(
    {
        Perm.INTAKE_VIEW,
        Perm.INTAKE_EDIT,
        Perm.INTAKE_INVITE,
        Perm.SCREENING_VIEW,
        Perm.SCREENING_REVIEW,
        Perm.FORMULARY_VIEW,
        Perm.FORMULARY_MANAGE,
        Perm.STOCK_MANAGE,
        Perm.PREPARATION_CREATE,
        Perm.EXPOSURE_VIEW,
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLINIC_ADMIN: _PATIENT_CARE
    | {
        Perm.PATIENT_ACCESS_LOG,
        Perm.AUDIT_VERIFY,
        Perm.CLINIC_MANAGE,
        Perm.STAFF_MANAGE,
        Perm.INTAKE_INVITE,
        Perm.FORMULARY_VIEW,
        Perm.FORMULARY_MANAGE,
        Perm.STOCK_MANAGE,
        Perm.LOT_RECALL,
        Perm.EXPOSURE_VIEW,
    },
    Role.PRACTITIONER: _PATIENT_CARE | _CLINICAL | {Perm.PATIENT_ACCESS_LOG},
    Role.MEDICAL_DIRECTOR: _PATIENT_CARE
    | _CLINICAL
    | {Perm.PATIENT_ACCESS_LOG, Perm.AUDIT_VERIFY, Perm.LOT_RECALL},
    # The desk books, takes intakes at the counter and keeps stock; it does not read medical history.
    Role.FRONT_DESK: _PATIENT_CARE
    | {
        Perm.INTAKE_VIEW,
        Perm.INTAKE_EDIT,
        Perm.INTAKE_INVITE,
        Perm.FORMULARY_VIEW,
        Perm.STOCK_MANAGE,
        Perm.EXPOSURE_VIEW,
    },
    # Researchers see de-identified data only (targets.md #3): nothing identifiable here.
    Role.RESEARCHER: frozenset(),
}

# What a patient may do on their own record, and nothing else.
PATIENT_SELF_PERMISSIONS = frozenset(
    {Perm.PATIENT_VIEW, Perm.PATIENT_ACCESS_LOG, Perm.INTAKE_VIEW, Perm.INTAKE_EDIT}
)

PATIENT_ROLE = "patient"


class PatientLike(Protocol):
    @property
    def clinic_id(self) -> int: ...
    @property
    def user_id(self) -> int | None: ...


def clinic_roles(user: User | AnonymousUser) -> dict[int, frozenset[str]]:
    """Active roles per clinic, read once per user object (one query per request)."""
    if not user.is_authenticated or not user.is_active:
        return {}
    cached: dict[int, frozenset[str]] | None = user.__dict__.get("_clinic_roles")
    if cached is None:
        collected: dict[int, set[str]] = {}
        for clinic_id, role in Membership.objects.filter(user_id=user.pk, is_active=True).values_list(
            "clinic_id", "role"
        ):
            collected.setdefault(clinic_id, set()).add(role)
        cached = {clinic_id: frozenset(roles) for clinic_id, roles in collected.items()}
        user.__dict__["_clinic_roles"] = cached
    return cached


def permissions_in(user: User | AnonymousUser, clinic_id: int) -> frozenset[Perm]:
    granted: set[Perm] = set()
    for role in clinic_roles(user).get(clinic_id, frozenset()):
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def can(
    user: User | AnonymousUser, perm: Perm, *, clinic_id: int, patient: PatientLike | None = None
) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if patient is not None:
        if patient.clinic_id != clinic_id:
            return False
        if patient.user_id is not None and patient.user_id == user.pk and perm in PATIENT_SELF_PERMISSIONS:
            return True
    return perm in permissions_in(user, clinic_id)


def authorize(
    user: User | AnonymousUser, perm: Perm, *, clinic_id: int, patient: PatientLike | None = None
) -> None:
    if not can(user, perm, clinic_id=clinic_id, patient=patient):
        raise PermissionDenied


def may_see_clinic(user: User | AnonymousUser, clinic_id: int, patient: PatientLike | None = None) -> bool:
    """Whether the user may even learn that an object in this clinic exists. When not, callers answer 404."""
    if patient is not None and patient.user_id is not None and patient.user_id == user.pk:
        return True
    return clinic_id in clinic_roles(user)


def clinics_with(user: User | AnonymousUser, perm: Perm) -> list[int]:
    return sorted(clinic_id for clinic_id in clinic_roles(user) if perm in permissions_in(user, clinic_id))


def role_label(user: User | AnonymousUser, clinic_id: int | None) -> str:
    """The role recorded in audit rows: the user's roles in that clinic, or ``patient``."""
    if not user.is_authenticated:
        return ""
    if clinic_id is not None:
        roles = clinic_roles(user).get(clinic_id)
        if roles:
            return ",".join(sorted(roles))
    if getattr(user, "patient", None) is not None:
        return PATIENT_ROLE
    return ""

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
    # The clinic's own additions to the medicine catalogue (issue 3, Build 2): not patient data.
    MEDICINE_MANAGE = "medicine.manage"
    # Formulary, stock and recalls (R-FORM, R-SIGNAL).
    FORMULARY_VIEW = "formulary.view"
    FORMULARY_MANAGE = "formulary.manage"
    STOCK_MANAGE = "stock.manage"
    PREPARATION_CREATE = "preparation.create"
    LOT_RECALL = "lot.recall"
    EXPOSURE_VIEW = "exposure.view"
    # A product injected for a patient straight from the vial, without a preparation (R-SIGNAL traceability).
    LOT_ADMINISTER = "lot.administer"
    # Clinical free text (preparation and charting notes): never the front desk's (targets.md #3).
    CLINICAL_NOTES_VIEW = "clinical_notes.view"
    # Protocols, plans and sessions (R-IND, R-SERIES, R-TECH, R-PRE-*).
    PROTOCOL_VIEW = "protocol.view"
    PROTOCOL_MANAGE = "protocol.manage"
    PLAN_VIEW = "plan.view"
    PLAN_MANAGE = "plan.manage"
    GATE_VIEW = "gate.view"
    SESSION_CHECK_IN = "session.check_in"
    SESSION_VIEW = "session.view"
    SESSION_CHART = "session.chart"
    SESSION_COSIGN = "session.cosign"
    AFTERCARE_VIEW = "aftercare.view"
    # Informed consent and patient education (issue 6; R-EDU, R-PRE-CONSENT, R-REG).
    EDUCATION_VIEW = "education.view"
    EDUCATION_MANAGE = "education.manage"
    CONSENT_TEMPLATE_VIEW = "consent_template.view"
    CONSENT_TEMPLATE_MANAGE = "consent_template.manage"
    CONSENT_SETTINGS_MANAGE = "consent_settings.manage"
    CONSENT_VIEW = "consent.view"
    CONSENT_SIGN = "consent.sign"
    CONSENT_COUNTERSIGN = "consent.countersign"
    CONSENT_WITHDRAW = "consent.withdraw"
    # Outcomes: measurements, scales and standardised photos (issue 9; R-OUT, R-EVID). Clinical data: never
    # the front desk's or the clinic admin's (targets.md #3); the patient sees their own.
    OUTCOME_VIEW = "outcome.view"
    OUTCOME_RECORD = "outcome.record"
    OUTCOME_SETTINGS_MANAGE = "outcome_settings.manage"
    PHOTO_VIEW = "photo.view"
    PHOTO_UPLOAD = "photo.upload"
    PHOTO_CONSENT = "photo.consent"
    PROGRESS_REPORT = "progress.report"
    # Scheduling: calendar, series booking and reminders (issue 7). The calendar shows patients' names and
    # times, never clinical notes.
    SCHEDULE_VIEW = "schedule.view"
    SCHEDULE_MANAGE = "schedule.manage"
    APPOINTMENT_VIEW = "appointment.view"
    APPOINTMENT_BOOK = "appointment.book"
    APPOINTMENT_ATTEND = "appointment.attend"
    CALENDAR_FEED = "calendar_feed.manage"
    MESSAGE_VIEW = "message.view"
    CONTACT_PREFERENCE_EDIT = "contact_preference.edit"
    # Side effects, follow-up and safety signals (issue 8; R-AE, R-PRE-BRUISE, R-SIGNAL, R-EVID). Events and
    # photos are clinical data: never the front desk's (targets.md #3); the report is de-identified.
    ADVERSE_EVENT_VIEW = "adverse_event.view"
    ADVERSE_EVENT_RECORD = "adverse_event.record"
    ADVERSE_EVENT_REPORT = "adverse_event.report"
    ADVERSE_EVENT_PHOTO_VIEW = "adverse_event.photo_view"
    FOLLOW_UP_MANAGE = "follow_up.manage"
    SIGNAL_VIEW = "safety_signal.view"
    SIGNAL_REVIEW = "safety_signal.review"
    SAFETY_REPORT_VIEW = "safety_report.view"
    SAFETY_SETTINGS_MANAGE = "safety_settings.manage"


_PATIENT_CARE = frozenset({Perm.PATIENT_LIST, Perm.PATIENT_VIEW, Perm.PATIENT_CREATE, Perm.PATIENT_UPDATE})

_CLINICAL = frozenset(
    {
        Perm.INTAKE_VIEW,
        Perm.INTAKE_EDIT,
        Perm.INTAKE_INVITE,
        Perm.SCREENING_VIEW,
        Perm.SCREENING_REVIEW,
        Perm.MEDICINE_MANAGE,
        Perm.FORMULARY_VIEW,
        Perm.FORMULARY_MANAGE,
        Perm.STOCK_MANAGE,
        Perm.PREPARATION_CREATE,
        Perm.EXPOSURE_VIEW,
        Perm.LOT_ADMINISTER,
        Perm.CLINICAL_NOTES_VIEW,
        Perm.PROTOCOL_VIEW,
        Perm.PROTOCOL_MANAGE,
        Perm.PLAN_VIEW,
        Perm.PLAN_MANAGE,
        Perm.GATE_VIEW,
        Perm.SESSION_CHECK_IN,
        Perm.SESSION_VIEW,
        Perm.SESSION_CHART,
        Perm.AFTERCARE_VIEW,
    }
)
# The desk books and checks patients in, prints aftercare and sees where a series stands; not the chart.
_DESK_TREATMENT = frozenset(
    {Perm.PROTOCOL_VIEW, Perm.PLAN_VIEW, Perm.GATE_VIEW, Perm.SESSION_CHECK_IN, Perm.AFTERCARE_VIEW}
)

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLINIC_ADMIN: _PATIENT_CARE
    | {
        Perm.PATIENT_ACCESS_LOG,
        Perm.AUDIT_VERIFY,
        Perm.CLINIC_MANAGE,
        Perm.STAFF_MANAGE,
        Perm.INTAKE_INVITE,
        Perm.MEDICINE_MANAGE,
        Perm.FORMULARY_VIEW,
        Perm.FORMULARY_MANAGE,
        Perm.STOCK_MANAGE,
        Perm.LOT_RECALL,
        Perm.EXPOSURE_VIEW,
        Perm.PROTOCOL_VIEW,
        Perm.PLAN_VIEW,
    },
    Role.PRACTITIONER: _PATIENT_CARE | _CLINICAL | {Perm.PATIENT_ACCESS_LOG},
    Role.MEDICAL_DIRECTOR: _PATIENT_CARE
    | _CLINICAL
    | {Perm.PATIENT_ACCESS_LOG, Perm.AUDIT_VERIFY, Perm.LOT_RECALL, Perm.SESSION_COSIGN},
    # The desk books, enters the intake questionnaire with the patient at the counter (so it reads and writes
    # the answers) and keeps stock; it sees no screening findings, reviews or clinical notes.
    Role.FRONT_DESK: _PATIENT_CARE
    | {
        Perm.INTAKE_VIEW,
        Perm.INTAKE_EDIT,
        Perm.INTAKE_INVITE,
        Perm.FORMULARY_VIEW,
        Perm.STOCK_MANAGE,
        Perm.EXPOSURE_VIEW,
    }
    | _DESK_TREATMENT,
    # Researchers see de-identified data only (targets.md #3): nothing identifiable here.
    Role.RESEARCHER: frozenset(),
}

# What a patient may do on their own record, and nothing else.
PATIENT_SELF_PERMISSIONS = frozenset(
    {
        Perm.PATIENT_VIEW,
        Perm.PATIENT_ACCESS_LOG,
        Perm.INTAKE_VIEW,
        Perm.INTAKE_EDIT,
        Perm.PLAN_VIEW,
        Perm.AFTERCARE_VIEW,
    }
)

# --- issue 6: informed consent and patient education -------------------------------------------------------
# Everyone in patient care reads the education library and the consent templates; the clinic admin and the
# medical director write templates and prices; the practitioner edits education and countersigns; the desk
# presents a consent on the tablet (the patient signs) and records a withdrawal; the patient reads, signs and
# withdraws their own. The consent text names the formula, so the clinic admin (no clinical access) does not
# read signed consents.
_CONSENT_COMMON = frozenset({Perm.EDUCATION_VIEW, Perm.CONSENT_TEMPLATE_VIEW})
_CONSENT_CARE = frozenset({Perm.CONSENT_VIEW, Perm.CONSENT_SIGN, Perm.CONSENT_WITHDRAW})
_CONSENT_GRANTS: dict[str, frozenset[Perm]] = {
    Role.CLINIC_ADMIN: _CONSENT_COMMON
    | {Perm.EDUCATION_MANAGE, Perm.CONSENT_TEMPLATE_MANAGE, Perm.CONSENT_SETTINGS_MANAGE},
    Role.PRACTITIONER: _CONSENT_COMMON | _CONSENT_CARE | {Perm.EDUCATION_MANAGE, Perm.CONSENT_COUNTERSIGN},
    Role.MEDICAL_DIRECTOR: _CONSENT_COMMON
    | _CONSENT_CARE
    | {
        Perm.EDUCATION_MANAGE,
        Perm.CONSENT_COUNTERSIGN,
        Perm.CONSENT_TEMPLATE_MANAGE,
        Perm.CONSENT_SETTINGS_MANAGE,
    },
    Role.FRONT_DESK: _CONSENT_COMMON | _CONSENT_CARE,
}
for _role, _granted in _CONSENT_GRANTS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted
PATIENT_SELF_PERMISSIONS = PATIENT_SELF_PERMISSIONS | {
    Perm.EDUCATION_VIEW,
    Perm.CONSENT_VIEW,
    Perm.CONSENT_SIGN,
    Perm.CONSENT_WITHDRAW,
}
# --- end of issue 6 ---------------------------------------------------------------------------------------

# --- issue 9: outcomes (measurements, scales, photos) ------------------------------------------------------
# Practitioners and medical directors measure, photograph and print the progress report; the clinic admin and
# the medical director choose the clinic's outcome settings (GAIS orientation); the front desk sees no
# measurements or photos. The patient sees their own progress and photos, prints their report and says
# whether photos may appear in it.
_OUTCOME_CARE = frozenset(
    {
        Perm.OUTCOME_VIEW,
        Perm.OUTCOME_RECORD,
        Perm.PHOTO_VIEW,
        Perm.PHOTO_UPLOAD,
        Perm.PHOTO_CONSENT,
        Perm.PROGRESS_REPORT,
    }
)
_OUTCOME_GRANTS: dict[str, frozenset[Perm]] = {
    Role.CLINIC_ADMIN: frozenset({Perm.OUTCOME_SETTINGS_MANAGE}),
    Role.PRACTITIONER: _OUTCOME_CARE,
    Role.MEDICAL_DIRECTOR: _OUTCOME_CARE | {Perm.OUTCOME_SETTINGS_MANAGE},
}
for _role, _granted in _OUTCOME_GRANTS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted
PATIENT_SELF_PERMISSIONS = PATIENT_SELF_PERMISSIONS | {
    Perm.OUTCOME_VIEW,
    Perm.PHOTO_VIEW,
    Perm.PHOTO_CONSENT,
    Perm.PROGRESS_REPORT,
}
# --- end of issue 9 ----------------------------------------------------------------------------------------

# --- issue 7: scheduling (calendar, series booking, reminders) ----------------------------------------------
# The desk and the clinicians book, move, cancel, check in and record no-shows; the clinic admin, the medical
# director and the desk set working hours, closures and durations; practitioners and medical directors have a
# private calendar feed. The patient sees and books their own sessions (only into allowed slots) and sets
# how they are contacted.
_SCHEDULE_DESK = frozenset(
    {
        Perm.SCHEDULE_VIEW,
        Perm.APPOINTMENT_VIEW,
        Perm.APPOINTMENT_BOOK,
        Perm.APPOINTMENT_ATTEND,
        Perm.MESSAGE_VIEW,
        Perm.CONTACT_PREFERENCE_EDIT,
    }
)
_SCHEDULE_GRANTS: dict[str, frozenset[Perm]] = {
    Role.CLINIC_ADMIN: frozenset(
        {Perm.SCHEDULE_VIEW, Perm.SCHEDULE_MANAGE, Perm.APPOINTMENT_VIEW, Perm.MESSAGE_VIEW}
    ),
    Role.PRACTITIONER: _SCHEDULE_DESK | {Perm.CALENDAR_FEED},
    Role.MEDICAL_DIRECTOR: _SCHEDULE_DESK | {Perm.CALENDAR_FEED, Perm.SCHEDULE_MANAGE},
    Role.FRONT_DESK: _SCHEDULE_DESK | {Perm.SCHEDULE_MANAGE},
}
for _role, _granted in _SCHEDULE_GRANTS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted
PATIENT_SELF_PERMISSIONS = PATIENT_SELF_PERMISSIONS | {
    Perm.APPOINTMENT_VIEW,
    Perm.APPOINTMENT_BOOK,
    Perm.MESSAGE_VIEW,
    Perm.CONTACT_PREFERENCE_EDIT,
}
# --- end of issue 7 ----------------------------------------------------------------------------------------

# --- issue 8: side effects, follow-up and safety signals ----------------------------------------------------
# Practitioners and medical directors record and follow side effects, see photos and signals; the medical
# director reviews signals (a lot signal leads to the recall) and sets the thresholds. The clinic admin and
# researchers read the safety report only: rates per 100 sessions, no patient. The front desk sees none of it
# (the check-in gate still tells it that bruising blocks a session). The patient reports and reads their own.
_SAFETY_CARE = frozenset(
    {
        Perm.ADVERSE_EVENT_VIEW,
        Perm.ADVERSE_EVENT_RECORD,
        Perm.ADVERSE_EVENT_PHOTO_VIEW,
        Perm.FOLLOW_UP_MANAGE,
        Perm.SIGNAL_VIEW,
        Perm.SAFETY_REPORT_VIEW,
    }
)
_SAFETY_GRANTS: dict[str, frozenset[Perm]] = {
    Role.CLINIC_ADMIN: frozenset({Perm.SAFETY_REPORT_VIEW}),
    Role.PRACTITIONER: _SAFETY_CARE,
    Role.MEDICAL_DIRECTOR: _SAFETY_CARE | {Perm.SIGNAL_REVIEW, Perm.SAFETY_SETTINGS_MANAGE},
    Role.RESEARCHER: frozenset({Perm.SAFETY_REPORT_VIEW}),
}
for _role, _granted in _SAFETY_GRANTS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _granted
PATIENT_SELF_PERMISSIONS = PATIENT_SELF_PERMISSIONS | {
    Perm.ADVERSE_EVENT_VIEW,
    Perm.ADVERSE_EVENT_REPORT,
    Perm.ADVERSE_EVENT_PHOTO_VIEW,
}
# --- end of issue 8 ----------------------------------------------------------------------------------------

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

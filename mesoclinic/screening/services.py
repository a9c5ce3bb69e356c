"""Every read and write of intakes, screenings and reviews: authorised by the policy, audited, atomic.

Views and the API both call these functions; the rules themselves live in ``screening.rules``."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, authorize
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.lib.findings import Finding, Severity
from mesoclinic.patients.models import Patient
from mesoclinic.screening.models import Condition, Intake, IntakeMedication, MedicineName, Review
from mesoclinic.screening.rules import (
    RULES_VERSION,
    Change,
    ConditionRule,
    IntakeAnswers,
    IntakeFacts,
    InvalidFacts,
    MedicationAnswer,
    MedicationFacts,
    PatientFacts,
    PlannedFormula,
    Screening,
    ScreeningFacts,
    intake_changes,
    intake_problems,
    medicine_name_keys,
    screen,
)

MAX_AREAS = 20
_AREA_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# The function the formulary provides to plug formulas into screening (see planned_formula_for).
FORMULARY_HOOK = ("mesoclinic.formulary.services", "formula_screening_facts")


def clinic_today(clinic: Clinic) -> date:
    return timezone.localdate(timezone=clinic.zone)


# --- catalogues -----------------------------------------------------------------------------------------


def condition_catalogue() -> dict[str, ConditionRule]:
    """The condition catalogue as the rules see it (one query)."""
    return {
        row.code: ConditionRule(
            code=row.code,
            finding_code=row.finding_code,
            severity=cast(Severity, row.severity),
            rule=row.rule,
            label=row.display_label,
            source=row.source,
        )
        for row in Condition.objects.all()
    }


@dataclass(frozen=True)
class MedicineMatch:
    generic_name: str
    classes: frozenset[str]
    matched_name: str


def medicine_matches(*, clinic_id: int, names: Iterable[str]) -> dict[str, MedicineMatch | None]:
    """What each name (as written) is in the catalogue: global rows and this clinic's own, the clinic's first.
    Case, accents and doses are ignored ("ELIQUIS 5mg" is apixaban). One query whatever the number of
    names."""
    keys_by_name = {name: medicine_name_keys(name) for name in names}
    all_keys = {key for keys in keys_by_name.values() for key in keys}
    found: dict[str, MedicineName] = {}
    if all_keys:
        rows = (
            MedicineName.objects.filter(name_folded__in=sorted(all_keys))
            .filter(Q(clinic__isnull=True) | Q(clinic_id=clinic_id))
            .filter(Q(medicine__clinic__isnull=True) | Q(medicine__clinic_id=clinic_id))
            .select_related("medicine")
        )
        for row in rows:
            if row.name_folded not in found or row.clinic_id is not None:
                found[row.name_folded] = row
    matches: dict[str, MedicineMatch | None] = {}
    for name, keys in keys_by_name.items():
        hit = next((found[key] for key in keys if key in found), None)
        matches[name] = (
            None
            if hit is None
            else MedicineMatch(
                generic_name=hit.medicine.generic_name,
                classes=frozenset(str(value) for value in hit.medicine.classes),
                matched_name=hit.name,
            )
        )
    return matches


# --- intakes ---------------------------------------------------------------------------------------------


def _latest_intake(patient: Patient) -> Intake | None:
    return (
        Intake.objects.filter(patient_id=patient.pk)
        .select_related("submitted_by")
        .prefetch_related("medications")
        .order_by("-version")
        .first()
    )


def answers_of(intake: Intake) -> IntakeAnswers:
    return IntakeAnswers(
        pregnancy=intake.pregnancy,
        conditions=tuple(str(code) for code in intake.conditions),
        medications=tuple(
            MedicationAnswer(name=medication.name, last_taken=medication.last_taken)
            for medication in intake.medications.all()
        ),
        allergies=tuple(str(allergy) for allergy in intake.allergies),
        weight_stable=intake.weight_stable,
        goals=intake.goals,
        previous_treatments=intake.previous_treatments,
    )


def _audit_intake_read(caller: Caller, patient: Patient, intake: Intake | None, what: str) -> None:
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.INTAKE_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=intake,
        detail={"what": what, "version": intake.version if intake else None},
    )


def intake_get(*, caller: Caller, patient: Patient) -> Intake | None:
    """The latest intake version, or None. Audited (also when there is none)."""
    authorize(caller.user, Perm.INTAKE_VIEW, clinic_id=patient.clinic_id, patient=patient)
    intake = _latest_intake(patient)
    _audit_intake_read(caller, patient, intake, "latest")
    return intake


@dataclass(frozen=True)
class IntakeVersion:
    intake: Intake
    answers: IntakeAnswers
    changes: list[Change]  # against the version before (empty for the first)


def intake_history(*, caller: Caller, patient: Patient) -> list[IntakeVersion]:
    """Every version, newest first, each with what changed since the one before. Audited."""
    authorize(caller.user, Perm.INTAKE_VIEW, clinic_id=patient.clinic_id, patient=patient)
    intakes = list(
        Intake.objects.filter(patient_id=patient.pk)
        .select_related("submitted_by")
        .prefetch_related("medications")
        .order_by("version")
    )
    versions: list[IntakeVersion] = []
    previous: IntakeAnswers | None = None
    for intake in intakes:
        answers = answers_of(intake)
        changes = intake_changes(previous, answers) if previous is not None else []
        versions.append(IntakeVersion(intake=intake, answers=answers, changes=changes))
        previous = answers
    _audit_intake_read(caller, patient, intakes[-1] if intakes else None, "history")
    versions.reverse()
    return versions


def _clean(answers: IntakeAnswers) -> IntakeAnswers:
    """Trimmed text, conditions without duplicates, empty medicine rows dropped."""
    conditions: list[str] = []
    for code in answers.conditions:
        if code.strip() and code.strip() not in conditions:
            conditions.append(code.strip())
    return IntakeAnswers(
        pregnancy=answers.pregnancy,
        conditions=tuple(conditions),
        medications=tuple(
            MedicationAnswer(name=" ".join(m.name.split()), last_taken=m.last_taken)
            for m in answers.medications
            if m.name.strip() or m.last_taken is not None
        ),
        allergies=tuple(a.strip() for a in answers.allergies),
        weight_stable=answers.weight_stable,
        goals=answers.goals.strip(),
        previous_treatments=answers.previous_treatments.strip(),
    )


def intake_submit(*, caller: Caller, patient: Patient, answers: IntakeAnswers) -> Intake:
    """Store a new version of the questionnaire (the patient in the portal, or staff at the desk)."""
    authorize(caller.user, Perm.INTAKE_EDIT, clinic_id=patient.clinic_id, patient=patient)
    answers = _clean(answers)
    known = frozenset(Condition.objects.values_list("code", flat=True))
    problems = intake_problems(answers, today=clinic_today(patient.clinic), known_conditions=known)
    if problems:
        raise ValidationError(problems)
    by_patient = patient.user_id is not None and patient.user_id == caller.user.pk
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        last = Intake.objects.filter(patient_id=locked.pk).aggregate(last=Max("version"))["last"] or 0
        intake = Intake.objects.create(
            patient=locked,
            version=last + 1,
            pregnancy=answers.pregnancy,
            conditions=list(answers.conditions),
            allergies=list(answers.allergies),
            weight_stable=answers.weight_stable,
            goals=answers.goals,
            previous_treatments=answers.previous_treatments,
            submitted_by=cast(User, caller.user),
            submitted_as=Intake.SubmittedAs.PATIENT if by_patient else Intake.SubmittedAs.STAFF,
            submitted_at=timezone.now(),
        )
        IntakeMedication.objects.bulk_create(
            IntakeMedication(intake=intake, position=index, name=m.name, last_taken=m.last_taken)
            for index, m in enumerate(answers.medications)
        )
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.INTAKE_SUBMIT,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=intake,
            detail={"version": intake.version, "as": intake.submitted_as},
        )
    return intake


def _portal_username(email: str) -> str:
    base = email.strip().lower()[:140]
    candidate = base
    suffix = 1
    while User.objects.filter(username=candidate).exists():
        suffix += 1
        candidate = f"{base}-{suffix}"
    return candidate


def intake_invite(*, caller: Caller, patient: Patient, site_url: str) -> User:
    """Email the patient a link to set a password and fill the questionnaire in the portal. Creates the portal
    account on the first invitation; a later invitation sends a fresh link. ``site_url``: "https://host"."""
    authorize(caller.user, Perm.INTAKE_INVITE, clinic_id=patient.clinic_id, patient=patient)
    if not patient.email:
        raise ValidationError({"email": [_("The patient has no email address: add one first.")]})
    with transaction.atomic():
        # Lock the patient row alone: PostgreSQL refuses FOR UPDATE over the nullable side of an outer join.
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        user = User.objects.filter(pk=locked.user_id).first() if locked.user_id else None
        created = user is None
        if user is None:
            user = User(
                username=_portal_username(locked.email),
                email=locked.email,
                first_name=locked.given_name[:150],
                last_name=locked.family_name[:150],
                preferred_language=locked.preferred_language,
            )
            user.set_unusable_password()
            user.save()
            Patient.objects.filter(pk=locked.pk).update(user=user)
        elif not user.is_active:
            raise ValidationError({"email": [_("The patient's portal account is disabled.")]})
        path = reverse(
            "screening:invitation",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context = {
            "patient": locked,
            "clinic": patient.clinic,
            "username": user.get_username(),
            "link": site_url.rstrip("/") + path,
            "hours": settings.PASSWORD_RESET_TIMEOUT // 3600,
        }
        with translation.override(locked.preferred_language):
            subject = render_to_string("screening/invitation_subject.txt", context).strip()
            body = render_to_string("screening/invitation_email.txt", context)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.INTAKE_INVITE,
            clinic_id=locked.clinic_id,
            patient_id=locked.pk,
            obj=locked,
            detail={"account_created": created},
        )
        # Inside the transaction: if the message cannot be sent, no account is left half made.
        send_mail(subject, body, None, [locked.email])
    return user


# --- screening ------------------------------------------------------------------------------------------

FormulaProvider = Callable[..., PlannedFormula | None]


def planned_formula_for(*, formula_id: int, clinic: Clinic) -> PlannedFormula:
    """The planned formula, from the formulary app, imported lazily so that screening works without it.

    The plug: ``FORMULARY_HOOK`` names ``mesoclinic.formulary.services.formula_screening_facts(*, formula_id,
    clinic)``, which returns the current version of a formula of that clinic as ``PlannedFormulaFacts`` (it
    satisfies ``screening.rules.PlannedFormula``) and None (or Http404) for an id that is not one of the
    clinic's formulas. When the function is missing the answer is a 422 on ``formula`` too."""
    module_name, function_name = FORMULARY_HOOK
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    provider = cast("FormulaProvider | None", getattr(module, function_name, None))
    if provider is None:
        raise ValidationError(
            {"formula": [_("Formulas cannot be screened yet: the formulary is not available.")]}
        )
    try:
        formula = provider(clinic=clinic, formula_id=formula_id)
    except Http404:
        formula = None
    if formula is None:
        raise ValidationError({"formula": [_("Unknown formula.")]})
    return formula


def _areas(areas: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(area.strip().lower() for area in areas if area.strip()))
    if len(cleaned) > MAX_AREAS or any(not _AREA_RE.match(area) for area in cleaned):
        raise ValidationError(
            {
                "areas": [
                    _("Areas are up to %(count)d codes such as “abdomen” or “submental”.")
                    % {"count": MAX_AREAS}
                ]
            }
        )
    return cleaned


@dataclass(frozen=True)
class MedicationLine:
    name: str
    last_taken: date | None
    match: MedicineMatch | None


@dataclass(frozen=True)
class ScreeningResult:
    screening: Screening
    intake: Intake
    session_date: date
    formula_id: int | None
    areas: tuple[str, ...]
    medications: list[MedicationLine] = field(default_factory=list)

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.screening.findings if finding.severity == "warn"]

    @property
    def warning_codes(self) -> list[str]:
        return list(dict.fromkeys(finding.code for finding in self.warnings))


class NoIntake(Exception):
    """The patient has not filled the questionnaire yet: there is nothing to screen."""


def _screen(
    patient: Patient, *, on: date | None, formula_id: int | None, areas: Sequence[str]
) -> ScreeningResult:
    cleaned_areas = _areas(areas)
    intake = _latest_intake(patient)
    if intake is None:
        raise NoIntake
    session_date = on or clinic_today(patient.clinic)
    formula = planned_formula_for(formula_id=formula_id, clinic=patient.clinic) if formula_id else None
    medications = list(intake.medications.all())
    matches = medicine_matches(clinic_id=patient.clinic_id, names=[m.name for m in medications])
    facts = ScreeningFacts(
        patient=PatientFacts(date_of_birth=patient.date_of_birth, sex=patient.sex),
        intake=IntakeFacts(
            version=intake.version,
            pregnancy=intake.pregnancy,
            conditions=tuple(str(code) for code in intake.conditions),
            medications=tuple(
                MedicationFacts(
                    name=m.name,
                    last_taken=m.last_taken,
                    generic_name=match.generic_name if (match := matches[m.name]) else None,
                    classes=match.classes if match else frozenset(),
                )
                for m in medications
            ),
            allergies=tuple(str(allergy) for allergy in intake.allergies),
            weight_stable=intake.weight_stable,
            goals=intake.goals,
            previous_treatments=intake.previous_treatments,
        ),
        session_date=session_date,
        conditions=condition_catalogue(),
        formula=formula,
        areas=cleaned_areas,
    )
    try:
        result = screen(facts)
    except InvalidFacts as exc:
        raise ValidationError({exc.field: [exc.message]}) from exc
    return ScreeningResult(
        screening=result,
        intake=intake,
        session_date=session_date,
        formula_id=formula_id,
        areas=cleaned_areas,
        medications=[MedicationLine(m.name, m.last_taken, matches[m.name]) for m in medications],
    )


def screening_run(
    *,
    caller: Caller,
    patient: Patient,
    on: date | None = None,
    formula_id: int | None = None,
    areas: Sequence[str] = (),
) -> ScreeningResult:
    """Screen the latest intake for a session on ``on`` (default: today in the clinic's time zone). Audited.
    Raises NoIntake when there is no questionnaire yet, ValidationError for impossible dates or unknown
    formulas."""
    authorize(caller.user, Perm.SCREENING_VIEW, clinic_id=patient.clinic_id, patient=patient)
    result = _screen(patient, on=on, formula_id=formula_id, areas=areas)
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.SCREENING_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        obj=result.intake,
        detail={
            "intake_version": result.intake.version,
            "on": result.session_date.isoformat(),
            "formula": formula_id,
            "verdict": result.screening.verdict,
        },
    )
    return result


# --- reviews -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewState:
    review: Review
    latest_intake_version: int

    @property
    def stale_reasons(self) -> list[str]:
        reasons = []
        if self.latest_intake_version > self.review.intake.version:
            reasons.append(
                _("A newer intake (version %(new)d) was submitted after this review of version %(old)d.")
                % {"new": self.latest_intake_version, "old": self.review.intake.version}
            )
        if self.review.rules_version != RULES_VERSION:
            reasons.append(
                _("The screening rules changed since this review (%(old)s, now %(new)s).")
                % {"old": self.review.rules_version, "new": RULES_VERSION}
            )
        return reasons

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


def _latest_review(patient: Patient) -> Review | None:
    return (
        Review.objects.filter(patient_id=patient.pk)
        .select_related("intake", "signed_by")
        .order_by("-signed_at", "-id")
        .first()
    )


def _latest_version(patient: Patient) -> int:
    return int(Intake.objects.filter(patient_id=patient.pk).aggregate(last=Max("version"))["last"] or 0)


def review_get(
    *, caller: Caller, patient: Patient, latest_intake_version: int | None = None, audit: bool = True
) -> ReviewState | None:
    """The latest signed review and whether it is stale. ``latest_intake_version`` saves a query when the
    caller already knows it. Audited unless the caller audits the page it is part of."""
    authorize(caller.user, Perm.SCREENING_VIEW, clinic_id=patient.clinic_id, patient=patient)
    review = _latest_review(patient)
    if audit:
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.SCREENING_READ,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=review,
            detail={"what": "review"},
        )
    if review is None:
        return None
    if latest_intake_version is None:
        latest_intake_version = _latest_version(patient)
    return ReviewState(review=review, latest_intake_version=latest_intake_version)


def review_sign(
    *,
    caller: Caller,
    patient: Patient,
    decision: str,
    intake_version: int,
    acknowledgements: Mapping[str, str],
    note: str = "",
    on: date | None = None,
    formula_id: int | None = None,
    areas: Sequence[str] = (),
) -> Review:
    """Record and sign the practitioner's decision on the screening of ``intake_version`` for a session on
    ``on``. Every warning needs an acknowledgement with a reason to record "candidate"; a block forbids it."""
    authorize(caller.user, Perm.SCREENING_REVIEW, clinic_id=patient.clinic_id, patient=patient)
    errors: dict[str, list[str]] = {}
    if decision not in Review.Decision.values:
        errors["decision"] = [_("Choose candidate or not_candidate.")]
    if len(note) > 2000:
        errors["note"] = [_("At most %(count)d characters.") % {"count": 2000}]
    try:
        result = _screen(patient, on=on, formula_id=formula_id, areas=areas)
    except NoIntake:
        raise ValidationError({"intake_version": [_("There is no intake to review yet.")]}) from None
    if intake_version != result.intake.version:
        errors["intake_version"] = [
            _("The intake is now at version %(version)d: look at the new screening and sign again.")
            % {"version": result.intake.version}
        ]
    reasons = {code: reason.strip() for code, reason in acknowledgements.items()}
    warning_codes = result.warning_codes
    extra = sorted(set(reasons) - set(warning_codes))
    if extra:
        errors.setdefault("acknowledgements", []).append(
            _("No warning to acknowledge for: %(codes)s.") % {"codes": ", ".join(extra)}
        )
    if decision == Review.Decision.CANDIDATE:
        blocking = [finding.code for finding in result.screening.findings if finding.severity == "block"]
        if blocking:
            errors.setdefault("decision", []).append(
                _("A blocking finding (%(codes)s) means the patient cannot be recorded as a candidate.")
                % {"codes": ", ".join(dict.fromkeys(blocking))}
            )
        missing = [code for code in warning_codes if not reasons.get(code)]
        if missing:
            errors.setdefault("acknowledgements", []).append(
                _("Acknowledge each warning with a reason: %(codes)s.") % {"codes": ", ".join(missing)}
            )
    if any(len(reason) > 1000 for reason in reasons.values()):
        errors.setdefault("acknowledgements", []).append(_("A reason is at most 1000 characters."))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        review = Review.objects.create(
            patient=patient,
            intake=result.intake,
            rules_version=result.screening.rules_version,
            session_date=result.session_date,
            formula_id=formula_id,
            areas=list(result.areas),
            verdict=result.screening.verdict,
            findings=[finding_dict(finding) for finding in result.screening.findings],
            acknowledgements=[
                {"code": code, "reason": reasons[code]} for code in warning_codes if reasons.get(code)
            ],
            decision=decision,
            note=note.strip(),
            signed_by=cast(User, caller.user),
            signed_at=timezone.now(),
        )
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.SCREENING_REVIEW,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=review,
            detail={
                "intake_version": result.intake.version,
                "rules_version": review.rules_version,
                "decision": decision,
                "verdict": review.verdict,
            },
        )
    return review


def finding_dict(finding: Finding) -> dict[str, str]:
    return {
        "code": finding.code,
        "severity": finding.severity,
        "rule": finding.rule,
        "message": finding.message,
        "source": finding.source,
    }

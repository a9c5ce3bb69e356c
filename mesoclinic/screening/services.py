"""Every read and write of intakes, screenings, reviews and the medicine catalogue: authorised by the policy,
audited, atomic.

Views and the API both call these functions; the rules themselves live in ``screening.rules`` (and, for a
planned formula, ``formulary.rules``). ``current_review`` is the one query other services (treatment plans)
use to ask whether a patient is a signed-off candidate."""

from __future__ import annotations

import secrets
import smtplib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max, Prefetch, Q
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
from mesoclinic.formulary.rules import PlannedFormulaFacts
from mesoclinic.formulary.services import formula_screening_facts
from mesoclinic.lib.findings import Finding, Severity, resolve_acknowledgement_keys, warning_keys
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.screening import rules
from mesoclinic.screening.models import Condition, Intake, IntakeMedication, Medicine, MedicineName, Review
from mesoclinic.screening.rules import (
    CatalogueMedicine,
    Change,
    ConditionRule,
    IntakeAnswers,
    IntakeFacts,
    InvalidFacts,
    MedicationAnswer,
    MedicationFacts,
    MedicineResolution,
    PatientFacts,
    Screening,
    ScreeningFacts,
    clean_answers,
    intake_changes,
    intake_problems,
    medicine_name_keys,
    resolve_medicine,
    review_date_problem,
    review_stale_reasons,
    screen,
)

MAX_AREAS = 20
MAX_REASON = 1000
MAX_NOTE = 2000
PORTAL_USERNAME_ATTEMPTS = 20


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


def _visible_names(clinic_id: int) -> Q:
    """Names a clinic sees: the global ones and its own, of global medicines and of its own."""
    return (Q(clinic__isnull=True) | Q(clinic_id=clinic_id)) & (
        Q(medicine__clinic__isnull=True) | Q(medicine__clinic_id=clinic_id)
    )


def medicine_matches(*, clinic_id: int, names: Iterable[str]) -> dict[str, MedicineResolution]:
    """What each medicine line (as written) names in the catalogue — global rows and this clinic's own, the
    clinic's first. Case, accents and doses are ignored ("ELIQUIS 5mg" is apixaban), a line may name several
    medicines ("Eliquis and Advil"), and "Aspirin-free Excedrin" is not aspirin (``rules.resolve_medicine``).
    One query whatever the number of lines."""
    keys_by_name = {name: medicine_name_keys(name) for name in names}
    all_keys = {key for keys in keys_by_name.values() for key in keys}
    catalogue: dict[str, CatalogueMedicine] = {}
    local: set[str] = set()
    if all_keys:
        rows = (
            MedicineName.objects.filter(name_folded__in=sorted(all_keys))
            .filter(_visible_names(clinic_id))
            .select_related("medicine")
        )
        for row in rows:
            if row.name_folded in local:
                continue
            catalogue[row.name_folded] = CatalogueMedicine(
                generic_name=row.medicine.generic_name,
                classes=frozenset(str(value) for value in row.medicine.classes),
            )
            if row.clinic_id is not None:
                local.add(row.name_folded)
    return {
        name: resolve_medicine(name, {key: catalogue[key] for key in keys if key in catalogue})
        for name, keys in keys_by_name.items()
    }


def medicine_catalogue(*, caller: Caller, clinic: Clinic, q: str = "", limit: int = 100) -> list[Medicine]:
    """The medicines this clinic sees (the global catalogue and its own), each with the names it sees: those
    with a name containing ``q`` (accents and case ignored). At most ``limit``; two queries."""
    authorize(caller.user, Perm.MEDICINE_MANAGE, clinic_id=clinic.pk)
    medicines = Medicine.objects.filter(Q(clinic__isnull=True) | Q(clinic_id=clinic.pk))
    text = fold(q.strip())
    if text:
        medicines = medicines.filter(
            pk__in=MedicineName.objects.filter(_visible_names(clinic.pk), name_folded__contains=text).values(
                "medicine_id"
            )
        )
    names = MedicineName.objects.filter(Q(clinic__isnull=True) | Q(clinic_id=clinic.pk)).order_by(
        "-is_brand", "name_folded"
    )
    return list(
        medicines.order_by("generic_name", "pk").prefetch_related(Prefetch("names", queryset=names))[:limit]
    )


def _taken_names(clinic_id: int, folded: Iterable[str]) -> dict[str, str]:
    """folded name → the generic name of the medicine it already names, for this clinic."""
    return dict(
        MedicineName.objects.filter(
            _visible_names(clinic_id), name_folded__in=sorted(set(folded))
        ).values_list("name_folded", "medicine__generic_name")
    )


def _write_names(*, clinic: Clinic, medicine: Medicine, names: Sequence[str], field_prefix: str) -> None:
    try:
        with transaction.atomic():
            for name in names:
                MedicineName.objects.create(
                    medicine=medicine, clinic=clinic, name=" ".join(name.split()), is_brand=True
                )
    except IntegrityError:  # another request added one of these names in the meantime
        raise ValidationError(
            {field_prefix: [_("One of these names was just added to the catalogue: reload and try again.")]}
        ) from None


def medicine_add(
    *, caller: Caller, clinic: Clinic, generic_name: str, classes: Sequence[str], names: Sequence[str] = ()
) -> Medicine:
    """Add a medicine to this clinic's catalogue (seen by this clinic only): its generic name, its classes and
    other names (brand names). A name already in the catalogue is refused, so that a clinic never changes
    what a known name means. Audited."""
    authorize(caller.user, Perm.MEDICINE_MANAGE, clinic_id=clinic.pk)
    candidates = [generic_name, *names]
    problems = rules.medicine_entry_problems(
        generic_name=generic_name,
        classes=classes,
        names=names,
        taken=_taken_names(clinic.pk, (fold(" ".join(name.split())) for name in candidates)),
    )
    if problems:
        raise ValidationError(problems)
    cleaned_classes = list(dict.fromkeys(classes))
    with transaction.atomic():
        medicine = Medicine.objects.create(
            clinic=clinic, generic_name=" ".join(generic_name.split()).lower(), classes=cleaned_classes
        )
        try:
            with transaction.atomic():
                MedicineName.objects.create(medicine=medicine, clinic=clinic, name=medicine.generic_name)
        except IntegrityError:
            raise ValidationError(
                {"generic_name": [_("This medicine was just added to the catalogue: reload and try again.")]}
            ) from None
        _write_names(clinic=clinic, medicine=medicine, names=names, field_prefix="names")
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.MEDICINE_ADD,
            clinic_id=clinic.pk,
            obj=medicine,
            detail={"generic_name": medicine.generic_name, "classes": cleaned_classes, "names": list(names)},
        )
    return medicine


def medicine_get(*, caller: Caller, clinic: Clinic, medicine_id: int) -> Medicine:
    """A medicine this clinic sees (global or its own); another clinic's or a missing id is a 404."""
    authorize(caller.user, Perm.MEDICINE_MANAGE, clinic_id=clinic.pk)
    medicine = (
        Medicine.objects.filter(Q(clinic__isnull=True) | Q(clinic_id=clinic.pk), pk=medicine_id)
        .prefetch_related(
            Prefetch(
                "names", queryset=MedicineName.objects.filter(Q(clinic__isnull=True) | Q(clinic_id=clinic.pk))
            )
        )
        .first()
    )
    if medicine is None:
        raise Http404(_("No such medicine."))
    return medicine


def medicine_names_add(
    *, caller: Caller, clinic: Clinic, medicine: Medicine, names: Sequence[str]
) -> Medicine:
    """Add names (brand names, other spellings) to a global or this clinic's medicine, for this clinic only.
    Audited."""
    authorize(caller.user, Perm.MEDICINE_MANAGE, clinic_id=clinic.pk)
    if medicine.clinic_id not in (None, clinic.pk):
        raise Http404(_("No such medicine."))
    problems = rules.medicine_names_problems(
        names=names,
        taken=_taken_names(clinic.pk, (fold(" ".join(name.split())) for name in names)),
        field="names",
    )
    if not names:
        problems.setdefault("names", []).append(_("Give at least one name."))
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        _write_names(clinic=clinic, medicine=medicine, names=names, field_prefix="names")
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.MEDICINE_NAME_ADD,
            clinic_id=clinic.pk,
            obj=medicine,
            detail={"generic_name": medicine.generic_name, "names": list(names)},
        )
    return medicine_get(caller=caller, clinic=clinic, medicine_id=medicine.pk)


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


def intake_submit(*, caller: Caller, patient: Patient, answers: IntakeAnswers) -> Intake:
    """Store a new version of the questionnaire (the patient in the portal, or staff at the desk). The answers
    are checked as given — ``medications.2.name`` is the third row sent — and only then trimmed."""
    authorize(caller.user, Perm.INTAKE_EDIT, clinic_id=patient.clinic_id, patient=patient)
    known = frozenset(Condition.objects.values_list("code", flat=True))
    problems = intake_problems(answers, today=patient.clinic.today(), known_conditions=known)
    if problems:
        raise ValidationError(problems)
    answers = clean_answers(answers)
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


# --- portal invitations ----------------------------------------------------------------------------------


class InvitationNotSent(Exception):
    """The portal account is ready but the email could not be sent; inviting again sends a fresh link."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _same_address(first: str, second: str) -> bool:
    return first.strip().casefold() == second.strip().casefold()


def _portal_user(patient: Patient) -> User:
    """A new portal account named after the email. The name is taken by inserting it: on a clash (an
    existing or a concurrent account) the next suffix is tried, each try in its own savepoint."""
    base = patient.email.strip().lower()[:140]
    suffixes = ["", *(f"-{n}" for n in range(2, PORTAL_USERNAME_ATTEMPTS + 1)), f"-{secrets.token_hex(4)}"]
    for suffix in suffixes:
        user = User(
            username=f"{base}{suffix}",
            email=patient.email.strip(),
            first_name=patient.given_name[:150],
            last_name=patient.family_name[:150],
            preferred_language=patient.preferred_language,
        )
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            continue
        return user
    raise ValidationError({"email": [_("No sign-in name could be made from this email address.")]})


def intake_invite(*, caller: Caller, patient: Patient, site_url: str) -> User:
    """Email the patient a link to set a password and fill the questionnaire in the portal. ``site_url``:
    "https://host".

    The first invitation creates the portal account with the patient's email. A later one sends a fresh link
    to the account's own address, and only when the record's email is still that address: a changed email on
    the record must not let a password link reach someone else (an administrator changes the account's
    email). The account is made and committed first and the email sent after: if sending fails, the account
    stays and ``InvitationNotSent`` says so; inviting again works."""
    authorize(caller.user, Perm.INTAKE_INVITE, clinic_id=patient.clinic_id, patient=patient)
    if not patient.email.strip():
        raise ValidationError({"email": [_("The patient has no email address: add one first.")]})
    with transaction.atomic():
        # Lock the patient row alone: PostgreSQL refuses FOR UPDATE over the nullable side of an outer join.
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        if not locked.email.strip():
            raise ValidationError({"email": [_("The patient has no email address: add one first.")]})
        user = User.objects.filter(pk=locked.user_id).first() if locked.user_id else None
        created = user is None
        if user is None:
            user = _portal_user(locked)
            Patient.objects.filter(pk=locked.pk).update(user=user)
        elif not user.is_active:
            raise ValidationError({"email": [_("The patient's portal account is disabled.")]})
        elif not _same_address(user.email, locked.email):
            raise ValidationError(
                {
                    "email": [
                        _(
                            "The record's email (%(record)s) is not the portal account's (%(account)s). "
                            "Invitations go only to the account's address: an administrator must change the "
                            "portal account's email first."
                        )
                        % {"record": locked.email, "account": user.email or "—"}
                    ]
                }
            )
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
    # After the commit: no row lock is held while talking to the mail server.
    try:
        send_mail(subject, body, None, [user.email])
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.INTAKE_INVITE_FAILED,
            clinic_id=locked.clinic_id,
            patient_id=locked.pk,
            obj=locked,
            detail={"error": type(exc).__name__},
        )
        raise InvitationNotSent(
            _(
                "The portal account is ready, but the invitation email could not be sent. Check the address "
                "and the clinic's mail settings, then invite again."
            )
        ) from exc
    return user


# --- screening ------------------------------------------------------------------------------------------


def planned_formula_for(*, formula_id: int, clinic: Clinic) -> PlannedFormulaFacts:
    """The current version of one of this clinic's formulas, as the formulary's checks see it (a 422 on
    ``formula`` for any other id)."""
    formula = formula_screening_facts(clinic=clinic, formula_id=formula_id)
    if formula is None:
        raise ValidationError({"formula": [_("Unknown formula.")]})
    return formula


def _areas(areas: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(area.strip().lower() for area in areas if area.strip()))
    if len(cleaned) > MAX_AREAS or any(not rules.AREA_RE.match(area) for area in cleaned):
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
    match: MedicineResolution


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
    def warning_keys(self) -> list[str]:
        """What the review acknowledges, one reason each."""
        return warning_keys(self.screening.findings)


class NoIntake(Exception):
    """The patient has not filled the questionnaire yet: there is nothing to screen."""


def _screen(
    patient: Patient, *, on: date | None, formula_id: int | None, areas: Sequence[str]
) -> ScreeningResult:
    cleaned_areas = _areas(areas)
    intake = _latest_intake(patient)
    if intake is None:
        raise NoIntake
    session_date = on or patient.clinic.today()
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
                    medicines=matches[m.name].medicines,
                    unrecognised=matches[m.name].unrecognised,
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
        jurisdiction=patient.clinic.jurisdiction,
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
    """Screen the latest intake for a session on ``on`` (default: today in the clinic's time zone). Audited,
    also when there is nothing to screen (NoIntake) or the parameters are refused (ValidationError: impossible
    dates, unknown formulas)."""
    authorize(caller.user, Perm.SCREENING_VIEW, clinic_id=patient.clinic_id, patient=patient)
    detail: dict[str, object] = {"on": on.isoformat() if on else None, "formula": formula_id}

    def record(obj: Intake | None, **more: object) -> None:
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.SCREENING_READ,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            obj=obj,
            detail={**detail, **more},
        )

    try:
        result = _screen(patient, on=on, formula_id=formula_id, areas=areas)
    except NoIntake:
        record(None, outcome="no-intake")
        raise
    except ValidationError as error:
        record(None, outcome="invalid", fields=sorted(error.message_dict))
        raise
    record(
        result.intake,
        intake_version=result.intake.version,
        on=result.session_date.isoformat(),
        verdict=result.screening.verdict,
    )
    return result


# --- reviews -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewState:
    review: Review
    latest_intake_version: int
    today: date  # the clinic's

    @property
    def signed_on(self) -> date:
        return timezone.localtime(self.review.signed_at, self.review.patient.clinic.zone).date()

    @property
    def stale_reasons(self) -> list[str]:
        return review_stale_reasons(
            reviewed_intake_version=self.review.intake.version,
            latest_intake_version=self.latest_intake_version,
            reviewed_rules_version=self.review.rules_version,
            signed_on=self.signed_on,
            today=self.today,
        )

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


def _latest_review(patient: Patient) -> Review | None:
    return (
        Review.objects.filter(patient_id=patient.pk)
        .select_related("intake", "signed_by", "patient__clinic")
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
    return ReviewState(
        review=review, latest_intake_version=latest_intake_version, today=patient.clinic.today()
    )


def current_review(patient: Patient) -> Review | None:
    """The patient's latest review when it still speaks for them and says "candidate": not stale (no newer
    intake, the same rules version, signed at most ``REVIEW_VALIDITY_DAYS`` ago), else None.

    An internal query for other services (a treatment plan is activated only for a signed-off candidate): it
    neither authorises nor audits — the caller does both for its own action."""
    review = _latest_review(patient)
    if review is None or review.decision != Review.Decision.CANDIDATE:
        return None
    state = ReviewState(
        review=review, latest_intake_version=_latest_version(patient), today=patient.clinic.today()
    )
    return None if state.stale else review


def _resolved_reasons(
    findings: Sequence[Finding], acknowledgements: Mapping[str, str], errors: dict[str, list[str]]
) -> dict[str, str]:
    """The reasons by warning key. Keys are taken as they are; a bare code stands for the one warning with
    that code (older clients)."""
    resolved, unknown, ambiguous = resolve_acknowledgement_keys(findings, acknowledgements)
    reasons: dict[str, str] = {}
    for given, key in resolved.items():
        if key in reasons:
            errors.setdefault("acknowledgements", []).append(
                _("The warning %(key)s is acknowledged twice.") % {"key": key}
            )
        reasons[key] = acknowledgements[given].strip()
    if unknown:
        errors.setdefault("acknowledgements", []).append(
            _("No warning to acknowledge for: %(codes)s.") % {"codes": ", ".join(unknown)}
        )
    for code in ambiguous:
        keys = [finding.key for finding in findings if finding.code == code and finding.severity == "warn"]
        errors.setdefault("acknowledgements", []).append(
            _("Several warnings have the code %(code)s: acknowledge each by its key (%(keys)s).")
            % {"code": code, "keys": ", ".join(keys)}
        )
    if any(len(reason) > MAX_REASON for reason in reasons.values()):
        errors.setdefault("acknowledgements", []).append(
            _("A reason is at most %(count)d characters.") % {"count": MAX_REASON}
        )
    return reasons


def _stale_version_message(version: int) -> str:
    return _("The intake is now at version %(version)d: look at the new screening and sign again.") % {
        "version": version
    }


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
    ``on`` (the clinic's today by default, at most ``REVIEW_HORIZON_DAYS`` ahead). ``acknowledgements``: a
    reason per warning key (``Finding.key``; a bare code stands for the one warning with that code). Every
    warning needs one to record "candidate"; a block forbids it. Signed under a lock on the patient row, so
    that an intake submitted meanwhile is never signed unseen."""
    authorize(caller.user, Perm.SCREENING_REVIEW, clinic_id=patient.clinic_id, patient=patient)
    errors: dict[str, list[str]] = {}
    if decision not in Review.Decision.values:
        errors["decision"] = [_("Choose candidate or not_candidate.")]
    if len(note) > MAX_NOTE:
        errors["note"] = [_("At most %(count)d characters.") % {"count": MAX_NOTE}]
    today = patient.clinic.today()
    session_date = on or today
    date_problem = review_date_problem(session_date, today=today)
    if date_problem:
        errors["on"] = [date_problem]
        raise ValidationError(errors)
    try:
        result = _screen(patient, on=session_date, formula_id=formula_id, areas=areas)
    except NoIntake:
        raise ValidationError({"intake_version": [_("There is no intake to review yet.")]}) from None
    if intake_version != result.intake.version:
        errors["intake_version"] = [_stale_version_message(result.intake.version)]
    findings = result.screening.findings
    reasons = _resolved_reasons(findings, acknowledgements, errors)
    keys = result.warning_keys
    if decision == Review.Decision.CANDIDATE:
        blocking = [finding.code for finding in findings if finding.severity == "block"]
        if blocking:
            errors.setdefault("decision", []).append(
                _("A blocking finding (%(codes)s) means the patient cannot be recorded as a candidate.")
                % {"codes": ", ".join(dict.fromkeys(blocking))}
            )
        missing = [key for key in keys if not reasons.get(key)]
        if missing:
            errors.setdefault("acknowledgements", []).append(
                _("Acknowledge each warning with a reason: %(codes)s.") % {"codes": ", ".join(missing)}
            )
    if errors:
        raise ValidationError(errors)
    first_of_key: dict[str, Finding] = {}
    for finding in findings:
        if finding.severity == "warn":
            first_of_key.setdefault(finding.key, finding)
    with transaction.atomic():
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        latest = _latest_version(locked)
        if latest != result.intake.version:
            raise ValidationError({"intake_version": [_stale_version_message(latest)]})
        review = Review.objects.create(
            patient=locked,
            intake=result.intake,
            rules_version=result.screening.rules_version,
            session_date=result.session_date,
            formula_id=formula_id,
            areas=list(result.areas),
            verdict=result.screening.verdict,
            findings=[finding_dict(finding) for finding in findings],
            acknowledgements=[
                {
                    "key": key,
                    "code": first_of_key[key].code,
                    "subject": first_of_key[key].subject,
                    "reason": reasons[key],
                }
                for key in keys
                if reasons.get(key)
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
                "on": result.session_date.isoformat(),
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
        "subject": finding.subject,
        "key": finding.key,
    }


# --- for other apps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionScreening:
    """What the screening rules say about one session date, for the check-in gate (treatments)."""

    findings: tuple[Finding, ...]
    allergies: tuple[str, ...]
    intake_version: int


def session_screening(*, patient: Patient, on: date) -> SessionScreening | None:
    """The latest intake screened for a session on ``on`` (None without an intake; ValidationError when the
    facts cannot be screened for that date, e.g. a last dose after it). An internal query for other services:
    it neither authorises nor audits — the caller does both for its own action."""
    try:
        result = _screen(patient, on=on, formula_id=None, areas=())
    except NoIntake:
        return None
    return SessionScreening(
        findings=result.screening.findings,
        allergies=tuple(str(allergy) for allergy in result.intake.allergies),
        intake_version=result.intake.version,
    )

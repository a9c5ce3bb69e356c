"""Every read and write of outcomes: authorised by the policy, audited, atomic.

Views and the API both call these functions; the rules live in ``outcomes.rules``. An assessment records a
timepoint of a plan (the baseline before the first session, one at each session, follow-ups) and its
measurements; a measurement that shows improvement records it on the plan (``plan_record_improvement``),
which lets later intervals taper. Photos are validated and re-encoded by ``lib.images`` before anything is
stored, under random names, and served only to the clinicians and the patient."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, authorize, can, may_see_clinic
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import audit_record
from mesoclinic.clinics.models import Clinic
from mesoclinic.lib.findings import Finding
from mesoclinic.lib.images import ImageRejected, clean_image, open_stored, store_image, thumbnail
from mesoclinic.outcomes import rules
from mesoclinic.outcomes.models import Assessment, Landmark, Measurement, OutcomeSettings, Photo, PhotoConsent
from mesoclinic.patients.models import Patient
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import Protocol, TreatmentPlan, TreatmentSession
from mesoclinic.treatments.rules import procedure_label

MAX_NOTE = 2000
MAX_MEASUREMENTS = 60
PHOTO_PREFIX = "outcomes/photos"
# Uploads are read up to a little over lib.images.MAX_BYTES: a larger file is refused as too large unread.
MAX_UPLOAD_READ = 16 * 1024 * 1024
# A client's file name is never used to store a photo, but a path or a traversal in it is refused outright.
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]|\.\.")


def _refuse(field_name: str, message: str) -> ValidationError:
    return ValidationError({field_name: [message]})


def _user(caller: Caller) -> User:
    return cast(User, caller.user)


def _is_own_patient(caller: Caller, patient: Patient) -> bool:
    return patient.user_id is not None and patient.user_id == caller.user.pk


# --- settings -------------------------------------------------------------------------------------------


def settings_for(clinic: Clinic) -> OutcomeSettings:
    """The clinic's outcome settings, or the defaults (unsaved) when it has chosen none."""
    return OutcomeSettings.objects.filter(clinic=clinic).first() or OutcomeSettings(clinic=clinic)


def settings_update(
    *, caller: Caller, clinic: Clinic, gais_reversed: bool, record_improvement: bool
) -> OutcomeSettings:
    authorize(caller.user, Perm.OUTCOME_SETTINGS_MANAGE, clinic_id=clinic.pk)
    with transaction.atomic():
        row, _created = OutcomeSettings.objects.select_for_update().get_or_create(clinic=clinic)
        before = {"gais_reversed": row.gais_reversed, "record_improvement": row.record_improvement}
        row.gais_reversed = bool(gais_reversed)
        row.record_improvement = bool(record_improvement)
        row.save()
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.OUTCOME_SETTINGS_WRITE,
            clinic_id=clinic.pk,
            obj=row,
            detail={
                "before": before,
                "after": {"gais_reversed": row.gais_reversed, "record_improvement": row.record_improvement},
            },
        )
    return row


# --- access -----------------------------------------------------------------------------------------------


def plan_get(*, caller: Caller, plan_id: int, perm: Perm = Perm.OUTCOME_VIEW) -> TreatmentPlan:
    """The plan, if the caller may act on its outcomes: another clinic's or a missing id is a 404, a visible
    plan without the right a 403. Not audited here: the read that follows is."""
    return treatments.plan_get(caller=caller, plan_id=plan_id, perm=perm, audit=False)


def _authorize_photos(caller: Caller, perm: Perm, plan: TreatmentPlan | Photo | Assessment) -> None:
    """Photos are clinical: staff need the photo right and the clinical-notes right (the front desk has
    neither, targets.md #3); the patient sees their own."""
    patient = plan.patient
    authorize(caller.user, perm, clinic_id=plan.clinic_id, patient=patient)
    if not _is_own_patient(caller, patient):
        authorize(caller.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=plan.clinic_id)


def assessment_get(*, caller: Caller, assessment_id: int, perm: Perm = Perm.OUTCOME_VIEW) -> Assessment:
    assessment = (
        Assessment.objects.select_related(
            "plan__protocol_version__protocol", "plan__clinic", "patient__clinic", "session", "recorded_by"
        )
        .filter(pk=assessment_id)
        .first()
    )
    if assessment is None or not may_see_clinic(caller.user, assessment.clinic_id, assessment.patient):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=assessment.clinic_id, patient=assessment.patient)
    return assessment


# --- recording measurements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LandmarkIn:
    fixed_point: str
    direction: str
    distance_cm: Any
    side: str = ""


@dataclass(frozen=True)
class MeasurementIn:
    code: str
    value: Any = None
    items: Sequence[Any] | None = None
    landmark: LandmarkIn | None = None
    landmark_id: int | None = None  # one of the plan's landmarks, to measure at the same place again
    rater: str = ""


@dataclass(frozen=True)
class AssessmentIn:
    kind: str
    session_id: int | None = None
    taken_on: date | None = None
    measurements: Sequence[MeasurementIn] = ()
    note: str = ""
    reason: str = ""  # needed when a value already recorded at this timepoint is changed


@dataclass
class _Parsed:
    code: str
    value: Decimal
    items: list[int] | None
    rater: str
    landmark: Landmark | rules.Landmark | None

    def landmark_key(self) -> str:
        if self.landmark is None:
            return ""
        if isinstance(self.landmark, Landmark):
            return str(self.landmark.pk)
        return "new:" + self.landmark.key


def _landmark_facts(row: Landmark) -> rules.Landmark:
    return rules.Landmark(row.fixed_point, row.direction, row.distance_cm, row.side)


def landmark_label(row: Landmark) -> str:
    return _landmark_facts(row).label()


def _parse_landmark(
    entry: MeasurementIn, scale: rules.Scale, prefix: str, plan_landmarks: Mapping[int, Landmark]
) -> tuple[Landmark | rules.Landmark | None, dict[str, list[str]]]:
    if not scale.landmark:
        if entry.landmark is not None or entry.landmark_id is not None:
            return None, {
                f"{prefix}.landmark": [_("%(name)s is not taken at a landmark.") % {"name": scale.label}]
            }
        return None, {}
    if entry.landmark_id is not None:
        row = plan_landmarks.get(entry.landmark_id)
        if row is None or row.code != scale.code:
            return None, {f"{prefix}.landmark_id": [_("Unknown landmark for this measure.")]}
        return row, {}
    given = entry.landmark
    if given is None:
        point, direction, distance, side = rules.DEFAULT_LANDMARKS[scale.code]
        given = LandmarkIn(point, direction, distance, side)
    distance_cm = rules.parse_decimal(given.distance_cm)
    problems = rules.landmark_problems(
        fixed_point=str(given.fixed_point),
        direction=str(given.direction),
        distance_cm=distance_cm,
        side=str(given.side or ""),
    )
    if problems:
        return None, {f"{prefix}.landmark.{name}": [message] for name, message in problems.items()}
    facts = rules.Landmark(
        str(given.fixed_point), str(given.direction), cast(Decimal, distance_cm), given.side or ""
    )
    for row in plan_landmarks.values():
        if row.code == scale.code and _landmark_facts(row).key == facts.key:
            return row, {}
    return facts, {}


def _parse_measurements(
    plan: TreatmentPlan,
    entries: Sequence[MeasurementIn],
    *,
    baseline: bool,
    plan_landmarks: Mapping[int, Landmark],
) -> list[_Parsed]:
    allowed = rules.allowed_measures(plan.protocol_version.outcome_measures, baseline=baseline)
    errors: dict[str, list[str]] = {}
    parsed: list[_Parsed] = []
    if len(entries) > MAX_MEASUREMENTS:
        raise _refuse(
            "measurements", _("At most %(count)d measurements at once.") % {"count": MAX_MEASUREMENTS}
        )
    for index, entry in enumerate(entries):
        prefix = f"measurements.{index}"
        scale = rules.scale_for(str(entry.code))
        if scale is None or scale.derived:
            errors[f"{prefix}.code"] = [_("Unknown measure.")]
            continue
        if scale.code not in allowed:
            if baseline and scale.rates_change:
                message = _("%(name)s rates the change since baseline: it is not taken at baseline.")
            else:
                message = _("This plan's protocol does not measure %(name)s.")
            errors[f"{prefix}.code"] = [message % {"name": scale.label}]
            continue
        items: list[int] | None = None
        if scale.kind == "items":
            problem = rules.items_problem(scale, entry.items)
            if problem:
                errors[f"{prefix}.items"] = [problem]
                continue
            items = [
                int(cast(Decimal, rules.parse_decimal(item))) for item in cast(Sequence[Any], entry.items)
            ]
            value: Decimal | None = rules.items_total(items)
        else:
            value = rules.parse_decimal(entry.value)
            if value is not None and scale.kind == "quantity":
                value = rules.quantise(scale, value)
        problem = rules.value_problem(scale, value)
        if problem:
            errors[f"{prefix}.value"] = [problem]
            continue
        rater = entry.rater or (scale.rater if scale.rater != "any" else "clinician")
        if rater not in ("clinician", "patient") or (scale.rater != "any" and rater != scale.rater):
            errors[f"{prefix}.rater"] = [
                _("%(name)s is rated by the %(rater)s.")
                % {"name": scale.label, "rater": _("patient") if scale.rater == "patient" else _("clinician")}
            ]
            continue
        landmark, landmark_errors = _parse_landmark(entry, scale, prefix, plan_landmarks)
        if landmark_errors:
            errors.update(landmark_errors)
            continue
        parsed.append(_Parsed(scale.code, cast(Decimal, value), items, rater, landmark))
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(parsed):
        key = (item.code, item.landmark_key())
        if key in seen:
            errors[f"measurements.{index}.code"] = [_("The same measure is given twice.")]
        seen.add(key)
    if errors:
        raise ValidationError(errors)
    return parsed


def _signed_count(plan: TreatmentPlan, *, on: date | None = None) -> int:
    sessions = TreatmentSession.objects.filter(plan=plan, status=TreatmentSession.Status.SIGNED)
    if on is not None:
        sessions = sessions.filter(session_date__lte=on)
    return sessions.count()


def _timepoint(
    plan: TreatmentPlan, data: AssessmentIn, today: date
) -> tuple[Assessment | None, TreatmentSession | None, date, int]:
    """The existing assessment this input adds to (or None), its session, date and sessions done by then."""
    if data.kind not in Assessment.Kind.values:
        raise _refuse("kind", _("Choose baseline, session or follow-up."))
    if data.taken_on is not None and data.taken_on > today:
        raise _refuse("taken_on", _("The date is in the future."))
    if data.kind == Assessment.Kind.BASELINE:
        existing = Assessment.objects.filter(plan=plan, kind=Assessment.Kind.BASELINE).first()
        if data.session_id is not None:
            raise _refuse("session_id", _("A baseline belongs to no session."))
        if existing is not None:
            if data.taken_on is not None and data.taken_on != existing.taken_on:
                raise _refuse("taken_on", _("The baseline was taken on another day."))
            return existing, None, existing.taken_on, 0
        if plan.status not in (TreatmentPlan.Status.DRAFT, TreatmentPlan.Status.ACTIVE):
            raise _refuse("kind", _("The baseline is taken before the first session."))
        if TreatmentSession.objects.filter(plan=plan, status=TreatmentSession.Status.SIGNED).exists():
            raise _refuse(
                "kind", _("The baseline is taken before the first session: this plan has sessions.")
            )
        first = TreatmentSession.objects.filter(plan=plan).order_by("session_date").first()
        taken_on = data.taken_on or today
        if first is not None and taken_on > first.session_date:
            raise _refuse("taken_on", _("The baseline is taken before the first session."))
        return None, None, taken_on, 0
    if plan.status == TreatmentPlan.Status.DRAFT:
        raise _refuse("kind", _("A draft plan has no sessions yet: record its baseline."))
    if data.kind == Assessment.Kind.SESSION:
        if data.session_id is None:
            raise _refuse("session_id", _("Choose the session."))
        session = TreatmentSession.objects.filter(pk=data.session_id, plan=plan).first()
        if session is None:
            raise _refuse("session_id", _("Unknown session of this plan."))
        if data.taken_on is not None and data.taken_on != session.session_date:
            raise _refuse("taken_on", _("A session's measurements are taken on the day of the session."))
        existing = Assessment.objects.filter(session=session).first()
        # Taken at the start of the visit: the sessions before this one are done.
        return existing, session, session.session_date, session.number - 1
    if data.session_id is not None:
        raise _refuse("session_id", _("A follow-up belongs to no session."))
    taken_on = data.taken_on or today
    done = _signed_count(plan, on=taken_on)
    if done == 0:
        raise _refuse("kind", _("A follow-up comes after a session: record the baseline before it."))
    return None, None, taken_on, done


def _write_value(
    assessment: Assessment, item: _Parsed, *, gais_reversed: bool, landmark: Landmark | None
) -> None:
    scale = rules.SCALES[item.code]
    Measurement.objects.create(
        assessment=assessment,
        code=item.code,
        scale_version=rules.scale_version(item.code, gais_reversed=gais_reversed),
        value=item.value,
        unit=scale.unit,
        loinc=scale.loinc,
        rater=item.rater,
        items=item.items,
        landmark=landmark,
    )


def _update_bmi(assessment: Assessment) -> None:
    """BMI from this timepoint's weight and the plan's latest height on or before it (LOINC 39156-5)."""
    weight = Measurement.objects.filter(assessment=assessment, code="weight").first()
    Measurement.objects.filter(assessment=assessment, code="bmi").delete()
    if weight is None:
        return
    height = (
        Measurement.objects.filter(
            assessment__plan_id=assessment.plan_id,
            code="height",
            assessment__taken_on__lte=assessment.taken_on,
        )
        .order_by("-assessment__taken_on", "-assessment__after_sessions", "-id")
        .first()
    )
    if height is None:
        return
    value = rules.bmi(weight_kg=weight.value, height_cm=height.value)
    scale = rules.SCALES["bmi"]
    if not scale.minimum <= value <= scale.maximum:
        return
    Measurement.objects.create(
        assessment=assessment,
        code="bmi",
        scale_version=scale.version,
        value=value,
        unit=scale.unit,
        loinc=scale.loinc,
        rater="clinician",
        derived=True,
    )


def assessment_record(
    *, caller: Caller, plan: TreatmentPlan, data: AssessmentIn, now: datetime | None = None
) -> Assessment:
    """Record a timepoint's measurements: a new baseline, session or follow-up assessment, or more values
    for one already recorded. Changing a value recorded before needs a reason (audited with the values
    before and after). Invalid input of any measurement refuses all of it: nothing is written. When a
    measure shows improvement, the plan records it (intervals may taper)."""
    authorize(caller.user, Perm.OUTCOME_RECORD, clinic_id=plan.clinic_id, patient=plan.patient)
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=plan.clinic.zone)
    note = data.note.strip()
    reason = data.reason.strip()
    if len(note) > MAX_NOTE:
        raise _refuse("note", _("At most %(count)d characters.") % {"count": MAX_NOTE})
    if len(reason) > MAX_NOTE:
        raise _refuse("reason", _("At most %(count)d characters.") % {"count": MAX_NOTE})
    clinic_settings = settings_for(plan.clinic)
    with transaction.atomic():
        locked = (
            TreatmentPlan.objects.select_related("clinic", "patient", "protocol_version__protocol")
            .select_for_update(of=("self",))
            .get(pk=plan.pk)
        )
        existing, session, taken_on, after = _timepoint(locked, data, today)
        plan_landmarks = {row.pk: row for row in Landmark.objects.filter(plan=locked)}
        parsed = _parse_measurements(
            locked,
            data.measurements,
            baseline=data.kind == Assessment.Kind.BASELINE,
            plan_landmarks=plan_landmarks,
        )
        previous: dict[tuple[str, str], Measurement] = {}
        if existing is not None:
            for row in Measurement.objects.filter(assessment=existing, derived=False):
                previous[(row.code, str(row.landmark_id or ""))] = row
        corrected = [
            item
            for item in parsed
            if (item.code, item.landmark_key()) in previous
            and (
                previous[(item.code, item.landmark_key())].value != item.value
                or previous[(item.code, item.landmark_key())].items != item.items
            )
        ]
        if corrected and not reason:
            raise _refuse("reason", _("Say why the values recorded before are changed."))
        if existing is None:
            assessment = Assessment.objects.create(
                clinic_id=locked.clinic_id,
                plan=locked,
                patient_id=locked.patient_id,
                kind=data.kind,
                session=session,
                taken_on=taken_on,
                after_sessions=after,
                note=note,
                recorded_at=now,
                recorded_by=_user(caller),
            )
        else:
            assessment = existing
            if note and note != assessment.note:
                assessment.note = note
                assessment.save(update_fields=["note"])
        changes: list[dict[str, Any]] = []
        for item in parsed:
            landmark: Landmark | None
            if isinstance(item.landmark, rules.Landmark):
                landmark, _created = Landmark.objects.get_or_create(
                    plan=locked,
                    code=item.code,
                    fixed_point=item.landmark.fixed_point,
                    direction=item.landmark.direction,
                    distance_cm=item.landmark.distance_cm,
                    side=item.landmark.side,
                )
            else:
                landmark = item.landmark
            old = previous.get((item.code, item.landmark_key()))
            if old is not None:
                if old.value == item.value and old.items == item.items:
                    continue
                changes.append(
                    {
                        "code": item.code,
                        "landmark": old.landmark_id,
                        "before": str(old.value),
                        "after": str(item.value),
                    }
                )
                old.delete()
            _write_value(assessment, item, gais_reversed=clinic_settings.gais_reversed, landmark=landmark)
        if any(item.code in ("weight", "height") for item in parsed):
            _update_bmi(assessment)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.OUTCOME_RECORD,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=assessment,
            detail={
                "plan": locked.pk,
                "kind": assessment.kind,
                "session": assessment.session_id,
                "codes": [item.code for item in parsed],
                "corrected": changes,
                "reason": reason,
            },
        )
        if (
            clinic_settings.record_improvement
            and locked.status == TreatmentPlan.Status.ACTIVE
            and locked.improved_on is None
        ):
            improved = improvement_signal(locked)
            if improved and can(
                caller.user, Perm.PLAN_MANAGE, clinic_id=locked.clinic_id, patient=locked.patient
            ):
                treatments.plan_record_improvement(caller=caller, plan=locked, on=taken_on)
    return assessment


# --- photos -------------------------------------------------------------------------------------------------


def photo_views_of(plan: TreatmentPlan) -> tuple[str, ...]:
    return rules.photo_views(plan.indication)


def photo_upload(
    *,
    caller: Caller,
    assessment: Assessment,
    view: str,
    data: bytes,
    name: str = "",
    now: datetime | None = None,
) -> Photo:
    """Validate, re-encode without metadata and store a standardised photo of one view at a timepoint. A
    refused file stores nothing; a retake keeps the previous photo (no longer current)."""
    _authorize_photos(caller, Perm.PHOTO_UPLOAD, assessment)
    if view not in photo_views_of(assessment.plan):
        raise _refuse("view", _("Choose one of the standard views of this indication."))
    if len(name) > 255 or _BAD_NAME.search(name):
        raise _refuse("image", _("The file name is not acceptable."))
    try:
        clean = clean_image(data, name=name)
        small = thumbnail(clean)
    except ImageRejected as rejected:
        raise _refuse("image", str(rejected.message)) from None
    now = now or timezone.now()
    folder = f"{PHOTO_PREFIX}/{assessment.clinic_id}"
    stored: list[str] = []
    try:
        image_name = store_image(clean, folder=folder)
        stored.append(image_name)
        thumb_name = store_image(small, folder=folder)
        stored.append(thumb_name)
        with transaction.atomic():
            Photo.objects.select_for_update().filter(
                assessment=assessment, view=view, is_current=True
            ).update(is_current=False)
            photo = Photo.objects.create(
                clinic_id=assessment.clinic_id,
                plan_id=assessment.plan_id,
                patient_id=assessment.patient_id,
                assessment=assessment,
                view=view,
                image=image_name,
                thumbnail=thumb_name,
                content_type=clean.content_type,
                width_px=clean.width,
                height_px=clean.height,
                size_bytes=len(clean.content),
                sha256=clean.sha256,
                uploaded_at=now,
                uploaded_by=_user(caller),
            )
            audit_record(
                actor=caller.actor(assessment.clinic_id),
                action=Action.PHOTO_UPLOAD,
                clinic_id=assessment.clinic_id,
                patient_id=assessment.patient_id,
                obj=photo,
                detail={
                    "plan": assessment.plan_id,
                    "assessment": assessment.pk,
                    "view": view,
                    "sha256": photo.sha256,
                },
            )
    except BaseException:
        for stored_name in stored:
            default_storage.delete(stored_name)
        raise
    return photo


def photo_get(*, caller: Caller, photo_id: int, thumb: bool = False) -> Photo:
    """A photo, for the clinicians of its clinic and its patient only; every read is audited."""
    photo = Photo.objects.select_related("patient", "assessment", "plan").filter(pk=photo_id).first()
    if photo is None or not may_see_clinic(caller.user, photo.clinic_id, photo.patient):
        raise Http404(_("Not found."))
    _authorize_photos(caller, Perm.PHOTO_VIEW, photo)
    audit_record(
        actor=caller.actor(photo.clinic_id),
        action=Action.PHOTO_READ,
        clinic_id=photo.clinic_id,
        patient_id=photo.patient_id,
        obj=photo,
        detail={"thumbnail": thumb},
    )
    return photo


def photo_bytes(photo: Photo, *, thumb: bool = False) -> bytes:
    name = (photo.thumbnail if thumb else photo.image).name
    if not name:
        raise Http404(_("Not found."))
    with open_stored(name) as handle:
        return handle.read()


def photo_consent_set(
    *, caller: Caller, plan: TreatmentPlan, given: bool, now: datetime | None = None
) -> PhotoConsent:
    """Whether the patient's photos may be printed in their progress report (the patient, or a clinician
    recording what the patient said)."""
    authorize(caller.user, Perm.PHOTO_CONSENT, clinic_id=plan.clinic_id, patient=plan.patient)
    now = now or timezone.now()
    with transaction.atomic():
        row = PhotoConsent.objects.select_for_update().filter(plan=plan).first()
        before = row.given if row is not None else None
        if row is None:
            row = PhotoConsent.objects.create(
                plan=plan, given=bool(given), recorded_at=now, recorded_by=_user(caller)
            )
        else:
            row.given, row.recorded_at, row.recorded_by = bool(given), now, _user(caller)
            row.save()
        audit_record(
            actor=caller.actor(plan.clinic_id),
            action=Action.PHOTO_CONSENT,
            clinic_id=plan.clinic_id,
            patient_id=plan.patient_id,
            obj=row,
            detail={"plan": plan.pk, "before": before, "after": row.given},
        )
    return row


# --- progress -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    assessment_id: int
    kind: str
    taken_on: date
    after_sessions: int
    value: Decimal  # as recorded
    standard: Decimal  # in the scale's published orientation
    display: str
    version: str
    rater: str
    items: list[int] | None = None


@dataclass(frozen=True)
class Series:
    key: str  # "code" or "code@landmark-id": a chart's name
    code: str
    label: str
    landmark: str
    unit: str
    points: list[Point]
    baseline: Point | None
    latest: Point | None
    change: rules.Change | None

    @property
    def scale(self) -> rules.Scale:
        return rules.SCALES[self.code]

    @property
    def facts(self) -> rules.SeriesFacts:
        return rules.SeriesFacts(
            code=self.code,
            key=self.key,
            baseline=self.baseline.standard if self.baseline else None,
            latest=self.latest.standard if self.latest and self.latest is not self.baseline else None,
            latest_after_sessions=self.latest.after_sessions if self.latest else 0,
            landmark=self.landmark,
        )

    @property
    def change_display(self) -> str:
        if self.change is None:
            return ""
        delta = self.change.delta
        sign = "+" if delta > 0 else "−" if delta < 0 else "±"
        text = f"{sign}{self.scale.display(abs(delta))}"
        if self.change.percent is not None and self.scale.kind == "quantity":
            text += f" ({'+' if self.change.percent > 0 else ''}{self.change.percent}%)"
        return text


@dataclass(frozen=True)
class Progress:
    plan: TreatmentPlan
    assessments: list[Assessment]
    series: list[Series]
    response: rules.Response
    rule_text: str
    alternatives: list[tuple[str, str]]
    sessions_done: int
    judge_after: int
    views: tuple[str, ...]
    photos: dict[int, dict[str, Photo]]  # assessment id → view → current photo
    photo_consent: bool
    gais_reversed: bool
    due: list[str] = field(default_factory=list)  # what the protocol asks that is missing now
    open_session: TreatmentSession | None = None

    @property
    def baseline(self) -> Assessment | None:
        return next((a for a in self.assessments if a.kind == Assessment.Kind.BASELINE), None)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.response.findings

    @property
    def photo_dates(self) -> list[Assessment]:
        return [a for a in self.assessments if self.photos.get(a.pk)]

    def series_by_key(self, key: str) -> Series | None:
        return next((s for s in self.series if s.key == key), None)


def _measurement_rows(plan: TreatmentPlan) -> list[Measurement]:
    return list(
        Measurement.objects.filter(assessment__plan=plan)
        .select_related("assessment", "landmark")
        .order_by("assessment__after_sessions", "assessment__taken_on", "assessment_id", "id")
    )


def _series_key(row: Measurement) -> str:
    return f"{row.code}@{row.landmark_id}" if row.landmark_id else row.code


def _build_series(rows: Sequence[Measurement]) -> list[Series]:
    grouped: dict[str, list[Measurement]] = defaultdict(list)
    for row in rows:
        grouped[_series_key(row)].append(row)
    order = {code: index for index, code in enumerate(rules.SCALES)}
    result: list[Series] = []
    for key, items in grouped.items():
        first = items[0]
        scale = rules.SCALES[first.code]
        points = [
            Point(
                assessment_id=row.assessment_id,
                kind=row.assessment.kind,
                taken_on=row.assessment.taken_on,
                after_sessions=row.assessment.after_sessions,
                value=row.value,
                standard=rules.standard_value(row.code, row.value, row.scale_version),
                display=scale.display(row.value),
                version=row.scale_version,
                rater=row.rater,
                items=row.items,
            )
            for row in items
        ]
        baseline = next((p for p in points if p.kind == Assessment.Kind.BASELINE), None)
        latest = points[-1] if points else None
        step = (
            rules.change(scale, baseline=baseline.standard, latest=latest.standard)
            if baseline is not None and latest is not None and latest is not baseline
            else None
        )
        result.append(
            Series(
                key=key,
                code=first.code,
                label=scale.label,
                landmark=landmark_label(first.landmark) if first.landmark else "",
                unit=scale.unit_label,
                points=points,
                baseline=baseline,
                latest=latest,
                change=step,
            )
        )
    result.sort(key=lambda s: (order.get(s.code, 99), s.landmark, s.key))
    return result


def _series_facts(rows: Sequence[Measurement]) -> list[rules.SeriesFacts]:
    return [series.facts for series in _build_series(rows)]


def improvement_signal(plan: TreatmentPlan) -> list[str]:
    """The improvement that lets the plan's intervals taper (R-SERIES; the scheduling issue): the keys of the
    plan's series that are better than their baseline by the scale's meaningful change, or a change-rating
    scale at "improved" or better (GAIS ≤ 3) — empty when nothing has improved. The rule is
    ``rules.improved_series``; this is that rule over the plan's recorded measurements, a plain function (no
    caller, no audit: whoever calls it has authorised and audited the read it is part of).

    ``assessment_record`` calls it after every write and, when it is not empty (and the clinic has not turned
    it off), records the improvement on the plan through ``treatments.plan_record_improvement``: that date,
    ``TreatmentPlan.improved_on``, is what scheduling reads to taper the intervals."""
    return rules.improved_series(_series_facts(_measurement_rows(plan)))


def _protocol_codes(plan: TreatmentPlan) -> list[str]:
    """The plan's protocol code and the codes of the protocols it was copied from (nearest first)."""
    protocol = (
        Protocol.objects.select_related("copied_from__copied_from")
        .filter(pk=plan.protocol_version.protocol_id)
        .first()
    )
    codes: list[str] = []
    while protocol is not None and len(codes) < 3:
        codes.append(protocol.code)
        protocol = protocol.copied_from if protocol.copied_from_id else None
    return codes


def _due(
    plan: TreatmentPlan,
    assessments: Sequence[Assessment],
    rows: Sequence[Measurement],
    open_session: TreatmentSession | None,
    views: Sequence[str],
    photos: Mapping[int, Mapping[str, Photo]],
) -> list[str]:
    measures = plan.protocol_version.outcome_measures
    baseline = next((a for a in assessments if a.kind == Assessment.Kind.BASELINE), None)
    due: list[str] = []
    if baseline is None:
        if plan.status in (TreatmentPlan.Status.DRAFT, TreatmentPlan.Status.ACTIVE):
            due.append(_("Record the baseline before the first session."))
        return due
    recorded = {row.code for row in rows if row.assessment_id == baseline.pk}
    missing = [code for code in rules.due_measures(measures, baseline=True) if code not in recorded]
    if missing:
        due.append(
            _("Baseline without: %(names)s.") % {"names": ", ".join(rules.SCALES[c].label for c in missing)}
        )
    if "photos" in measures:
        missing_views = [v for v in views if v not in photos.get(baseline.pk, {})]
        if missing_views:
            due.append(
                _("Baseline photos missing: %(views)s.")
                % {"views": ", ".join(rules.view_label(v) for v in missing_views)}
            )
    if open_session is not None and not any(a.session_id == open_session.pk for a in assessments):
        due.append(_("Measure at the start of session %(number)d.") % {"number": open_session.number})
    return due


def progress_of(*, caller: Caller, plan: TreatmentPlan, audit: bool = True) -> Progress:
    """What the progress page, the report and the API show, in a fixed number of queries whatever the
    number of sessions: the series of every measure with change from baseline, responder status by the
    protocol's rule, the non-responder flag with the alternatives, and the current photos by timepoint."""
    authorize(caller.user, Perm.OUTCOME_VIEW, clinic_id=plan.clinic_id, patient=plan.patient)
    version = plan.protocol_version
    assessments = list(
        Assessment.objects.filter(plan=plan)
        .select_related("session", "recorded_by")
        .order_by("after_sessions", "taken_on", "id")
    )
    rows = _measurement_rows(plan)
    series = _build_series(rows)
    sessions = list(TreatmentSession.objects.filter(plan=plan).values_list("pk", "number", "status"))
    signed = sum(1 for _pk, _number, status in sessions if status == TreatmentSession.Status.SIGNED)
    open_row = next(
        ((pk, number) for pk, number, status in sessions if status == TreatmentSession.Status.OPEN), None
    )
    open_session = TreatmentSession.objects.filter(pk=open_row[0]).first() if open_row else None
    views = photo_views_of(plan)
    photos: dict[int, dict[str, Photo]] = defaultdict(dict)
    if can(caller.user, Perm.PHOTO_VIEW, clinic_id=plan.clinic_id, patient=plan.patient) and (
        _is_own_patient(caller, plan.patient)
        or can(caller.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=plan.clinic_id)
    ):
        for photo in Photo.objects.filter(plan=plan, is_current=True).order_by("view"):
            photos[photo.assessment_id][photo.view] = photo
    consent = PhotoConsent.objects.filter(plan=plan).values_list("given", flat=True).first()
    clinic_settings = settings_for(plan.clinic)
    rule = rules.responder_rule_for(
        _protocol_codes(plan), indication=plan.indication, protocol_measures=version.outcome_measures
    )
    judge = rules.judge_after(version.non_responder_after_sessions, version.sessions_min)
    response = rules.response(
        rule,
        [item.facts for item in series],
        sessions_done=signed,
        judge_after=judge,
        alternatives=version.alternatives,
    )
    if audit:
        audit_record(
            actor=caller.actor(plan.clinic_id),
            action=Action.OUTCOME_READ,
            clinic_id=plan.clinic_id,
            patient_id=plan.patient_id,
            obj=plan,
            detail={"assessments": len(assessments), "status": response.status},
        )
    return Progress(
        plan=plan,
        assessments=assessments,
        series=series,
        response=response,
        rule_text=version.responder_rule or rule.describe(),
        alternatives=[(code, procedure_label(code)) for code in version.alternatives],
        sessions_done=signed,
        judge_after=judge,
        views=views,
        photos=dict(photos),
        photo_consent=bool(consent),
        gais_reversed=clinic_settings.gais_reversed,
        due=_due(plan, assessments, rows, open_session, views, photos),
        open_session=open_session,
    )


# --- lists ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSummary:
    plan: TreatmentPlan
    assessments: int
    photos: int
    last_taken_on: date | None


def summaries_of(*, caller: Caller, patient: Patient) -> list[PlanSummary]:
    """The patient's plans with how much has been measured (the patient page's panel, the portal)."""
    authorize(caller.user, Perm.OUTCOME_VIEW, clinic_id=patient.clinic_id, patient=patient)
    plans = list(
        TreatmentPlan.objects.filter(patient=patient)
        .select_related("protocol_version__protocol")
        .annotate(
            n_assessments=models.Count("assessments", distinct=True),
            n_photos=models.Count("photos", filter=models.Q(photos__is_current=True), distinct=True),
            last_on=models.Max("assessments__taken_on"),
        )
        .order_by("-created_at", "-id")
    )
    audit_record(
        actor=caller.actor(patient.clinic_id),
        action=Action.OUTCOME_READ,
        clinic_id=patient.clinic_id,
        patient_id=patient.pk,
        detail={"plans": [plan.pk for plan in plans]},
    )
    return [
        PlanSummary(
            plan,
            getattr(plan, "n_assessments", 0),
            getattr(plan, "n_photos", 0),
            getattr(plan, "last_on", None),
        )
        for plan in plans
    ]


def assessment_detail(
    *, caller: Caller, assessment: Assessment
) -> tuple[list[Measurement], dict[str, Photo]]:
    """An assessment's measurements and its current photos by view (photos only for who may see them)."""
    measurements = list(
        Measurement.objects.filter(assessment=assessment)
        .select_related("landmark")
        .order_by("code", "landmark_id")
    )
    photos: dict[str, Photo] = {}
    if can(caller.user, Perm.PHOTO_VIEW, clinic_id=assessment.clinic_id, patient=assessment.patient) and (
        _is_own_patient(caller, assessment.patient)
        or can(caller.user, Perm.CLINICAL_NOTES_VIEW, clinic_id=assessment.clinic_id)
    ):
        photos = {p.view: p for p in Photo.objects.filter(assessment=assessment, is_current=True)}
    audit_record(
        actor=caller.actor(assessment.clinic_id),
        action=Action.OUTCOME_READ,
        clinic_id=assessment.clinic_id,
        patient_id=assessment.patient_id,
        obj=assessment,
    )
    return measurements, photos


def baseline_photo(plan: TreatmentPlan, view: str) -> Photo | None:
    """The photo the capture screen overlays as a ghost: the baseline's, else the earliest of the view."""
    return (
        Photo.objects.filter(plan=plan, view=view, is_current=True)
        .select_related("assessment")
        .order_by("assessment__after_sessions", "assessment__taken_on", "id")
        .first()
    )


def plan_landmarks(plan: TreatmentPlan) -> list[Landmark]:
    return list(Landmark.objects.filter(plan=plan).order_by("code", "id"))


def unmeasured_sessions(plan: TreatmentPlan) -> list[TreatmentSession]:
    return list(TreatmentSession.objects.filter(plan=plan, assessment__isnull=True).order_by("number"))


def open_photo_check(caller: Caller, plan: TreatmentPlan) -> bool:
    """Whether the caller may see this plan's photos (for templates)."""
    try:
        _authorize_photos(caller, Perm.PHOTO_VIEW, plan)
    except PermissionDenied:
        return False
    return True


def progress_for_report(*, caller: Caller, plan: TreatmentPlan) -> Progress:
    """The progress for the printed report: audited as a print, with whether photos were included."""
    authorize(caller.user, Perm.PROGRESS_REPORT, clinic_id=plan.clinic_id, patient=plan.patient)
    progress = progress_of(caller=caller, plan=plan, audit=False)
    audit_record(
        actor=caller.actor(plan.clinic_id),
        action=Action.PROGRESS_PRINT,
        clinic_id=plan.clinic_id,
        patient_id=plan.patient_id,
        obj=plan,
        detail={"photos": progress.photo_consent, "status": progress.response.status},
    )
    return progress

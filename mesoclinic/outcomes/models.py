"""Outcomes of a treatment plan (R-OUT, R-EVID): assessments (a baseline, one per session, follow-ups), the
measurements taken at each (every score with its scale and version, LOINC where one exists), the landmarks
circumferences are taken at, standardised photos, and the patient's consent to photos in their report.

The scale catalogue is data in ``outcomes.rules``; the database checks every stored value against its
scale's range as well (one constraint built from the same data), so that no code path stores a GAIS of 6."""

from __future__ import annotations

from functools import reduce
from operator import and_

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic
from mesoclinic.outcomes.rules import DIRECTIONS, FIXED_POINTS, SCALES, SIDES
from mesoclinic.patients.models import Patient
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession


def _values_in_range() -> Q:
    return reduce(
        and_,
        (
            ~Q(code=code) | Q(value__gte=scale.minimum, value__lte=scale.maximum)
            for code, scale in SCALES.items()
        ),
    )


class OutcomeSettings(models.Model):
    """A clinic's outcome choices; a clinic without a row gets the defaults (``services.settings_for``)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="outcome_settings")
    # Some clinics record GAIS the other way round (5 = very much improved); the version stored with each
    # score says which, so that comparisons are always made in the published orientation.
    gais_reversed = models.BooleanField(_("record GAIS reversed (5 = very much improved)"), default=False)
    # When a measurement shows improvement, record it on the plan so that intervals may taper (R-SERIES).
    record_improvement = models.BooleanField(_("record improvement on the plan automatically"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("outcome settings")

    def __str__(self) -> str:
        return f"outcome settings of clinic {self.clinic_id}"


class Assessment(models.Model):
    """One timepoint of a plan: the baseline (before the first session), the one taken at a session, or a
    follow-up. ``after_sessions`` is how many sessions were done by then (the charts' x axis)."""

    class Kind(models.TextChoices):
        BASELINE = "baseline", _("Baseline")
        SESSION = "session", _("Session")
        FOLLOW_UP = "follow-up", _("Follow-up")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="assessments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    session = models.OneToOneField(
        TreatmentSession,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assessment",
        verbose_name=_("session"),
    )
    taken_on = models.DateField(_("date"))  # clinic-local
    after_sessions = models.PositiveSmallIntegerField(_("after sessions"))
    note = models.TextField(_("clinical note"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("assessment")
        ordering = ["plan", "after_sessions", "taken_on", "id"]
        indexes = [models.Index(fields=["plan", "after_sessions", "taken_on"], name="assessment_plan_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["plan"], condition=Q(kind="baseline"), name="assessment_one_baseline_per_plan"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["baseline", "session", "follow-up"]), name="assessment_kind_valid"
            ),
            models.CheckConstraint(
                condition=(Q(kind="session") & Q(session__isnull=False))
                | (~Q(kind="session") & Q(session__isnull=True)),
                name="assessment_session_iff_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind="baseline") | Q(after_sessions=0),
                name="assessment_baseline_before_sessions",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of plan {self.plan_id} on {self.taken_on}"


class Landmark(models.Model):
    """Where a circumference or a thickness is taken on this plan's patient — a fixed point, a side and a
    distance — so that every later measurement is taken at the same place."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="landmarks")
    code = models.CharField(_("measure"), max_length=40)  # a scale code with a landmark
    fixed_point = models.CharField(_("fixed point"), max_length=30, choices=list(FIXED_POINTS.items()))
    direction = models.CharField(_("direction"), max_length=5, choices=list(DIRECTIONS.items()))
    distance_cm = models.DecimalField(_("distance (cm)"), max_digits=4, decimal_places=1)
    side = models.CharField(_("side"), max_length=5, choices=list(SIDES.items()), blank=True)

    class Meta:
        verbose_name = _("landmark")
        ordering = ["plan", "code", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "code", "fixed_point", "direction", "distance_cm", "side"],
                name="landmark_unique_per_plan",
            ),
            models.CheckConstraint(
                condition=Q(distance_cm__gte=0) & Q(distance_cm__lte=60), name="landmark_distance_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} at {self.fixed_point} {self.direction} {self.distance_cm} cm {self.side}"


class Measurement(models.Model):
    """One score or quantity at one timepoint, with its scale and version, unit, LOINC code (where one
    exists), who rated it (clinician or patient), the items of a multi-item scale and the landmark."""

    class Rater(models.TextChoices):
        CLINICIAN = "clinician", _("Clinician")
        PATIENT = "patient", _("Patient")

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="measurements")
    code = models.CharField(_("measure"), max_length=40)
    scale_version = models.CharField(_("scale version"), max_length=100)
    value = models.DecimalField(_("value"), max_digits=8, decimal_places=2)
    unit = models.CharField(_("unit"), max_length=12)
    loinc = models.CharField(_("LOINC"), max_length=12, blank=True)
    rater = models.CharField(_("rated by"), max_length=10, choices=Rater.choices)
    items = models.JSONField(_("items"), null=True, blank=True)  # Hexsel CSS: the 5 item scores
    landmark = models.ForeignKey(
        Landmark, on_delete=models.PROTECT, null=True, blank=True, related_name="measurements"
    )
    derived = models.BooleanField(_("computed"), default=False)  # BMI from weight and height

    class Meta:
        verbose_name = _("measurement")
        ordering = ["assessment", "code", "landmark_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "code"],
                condition=Q(landmark__isnull=True),
                name="measurement_unique_without_landmark",
            ),
            models.UniqueConstraint(
                fields=["assessment", "code", "landmark"],
                condition=Q(landmark__isnull=False),
                name="measurement_unique_at_landmark",
            ),
            models.CheckConstraint(condition=Q(code__in=list(SCALES)), name="measurement_known_scale"),
            models.CheckConstraint(condition=_values_in_range(), name="measurement_value_in_scale_range"),
        ]

    def __str__(self) -> str:
        return f"{self.code} = {self.value} {self.unit}"


def _photo_name(instance: Photo, filename: str) -> str:
    return filename  # services give a random name (lib.images.random_name); the client's is never used


class Photo(models.Model):
    """A standardised photo of one view at one timepoint, validated and re-encoded without metadata. A
    retake replaces the current photo of the view and keeps the old one (``is_current`` False)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="photos")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="outcome_photos")
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="photos")
    view = models.CharField(_("view"), max_length=40)
    image = models.FileField(_("image"), upload_to=_photo_name, max_length=200)
    thumbnail = models.FileField(_("thumbnail"), upload_to=_photo_name, max_length=200)
    content_type = models.CharField(max_length=20)
    width_px = models.PositiveIntegerField()
    height_px = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    is_current = models.BooleanField(default=True)
    uploaded_at = models.DateTimeField(_("uploaded at"))
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("photo")
        ordering = ["plan", "assessment__after_sessions", "assessment__taken_on", "view", "-uploaded_at"]
        indexes = [models.Index(fields=["plan", "view"], name="photo_plan_view_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "view"], condition=Q(is_current=True), name="photo_one_current_per_view"
            ),
            models.CheckConstraint(
                condition=Q(content_type__in=["image/jpeg", "image/png"]), name="photo_content_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"photo {self.view} of plan {self.plan_id}"


class PhotoConsent(models.Model):
    """Whether the patient agrees that their photos appear in their printed progress report. A simple flag
    per plan, kept by this app until the consent app records photo consent itself."""

    plan = models.OneToOneField(TreatmentPlan, on_delete=models.PROTECT, related_name="photo_consent")
    given = models.BooleanField(_("photos may be printed in the report"), default=False)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("photo consent")

    def __str__(self) -> str:
        return f"photo consent of plan {self.plan_id}: {self.given}"

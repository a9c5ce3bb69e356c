"""Intake and candidacy screening: the medicine and condition catalogues (data), versioned intake
questionnaires and the practitioner's signed review (R-CAND-*, R-PRE-NSAID)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.screening.rules import CONDITION_LABELS, MEDICINE_CLASS_LABELS, MedicineClass


class ImmutableRecordError(RuntimeError):
    """Intake versions and signed reviews are never changed: a new version or a new review is made instead."""


class Medicine(models.Model):
    """One medicine (by generic name) and its classes. ``clinic`` NULL: the seeded catalogue for everyone;
    otherwise a clinic's own addition, seen only by that clinic."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    generic_name = models.CharField(_("generic name"), max_length=100)
    # MedicineClass values; aspirin is both "nsaid" and "antiplatelet".
    classes = models.JSONField(_("classes"), default=list)

    class Meta:
        verbose_name = _("medicine")
        ordering = ["generic_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["generic_name"], condition=Q(clinic__isnull=True), name="medicine_unique_global"
            ),
            models.UniqueConstraint(
                fields=["clinic", "generic_name"],
                condition=Q(clinic__isnull=False),
                name="medicine_unique_per_clinic",
            ),
        ]

    def __str__(self) -> str:
        return self.generic_name

    @property
    def class_labels(self) -> list[str]:
        labels = []
        for value in self.classes:
            try:
                labels.append(str(MEDICINE_CLASS_LABELS[MedicineClass(value)]))
            except ValueError:
                labels.append(str(value))
        return labels


class MedicineName(models.Model):
    """A name a patient may write for a medicine: its generic name(s) and brand names. Matched on the folded
    form, so "ELIQUIS", "eliquis" and "Éliquis" are one name. A clinic may add names, also to global
    medicines."""

    medicine = models.ForeignKey(Medicine, on_delete=models.CASCADE, related_name="names")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    name_folded = models.CharField(max_length=100, editable=False)
    is_brand = models.BooleanField(_("brand name"), default=False)

    class Meta:
        verbose_name = _("medicine name")
        ordering = ["name_folded"]
        constraints = [
            models.UniqueConstraint(
                fields=["name_folded"], condition=Q(clinic__isnull=True), name="medicine_name_unique_global"
            ),
            models.UniqueConstraint(
                fields=["clinic", "name_folded"],
                condition=Q(clinic__isnull=False),
                name="medicine_name_unique_per_clinic",
            ),
        ]
        indexes = [models.Index(fields=["name_folded"], name="medicine_name_folded_idx")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_folded = fold(self.name)
        super().save(*args, **kwargs)


class Condition(models.Model):
    """A medical condition the intake asks about, and the finding it raises (R-CAND-MED, -SITE, -HEALTH)."""

    class FindingCode(models.TextChoices):
        SIGNIFICANT = "significant-condition", _("Significant medical issue (R-CAND-MED)")
        SITE = "site-infection", _("Infection or skin disease at the site (R-CAND-SITE)")
        HEALTH = "health-concern", _("General health (R-CAND-HEALTH)")

    class Severity(models.TextChoices):
        BLOCK = "block", _("Block")
        WARN = "warn", _("Warn")
        INFO = "info", _("Information")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    label = models.CharField(_("label"), max_length=200)
    finding_code = models.CharField(_("finding"), max_length=30, choices=FindingCode.choices)
    severity = models.CharField(_("severity"), max_length=5, choices=Severity.choices)
    rule = models.CharField(_("rule"), max_length=30)
    source = models.CharField(_("source"), max_length=300)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("condition")
        ordering = ["position", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(severity__in=["block", "warn", "info"]), name="condition_severity_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.display_label

    @property
    def display_label(self) -> str:
        label = CONDITION_LABELS.get(self.code)
        return str(label) if label is not None else self.label


class Intake(models.Model):
    """One submission of the intake questionnaire. Never changed: each submission is a new version."""

    class Pregnancy(models.TextChoices):
        NONE = "none", _("Not pregnant, not breastfeeding")
        PREGNANT = "pregnant", _("Pregnant")
        BREASTFEEDING = "breastfeeding", _("Breastfeeding")
        PLANNING = "planning", _("Planning a pregnancy")

    class SubmittedAs(models.TextChoices):
        PATIENT = "patient", _("the patient (portal)")
        STAFF = "staff", _("staff (at the desk)")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="intakes")
    version = models.PositiveIntegerField(_("version"))
    pregnancy = models.CharField(_("pregnancy"), max_length=15, choices=Pregnancy.choices)
    conditions = models.JSONField(_("conditions"), default=list)  # Condition codes
    allergies = models.JSONField(_("allergies"), default=list)  # free text, one entry each
    weight_stable = models.BooleanField(_("weight stable over the last 6 months"), null=True)
    goals = models.TextField(_("goals and expectations"), blank=True)
    previous_treatments = models.TextField(_("previous aesthetic treatments"), blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("submitted by")
    )
    submitted_as = models.CharField(_("submitted as"), max_length=10, choices=SubmittedAs.choices)
    submitted_at = models.DateTimeField(_("submitted at"))

    class Meta:
        verbose_name = _("intake questionnaire")
        ordering = ["patient", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "version"], name="intake_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="intake_version_positive"),
            models.CheckConstraint(
                condition=Q(pregnancy__in=["none", "pregnant", "breastfeeding", "planning"]),
                name="intake_pregnancy_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"intake v{self.version} of patient {self.patient_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRecordError("An intake version is never changed; submit a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ImmutableRecordError("An intake version is never deleted.")


class IntakeMedication(models.Model):
    """A medicine as the patient wrote it (kept even when the catalogue does not know it), and its last
    dose."""

    intake = models.ForeignKey(Intake, on_delete=models.CASCADE, related_name="medications")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(_("medicine"), max_length=100)
    last_taken = models.DateField(_("last taken"), null=True, blank=True)

    class Meta:
        verbose_name = _("intake medicine")
        ordering = ["intake", "position"]
        constraints = [
            models.UniqueConstraint(fields=["intake", "position"], name="intake_medication_unique_position"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRecordError("An intake version is never changed; submit a new version.")
        super().save(*args, **kwargs)


class Review(models.Model):
    """A practitioner's signed screening decision, tied to the intake version and the rules version it saw."""

    class Decision(models.TextChoices):
        CANDIDATE = "candidate", _("Candidate")
        NOT_CANDIDATE = "not_candidate", _("Not a candidate")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="screening_reviews")
    intake = models.ForeignKey(Intake, on_delete=models.PROTECT, related_name="reviews")
    rules_version = models.CharField(_("rules version"), max_length=30)
    session_date = models.DateField(_("screened for"))
    # The formulary's formula id when one was planned (not a foreign key: screening does not own formulas).
    formula_id = models.PositiveBigIntegerField(_("formula"), null=True, blank=True)
    areas = models.JSONField(_("areas"), default=list)
    verdict = models.CharField(_("verdict"), max_length=12)
    findings = models.JSONField(_("findings"), default=list)  # as shown when signing
    # [{"key", "code", "subject", "reason"}], one per warning key (older rows: {"code", "reason"})
    acknowledgements = models.JSONField(_("acknowledgements"), default=list)
    decision = models.CharField(_("decision"), max_length=15, choices=Decision.choices)
    note = models.TextField(_("note"), blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("signed by")
    )
    signed_at = models.DateTimeField(_("signed at"))

    class Meta:
        verbose_name = _("screening review")
        ordering = ["patient", "-signed_at", "-id"]
        indexes = [models.Index(fields=["patient", "-signed_at"], name="review_patient_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=["candidate", "not_candidate"]), name="review_decision_valid"
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["eligible", "review", "ineligible"]), name="review_verdict_valid"
            ),
            models.CheckConstraint(
                condition=~(Q(decision="candidate") & Q(verdict="ineligible")),
                name="review_no_candidate_when_blocked",
            ),
        ]

    def __str__(self) -> str:
        return f"review of patient {self.patient_id} on intake {self.intake_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRecordError("A signed review is never changed; sign a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ImmutableRecordError("A signed review is never deleted.")

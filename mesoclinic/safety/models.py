"""Adverse events, the sessions and lots they are linked to, follow-ups and safety signals (R-AE, R-SIGNAL).

The link rows copy what a signal scan groups by (the session's day, practitioner, room, device; the lot) and
the event's kind and onset, so that a scan reads them with indexed queries and never walks the sessions'
preparations again. The links are written with the event and rewritten whenever its onset or kind changes."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary.models import Lot
from mesoclinic.patients.models import Patient
from mesoclinic.safety import rules
from mesoclinic.treatments.models import BodyArea, TreatmentSession

KIND_CHOICES = [(code, kind.label) for code, kind in rules.KINDS.items()]
SEVERITY_CHOICES = list(rules.SEVERITIES.items())
OUTCOME_CHOICES = list(rules.OUTCOMES.items())


class SafetySettings(models.Model):
    """A clinic's signal and report thresholds. Absent: the defaults (``rules.SignalSettings``)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="safety_settings")
    signal_window_days = models.PositiveSmallIntegerField(
        _("signal window (days)"), default=84, validators=[MinValueValidator(28), MaxValueValidator(365)]
    )
    signal_min_infections = models.PositiveSmallIntegerField(
        _("infections that make a signal"),
        default=2,
        validators=[MinValueValidator(2), MaxValueValidator(50)],
    )
    signal_alpha = models.DecimalField(
        _("significance level (after Holm's adjustment)"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.050"),
        validators=[MinValueValidator(Decimal("0.001")), MaxValueValidator(Decimal("0.200"))],
    )
    baseline_floor_per_1000 = models.DecimalField(
        _("lowest baseline (infections per 1,000 patients)"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("500"))],
    )
    small_sample_sessions = models.PositiveSmallIntegerField(
        _("a report row is a small sample below (sessions)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("safety settings")
        verbose_name_plural = _("safety settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(signal_window_days__gte=28) & Q(signal_window_days__lte=365),
                name="safety_window_range",
            ),
            models.CheckConstraint(condition=Q(signal_min_infections__gte=2), name="safety_min_infections"),
            models.CheckConstraint(
                condition=Q(signal_alpha__gt=0) & Q(signal_alpha__lt=1), name="safety_alpha_range"
            ),
            models.CheckConstraint(condition=Q(baseline_floor_per_1000__gt=0), name="safety_floor_positive"),
        ]

    def __str__(self) -> str:
        return f"safety settings of {self.clinic_id}"

    def signal_settings(self) -> rules.SignalSettings:
        return rules.SignalSettings(
            window_days=self.signal_window_days,
            min_infections=self.signal_min_infections,
            alpha=float(self.signal_alpha),
            baseline_floor=float(self.baseline_floor_per_1000) / 1000.0,
        )


class AdverseEvent(models.Model):
    """A side effect after a session, recorded by staff or reported by the patient in the portal."""

    class Reporter(models.TextChoices):
        STAFF = "staff", _("Staff")
        PATIENT = "patient", _("Patient (portal)")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="adverse_events")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="adverse_events")
    kind = models.CharField(_("side effect"), max_length=20, choices=KIND_CHOICES)
    other_kind = models.CharField(_("what it was"), max_length=100, blank=True)
    area = models.ForeignKey(
        BodyArea, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("area")
    )
    severity = models.CharField(_("severity"), max_length=20, choices=SEVERITY_CHOICES, default="mild")
    serious = models.BooleanField(_("serious"), default=False)
    serious_criteria = models.JSONField(_("seriousness criteria"), default=list)
    onset_on = models.DateField(_("onset"))
    resolved_on = models.DateField(_("resolved on"), null=True, blank=True)
    expected_end_on = models.DateField(_("expected to resolve by"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=30, choices=OUTCOME_CHOICES)
    actions = models.JSONField(_("actions taken"), default=list)  # rules.ACTIONS codes
    actions_note = models.CharField(_("actions, in words"), max_length=500, blank=True)
    description = models.TextField(_("what happened"), blank=True)  # the reporter's words
    clinical_note = models.TextField(_("clinical note"), blank=True)  # staff only, never the front desk
    reported_via = models.CharField(_("reported by"), max_length=10, choices=Reporter.choices)
    reported_at = models.DateTimeField(_("reported at"))
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # A patient's report waits for a clinician's review; a staff record is reviewed when recorded.
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # One photo, re-encoded without metadata (lib.images), under a random name in the default storage.
    photo_name = models.CharField(max_length=255, blank=True)
    photo_content_type = models.CharField(max_length=20, blank=True)
    photo_added_at = models.DateTimeField(null=True, blank=True)
    retracted_at = models.DateTimeField(_("entered in error at"), null=True, blank=True)
    retracted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    retract_reason = models.TextField(_("why it was entered in error"), blank=True)

    class Meta:
        verbose_name = _("adverse event")
        ordering = ["-onset_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=list(rules.KINDS)), name="ae_kind_valid"),
            models.CheckConstraint(
                condition=Q(severity__in=list(rules.SEVERITIES)), name="ae_severity_valid"
            ),
            models.CheckConstraint(
                condition=(Q(resolved_on__isnull=True) & Q(outcome__in=sorted(rules.OPEN_OUTCOMES)))
                | (
                    Q(resolved_on__isnull=False)
                    & Q(resolved_on__gte=models.F("onset_on"))
                    & Q(outcome__in=sorted(rules.RESOLVED_OUTCOMES))
                ),
                name="ae_resolution_after_onset_matches_outcome",
            ),
            models.CheckConstraint(
                condition=~Q(kind="other") | ~Q(other_kind=""), name="ae_other_is_described"
            ),
            models.CheckConstraint(
                condition=~Q(severity="life-threatening") | Q(serious=True),
                name="ae_life_threatening_serious",
            ),
            models.CheckConstraint(
                condition=Q(retracted_at__isnull=True) | ~Q(retract_reason=""),
                name="ae_retraction_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(reported_via__in=["staff", "patient"]), name="ae_reporter_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "-onset_on"], name="ae_patient_idx"),
            models.Index(fields=["clinic", "kind", "onset_on"], name="ae_clinic_kind_idx"),
            models.Index(
                fields=["clinic", "reported_at"],
                condition=Q(reviewed_at__isnull=True, retracted_at__isnull=True),
                name="ae_review_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of patient {self.patient_id} from {self.onset_on}"

    @property
    def kind_label(self) -> str:
        return (
            self.other_kind if self.kind == rules.OTHER and self.other_kind else rules.kind_label(self.kind)
        )

    @property
    def is_open(self) -> bool:
        return self.resolved_on is None and self.retracted_at is None

    @property
    def has_photo(self) -> bool:
        return bool(self.photo_name)


class AdverseEventSession(models.Model):
    """A session the event followed (R-AE linking rule), with what a signal scan groups by."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.CASCADE, related_name="session_links")
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="+")
    primary = models.BooleanField(default=False)
    days_after = models.PositiveSmallIntegerField()
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20)
    onset_on = models.DateField()
    session_date = models.DateField()
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    room = models.ForeignKey(Room, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("session an adverse event followed")
        ordering = ["event", "-session_date"]
        constraints = [
            models.UniqueConstraint(fields=["event", "session"], name="ae_session_unique"),
            models.UniqueConstraint(
                fields=["event"], condition=Q(primary=True), name="ae_session_one_primary"
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "kind", "onset_on"], name="ae_session_scan_idx"),
            models.Index(fields=["session", "primary"], name="ae_session_of_session_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} after session {self.session_id}"


class AdverseEventLot(models.Model):
    """A lot the event's patient received in a linked session (through its preparations) or straight from
    the vial (a direct administration) before the onset."""

    class Via(models.TextChoices):
        PREPARATION = "preparation", _("In a preparation")
        ADMINISTERED = "administered", _("Administered directly")

    event = models.ForeignKey(AdverseEvent, on_delete=models.CASCADE, related_name="lot_links")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(
        TreatmentSession, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    via = models.CharField(max_length=15, choices=Via.choices)
    exposed_on = models.DateField()
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20)
    onset_on = models.DateField()

    class Meta:
        verbose_name = _("lot an adverse event's patient received")
        ordering = ["event", "-exposed_on"]
        indexes = [
            models.Index(fields=["clinic", "kind", "onset_on"], name="ae_lot_scan_idx"),
            models.Index(fields=["lot", "kind"], name="ae_lot_lot_idx"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id}: lot {self.lot_id}"


class FollowUp(models.Model):
    """A task: an event open past its expected course (``course``), or the 12-week watch after an
    infection (``infection-watch``)."""

    class Kind(models.TextChoices):
        COURSE = "course", _("Open past its expected course")
        INFECTION_WATCH = "infection-watch", _("12-week infection watch")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        RESOLVED = "resolved", _("Closed: the event resolved")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(AdverseEvent, on_delete=models.CASCADE, related_name="follow_ups")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    due_on = models.DateField(_("due on"))
    # The practitioner of the session the event followed; anyone clinical when none.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("follow-up")
        ordering = ["due_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "kind"], name="followup_unique_kind"),
            models.CheckConstraint(
                condition=Q(status__in=["open", "done", "resolved"]), name="followup_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(closed_at__isnull=False), name="followup_closed_has_time"
            ),
        ]
        indexes = [
            models.Index(
                fields=["clinic", "due_on"], condition=Q(status="open"), name="followup_open_due_idx"
            ),
            models.Index(
                fields=["assigned_to", "due_on"], condition=Q(status="open"), name="followup_mine_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of event {self.event_id} due {self.due_on}"


class SafetySignal(models.Model):
    """A source shared by infected patients (R-SIGNAL), as the last scan found it. One row per source: a
    later scan updates it, and a signal no longer found is kept, inactive, with its evidence."""

    class Level(models.TextChoices):
        ALERT = "alert", _("Alert: more than chance explains")
        CLUSTER = "cluster", _("Cluster: to review")

    class Status(models.TextChoices):
        OPEN = "open", _("To review")
        REVIEWED = "reviewed", _("Reviewed")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="+")
    source_kind = models.CharField(_("source"), max_length=12)
    source_key = models.CharField(max_length=40)  # the id, or the ISO date of a session day
    source_label = models.CharField(_("source"), max_length=300)
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    level = models.CharField(_("level"), max_length=10, choices=Level.choices)
    active = models.BooleanField(_("found by the last scan"), default=True)
    first_raised_at = models.DateTimeField(_("first raised at"))
    last_scanned_at = models.DateTimeField(_("last scanned at"))
    window_start = models.DateField()
    window_end = models.DateField()
    period_start = models.DateField()
    cases = models.PositiveIntegerField(_("infected patients"))
    exposed = models.PositiveIntegerField(_("exposed patients"))
    exposed_sessions = models.PositiveIntegerField(_("exposed sessions"))
    rate = models.FloatField(_("attack rate"))
    baseline_cases = models.PositiveIntegerField()
    baseline_patients = models.PositiveIntegerField()
    baseline_rate = models.FloatField(_("baseline rate"))
    p_value = models.FloatField(_("p-value"))
    adjusted_p = models.FloatField(_("p-value, Holm-adjusted"))
    evidence = models.JSONField(default=dict)  # {"events", "patients", "sessions", "within"}
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    review_note = models.TextField(_("review note"), blank=True)

    class Meta:
        verbose_name = _("safety signal")
        ordering = ["-active", "level", "adjusted_p", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "source_kind", "source_key"], name="signal_unique_source"
            ),
            models.CheckConstraint(
                condition=Q(source_kind__in=list(rules.SOURCE_KINDS)), name="signal_source_kind_valid"
            ),
            models.CheckConstraint(condition=Q(level__in=["alert", "cluster"]), name="signal_level_valid"),
            models.CheckConstraint(
                condition=Q(status="open") | ~Q(review_note=""), name="signal_review_has_note"
            ),
        ]
        indexes = [models.Index(fields=["clinic", "active", "level"], name="signal_clinic_idx")]

    def __str__(self) -> str:
        return f"{self.level} {self.source_kind} {self.source_key}"

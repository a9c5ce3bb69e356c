"""Protocols, treatment plans and charted sessions (R-IND, R-TECH, R-SERIES, R-ALT, R-PRE-*, R-PROV).

Body areas and techniques are data (our own area code system: SNOMED CT body sites need a licence). A
protocol's
content lives in versions; a plan keeps the version it was made from, so editing a protocol never rewrites
a plan. A signed session is immutable: corrections are amendments that keep the signed text."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary.models import Formula, Indication, Preparation
from mesoclinic.patients.models import Patient


class ImmutableError(RuntimeError):
    """A used protocol version or a signed session cannot change: a new version or an amendment is made."""


class BodyView(models.TextChoices):
    FRONT = "front", _("Front")
    BACK = "back", _("Back")
    FACE = "face", _("Face")
    SCALP = "scalp", _("Scalp")


class BodyArea(models.Model):
    """One area of the body map, with its outline on one view (``outline``: polygon vertices in the view's
    coordinates, see ``treatments.bodymap_data``). Charted points must fall inside it."""

    class Side(models.TextChoices):
        LEFT = "left", _("Left")
        RIGHT = "right", _("Right")
        NONE = "", _("Midline")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    region = models.SlugField(_("region"), max_length=40)
    side = models.CharField(_("side"), max_length=5, choices=Side.choices, blank=True)
    view = models.CharField(_("view"), max_length=5, choices=BodyView.choices)
    label = models.CharField(_("label"), max_length=100)  # English; translated through the catalogue
    outline = models.JSONField(_("outline"))
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("body area")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.code


class Technique(models.Model):
    """An injection technique (R-TECH) with its depth range and typical needle and volume per point."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)  # English; translated through the catalogue
    depth_min_mm = models.DecimalField(_("shallowest depth (mm)"), max_digits=4, decimal_places=1)
    depth_max_mm = models.DecimalField(_("deepest depth (mm)"), max_digits=4, decimal_places=1)
    needles = models.CharField(_("typical needles"), max_length=200)
    volume_per_point_min_ml = models.DecimalField(
        _("least volume per point (mL)"), null=True, blank=True, max_digits=9, decimal_places=3
    )
    volume_per_point_max_ml = models.DecimalField(
        _("most volume per point (mL)"), null=True, blank=True, max_digits=9, decimal_places=3
    )
    # Techniques that deliver many punctures per marked point (nappage, multi-injector gun).
    many_punctures = models.BooleanField(_("many punctures per marked point"), default=False)
    source = models.CharField(_("source"), max_length=300)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("technique")
        ordering = ["position", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(depth_min_mm__gt=0)
                & Q(depth_max_mm__lte=13)
                & Q(depth_min_mm__lte=models.F("depth_max_mm")),
                name="technique_depth_range_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Protocol(models.Model):
    """A protocol template (``clinic`` NULL: seeded for every clinic) or a clinic's own protocol, usually
    copied from a template. Its content lives in versions."""

    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="protocols"
    )
    code = models.SlugField(_("code"), max_length=60)
    name = models.CharField(_("name"), max_length=200)
    indication = models.CharField(_("indication"), max_length=30, choices=Indication.choices)
    copied_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="copies"
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("protocol")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=Q(clinic__isnull=True), name="protocol_unique_template_code"
            ),
            models.UniqueConstraint(
                fields=["clinic", "code"],
                condition=Q(clinic__isnull=False),
                name="protocol_unique_clinic_code",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_template(self) -> bool:
        return self.clinic_id is None


class ProtocolVersion(models.Model):
    """One version of a protocol: the series rule (R-SERIES), outcome measures and non-responder rule
    (R-EVID),
    combinations and alternatives (R-ALT) and aftercare (R-AE). Immutable once a plan uses it."""

    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    summary = models.TextField(_("summary"), blank=True)
    formula_note = models.TextField(_("typical formula"), blank=True)
    sessions_min = models.PositiveSmallIntegerField(_("fewest sessions"))
    sessions_max = models.PositiveSmallIntegerField(_("most sessions"))
    interval_min_days = models.PositiveSmallIntegerField(_("shortest interval (days)"))
    interval_max_days = models.PositiveSmallIntegerField(_("longest interval (days)"))
    # On recorded improvement the interval is stretched (004: to two weeks or a month).
    taper_interval_min_days = models.PositiveSmallIntegerField(
        _("tapered interval, shortest (days)"), null=True, blank=True
    )
    taper_interval_max_days = models.PositiveSmallIntegerField(
        _("tapered interval, longest (days)"), null=True, blank=True
    )
    maintenance_interval_days = models.PositiveSmallIntegerField(
        _("maintenance interval (days)"), null=True, blank=True
    )
    outcome_measures = models.JSONField(
        _("outcome measures"), default=list
    )  # codes, e.g. ["waist-circumference"]
    # R-EVID: after this many sessions without the response below, the patient is a non-responder.
    non_responder_after_sessions = models.PositiveSmallIntegerField(
        _("judge response after sessions"), null=True, blank=True
    )
    responder_rule = models.TextField(_("responder rule"), blank=True)
    combinations = models.JSONField(_("suggested combinations"), default=list)  # procedure codes (R-ALT)
    alternatives = models.JSONField(_("alternatives"), default=list)  # procedure codes (R-ALT)
    aftercare = models.JSONField(_("aftercare instructions"), default=list)  # instruction codes (R-AE)
    aftercare_note = models.TextField(_("aftercare note"), blank=True)
    source = models.CharField(_("source"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("protocol version")
        ordering = ["protocol", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "number"], name="protocol_version_unique_number"),
            models.CheckConstraint(
                condition=Q(sessions_min__gte=1)
                & Q(sessions_max__lte=30)
                & Q(sessions_min__lte=models.F("sessions_max")),
                name="protocol_sessions_range_valid",
            ),
            models.CheckConstraint(
                condition=Q(interval_min_days__gte=1)
                & Q(interval_min_days__lte=models.F("interval_max_days")),
                name="protocol_interval_range_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.protocol} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.is_used:
            raise ImmutableError("This protocol version is used by a plan; revise the protocol instead.")
        super().save(*args, **kwargs)

    @property
    def is_used(self) -> bool:
        return self.pk is not None and TreatmentPlan.objects.filter(protocol_version_id=self.pk).exists()


class ProtocolArea(models.Model):
    """An area the protocol treats, with the technique and the depth range used there (R-TECH)."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="areas")
    area = models.ForeignKey(BodyArea, on_delete=models.PROTECT, related_name="+")
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT, related_name="+")
    depth_min_mm = models.DecimalField(_("shallowest depth (mm)"), max_digits=4, decimal_places=1)
    depth_max_mm = models.DecimalField(_("deepest depth (mm)"), max_digits=4, decimal_places=1)

    class Meta:
        verbose_name = _("protocol area")
        ordering = ["version", "area__position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "area"], name="protocol_area_unique"),
            models.CheckConstraint(
                condition=Q(depth_min_mm__gt=0)
                & Q(depth_max_mm__lte=13)
                & Q(depth_min_mm__lte=models.F("depth_max_mm")),
                name="protocol_area_depth_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.area_id}: {self.technique_id} {self.depth_min_mm}–{self.depth_max_mm} mm"


class ProtocolFormula(models.Model):
    """A clinic formula a clinic protocol uses (templates name their typical formula in words only)."""

    version = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE, related_name="formulas")
    formula = models.ForeignKey(Formula, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("protocol formula")
        constraints = [models.UniqueConstraint(fields=["version", "formula"], name="protocol_formula_unique")]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.formula_id}"


class TreatmentPlan(models.Model):
    """A patient's series, from one protocol version (R-SERIES). Draft → active → completed or stopped."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        STOPPED = "stopped", _("Stopped")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="plans")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="plans")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="plans")
    indication = models.CharField(_("indication"), max_length=30, choices=Indication.choices)
    planned_sessions = models.PositiveSmallIntegerField(_("planned sessions"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    goals = models.TextField(_("goals"), blank=True)
    stop_reason = models.TextField(_("reason for stopping"), blank=True)
    # The signed screening review that allowed activation (screening.Review; not a foreign key across apps'
    # ownership, but kept as its id for the record).
    screening_review_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Set when improvement is recorded: later intervals may stretch to the protocol's tapered interval.
    improved_on = models.DateField(_("improvement recorded on"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("treatment plan")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "-created_at"], name="plan_patient_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(planned_sessions__gte=1) & Q(planned_sessions__lte=30), name="plan_sessions_range"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "completed", "stopped"]), name="plan_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="stopped") | ~Q(stop_reason=""), name="plan_stop_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"plan {self.pk} of patient {self.patient_id}"


class PlanArea(models.Model):
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.CASCADE, related_name="areas")
    area = models.ForeignKey(BodyArea, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("plan area")
        ordering = ["plan", "area__position"]
        constraints = [models.UniqueConstraint(fields=["plan", "area"], name="plan_area_unique")]

    def __str__(self) -> str:
        return f"{self.plan_id}: {self.area_id}"


class PlanFormula(models.Model):
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.CASCADE, related_name="formulas")
    formula = models.ForeignKey(Formula, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("plan formula")
        constraints = [models.UniqueConstraint(fields=["plan", "formula"], name="plan_formula_unique")]

    def __str__(self) -> str:
        return f"{self.plan_id}: {self.formula_id}"


class PlanProcedure(models.Model):
    """A procedure in the plan that is not mesotherapy (R-ALT): recorded as such, never charted as a
    session."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.CASCADE, related_name="procedures")
    procedure = models.CharField(_("procedure"), max_length=40)  # rules.PROCEDURES code
    note = models.CharField(_("note"), max_length=300, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("combined procedure")
        ordering = ["plan", "position", "id"]

    def __str__(self) -> str:
        return self.procedure

    @property
    def label(self) -> str:
        from mesoclinic.treatments.rules import procedure_label

        return procedure_label(self.procedure)


class TreatmentSession(models.Model):
    """One session of a plan: opened at check-in (after the gate), charted, then signed (immutable)."""

    class Status(models.TextChoices):
        OPEN = "open", _("In progress")
        SIGNED = "signed", _("Signed")

    class Anaesthetic(models.TextChoices):
        NONE = "none", _("None")
        LIDOCAINE_PRILOCAINE = "lidocaine-prilocaine", _("Lidocaine–prilocaine cream")
        LIDOCAINE = "lidocaine", _("Lidocaine cream")
        TETRACAINE = "tetracaine", _("Tetracaine cream")
        OTHER = "other", _("Other")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="treatment_sessions")
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="sessions")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="treatment_sessions")
    number = models.PositiveSmallIntegerField(_("session number"))
    session_date = models.DateField(_("date"))  # clinic-local
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("practitioner")
    )
    room = models.ForeignKey(Room, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    checked_in_at = models.DateTimeField(_("checked in at"))
    checked_in_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The check-in gate as evaluated, and the reason given for each warning (R-PRE-*).
    gate_findings = models.JSONField(default=list)
    gate_acknowledgements = models.JSONField(default=list)
    topical_anaesthetic = models.CharField(
        _("topical anaesthetic"), max_length=25, choices=Anaesthetic.choices, default=Anaesthetic.NONE
    )
    anaesthetic_minutes = models.PositiveSmallIntegerField(_("minutes applied before"), null=True, blank=True)
    notes = models.TextField(_("clinical notes"), blank=True)
    chart_findings = models.JSONField(default=list)
    chart_acknowledgements = models.JSONField(default=list)
    charted_at = models.DateTimeField(_("charted at"), null=True, blank=True)
    charted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cosign_required = models.BooleanField(_("needs the medical director's co-signature"), default=False)
    cosigned_at = models.DateTimeField(_("co-signed at"), null=True, blank=True)
    cosigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cosign_note = models.TextField(_("co-signature note"), blank=True)

    class Meta:
        verbose_name = _("treatment session")
        ordering = ["plan", "number"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="session_unique_number"),
            models.CheckConstraint(condition=Q(status__in=["open", "signed"]), name="session_status_valid"),
            models.CheckConstraint(
                condition=Q(status="open") | (Q(signed_at__isnull=False) & Q(signed_by__isnull=False)),
                name="session_signed_has_signer",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "-session_date"], name="session_patient_idx"),
            models.Index(fields=["clinic", "session_date"], name="session_clinic_day_idx"),
            models.Index(
                fields=["clinic", "signed_at"],
                condition=Q(cosign_required=True, cosigned_at__isnull=True),
                name="session_cosign_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.number} of plan {self.plan_id}"


class ChartedArea(models.Model):
    """What was done in one area: injection points (coordinates on the area's view, one JSON list, not a row
    per point), technique, intended depth (R-TECH: the chart records depth as intended), needle, volume and
    the preparation used (the lots come from it)."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="areas")
    position = models.PositiveSmallIntegerField(default=0)
    area = models.ForeignKey(BodyArea, on_delete=models.PROTECT, related_name="+")
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT, related_name="+")
    depth_mm = models.DecimalField(_("intended depth (mm)"), max_digits=4, decimal_places=1)
    needle = models.CharField(_("needle"), max_length=60, blank=True)
    points = models.JSONField(_("points"))  # [[x, y], …] in the view's coordinates
    injections = models.PositiveIntegerField(_("injections"))  # ≥ the points marked
    volume_per_point_ml = models.DecimalField(
        _("volume per injection (mL)"), null=True, blank=True, max_digits=9, decimal_places=3
    )
    total_volume_ml = models.DecimalField(_("total volume (mL)"), max_digits=9, decimal_places=3)
    preparation = models.ForeignKey(Preparation, on_delete=models.PROTECT, related_name="charted_areas")
    notes = models.CharField(_("notes"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("charted area")
        ordering = ["session", "position"]
        constraints = [
            models.CheckConstraint(
                condition=Q(depth_mm__gt=0) & Q(depth_mm__lte=13), name="charted_depth_valid"
            ),
            models.CheckConstraint(condition=Q(total_volume_ml__gt=0), name="charted_volume_positive"),
            models.CheckConstraint(condition=Q(injections__gte=1), name="charted_injections_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.area_id} in session {self.session_id}"


class SessionPreparation(models.Model):
    """A preparation is used up by one session only: the one-to-one makes that a database fact, and the recall
    report follows it from a lot to the sessions it reached."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="preparations_used")
    preparation = models.OneToOneField(Preparation, on_delete=models.PROTECT, related_name="session_use")

    class Meta:
        verbose_name = _("preparation used")

    def __str__(self) -> str:
        return f"{self.preparation_id} in session {self.session_id}"


class SessionAmendment(models.Model):
    """A correction to a signed session: who, when, why, and the chart before and after."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="amendments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("at"))
    reason = models.TextField(_("reason"))
    before = models.JSONField()
    after = models.JSONField()
    changes = models.JSONField(default=list)  # [{"field", "before", "after"}]

    class Meta:
        verbose_name = _("amendment")
        ordering = ["session", "at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="amendment_has_reason")]

    def __str__(self) -> str:
        return f"amendment of session {self.session_id} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("An amendment is never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ImmutableError("An amendment is never deleted.")


class Aftercare(models.Model):
    """The aftercare instructions issued at sign-off (R-AE), as the patient received them."""

    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="aftercare")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="aftercare")
    issued_at = models.DateTimeField(_("issued at"))
    language = models.CharField(_("language"), max_length=8)
    instructions = models.JSONField()  # [{"code", "text"}] rendered in the patient's language
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("aftercare instructions")
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["patient", "-issued_at"], name="aftercare_patient_idx")]

    def __str__(self) -> str:
        return f"aftercare for session {self.session_id}"

"""The calendar (working hours, exceptions, closures, appointments), the reminder outbox and the patients'
contact preferences (issue 7; R-SERIES, R-PRE-INTERVAL, R-PRE-NSAID, R-PRE-NUMB, R-AE).

Each appointment is its own row: a series is the plan's appointments, never a stored recurrence. Nobody is
double-booked: a practitioner, a room and a patient each have at most one active appointment at any instant.
The database enforces it (migration 0002): an exclusion constraint on PostgreSQL, triggers on SQLite; the
services check first so that the refusal names the reason.

Times: ``starts_at``/``ends_at`` are UTC instants on the 5-minute grid; working hours and exceptions are
clinic-local wall-clock times, turned into instants by ``scheduling.rules`` (DST handled there)."""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic, Room
from mesoclinic.patients.models import Patient
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession

# Appointments that hold their time: the others (no-show, cancelled, moved) free it.
ACTIVE_STATUSES = ("booked", "checked_in")


class Kind(models.TextChoices):
    CONSULTATION = "consultation", _("Consultation")
    SESSION = "session", _("Session")
    FOLLOW_UP = "follow_up", _("Follow-up")
    MAINTENANCE = "maintenance", _("Maintenance session")


# The kinds that are a session of a plan (the check-in opens a treatment session through the gate).
TREATMENT_KINDS = frozenset({Kind.SESSION.value, Kind.MAINTENANCE.value})


class ScheduleSettings(models.Model):
    """A clinic's scheduling settings; a clinic without a row uses the defaults of the fields."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="schedule_settings")
    consultation_minutes = models.PositiveSmallIntegerField(_("consultation (minutes)"), default=30)
    session_minutes = models.PositiveSmallIntegerField(_("session (minutes)"), default=45)
    follow_up_minutes = models.PositiveSmallIntegerField(_("follow-up (minutes)"), default=15)
    maintenance_minutes = models.PositiveSmallIntegerField(_("maintenance session (minutes)"), default=45)
    # Proposals and availability start on this step from the start of working hours.
    slot_step_minutes = models.PositiveSmallIntegerField(_("slot step (minutes)"), default=15)
    booking_horizon_days = models.PositiveSmallIntegerField(_("booking horizon (days)"), default=365)
    portal_booking = models.BooleanField(_("patients book their sessions in the portal"), default=True)
    portal_notice_hours = models.PositiveSmallIntegerField(
        _("portal bookings and moves at least this many hours ahead"), default=24
    )
    # Reminders that are not tied to the appointment's hour go out at this clinic-local time.
    reminder_time = models.TimeField(_("reminders sent at (clinic time)"), default=time(10, 0))
    sms_sender = models.CharField(_("SMS sender name"), max_length=11, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("scheduling settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(consultation_minutes__gte=5)
                & Q(session_minutes__gte=5)
                & Q(follow_up_minutes__gte=5)
                & Q(maintenance_minutes__gte=5)
                & Q(consultation_minutes__lte=480)
                & Q(session_minutes__lte=480)
                & Q(follow_up_minutes__lte=480)
                & Q(maintenance_minutes__lte=480),
                name="schedule_durations_valid",
            ),
            models.CheckConstraint(
                condition=Q(slot_step_minutes__gte=5) & Q(slot_step_minutes__lte=120),
                name="schedule_step_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"scheduling settings of {self.clinic_id}"

    def minutes_for(self, kind: str) -> int:
        return {
            Kind.CONSULTATION: self.consultation_minutes,
            Kind.SESSION: self.session_minutes,
            Kind.FOLLOW_UP: self.follow_up_minutes,
            Kind.MAINTENANCE: self.maintenance_minutes,
        }[Kind(kind)]


class WorkingHours(models.Model):
    """A practitioner's usual hours on one weekday in one clinic (several rows make a split day)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="working_hours")
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="working_hours"
    )
    weekday = models.PositiveSmallIntegerField(_("weekday"))  # 0 Monday … 6 Sunday
    starts = models.TimeField(_("from"))
    ends = models.TimeField(_("to"))

    class Meta:
        verbose_name = _("working hours")
        ordering = ["practitioner", "weekday", "starts"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="hours_weekday_valid"),
            models.CheckConstraint(condition=Q(starts__lt=models.F("ends")), name="hours_order_valid"),
            models.UniqueConstraint(
                fields=["clinic", "practitioner", "weekday", "starts"], name="hours_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner_id} day {self.weekday} {self.starts:%H:%M}–{self.ends:%H:%M}"


class WorkingException(models.Model):
    """One day that differs from the usual hours: away (the whole day, or from–to), or extra hours."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="working_exceptions")
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="working_exceptions"
    )
    on = models.DateField(_("date"))
    starts = models.TimeField(_("from"), null=True, blank=True)  # both empty: the whole day
    ends = models.TimeField(_("to"), null=True, blank=True)
    available = models.BooleanField(_("extra hours (not away)"), default=False)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("working-hours exception")
        ordering = ["on", "starts"]
        indexes = [models.Index(fields=["practitioner", "on"], name="exception_day_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(starts__isnull=True) & Q(ends__isnull=True))
                | (Q(starts__isnull=False) & Q(ends__isnull=False) & Q(starts__lt=models.F("ends"))),
                name="exception_times_valid",
            ),
            models.CheckConstraint(
                condition=Q(available=False) | Q(starts__isnull=False), name="exception_extra_has_times"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.practitioner_id} {self.on} {'extra' if self.available else 'away'}"


class ClinicClosure(models.Model):
    """Days the clinic is closed (holidays, works): nothing is booked on them."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="closures")
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("to (inclusive)"))
    reason = models.CharField(_("reason"), max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("clinic closure")
        ordering = ["starts_on"]
        indexes = [models.Index(fields=["clinic", "ends_on"], name="closure_clinic_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(starts_on__lte=models.F("ends_on")), name="closure_order"),
        ]

    def __str__(self) -> str:
        return f"{self.clinic_id} closed {self.starts_on}–{self.ends_on}"


class Appointment(models.Model):
    """One occurrence in the calendar. Moving it makes a new row (``moved_to``), so that every reminder and
    every reason stays with the time it was about."""

    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        CHECKED_IN = "checked_in", _("Checked in")
        NO_SHOW = "no_show", _("No-show")
        CANCELLED = "cancelled", _("Cancelled")
        MOVED = "moved", _("Moved")

    class CancelReason(models.TextChoices):
        PATIENT = "patient-request", _("The patient asked")
        ILLNESS = "illness", _("Illness")
        BRUISING = "bruising", _("Bruising from the last session (R-PRE-BRUISE)")
        CLINIC = "clinic", _("The clinic cancelled")
        PLAN_ENDED = "plan-ended", _("The plan ended")
        OTHER = "other", _("Other")

    class Via(models.TextChoices):
        DESK = "desk", _("Desk")
        PORTAL = "portal", _("Portal")
        API = "api", _("API")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments"
    )
    room = models.ForeignKey(
        Room, on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    kind = models.CharField(_("type"), max_length=15, choices=Kind.choices)
    plan = models.ForeignKey(
        TreatmentPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    series_number = models.PositiveSmallIntegerField(_("session number"), null=True, blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.BOOKED)
    # A booking outside the series window: the findings as evaluated and the reason given for each warning.
    booking_findings = models.JSONField(default=list)
    booking_acknowledgements = models.JSONField(default=list)
    note = models.CharField(_("desk note (not clinical)"), max_length=300, blank=True)
    via = models.CharField(_("booked through"), max_length=6, choices=Via.choices, default=Via.DESK)
    treatment_session = models.OneToOneField(
        TreatmentSession, on_delete=models.PROTECT, null=True, blank=True, related_name="appointment"
    )
    moved_to = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="moved_from"
    )
    cancel_reason = models.CharField(_("reason"), max_length=20, choices=CancelReason.choices, blank=True)
    status_note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("booked at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(_("cancelled, moved or missed at"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("appointment")
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["clinic", "starts_at"], name="appointment_clinic_idx"),
            models.Index(fields=["practitioner", "starts_at"], name="appointment_practitioner_idx"),
            models.Index(fields=["room", "starts_at"], name="appointment_room_idx"),
            models.Index(fields=["patient", "starts_at"], name="appointment_patient_idx"),
            models.Index(fields=["plan", "series_number"], name="appointment_plan_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_order"),
            models.CheckConstraint(
                condition=Q(status__in=["booked", "checked_in", "no_show", "cancelled", "moved"]),
                name="appointment_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["consultation", "session", "follow_up", "maintenance"]),
                name="appointment_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | ~Q(cancel_reason=""), name="appointment_cancel_has_reason"
            ),
            models.CheckConstraint(
                condition=Q(series_number__isnull=True) | Q(plan__isnull=False),
                name="appointment_number_needs_plan",
            ),
            # One active appointment per session of a series.
            models.UniqueConstraint(
                fields=["plan", "series_number"],
                condition=Q(status__in=ACTIVE_STATUSES) & Q(series_number__isnull=False),
                name="appointment_one_per_series_number",
            ),
        ]

    def __str__(self) -> str:
        return f"appointment {self.pk} ({self.kind}) at {self.starts_at:%Y-%m-%d %H:%M}Z"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class ContactPreference(models.Model):
    """How a patient wants to hear from the clinic; a patient without a row gets email, everything on."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("Text message (SMS)")

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="contact_preference")
    channel = models.CharField(_("send messages by"), max_length=5, choices=Channel.choices, default="email")
    # Booking confirmations, the NSAID reminder and the day-before reminder.
    reminders = models.BooleanField(_("appointment reminders"), default=True)
    # Aftercare, the side-effect check and the infection-watch messages (R-AE).
    follow_up = models.BooleanField(_("aftercare and follow-up messages"), default=True)
    numbing_cream = models.BooleanField(_("remind me about numbing cream"), default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("contact preference")
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["email", "sms"]), name="preference_channel_valid")
        ]

    def __str__(self) -> str:
        return f"contact preference of {self.patient_id}"


class MessageKind(models.TextChoices):
    CONFIRMATION = "confirmation", _("Booking confirmation")
    NSAID = "nsaid", _("NSAID reminder (7 days before)")
    DAY_BEFORE = "day_before", _("Day-before reminder and preparation")
    AFTERCARE = "aftercare", _("Aftercare")
    SIDE_EFFECT_CHECK = "side_effect_check", _("Side-effect check (2 days after)")
    INFECTION_2W = "infection_2w", _("Infection watch (2 weeks)")
    INFECTION_6W = "infection_6w", _("Infection watch (6 weeks)")
    INFECTION_12W = "infection_12w", _("Infection watch (12 weeks)")


# Messages about one appointment, and messages about the plan's last session (one of each per plan).
APPOINTMENT_KINDS = frozenset(
    {
        MessageKind.CONFIRMATION.value,
        MessageKind.NSAID.value,
        MessageKind.DAY_BEFORE.value,
        MessageKind.AFTERCARE.value,
        MessageKind.SIDE_EFFECT_CHECK.value,
    }
)
PLAN_KINDS = frozenset(
    {MessageKind.INFECTION_2W.value, MessageKind.INFECTION_6W.value, MessageKind.INFECTION_12W.value}
)
REMINDER_KINDS = frozenset(
    {MessageKind.CONFIRMATION.value, MessageKind.NSAID.value, MessageKind.DAY_BEFORE.value}
)


class Message(models.Model):
    """The outbox: one row per (appointment, kind) or (plan, kind), written in the transaction that makes
    the message due. The row is the message's identity: delivery claims it, sends it with the row's key and
    marks it sent, so a retry never sends it twice (``services.message_deliver``)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not sent")
        CANCELLED = "cancelled", _("Cancelled")
        UNCERTAIN = "uncertain", _("Delivery uncertain")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="scheduling_messages")
    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    plan = models.ForeignKey(
        TreatmentPlan, on_delete=models.CASCADE, null=True, blank=True, related_name="scheduling_messages"
    )
    kind = models.CharField(_("message"), max_length=20, choices=MessageKind.choices)
    due_at = models.DateTimeField(_("due at"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    channel = models.CharField(_("channel"), max_length=5, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    recipient = models.CharField(_("sent to"), max_length=254, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The worker holding the row while it sends, and since when (a stale claim is resolved by the sweep).
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)  # why skipped, the last error
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="message_due_idx"),
            models.Index(fields=["patient", "-due_at"], name="message_patient_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "kind"],
                condition=Q(appointment__isnull=False),
                name="message_once_per_appointment",
            ),
            models.UniqueConstraint(
                fields=["plan", "kind"],
                condition=Q(appointment__isnull=True) & Q(plan__isnull=False),
                name="message_once_per_plan",
            ),
            models.CheckConstraint(
                condition=Q(appointment__isnull=False) | Q(plan__isnull=False), name="message_has_subject"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "sending", "sent", "failed", "skipped", "cancelled", "uncertain"]
                ),
                name="message_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for patient {self.patient_id} ({self.status})"

    @property
    def key(self) -> str:
        """The idempotency key the transports receive (email Message-ID, SMS key): stable for the row."""
        return f"mesoclinic-message-{self.pk}"


class MessageAttempt(models.Model):
    """The delivery log: every attempt, what came of it."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField()
    outcome = models.CharField(max_length=10)  # sent, failed, skipped, uncertain, recovered
    channel = models.CharField(max_length=5, blank=True)
    worker = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        ordering = ["message", "at", "id"]

    def __str__(self) -> str:
        return f"{self.message_id} {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"


class CalendarFeed(models.Model):
    """A practitioner's private iCalendar feed: the URL carries a random token, stored only as its SHA-256;
    revoking it ends the URL."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("calendar feed")
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "practitioner"],
                condition=Q(revoked_at__isnull=True),
                name="feed_one_active_per_practitioner",
            )
        ]

    def __str__(self) -> str:
        return f"feed of {self.practitioner_id} in {self.clinic_id}"

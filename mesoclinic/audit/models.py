"""The audit trail: append-only rows chained by HMAC so that any edit, deletion, insertion or reordering is
detected by ``manage.py audit_verify`` (targets.md #13, #14)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(RuntimeError):
    pass


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only.")


class Action(models.TextChoices):
    PATIENT_READ = "patient.read", _("Viewed the patient record")
    PATIENT_SEARCH = "patient.search", _("Searched patients")
    PATIENT_CREATE = "patient.create", _("Created patient record")
    PATIENT_UPDATE = "patient.update", _("Updated patient record")
    PATIENT_ACCESS_LOG_READ = "patient.access_log.read", _("Viewed who accessed the record")
    PATIENT_PRINT = "patient.print", _("Printed patient data")
    PATIENT_EXPORT = "patient.export", _("Exported patient data")
    LOGIN = "auth.login", _("Signed in")
    LOGIN_FAILED = "auth.login_failed", _("Failed sign-in")
    LOGOUT = "auth.logout", _("Signed out")
    PASSWORD_CHANGE = "auth.password_change", _("Changed password")
    PASSWORD_RESET_REQUEST = "auth.password_reset_request", _("Requested a password reset")
    MFA_ENROL = "auth.mfa_enrol", _("Enrolled an authenticator")
    MFA_FAILED = "auth.mfa_failed", _("Failed authenticator code")
    PRIVILEGE_GRANT = "privilege.grant", _("Granted a role")
    PRIVILEGE_CHANGE = "privilege.change", _("Changed a role")
    PRIVILEGE_REVOKE = "privilege.revoke", _("Revoked a role")
    ACCOUNT_CHANGE = "account.change", _("Changed an account's status")
    API_TOKEN_CREATE = "api_token.create", _("Created an API token")
    AUDIT_VERIFY = "audit.verify", _("Verified the audit chain")
    INTAKE_READ = "intake.read", _("Viewed the intake questionnaire")
    INTAKE_SUBMIT = "intake.submit", _("Submitted the intake questionnaire")
    INTAKE_INVITE = "intake.invite", _("Invited the patient to the portal")
    INTAKE_INVITE_FAILED = "intake.invite_failed", _("Could not email the portal invitation")
    SCREENING_READ = "screening.read", _("Viewed the candidacy screening")
    SCREENING_REVIEW = "screening.review", _("Signed off a candidacy screening")
    MEDICINE_ADD = "medicine.add", _("Added a medicine to the clinic's catalogue")
    MEDICINE_NAME_ADD = "medicine.name_add", _("Added names to a medicine of the catalogue")
    PREPARATION_CREATE = "preparation.create", _("Prepared a syringe or cocktail")
    LOT_RECALL = "lot.recall", _("Recalled a lot")
    EXPOSURE_READ = "exposure.read", _("Viewed who received a lot")
    LOT_ADMINISTER = "lot.administer", _("Administered a product straight from a lot")
    FORMULARY_CHANGE = "formulary.change", _("Changed the formulary's reference data")
    PROTOCOL_WRITE = "protocol.write", _("Created or revised a protocol")
    PLAN_READ = "plan.read", _("Viewed a treatment plan")
    PLAN_WRITE = "plan.write", _("Created or changed a treatment plan")
    PLAN_STATUS = "plan.status", _("Activated, completed or stopped a treatment plan")
    GATE_READ = "gate.read", _("Evaluated the check-in gate")
    SESSION_CHECK_IN = "session.check_in", _("Checked the patient in for a session")
    SESSION_READ = "session.read", _("Viewed a treatment session")
    SESSION_CHART = "session.chart", _("Charted a treatment session")
    SESSION_SIGN = "session.sign", _("Signed a treatment session")
    SESSION_AMEND = "session.amend", _("Amended a signed session")
    SESSION_COSIGN = "session.cosign", _("Co-signed a treatment session")
    AFTERCARE_READ = "aftercare.read", _("Viewed aftercare instructions")
    AFTERCARE_PRINT = "aftercare.print", _("Printed aftercare instructions")
    # Informed consent and patient education (issue 6).
    EDUCATION_WRITE = "education.write", _("Revised a patient-education article")
    CONSENT_TEMPLATE_WRITE = "consent_template.write", _("Revised a consent template")
    CONSENT_SETTINGS_WRITE = "consent_settings.write", _("Changed the consent period or session prices")
    CONSENT_RENDER = "consent.render", _("Prepared a consent for reading and signature")
    CONSENT_READ = "consent.read", _("Viewed a consent")
    CONSENT_SIGN = "consent.sign", _("Signed a consent")
    CONSENT_COUNTERSIGN = "consent.countersign", _("Countersigned a consent")
    CONSENT_WITHDRAW = "consent.withdraw", _("Withdrew a consent")
    CONSENT_PRINT = "consent.print", _("Downloaded a signed consent")
    CONSENT_VERIFY = "consent.verify", _("Verified the stored consents")
    # Outcomes: measurements, scales and photos (issue 9).
    OUTCOME_READ = "outcome.read", _("Viewed the outcomes of a treatment plan")
    OUTCOME_RECORD = "outcome.record", _("Recorded or corrected outcome measurements")
    OUTCOME_SETTINGS_WRITE = "outcome_settings.write", _("Changed the clinic's outcome settings")
    PHOTO_UPLOAD = "photo.upload", _("Uploaded a standardised photo")
    PHOTO_READ = "photo.read", _("Viewed a standardised photo")
    PHOTO_CONSENT = "photo.consent", _("Recorded the patient's photo consent")
    PROGRESS_PRINT = "progress.print", _("Printed the progress report")
    # Scheduling, series booking and reminders (issue 7).
    APPOINTMENT_BOOK = "appointment.book", _("Booked an appointment")
    APPOINTMENT_READ = "appointment.read", _("Viewed appointments")
    APPOINTMENT_MOVE = "appointment.move", _("Moved an appointment")
    APPOINTMENT_CANCEL = "appointment.cancel", _("Cancelled an appointment")
    APPOINTMENT_NO_SHOW = "appointment.no_show", _("Recorded a no-show")
    APPOINTMENT_CHECK_IN = "appointment.check_in", _("Checked a patient in for an appointment")
    APPOINTMENT_PRINT = "appointment.print", _("Downloaded an appointment's calendar file")
    CALENDAR_READ = "calendar.read", _("Viewed the calendar")
    SERIES_READ = "series.read", _("Viewed a series' proposed sessions")
    SCHEDULE_CHANGE = "schedule.change", _("Changed working hours, closures or scheduling settings")
    CALENDAR_FEED_CREATE = "calendar_feed.create", _("Created a private calendar feed")
    CALENDAR_FEED_REVOKE = "calendar_feed.revoke", _("Revoked a private calendar feed")
    CALENDAR_FEED_READ = "calendar_feed.read", _("A calendar app read a private feed")
    MESSAGE_SEND = "message.send", _("Sent a message to the patient")
    MESSAGE_READ = "message.read", _("Viewed the messages sent to patients")
    CONTACT_PREFERENCE_READ = "contact_preference.read", _("Viewed how the patient is contacted")
    CONTACT_PREFERENCE_WRITE = "contact_preference.write", _("Changed how the patient is contacted")
    # Side effects, follow-up and safety signals (issue 8).
    ADVERSE_EVENT_RECORD = "adverse_event.record", _("Recorded a side effect")
    ADVERSE_EVENT_REPORT = "adverse_event.report", _("Reported a side effect in the portal")
    ADVERSE_EVENT_READ = "adverse_event.read", _("Viewed side effects")
    ADVERSE_EVENT_UPDATE = "adverse_event.update", _("Updated or reviewed a side effect")
    ADVERSE_EVENT_RETRACT = "adverse_event.retract", _("Marked a side effect as entered in error")
    ADVERSE_EVENT_PHOTO_ADD = "adverse_event.photo_add", _("Added a photo of a side effect")
    ADVERSE_EVENT_PHOTO_READ = "adverse_event.photo_read", _("Viewed the photo of a side effect")
    FOLLOW_UP_READ = "follow_up.read", _("Viewed side-effect follow-ups")
    FOLLOW_UP_CLOSE = "follow_up.close", _("Closed a side-effect follow-up")
    SAFETY_SCAN = "safety.scan", _("Scanned infections for safety signals")
    SAFETY_SIGNAL_READ = "safety_signal.read", _("Viewed a safety signal and its evidence")
    SAFETY_SIGNAL_REVIEW = "safety_signal.review", _("Reviewed a safety signal")
    SAFETY_REPORT_READ = "safety_report.read", _("Viewed the safety report")
    SAFETY_REPORT_EXPORT = "safety_report.export", _("Downloaded the safety report")
    SAFETY_SETTINGS_WRITE = "safety_settings.write", _("Changed the safety signal settings")


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)  # UTC
    user_id = models.BigIntegerField(null=True)
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=30, blank=True)
    clinic_id = models.BigIntegerField(null=True)
    patient_id = models.BigIntegerField(null=True)
    # Not a `choices` field: new actions must not need a migration. Action(value).label names it.
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True)
    detail = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        indexes = [
            models.Index(fields=["patient_id", "-seq"], name="audit_patient_idx"),
            models.Index(fields=["user_id", "-seq"], name="audit_user_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are append-only.")

    @property
    def action_label(self) -> str:
        try:
            return str(Action(self.action).label)
        except ValueError:
            return self.action


class AuditHead(models.Model):
    """One row: the last sequence number and hash. Locking it serialises appends on every database, and it
    lets the verifier notice rows cut from the end of the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"head #{self.seq}"

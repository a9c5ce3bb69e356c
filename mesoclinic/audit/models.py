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
    SCREENING_READ = "screening.read", _("Viewed the candidacy screening")
    SCREENING_REVIEW = "screening.review", _("Signed off a candidacy screening")
    PREPARATION_CREATE = "preparation.create", _("Prepared a syringe or cocktail")
    LOT_RECALL = "lot.recall", _("Recalled a lot")
    EXPOSURE_READ = "exposure.read", _("Viewed who received a lot")


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

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic


class Role(models.TextChoices):
    CLINIC_ADMIN = "clinic_admin", _("Clinic admin")
    PRACTITIONER = "practitioner", _("Practitioner")
    MEDICAL_DIRECTOR = "medical_director", _("Medical director")
    FRONT_DESK = "front_desk", _("Front desk")
    RESEARCHER = "researcher", _("Researcher")


# Roles whose accounts must use TOTP (targets.md #10).
MFA_REQUIRED_ROLES = frozenset({Role.CLINIC_ADMIN, Role.MEDICAL_DIRECTOR})


class User(AbstractUser):
    """A person who signs in: staff through memberships, a patient through their patient record."""

    preferred_language = models.CharField(
        _("preferred language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )

    class Meta:
        verbose_name = _("user")


class Membership(models.Model):
    """A staff member's role in one clinic. A person working in two clinics has two memberships."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic", "role"], name="membership_unique_role"),
        ]
        indexes = [models.Index(fields=["clinic", "role"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} @ {self.clinic}"


class PractitionerLicence(models.Model):
    """A licence to inject (R-PROV): charting needs one that is current in the clinic's jurisdiction."""

    class Profession(models.TextChoices):
        PHYSICIAN = "physician", _("Physician")
        NURSE = "nurse", _("Nurse")
        NURSE_PRACTITIONER = "nurse_practitioner", _("Nurse practitioner")
        PHYSICIAN_ASSISTANT = "physician_assistant", _("Physician assistant")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="licences")
    profession = models.CharField(_("profession"), max_length=30, choices=Profession.choices)
    number = models.CharField(_("licence number"), max_length=60)
    jurisdiction = models.CharField(_("jurisdiction"), max_length=10)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    expires_on = models.DateField(_("expires on"))

    class Meta:
        verbose_name = _("practitioner licence")
        constraints = [
            models.UniqueConstraint(fields=["jurisdiction", "number"], name="licence_unique_number"),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_from__lte=models.F("expires_on")),
                name="licence_valid_before_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.jurisdiction}, {self.expires_on})"


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough: no dictionary can reach them.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class ApiToken(models.Model):
    """A bearer token for API clients. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "mc_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.user} — {self.name or self.pk}"

    @classmethod
    def new_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

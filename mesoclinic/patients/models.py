from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic
from mesoclinic.lib.text import fold


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    # Clinic-unique, handed out by patients.services.patient_create, e.g. "P-000042".
    record_number = models.CharField(_("record number"), max_length=20, editable=False)
    given_name = models.CharField(_("given name"), max_length=100)
    family_name = models.CharField(_("family name"), max_length=100)
    date_of_birth = models.DateField(_("date of birth"))
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    address_line = models.CharField(_("address"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    # The portal account of this patient, if invited.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="patient"
    )
    # Folded copies for indexed, accent- and case-insensitive prefix search.
    family_name_folded = models.CharField(max_length=100, editable=False, db_index=False)
    given_name_folded = models.CharField(max_length=100, editable=False, db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("patient")
        ordering = ["family_name_folded", "given_name_folded", "id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "record_number"], name="patient_unique_record_number"),
        ]
        indexes = [
            models.Index(
                fields=["clinic", "family_name_folded", "given_name_folded"], name="patient_family_idx"
            ),
            models.Index(fields=["clinic", "given_name_folded"], name="patient_given_idx"),
            models.Index(fields=["clinic", "date_of_birth"], name="patient_dob_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.family_name.upper()} {self.given_name} ({self.record_number})"

    def save(self, *args: object, **kwargs: object) -> None:
        self.family_name_folded = fold(self.family_name)
        self.given_name_folded = fold(self.given_name)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

from __future__ import annotations

import zoneinfo
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known IANA time zone."), params={"value": value})


class Organisation(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)

    class Meta:
        verbose_name = _("organisation")

    def __str__(self) -> str:
        return self.name


class Clinic(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="clinics")
    name = models.CharField(_("name"), max_length=200)
    time_zone = models.CharField(_("time zone"), max_length=64, validators=[validate_time_zone])
    currency = models.CharField(_("currency"), max_length=3, help_text=_("ISO 4217 code, e.g. EUR."))
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166-1 alpha-2 code, e.g. FR."))
    # The regulatory jurisdiction (R-REG): a country or a subdivision, e.g. "US-NY", "FR".
    jurisdiction = models.CharField(_("jurisdiction"), max_length=10)
    address_line = models.CharField(_("address"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    # The last patient record number handed out; incremented under a row lock (patients.services).
    last_record_number = models.PositiveIntegerField(default=0, editable=False)
    # The medical director co-signs this share of signed sessions, and every session of a practitioner who
    # has signed fewer than ``cosign_new_practitioner_sessions`` in the clinic (treatments.rules).
    cosign_share_percent = models.PositiveSmallIntegerField(
        _("share of sessions co-signed (%)"), default=10, validators=[MaxValueValidator(100)]
    )
    cosign_new_practitioner_sessions = models.PositiveSmallIntegerField(
        _("sessions co-signed for a new practitioner"), default=20
    )

    class Meta:
        verbose_name = _("clinic")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="clinic_unique_name_per_org"),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="clinic_currency_iso"
            ),
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="clinic_country_iso"
            ),
            models.CheckConstraint(
                condition=models.Q(cosign_share_percent__lte=100), name="clinic_cosign_share_percent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def today(self) -> date:
        """The clinic's local date: every rule about days (intervals, washouts, expiry) counts in it."""
        return timezone.localdate(timezone=self.zone)


class Room(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("room")
        constraints = [models.UniqueConstraint(fields=["clinic", "name"], name="room_unique_name_per_clinic")]

    def __str__(self) -> str:
        return f"{self.clinic} — {self.name}"


class Device(models.Model):
    class Kind(models.TextChoices):
        MULTI_INJECTOR = "multi-injector", _("Multi-injector gun")
        INJECTOR_GUN = "injector-gun", _("Injector gun")
        ULTRASOUND = "ultrasound", _("Ultrasound")
        CAMERA = "camera", _("Camera")
        OTHER = "other", _("Other")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    # Manufacturer serial or asset tag: infection clusters are traced to single devices (R-SIGNAL).
    identifier = models.CharField(_("identifier"), max_length=100)
    room = models.ForeignKey(Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices")
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("device")
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "identifier"], name="device_unique_identifier_per_clinic"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.identifier})"

"""Informed consent and patient education (R-EDU, R-PRE-CONSENT, R-REG, R-COST).

- The education library and the consent templates are *versioned content*: a seeded row (``clinic`` NULL) is
  what every clinic starts from; a clinic that edits it gets its own copy, and every edit is a new, immutable
  version. Articles exist per topic, indication (blank: every indication) and language; templates per
  indication, jurisdiction (blank: any) and language.
- A :class:`Consent` stores exactly what the patient read (the rendered text and its SHA-256), the template
  version, what it covers (a fingerprint of the plan's indication, areas and formulas), who signed, when and
  from where, and the drawn signature (a re-encoded PNG). It is never updated in place except for the
  withdrawal fields. The practitioner's :class:`Countersignature` is a row of its own, with the PDF of the
  complete document kept through Django's storage API and its SHA-256 (``manage.py consent_verify``).
- Per-clinic settings: how long a consent lasts (default 12 months) and the price of one session, per
  indication or by default, in the clinic's currency (R-COST: prices are clinic data).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NoReturn

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary.models import Indication
from mesoclinic.patients.models import Patient
from mesoclinic.treatments.models import TreatmentPlan

SHA256_PATTERN = r"^[0-9a-f]{64}$"


class ImmutableError(RuntimeError):
    """A content version, a signed consent or a countersignature never changes."""


class Topic(models.TextChoices):
    # R-EDU: what every seed says a patient must know, in the order a patient reads it.
    WHAT_IS = "what-is", _("What mesotherapy is")
    WHAT_TO_EXPECT = "what-to-expect", _("What to expect in a session")
    SESSIONS = "sessions", _("How many sessions, and how often")
    PREPARING = "preparing", _("Preparing for a session")
    AFTERCARE = "aftercare", _("Aftercare")
    SIDE_EFFECTS = "side-effects", _("Side effects and when to call the clinic")
    COSTS = "costs", _("Costs and insurance")
    EVIDENCE = "evidence", _("What the evidence says")
    ALTERNATIVES = "alternatives", _("Alternatives")


class _Immutable(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError(f"A {self._meta.verbose_name} is never changed: make a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ImmutableError(f"A {self._meta.verbose_name} is never deleted.")


# --- the education library --------------------------------------------------------------------------------


class Article(models.Model):
    """One patient-education article: a topic, for one indication or all ("" ), in one language."""

    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="education_articles"
    )
    topic = models.CharField(_("topic"), max_length=20, choices=Topic.choices)
    indication = models.CharField(_("indication"), max_length=30, choices=Indication.choices, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    copied_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="copies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("education article")
        ordering = ["topic", "indication", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "indication", "language"],
                condition=Q(clinic__isnull=True),
                name="article_unique_seeded",
            ),
            models.UniqueConstraint(
                fields=["clinic", "topic", "indication", "language"],
                condition=Q(clinic__isnull=False),
                name="article_unique_per_clinic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic}/{self.indication or '*'}/{self.language}"


class ArticleVersion(_Immutable):
    article = models.ForeignKey(Article, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    # Paragraphs separated by blank lines; "- " starts a bullet; {clinic_name}, {clinic_phone} and
    # {price_per_session} are filled from the clinic's data when shown.
    body = models.TextField(_("text"))
    source = models.CharField(_("source"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("article version")
        ordering = ["article", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["article", "number"], name="article_version_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.article} v{self.number}"


# --- consent templates --------------------------------------------------------------------------------------


class ConsentTemplate(models.Model):
    """The clinic-editable wording of a consent, for one indication or all (""), one jurisdiction or any ("";
    "US" covers "US-NY"), in one language. What comes from live data (formula, regulatory status,
    alternatives, sessions, costs) is filled in when the consent is rendered for a plan."""

    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="consent_templates"
    )
    indication = models.CharField(_("indication"), max_length=30, choices=Indication.choices, blank=True)
    jurisdiction = models.CharField(_("jurisdiction"), max_length=10, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    copied_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="copies"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("consent template")
        ordering = ["indication", "jurisdiction", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["indication", "jurisdiction", "language"],
                condition=Q(clinic__isnull=True),
                name="consent_template_unique_seeded",
            ),
            models.UniqueConstraint(
                fields=["clinic", "indication", "jurisdiction", "language"],
                condition=Q(clinic__isnull=False),
                name="consent_template_unique_per_clinic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.indication or '*'}/{self.jurisdiction or '*'}/{self.language}"


class ConsentTemplateVersion(_Immutable):
    template = models.ForeignKey(ConsentTemplate, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    procedure = models.TextField(_("the procedure"))
    risks = models.TextField(_("risks and side effects"))
    evidence = models.TextField(_("what the evidence says"))
    declaration = models.TextField(_("the patient's declaration"))
    source = models.CharField(_("source"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("consent template version")
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="consent_template_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


# --- per-clinic settings ------------------------------------------------------------------------------------

DEFAULT_VALIDITY_MONTHS = 12
MAX_VALIDITY_MONTHS = 60
MAX_PRICE = Decimal("99999999.99")


class ConsentSettings(models.Model):
    """How long a consent lasts in this clinic. Absent: the defaults."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="consent_settings")
    validity_months = models.PositiveSmallIntegerField(
        _("a consent lasts (months)"),
        default=DEFAULT_VALIDITY_MONTHS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_VALIDITY_MONTHS)],
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("consent settings")
        verbose_name_plural = _("consent settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(validity_months__gte=1) & Q(validity_months__lte=MAX_VALIDITY_MONTHS),
                name="consent_validity_months_range",
            ),
        ]

    def __str__(self) -> str:
        return f"consent settings of clinic {self.clinic_id}"


class SessionPrice(models.Model):
    """The price of one session in the clinic's currency, for one indication or by default ("")."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="session_prices")
    indication = models.CharField(_("indication"), max_length=30, choices=Indication.choices, blank=True)
    price_per_session = models.DecimalField(_("price per session"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("session price")
        ordering = ["clinic", "indication"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "indication"], name="session_price_unique"),
            models.CheckConstraint(condition=Q(price_per_session__gt=0), name="session_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.indication or 'default'}: {self.price_per_session}"


# --- signed consents ----------------------------------------------------------------------------------------

WITHDRAWAL_FIELDS = frozenset({"withdrawn_at", "withdrawn_by", "withdrawal_reason", "withdrawn_ip"})


class ConsentQuerySet(models.QuerySet["Consent"]):
    def update(self, **kwargs: Any) -> int:
        if not set(kwargs) <= WITHDRAWAL_FIELDS:
            raise ImmutableError("A signed consent is never updated, except to record its withdrawal.")
        return super().update(**kwargs)

    def delete(self) -> NoReturn:
        raise ImmutableError("A signed consent is never deleted.")


class Consent(models.Model):
    """The patient's signature on exactly this text, for exactly this plan (R-PRE-CONSENT)."""

    class Via(models.TextChoices):
        PORTAL = "portal", _("In the patient portal")
        DESK = "desk", _("On the clinic's tablet")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="consents")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="consents")
    template_version = models.ForeignKey(
        ConsentTemplateVersion, on_delete=models.PROTECT, related_name="consents"
    )
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    text = models.TextField(_("text as signed"))
    text_sha256 = models.CharField(_("SHA-256 of the text"), max_length=64)
    # What the consent covers: the plan's indication, areas and formulas (with their content) when signed.
    covers = models.JSONField(_("covers"))
    fingerprint = models.CharField(max_length=64)
    signed_at = models.DateTimeField(_("signed at"))
    signed_on = models.DateField(_("signed on"))  # clinic-local
    valid_until = models.DateField(_("valid until"))  # clinic-local, inclusive
    typed_name = models.CharField(_("typed name"), max_length=200)
    signature_png = models.BinaryField(_("drawn signature (PNG)"))
    signature_sha256 = models.CharField(max_length=64)
    signed_ip = models.GenericIPAddressField(_("signed from"), null=True, blank=True)
    signed_via = models.CharField(_("signed"), max_length=10, choices=Via.choices)
    # The account the signature was given through: the patient's own, or the staff member's at the desk.
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True)
    withdrawn_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent")
        ordering = ["-signed_at", "-id"]
        indexes = [
            models.Index(fields=["plan", "-signed_at"], name="consent_plan_idx"),
            models.Index(fields=["patient", "-signed_at"], name="consent_patient_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(text_sha256__regex=SHA256_PATTERN), name="consent_text_sha256"
            ),
            models.CheckConstraint(
                condition=Q(signature_sha256__regex=SHA256_PATTERN), name="consent_signature_sha256"
            ),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=SHA256_PATTERN), name="consent_fingerprint"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__gte=models.F("signed_on")), name="consent_valid_after_signing"
            ),
            models.CheckConstraint(condition=~Q(typed_name=""), name="consent_has_typed_name"),
            models.CheckConstraint(
                condition=(Q(withdrawn_at__isnull=True) & Q(withdrawn_by__isnull=True))
                | (Q(withdrawn_at__isnull=False) & Q(withdrawn_by__isnull=False)),
                name="consent_withdrawal_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"consent {self.pk} for plan {self.plan_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= WITHDRAWAL_FIELDS:
                raise ImmutableError("A signed consent is never updated, except to record its withdrawal.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ImmutableError("A signed consent is never deleted.")


class Countersignature(_Immutable):
    """The practitioner's countersignature; the complete document is then printed to PDF and kept."""

    consent = models.OneToOneField(Consent, on_delete=models.PROTECT, related_name="countersignature")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(_("countersigned at"))
    ip = models.GenericIPAddressField(null=True, blank=True)
    pdf_name = models.CharField(max_length=255)  # in the default storage
    pdf_sha256 = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("countersignature")
        constraints = [
            models.CheckConstraint(
                condition=Q(pdf_sha256__regex=SHA256_PATTERN), name="countersign_pdf_sha256"
            ),
        ]

    def __str__(self) -> str:
        return f"countersignature of consent {self.consent_id}"

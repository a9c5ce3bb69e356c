"""The formulary (R-FORM): ingredients, clinic formulas, products, lots, stock and preparations.

Stock is never a number typed over: it is the sum of :class:`StockMovement` rows, written only by
``formulary.services`` under a lock on the lot (R-SIGNAL: every vial injected stays traceable).
``Lot.stock_ml`` keeps that sum at hand for the stock screen: ``services._write_movements`` moves it in the
same transaction as every movement it inserts, and ``services.stock_discrepancies`` checks it against the
sum."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary.rules import MAX_BEYOND_USE_HOURS
from mesoclinic.patients.models import Patient

VOLUME = {"max_digits": 9, "decimal_places": 3}  # up to 999,999.999 mL, to the microlitre
STRENGTH = {"max_digits": 12, "decimal_places": 4}  # concentrations and strengths, to 1/10,000 of the unit
ZERO = Decimal("0")


class ImmutableError(RuntimeError):
    """A formula version used by a preparation cannot change (R-FORM: a new version is made instead)."""


class IngredientClass(models.TextChoices):
    # domain.md R-FORM: the classes named by the seeds (001, 003, 004) plus the agents they name.
    LIPOLYTIC = "lipolytic", _("Injection lipolysis agent")
    METHYLXANTHINE = "methylxanthine", _("Methylxanthine")
    VASODILATOR = "vasodilator", _("Vasodilator")
    ANTIBIOTIC = "antibiotic", _("Antibiotic")
    HORMONE = "hormone", _("Hormone")
    ENZYME = "enzyme", _("Enzyme")
    LOCAL_ANAESTHETIC = "local-anaesthetic", _("Local anaesthetic")
    ANTIANDROGEN = "antiandrogen", _("5-alpha-reductase inhibitor")
    PRESCRIPTION = "prescription", _("Other prescription medicine")
    PLANT_EXTRACT = "plant-extract", _("Plant extract")
    VITAMIN = "vitamin", _("Vitamin")
    MINERAL = "mineral", _("Mineral or trace element")
    AMINO_ACID = "amino-acid", _("Amino acid or peptide")
    SKIN_CONDITIONER = "skin-conditioner", _("Skin conditioner")
    DILUENT = "diluent", _("Diluent")


class Indication(models.TextChoices):
    # domain.md R-IND. Codes are data stored on formulas and regulatory statuses.
    LOCALIZED_FAT = "localized-fat", _("Localized fat / body contouring")
    WEIGHT_LOSS = "weight-loss", _("General weight loss")
    CELLULITE = "cellulite", _("Cellulite")
    WRINKLES = "wrinkles", _("Wrinkles and fine lines")
    SAGGING = "sagging-skin", _("Sagging skin")
    REJUVENATION = "rejuvenation", _("Skin rejuvenation")
    PIGMENTATION = "pigmentation", _("Pigmentation")
    HAIR_LOSS = "hair-loss", _("Alopecia / hair loss")
    ACNE = "acne", _("Acne")
    SCARS = "scars", _("Scars")
    STRETCH_MARKS = "stretch-marks", _("Stretch marks")
    PAIN = "pain", _("Pain")
    # Kybella's (deoxycholic acid 10 mg/mL) one approved indication: its own code, so that R-REG can say
    # "approved" for it and "off-label" for every other fat indication.
    SUBMENTAL_FAT = "submental-fat", _("Submental fat (double chin)")


class ConcentrationUnit(models.TextChoices):
    MG_PER_ML = "mg/mL", "mg/mL"
    MCG_PER_ML = "mcg/mL", "µg/mL"
    IU_PER_ML = "IU/mL", "IU/mL"
    UNITS_PER_ML = "U/mL", "U/mL"
    PERCENT = "%", "% (w/v)"
    ML = "mL", _("mL of product per syringe")


class AllergyGroup(models.Model):
    """Something a patient can be allergic to that several ingredients share (soy, amide local anaesthetics,
    bee and wasp venom…). Patient allergies name these codes or ingredient codes (R-CAND-ALLERGY)."""

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        verbose_name = _("allergy group")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ingredient(models.Model):
    """A substance that goes into formulas. ``clinic`` NULL: the seeded global catalogue; otherwise a clinic's
    own addition, seen only by that clinic."""

    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="ingredients"
    )
    code = models.SlugField(_("code"), max_length=60)
    name = models.CharField(_("name"), max_length=120)
    ingredient_class = models.CharField(_("class"), max_length=20, choices=IngredientClass.choices)
    description = models.TextField(_("description"), blank=True)
    # R-CAND-ALLERGY: an allergy to one of these groups (or to the ingredient's code) blocks the formula.
    allergy_groups = models.ManyToManyField(
        AllergyGroup, blank=True, related_name="ingredients", verbose_name=_("allergy groups")
    )
    # R-CAND-ANDRO: not for a patient who is or may become pregnant.
    teratogen = models.BooleanField(_("teratogen"), default=False)
    source = models.CharField(_("source"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("ingredient")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=Q(clinic__isnull=True), name="ingredient_unique_global_code"
            ),
            models.UniqueConstraint(
                fields=["clinic", "code"],
                condition=Q(clinic__isnull=False),
                name="ingredient_unique_clinic_code",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CrossSensitivity(models.Model):
    """R-CAND-XALLERGY: an allergy to ``group`` is a caution (warn), not a ban, for this ingredient."""

    ingredient = models.ForeignKey(Ingredient, on_delete=models.CASCADE, related_name="cautions")
    group = models.ForeignKey(AllergyGroup, on_delete=models.PROTECT, related_name="cautions")
    note = models.CharField(_("note"), max_length=300)
    source = models.CharField(_("source"), max_length=300)

    class Meta:
        verbose_name = _("cross-sensitivity caution")
        constraints = [
            models.UniqueConstraint(fields=["ingredient", "group"], name="caution_unique_group"),
        ]

    def __str__(self) -> str:
        return f"{self.ingredient} ~ {self.group}"


class ProductLimit(models.Model):
    """A labelled limit for one strength of an ingredient (R-TECH "product limits are data too"), stored as
    fields so that session charting can enforce them (a chart over a limit → ``block``)."""

    ingredient = models.ForeignKey(Ingredient, on_delete=models.CASCADE, related_name="limits")
    label = models.CharField(_("label"), max_length=200)
    concentration = models.DecimalField(_("concentration"), max_digits=12, decimal_places=4)
    concentration_unit = models.CharField(_("unit"), max_length=8, choices=ConcentrationUnit.choices)
    max_volume_per_injection_ml = models.DecimalField(
        _("max volume per injection (mL)"), null=True, blank=True, max_digits=9, decimal_places=3
    )
    min_injection_spacing_cm = models.DecimalField(
        _("min spacing between injections (cm)"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    max_injections_per_session = models.PositiveIntegerField(
        _("max injections per session"), null=True, blank=True
    )
    max_volume_per_session_ml = models.DecimalField(
        _("max volume per session (mL)"), null=True, blank=True, max_digits=9, decimal_places=3
    )
    min_interval_days = models.PositiveIntegerField(_("min days between sessions"), null=True, blank=True)
    max_sessions = models.PositiveIntegerField(_("max sessions"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=300)

    class Meta:
        verbose_name = _("product limit")
        constraints = [
            models.CheckConstraint(condition=Q(concentration__gt=0), name="limit_concentration_positive"),
            models.CheckConstraint(
                condition=Q(max_volume_per_injection_ml__isnull=True) | Q(max_volume_per_injection_ml__gt=0),
                name="limit_injection_volume_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_volume_per_session_ml__isnull=True) | Q(max_volume_per_session_ml__gt=0),
                name="limit_session_volume_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.label


class RegulatoryStatus(models.Model):
    """R-REG: what a jurisdiction says about an ingredient (or, with no ingredient, about mesotherapy mixtures
    as such) for some indications (empty: any use). A clinic in "US-NY" reads "US-NY" rows, else "US" rows:
    the most specific jurisdiction wins. ``clinic`` NULL: the seeded rows; otherwise the clinic's own
    configuration (domain.md R-REG: jurisdiction rules are clinic configuration, not code), which wins over
    the seeded rows of the same jurisdiction for that clinic only (``rules.applicable_statuses``)."""

    class Status(models.TextChoices):
        APPROVED = "approved", _("Approved for this use")
        OTHER_INDICATION = "approved-other-indication", _("Approved for another indication (off-label)")
        NOT_APPROVED = "not-approved", _("Not approved")
        BANNED = "banned", _("Banned")

    ingredient = models.ForeignKey(
        Ingredient, on_delete=models.CASCADE, null=True, blank=True, related_name="statuses"
    )
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, null=True, blank=True, related_name="regulatory_statuses"
    )
    jurisdiction = models.CharField(_("jurisdiction"), max_length=10)
    status = models.CharField(_("status"), max_length=30, choices=Status.choices)
    indications = models.JSONField(_("indications"), default=list, blank=True)
    use = models.CharField(_("use"), max_length=300)
    source = models.CharField(_("source"), max_length=300)

    class Meta:
        verbose_name = _("regulatory status")
        verbose_name_plural = _("regulatory statuses")
        indexes = [
            models.Index(fields=["ingredient", "jurisdiction"], name="regstatus_lookup_idx"),
            models.Index(fields=["clinic", "jurisdiction"], name="regstatus_clinic_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.ingredient or 'mesotherapy'} @ {self.jurisdiction}: {self.status}"


class Formula(models.Model):
    """A clinic's recipe (R-FORM: there is no standard formula). Its content lives in versions."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="formulas")
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("formula")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="formula_unique_name_per_clinic"),
        ]

    def __str__(self) -> str:
        return self.name


class FormulaVersion(models.Model):
    """One version of a formula. Immutable once a preparation uses it: revising makes the next version."""

    formula = models.ForeignKey(Formula, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    diluent = models.ForeignKey(
        Ingredient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("diluent"),
    )
    total_volume_ml = models.DecimalField(_("total volume (mL)"), max_digits=9, decimal_places=3)
    indications = models.JSONField(_("indications"), default=list)
    preparation_notes = models.TextField(_("preparation notes"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("formula version")
        ordering = ["formula", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["formula", "number"], name="formula_version_unique_number"),
            models.CheckConstraint(condition=Q(total_volume_ml__gt=0), name="formula_volume_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.formula} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.is_used:
            raise ImmutableError("This formula version is used by a preparation; revise the formula instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_used:
            raise ImmutableError("This formula version is used by a preparation.")
        return super().delete(*args, **kwargs)

    @property
    def is_used(self) -> bool:
        return self.pk is not None and Preparation.objects.filter(formula_version_id=self.pk).exists()


class FormulaComponent(models.Model):
    version = models.ForeignKey(FormulaVersion, on_delete=models.CASCADE, related_name="components")
    ingredient = models.ForeignKey(Ingredient, on_delete=models.PROTECT, related_name="+")
    concentration = models.DecimalField(_("concentration"), max_digits=12, decimal_places=4)
    unit = models.CharField(_("unit"), max_length=8, choices=ConcentrationUnit.choices)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("formula component")
        ordering = ["version", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "ingredient"], name="component_unique_ingredient"),
            models.CheckConstraint(condition=Q(concentration__gt=0), name="component_concentration_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.ingredient} {self.concentration} {self.unit}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if FormulaVersion(pk=self.version_id).is_used:
            raise ImmutableError("This formula version is used by a preparation; revise the formula instead.")
        super().save(*args, **kwargs)


class Product(models.Model):
    """What the clinic buys: a vial of one or more ingredients at a strength."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(_("name"), max_length=200)
    supplier = models.CharField(_("supplier"), max_length=200)
    vial_volume_ml = models.DecimalField(_("vial volume (mL)"), max_digits=9, decimal_places=3)
    multi_dose = models.BooleanField(_("multi-dose vial"), default=False)
    # After the first puncture (USP <797>: 28 days for a multi-dose vial unless the label says otherwise).
    beyond_use_hours = models.PositiveIntegerField(_("beyond-use hours after opening"))
    low_stock_vials = models.PositiveIntegerField(_("low-stock threshold (vials)"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="product_unique_name_per_clinic"),
            models.CheckConstraint(condition=Q(vial_volume_ml__gt=0), name="product_vial_volume_positive"),
            models.CheckConstraint(condition=Q(beyond_use_hours__gt=0), name="product_beyond_use_positive"),
            models.CheckConstraint(
                condition=Q(beyond_use_hours__lte=MAX_BEYOND_USE_HOURS),
                name="product_beyond_use_at_most_a_year",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProductComponent(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="components")
    ingredient = models.ForeignKey(Ingredient, on_delete=models.PROTECT, related_name="+")
    strength = models.DecimalField(_("strength"), max_digits=12, decimal_places=4)
    unit = models.CharField(_("unit"), max_length=8, choices=ConcentrationUnit.choices)

    class Meta:
        verbose_name = _("product component")
        constraints = [
            models.UniqueConstraint(fields=["product", "ingredient"], name="product_component_unique"),
            models.CheckConstraint(condition=Q(strength__gt=0), name="product_strength_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.ingredient} {self.strength} {self.unit}"


class Lot(models.Model):
    """A manufacturer's lot of a product. Recalled or expired lots cannot be used (R-FORM, R-SIGNAL)."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="lots")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    number = models.CharField(_("lot number"), max_length=60)
    expires_on = models.DateField(_("expires on"))
    received_on = models.DateField(_("received on"))
    received_vials = models.PositiveIntegerField(_("vials received"))
    recalled_at = models.DateTimeField(_("recalled at"), null=True, blank=True)
    recall_reason = models.TextField(_("recall reason"), blank=True)
    recalled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The sum of the lot's movements, kept by ``services._write_movements`` (never written elsewhere, never
    # typed over), so the stock screen does not add up the clinic's whole history. Wider than a movement: a
    # lot's adjustments may add up beyond one movement's limit.
    stock_ml = models.DecimalField(
        _("stock (mL)"), max_digits=15, decimal_places=3, default=0, editable=False
    )

    class Meta:
        verbose_name = _("lot")
        ordering = ["expires_on", "number"]
        constraints = [
            models.UniqueConstraint(fields=["product", "number"], name="lot_unique_number_per_product"),
            models.CheckConstraint(condition=Q(received_vials__gt=0), name="lot_received_positive"),
            models.CheckConstraint(
                condition=Q(expires_on__gte=models.F("received_on")), name="lot_expiry_after_receipt"
            ),
            models.CheckConstraint(
                condition=Q(recalled_at__isnull=True) | ~Q(recall_reason=""), name="lot_recall_has_reason"
            ),
        ]
        indexes = [models.Index(fields=["clinic", "expires_on"], name="lot_clinic_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.product} — {self.number}"


class VialOpening(models.Model):
    """A multi-dose vial once punctured: usable until ``beyond_use_at``. Its remaining volume is the vial
    volume plus its movements (all negative), never a stored number."""

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="openings")
    opened_at = models.DateTimeField(_("opened at"))
    beyond_use_at = models.DateTimeField(_("beyond-use at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("opened vial")
        ordering = ["-opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(beyond_use_at__gt=models.F("opened_at")), name="vial_beyond_use_after_opening"
            ),
        ]
        # The vials still open (a handful, whatever the clinic's history), for the stock screen.
        indexes = [models.Index(fields=["lot"], condition=Q(closed_at__isnull=True), name="vial_open_idx")]

    def __str__(self) -> str:
        return f"{self.lot} opened {self.opened_at:%Y-%m-%d %H:%M}"


class Preparation(models.Model):
    """A syringe or cocktail prepared for a patient from a formula version, with the lot of every ingredient.

    TODO(issue 5, session charting): the session that consumes a preparation will point here (a nullable
    ``session`` foreign key added by that issue's migration); the recall report then lists sessions too."""

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="preparations")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="preparations")
    formula_version = models.ForeignKey(FormulaVersion, on_delete=models.PROTECT, related_name="preparations")
    prepared_at = models.DateTimeField(_("prepared at"))
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    total_volume_ml = models.DecimalField(_("total volume (mL)"), max_digits=9, decimal_places=3)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("preparation")
        ordering = ["-prepared_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total_volume_ml__gt=0), name="preparation_volume_positive"),
        ]
        indexes = [models.Index(fields=["patient", "-prepared_at"], name="preparation_patient_idx")]

    def __str__(self) -> str:
        return f"{self.formula_version} for {self.patient_id} at {self.prepared_at:%Y-%m-%d %H:%M}"


class PreparationLine(models.Model):
    """The lot (and opened vial) one ingredient of a preparation was drawn from, and how much."""

    preparation = models.ForeignKey(Preparation, on_delete=models.CASCADE, related_name="lines")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="preparation_lines")
    vial = models.ForeignKey(
        VialOpening, on_delete=models.PROTECT, null=True, blank=True, related_name="preparation_lines"
    )
    volume_ml = models.DecimalField(_("volume drawn (mL)"), max_digits=9, decimal_places=3)

    class Meta:
        verbose_name = _("preparation line")
        constraints = [
            models.CheckConstraint(condition=Q(volume_ml__gt=0), name="preparation_line_volume_positive"),
        ]
        # "Who received lot X": lines by lot, then their preparation.
        indexes = [models.Index(fields=["lot", "preparation"], name="preparation_line_lot_idx")]

    def __str__(self) -> str:
        return f"{self.lot} {self.volume_ml} mL"


class StockMovement(models.Model):
    """One change of a lot's stock, in mL; the stock of a lot is the sum of its movements. An
    ``administered`` movement is a product injected straight from the vial (a ready-to-use cocktail,
    deoxycholic acid 10 mg/mL) without a preparation: it names the patient, so the recall report finds it."""

    class Kind(models.TextChoices):
        RECEIVED = "received", _("Received")
        PREPARED = "prepared", _("Drawn into a preparation")
        ADMINISTERED = "administered", _("Administered directly")
        WASTED = "wasted", _("Wasted")
        RETURNED = "returned", _("Returned to the supplier")
        ADJUSTED = "adjusted", _("Adjusted")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="stock_movements")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="movements")
    vial = models.ForeignKey(
        VialOpening, on_delete=models.PROTECT, null=True, blank=True, related_name="movements"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    quantity_ml = models.DecimalField(_("quantity (mL)"), max_digits=9, decimal_places=3)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    preparation = models.ForeignKey(
        Preparation, on_delete=models.PROTECT, null=True, blank=True, related_name="movements"
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="lot_administrations"
    )
    at = models.DateTimeField(_("at"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("stock movement")
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="received") & Q(quantity_ml__gt=0))
                | (Q(kind__in=["prepared", "administered", "wasted", "returned"]) & Q(quantity_ml__lt=0))
                | (Q(kind="adjusted") & ~Q(quantity_ml=0) & ~Q(reason="")),
                name="movement_sign_matches_kind",
            ),
            # Exactly the administrations name a patient (a preparation names its own).
            models.CheckConstraint(
                condition=(Q(kind="administered") & Q(patient__isnull=False))
                | (~Q(kind="administered") & Q(patient__isnull=True)),
                name="movement_patient_iff_administered",
            ),
        ]
        indexes = [
            models.Index(fields=["lot", "vial"], name="movement_lot_vial_idx"),
            # "Who received lot X" and "which lots did patient Y receive", for direct administrations.
            models.Index(
                fields=["lot", "patient"], condition=Q(patient__isnull=False), name="movement_lot_patient_idx"
            ),
            models.Index(
                fields=["patient", "-at"], condition=Q(patient__isnull=False), name="movement_patient_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity_ml} mL of {self.lot_id}"

"""The formulary's HTML forms: the shape of the input (types, lengths, the columns' digits and decimals);
the services check the meaning (positive, dates, caps, uniqueness) for the API and the pages alike."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mesoclinic.formulary.models import (
    AllergyGroup,
    ConcentrationUnit,
    Indication,
    Ingredient,
    IngredientClass,
    Lot,
    Product,
    RegulatoryStatus,
    StockMovement,
)
from mesoclinic.formulary.rules import MAX_BEYOND_USE_HOURS, MAX_VIALS_PER_LOT, STRENGTH_LIMITS, VOLUME_LIMITS
from mesoclinic.lib.ids import MAX_ID

MAX_ROWS = 40  # ingredients of a formula or product, lines of a preparation
DATE = forms.DateInput(attrs={"type": "date"})


def _volume(label: Any, **options: Any) -> forms.DecimalField:
    """A volume in mL: the digits and decimals the column holds."""
    return forms.DecimalField(
        label=label,
        max_digits=VOLUME_LIMITS.max_digits,
        decimal_places=VOLUME_LIMITS.decimal_places,
        **options,
    )


def _strength(label: Any, **options: Any) -> forms.DecimalField:
    """A concentration or strength: the digits and decimals the column holds."""
    return forms.DecimalField(
        label=label,
        max_digits=STRENGTH_LIMITS.max_digits,
        decimal_places=STRENGTH_LIMITS.decimal_places,
        **options,
    )


class LotReceiveForm(forms.Form):
    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    number = forms.CharField(label=_("Lot number"), max_length=60)
    expires_on = forms.DateField(label=_("Expires on"), widget=DATE)
    received_on = forms.DateField(label=_("Received on"), required=False, widget=DATE)
    received_vials = forms.IntegerField(label=_("Vials received"), min_value=1, max_value=MAX_VIALS_PER_LOT)

    def __init__(self, *args: Any, products: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = products  # type: ignore[attr-defined]


class MovementForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[
            (StockMovement.Kind.WASTED, StockMovement.Kind.WASTED.label),
            (StockMovement.Kind.RETURNED, StockMovement.Kind.RETURNED.label),
            (StockMovement.Kind.ADJUSTED, StockMovement.Kind.ADJUSTED.label),
        ],
    )
    quantity_ml = _volume(
        _("Quantity (mL)"), help_text=_("Waste and returns take stock out; an adjustment may be negative.")
    )
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)


class RecallForm(forms.Form):
    reason = forms.CharField(label=_("Reason for the recall"), max_length=2000, widget=forms.Textarea)


class FormulaForm(forms.Form):
    """The formula's name (on creation) and content; components come from the rows below it."""

    name = forms.CharField(label=_("Name"), max_length=200)
    indications = forms.MultipleChoiceField(
        label=_("Indications"), choices=Indication.choices, widget=forms.CheckboxSelectMultiple
    )
    total_volume_ml = _volume(_("Total volume (mL)"))
    diluent = forms.ModelChoiceField(label=_("Diluent"), queryset=Ingredient.objects.none(), required=False)
    preparation_notes = forms.CharField(
        label=_("Preparation notes"), widget=forms.Textarea, required=False, max_length=4000
    )


class ComponentForm(forms.Form):
    ingredient = forms.ModelChoiceField(
        label=_("Ingredient"), queryset=Ingredient.objects.none(), required=False
    )
    concentration = _strength(_("Concentration"), required=False)
    unit = forms.ChoiceField(label=_("Unit"), choices=[("", "—"), *ConcentrationUnit.choices], required=False)


# validate_max and absolute_max: a tampered TOTAL_FORMS neither builds thousands of forms nor passes.
ComponentFormSet = forms.formset_factory(
    ComponentForm, extra=6, max_num=MAX_ROWS, absolute_max=MAX_ROWS, validate_max=True
)


class PreparationForm(forms.Form):
    notes = forms.CharField(label=_("Notes"), widget=forms.Textarea, required=False, max_length=2000)


class LineForm(forms.Form):
    lot = forms.ModelChoiceField(label=_("Lot"), queryset=Lot.objects.none(), required=False)
    volume_ml = _volume(_("Volume drawn (mL)"), required=False)
    vial = forms.IntegerField(
        label=_("Opened vial (multi-dose)"), required=False, min_value=1, max_value=MAX_ID
    )


LineFormSet = forms.formset_factory(
    LineForm, extra=6, max_num=MAX_ROWS, absolute_max=MAX_ROWS, validate_max=True
)


class IngredientForm(forms.Form):
    code = forms.SlugField(
        label=_("Code"),
        max_length=60,
        help_text=_("Lower-case letters, digits and hyphens, e.g. house-serum."),
    )
    name = forms.CharField(label=_("Name"), max_length=120)
    ingredient_class = forms.ChoiceField(label=_("Class"), choices=IngredientClass.choices)
    allergy_groups = forms.ModelMultipleChoiceField(
        label=_("Allergy groups"),
        queryset=AllergyGroup.objects.order_by("name"),
        to_field_name="code",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("An allergy to one of these blocks a formula with this ingredient."),
    )
    teratogen = forms.BooleanField(
        label=_("Teratogen (not for a patient who is or may become pregnant)"), required=False
    )
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea, required=False, max_length=2000
    )
    source = forms.CharField(label=_("Source"), max_length=300, required=False)


class ProductForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    supplier = forms.CharField(label=_("Supplier"), max_length=200)
    vial_volume_ml = _volume(_("Vial volume (mL)"))
    multi_dose = forms.BooleanField(label=_("Multi-dose vial"), required=False)
    beyond_use_hours = forms.IntegerField(
        label=_("Beyond-use hours after opening"),
        min_value=1,
        max_value=MAX_BEYOND_USE_HOURS,
        initial=672,
        help_text=_("USP <797>: 28 days (672 hours) for a multi-dose vial unless its label says otherwise."),
    )
    low_stock_vials = forms.IntegerField(
        label=_("Low-stock threshold (vials)"), min_value=0, max_value=100_000, initial=0
    )


class ProductComponentForm(forms.Form):
    ingredient = forms.ModelChoiceField(
        label=_("Ingredient"), queryset=Ingredient.objects.none(), required=False
    )
    strength = _strength(_("Strength"), required=False)
    unit = forms.ChoiceField(label=_("Unit"), choices=[("", "—"), *ConcentrationUnit.choices], required=False)


ProductComponentFormSet = forms.formset_factory(
    ProductComponentForm, extra=4, max_num=MAX_ROWS, absolute_max=MAX_ROWS, validate_max=True
)


class RegulatoryStatusForm(forms.Form):
    ingredient = forms.ModelChoiceField(
        label=_("Ingredient"),
        queryset=Ingredient.objects.none(),
        required=False,
        empty_label=_("— mesotherapy mixtures as such —"),
    )
    jurisdiction = forms.CharField(
        label=_("Jurisdiction"),
        max_length=10,
        help_text=_('The clinic\'s, or its country ("US" for "US-NY").'),
    )
    status = forms.ChoiceField(label=_("Status"), choices=RegulatoryStatus.Status.choices)
    indications = forms.MultipleChoiceField(
        label=_("For these uses (none: any use)"),
        choices=Indication.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    use = forms.CharField(label=_("What it says"), max_length=300)
    source = forms.CharField(label=_("Source"), max_length=300)


class CautionForm(forms.Form):
    group = forms.ModelChoiceField(
        label=_("Allergy group"), queryset=AllergyGroup.objects.order_by("name"), to_field_name="code"
    )
    note = forms.CharField(label=_("Caution"), max_length=300)
    source = forms.CharField(label=_("Source"), max_length=300)


class LimitForm(forms.Form):
    label = forms.CharField(label=_("Label"), max_length=200)
    concentration = _strength(_("Concentration"))
    concentration_unit = forms.ChoiceField(label=_("Unit"), choices=ConcentrationUnit.choices)
    max_volume_per_injection_ml = _volume(_("Max volume per injection (mL)"), required=False)
    min_injection_spacing_cm = forms.DecimalField(
        label=_("Min spacing between injections (cm)"), required=False, max_digits=5, decimal_places=2
    )
    max_injections_per_session = forms.IntegerField(
        label=_("Max injections per session"), required=False, min_value=1, max_value=10_000
    )
    max_volume_per_session_ml = _volume(_("Max volume per session (mL)"), required=False)
    min_interval_days = forms.IntegerField(
        label=_("Min days between sessions"), required=False, min_value=1, max_value=10_000
    )
    max_sessions = forms.IntegerField(label=_("Max sessions"), required=False, min_value=1, max_value=10_000)
    source = forms.CharField(label=_("Source"), max_length=300)

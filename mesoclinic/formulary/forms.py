from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from mesoclinic.formulary.models import ConcentrationUnit, Indication, Ingredient, Lot, Product, StockMovement


class LotReceiveForm(forms.Form):
    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.none())
    number = forms.CharField(label=_("Lot number"), max_length=60)
    expires_on = forms.DateField(label=_("Expires on"), widget=forms.DateInput(attrs={"type": "date"}))
    received_on = forms.DateField(
        label=_("Received on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    received_vials = forms.IntegerField(label=_("Vials received"), max_value=100_000)

    def __init__(self, *args: object, products: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
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
    quantity_ml = forms.DecimalField(
        label=_("Quantity (mL)"),
        help_text=_("Waste and returns take stock out; an adjustment may be negative."),
        max_digits=9,
        decimal_places=3,
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
    total_volume_ml = forms.DecimalField(
        label=_("Total volume (mL)"),
        max_digits=9,
        decimal_places=3,
    )
    diluent = forms.ModelChoiceField(label=_("Diluent"), queryset=Ingredient.objects.none(), required=False)
    preparation_notes = forms.CharField(label=_("Preparation notes"), widget=forms.Textarea, required=False)


class ComponentForm(forms.Form):
    ingredient = forms.ModelChoiceField(
        label=_("Ingredient"), queryset=Ingredient.objects.none(), required=False
    )
    concentration = forms.DecimalField(
        label=_("Concentration"), required=False, max_digits=12, decimal_places=4
    )
    unit = forms.ChoiceField(label=_("Unit"), choices=[("", "—"), *ConcentrationUnit.choices], required=False)


ComponentFormSet = forms.formset_factory(ComponentForm, extra=6, max_num=40)


class PreparationForm(forms.Form):
    notes = forms.CharField(label=_("Notes"), widget=forms.Textarea, required=False, max_length=2000)


class LineForm(forms.Form):
    lot = forms.ModelChoiceField(label=_("Lot"), queryset=Lot.objects.none(), required=False)
    volume_ml = forms.DecimalField(
        label=_("Volume drawn (mL)"),
        required=False,
        max_digits=9,
        decimal_places=3,
    )
    vial = forms.IntegerField(label=_("Opened vial (multi-dose)"), required=False, min_value=1)


LineFormSet = forms.formset_factory(LineForm, extra=6, max_num=40)

ZERO = Decimal(0)

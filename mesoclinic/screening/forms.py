from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mesoclinic.screening.models import Condition, Intake, Review
from mesoclinic.screening.rules import IntakeAnswers, MedicationAnswer

WEIGHT_CHOICES = [("yes", _("Yes")), ("no", _("No")), ("unknown", _("I don't know"))]
_WEIGHT_VALUES = {"yes": True, "no": False, "unknown": None}


class IntakeForm(forms.Form):
    pregnancy = forms.ChoiceField(
        label=_("Pregnancy"), choices=Intake.Pregnancy.choices, widget=forms.RadioSelect, initial="none"
    )
    conditions = forms.MultipleChoiceField(
        label=_("Do you have any of these conditions?"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    allergies = forms.CharField(
        label=_("Allergies"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line: medicines, foods (soy…), insect stings, latex…"),
    )
    weight_stable = forms.ChoiceField(
        label=_("Has your weight been stable over the last 6 months?"),
        choices=WEIGHT_CHOICES,
        widget=forms.RadioSelect,
        initial="unknown",
    )
    goals = forms.CharField(
        label=_("Your goals and what you expect, in your own words"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    previous_treatments = forms.CharField(
        label=_("Previous aesthetic treatments"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.MultipleChoiceField, self.fields["conditions"])
        field.choices = [(row.code, row.display_label) for row in Condition.objects.all()]


class MedicationForm(forms.Form):
    name = forms.CharField(
        label=_("Medicine"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"aria-label": _("Medicine (name on the box)")}),
    )
    last_taken = forms.DateField(
        label=_("Last taken"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "aria-label": _("Last taken")}, format="%Y-%m-%d"),
    )


MedicationFormSet = forms.formset_factory(MedicationForm, extra=3, max_num=40, absolute_max=40)


def intake_initial(answers: IntakeAnswers | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if answers is None:
        return {}, []
    weight = {True: "yes", False: "no", None: "unknown"}[answers.weight_stable]
    return (
        {
            "pregnancy": answers.pregnancy,
            "conditions": list(answers.conditions),
            "allergies": "\n".join(answers.allergies),
            "weight_stable": weight,
            "goals": answers.goals,
            "previous_treatments": answers.previous_treatments,
        },
        [{"name": m.name, "last_taken": m.last_taken} for m in answers.medications],
    )


def answers_from(form: IntakeForm, formset: Any) -> IntakeAnswers:
    data = form.cleaned_data
    medications = tuple(
        MedicationAnswer(name=row.get("name", "") or "", last_taken=row.get("last_taken"))
        for row in formset.cleaned_data
        if row and (row.get("name") or row.get("last_taken"))
    )
    return IntakeAnswers(
        pregnancy=data["pregnancy"],
        conditions=tuple(data["conditions"]),
        medications=medications,
        allergies=tuple(line.strip() for line in data["allergies"].splitlines() if line.strip()),
        weight_stable=_WEIGHT_VALUES[data["weight_stable"]],
        goals=data["goals"],
        previous_treatments=data["previous_treatments"],
    )


def apply_intake_errors(form: IntakeForm, formset: Any, error: ValidationError) -> None:
    """Put the service's field errors ("medications.0.last_taken", "allergies.2"…) on the form fields."""
    for key, messages in error.message_dict.items():
        parts = key.split(".")
        for message in messages:
            if parts[0] == "medications" and len(parts) == 3 and int(parts[1]) < len(formset.forms):
                formset.forms[int(parts[1])].add_error(parts[2], message)
            elif parts[0] in form.fields:
                form.add_error(parts[0], message)
            else:
                form.add_error(None, message)


class ScreeningParamsForm(forms.Form):
    on = forms.DateField(
        label=_("Planned session date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    formula = forms.IntegerField(label=_("Formula (id)"), required=False, min_value=1)
    areas = forms.CharField(
        label=_("Areas"), required=False, max_length=500, help_text=_("Area codes separated by commas.")
    )


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"), choices=Review.Decision.choices, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    intake_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    on = forms.DateField(widget=forms.HiddenInput, required=False)
    formula = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)
    areas = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)
    confirm = forms.BooleanField(label=_("I have reviewed this screening and sign this decision."))

    def __init__(self, *args: Any, warning_codes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warning_codes = warning_codes
        for code in warning_codes:
            self.fields[f"ack_{code}"] = forms.CharField(
                label=_("Why go ahead despite “%(code)s”?") % {"code": code},
                required=False,
                max_length=1000,
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def acknowledgements(self) -> dict[str, str]:
        return {
            code: self.cleaned_data.get(f"ack_{code}", "")
            for code in self.warning_codes
            if self.cleaned_data.get(f"ack_{code}", "").strip()
        }

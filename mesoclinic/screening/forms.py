from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mesoclinic.lib.findings import Finding
from mesoclinic.screening.models import Condition, Intake, Review
from mesoclinic.screening.rules import MEDICINE_CLASS_LABELS, IntakeAnswers, MedicationAnswer

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


def answers_from(form: IntakeForm, formset: Any) -> tuple[IntakeAnswers, list[int]]:
    """The answers of the desk or portal form, and for each medicine answer the formset row it came from (so
    that an error on ``medications.1.name`` lands on that row). Only rows left wholly empty are skipped; a
    row with a date and no name is kept, and refused by the service."""
    data = form.cleaned_data
    rows = [
        (index, row)
        for index, row in enumerate(formset.cleaned_data)
        if row and ((row.get("name") or "").strip() or row.get("last_taken"))
    ]
    answers = IntakeAnswers(
        pregnancy=data["pregnancy"],
        conditions=tuple(data["conditions"]),
        medications=tuple(
            MedicationAnswer(name=row.get("name", "") or "", last_taken=row.get("last_taken"))
            for _i, row in rows
        ),
        allergies=tuple(line.strip() for line in data["allergies"].splitlines() if line.strip()),
        weight_stable=_WEIGHT_VALUES[data["weight_stable"]],
        goals=data["goals"],
        previous_treatments=data["previous_treatments"],
    )
    return answers, [index for index, _row in rows]


def apply_intake_errors(
    form: IntakeForm, formset: Any, error: ValidationError, rows: list[int] | None = None
) -> None:
    """Put the service's field errors ("medications.0.last_taken", "allergies.2"…) on the form fields.
    ``rows``: the formset row of each medicine answer (from ``answers_from``)."""
    for key, messages in error.message_dict.items():
        parts = key.split(".")
        for message in messages:
            if parts[0] == "medications" and len(parts) == 3 and parts[1].isdigit():
                answer = int(parts[1])
                row = rows[answer] if rows is not None and answer < len(rows) else answer
                if row < len(formset.forms):
                    formset.forms[row].add_error(parts[2], message)
                    continue
                form.add_error(None, message)
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


def ack_field_name(key: str) -> str:
    """The form field of a warning's acknowledgement: stable for a key whatever the order of the findings
    (a warning's key is ``code`` or ``code:subject``, and a subject is free text)."""
    return "ack_" + hashlib.blake2s(key.encode("utf-8"), digest_size=6).hexdigest()


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

    def __init__(self, *args: Any, warnings: Sequence[Finding], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings_by_key: dict[str, list[Finding]] = {}
        for finding in warnings:
            self.warnings_by_key.setdefault(finding.key, []).append(finding)
        for key, findings in self.warnings_by_key.items():
            subject = findings[0].subject
            self.fields[ack_field_name(key)] = forms.CharField(
                label=(
                    _("Why go ahead despite “%(code)s” (%(subject)s)?")
                    % {"code": findings[0].code, "subject": subject}
                    if subject
                    else _("Why go ahead despite “%(code)s”?") % {"code": findings[0].code}
                ),
                required=False,
                max_length=1000,
                widget=forms.Textarea(attrs={"rows": 2, "data-key": key}),
            )

    @property
    def warning_keys(self) -> list[str]:
        return list(self.warnings_by_key)

    def acknowledgement_fields(self) -> list[tuple[str, forms.BoundField, list[Finding]]]:
        return [(key, self[ack_field_name(key)], findings) for key, findings in self.warnings_by_key.items()]

    def acknowledgements(self) -> dict[str, str]:
        """The reasons given, by warning key."""
        given = {
            key: (self.cleaned_data.get(ack_field_name(key)) or "").strip() for key in self.warnings_by_key
        }
        return {key: reason for key, reason in given.items() if reason}


class MedicineForm(forms.Form):
    """A clinic's own medicine: generic name, classes, other names (one per line)."""

    generic_name = forms.CharField(label=_("Generic name"), max_length=100)
    classes = forms.MultipleChoiceField(
        label=_("Classes"),
        choices=[(value.value, label) for value, label in MEDICINE_CLASS_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
    )
    names = forms.CharField(
        label=_("Other names (brand names), one per line"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def name_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["names"].splitlines() if line.strip()]


class MedicineNamesForm(forms.Form):
    """More names for a medicine of the catalogue, for this clinic."""

    medicine = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    names = forms.CharField(
        label=_("Names to add (brand names, other spellings), one per line"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def name_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["names"].splitlines() if line.strip()]


def apply_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's field errors on the form (``names.2`` on ``names``; unknown fields on the form)."""
    for key, messages in error.message_dict.items():
        name = key.split(".")[0]
        for message in messages:
            form.add_error(name if name in form.fields else None, message)

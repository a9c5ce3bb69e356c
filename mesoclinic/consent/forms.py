"""Forms for the signing, countersigning, withdrawal, template, article and settings pages. They parse; the
services decide (and answer the same messages to the API)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mesoclinic.consent.models import MAX_VALIDITY_MONTHS
from mesoclinic.consent.rules import MAX_TEXT, MAX_TYPED_NAME
from mesoclinic.formulary.models import Indication

INDICATION_CHOICES = [("", _("Every indication")), *Indication.choices]


class SignForm(forms.Form):
    """What the signing page posts: what was shown (template version, SHA-256 of the text), for whom, the
    typed name and the drawn signature (a PNG data URL the canvas script writes into ``signature``)."""

    patient_id = forms.CharField(widget=forms.HiddenInput, max_length=20)
    template_version_id = forms.CharField(widget=forms.HiddenInput, max_length=20)
    text_sha256 = forms.CharField(widget=forms.HiddenInput, max_length=64)
    language = forms.ChoiceField(widget=forms.HiddenInput, choices=settings.LANGUAGES)
    typed_name = forms.CharField(
        label=_("Your full name"), max_length=MAX_TYPED_NAME, required=False, strip=True
    )
    signature = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500_000)


class WithdrawForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class TemplateForm(forms.Form):
    indication = forms.ChoiceField(label=_("For"), choices=INDICATION_CHOICES, required=False)
    jurisdiction = forms.CharField(
        label=_("Jurisdiction"),
        max_length=10,
        required=False,
        help_text=_("A country (FR) or a subdivision (US-NY); blank for any."),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    procedure = forms.CharField(
        label=_("The procedure"), max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 8})
    )
    risks = forms.CharField(
        label=_("Risks and side effects"), max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 8})
    )
    evidence = forms.CharField(
        label=_("What the evidence says"), max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 6})
    )
    declaration = forms.CharField(
        label=_("The patient's declaration"), max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 5})
    )
    source = forms.CharField(label=_("Source"), max_length=500, required=False)


class ArticleForm(forms.Form):
    indication = forms.ChoiceField(label=_("For"), choices=INDICATION_CHOICES, required=False)
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Text"),
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text=_(
            "Blank lines between paragraphs; a line starting with “- ” is a bullet. {clinic_name}, "
            "{clinic_phone} and {price_per_session} are filled in from the clinic's data."
        ),
    )
    source = forms.CharField(label=_("Source"), max_length=500, required=False)


class TermsForm(forms.Form):
    """The consent period and a price per session by default and per indication (blank: none)."""

    validity_months = forms.IntegerField(
        label=_("A consent lasts (months)"), min_value=1, max_value=MAX_VALIDITY_MONTHS
    )

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["price_default"] = forms.DecimalField(
            label=_("Price per session by default (%(currency)s)") % {"currency": currency},
            required=False,
            max_digits=10,
            decimal_places=2,
            min_value=0,
        )
        for code, label in Indication.choices:
            self.fields[f"price_{code}"] = forms.DecimalField(
                label=_("Price per session: %(indication)s (%(currency)s)")
                % {"indication": label, "currency": currency},
                required=False,
                max_digits=10,
                decimal_places=2,
                min_value=0,
            )

    def prices(self) -> dict[str, Any]:
        prices: dict[str, Any] = {"": self.cleaned_data.get("price_default")}
        for code in Indication.values:
            prices[code] = self.cleaned_data.get(f"price_{code}")
        return prices


def apply_errors(form: forms.Form, error: ValidationError, names: dict[str, str] | None = None) -> list[str]:
    """Put a service's field errors on the form's fields; answer the ones no field of the form takes."""
    loose: list[str] = []
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    for name, messages in error.message_dict.items():
        target = (names or {}).get(name, name)
        for message in messages:
            if target in form.fields:
                form.add_error(target, message)
            else:
                loose.append(message)
    return loose

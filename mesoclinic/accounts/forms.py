from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class TokenForm(forms.Form):
    token = forms.RegexField(
        label=_("6-digit code from your authenticator app"),
        regex=r"^\d{6}$",
        error_messages={"invalid": _("Enter the 6 digits shown in your authenticator app.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}
        ),
    )


class ClinicSwitchForm(forms.Form):
    clinic_id = forms.IntegerField(min_value=1)

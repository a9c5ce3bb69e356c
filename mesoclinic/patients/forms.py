from __future__ import annotations

from django import forms

from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import EDITABLE_FIELDS


class PatientForm(forms.ModelForm[Patient]):
    class Meta:
        model = Patient
        fields = EDITABLE_FIELDS
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

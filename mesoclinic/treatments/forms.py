"""Forms for the protocol, plan, check-in and charting pages. They parse; the services decide."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mesoclinic.clinics.models import Device, Room
from mesoclinic.formulary.models import Formula, Preparation
from mesoclinic.treatments import rules
from mesoclinic.treatments.models import BodyArea, Protocol, Technique, TreatmentSession
from mesoclinic.treatments.services import (
    ChartAreaIn,
    ChartIn,
    PlanIn,
    area_label,
    preparation_label,
    technique_label,
)


def _choices(rows: Iterable[tuple[Any, str]], blank: str | None = None) -> list[tuple[Any, str]]:
    choices = [(key, label) for key, label in rows]
    return [("", blank), *choices] if blank is not None else choices


class PlanForm(forms.Form):
    planned_sessions = forms.IntegerField(label=_("Planned sessions"), min_value=1, max_value=30)
    areas = forms.MultipleChoiceField(label=_("Target areas"), widget=forms.CheckboxSelectMultiple)
    formulas = forms.MultipleChoiceField(
        label=_("Formulas"), required=False, widget=forms.CheckboxSelectMultiple
    )
    procedures = forms.MultipleChoiceField(
        label=_("Combined procedures (not mesotherapy)"), required=False, widget=forms.CheckboxSelectMultiple
    )
    goals = forms.CharField(
        label=_("Goals"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(
        self,
        *args: Any,
        areas: Sequence[BodyArea],
        formulas: Sequence[Formula],
        procedures: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.MultipleChoiceField, self.fields["areas"]).choices = [
            (a.code, area_label(a)) for a in areas
        ]
        cast(forms.MultipleChoiceField, self.fields["formulas"]).choices = [
            (str(f.pk), f.name) for f in formulas
        ]
        cast(forms.MultipleChoiceField, self.fields["procedures"]).choices = [
            (code, rules.procedure_label(code)) for code in procedures
        ]

    def plan_in(self) -> PlanIn:
        data = self.cleaned_data
        return PlanIn(
            planned_sessions=data["planned_sessions"],
            areas=list(data["areas"]),
            formula_ids=[int(pk) for pk in data["formulas"]],
            procedures=[(code, "") for code in data["procedures"]],
            goals=data["goals"],
        )


class EndPlanForm(forms.Form):
    status = forms.ChoiceField(
        label=_("End the plan"), choices=[("completed", _("Completed")), ("stopped", _("Stopped"))]
    )
    reason = forms.CharField(
        label=_("Reason"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class CheckInForm(forms.Form):
    practitioner = forms.TypedChoiceField(label=_("Practitioner"), coerce=int)
    room = forms.TypedChoiceField(label=_("Room"), coerce=int, required=False, empty_value=None)
    device = forms.TypedChoiceField(label=_("Device"), coerce=int, required=False, empty_value=None)

    def __init__(
        self,
        *args: Any,
        practitioners: Sequence[tuple[int, str]],
        rooms: Sequence[Room],
        devices: Sequence[Device],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["practitioner"]).choices = list(practitioners)
        cast(forms.TypedChoiceField, self.fields["room"]).choices = _choices(
            ((r.pk, r.name) for r in rooms), "—"
        )
        cast(forms.TypedChoiceField, self.fields["device"]).choices = _choices(
            ((d.pk, f"{d.name} ({d.identifier})") for d in devices), "—"
        )


class SessionForm(forms.Form):
    topical_anaesthetic = forms.ChoiceField(
        label=_("Topical anaesthetic"), choices=TreatmentSession.Anaesthetic.choices, initial="none"
    )
    anaesthetic_minutes = forms.IntegerField(
        label=_("Applied how many minutes before"), required=False, min_value=0, max_value=240
    )
    room = forms.TypedChoiceField(label=_("Room"), coerce=int, required=False, empty_value=None)
    device = forms.TypedChoiceField(label=_("Device"), coerce=int, required=False, empty_value=None)
    notes = forms.CharField(
        label=_("Clinical notes"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, rooms: Sequence[Room], devices: Sequence[Device], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["room"]).choices = _choices(
            ((r.pk, r.name) for r in rooms), "—"
        )
        cast(forms.TypedChoiceField, self.fields["device"]).choices = _choices(
            ((d.pk, f"{d.name} ({d.identifier})") for d in devices), "—"
        )


class AreaForm(forms.Form):
    """One charted area. ``points`` is kept by the body map script as JSON: [[x, y], …]."""

    area = forms.CharField(widget=forms.HiddenInput, max_length=40)
    points = forms.CharField(widget=forms.HiddenInput, max_length=20000, initial="[]")
    technique = forms.ChoiceField(label=_("Technique"))
    depth_mm = forms.DecimalField(label=_("Intended depth (mm)"), max_digits=6, decimal_places=2)
    needle = forms.CharField(label=_("Needle"), required=False, max_length=60)
    injections = forms.IntegerField(label=_("Injections"), required=False, min_value=1, max_value=5000)
    volume_per_point_ml = forms.DecimalField(
        label=_("Volume per injection (mL)"),
        required=False,
        max_digits=9,
        decimal_places=3,
        min_value=Decimal("0.001"),
    )
    total_volume_ml = forms.DecimalField(
        label=_("Total volume (mL)"),
        required=False,
        max_digits=9,
        decimal_places=3,
        min_value=Decimal("0.001"),
    )
    preparation = forms.TypedChoiceField(label=_("Preparation"), coerce=int)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=500)

    def __init__(
        self,
        *args: Any,
        techniques: Sequence[Technique] = (),
        preparations: Sequence[Preparation] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["technique"]).choices = [
            (t.code, technique_label(t)) for t in techniques
        ]
        cast(forms.TypedChoiceField, self.fields["preparation"]).choices = _choices(
            ((p.pk, preparation_label(p)) for p in preparations), "—"
        )

    def clean_points(self) -> list[list[float]]:
        raw = self.cleaned_data["points"]
        try:
            points = json.loads(raw or "[]")
        except ValueError:
            raise ValidationError(_("The points could not be read: place them again.")) from None
        if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p) for p in points
        ):
            raise ValidationError(_("The points could not be read: place them again."))
        return points

    def area_in(self) -> ChartAreaIn:
        data = self.cleaned_data
        return ChartAreaIn(
            area=data["area"],
            technique=data["technique"],
            depth_mm=data["depth_mm"],
            points=data["points"],
            needle=data["needle"],
            injections=data["injections"],
            volume_per_point_ml=data["volume_per_point_ml"],
            total_volume_ml=data["total_volume_ml"],
            preparation_id=data["preparation"],
            notes=data["notes"],
        )


class BaseAreaFormSet(forms.BaseFormSet[AreaForm]):
    def __init__(
        self, *args: Any, techniques: Sequence[Technique], preparations: Sequence[Preparation], **kwargs: Any
    ) -> None:
        self.techniques = techniques
        self.preparations = preparations
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {"techniques": self.techniques, "preparations": self.preparations}

    @property
    def empty_form(self) -> AreaForm:
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            techniques=self.techniques,
            preparations=self.preparations,
        )
        self.add_fields(form, None)
        return form


AreaFormSet = cast(
    type[BaseAreaFormSet],
    forms.formset_factory(AreaForm, formset=BaseAreaFormSet, extra=0, can_delete=True, max_num=40),
)


def chart_in(
    session_form: SessionForm, formset: BaseAreaFormSet, acknowledgements: Mapping[str, str]
) -> ChartIn:
    data = session_form.cleaned_data
    return ChartIn(
        areas=[
            form.area_in()
            for form in formset.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ],
        topical_anaesthetic=data["topical_anaesthetic"],
        anaesthetic_minutes=data["anaesthetic_minutes"],
        room_id=data["room"],
        device_id=data["device"],
        notes=data["notes"],
        acknowledgements=acknowledgements,
    )


def apply_chart_errors(
    session_form: SessionForm, formset: BaseAreaFormSet, error: ValidationError
) -> list[str]:
    """Put the service's errors on the fields they name ("areas.2.depth_mm"); return the rest."""
    left: list[str] = []
    kept = [form for form in formset.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
    for name, messages in error.message_dict.items():
        parts = name.split(".")
        if parts[0] == "areas" and len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) < len(kept):
            form = kept[int(parts[1])]
            target = {"preparation_id": "preparation", "new_preparation": "preparation"}.get(
                parts[2], parts[2]
            )
            for message in messages:
                form.add_error(target if target in form.fields else None, message)
            continue
        target = {"room_id": "room", "device_id": "device"}.get(name, name)
        if target in session_form.fields:
            for message in messages:
                session_form.add_error(target, message)
        else:
            left.extend(messages)
    return left


def acknowledgements_from(post: Mapping[str, Any]) -> dict[str, str]:
    """The reasons typed for the warnings: inputs named "ack:<finding key>"."""
    return {
        key[4:]: str(value) for key, value in post.items() if key.startswith("ack:") and str(value).strip()
    }


class ProtocolCopyForm(forms.Form):
    name = forms.CharField(label=_("Name in this clinic"), max_length=200)


def protocol_choices(protocols: Iterable[Protocol]) -> list[tuple[int, str]]:
    return [(p.pk, p.name) for p in protocols]


class ProtocolForm(forms.Form):
    summary = forms.CharField(
        label=_("Summary"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    formula_note = forms.CharField(
        label=_("Typical formula"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    sessions_min = forms.IntegerField(label=_("Fewest sessions"), min_value=1, max_value=30)
    sessions_max = forms.IntegerField(label=_("Most sessions"), min_value=1, max_value=30)
    interval_min_days = forms.IntegerField(label=_("Shortest interval (days)"), min_value=1, max_value=365)
    interval_max_days = forms.IntegerField(label=_("Longest interval (days)"), min_value=1, max_value=365)
    taper_interval_min_days = forms.IntegerField(
        label=_("On improvement, shortest interval (days)"), required=False, min_value=1, max_value=365
    )
    taper_interval_max_days = forms.IntegerField(
        label=_("On improvement, longest interval (days)"), required=False, min_value=1, max_value=365
    )
    maintenance_interval_days = forms.IntegerField(
        label=_("Maintenance interval (days)"), required=False, min_value=1, max_value=730
    )
    outcome_measures = forms.MultipleChoiceField(
        label=_("Outcome measures"), required=False, widget=forms.CheckboxSelectMultiple
    )
    non_responder_after_sessions = forms.IntegerField(
        label=_("Judge the response after how many sessions"), required=False, min_value=1, max_value=30
    )
    responder_rule = forms.CharField(label=_("Responder rule"), required=False, max_length=500)
    combinations = forms.MultipleChoiceField(
        label=_("Suggested combinations"), required=False, widget=forms.CheckboxSelectMultiple
    )
    alternatives = forms.MultipleChoiceField(
        label=_("Alternatives"), required=False, widget=forms.CheckboxSelectMultiple
    )
    aftercare = forms.MultipleChoiceField(
        label=_("Aftercare instructions"), required=False, widget=forms.CheckboxSelectMultiple
    )
    aftercare_note = forms.CharField(
        label=_("Aftercare note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    formulas = forms.MultipleChoiceField(
        label=_("Formulas"), required=False, widget=forms.CheckboxSelectMultiple
    )
    source = forms.CharField(label=_("Source"), required=False, max_length=500)

    def __init__(self, *args: Any, formulas: Sequence[Formula] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = {
            "outcome_measures": [(code, rules.measure_label(code)) for code in rules.OUTCOME_MEASURES],
            "combinations": [(code, rules.procedure_label(code)) for code in rules.PROCEDURES],
            "alternatives": [(code, rules.procedure_label(code)) for code in rules.PROCEDURES],
            "aftercare": [(code, text) for code, text in rules.aftercare_texts(rules.ALL_AFTERCARE_CODES)],
            "formulas": [(str(f.pk), f.name) for f in formulas],
        }
        for name, field_choices in choices.items():
            cast(forms.MultipleChoiceField, self.fields[name]).choices = field_choices


class ProtocolAreaForm(forms.Form):
    area = forms.ChoiceField(label=_("Area"))
    technique = forms.ChoiceField(label=_("Technique"))
    depth_min_mm = forms.DecimalField(label=_("Shallowest (mm)"), max_digits=6, decimal_places=2)
    depth_max_mm = forms.DecimalField(label=_("Deepest (mm)"), max_digits=6, decimal_places=2)

    def __init__(
        self, *args: Any, areas: Sequence[BodyArea] = (), techniques: Sequence[Technique] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["area"]).choices = [(a.code, area_label(a)) for a in areas]
        cast(forms.ChoiceField, self.fields["technique"]).choices = [
            (t.code, technique_label(t)) for t in techniques
        ]


class BaseProtocolAreaFormSet(forms.BaseFormSet[ProtocolAreaForm]):
    def __init__(
        self, *args: Any, areas: Sequence[BodyArea], techniques: Sequence[Technique], **kwargs: Any
    ) -> None:
        self.areas = areas
        self.techniques = techniques
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {"areas": self.areas, "techniques": self.techniques}


ProtocolAreaFormSet = cast(
    type[BaseProtocolAreaFormSet],
    forms.formset_factory(
        ProtocolAreaForm, formset=BaseProtocolAreaFormSet, extra=3, can_delete=True, max_num=60
    ),
)

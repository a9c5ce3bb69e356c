"""Forms for the assessment, photo and settings pages. They parse; the services decide (ranges, landmarks,
which measures the protocol takes), and their errors are put back on the field they name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mesoclinic.outcomes import rules
from mesoclinic.outcomes.models import Landmark, Measurement
from mesoclinic.outcomes.services import LandmarkIn, MeasurementIn, landmark_label


@dataclass
class FieldGroup:
    """One measure on the form: its value field(s) and, for a new landmark, the landmark's fields."""

    code: str
    label: str
    unit: str
    help: str
    values: list[str] = field(default_factory=list)
    landmark: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Slot:
    code: str
    value_field: str
    item_fields: tuple[str, ...] = ()
    landmark_id: int | None = None
    new_landmark: bool = False


def _choices(rows: Sequence[tuple[Any, str]]) -> list[tuple[Any, str]]:
    return [("", "—"), *[(str(key), label) for key, label in rows]]


class AssessmentForm(forms.Form):
    """The measures this timepoint of the plan's protocol takes, each field named after its measure
    (``m-<code>``, ``m-<code>-L<landmark>`` at a known landmark, ``m-<code>-new`` at a new one)."""

    taken_on = forms.DateField(
        label=_("Date"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    note = forms.CharField(
        label=_("Clinical note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    reason = forms.CharField(
        label=_("Reason for changing values recorded before"),
        required=False,
        max_length=2000,
        help_text=_("Needed only when you correct a value."),
    )

    def __init__(
        self,
        *args: Any,
        measures: Sequence[str],
        landmarks: Sequence[Landmark],
        gais_reversed: bool,
        existing: Sequence[Measurement] = (),
        fixed_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if fixed_date:
            del self.fields["taken_on"]
        self.groups: list[FieldGroup] = []
        self._slots: list[_Slot] = []
        current = {(row.code, row.landmark_id): row for row in existing}
        for code in measures:
            scale = rules.SCALES[code]
            group = FieldGroup(code, scale.label, scale.unit_label, _rater_help(scale))
            if scale.landmark:
                for landmark in (row for row in landmarks if row.code == code):
                    name = f"m-{code}-L{landmark.pk}"
                    self.fields[name] = forms.CharField(
                        label=f"{scale.label} — {landmark_label(landmark)} ({scale.unit_label})",
                        required=False,
                        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
                    )
                    row = current.get((code, landmark.pk))
                    if row is not None:
                        self.initial.setdefault(name, f"{row.value.normalize():f}")
                    group.values.append(name)
                    self._slots.append(_Slot(code, name, landmark_id=landmark.pk))
                self._add_new_landmark(scale, group)
            elif scale.kind == "items":
                names: list[str] = []
                row = current.get((code, None))
                for index, (item, labels) in enumerate(scale.items):
                    name = f"m-{code}-{index}"
                    self.fields[name] = forms.ChoiceField(
                        label=f"{scale.label}: {_(item)}",
                        required=False,
                        choices=_choices(
                            [(grade, f"{grade} — {_(label)}") for grade, label in enumerate(labels)]
                        ),
                    )
                    if row is not None and row.items:
                        self.initial.setdefault(name, str(row.items[index]))
                    names.append(name)
                group.values.extend(names)
                self._slots.append(_Slot(code, "", item_fields=tuple(names)))
            else:
                name = f"m-{code}"
                row = current.get((code, None))
                if scale.kind == "grade":
                    self.fields[name] = forms.ChoiceField(
                        label=scale.label,
                        required=False,
                        choices=_choices(rules.grade_choices(code, gais_reversed=gais_reversed)),
                    )
                    if row is not None:
                        self.initial.setdefault(name, str(int(row.value)))
                else:
                    self.fields[name] = forms.CharField(
                        label=f"{scale.label} ({scale.unit_label})",
                        required=False,
                        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
                    )
                    if row is not None:
                        self.initial.setdefault(name, f"{row.value.normalize():f}")
                group.values.append(name)
                self._slots.append(_Slot(code, name))
            self.groups.append(group)

    def _add_new_landmark(self, scale: rules.Scale, group: FieldGroup) -> None:
        code = scale.code
        point, direction, distance, side = rules.DEFAULT_LANDMARKS[code]
        name = f"m-{code}-new"
        self.fields[name] = forms.CharField(
            label=_("%(name)s at a new landmark (%(unit)s)")
            % {"name": scale.label, "unit": scale.unit_label},
            required=False,
            widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        )
        prefix = f"lm-{code}"
        self.fields[f"{prefix}-fixed_point"] = forms.ChoiceField(
            label=_("Fixed point"),
            choices=[(k, _(v)) for k, v in rules.FIXED_POINTS.items()],
            initial=point,
            required=False,
        )
        self.fields[f"{prefix}-direction"] = forms.ChoiceField(
            label=_("Where"),
            choices=[(k, _(v)) for k, v in rules.DIRECTIONS.items()],
            initial=direction,
            required=False,
        )
        self.fields[f"{prefix}-distance_cm"] = forms.CharField(
            label=_("Distance (cm)"),
            initial=f"{distance.normalize():f}",
            required=False,
            widget=forms.TextInput(attrs={"inputmode": "decimal"}),
        )
        self.fields[f"{prefix}-side"] = forms.ChoiceField(
            label=_("Side"), choices=[(k, _(v)) for k, v in rules.SIDES.items()], initial=side, required=False
        )
        group.values.append(name)
        group.landmark.extend(
            f"{prefix}-{part}" for part in ("fixed_point", "direction", "distance_cm", "side")
        )
        self._slots.append(_Slot(code, name, new_landmark=True))

    def group_rows(self) -> list[tuple[FieldGroup, list[forms.BoundField], list[forms.BoundField]]]:
        return [
            (group, [self[name] for name in group.values], [self[name] for name in group.landmark])
            for group in self.groups
        ]

    def measurements(self) -> tuple[list[MeasurementIn], list[_Slot]]:
        """What was filled in, and which slot each entry came from (to put errors back on its field)."""
        data = self.cleaned_data
        entries: list[MeasurementIn] = []
        slots: list[_Slot] = []
        for slot in self._slots:
            if slot.item_fields:
                values = [data.get(name, "") for name in slot.item_fields]
                if all(value in ("", None) for value in values):
                    continue
                entries.append(MeasurementIn(slot.code, items=[value or None for value in values]))
            else:
                raw = data.get(slot.value_field, "")
                if raw in ("", None):
                    continue
                landmark = None
                if slot.new_landmark:
                    prefix = f"lm-{slot.code}"
                    landmark = LandmarkIn(
                        fixed_point=data.get(f"{prefix}-fixed_point", ""),
                        direction=data.get(f"{prefix}-direction", ""),
                        distance_cm=data.get(f"{prefix}-distance_cm", ""),
                        side=data.get(f"{prefix}-side", "") or "",
                    )
                entries.append(
                    MeasurementIn(slot.code, value=raw, landmark=landmark, landmark_id=slot.landmark_id)
                )
            slots.append(slot)
        return entries, slots

    def apply_errors(self, error: ValidationError, slots: Sequence[_Slot]) -> None:
        """Put the service's errors (``measurements.3.value``, ``taken_on``…) back on the fields."""
        for key, messages in error.message_dict.items():
            target: str | None = None
            parts = key.split(".")
            if (
                parts[0] == "measurements"
                and len(parts) >= 3
                and parts[1].isdigit()
                and int(parts[1]) < len(slots)
            ):
                slot = slots[int(parts[1])]
                if parts[2] == "landmark" and len(parts) == 4 and slot.new_landmark:
                    target = f"lm-{slot.code}-{parts[3]}"
                else:
                    target = slot.value_field or (slot.item_fields[0] if slot.item_fields else None)
            elif key in self.fields:
                target = key
            for message in messages:
                self.add_error(target if target in self.fields else None, message)


def _rater_help(scale: rules.Scale) -> str:
    if scale.rater == "patient":
        return str(_("Rated by the patient."))
    if scale.rates_change:
        return str(_("Rates the change since the baseline."))
    return ""


class PhotoForm(forms.Form):
    view = forms.ChoiceField(label=_("View"))
    image = forms.FileField(
        label=_("Photo"),
        widget=forms.ClearableFileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )

    def __init__(self, *args: Any, views: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["view"].choices = [(code, rules.view_label(code)) for code in views]  # type: ignore[attr-defined]


class SettingsForm(forms.Form):
    gais_reversed = forms.BooleanField(
        label=_("Record GAIS reversed (5 = very much improved)"),
        required=False,
        help_text=_(
            "Every score keeps the version it was recorded with; comparisons use the published order."
        ),
    )
    record_improvement = forms.BooleanField(
        label=_("When a measurement shows improvement, record it on the plan (intervals may taper)"),
        required=False,
    )


class ConsentForm(forms.Form):
    given = forms.BooleanField(label=_("Photos may appear in my printed progress report"), required=False)


def decimal_text(value: Decimal) -> str:
    return f"{value.normalize():f}"

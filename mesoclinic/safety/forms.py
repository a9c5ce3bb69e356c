"""Forms of the side-effect pages: they parse and give field messages; the rules are in the services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mesoclinic.safety import rules, services
from mesoclinic.safety.models import SafetySettings
from mesoclinic.treatments.models import BodyArea, TreatmentSession

PHOTO_ACCEPT = "image/jpeg,image/png,image/webp"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


def _choices(table: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, _(label)) for code, label in table.items()]


def area_choices(areas: Sequence[BodyArea]) -> list[tuple[str, str]]:
    return [("", _("Not at one area"))] + [(area.code, _(area.label)) for area in areas]


def session_choices(sessions: Sequence[TreatmentSession]) -> list[tuple[str, str]]:
    return [("", _("The most recent session before the onset"))] + [
        (
            str(session.pk),
            _("%(date)s — %(protocol)s, session %(number)d")
            % {
                "date": formats.date_format(session.session_date, "DATE_FORMAT"),
                "protocol": session.plan.protocol_version.protocol.name,
                "number": session.number,
            },
        )
        for session in sessions
    ]


class EventForm(forms.Form):
    """What staff record (``staff``) or what a patient reports about themself."""

    kind = forms.ChoiceField(label=gettext_lazy("Side effect"))
    other_kind = forms.CharField(label=gettext_lazy("If other: what"), max_length=100, required=False)
    area = forms.ChoiceField(label=gettext_lazy("Where"), required=False)
    severity = forms.ChoiceField(label=gettext_lazy("How bad"), initial="mild")
    onset_on = forms.DateField(label=gettext_lazy("Since"), widget=DateInput())
    resolved_on = forms.DateField(label=gettext_lazy("Gone on"), required=False, widget=DateInput())
    description = forms.CharField(
        label=gettext_lazy("What happened"),
        required=False,
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photo = forms.FileField(
        label=gettext_lazy("Photo (optional)"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": PHOTO_ACCEPT}),
    )
    # Staff only.
    session = forms.ChoiceField(label=gettext_lazy("After the session"), required=False)
    serious_criteria = forms.MultipleChoiceField(
        label=gettext_lazy("Serious because"), required=False, widget=forms.CheckboxSelectMultiple
    )
    outcome = forms.ChoiceField(label=gettext_lazy("Outcome"), required=False)
    actions = forms.MultipleChoiceField(
        label=gettext_lazy("Actions taken"), required=False, widget=forms.CheckboxSelectMultiple
    )
    actions_note = forms.CharField(label=gettext_lazy("Actions, in words"), max_length=500, required=False)
    clinical_note = forms.CharField(
        label=gettext_lazy("Clinical note"),
        required=False,
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    STAFF_ONLY = ("session", "serious_criteria", "outcome", "actions", "actions_note", "clinical_note")

    def __init__(
        self,
        *args: Any,
        areas: Sequence[BodyArea],
        sessions: Sequence[TreatmentSession] = (),
        staff: bool = True,
        photo: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.staff = staff
        self._choose("kind", [(code, _(kind.label)) for code, kind in rules.KINDS.items()])
        self._choose("area", area_choices(areas))
        self._choose("severity", _choices(rules.SEVERITIES))
        self._choose("session", session_choices(sessions))
        self._choose("serious_criteria", _choices(rules.SERIOUS_CRITERIA))
        self._choose("outcome", [("", _("From the dates"))] + _choices(rules.OUTCOMES))
        self._choose("actions", _choices(rules.ACTIONS))
        if not staff:
            for name in self.STAFF_ONLY:
                del self.fields[name]
        if not photo:
            del self.fields["photo"]

    def _choose(self, name: str, choices: list[tuple[str, str]]) -> None:
        cast(forms.ChoiceField, self.fields[name]).choices = choices

    def event_in(self) -> services.EventIn:
        data = self.cleaned_data
        session = data.get("session") or ""
        return services.EventIn(
            kind=data["kind"],
            onset_on=data["onset_on"],
            severity=data["severity"],
            area=data.get("area") or "",
            other_kind=data.get("other_kind") or "",
            serious_criteria=tuple(data.get("serious_criteria") or ()),
            resolved_on=data.get("resolved_on"),
            outcome=data.get("outcome") or "",
            actions=tuple(data.get("actions") or ()),
            actions_note=data.get("actions_note") or "",
            description=data.get("description") or "",
            clinical_note=data.get("clinical_note") or "",
            session_id=int(session) if session else None,
        )

    def photo_in(self) -> services.PhotoIn | None:
        upload = self.cleaned_data.get("photo")
        if not upload:
            return None
        return services.PhotoIn(upload.read(services.MAX_PHOTO_BYTES + 1), upload.name or "")

    def clean_photo(self) -> Any:
        upload = self.cleaned_data.get("photo")
        if upload and upload.size is not None and upload.size > services.MAX_PHOTO_BYTES:
            raise forms.ValidationError(
                _("The picture is too large: at most %(size)d MB.")
                % {"size": services.MAX_PHOTO_BYTES // (1024 * 1024)}
            )
        return upload


class PhotoForm(forms.Form):
    photo = forms.FileField(
        label=gettext_lazy("Photo"), widget=forms.ClearableFileInput(attrs={"accept": PHOTO_ACCEPT})
    )

    def clean_photo(self) -> Any:
        upload = self.cleaned_data["photo"]
        if upload.size is not None and upload.size > services.MAX_PHOTO_BYTES:
            raise forms.ValidationError(
                _("The picture is too large: at most %(size)d MB.")
                % {"size": services.MAX_PHOTO_BYTES // (1024 * 1024)}
            )
        return upload

    def photo_in(self) -> services.PhotoIn:
        upload = self.cleaned_data["photo"]
        return services.PhotoIn(upload.read(services.MAX_PHOTO_BYTES + 1), upload.name or "")


class NoteForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class RetractForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why it was entered in error"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReportForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), required=False, widget=DateInput())
    end = forms.DateField(label=gettext_lazy("To"), required=False, widget=DateInput())
    kind = forms.ChoiceField(label=gettext_lazy("Side effect"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["kind"]).choices = [("", _("Any side effect"))] + [
            (code, _(kind.label)) for code, kind in rules.KINDS.items()
        ]


class SettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = SafetySettings
        fields = [
            "signal_window_days",
            "signal_min_infections",
            "signal_alpha",
            "baseline_floor_per_1000",
            "small_sample_sessions",
        ]

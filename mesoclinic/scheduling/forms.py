"""Forms of the scheduling pages. They parse; the services decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, time
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from mesoclinic.accounts.models import User
from mesoclinic.clinics.models import Room
from mesoclinic.scheduling.models import Appointment, ContactPreference, Kind
from mesoclinic.scheduling.services import HoursIn, When
from mesoclinic.treatments.models import TreatmentPlan

FOLD_CHOICES = [
    ("", _("(only when the clocks go back)")),
    ("0", _("The first time (before the clocks go back)")),
    ("1", _("The second time (after the clocks go back)")),
]
WEEKDAYS = [
    _("Monday"),
    _("Tuesday"),
    _("Wednesday"),
    _("Thursday"),
    _("Friday"),
    _("Saturday"),
    _("Sunday"),
]


def _name(user: User) -> str:
    return user.get_full_name() or user.get_username()


class DateInput(forms.DateInput):
    input_type = "date"


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", attrs={"step": 300, **kwargs.get("attrs", {})})


class WhenFields(forms.Form):
    day = forms.DateField(label=_("Date"), widget=DateInput)
    clock = forms.TimeField(label=_("Time (clinic time)"), widget=TimeInput())
    fold = forms.ChoiceField(label=_("If that time happens twice"), choices=FOLD_CHOICES, required=False)

    def when(self) -> When:
        data = self.cleaned_data
        fold = data.get("fold")
        return When(day=data["day"], clock=data["clock"], fold=int(fold) if fold in ("0", "1") else None)


class BookForm(WhenFields):
    kind = forms.ChoiceField(label=_("Type"), choices=Kind.choices)
    plan = forms.TypedChoiceField(label=_("Treatment plan"), coerce=int, required=False, empty_value=None)
    practitioner = forms.TypedChoiceField(label=_("Practitioner"), coerce=int)
    room = forms.TypedChoiceField(label=_("Room"), coerce=int, required=False, empty_value=None)
    note = forms.CharField(label=_("Desk note (not clinical)"), max_length=300, required=False)

    field_order = ["kind", "plan", "practitioner", "room", "day", "clock", "fold", "note"]

    def __init__(
        self,
        *args: Any,
        practitioners: Sequence[User],
        rooms: Sequence[Room],
        plans: Sequence[TreatmentPlan],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["practitioner"]).choices = [
            (u.pk, _name(u)) for u in practitioners
        ]
        cast(forms.TypedChoiceField, self.fields["room"]).choices = [("", _("No room"))] + [
            (r.pk, r.name) for r in rooms
        ]
        cast(forms.TypedChoiceField, self.fields["plan"]).choices = [("", _("No plan"))] + [
            (p.pk, f"{p.protocol_version.protocol.name} ({p.get_status_display()})") for p in plans
        ]


class MoveForm(WhenFields):
    practitioner = forms.TypedChoiceField(label=_("Practitioner"), coerce=int)
    room = forms.TypedChoiceField(label=_("Room"), coerce=int, required=False, empty_value=None)

    def __init__(
        self, *args: Any, practitioners: Sequence[User], rooms: Sequence[Room], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["practitioner"]).choices = [
            (u.pk, _name(u)) for u in practitioners
        ]
        cast(forms.TypedChoiceField, self.fields["room"]).choices = [("", _("No room"))] + [
            (r.pk, r.name) for r in rooms
        ]


class CancelForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=Appointment.CancelReason.choices)
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


class NoShowForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


class PreferenceForm(forms.Form):
    channel = forms.ChoiceField(label=_("Send messages by"), choices=ContactPreference.Channel.choices)
    reminders = forms.BooleanField(label=_("Appointment confirmations and reminders"), required=False)
    follow_up = forms.BooleanField(label=_("Aftercare and follow-up messages"), required=False)
    numbing_cream = forms.BooleanField(label=_("Remind me about the numbing cream option"), required=False)


class HoursForm(forms.Form):
    """Two spans a day (e.g. morning and afternoon), Monday to Sunday."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for day, label in enumerate(WEEKDAYS):
            for span in (1, 2):
                self.fields[f"d{day}_{span}_from"] = forms.TimeField(
                    label=f"{label} {span}: {_('from')}", required=False, widget=TimeInput()
                )
                self.fields[f"d{day}_{span}_to"] = forms.TimeField(
                    label=f"{label} {span}: {_('to')}", required=False, widget=TimeInput()
                )

    @staticmethod
    def initial_from(rows: Sequence[Any]) -> dict[str, time]:
        initial: dict[str, time] = {}
        spans: dict[int, int] = {}
        for row in rows:
            span = spans.get(row.weekday, 0) + 1
            spans[row.weekday] = span
            if span <= 2:
                initial[f"d{row.weekday}_{span}_from"] = row.starts
                initial[f"d{row.weekday}_{span}_to"] = row.ends
        return initial

    def rows(self) -> list[HoursIn]:
        data = self.cleaned_data
        rows: list[HoursIn] = []
        for day in range(7):
            for span in (1, 2):
                start, end = data.get(f"d{day}_{span}_from"), data.get(f"d{day}_{span}_to")
                if start is None and end is None:
                    continue
                if start is None or end is None:
                    self.add_error(f"d{day}_{span}_to", _("Give both times, or neither."))
                    continue
                rows.append(HoursIn(day, start, end))
        return rows

    def day_rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (
                str(label),
                [self[f"d{day}_{span}_{edge}"] for span in (1, 2) for edge in ("from", "to")],
            )
            for day, label in enumerate(WEEKDAYS)
        ]


class ExceptionForm(forms.Form):
    on = forms.DateField(label=_("Date"), widget=DateInput)
    starts = forms.TimeField(label=_("From (empty: the whole day)"), required=False, widget=TimeInput())
    ends = forms.TimeField(label=_("To"), required=False, widget=TimeInput())
    available = forms.BooleanField(label=_("Extra hours (not away)"), required=False)
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class ClosureForm(forms.Form):
    starts_on = forms.DateField(label=_("From"), widget=DateInput)
    ends_on = forms.DateField(label=_("To (inclusive)"), widget=DateInput)
    reason = forms.CharField(label=_("Reason"), max_length=200)


class SettingsForm(forms.Form):
    consultation_minutes = forms.IntegerField(label=_("Consultation (minutes)"), min_value=5, max_value=480)
    session_minutes = forms.IntegerField(label=_("Session (minutes)"), min_value=5, max_value=480)
    follow_up_minutes = forms.IntegerField(label=_("Follow-up (minutes)"), min_value=5, max_value=480)
    maintenance_minutes = forms.IntegerField(
        label=_("Maintenance session (minutes)"), min_value=5, max_value=480
    )
    slot_step_minutes = forms.IntegerField(label=_("Slot step (minutes)"), min_value=5, max_value=120)
    booking_horizon_days = forms.IntegerField(label=_("Booking horizon (days)"), min_value=7, max_value=730)
    portal_booking = forms.BooleanField(label=_("Patients book their sessions in the portal"), required=False)
    portal_notice_hours = forms.IntegerField(
        label=_("Portal bookings and changes at least this many hours ahead"), min_value=0, max_value=336
    )
    reminder_time = forms.TimeField(label=_("Reminders sent at (clinic time)"), widget=TimeInput())
    sms_sender = forms.CharField(label=_("SMS sender name"), max_length=11, required=False)


def series_picks_from(
    post: Mapping[str, Any], numbers: Sequence[int]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The sessions ticked on the series page (``pick`` = session numbers) with their date, time,
    practitioner, room and reason fields; problems by field name."""
    chosen = {str(value) for value in getattr(post, "getlist", lambda name: [post.get(name)])("pick")}
    picks: list[dict[str, Any]] = []
    problems: dict[str, str] = {}
    for number in numbers:
        if str(number) not in chosen:
            continue
        day_field = forms.DateField()
        clock_field = forms.TimeField()
        try:
            day: date = day_field.clean(post.get(f"date-{number}", ""))
            clock: time = clock_field.clean(post.get(f"time-{number}", ""))
            practitioner = int(post.get(f"practitioner-{number}", ""))
            room_raw = post.get(f"room-{number}", "")
            room = int(room_raw) if room_raw else None
        except (forms.ValidationError, ValueError):
            problems[f"date-{number}"] = str(_("Give a date, a time and a practitioner."))
            continue
        fold_raw = str(post.get(f"fold-{number}", ""))
        picks.append(
            {
                "number": number,
                "when": When(day=day, clock=clock, fold=int(fold_raw) if fold_raw in ("0", "1") else None),
                "practitioner_id": practitioner,
                "room_id": room,
                "reason": str(post.get(f"reason-{number}", ""))[:1000],
            }
        )
    return picks, problems

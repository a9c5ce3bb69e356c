"""Calendar, booking, series, check-in, settings, feed and portal pages.

Thin: every read and write goes through ``scheduling.services``, exactly as the API does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.clinic_context import current_clinic
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, can
from mesoclinic.clinics.models import Clinic, Device
from mesoclinic.lib.findings import Finding, FindingsRefused
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_get
from mesoclinic.scheduling import rules, services
from mesoclinic.scheduling.forms import (
    BookForm,
    CancelForm,
    ClosureForm,
    ExceptionForm,
    HoursForm,
    MoveForm,
    NoShowForm,
    PreferenceForm,
    SettingsForm,
    series_picks_from,
)
from mesoclinic.scheduling.models import (
    TREATMENT_KINDS,
    Appointment,
    ClinicClosure,
    Kind,
    WorkingException,
)
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.forms import acknowledgements_from
from mesoclinic.treatments.models import TreatmentPlan


def _clinic(request: HttpRequest, perm: Perm) -> Clinic:
    clinic = current_clinic(request)
    if clinic is None or not can(request.user, perm, clinic_id=clinic.pk):
        raise PermissionDenied
    return clinic


def _messages_of(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages_ in error.message_dict.values() for message in messages_]
    return list(error.messages)


def _apply(form: Any, error: ValidationError) -> None:
    names = {
        "time": "clock",
        "practitioner_id": "practitioner",
        "room_id": "room",
        "plan_id": "plan",
        "on": "on",
    }
    for name, field_messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
        target = names.get(name, name)
        for message in field_messages:
            form.add_error(target if target in form.fields else None, message)


def _rows(findings: list[Finding], acknowledgements: dict[str, str]) -> list[tuple[Finding, str]]:
    return [(finding, acknowledgements.get(finding.key, "")) for finding in findings]


def _int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 18:
        return None
    return int(value)


def _day(request: HttpRequest, clinic: Clinic) -> date:
    raw = request.GET.get("date", "")
    try:
        parsed = parse_date(raw) if raw else None
    except ValueError:
        parsed = None
    today = clinic.today()
    if parsed is None or abs((parsed - today).days) > 3650:
        return today
    return parsed


# --- the calendar -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """An appointment as the calendar shows it, its labels computed once (a week holds hundreds)."""

    pk: int
    status: str
    kind: str
    href: str
    starts: str  # clinic-local "H:i"
    ends: str
    patient: str
    detail: str  # type, series number, room, practitioner (week), status when not booked


@dataclass
class Cell:
    entries: list[Entry] = field(default_factory=list)
    rowspan: int = 1


@dataclass
class Row:
    label: str  # clinic-local "H:i"
    cells: list[Cell | None]  # None: covered by a cell above


def _entries(view: services.CalendarView, *, week: bool) -> tuple[dict[int, Entry], dict[date, list[Entry]]]:
    """Every appointment of the view as an entry (by id), and the entries of each clinic-local day in order.
    One timezone conversion, one label lookup and one URL per appointment, whatever the template does."""
    zone = view.clinic.zone
    kinds = {str(value): str(label) for value, label in Appointment._meta.get_field("kind").flatchoices}
    statuses = {str(value): str(label) for value, label in Appointment._meta.get_field("status").flatchoices}
    link = reverse("scheduling:appointment", args=[0]).removesuffix("0/")  # + the id and "/"
    by_id: dict[int, Entry] = {}
    by_day: dict[date, list[Entry]] = {day: [] for day in view.days}
    for appointment in view.appointments:
        starts = appointment.starts_at.astimezone(zone)
        kind = kinds.get(appointment.kind, appointment.kind)
        if appointment.series_number:
            planned = appointment.planned_sessions
            kind += f" {appointment.series_number}/{'' if planned is None else planned}"
        detail = [kind]
        if appointment.room_id is not None:
            detail.append(appointment.room_name)
        if week:
            detail.append(appointment.practitioner_name)
        if appointment.status != Appointment.Status.BOOKED:
            detail.append(statuses.get(appointment.status, appointment.status))
        entry = Entry(
            pk=appointment.id,
            status=appointment.status,
            kind=appointment.kind,
            href=f"{link}{appointment.id}/",
            starts=f"{starts:%H:%M}",
            ends=f"{appointment.ends_at.astimezone(zone):%H:%M}",
            patient=f"{appointment.family_name.upper()} {appointment.given_name}",
            detail=" · ".join(detail),
        )
        by_id[appointment.id] = entry
        by_day.setdefault(starts.date(), []).append(entry)
    return by_id, by_day


def _day_grid(
    view: services.CalendarView,
    columns: list[int],
    clinic: Clinic,
    step_minutes: int,
    entries: dict[int, Entry],
) -> list[Row]:
    """The day view: a row per step, a column per practitioner; an appointment's cell spans its rows (and
    takes in whatever else starts while it lasts, e.g. a booking over a no-show)."""
    zone = clinic.zone
    day = view.days[0]
    step = timedelta(minutes=step_minutes)
    first = min([rules.resolve(day, time(8), zone), *(a.starts_at for a in view.appointments)])
    local = first.astimezone(zone)
    first -= timedelta(
        minutes=local.minute % step_minutes, seconds=local.second, microseconds=local.microsecond
    )
    last = max([rules.resolve(day, time(19), zone), *(a.ends_at for a in view.appointments)])
    times: list[datetime] = []
    while first + step * len(times) < last and len(times) < 400:
        times.append(first + step * len(times))
    waiting = {
        pid: sorted((a for a in view.appointments if a.practitioner_id == pid), key=lambda a: a.starts_at)
        for pid in columns
    }
    covered_until = {pid: first for pid in columns}
    grid: list[Row] = []
    for at in times:
        cells: list[Cell | None] = []
        for pid in columns:
            if at < covered_until[pid]:
                cells.append(None)
                continue
            cell = Cell()
            end = at + step
            while waiting[pid] and waiting[pid][0].starts_at < end:
                appointment = waiting[pid].pop(0)
                cell.entries.append(entries[appointment.id])
                end = max(end, appointment.ends_at)
            rows = max(1, -(-int((end - at) / timedelta(minutes=1)) // step_minutes))
            cell.rowspan = min(rows, len(times) - len(grid))
            covered_until[pid] = at + step * cell.rowspan
            cells.append(cell)
        grid.append(Row(f"{at.astimezone(zone):%H:%M}", cells))
    return grid


@login_required
@never_cache
def calendar(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.SCHEDULE_VIEW)
    mode = "week" if request.GET.get("view") == "week" else "day"
    day = _day(request, clinic)
    if mode == "week":
        day = day - timedelta(days=day.weekday())
    practitioner_id = _int(request.GET.get("practitioner"))
    room_id = _int(request.GET.get("room"))
    try:
        view = services.calendar_view(
            caller=Caller.of(request),
            clinic=clinic,
            first_day=day,
            days=7 if mode == "week" else 1,
            practitioner_id=practitioner_id,
            room_id=room_id,
        )
    except ValidationError:
        return redirect(f"{reverse('scheduling:calendar')}?view={mode}&date={day.isoformat()}")
    columns = [u for u in view.practitioners if practitioner_id in (None, u.pk)]
    entries, by_day = _entries(view, week=mode == "week")
    grid: list[Row] = []
    if mode == "day":
        schedule = services.settings_for(clinic)
        step = 15 if schedule.slot_step_minutes < 15 else schedule.slot_step_minutes
        grid = _day_grid(view, [u.pk for u in columns], clinic, step, entries)
    span = timedelta(days=7 if mode == "week" else 1)
    return render(
        request,
        "scheduling/calendar.html",
        {
            "clinic": clinic,
            "mode": mode,
            "view": view,
            "day": day,
            "columns": columns,
            "grid": grid,
            "week": [(d, by_day[d], view.closures.get(d)) for d in view.days] if mode == "week" else [],
            "previous": (day - span).isoformat(),
            "next": (day + span).isoformat(),
            "today": clinic.today(),
            "can_book": can(request.user, Perm.APPOINTMENT_BOOK, clinic_id=clinic.pk),
            "can_manage": can(request.user, Perm.SCHEDULE_MANAGE, clinic_id=clinic.pk),
            "zone": clinic.zone,
        },
    )


# --- booking ------------------------------------------------------------------------------------------------


def _book_form(request: HttpRequest, clinic: Clinic, patient: Patient, data: Any = None) -> BookForm:
    plans = list(
        TreatmentPlan.objects.filter(patient=patient, status=TreatmentPlan.Status.ACTIVE).select_related(
            "protocol_version__protocol"
        )
    )
    plan_id = _int(request.GET.get("plan"))
    practitioners = services.clinic_practitioners(clinic)
    initial: dict[str, Any] = {
        "kind": request.GET.get("kind") or (Kind.SESSION if plans else Kind.CONSULTATION),
        "plan": plan_id if plan_id in {p.pk for p in plans} else (plans[0].pk if plans else None),
        "practitioner": _int(request.GET.get("practitioner"))
        or (practitioners[0].pk if practitioners else None),
        "room": _int(request.GET.get("room")),
    }
    start = parse_datetime(request.GET.get("start", "") or "")
    if start is not None and timezone.is_aware(start):
        when = services.When.from_instant(start, clinic.zone)
        initial.update({"day": when.day, "clock": when.clock, "fold": str(when.fold) if when.fold else ""})
    return BookForm(
        data, practitioners=practitioners, rooms=services.clinic_rooms(clinic), plans=plans, initial=initial
    )


@login_required
@never_cache
def book(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    """Book one appointment for a patient (``?patient=``), with the free slots of the chosen day."""
    clinic = _clinic(request, Perm.APPOINTMENT_BOOK)
    caller = Caller.of(request)
    patient_id = _int(request.GET.get("patient") or request.POST.get("patient"))
    if patient_id is None:
        raise Http404(_("Not found."))
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.APPOINTMENT_BOOK, audit=False)
    if patient.clinic_id != clinic.pk:
        raise Http404(_("Not found."))
    form = _book_form(request, clinic, patient, request.POST or None)
    acknowledgements = acknowledgements_from(request.POST)
    findings: list[Finding] = []
    refusal = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            appointment = services.appointment_book(
                caller=caller,
                clinic=clinic,
                patient=patient,
                data=services.BookIn(
                    kind=data["kind"],
                    practitioner_id=data["practitioner"],
                    when=form.when(),
                    room_id=data["room"],
                    plan_id=data["plan"] if data["kind"] in TREATMENT_KINDS else None,
                    note=data["note"],
                    acknowledgements=acknowledgements,
                ),
            )
        except FindingsRefused as refused:
            findings, refusal = refused.findings, refused.message
        except ValidationError as error:
            _apply(form, error)
        else:
            messages.success(request, _("Booked. The confirmation is on its way to the patient."))
            return redirect("scheduling:appointment", appointment_id=appointment.pk)
    return render(
        request,
        "scheduling/book.html",
        {
            "patient": patient,
            "form": form,
            "finding_rows": _rows(findings, acknowledgements),
            "refusal": refusal,
            "zone": clinic.zone,
        },
        status=422 if (refusal or form.errors) else 200,
    )


@login_required
@never_cache
def availability(request: HttpRequest) -> HttpResponse:
    """Free slots (htmx fragment of the booking page): ``?kind=&date=&practitioner=&room=&patient=``."""
    clinic = _clinic(request, Perm.SCHEDULE_VIEW)
    caller = Caller.of(request)
    patient = None
    patient_id = _int(request.GET.get("patient"))
    if patient_id is not None:
        patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.APPOINTMENT_BOOK, audit=False)
        if patient.clinic_id != clinic.pk:
            raise Http404(_("Not found."))
    kind = request.GET.get("kind") or Kind.SESSION
    try:
        days = services.availability(
            caller=caller,
            clinic=clinic,
            kind=kind,
            first_day=_day(request, clinic),
            days=7,
            practitioner_id=_int(request.GET.get("practitioner")),
            room_id=_int(request.GET.get("room")),
            patient=patient,
            limit_per_day=12,
        )
        problem = ""
    except ValidationError as error:
        days, problem = [], " ".join(_messages_of(error))
    return render(
        request,
        "scheduling/_availability.html",
        {"days": days, "problem": problem, "patient": patient, "kind": kind, "zone": clinic.zone},
        status=422 if problem else 200,
    )


# --- one appointment ----------------------------------------------------------------------------------------


@login_required
@never_cache
def appointment(request: HttpRequest, appointment_id: int) -> HttpResponse:
    caller = Caller.of(request)
    found = services.appointment_get(caller=caller, appointment_id=appointment_id)
    clinic_id = found.clinic_id
    staff = services.is_staff(caller, clinic_id, Perm.APPOINTMENT_VIEW)
    log = (
        list(found.messages.order_by("due_at", "id"))
        if can(request.user, Perm.MESSAGE_VIEW, clinic_id=clinic_id, patient=found.patient)
        else []
    )
    return render(
        request,
        "scheduling/appointment.html",
        {
            "appointment": found,
            "zone": found.clinic.zone,
            "staff": staff,
            "can_book": staff and can(request.user, Perm.APPOINTMENT_BOOK, clinic_id=clinic_id),
            "can_attend": staff and can(request.user, Perm.APPOINTMENT_ATTEND, clinic_id=clinic_id),
            "cancel_form": CancelForm(),
            "no_show_form": NoShowForm(),
            "log": log,
            "started": found.starts_at <= timezone.now(),
            "today": rules.local_date(timezone.now(), found.clinic.zone)
            == rules.local_date(found.starts_at, found.clinic.zone),
        },
    )


@login_required
@never_cache
def check_in(request: HttpRequest, appointment_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    found = services.appointment_get(
        caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_ATTEND
    )
    if not services.is_staff(caller, found.clinic_id, Perm.APPOINTMENT_ATTEND):
        raise PermissionDenied
    acknowledgements = acknowledgements_from(request.POST)
    refusal = ""
    devices = list(Device.objects.filter(clinic_id=found.clinic_id, is_active=True))
    if request.method == "POST":
        device_id = _int(request.POST.get("device"))
        try:
            services.appointment_check_in(
                caller=caller,
                appointment=found,
                acknowledgements=acknowledgements,
                device_id=device_id if device_id in {d.pk for d in devices} else None,
            )
        except FindingsRefused as refused:
            refusal = refused.message
        except ValidationError as error:
            refusal = " ".join(_messages_of(error))
        else:
            found.refresh_from_db()
            messages.success(request, _("Checked in."))
            if found.treatment_session_id and can(
                request.user, Perm.SESSION_CHART, clinic_id=found.clinic_id
            ):
                return redirect("treatments:chart", session_id=found.treatment_session_id)
            return redirect("scheduling:appointment", appointment_id=found.pk)
    try:
        findings = services.gate_preview(caller=caller, appointment=found)
    except ValidationError as error:
        findings, refusal = [], refusal or " ".join(_messages_of(error))
    return render(
        request,
        "scheduling/check_in.html",
        {
            "appointment": found,
            "zone": found.clinic.zone,
            "finding_rows": _rows(findings, acknowledgements),
            "blocked": any(f.severity == "block" for f in findings),
            "refusal": refusal,
            "devices": devices,
        },
        status=422 if refusal else 200,
    )


def _end(request: HttpRequest, appointment_id: int, action: str) -> HttpResponseBase:
    caller = Caller.of(request)
    perm = Perm.APPOINTMENT_ATTEND if action == "no-show" else Perm.APPOINTMENT_BOOK
    found = services.appointment_get(caller=caller, appointment_id=appointment_id, perm=perm, audit=False)
    portal = not services.is_staff(caller, found.clinic_id, Perm.APPOINTMENT_VIEW)
    try:
        if action == "no-show":
            form = NoShowForm(request.POST)
            form.is_valid()
            services.appointment_no_show(
                caller=caller, appointment=found, note=form.cleaned_data.get("note", "")
            )
            messages.success(request, _("Recorded as a no-show; the series proposes the session again."))
        else:
            cancel = CancelForm(request.POST if not portal else {"reason": Appointment.CancelReason.PATIENT})
            if not cancel.is_valid():
                raise ValidationError({"reason": [_("Choose a reason.")]})
            services.appointment_cancel(
                caller=caller,
                appointment=found,
                reason=cancel.cleaned_data["reason"],
                note=cancel.cleaned_data["note"],
            )
            messages.success(request, _("Cancelled."))
    except ValidationError as error:
        for message in _messages_of(error):
            messages.error(request, message)
    if portal:
        return redirect("scheduling:portal")
    return redirect("scheduling:appointment", appointment_id=found.pk)


@login_required
@require_POST
def cancel(request: HttpRequest, appointment_id: int) -> HttpResponseBase:
    return _end(request, appointment_id, "cancel")


@login_required
@require_POST
def no_show(request: HttpRequest, appointment_id: int) -> HttpResponseBase:
    return _end(request, appointment_id, "no-show")


@login_required
@never_cache
def move(request: HttpRequest, appointment_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    found = services.appointment_get(caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_BOOK)
    if not services.is_staff(caller, found.clinic_id):
        return redirect("scheduling:portal_move", appointment_id=found.pk)
    clinic = found.clinic
    when = services.When.from_instant(found.starts_at, clinic.zone)
    form = MoveForm(
        request.POST or None,
        practitioners=services.clinic_practitioners(clinic),
        rooms=services.clinic_rooms(clinic),
        initial={
            "day": when.day,
            "clock": when.clock,
            "practitioner": found.practitioner_id,
            "room": found.room_id,
        },
    )
    acknowledgements = acknowledgements_from(request.POST)
    findings: list[Finding] = []
    refusal = ""
    if request.method == "POST" and form.is_valid():
        try:
            new = services.appointment_move(
                caller=caller,
                appointment=found,
                when=form.when(),
                practitioner_id=form.cleaned_data["practitioner"],
                room_id=form.cleaned_data["room"],
                acknowledgements=acknowledgements,
            )
        except FindingsRefused as refused:
            findings, refusal = refused.findings, refused.message
        except ValidationError as error:
            _apply(form, error)
        else:
            messages.success(request, _("Moved. The patient is told the new time."))
            return redirect("scheduling:appointment", appointment_id=new.pk)
    return render(
        request,
        "scheduling/move.html",
        {
            "appointment": found,
            "form": form,
            "finding_rows": _rows(findings, acknowledgements),
            "refusal": refusal,
            "zone": clinic.zone,
        },
        status=422 if (refusal or form.errors) else 200,
    )


@login_required
def appointment_ics(request: HttpRequest, appointment_id: int) -> HttpResponse:
    caller = Caller.of(request)
    found = services.appointment_get(caller=caller, appointment_id=appointment_id, audit=False)
    response = HttpResponse(
        services.appointment_ics(caller=caller, appointment=found), content_type="text/calendar"
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{found.pk}.ics"'
    return response


# --- the series ---------------------------------------------------------------------------------------------


def _proposal_rows(view: services.SeriesView) -> list[dict[str, Any]]:
    rows = []
    for proposal in view.proposals:
        slot = proposal.slot
        when = services.When.from_instant(slot.starts_at, view.zone) if slot else None
        rows.append(
            {
                "proposal": proposal,
                "when": when,
                "outside": view.outside(proposal),
                "booking": view.bookings.get(proposal.number),
                "practitioner": view.practitioners.get(slot.practitioner_id) if slot else None,
                "room": view.rooms.get(slot.room_id) if slot and slot.room_id else None,
            }
        )
    return rows


@login_required
@never_cache
def series(request: HttpRequest, plan_id: int) -> HttpResponse | HttpResponseBase:
    """The plan's remaining sessions: windows, bookings, proposals; staff accept or adjust and book them."""
    caller = Caller.of(request)
    plan = treatments.plan_get(caller=caller, plan_id=plan_id, audit=False)
    if not services.is_staff(caller, plan.clinic_id, Perm.APPOINTMENT_VIEW):
        return redirect("scheduling:portal")
    practitioner_id = _int(request.GET.get("practitioner"))
    refusal = ""
    findings: list[Finding] = []
    problems: dict[str, str] = {}
    if request.method == "POST":
        view = services.series_view(caller=caller, plan=plan, audit=False)
        picks, problems = series_picks_from(request.POST, [p.number for p in view.proposals])
        if not problems:
            try:
                booked = services.series_book(
                    caller=caller, plan=plan, picks=[services.SeriesPick(**pick) for pick in picks]
                )
            except FindingsRefused as refused:
                findings, refusal = refused.findings, refused.message
            except ValidationError as error:
                refusal = " ".join(_messages_of(error))
            else:
                messages.success(
                    request, _("%(count)d session(s) booked; the patient is told.") % {"count": len(booked)}
                )
                return redirect("scheduling:series", plan_id=plan.pk)
        else:
            refusal = " ".join(problems.values())
    try:
        view = services.series_view(caller=caller, plan=plan, practitioner_id=practitioner_id)
    except ValidationError:
        view = services.series_view(caller=caller, plan=plan)
    return render(
        request,
        "scheduling/series.html",
        {
            "plan": plan,
            "view": view,
            "rows": _proposal_rows(view),
            "zone": plan.clinic.zone,
            "practitioners": services.clinic_practitioners(plan.clinic),
            "rooms": list(view.rooms.values()),  # the clinic's active rooms, in order
            "can_book": can(request.user, Perm.APPOINTMENT_BOOK, clinic_id=plan.clinic_id),
            "finding_rows": _rows(findings, {}),
            "refusal": refusal,
            "post": request.POST if request.method == "POST" else None,
        },
        status=422 if refusal else 200,
    )


# --- the patient page's panel, preferences ----------------------------------------------------------------


@login_required
@never_cache
def panel(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient page's "Appointments" section (loaded by htmx)."""
    caller = Caller.of(request)
    patient = patient_get(caller=caller, patient_id=patient_id, perm=Perm.APPOINTMENT_VIEW, audit=False)
    upcoming = services.appointments_of(caller=caller, patient=patient, upcoming_only=True, limit=20)
    can_messages = can(request.user, Perm.MESSAGE_VIEW, clinic_id=patient.clinic_id, patient=patient)
    plans = list(
        TreatmentPlan.objects.filter(patient=patient, status=TreatmentPlan.Status.ACTIVE).select_related(
            "protocol_version__protocol"
        )
    )
    return render(
        request,
        "scheduling/_panel.html",
        {
            "patient": patient,
            "upcoming": upcoming,
            "plans": plans,
            "log": services.messages_of(caller=caller, patient=patient, limit=10) if can_messages else [],
            "preference": services.preference_of(patient),
            "zone": patient.clinic.zone,
            "can_book": can(request.user, Perm.APPOINTMENT_BOOK, clinic_id=patient.clinic_id),
            "can_edit_preferences": can(
                request.user, Perm.CONTACT_PREFERENCE_EDIT, clinic_id=patient.clinic_id
            ),
        },
    )


def _preferences(request: HttpRequest, patient: Patient, back: str) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    current = services.preference_get(caller=caller, patient=patient)
    form = PreferenceForm(
        request.POST or None,
        initial={
            "channel": current.channel,
            "reminders": current.reminders,
            "follow_up": current.follow_up,
            "numbing_cream": current.numbing_cream,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.preference_update(caller=caller, patient=patient, **form.cleaned_data)
        except ValidationError as error:
            _apply(form, error)
        else:
            messages.success(request, _("Saved: messages not yet sent follow these choices."))
            return redirect(back)
    return render(
        request,
        "scheduling/preferences.html",
        {"patient": patient, "form": form, "back": back},
        status=422 if form.errors else 200,
    )


@login_required
@never_cache
def preferences(request: HttpRequest, patient_id: int) -> HttpResponse | HttpResponseBase:
    caller = Caller.of(request)
    patient = patient_get(
        caller=caller, patient_id=patient_id, perm=Perm.CONTACT_PREFERENCE_EDIT, audit=False
    )
    return _preferences(request, patient, reverse("patients:detail", args=[patient.pk]))


# --- hours, closures, settings, messages, feed --------------------------------------------------------------


@login_required
@never_cache
def hours(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    clinic = _clinic(request, Perm.SCHEDULE_MANAGE)
    caller = Caller.of(request)
    practitioners = services.clinic_practitioners(clinic)
    if not practitioners:
        return render(request, "scheduling/hours.html", {"practitioners": [], "clinic": clinic})
    chosen = _int(request.GET.get("practitioner") or request.POST.get("practitioner"))
    practitioner = next((u for u in practitioners if u.pk == chosen), practitioners[0])
    action = request.POST.get("action", "")
    hours_form = HoursForm(
        request.POST if action == "hours" else None,
        initial=HoursForm.initial_from(services.hours_of(clinic, practitioner.pk)),
    )
    exception_form = ExceptionForm(request.POST if action == "exception" else None)
    back = f"{reverse('scheduling:hours')}?practitioner={practitioner.pk}"
    try:
        if action == "hours" and hours_form.is_valid():
            rows = hours_form.rows()
            if not hours_form.errors:
                services.working_hours_set(
                    caller=caller, clinic=clinic, practitioner_id=practitioner.pk, rows=rows
                )
                messages.success(request, _("Working hours saved."))
                return redirect(back)
        elif action == "exception" and exception_form.is_valid():
            services.exception_add(
                caller=caller, clinic=clinic, practitioner_id=practitioner.pk, **exception_form.cleaned_data
            )
            messages.success(request, _("Saved."))
            return redirect(back)
        elif action == "remove-exception":
            services.exception_remove(
                caller=caller, clinic=clinic, exception_id=_int(request.POST.get("exception")) or 0
            )
            return redirect(back)
    except ValidationError as error:
        _apply(hours_form if action == "hours" else exception_form, error)
    exceptions = WorkingException.objects.filter(
        clinic=clinic, practitioner=practitioner, on__gte=clinic.today() - timedelta(days=1)
    ).order_by("on", "starts")
    return render(
        request,
        "scheduling/hours.html",
        {
            "clinic": clinic,
            "practitioners": practitioners,
            "practitioner": practitioner,
            "hours_form": hours_form,
            "exception_form": exception_form,
            "exceptions": exceptions,
        },
        status=422 if (hours_form.errors or exception_form.errors) else 200,
    )


@login_required
@never_cache
def settings_page(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    clinic = _clinic(request, Perm.SCHEDULE_MANAGE)
    caller = Caller.of(request)
    current = services.settings_for(clinic)
    action = request.POST.get("action", "")
    form = SettingsForm(
        request.POST if action == "settings" else None,
        initial={name: getattr(current, name) for name in services.SETTINGS_FIELDS},
    )
    closure_form = ClosureForm(request.POST if action == "closure" else None)
    try:
        if action == "settings" and form.is_valid():
            services.settings_update(caller=caller, clinic=clinic, data=form.cleaned_data)
            messages.success(request, _("Saved."))
            return redirect("scheduling:settings")
        if action == "closure" and closure_form.is_valid():
            services.closure_add(caller=caller, clinic=clinic, **closure_form.cleaned_data)
            messages.success(request, _("Closure saved."))
            return redirect("scheduling:settings")
        if action == "remove-closure":
            services.closure_remove(
                caller=caller, clinic=clinic, closure_id=_int(request.POST.get("closure")) or 0
            )
            return redirect("scheduling:settings")
    except ValidationError as error:
        _apply(form if action == "settings" else closure_form, error)
    return render(
        request,
        "scheduling/settings.html",
        {
            "clinic": clinic,
            "form": form,
            "closure_form": closure_form,
            "closures": ClinicClosure.objects.filter(clinic=clinic, ends_on__gte=clinic.today()),
            "to_move": services.booked_on_closures(clinic),
            "zone": clinic.zone,
        },
        status=422 if (form.errors or closure_form.errors) else 200,
    )


@login_required
@never_cache
def outbox(request: HttpRequest) -> HttpResponse:
    clinic = _clinic(request, Perm.MESSAGE_VIEW)
    status = request.GET.get("status") or None
    try:
        rows = services.outbox(caller=Caller.of(request), clinic=clinic, status=status)
    except ValidationError:
        rows, status = services.outbox(caller=Caller.of(request), clinic=clinic), None
    return render(request, "scheduling/outbox.html", {"rows": rows, "status": status, "zone": clinic.zone})


@login_required
@never_cache
def feed(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    """The practitioner's private calendar feed: make a new URL (shown once) or revoke it."""
    clinic = _clinic(request, Perm.CALENDAR_FEED)
    caller = Caller.of(request)
    url = ""
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            services.feed_revoke(caller=caller, clinic=clinic)
            messages.success(request, _("The feed URL no longer works."))
            return redirect("scheduling:feed")
        _feed, token = services.feed_create(caller=caller, clinic=clinic)
        url = request.build_absolute_uri(reverse("scheduling:feed_ics", args=[token]))
    return render(
        request,
        "scheduling/feed.html",
        {"active": services.feed_active(caller=caller, clinic=clinic), "url": url, "clinic": clinic},
    )


@never_cache
def feed_ics(request: HttpRequest, token: str) -> HttpResponse:
    """The feed itself, for calendar apps: no session, the token is the credential."""
    data = services.feed_ics(token=token)
    if data is None:
        raise Http404(_("Not found."))
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="mesoclinic.ics"'
    return response


# --- the portal ---------------------------------------------------------------------------------------------


def _own_patient(request: HttpRequest) -> Patient:
    patient = Patient.objects.select_related("clinic").filter(user_id=cast(User, request.user).pk).first()
    if patient is None:
        raise Http404(_("Not found."))
    return patient_get(
        caller=Caller.of(request), patient_id=patient.pk, perm=Perm.APPOINTMENT_VIEW, audit=False
    )


@login_required
@never_cache
def portal(request: HttpRequest) -> HttpResponse:
    """The patient's appointments and series: book the next sessions into allowed slots, move or cancel."""
    patient = _own_patient(request)
    caller = Caller.of(request)
    schedule = services.settings_for(patient.clinic)
    plans = []
    for plan in TreatmentPlan.objects.filter(
        patient=patient, status=TreatmentPlan.Status.ACTIVE
    ).select_related("protocol_version__protocol", "clinic", "patient__clinic"):
        view = services.series_view(caller=caller, plan=plan, audit=False)
        next_open = next((p for p in view.proposals if p.state in ("proposed", "rebook", "no-slot")), None)
        choices = (
            services.allowed_slots(caller=caller, plan=plan, number=next_open.number)
            if next_open is not None and schedule.portal_booking
            else None
        )
        plans.append({"plan": plan, "view": view, "rows": _proposal_rows(view), "choices": choices})
    return render(
        request,
        "scheduling/portal.html",
        {
            "patient": patient,
            "upcoming": services.appointments_of(caller=caller, patient=patient, upcoming_only=True),
            "plans": plans,
            "zone": patient.clinic.zone,
            "portal_booking": schedule.portal_booking,
            "notice_hours": schedule.portal_notice_hours,
        },
    )


def _portal_when(request: HttpRequest, patient: Patient) -> tuple[services.When, int, int | None]:
    start = parse_datetime(request.POST.get("start", "") or "")
    practitioner = _int(request.POST.get("practitioner"))
    if start is None or not timezone.is_aware(start) or practitioner is None:
        raise ValidationError({"start": [_("Choose one of the times offered.")]})
    return (
        services.When.from_instant(start, patient.clinic.zone),
        practitioner,
        _int(request.POST.get("room")),
    )


@login_required
@require_POST
def portal_book(request: HttpRequest) -> HttpResponseBase:
    patient = _own_patient(request)
    caller = Caller.of(request)
    if not services.settings_for(patient.clinic).portal_booking:
        raise PermissionDenied
    plan_id = _int(request.POST.get("plan"))
    number = _int(request.POST.get("number"))
    plan = (
        TreatmentPlan.objects.select_related("clinic", "patient__clinic", "protocol_version__protocol")
        .filter(pk=plan_id or 0, patient=patient)
        .first()
    )
    if plan is None or number is None:
        raise Http404(_("Not found."))
    try:
        when, practitioner, room = _portal_when(request, patient)
        services.series_book(
            caller=caller,
            plan=plan,
            picks=[services.SeriesPick(number=number, when=when, practitioner_id=practitioner, room_id=room)],
            via=Appointment.Via.PORTAL,
        )
    except FindingsRefused as refused:
        messages.error(request, refused.message)
        for finding in refused.findings:
            if finding.severity != "info":
                messages.error(request, finding.message)
    except ValidationError as error:
        for message in _messages_of(error):
            messages.error(request, message)
    else:
        messages.success(request, _("Booked. A confirmation is on its way."))
    return redirect("scheduling:portal")


@login_required
@never_cache
def portal_move(request: HttpRequest, appointment_id: int) -> HttpResponse | HttpResponseBase:
    patient = _own_patient(request)
    caller = Caller.of(request)
    found = services.appointment_get(caller=caller, appointment_id=appointment_id, perm=Perm.APPOINTMENT_BOOK)
    if found.patient_id != patient.pk or found.plan is None or found.series_number is None:
        raise Http404(_("Not found."))
    if request.method == "POST":
        try:
            when, practitioner, room = _portal_when(request, patient)
            services.appointment_move(
                caller=caller,
                appointment=found,
                when=when,
                practitioner_id=practitioner,
                room_id=room,
                via=Appointment.Via.PORTAL,
            )
        except FindingsRefused as refused:
            messages.error(request, refused.message)
            for finding in refused.findings:
                if finding.severity != "info":
                    messages.error(request, finding.message)
        except ValidationError as error:
            for message in _messages_of(error):
                messages.error(request, message)
        else:
            messages.success(request, _("Moved. A confirmation of the new time is on its way."))
            return redirect("scheduling:portal")
    choices = services.allowed_slots(caller=caller, plan=found.plan, number=found.series_number)
    return render(
        request,
        "scheduling/portal_move.html",
        {"appointment": found, "choices": choices, "zone": patient.clinic.zone},
    )


@login_required
@never_cache
def portal_preferences(request: HttpRequest) -> HttpResponse | HttpResponseBase:
    patient = _own_patient(request)
    return _preferences(request, patient, reverse("scheduling:portal"))

"""Booking, the series, check-in, no-show, cancellation, the outbox and calendar files, through the services
and the pages (issue 7). Refusals name their reason and write nothing; the database refuses a double booking
even when the services are bypassed."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from icalendar import Calendar
from pytest_django.fixtures import Settings as SettingsWrapper

from mesoclinic.accounts.actors import Caller
from mesoclinic.audit.models import AuditEvent
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.scheduling import rules, services
from mesoclinic.scheduling.models import (
    Appointment,
    CalendarFeed,
    ClinicClosure,
    ContactPreference,
    Kind,
    Message,
    MessageAttempt,
)
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import TreatmentSession
from mesoclinic.treatments.services import GATE_HOOKS
from tests.conftest import client_for
from tests.consent_support import ensure_gate_hook, give_consent
from tests.scheduling_support import Sched, at, complete, files, schedule, second_candidate

pytestmark = pytest.mark.django_db

# Queries of the calendar pages and of a series proposal, whatever the number of appointments (targets.md:
# bounded and the same at every scale; `make bench` measures their time).
DAY_VIEW_QUERIES = 16
WEEK_VIEW_QUERIES = 15  # no schedule settings: the week has no time grid
SERIES_PROPOSAL_QUERIES = 21


def _nothing_written(before: tuple[int, int, int]) -> bool:
    return (Appointment.objects.count(), Message.objects.count(), AuditEvent.objects.count()) == before


def _counts() -> tuple[int, int, int]:
    return Appointment.objects.count(), Message.objects.count(), AuditEvent.objects.count()


def _refused(call: Any) -> list[str]:
    with pytest.raises(FindingsRefused) as refused:
        call()
    return [f.code for f in refused.value.findings if f.severity == "block"] or [
        f.code for f in refused.value.findings
    ]


# --- booking ------------------------------------------------------------------------------------------------


def test_a_booking_is_one_row_with_its_messages_and_its_audit_row() -> None:
    s = schedule()
    day = s.monday + timedelta(days=8)  # a Tuesday, 9 days ahead
    appointment = s.book(day, 10)
    assert appointment.starts_at == at(day, 10) and appointment.ends_at == at(day, 10, 45)
    assert (appointment.series_number, appointment.room_id, appointment.status) == (1, s.t.room.pk, "booked")
    kinds = dict(Message.objects.filter(appointment=appointment).values_list("kind", "due_at"))
    assert kinds == {
        "confirmation": s.now,
        "nsaid": at(day - timedelta(days=7), 10),
        "day_before": at(day - timedelta(days=1), 10),
    }
    # Each message has its delivery task queued in the same transaction, and a sweep is queued.
    paths = list(DBTaskResult.objects.values_list("task_path", flat=True))
    assert paths.count("mesoclinic.scheduling.tasks.deliver_message") == 3
    assert paths.count("mesoclinic.scheduling.tasks.sweep_messages") == 1
    event = AuditEvent.objects.filter(action="appointment.book").get()
    assert (event.patient_id, event.object_id, event.detail["number"]) == (
        s.patient.pk,
        str(appointment.pk),
        1,
    )


def test_bad_bookings_are_refused_with_the_reason_and_write_nothing() -> None:
    s = schedule()
    tuesday = s.monday + timedelta(days=1)
    s.book(tuesday, 10, kind=Kind.CONSULTATION, room=s.t.room)
    other = s.other_patient()
    before = _counts()
    cases = {
        "in-the-past": lambda: s.book(s.monday - timedelta(days=7), 10, kind=Kind.CONSULTATION),
        "outside-working-hours": lambda: s.book(tuesday, 17, kind=Kind.CONSULTATION),
        "practitioner-busy": lambda: s.book(
            tuesday, 10, 15, kind=Kind.CONSULTATION, patient=other, room=s.room2
        ),
        "room-busy": lambda: s.book(
            tuesday, 10, 15, kind=Kind.CONSULTATION, patient=other, practitioner=s.t.director, room=s.t.room
        ),
        "patient-busy": lambda: s.book(
            tuesday, 10, 15, kind=Kind.CONSULTATION, practitioner=s.t.director, room=s.room2
        ),
    }
    for code, call in cases.items():
        assert code in _refused(call), code
    assert _nothing_written(before)
    # A Sunday and a closure.
    services.closure_add(
        caller=s.caller(s.admin),
        clinic=s.clinic,
        starts_on=tuesday + timedelta(days=1),
        ends_on=tuesday + timedelta(days=1),
        reason="Works",
    )
    before = _counts()
    assert _refused(lambda: s.book(s.monday + timedelta(days=6), 10, kind=Kind.CONSULTATION)) == [
        "outside-working-hours"
    ]
    assert _refused(lambda: s.book(tuesday + timedelta(days=1), 10, kind=Kind.CONSULTATION)) == [
        "clinic-closed"
    ]
    assert _nothing_written(before)


def test_bad_input_names_the_field() -> None:
    s = schedule()
    before = _counts()
    with pytest.raises(ValidationError) as off_grid:
        s.book(s.monday + timedelta(days=1), 10, 7)
    assert off_grid.value.message_dict == {"time": ["Times are on a 5-minute grid."]}
    with pytest.raises(ValidationError) as no_plan:
        s.book(s.monday + timedelta(days=1), 10, plan=None)
    assert "plan_id" in no_plan.value.message_dict
    with pytest.raises(ValidationError) as nobody:
        services.appointment_book(
            caller=s.caller(),
            clinic=s.clinic,
            patient=s.patient,
            data=services.BookIn(kind="consultation", practitioner_id=s.t.desk.pk, when=s.when(s.monday, 10)),
            now=s.now,
        )
    assert "practitioner_id" in nobody.value.message_dict
    assert _nothing_written(before)


def _next_change(zone: Any, *, back: bool) -> date:
    """The next day the clinic's clocks go back (or forward)."""
    day = timezone.localdate(timezone=zone) + timedelta(days=7)
    for _ in range(400):
        before = datetime.combine(day, time(0), tzinfo=zone).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).utcoffset()
        if before is not None and after is not None and (after < before) == back and after != before:
            return day
        day += timedelta(days=1)
    raise AssertionError("no DST change within a year")


def test_a_time_that_happens_twice_needs_a_choice_and_one_that_does_not_exist_is_refused() -> None:
    s = schedule()
    back, forward = _next_change(s.clinic.zone, back=True), _next_change(s.clinic.zone, back=False)
    services.exception_add(
        caller=s.caller(s.admin),
        clinic=s.clinic,
        practitioner_id=s.t.practitioner.pk,
        on=back,
        starts=time(1),
        ends=time(4),
        available=True,
        reason="Night clinic",
    )
    services.exception_add(
        caller=s.caller(s.admin),
        clinic=s.clinic,
        practitioner_id=s.t.practitioner.pk,
        on=forward,
        starts=time(1),
        ends=time(4),
        available=True,
        reason="Night clinic",
    )

    def data(when: services.When) -> services.BookIn:
        return services.BookIn(
            kind="consultation", practitioner_id=s.t.practitioner.pk, room_id=s.t.room.pk, when=when
        )

    now = timezone.now()
    with pytest.raises(ValidationError) as twice:
        services.appointment_book(
            caller=s.caller(),
            clinic=s.clinic,
            patient=s.patient,
            data=data(s.when(back, 2, 30)),
            now=now,
        )
    assert "happens twice" in twice.value.message_dict["time"][0]
    with pytest.raises(ValidationError) as gap:
        services.appointment_book(
            caller=s.caller(),
            clinic=s.clinic,
            patient=s.patient,
            data=data(s.when(forward, 2, 30)),
            now=now,
        )
    assert "does not exist" in gap.value.message_dict["time"][0]
    first = services.appointment_book(
        caller=s.caller(),
        clinic=s.clinic,
        patient=s.patient,
        data=data(s.when(back, 2, 30, fold=0)),
        now=now,
    )
    second = services.appointment_book(
        caller=s.caller(),
        clinic=s.clinic,
        patient=s.patient,
        data=data(s.when(back, 2, 30, fold=1)),
        now=now,
    )
    # Two different instants an hour apart, both "02:30" on the wall.
    assert second.starts_at - first.starts_at == timedelta(hours=1)
    assert {a.starts_at.astimezone(s.clinic.zone).strftime("%H:%M") for a in (first, second)} == {"02:30"}


def test_the_database_refuses_an_overlap_the_services_did_not_check() -> None:
    s = schedule()
    day = s.monday + timedelta(days=1)
    first = s.book(day, 10, kind=Kind.CONSULTATION)
    other = s.other_patient()
    clash = {
        "clinic": s.clinic,
        "kind": "consultation",
        "created_at": s.now,
        "created_by": s.t.desk,
        "starts_at": at(day, 10, 15),
        "ends_at": at(day, 10, 45),
    }
    for who in (
        {"patient": other, "practitioner": s.t.practitioner, "room": s.room2},  # practitioner
        {"patient": other, "practitioner": s.t.director, "room": s.t.room},  # room
        {"patient": s.patient, "practitioner": s.t.director, "room": s.room2},  # patient
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Appointment.objects.create(**clash, **who)
    # A cancelled appointment frees its time; moving a row onto another is refused too.
    services.appointment_cancel(caller=s.caller(), appointment=first, reason="patient-request", now=s.now)
    later = Appointment.objects.create(**clash, patient=other, practitioner=s.t.practitioner, room=s.room2)
    again = s.book(day, 11, kind=Kind.CONSULTATION, patient=s.patient, room=s.t.room)
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.filter(pk=again.pk).update(starts_at=later.starts_at, ends_at=later.ends_at)


# --- the series ---------------------------------------------------------------------------------------------


def _book_proposals(s: Sched, view: services.SeriesView, *, now: datetime) -> list[Appointment]:
    picks = [
        services.SeriesPick(
            number=p.number,
            when=services.When.from_instant(p.slot.starts_at, s.clinic.zone),
            practitioner_id=p.slot.practitioner_id,
            room_id=p.slot.room_id,
        )
        for p in view.proposals
        if p.slot is not None and p.state != "booked"
    ]
    return services.series_book(caller=s.caller(), plan=s.plan, picks=picks, now=now)


def _without_consent_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where consent is not the subject, the gate runs as it does before the consent app answers (the
    rule is an "info: not checked" note); test_check_in_runs_the_gate_and_links_the_session runs it."""
    monkeypatch.delitem(GATE_HOOKS, "no-consent", raising=False)


def test_a_series_is_proposed_booked_and_proposed_again_after_a_no_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_consent_hook(monkeypatch)
    s = schedule(sessions=4)
    view = services.series_view(caller=s.caller(), plan=s.plan, now=s.now)
    assert [(p.number, p.state) for p in view.proposals] == [(n, "proposed") for n in (1, 2, 3, 4)]
    booked = _book_proposals(s, view, now=s.now)
    dates = [rules.local_date(a.starts_at, s.clinic.zone) for a in booked]
    assert dates == [s.monday + timedelta(days=7 * n) for n in range(4)]  # a week apart (7–14 days)
    assert [a.series_number for a in booked] == [1, 2, 3, 4]
    view = services.series_view(caller=s.caller(), plan=s.plan, now=s.now)
    assert [p.state for p in view.proposals] == ["booked"] * 4

    # Session 1 happens; session 2 is missed: it is proposed again, and the sessions after it move.
    services.appointment_check_in(caller=s.caller(), appointment=booked[0], now=booked[0].starts_at)
    missed_at = booked[1].starts_at + timedelta(days=1)  # recorded the next morning
    services.appointment_no_show(caller=s.caller(), appointment=booked[1], note="Did not come", now=missed_at)
    assert Message.objects.filter(appointment=booked[1], status="cancelled").count() >= 1
    view = services.series_view(caller=s.caller(), plan=s.plan, now=missed_at)
    states = [(p.number, p.state) for p in view.proposals]
    assert states[0] == (2, "proposed") and states[1] == (3, "rebook"), states
    two = rules.local_date(view.proposals[0].slot.starts_at, s.clinic.zone)  # type: ignore[union-attr]
    three = rules.local_date(view.proposals[1].slot.starts_at, s.clinic.zone)  # type: ignore[union-attr]
    assert (three - two).days >= 7 and two >= rules.local_date(missed_at, s.clinic.zone)
    moved = _book_proposals(s, view, now=missed_at)
    assert [a.series_number for a in moved][:2] == [2, 3]
    old_three = Appointment.objects.get(pk=booked[2].pk)
    assert old_three.status == "moved" and old_three.moved_to_id == moved[1].pk
    assert Message.objects.get(appointment=moved[1], kind="confirmation").detail == "moved"
    final = services.series_view(caller=s.caller(), plan=s.plan, now=missed_at)
    assert all(p.state == "booked" for p in final.proposals)


def test_never_sooner_than_the_protocol_allows_and_later_only_with_a_reason() -> None:
    s = schedule()
    first = s.book(s.monday, 9)
    before = _counts()
    # Six days after session 1: refused (R-PRE-INTERVAL).
    assert _refused(lambda: s.book(s.monday + timedelta(days=4), 9)) == ["interval-too-short"]
    # Three weeks after: outside 7–14 days, a warning that needs a reason.
    late = s.monday + timedelta(days=21)
    assert _refused(lambda: s.book(late, 9)) == ["outside-series-window"]
    assert _nothing_written(before)
    second = s.book(late, 9, acknowledgements={"outside-series-window": "Patient travelling"})
    assert second.series_number == 2
    assert second.booking_acknowledgements == [
        {"key": "outside-series-window", "code": "outside-series-window", "reason": "Patient travelling"}
    ]
    assert first.series_number == 1


def test_improvement_tapers_the_proposals(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_consent_hook(monkeypatch)
    s = schedule()
    caller = Caller(user=s.t.practitioner)
    today = timezone.now()
    treatments.session_check_in(caller=caller, plan=s.plan, now=today)
    treatments.plan_record_improvement(
        caller=caller, plan=s.plan, on=timezone.localdate(timezone=s.clinic.zone)
    )
    view = services.series_view(caller=s.caller(), plan=s.plan, now=today)
    last = rules.local_date(today, s.clinic.zone)
    first = view.proposals[0]
    assert (first.earliest, first.latest) == (last + timedelta(days=14), last + timedelta(days=30))


def test_series_proposal_queries_do_not_grow_with_the_calendar() -> None:
    s = schedule()
    with CaptureQueriesContext(connection) as small:
        services.series_view(caller=s.caller(), plan=s.plan, now=s.now)
    for index in range(12):
        s.book(
            s.monday + timedelta(days=index % 5),
            9 + index // 5,
            kind=Kind.CONSULTATION,
            patient=s.other_patient(),
            room=s.room2,
        )
    with CaptureQueriesContext(connection) as large:
        services.series_view(caller=s.caller(), plan=s.plan, now=s.now)
    assert (len(small), len(large)) == (SERIES_PROPOSAL_QUERIES, SERIES_PROPOSAL_QUERIES)


def test_a_series_proposal_past_the_first_days_searched_is_the_one_of_the_whole_horizon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proposals search the days the sessions should need first, then the whole horizon when that ran
    # out: closed for eight months, the first proposal comes after the closure either way.
    s = schedule()
    today = rules.local_date(s.now, s.clinic.zone)
    reopens = today + timedelta(days=240)
    ClinicClosure.objects.create(
        clinic=s.clinic, starts_on=today, ends_on=reopens - timedelta(days=1), reason="Works"
    )
    searched: list[date] = []
    build_calendar = services.build_calendar

    def spy(*args: Any, **kwargs: Any) -> rules.Calendar:
        searched.append(kwargs["last_day"])
        return build_calendar(*args, **kwargs)

    monkeypatch.setattr(services, "build_calendar", spy)

    def proposals(margin_days: int) -> list[tuple[int, str, rules.Slot | None]]:
        monkeypatch.setattr(services, "SERIES_NEAR_MARGIN_DAYS", margin_days)
        view = services.series_view(caller=s.caller(), plan=s.plan, now=s.now, audit=False)
        return [(p.number, p.state, p.slot) for p in view.proposals]

    first_days = proposals(0)
    assert len(searched) == 2 and searched[0] < reopens < searched[1]  # the first days, then the horizon
    assert first_days == proposals(1000)
    assert [state for _number, state, _slot in first_days] == ["proposed"] * 6
    assert rules.local_date(first_days[0][2].starts_at, s.clinic.zone) >= reopens  # type: ignore[union-attr]


# --- check-in, no-show, cancellation -----------------------------------------------------------------------


def test_check_in_runs_the_gate_and_links_the_session() -> None:
    ensure_gate_hook()
    s = schedule(consented=False)
    appointment = s.book(s.monday, 9)
    # No consent yet: the gate blocks, nothing is written.
    before = (TreatmentSession.objects.count(), Message.objects.count())
    assert "no-consent" in _refused(
        lambda: services.appointment_check_in(
            caller=s.caller(), appointment=appointment, now=appointment.starts_at
        )
    )
    assert (TreatmentSession.objects.count(), Message.objects.count()) == before
    assert Appointment.objects.get(pk=appointment.pk).status == "booked"
    # Not on the day: refused.
    give_consent(s.plan)
    with pytest.raises(ValidationError):
        services.appointment_check_in(
            caller=s.caller(), appointment=appointment, now=appointment.starts_at - timedelta(days=1)
        )
    done = services.appointment_check_in(
        caller=s.caller(), appointment=appointment, now=appointment.starts_at
    )
    session = TreatmentSession.objects.get(plan=s.plan)
    assert (done.status, done.treatment_session_id, session.session_date) == (
        "checked_in",
        session.pk,
        s.monday,
    )
    kinds = set(Message.objects.filter(patient=s.patient).values_list("kind", flat=True))
    assert {"aftercare", "side_effect_check", "infection_2w", "infection_6w", "infection_12w"} <= kinds
    watch = Message.objects.get(plan=s.plan, kind="infection_12w")
    assert rules.local_date(watch.due_at, s.clinic.zone) == s.monday + timedelta(weeks=12)
    # A later session moves the infection watch later (counted from the last session).
    complete(s, session)
    second = s.book(s.monday + timedelta(days=7), 9)
    services.appointment_check_in(caller=s.caller(), appointment=second, now=second.starts_at)
    watch.refresh_from_db()
    assert rules.local_date(watch.due_at, s.clinic.zone) == s.monday + timedelta(days=7, weeks=12)
    assert Message.objects.filter(plan=s.plan, kind="infection_12w").count() == 1


def test_no_show_and_cancellation_need_their_moment_and_reason() -> None:
    s = schedule()
    appointment = s.book(s.monday, 9, kind=Kind.CONSULTATION)
    with pytest.raises(ValidationError):
        services.appointment_no_show(
            caller=s.caller(), appointment=appointment, now=appointment.starts_at - timedelta(minutes=5)
        )
    with pytest.raises(ValidationError) as bad:
        services.appointment_cancel(caller=s.caller(), appointment=appointment, reason="because", now=s.now)
    assert "reason" in bad.value.message_dict
    with pytest.raises(ValidationError) as other:
        services.appointment_cancel(caller=s.caller(), appointment=appointment, reason="other", now=s.now)
    assert "note" in other.value.message_dict
    done = services.appointment_cancel(
        caller=s.caller(), appointment=appointment, reason="illness", now=s.now
    )
    assert (done.status, done.cancel_reason) == ("cancelled", "illness")
    assert set(Message.objects.filter(appointment=appointment).values_list("status", flat=True)) == {
        "cancelled"
    }
    with pytest.raises(ValidationError):
        services.appointment_cancel(caller=s.caller(), appointment=done, reason="illness", now=s.now)


# --- messages -----------------------------------------------------------------------------------------------


def _deliver(message: Message, now: datetime | None = None) -> str:
    return services.message_deliver(message_id=message.pk, worker="test", now=now or message.due_at)


def test_the_confirmation_goes_once_in_the_patients_language_with_an_ics(settings: SettingsWrapper) -> None:
    s = schedule()
    s.t.patient.preferred_language = "fr"
    s.t.patient.save()
    appointment = s.book(s.monday + timedelta(days=8), 10)
    confirmation = Message.objects.get(appointment=appointment, kind="confirmation")
    assert _deliver(confirmation) == "sent"
    assert _deliver(confirmation) == "done"
    (email,) = mail.outbox
    assert email.subject.startswith("Rendez-vous confirmé")
    assert "Séance de mésothérapie (séance 1 sur 6)" in email.body and "10:00" in email.body
    assert email.extra_headers["Message-ID"] == f"<mesoclinic-message-{confirmation.pk}@mesoclinic.local>"
    (name, content, mimetype) = email.attachments[0]
    assert (name, mimetype) == ("appointment.ics", "text/calendar")
    event = Calendar.from_ical(content).walk("VEVENT")[0]
    assert event.decoded("dtstart") == appointment.starts_at and event.decoded("dtend") == appointment.ends_at
    confirmation.refresh_from_db()
    assert (confirmation.status, confirmation.channel, confirmation.language, confirmation.attempts) == (
        "sent",
        "email",
        "fr",
        1,
    )
    assert list(MessageAttempt.objects.filter(message=confirmation).values_list("outcome", flat=True)) == [
        "sent"
    ]
    sent = AuditEvent.objects.get(action="message.send")
    assert (sent.username, sent.patient_id) == ("system:messages", s.patient.pk)


def test_sms_opt_outs_and_missing_addresses(settings: SettingsWrapper, tmp_path: Path) -> None:
    settings.SMS_FILE_PATH = str(tmp_path)
    s = schedule()
    s.t.patient.phone = "+33 6 12 34 56 78"
    s.t.patient.save()
    services.preference_update(
        caller=s.caller(),
        patient=s.patient,
        channel="sms",
        reminders=True,
        follow_up=True,
        numbing_cream=True,
    )
    appointment = s.book(s.monday + timedelta(days=8), 10)
    day_before = Message.objects.get(appointment=appointment, kind="day_before")
    assert _deliver(day_before) == "sent"
    (written,) = files(tmp_path, ".json")
    payload = json.loads(written.read_text())
    assert payload["to"] == "+33 6 12 34 56 78" and payload["key"] == day_before.key
    assert "Numbing cream optional" in payload["body"]
    # Opted out of reminders: the NSAID reminder is not sent, and says why.
    services.preference_update(
        caller=s.caller(),
        patient=s.patient,
        channel="sms",
        reminders=False,
        follow_up=True,
        numbing_cream=False,
    )
    nsaid = Message.objects.get(appointment=appointment, kind="nsaid")
    assert _deliver(nsaid) == "skipped"
    nsaid.refresh_from_db()
    assert (nsaid.status, nsaid.detail) == ("skipped", "opted-out")
    assert len(files(tmp_path, ".json")) == 1
    with pytest.raises(ValidationError):
        services.preference_update(
            caller=s.caller(),
            patient=s.other_patient(phone=""),
            channel="sms",
            reminders=True,
            follow_up=True,
            numbing_cream=True,
        )


def test_a_failing_transport_is_retried_then_marked_failed(settings: SettingsWrapper) -> None:
    settings.SMS_BACKEND = "tests.scheduling_support.FailingSmsBackend"
    s = schedule()
    s.t.patient.phone = "+33 6 00 00 00 00"
    s.t.patient.save()
    ContactPreference.objects.create(patient=s.t.patient, channel="sms")
    message = Message.objects.get(appointment=s.book(s.monday + timedelta(days=8), 10), kind="confirmation")
    moment = message.due_at
    delays = []
    for _ in range(4):
        assert _deliver(message, moment) == "failed"
        message.refresh_from_db()
        assert message.status == "pending"
        delays.append(message.due_at - moment)
        moment = message.due_at
    assert delays == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]
    assert _deliver(message, moment) == "failed"
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 5) and "unreachable" in message.detail
    assert MessageAttempt.objects.filter(message=message, outcome="failed").count() == 5
    # Each retry had its task queued for its time.
    assert (
        DBTaskResult.objects.filter(
            task_path__endswith="deliver_message", args_kwargs__args=[message.pk]
        ).count()
        == 5
    )


def test_a_send_left_half_done_by_a_dead_worker_is_resolved_without_sending_twice(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    settings.SMS_FILE_PATH = str(tmp_path)
    s = schedule()
    s.t.patient.phone = "+33 6 00 00 00 01"
    s.t.patient.save()
    ContactPreference.objects.create(patient=s.t.patient, channel="sms")
    appointment = s.book(s.monday + timedelta(days=8), 10)
    went, lost, email = (
        Message.objects.get(appointment=appointment, kind=k) for k in ("confirmation", "nsaid", "day_before")
    )
    # "went": the worker wrote the SMS, then died before marking it; "lost": it died before writing.
    from mesoclinic.scheduling.transports import FileSmsBackend

    FileSmsBackend().send(to="+33 6 00 00 00 01", body="x", key=went.key, sender="clinic")
    stale = s.now - timedelta(hours=1)
    Message.objects.filter(pk__in=[went.pk, lost.pk]).update(
        status="sending", channel="sms", claimed_at=stale, attempts=1
    )
    Message.objects.filter(pk=email.pk).update(
        status="sending", channel="email", claimed_at=stale, attempts=1
    )
    outcomes = services.messages_sweep(now=s.now + timedelta(days=30))
    assert outcomes == {"recovered": 1, "sent": 1, "uncertain": 1}
    assert len(files(tmp_path, ".json")) == 2  # one each; nothing sent twice
    assert mail.outbox == []  # the email transport cannot tell: marked uncertain, not sent again
    assert Message.objects.get(pk=email.pk).status == "uncertain"
    # A live claim is left alone.
    Message.objects.filter(pk=went.pk).update(status="sending", claimed_at=s.now)
    assert services.message_deliver(message_id=went.pk, now=s.now + timedelta(minutes=1)) == "busy"


def test_a_moved_appointment_cancels_its_reminders_and_confirms_the_new_time() -> None:
    s = schedule()
    appointment = s.book(s.monday + timedelta(days=8), 10)
    new = services.appointment_move(
        caller=s.caller(), appointment=appointment, when=s.when(s.monday + timedelta(days=9), 14), now=s.now
    )
    old = Appointment.objects.get(pk=appointment.pk)
    assert (old.status, old.moved_to_id, new.series_number) == ("moved", new.pk, 1)
    assert set(Message.objects.filter(appointment=old).values_list("status", flat=True)) == {"cancelled"}
    confirmation = Message.objects.get(appointment=new, kind="confirmation")
    assert _deliver(confirmation) == "sent"
    assert mail.outbox[0].subject.startswith("Your appointment has moved")


# --- calendar files and feeds ------------------------------------------------------------------------------


def test_the_practitioner_feed_is_private_revocable_and_stores_no_token() -> None:
    s = schedule()
    mine = s.book(s.monday + timedelta(days=1), 10, kind=Kind.CONSULTATION)
    s.book(s.monday + timedelta(days=1), 11, kind=Kind.CONSULTATION, practitioner=s.t.director, room=s.room2)
    feed, token = services.feed_create(caller=Caller(user=s.t.practitioner), clinic=s.clinic)
    assert (
        CalendarFeed.objects.get().token_hash == services.hash_feed_token(token)
        and token not in feed.token_hash
    )
    anonymous = client_for(s.t.practitioner, verified=False)
    anonymous.logout()
    response = anonymous.get(f"/scheduling/feeds/{token}.ics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assert [str(e["uid"]) for e in events] == [f"appointment-{mine.pk}@mesoclinic.local"]
    assert (
        s.patient.family_name not in response.content.decode()
        and s.patient.record_number in response.content.decode()
    )
    assert AuditEvent.objects.filter(action="calendar_feed.read", user_id=s.t.practitioner.pk).count() == 1
    assert anonymous.get(f"/scheduling/feeds/{token}x.ics").status_code == 404
    services.feed_revoke(caller=Caller(user=s.t.practitioner), clinic=s.clinic)
    assert anonymous.get(f"/scheduling/feeds/{token}.ics").status_code == 404


# --- pages --------------------------------------------------------------------------------------------------


def test_the_calendar_pages_in_a_fixed_number_of_queries_without_clinical_notes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_consent_hook(monkeypatch)
    s = schedule()
    session_appointment = s.book(s.monday, 9)
    services.appointment_check_in(
        caller=s.caller(), appointment=session_appointment, now=session_appointment.starts_at
    )
    TreatmentSession.objects.filter(plan=s.plan).update(notes="CLINICAL-NOTE-XYZ")
    desk = client_for(s.t.desk)

    def counted(url: str) -> tuple[int, bytes]:
        with CaptureQueriesContext(connection) as queries:
            response = desk.get(url)
        assert response.status_code == 200, url
        return len(queries), response.content

    day_url = f"/scheduling/?date={s.monday.isoformat()}"
    week_url = f"/scheduling/?view=week&date={s.monday.isoformat()}"
    day_small, _content = counted(day_url)
    week_small, _content = counted(week_url)
    for index in range(10):
        s.book(
            s.monday + timedelta(days=index % 5),
            10 + index // 5,
            kind=Kind.CONSULTATION,
            patient=s.other_patient(),
            room=s.room2,
            practitioner=s.t.director,
        )
    day_large, day_page = counted(day_url)
    week_large, week_page = counted(week_url)
    assert (day_small, day_large) == (DAY_VIEW_QUERIES, DAY_VIEW_QUERIES)
    assert (week_small, week_large) == (WEEK_VIEW_QUERIES, WEEK_VIEW_QUERIES)
    assert s.patient.family_name.upper().encode() in day_page and week_page.count(b'data-appointment="') == 11
    for page in (
        day_page,
        week_page,
        desk.get(f"/scheduling/appointments/{session_appointment.pk}/").content,
    ):
        assert b"CLINICAL-NOTE-XYZ" not in page
    assert AuditEvent.objects.filter(action="calendar.read").count() == 4


def test_booking_through_the_page_with_a_reason_for_a_warning() -> None:
    s = schedule()
    s.book(s.monday, 9)
    desk = client_for(s.t.desk)
    late = s.monday + timedelta(days=21)
    form = {
        "patient": s.patient.pk,
        "kind": "session",
        "plan": s.plan.pk,
        "practitioner": s.t.practitioner.pk,
        "room": s.t.room.pk,
        "day": late.isoformat(),
        "clock": "09:00",
        "fold": "",
        "note": "",
    }
    response = desk.post(f"/scheduling/book/?patient={s.patient.pk}", form)
    assert response.status_code == 422 and b'data-code="outside-series-window"' in response.content
    assert Appointment.objects.count() == 1
    response = desk.post(
        f"/scheduling/book/?patient={s.patient.pk}", {**form, "ack:outside-series-window": "Holidays"}
    )
    assert response.status_code == 302
    assert (
        Appointment.objects.filter(series_number=2).get().booking_acknowledgements[0]["reason"] == "Holidays"
    )
    bad = desk.post(f"/scheduling/book/?patient={s.patient.pk}", {**form, "clock": "25:00"})
    assert bad.status_code == 422 and b"id_clock-error" in bad.content
    slots = desk.get(
        f"/scheduling/availability/?patient={s.patient.pk}&kind=session&date={s.monday.isoformat()}"
    )
    assert slots.status_code == 200 and b'class="slot"' in slots.content


def test_the_series_page_books_the_ticked_sessions() -> None:
    s = schedule(sessions=4)
    desk = client_for(s.t.desk)
    page = desk.get(f"/scheduling/series/{s.plan.pk}/")
    assert page.status_code == 200 and page.content.count(b'data-state="proposed"') == 4
    view = services.series_view(caller=s.caller(), plan=s.plan)
    form: dict[str, Any] = {"pick": [str(p.number) for p in view.proposals]}
    for p in view.proposals:
        assert p.slot is not None
        when = services.When.from_instant(p.slot.starts_at, s.clinic.zone)
        form.update(
            {
                f"date-{p.number}": when.day.isoformat(),
                f"time-{p.number}": when.clock.strftime("%H:%M"),
                f"practitioner-{p.number}": str(p.slot.practitioner_id),
                f"room-{p.number}": str(p.slot.room_id),
            }
        )
    form["time-3"] = "03:00"  # outside working hours: the whole series is refused, nothing booked
    refused = desk.post(f"/scheduling/series/{s.plan.pk}/", form)
    assert refused.status_code == 422 and b"Session 3" in refused.content and Appointment.objects.count() == 0
    form["time-3"] = form["time-2"]
    assert desk.post(f"/scheduling/series/{s.plan.pk}/", form).status_code == 302
    assert list(Appointment.objects.order_by("series_number").values_list("series_number", flat=True)) == [
        1,
        2,
        3,
        4,
    ]


def test_the_patient_panel_settings_hours_and_preferences_pages() -> None:
    s = schedule()
    s.book(s.monday + timedelta(days=1), 10, kind=Kind.CONSULTATION)
    desk = client_for(s.t.desk)
    panel = desk.get(f"/scheduling/patients/{s.patient.pk}/panel/")
    assert panel.status_code == 200 and b"data-appointment=" in panel.content
    patient_page = desk.get(f"/patients/{s.patient.pk}/")
    assert b'id="appointments-panel"' in patient_page.content
    admin = client_for(s.admin)
    hours = admin.get(f"/scheduling/hours/?practitioner={s.t.practitioner.pk}")
    assert hours.status_code == 200 and b'value="09:00"' in hours.content
    saved = admin.post(
        "/scheduling/hours/",
        {
            "action": "hours",
            "practitioner": s.t.practitioner.pk,
            "d0_1_from": "08:00",
            "d0_1_to": "12:00",
            "d0_2_from": "13:00",
            "d0_2_to": "18:00",
        },
    )
    assert saved.status_code == 302
    assert [(h.starts, h.ends) for h in services.hours_of(s.clinic, s.t.practitioner.pk)] == [
        (time(8), time(12)),
        (time(13), time(18)),
    ]
    overlap = admin.post(
        "/scheduling/hours/",
        {
            "action": "hours",
            "practitioner": s.t.practitioner.pk,
            "d0_1_from": "08:00",
            "d0_1_to": "12:00",
            "d0_2_from": "11:00",
            "d0_2_to": "18:00",
        },
    )
    assert overlap.status_code == 422 and len(services.hours_of(s.clinic, s.t.practitioner.pk)) == 2
    closure = admin.post(
        "/scheduling/settings/",
        {
            "action": "closure",
            "starts_on": (s.monday + timedelta(days=1)).isoformat(),
            "ends_on": (s.monday + timedelta(days=1)).isoformat(),
            "reason": "Works",
        },
    )
    assert closure.status_code == 302
    page = admin.get("/scheduling/settings/")
    assert b'id="to-move"' in page.content  # the consultation booked on the closure is listed
    prefs = desk.post(
        f"/scheduling/patients/{s.patient.pk}/preferences/", {"channel": "email", "reminders": "on"}
    )
    assert prefs.status_code == 302
    stored = ContactPreference.objects.get(patient=s.patient)
    assert (stored.reminders, stored.follow_up) == (True, False)


def test_the_portal_books_only_into_allowed_slots() -> None:
    from mesoclinic.accounts.models import User
    from tests.factories import UserFactory

    s = schedule()
    portal_user: User = UserFactory.create(username="claire-portal")
    s.t.patient.user = portal_user
    s.t.patient.save()
    first = s.book(s.monday, 9)
    me = Caller(user=portal_user)
    choices = services.allowed_slots(caller=me, plan=s.plan, number=2, now=s.now)
    assert choices.slots and all(
        choices.window.earliest <= rules.local_date(slot.starts_at, s.clinic.zone) <= choices.window.latest  # type: ignore[operator]
        for slot in choices.slots
    )
    slot = choices.slots[0]
    client = client_for(portal_user, verified=False)
    page = client.get("/scheduling/portal/")
    assert page.status_code == 200 and b"slot-button" in page.content
    # A time later than the window (it would need a reason) is refused to the patient.
    outside = rules.localize(s.monday + timedelta(days=28), time(9), s.clinic.zone)
    refused = client.post(
        "/scheduling/portal/book/",
        {
            "plan": s.plan.pk,
            "number": 2,
            "start": outside.isoformat(),
            "practitioner": slot.practitioner_id,
            "room": slot.room_id,
        },
    )
    assert refused.status_code == 302 and Appointment.objects.filter(series_number=2).count() == 0
    booked = client.post(
        "/scheduling/portal/book/",
        {
            "plan": s.plan.pk,
            "number": 2,
            "start": slot.starts_at.isoformat(),
            "practitioner": slot.practitioner_id,
            "room": slot.room_id,
        },
    )
    assert booked.status_code == 302
    two = Appointment.objects.get(series_number=2, status="booked")
    assert (two.via, two.starts_at) == ("portal", slot.starts_at)
    assert first.series_number == 1
    # The patient cannot book for someone else's plan.
    other = second_candidate(s)
    assert client.get(f"/scheduling/patients/{other.pk}/panel/").status_code == 404


def test_the_reminders_say_what_to_do_before_a_session() -> None:
    """R-PRE-NSAID: the reminder 7 days before says to stop NSAIDs; R-PRE-NUMB: the day-before reminder offers
    the numbing cream (30 minutes before) when the patient wants it, in the patient's language."""
    s = schedule()
    appointment = s.book(s.monday + timedelta(days=8), 10)
    nsaid, day_before = (
        Message.objects.get(appointment=appointment, kind=k) for k in ("nsaid", "day_before")
    )
    assert "NSAIDs" in services.render_message(nsaid).body
    with_cream = services.render_message(day_before)  # by default the reminder offers it
    assert "30 minutes before" in with_cream.body and "30 min before" in with_cream.sms
    assert "bruising" in with_cream.body
    ContactPreference.objects.create(patient=s.t.patient, numbing_cream=False)
    without = services.render_message(day_before)
    assert "Numbing cream" not in without.body and "Numbing" not in without.sms
    s.t.patient.preferred_language = "fr"
    s.t.patient.save()
    ContactPreference.objects.filter(patient=s.t.patient).update(numbing_cream=True)
    french = services.render_message(Message.objects.get(pk=day_before.pk))
    assert "crème anesthésiante" in french.body and "30 minutes" in french.body


def test_day_and_week_views_per_practitioner_and_per_room() -> None:
    s = schedule()
    tuesday = s.monday + timedelta(days=1)
    mine = s.book(tuesday, 9, kind=Kind.CONSULTATION, room=s.t.room)
    theirs = s.book(
        tuesday, 9, kind=Kind.CONSULTATION, patient=s.other_patient(), practitioner=s.t.director, room=s.room2
    )
    later = s.book(s.monday + timedelta(days=3), 11, kind=Kind.CONSULTATION, room=s.room2)
    desk = client_for(s.t.desk)

    def shown(query: str) -> set[int]:
        page = desk.get(f"/scheduling/?{query}")
        assert page.status_code == 200
        return {a.pk for a in (mine, theirs, later) if f'data-appointment="{a.pk}"'.encode() in page.content}

    day, week = f"date={tuesday.isoformat()}", f"view=week&date={tuesday.isoformat()}"
    assert shown(day) == {mine.pk, theirs.pk}
    assert shown(week) == {mine.pk, theirs.pk, later.pk}
    assert shown(f"{week}&practitioner={s.t.practitioner.pk}") == {mine.pk, later.pk}
    assert shown(f"{day}&practitioner={s.t.director.pk}") == {theirs.pk}
    assert shown(f"{week}&room={s.room2.pk}") == {theirs.pk, later.pk}
    assert shown(f"{day}&room={s.t.room.pk}") == {mine.pk}
    api = desk.get(f"/api/v1/scheduling/calendar?date={s.monday.isoformat()}&days=7&room={s.room2.pk}").json()
    assert {a["id"] for a in api["appointments"]} == {theirs.pk, later.pk}
    # Neither a day nor a week: refused with the reason.
    bad = desk.get(f"/api/v1/scheduling/calendar?date={s.monday.isoformat()}&days=3")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "days"

"""The generator's outbox family (mesoclinic.scheduling): contact preferences, messages and delivery logs.

Per clinic, from the appointments the calendar family wrote (one query), the rows the scheduling services
would have left, with the times of ``scheduling.rules`` (``appointment_message_due``, ``infection_due``, in
the clinic's zone at the clinic's ``reminder_time``) and the channel of ``rules.delivery_choice``:

- a **ContactPreference** for 12 % of the patients with an appointment, set by the desk at their first
  booking: text messages for 60 % of those with a phone, no appointment reminders for a quarter of them
  (3 % of the patients), no follow-up messages for a fifth; the others have no row (email, everything on);
- per appointment, at its booking, the **confirmation**, the **NSAID reminder** (7 days before, treatment
  appointments only) and the **day-before reminder**, or none of the last two when the booking came too late
  (``appointment_message_due`` answers None); per checked-in appointment, at its check-in, the **aftercare**
  (when it ends) and the **side-effect check** (two days later); per plan, the **infection watch** at 2, 6
  and 12 weeks after its latest session, moved later by each check-in while still waiting
  (``_queue_session_messages``);
- their fate as ``message_deliver`` decides it, one moment after they fall due: *sent* (on the preferred
  channel, or the other when the preferred has no address; in the patient's language), *skipped* for an
  opted-out patient or one with no address (``detail`` says which), *cancelled* when the appointment was
  cancelled or missed before they were due (``_cancel_messages``), *pending* when due after "today" (the
  reminders of the booked appointments, the last side-effect checks and infection watches). 1.5 % of the
  sends fail first (a transport error) and go out on a retry after ``rules.retry_delay`` (their ``due_at``
  moved as the retry moves it); 0.2 % fail five times and stay *failed*;
- one **MessageAttempt** per attempt (sent, failed, skipped), at the worker's moment.

No delivery tasks are written (the rows are the outbox: ``messages_sweep`` delivers a waiting row whose task
is missing once it is past due). No audit rows (the sent messages' ``message.send`` events are not written:
the chain is only ever appended to by the application). Built in this process, written with ``Context.write``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.db import models

from bench.rows import SECONDS_PER_DAY, stamp_text
from mesoclinic.patients.models import Patient
from mesoclinic.scheduling import rules as schedule_rules
from mesoclinic.scheduling.models import (
    PLAN_KINDS,
    REMINDER_KINDS,
    TREATMENT_KINDS,
    Appointment,
    ContactPreference,
    Message,
    MessageAttempt,
    MessageKind,
    ScheduleSettings,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType

    from bench.generate import ClinicData, Context, Counts

FIELDS_PREFERENCE = (
    "patient",
    "channel",
    "reminders",
    "follow_up",
    "numbing_cream",
    "updated_at",
    "updated_by",
)
FIELDS_MESSAGE = (
    "id",
    "clinic",
    "patient",
    "appointment",
    "plan",
    "kind",
    "due_at",
    "status",
    "channel",
    "language",
    "recipient",
    "attempts",
    "claimed_by",
    "claimed_at",
    "enqueued_at",
    "sent_at",
    "detail",
    "created_at",
)
FIELDS_ATTEMPT = ("message", "at", "outcome", "channel", "worker", "detail")
PREFERENCE_SHARE = 0.12
SMS_SHARE = 0.6  # of the preferences, when the patient has a phone
NO_REMINDERS_SHARE = 0.25
NO_FOLLOW_UP_SHARE = 0.2
NO_NUMBING_SHARE = 0.15
RETRIED_SHARE = 0.015
FAILED_SHARE = 0.002
WORKERS = ("db-worker-1", "db-worker-2")
ERRORS = {
    "email": (
        "SMTPServerDisconnected('Connection unexpectedly closed')",
        "TimeoutError('timed out')",
        "ConnectionRefusedError(111, 'Connection refused')",
    ),
    "sms": (
        "TimeoutError('timed out')",
        "ConnectionResetError(104, 'Connection reset by peer')",
    ),
}
BOOKING_KINDS = (MessageKind.CONFIRMATION.value, MessageKind.NSAID.value, MessageKind.DAY_BEFORE.value)
SESSION_KINDS = (MessageKind.AFTERCARE.value, MessageKind.SIDE_EFFECT_CHECK.value)
_UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()

Choice = tuple[str, str] | tuple[None, str]


def _stamp(unix: int) -> str:
    """A UTC timestamp as the bulk writers take it, from seconds since 1970."""
    day, second = divmod(unix, SECONDS_PER_DAY)
    return stamp_text(_UNIX_EPOCH_ORDINAL + day, second)


class Epoch(models.Func):
    """A timestamp column as whole seconds since 1970 (read without building a datetime per value)."""

    output_field = models.BigIntegerField()

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any) -> _AsSqlType:
        # "%%%%s": "%%s" after the template, "%s" (strftime's seconds) after the backend's placeholders.
        template = "CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> _AsSqlType:
        template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)"
        return self.as_sql(compiler, connection, template=template, **extra)


_NSAID_LAST_CALL = int(schedule_rules.NSAID_LAST_CALL.total_seconds())
_DAY_BEFORE_LAST_CALL = int(schedule_rules.DAY_BEFORE_LAST_CALL.total_seconds())


class Clock:
    """One clinic's message times, as ``scheduling.rules.appointment_message_due`` and ``infection_due``
    give them, in whole seconds: the reminder time of a local day is ``rules.resolve``'s (DST included),
    worked out once per day. tests/test_bench_media.py checks the generated rows against the rules'
    functions themselves."""

    def __init__(self, zone: ZoneInfo, reminder_time: time) -> None:
        self.zone = zone
        self.reminder_time = reminder_time
        self._at: dict[int, int] = {}
        self._offsets: dict[int, int] = {}

    def at(self, ordinal: int) -> int:
        """The reminder time on a clinic-local day (``date.toordinal()``)."""
        found = self._at.get(ordinal)
        if found is None:
            instant = schedule_rules.resolve(date.fromordinal(ordinal), self.reminder_time, self.zone)
            found = self._at[ordinal] = int(instant.timestamp())
        return found

    def _offset(self, utc_day: int) -> int:
        found = self._offsets.get(utc_day)
        if found is None:
            midnight = datetime.fromtimestamp(utc_day * SECONDS_PER_DAY, UTC)
            before = midnight.astimezone(self.zone).utcoffset()
            after = (midnight + timedelta(days=1)).astimezone(self.zone).utcoffset()
            # -1: the offset changes during that UTC day (look the instant up itself).
            found = int(before.total_seconds()) if before == after and before is not None else -1
            self._offsets[utc_day] = found
        return found

    def local_day(self, unix: int) -> int:
        """``rules.local_date`` of an instant, as ``date.toordinal()``."""
        offset = self._offset(unix // SECONDS_PER_DAY)
        if offset == -1:
            return schedule_rules.local_date(datetime.fromtimestamp(unix, UTC), self.zone).toordinal()
        return _UNIX_EPOCH_ORDINAL + (unix + offset) // SECONDS_PER_DAY

    def appointment_due(
        self, kind: str, *, day: int, starts: int, ends: int, now: int, treatment: bool
    ) -> int | None:
        """``rules.appointment_message_due`` in seconds (``day``: the appointment's local day)."""
        if kind == "confirmation":
            return now
        if kind == "nsaid":
            if not treatment:
                return None
            due = self.at(day - schedule_rules.NSAID_WASHOUT_DAYS)
            if due >= now:
                return due
            return now if starts - now > _NSAID_LAST_CALL else None
        if kind == "day_before":
            due = self.at(day - 1)
            if due >= now:
                return due
            return now if starts - now > _DAY_BEFORE_LAST_CALL else None
        if kind == "aftercare":
            return max(ends, now) if treatment else None
        if kind == "side_effect_check":
            return max(self.at(day + schedule_rules.SIDE_EFFECT_CHECK_DAYS), now) if treatment else None
        raise ValueError(f"not an appointment message: {kind}")

    def infection_due(self, kind: str, *, last_session_day: int) -> int:
        return self.at(last_session_day + 7 * schedule_rules.INFECTION_WEEKS[kind])


class Outbox:
    """One clinic's messages and attempts as rows, each message delivered (or not) as the services would."""

    def __init__(
        self,
        ctx: Context,
        data: ClinicData,
        recipients: dict[int, tuple[schedule_rules.Recipient, str]],
    ) -> None:
        self.rand: Callable[[], float] = ctx.rng("messages", data.number).random
        self.clinic_id = data.clinic.pk
        # "Today" of the data set: what falls due later is still waiting.
        self.now = int(ctx.midnight.timestamp())
        self.recipients = recipients  # patient → (recipient, language)
        self.choices: dict[tuple[int, bool], Choice] = {}
        self.messages: list[tuple[Any, ...]] = []
        self.attempts: list[tuple[Any, ...]] = []
        # (patient, appointment, plan, kind, due, created, cancelled at, reason), until ids are taken.
        self._pending: list[tuple[int, int | None, int | None, str, int, int, int | None, str, int]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def _choice(self, patient: int, kind: str) -> tuple[Choice, str]:
        reminder = kind in REMINDER_KINDS
        recipient, language = self.recipients[patient]
        choice = self.choices.get((patient, reminder))
        if choice is None:
            choice = self.choices[(patient, reminder)] = schedule_rules.delivery_choice(kind, recipient)
        return choice, language

    def add(
        self,
        patient: int,
        appointment: int | None,
        plan: int | None,
        kind: str,
        due: int,
        created: int,
        cancelled_at: int | None = None,
        reason: str = "",
        enqueued: int | None = None,
    ) -> None:
        """One message created at ``created``, due at ``due`` (seconds since 1970); cancelled at
        ``cancelled_at`` if it has not gone by then."""
        self._pending.append(
            (patient, appointment, plan, kind, due, created, cancelled_at, reason, enqueued or created)
        )

    def rows(self, ids: range) -> None:
        """Take ``ids`` (as many as the messages added) and build the rows of the messages and attempts."""
        rand = self.rand
        now = self.now
        clinic_id = self.clinic_id
        messages, attempts = self.messages, self.attempts
        n_workers = len(WORKERS)
        for message_id, (patient, appointment, plan, kind, due, created, cancelled_at, reason, queued) in zip(
            ids, self._pending, strict=True
        ):
            worker = WORKERS[int(rand() * n_workers)]
            at = due + 1 + int(rand() * 20)  # the task runs a moment after its due time
            enqueued = queued
            channel = language = address = detail = ""
            tries = 0
            sent: str | None = None
            if cancelled_at is not None and at > cancelled_at:
                status, detail = "cancelled", reason
            elif at > now:
                status = "pending"
            else:
                (chosen, address), language = self._choice(patient, kind)
                if chosen is None:
                    status, detail, address, language = "skipped", address, "", ""
                    attempts.append((message_id, _stamp(at), "skipped", "", worker, detail))
                else:
                    channel = chosen
                    draw = rand()
                    failures = 5 if draw < FAILED_SHARE else 1 + (rand() < 0.2) if draw < RETRIED_SHARE else 0
                    while True:
                        if at > now:  # a retry still waiting
                            status = "pending"
                            break
                        tries += 1
                        if tries > failures:
                            status, sent = "sent", _stamp(at)
                            attempts.append((message_id, sent, "sent", channel, worker, ""))
                            break
                        errors = ERRORS[channel]
                        detail = errors[int(rand() * len(errors))]
                        delay = schedule_rules.retry_delay(tries)
                        if delay is None:  # given up
                            status = "failed"
                            attempts.append((message_id, _stamp(at), "failed", channel, worker, detail))
                            break
                        attempts.append(
                            (message_id, _stamp(at), "failed", channel, worker, f"{detail}; retry in {delay}")
                        )
                        due, enqueued = at + int(delay.total_seconds()), at
                        at = due + 1 + int(rand() * 20)
            created_text = _stamp(created)
            messages.append(
                (
                    message_id, clinic_id, patient, appointment, plan, kind, _stamp(due), status, channel,
                    language, address, tries, "", None,
                    created_text if enqueued == created else _stamp(enqueued), sent, detail, created_text,
                )
            )  # fmt: skip
        self._pending.clear()


def _preferences(
    ctx: Context, data: ClinicData, first_booking: dict[int, tuple[int, int]]
) -> tuple[list[tuple[Any, ...]], dict[int, tuple[schedule_rules.Recipient, str]]]:
    """The clinic's contact preferences (rows) and every patient's recipient facts and language."""
    rand = ctx.rng("contact preferences", data.number).random
    rows: list[tuple[Any, ...]] = []
    recipients: dict[int, tuple[schedule_rules.Recipient, str]] = {}
    for patient, email, phone, language in (
        Patient.objects.filter(clinic_id=data.clinic.pk)
        .order_by("id")
        .values_list("id", "email", "phone", "preferred_language")
    ):
        channel, reminders, follow_up = "email", True, True
        first = first_booking.get(patient)
        if first is not None and rand() < PREFERENCE_SHARE and (email or phone):
            channel = "sms" if phone and (rand() < SMS_SHARE or not email) else "email"
            reminders = rand() >= NO_REMINDERS_SHARE
            follow_up = rand() >= NO_FOLLOW_UP_SHARE
            numbing = rand() >= NO_NUMBING_SHARE
            booked, by = first
            rows.append((patient, channel, reminders, follow_up, numbing, _stamp(booked), by))
        recipients[patient] = (
            schedule_rules.Recipient(
                email=email, phone=phone, channel=channel, reminders=reminders, follow_up=follow_up
            ),
            language,
        )
    return rows, recipients


_CANCEL_REASONS = {
    Appointment.Status.CANCELLED.value: "cancelled",
    Appointment.Status.NO_SHOW.value: "no-show",
}


def clinic_rows(ctx: Context, data: ClinicData) -> dict[str, list[tuple[Any, ...]]]:
    """The contact preferences, messages and attempts of one clinic."""
    schedule = ScheduleSettings.objects.filter(clinic=data.clinic).first()
    clock = Clock(data.clinic.zone, (schedule or ScheduleSettings()).reminder_time)
    appointments = list(
        Appointment.objects.filter(clinic_id=data.clinic.pk)
        .order_by("id")
        .values_list(
            "id",
            "patient_id",
            "plan_id",
            "kind",
            Epoch("starts_at"),
            Epoch("ends_at"),
            "status",
            Epoch("created_at"),
            "created_by_id",
            Epoch("checked_in_at"),
            Epoch("ended_at"),
        )
    )
    first_booking: dict[int, tuple[int, int]] = {}
    for _id, patient, _plan, _kind, _starts, _ends, _status, created, by, _in, _ended in appointments:
        if patient not in first_booking or created < first_booking[patient][0]:
            first_booking[patient] = (created, by)
    preferences, recipients = _preferences(ctx, data, first_booking)
    outbox = Outbox(ctx, data, recipients)
    add, due_of = outbox.add, clock.appointment_due
    checked_in: list[tuple[int, int, int, int]] = []  # (check-in, plan, patient, local day)
    for appointment, patient, plan, kind, starts, ends, status, created, _by, arrived, ended in appointments:
        treatment = kind in TREATMENT_KINDS
        day = clock.local_day(starts)
        reason = _CANCEL_REASONS.get(status, "")
        cancelled_at = ended if reason else None
        for message_kind in BOOKING_KINDS:
            due = due_of(message_kind, day=day, starts=starts, ends=ends, now=created, treatment=treatment)
            if due is not None:
                add(patient, appointment, None, message_kind, due, created, cancelled_at, reason)
        if status == Appointment.Status.CHECKED_IN and arrived is not None and treatment:
            for message_kind in SESSION_KINDS:
                due = due_of(message_kind, day=day, starts=starts, ends=ends, now=arrived, treatment=True)
                if due is not None:
                    add(patient, appointment, None, message_kind, due, arrived)
            if plan is not None:
                checked_in.append((arrived, plan, patient, day))
    # The infection watch, check-in by check-in: created at the plan's first, moved later by each later one
    # while it waits (one already gone stays as it went).
    checked_in.sort()
    watch: dict[tuple[int, str], list[int]] = {}  # (plan, kind) → [patient, due, created, queued]
    plan_kinds = sorted(PLAN_KINDS)
    for arrived, plan, patient, day in checked_in:
        for plan_kind in plan_kinds:
            due = clock.infection_due(plan_kind, last_session_day=day)
            existing = watch.get((plan, plan_kind))
            if existing is None:
                watch[(plan, plan_kind)] = [patient, due, arrived, arrived]
            elif existing[1] > arrived:
                existing[1], existing[3] = due, arrived  # moved, and queued again
    for (plan, plan_kind), (patient, due, created, queued) in sorted(watch.items()):
        add(patient, None, plan, plan_kind, due, created, enqueued=queued)
    outbox.rows(ctx.next_ids(Message, len(outbox)))
    return {"preference": preferences, "message": outbox.messages, "attempt": outbox.attempts}


def gen_messages(ctx: Context) -> Counts:
    """Contact preferences, the outbox's messages and their delivery attempts, per clinic."""
    counts = {"contact preference": 0, "message": 0, "delivery attempt": 0}
    for data in ctx.clinics:
        out = clinic_rows(ctx, data)
        # Every value is already as the database takes it (text timestamps, ints, booleans, None).
        counts["contact preference"] += ctx.write(
            ContactPreference, FIELDS_PREFERENCE, out["preference"], plain=True
        )
        counts["message"] += ctx.write(Message, FIELDS_MESSAGE, out["message"], plain=True)
        counts["delivery attempt"] += ctx.write(MessageAttempt, FIELDS_ATTEMPT, out["attempt"], plain=True)
    return counts

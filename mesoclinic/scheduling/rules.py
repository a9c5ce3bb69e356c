"""Calendar, series booking and reminder rules: pure functions over plain facts (issue 7).

No ORM, no request, no clock: ``now`` and ``today`` come in, and so does the clinic's zone. Rules
(domain.md; the calendar invariants have no domain id yet and are named R-SCHED here, see ADR.md):

- R-SERIES: the remaining sessions of a plan are proposed one after the other, each inside the window that
  ``treatments.rules.next_window`` gives after the previous one (7–10 days at first, the protocol's tapered
  interval once improvement is recorded) — the interval rule is written once, there. A booked session that a
  delay (bruising, illness, no-show) has made too early is proposed again. A date later than the window is a
  ``warn`` (``outside-series-window``) that needs an acknowledged reason.
- R-PRE-INTERVAL: never sooner than the protocol allows after the previous session (``interval-too-short``,
  ``block``), the same rule the check-in gate applies.
- R-PRE-NSAID: a session booked less than 7 days ahead leaves less than the week of NSAID washout
  (``nsaid-short-notice``, ``info``); the reminder goes 7 days before.
- R-SCHED: not in the past, inside the practitioner's working hours, not on a clinic closure, nobody
  (practitioner, room, patient) double-booked.

Time zones: dates are clinic-local; instants are UTC. A local wall-clock time typed by a person that does not
exist (the spring gap) is refused, and one that happens twice (the autumn overlap) is refused unless the
person says which (``fold`` 0: the first, 1: the second) — never guessed. Times the software makes itself
(working-hours boundaries, reminder times) are resolved by one explicit policy: a time in the gap moves
forward by the gap, a repeated time is the first one (an interval's end: the second, so the interval keeps
its length).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from mesoclinic.lib.findings import SEVERITY_ORDER, Finding
from mesoclinic.treatments.rules import SOURCE_INTERVAL, SeriesRule, next_window

SLOT_MINUTES = 5  # every appointment starts and ends on this grid (UTC minutes; every modern offset is a
# multiple of 15 minutes, so the grid is the same in clinic time)
MAX_DURATION_MINUTES = 480
NSAID_WASHOUT_DAYS = 7
SEED_004 = "seed 004_99daaf86bc4fb4d2.txt"
SOURCE_NSAID = f"{SEED_004}: avoid aspirin and other NSAIDs for one week before the procedure"
SOURCE_NUMB = "seeds 003, 004: numbing cream may be applied about 30 minutes before"
SOURCE_SCHED = "issue 7: the calendar (R-SCHED)"
SOURCE_INFECTION = "domain.md R-AE: NTM infections appear 1–12 weeks after injection"

# Infection watch after the last session (R-AE: the follow-up window for infection is 12 weeks).
INFECTION_WEEKS: dict[str, int] = {"infection_2w": 2, "infection_6w": 6, "infection_12w": 12}
SIDE_EFFECT_CHECK_DAYS = 2
# Reminders whose time has passed still go out if the appointment is far enough ahead.
NSAID_LAST_CALL = timedelta(hours=12)
DAY_BEFORE_LAST_CALL = timedelta(hours=2)
# Delivery: retries after a failure (then it stays failed), and how long a claim holds.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))


# --- local times and DST ------------------------------------------------------------------------------------


class LocalTimeError(ValueError):
    """A wall-clock time that does not exist in the zone that day, or happens twice and no choice was made."""

    def __init__(self, code: Literal["nonexistent", "ambiguous"], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def local_status(day: date, clock: time, zone: ZoneInfo) -> Literal["ok", "nonexistent", "ambiguous"]:
    naive = datetime.combine(day, clock.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if _wall(first, zone) != naive and _wall(second, zone) != naive:
        return "nonexistent"
    if first != second:
        return "ambiguous"
    return "ok"


def localize(day: date, clock: time, zone: ZoneInfo, *, fold: int | None = None) -> datetime:
    """The UTC instant of a wall-clock time typed by a person: refused when it does not exist, and when it
    happens twice unless ``fold`` says which."""
    naive = datetime.combine(day, clock.replace(tzinfo=None, fold=0))
    status = local_status(day, clock, zone)
    if status == "nonexistent":
        raise LocalTimeError(
            "nonexistent",
            _("%(time)s does not exist on %(date)s in %(zone)s (the clocks go forward): choose another time.")
            % {"time": clock.strftime("%H:%M"), "date": day.isoformat(), "zone": zone.key},
        )
    if status == "ambiguous":
        if fold not in (0, 1):
            raise LocalTimeError(
                "ambiguous",
                _(
                    "%(time)s happens twice on %(date)s in %(zone)s (the clocks go back): "
                    "say whether you mean the first or the second."
                )
                % {"time": clock.strftime("%H:%M"), "date": day.isoformat(), "zone": zone.key},
            )
        return naive.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def resolve(day: date, clock: time, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """The UTC instant of a wall-clock time the software makes (working hours, reminder times), by the
    explicit policy: in the gap → moved forward by the gap; repeated → the first (``end``: the second)."""
    naive = datetime.combine(day, clock.replace(tzinfo=None, fold=0))
    status = local_status(day, clock, zone)
    if status == "nonexistent":
        # fold=0 reads the time with the offset before the change: the instant the gap's length later.
        return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return naive.replace(tzinfo=zone, fold=1 if end else 0).astimezone(UTC)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def on_grid(instant: datetime) -> bool:
    utc = instant.astimezone(UTC)
    return utc.second == 0 and utc.microsecond == 0 and utc.minute % SLOT_MINUTES == 0


# --- working hours ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class Hours:
    weekday: int  # 0 Monday … 6 Sunday
    starts: time
    ends: time


@dataclass(frozen=True)
class DayException:
    on: date
    starts: time | None  # None with ends None: the whole day
    ends: time | None
    available: bool  # True: extra hours; False: away


@dataclass(frozen=True)
class Closure:
    starts_on: date
    ends_on: date  # inclusive
    reason: str = ""


def _minutes(clock: time) -> int:
    return clock.hour * 60 + clock.minute


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60) if minutes < 24 * 60 else time(23, 59)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _subtract(spans: list[tuple[int, int]], cut: tuple[int, int]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for start, end in spans:
        if cut[1] <= start or end <= cut[0]:
            kept.append((start, end))
            continue
        if start < cut[0]:
            kept.append((start, cut[0]))
        if cut[1] < end:
            kept.append((cut[1], end))
    return kept


def closure_on(day: date, closures: Iterable[Closure]) -> Closure | None:
    return next((c for c in closures if c.starts_on <= day <= c.ends_on), None)


def working_spans(
    day: date, hours: Iterable[Hours], exceptions: Iterable[DayException]
) -> list[tuple[int, int]]:
    """The practitioner's working minutes of the local day: usual hours, plus extra hours, minus time away
    (a whole day away wins over everything)."""
    todays = [e for e in exceptions if e.on == day]
    if any(not e.available and e.starts is None for e in todays):
        return []
    spans = _merge((_minutes(h.starts), _minutes(h.ends)) for h in hours if h.weekday == day.weekday())
    extra = [(_minutes(e.starts), _minutes(e.ends)) for e in todays if e.available and e.starts and e.ends]
    spans = _merge([*spans, *extra])
    for away in todays:
        if not away.available and away.starts is not None and away.ends is not None:
            spans = _subtract(spans, (_minutes(away.starts), _minutes(away.ends)))
    return [span for span in spans if span[1] > span[0]]


def working_intervals(
    day: date,
    zone: ZoneInfo,
    hours: Iterable[Hours],
    exceptions: Iterable[DayException] = (),
    closures: Iterable[Closure] = (),
) -> list[Interval]:
    """The practitioner's working time on a clinic-local day, as UTC intervals (none on a closure)."""
    if closure_on(day, closures) is not None:
        return []
    return [
        Interval(resolve(day, _clock(start), zone), resolve(day, _clock(end), zone, end=True))
        for start, end in working_spans(day, hours, exceptions)
        if resolve(day, _clock(start), zone) < resolve(day, _clock(end), zone, end=True)
    ]


# --- busy time ----------------------------------------------------------------------------------------------


class BusyIndex:
    """Busy intervals bucketed by UTC start date, for quick overlap questions (every interval is shorter
    than a day)."""

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        self._by_day: dict[date, list[Interval]] = defaultdict(list)
        for interval in intervals:
            self.add(interval)

    def add(self, interval: Interval) -> None:
        self._by_day[interval.start.astimezone(UTC).date()].append(interval)

    def overlaps(self, interval: Interval) -> bool:
        first = interval.start.astimezone(UTC).date() - timedelta(days=1)
        last = interval.end.astimezone(UTC).date()
        day = first
        while day <= last:
            if any(other.overlaps(interval) for other in self._by_day.get(day, ())):
                return True
            day += timedelta(days=1)
        return False

    def intervals(self) -> list[Interval]:
        return sorted((i for bucket in self._by_day.values() for i in bucket), key=lambda i: i.start)


@dataclass(frozen=True)
class PractitionerFacts:
    hours: tuple[Hours, ...]
    exceptions: tuple[DayException, ...] = ()
    busy: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    practitioner_id: int
    room_id: int | None

    @property
    def interval(self) -> Interval:
        return Interval(self.starts_at, self.ends_at)


@dataclass
class Calendar:
    """What the slot search needs to know about a clinic over a range of days. Built by the services from a
    fixed number of queries; ``take`` marks a proposed slot busy for the proposals that follow."""

    zone: ZoneInfo
    practitioners: Mapping[int, PractitionerFacts]  # in order of preference
    rooms: Sequence[int]  # room ids, in order of preference; empty: no room needed
    room_busy: Mapping[int, tuple[Interval, ...]] = field(default_factory=dict)
    patient_busy: tuple[Interval, ...] = ()
    closures: tuple[Closure, ...] = ()
    step_minutes: int = 15
    need_room: bool = True

    def __post_init__(self) -> None:
        self._practitioner_index = {pid: BusyIndex(f.busy) for pid, f in self.practitioners.items()}
        self._room_index = {rid: BusyIndex(self.room_busy.get(rid, ())) for rid in self.rooms}
        self._patient_index = BusyIndex(self.patient_busy)

    def working(self, practitioner_id: int, day: date) -> list[Interval]:
        facts = self.practitioners.get(practitioner_id)
        if facts is None:
            return []
        return working_intervals(day, self.zone, facts.hours, facts.exceptions, self.closures)

    def free_room(self, interval: Interval) -> int | None | Literal[False]:
        """A free room (None when no room is needed), or False when every room is taken."""
        if not self.need_room:
            return None
        for room_id in self.rooms:
            if not self._room_index[room_id].overlaps(interval):
                return room_id
        return False

    def is_free(self, practitioner_id: int, interval: Interval) -> bool:
        index = self._practitioner_index.get(practitioner_id)
        return (
            index is not None and not index.overlaps(interval) and not self._patient_index.overlaps(interval)
        )

    def take(self, slot: Slot) -> None:
        if slot.practitioner_id in self._practitioner_index:
            self._practitioner_index[slot.practitioner_id].add(slot.interval)
        if slot.room_id is not None and slot.room_id in self._room_index:
            self._room_index[slot.room_id].add(slot.interval)
        self._patient_index.add(slot.interval)

    def slots_on(
        self, day: date, minutes: int, *, not_before: datetime, limit: int | None = None
    ) -> list[Slot]:
        """The free slots of a local day, earliest first, across practitioners (at most one per start time:
        the first practitioner in order of preference who is free)."""
        length = timedelta(minutes=minutes)
        step = timedelta(minutes=self.step_minutes)
        found: dict[datetime, Slot] = {}
        for practitioner_id in self.practitioners:
            for span in self.working(practitioner_id, day):
                start = _ceil_grid(span.start)
                while start + length <= span.end:
                    if start >= not_before and start not in found:
                        interval = Interval(start, start + length)
                        if self.is_free(practitioner_id, interval):
                            room = self.free_room(interval)
                            if room is not False:
                                found[start] = Slot(start, start + length, practitioner_id, room)
                    start += step
        slots = [found[key] for key in sorted(found)]
        return slots[:limit] if limit is not None else slots

    def first_free(
        self, first_day: date, last_day: date, minutes: int, *, not_before: datetime
    ) -> Slot | None:
        day = first_day
        while day <= last_day:
            slots = self.slots_on(day, minutes, not_before=not_before, limit=1)
            if slots:
                return slots[0]
            day += timedelta(days=1)
        return None


def _ceil_grid(instant: datetime) -> datetime:
    utc = instant.astimezone(UTC).replace(second=0, microsecond=0)
    if utc < instant.astimezone(UTC):
        utc += timedelta(minutes=1)
    remainder = utc.minute % SLOT_MINUTES
    return utc + timedelta(minutes=(SLOT_MINUTES - remainder) % SLOT_MINUTES)


# --- booking ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The dates a session may have (R-SERIES): ``latest`` None before the first session."""

    earliest: date
    latest: date | None
    anchor: date | None  # the previous session's date the window counts from


def window_after(rule: SeriesRule, *, anchor: date | None, improved: bool, today: date) -> Window:
    found = next_window(rule, last_session_on=anchor, improved=improved)
    if found is None:
        return Window(today, None, None)
    return Window(found[0], found[1], anchor)


@dataclass(frozen=True)
class BookingFacts:
    now: datetime
    zone: ZoneInfo
    interval: Interval
    working: tuple[Interval, ...]  # the practitioner's working time that local day
    closure: Closure | None = None
    practitioner_busy: bool = False
    room_busy: bool = False
    patient_busy: bool = False
    horizon_days: int = 365
    # A session of a plan (None: a consultation or follow-up, or no plan).
    window: Window | None = None
    plan_status: str | None = None
    series_number: int | None = None
    planned_sessions: int | None = None
    protocol_sessions_max: int | None = None
    treatment: bool = False  # a session (NSAID washout matters)
    portal_notice_hours: int | None = None  # a booking made by the patient in the portal
    # The series rule, and the next session already booked after this one (number, date): this booking
    # must not make it too early.
    rule: SeriesRule | None = None
    improved: bool = False
    next_booked: tuple[int, date] | None = None


def _day(value: date) -> str:
    return date_format(value, "SHORT_DATE_FORMAT")


def booking_findings(facts: BookingFacts) -> list[Finding]:
    """Why a booking cannot be made as asked (blocks), what needs a reason (warnings) and what to tell the
    patient (notes), blocks first."""
    findings: list[Finding] = []
    start = facts.interval.start
    day = local_date(start, facts.zone)
    if start < facts.now:
        findings.append(
            Finding(
                "in-the-past",
                "block",
                "R-SCHED",
                _("This time has passed: choose a later one."),
                SOURCE_SCHED,
            )
        )
    elif start > facts.now + timedelta(days=facts.horizon_days):
        findings.append(
            Finding(
                "beyond-horizon",
                "block",
                "R-SCHED",
                _("The clinic books at most %(days)d days ahead.") % {"days": facts.horizon_days},
                SOURCE_SCHED,
            )
        )
    if facts.closure is not None:
        findings.append(
            Finding(
                "clinic-closed",
                "block",
                "R-SCHED",
                _("The clinic is closed on %(date)s (%(reason)s).")
                % {"date": _day(day), "reason": facts.closure.reason or _("closure")},
                SOURCE_SCHED,
            )
        )
    elif not any(span.contains(facts.interval) for span in facts.working):
        findings.append(
            Finding(
                "outside-working-hours",
                "block",
                "R-SCHED",
                _("The practitioner does not work at this time on %(date)s.") % {"date": _day(day)},
                SOURCE_SCHED,
            )
        )
    for busy, code, message in (
        (facts.practitioner_busy, "practitioner-busy", _("The practitioner has another appointment then.")),
        (facts.room_busy, "room-busy", _("The room is taken then.")),
        (facts.patient_busy, "patient-busy", _("The patient has another appointment then.")),
    ):
        if busy:
            findings.append(Finding(code, "block", "R-SCHED", message, SOURCE_SCHED))
    if facts.portal_notice_hours is not None and start < facts.now + timedelta(
        hours=facts.portal_notice_hours
    ):
        findings.append(
            Finding(
                "portal-short-notice",
                "block",
                "R-SCHED",
                _("Online bookings and changes are made at least %(hours)d hours ahead: call the clinic.")
                % {"hours": facts.portal_notice_hours},
                SOURCE_SCHED,
            )
        )
    findings.extend(_series_findings(facts, day))
    if facts.treatment and start >= facts.now and start - facts.now < timedelta(days=NSAID_WASHOUT_DAYS):
        findings.append(
            Finding(
                "nsaid-short-notice",
                "info",
                "R-PRE-NSAID",
                _(
                    "Less than a week ahead: the patient should stop aspirin and other NSAIDs now; the gate "
                    "checks the washout at check-in."
                ),
                SOURCE_NSAID,
            )
        )
    return sort_findings(findings)


def _series_findings(facts: BookingFacts, day: date) -> list[Finding]:
    findings: list[Finding] = []
    if facts.plan_status is not None and facts.plan_status != "active":
        findings.append(
            Finding(
                "plan-not-active",
                "block",
                "R-SERIES",
                _("The plan is not active: its sessions are booked once it is."),
                "domain.md R-SERIES",
            )
        )
    number = facts.series_number
    if (
        number is not None
        and facts.protocol_sessions_max is not None
        and number > facts.protocol_sessions_max
    ):
        findings.append(
            Finding(
                "series-complete",
                "block",
                "R-SERIES",
                _("The protocol allows at most %(max)d sessions in a series.")
                % {"max": facts.protocol_sessions_max},
                "domain.md R-SERIES",
            )
        )
    elif number is not None and facts.planned_sessions is not None and number > facts.planned_sessions:
        findings.append(
            Finding(
                "beyond-planned-sessions",
                "warn",
                "R-SERIES",
                _("The plan has %(planned)d sessions: session %(number)d goes beyond it.")
                % {"planned": facts.planned_sessions, "number": number},
                "domain.md R-SERIES",
            )
        )
    if facts.next_booked is not None and facts.rule is not None:
        following_number, following_on = facts.next_booked
        after = window_after(facts.rule, anchor=day, improved=facts.improved, today=day)
        if following_on < after.earliest:
            findings.append(
                Finding(
                    "next-session-too-soon",
                    "warn",
                    "R-SERIES",
                    _(
                        "Session %(number)d, booked on %(date)s, would then come too soon: "
                        "it will be proposed again."
                    )
                    % {"number": following_number, "date": _day(following_on)},
                    SOURCE_INTERVAL,
                    subject=str(following_number),
                )
            )
    window = facts.window
    if window is None:
        return findings
    if window.anchor is not None and day < window.earliest:
        findings.append(
            Finding(
                "interval-too-short",
                "block",
                "R-PRE-INTERVAL",
                _(
                    "Too soon after the session of %(anchor)s: the protocol allows %(earliest)s at the "
                    "earliest."
                )
                % {"anchor": _day(window.anchor), "earliest": _day(window.earliest)},
                SOURCE_INTERVAL,
            )
        )
    elif window.latest is not None and day > window.latest:
        findings.append(
            Finding(
                "outside-series-window",
                "warn",
                "R-SERIES",
                _("Later than the series allows (%(earliest)s to %(latest)s): give the reason.")
                % {"earliest": _day(window.earliest), "latest": _day(window.latest)},
                SOURCE_INTERVAL,
            )
        )
    return findings


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda finding: SEVERITY_ORDER[finding.severity])


def unacknowledged(findings: Iterable[Finding], acknowledgements: Mapping[str, str]) -> list[Finding]:
    return [f for f in findings if f.severity == "warn" and not acknowledgements.get(f.key, "").strip()]


# --- series proposals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Booked:
    appointment_id: int
    slot: Slot


ProposalState = Literal["booked", "rebook", "proposed", "no-slot"]


@dataclass(frozen=True)
class Proposal:
    number: int
    window: Window
    state: ProposalState
    slot: Slot | None  # the booked slot ("booked"), else the first free slot proposed
    booked: Booked | None = None  # the booking a "rebook" replaces

    @property
    def earliest(self) -> date:
        return self.window.earliest

    @property
    def latest(self) -> date | None:
        return self.window.latest

    def date_in(self, zone: ZoneInfo) -> date | None:
        return local_date(self.slot.starts_at, zone) if self.slot else None

    def outside_window(self, zone: ZoneInfo) -> bool:
        on = self.date_in(zone)
        return on is not None and self.window.latest is not None and on > self.window.latest


@dataclass(frozen=True)
class SeriesFacts:
    rule: SeriesRule
    improved: bool
    planned_sessions: int
    done: tuple[date, ...]  # the dates of the plan's sessions so far (opened or signed), in order
    booked: Mapping[int, Booked]  # active bookings by session number
    today: date
    now: datetime
    minutes: int
    horizon: date  # no proposal later than this


def series_proposals(facts: SeriesFacts, calendar: Calendar) -> list[Proposal]:
    """Every remaining session of the plan, in order: its window after the previous one (done, booked or
    proposed) and its booking, or the first free slot from the window's first day — inside the window when
    the calendar has room, else the first later one (``outside_window``), else none ("no-slot"). A booking
    that has become too early (a delay before it) is proposed again ("rebook"). The calendar is updated with
    each proposal, so proposals never overlap each other or anything booked."""
    zone = calendar.zone
    proposals: list[Proposal] = []
    anchor = facts.done[-1] if facts.done else None
    for number in range(len(facts.done) + 1, facts.planned_sessions + 1):
        window = window_after(facts.rule, anchor=anchor, improved=facts.improved, today=facts.today)
        booking = facts.booked.get(number)
        if booking is not None:
            on = local_date(booking.slot.starts_at, zone)
            if on >= window.earliest or window.anchor is None:
                proposals.append(Proposal(number, window, "booked", booking.slot))
                anchor = on
                continue
        first = max(window.earliest, facts.today)
        not_before = facts.now
        slot = None
        if window.latest is not None and first <= window.latest:
            slot = calendar.first_free(
                first, min(window.latest, facts.horizon), facts.minutes, not_before=not_before
            )
        if slot is None:
            later = (
                first if window.latest is None or first > window.latest else window.latest + timedelta(days=1)
            )
            slot = calendar.first_free(later, facts.horizon, facts.minutes, not_before=not_before)
        state: ProposalState = "rebook" if booking is not None else "proposed"
        if slot is None:
            proposals.append(Proposal(number, window, "no-slot", None, booking))
            anchor = first
            continue
        calendar.take(slot)
        proposals.append(Proposal(number, window, state, slot, booking))
        anchor = local_date(slot.starts_at, zone)
    return proposals


def shortest_interval(rule: SeriesRule, *, improved: bool) -> timedelta:
    """The least time between two sessions (from ``next_window``, the one home of the interval rule)."""
    anchor = date(2000, 1, 1)
    found = next_window(rule, last_session_on=anchor, improved=improved)
    if found is None:  # next_window answers a window whenever there is a last session
        raise ValueError("no interval")
    return found[0] - anchor


# --- reminders and messages ---------------------------------------------------------------------------------


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return resolve(day, clock, zone)


def appointment_message_due(
    kind: str,
    *,
    starts_at: datetime,
    ends_at: datetime,
    zone: ZoneInfo,
    now: datetime,
    reminder_time: time,
    treatment: bool,
) -> datetime | None:
    """When a message about an appointment goes out, or None when it does not (too late, or not for this
    type of appointment). Booking: confirmation now; NSAID reminder 7 days before (sessions only) and the
    day-before reminder, at the reminder time in clinic time — or now, when that has passed and the
    appointment is still far enough ahead. After the session: aftercare when it ends, the side-effect check
    2 days later."""
    day = local_date(starts_at, zone)
    if kind == "confirmation":
        return now
    if kind == "nsaid":
        if not treatment:
            return None
        due = _at(day - timedelta(days=NSAID_WASHOUT_DAYS), reminder_time, zone)
        if due >= now:
            return due
        return now if starts_at - now > NSAID_LAST_CALL else None
    if kind == "day_before":
        due = _at(day - timedelta(days=1), reminder_time, zone)
        if due >= now:
            return due
        return now if starts_at - now > DAY_BEFORE_LAST_CALL else None
    if kind == "aftercare":
        return max(ends_at, now) if treatment else None
    if kind == "side_effect_check":
        return (
            max(_at(day + timedelta(days=SIDE_EFFECT_CHECK_DAYS), reminder_time, zone), now)
            if treatment
            else None
        )
    raise ValueError(f"not an appointment message: {kind}")


def infection_due(kind: str, *, last_session_on: date, zone: ZoneInfo, reminder_time: time) -> datetime:
    """Infection watch at 2, 6 and 12 weeks after the plan's last session (R-AE)."""
    return _at(last_session_on + timedelta(weeks=INFECTION_WEEKS[kind]), reminder_time, zone)


@dataclass(frozen=True)
class Recipient:
    email: str
    phone: str
    channel: str  # preferred: "email" | "sms"
    reminders: bool
    follow_up: bool


REMINDER_MESSAGES = frozenset({"confirmation", "nsaid", "day_before"})


def delivery_choice(kind: str, recipient: Recipient) -> tuple[str, str] | tuple[None, str]:
    """The channel and address a message goes to, or (None, why not): the patient's opt-outs first, then the
    preferred channel, then the other one when the preferred has no address."""
    wanted = recipient.reminders if kind in REMINDER_MESSAGES else recipient.follow_up
    if not wanted:
        return None, "opted-out"
    addresses = {"email": recipient.email.strip(), "sms": recipient.phone.strip()}
    order = [recipient.channel, "sms" if recipient.channel == "email" else "email"]
    for channel in order:
        if addresses.get(channel):
            return channel, addresses[channel]
    return None, "no-address"


ClaimDecision = Literal["send", "done", "busy", "in-doubt", "not-yet"]


def claim_decision(
    *, status: str, due_at: datetime, claimed_at: datetime | None, now: datetime, lease: timedelta
) -> ClaimDecision:
    """What a delivery attempt does with the row it locked: send it, leave it (finished, not due, or held by
    a live claim), or resolve a claim that outlived its lease (the worker died while sending: it may or may
    not have gone)."""
    if status in ("sent", "skipped", "cancelled", "failed", "uncertain"):
        return "done"
    if status == "sending":
        if claimed_at is not None and now - claimed_at < lease:
            return "busy"
        return "in-doubt"
    if due_at > now:
        return "not-yet"
    return "send"


def retry_delay(attempts: int) -> timedelta | None:
    """The wait before the next attempt after ``attempts`` failed ones (None: give up and mark failed)."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[attempts - 1]

"""The pure scheduling rules (issue 7): DST-explicit local times, working hours, the slot search, booking
findings, series proposals (R-SERIES, R-PRE-INTERVAL), message times and delivery decisions. Table-driven,
and with hypothesis over series generation: intervals always inside the protocol's window, never an overlap,
in DST weeks of several zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesoclinic.scheduling import rules
from mesoclinic.treatments.rules import SeriesRule, next_window

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Sydney",
    "America/Santiago",  # changes at midnight: a day without 00:00, a day with two
    "Asia/Kolkata",  # +05:30, no DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
]
WEEKDAYS = tuple(rules.Hours(day, time(9), time(17)) for day in range(5))


def transitions(zone: ZoneInfo, start: date = date(2026, 1, 1), days: int = 3 * 366) -> list[date]:
    """The local days on which the zone's offset changes."""
    found = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        before = datetime.combine(day, time(0), tzinfo=UTC).astimezone(zone).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC).astimezone(zone).utcoffset()
        if before != after:
            found.append(day)
    return found or [start + timedelta(days=100)]


TRANSITIONS = {name: transitions(ZoneInfo(name)) for name in ZONES}


# --- local times -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "clock", "status"),
    [
        (PARIS, date(2026, 3, 29), time(2, 30), "nonexistent"),  # 02:00 → 03:00
        (PARIS, date(2026, 3, 29), time(3, 0), "ok"),
        (PARIS, date(2026, 10, 25), time(2, 30), "ambiguous"),  # 03:00 → 02:00
        (PARIS, date(2026, 10, 25), time(3, 0), "ok"),
        (NEW_YORK, date(2026, 3, 8), time(2, 15), "nonexistent"),
        (NEW_YORK, date(2026, 11, 1), time(1, 30), "ambiguous"),
        (ZoneInfo("America/Santiago"), date(2026, 9, 6), time(0, 30), "nonexistent"),
        (ZoneInfo("Asia/Kolkata"), date(2026, 3, 29), time(2, 30), "ok"),
    ],
)
def test_local_status(zone: ZoneInfo, day: date, clock: time, status: str) -> None:
    assert rules.local_status(day, clock, zone) == status


def test_a_time_in_the_gap_is_refused_and_a_repeated_time_needs_a_choice() -> None:
    with pytest.raises(rules.LocalTimeError) as gap:
        rules.localize(date(2026, 3, 29), time(2, 30), PARIS)
    assert gap.value.code == "nonexistent" and "does not exist" in gap.value.message
    with pytest.raises(rules.LocalTimeError) as twice:
        rules.localize(date(2026, 10, 25), time(2, 30), PARIS)
    assert twice.value.code == "ambiguous"
    first = rules.localize(date(2026, 10, 25), time(2, 30), PARIS, fold=0)
    second = rules.localize(date(2026, 10, 25), time(2, 30), PARIS, fold=1)
    assert (first, second) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )


def test_the_software_resolves_its_own_times_by_the_stated_policy() -> None:
    # In the gap: moved forward by the gap (02:30 → 03:30 CEST); repeated: the first (an end: the second).
    assert rules.resolve(date(2026, 3, 29), time(2, 30), PARIS) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert rules.resolve(date(2026, 10, 25), time(2, 30), PARIS) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert rules.resolve(date(2026, 10, 25), time(2, 30), PARIS, end=True) == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    offset=st.integers(-3, 3),
    which=st.integers(0, 5),
    minutes=st.integers(0, 24 * 12 - 1).map(lambda n: n * 5),
    fold=st.sampled_from([None, 0, 1]),
)
def test_localize_round_trips_or_refuses(
    zone_name: str, offset: int, which: int, minutes: int, fold: int | None
) -> None:
    zone = ZoneInfo(zone_name)
    days = TRANSITIONS[zone_name]
    day = days[which % len(days)] + timedelta(days=offset)
    clock = time(minutes // 60, minutes % 60)
    status = rules.local_status(day, clock, zone)
    if status == "nonexistent" or (status == "ambiguous" and fold is None):
        with pytest.raises(rules.LocalTimeError) as refused:
            rules.localize(day, clock, zone, fold=fold)
        assert refused.value.code == status
        return
    instant = rules.localize(day, clock, zone, fold=fold)
    local = instant.astimezone(zone)
    assert (local.date(), local.time().replace(fold=0)) == (day, clock)
    if status == "ambiguous":
        assert local.fold == fold
    # The software's own policy never raises and never goes back in wall time.
    assert rules.resolve(day, clock, zone).astimezone(zone).replace(tzinfo=None) >= datetime.combine(
        day, clock
    )


# --- working hours ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exceptions", "expected"),
    [
        ((), [(9 * 60, 17 * 60)]),
        ((rules.DayException(date(2026, 12, 7), None, None, False),), []),
        ((rules.DayException(date(2026, 12, 7), time(12), time(14), False),), [(540, 720), (840, 1020)]),
        ((rules.DayException(date(2026, 12, 7), time(17), time(19), True),), [(540, 1140)]),
        ((rules.DayException(date(2026, 12, 8), None, None, False),), [(540, 1020)]),  # another day
        (
            (
                rules.DayException(date(2026, 12, 7), time(18), time(20), True),
                rules.DayException(date(2026, 12, 7), None, None, False),
            ),
            [],  # away the whole day wins over extra hours
        ),
    ],
)
def test_working_spans_apply_exceptions(
    exceptions: tuple[rules.DayException, ...], expected: list[tuple[int, int]]
) -> None:
    assert rules.working_spans(date(2026, 12, 7), WEEKDAYS, exceptions) == expected  # a Monday


def test_no_working_time_on_a_closure_or_a_day_off() -> None:
    closure = rules.Closure(date(2026, 12, 24), date(2026, 12, 26), "holidays")
    assert rules.working_intervals(date(2026, 12, 24), PARIS, WEEKDAYS, (), (closure,)) == []
    assert rules.working_intervals(date(2026, 12, 27), PARIS, WEEKDAYS) == []  # a Sunday
    (span,) = rules.working_intervals(date(2026, 12, 28), PARIS, WEEKDAYS)
    assert (span.start, span.end) == (
        datetime(2026, 12, 28, 8, tzinfo=UTC),
        datetime(2026, 12, 28, 16, tzinfo=UTC),
    )


def test_working_hours_through_the_spring_gap_keep_their_wall_clock() -> None:
    night = (rules.Hours(6, time(1), time(5)),)  # Sunday 01:00–05:00, across 02:00 → 03:00
    (span,) = rules.working_intervals(date(2026, 3, 29), PARIS, night)
    assert span.end - span.start == timedelta(hours=3)  # one hour of that night does not exist


def test_slots_step_from_the_start_of_work_and_skip_what_is_busy() -> None:
    day = date(2026, 12, 7)
    busy = rules.Interval(rules.localize(day, time(9, 15), PARIS), rules.localize(day, time(10), PARIS))
    calendar = rules.Calendar(
        zone=PARIS, practitioners={1: rules.PractitionerFacts(WEEKDAYS, (), (busy,))}, rooms=[10]
    )
    now = datetime(2026, 12, 1, tzinfo=UTC)
    starts = [
        s.starts_at.astimezone(PARIS).strftime("%H:%M")
        for s in calendar.slots_on(day, 30, not_before=now, limit=3)
    ]
    assert starts == [
        "10:00",
        "10:15",
        "10:30",
    ]  # 09:00 would overlap 09:15; a 30-minute slot fits from 10:00


# --- booking findings ---------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 7, 7, tzinfo=UTC)  # Monday 08:00 in Paris
MONDAY = date(2026, 12, 7)


def _facts(**overrides: object) -> rules.BookingFacts:
    start = rules.localize(MONDAY + timedelta(days=8), time(10), PARIS)
    values: dict[str, object] = {
        "now": NOW,
        "zone": PARIS,
        "interval": rules.Interval(start, start + timedelta(minutes=45)),
        "working": tuple(rules.working_intervals(MONDAY + timedelta(days=8), PARIS, WEEKDAYS)),
        "treatment": True,
    }
    values.update(overrides)
    return rules.BookingFacts(**values)  # type: ignore[arg-type]


def _codes(facts: rules.BookingFacts) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in rules.booking_findings(facts)]


PAST = rules.Interval(NOW - timedelta(hours=1), NOW - timedelta(minutes=15))
EVENING = rules.Interval(
    rules.localize(MONDAY + timedelta(days=8), time(17), PARIS),
    rules.localize(MONDAY + timedelta(days=8), time(17, 45), PARIS),
)
WINDOW = rules.Window(MONDAY + timedelta(days=7), MONDAY + timedelta(days=10), MONDAY)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"interval": PAST}, [("in-the-past", "block"), ("outside-working-hours", "block")]),
        ({"interval": EVENING}, [("outside-working-hours", "block")]),
        (
            {"closure": rules.Closure(MONDAY, MONDAY + timedelta(days=30), "works")},
            [("clinic-closed", "block")],
        ),
        ({"practitioner_busy": True}, [("practitioner-busy", "block")]),
        ({"room_busy": True}, [("room-busy", "block")]),
        ({"patient_busy": True}, [("patient-busy", "block")]),
        ({"window": WINDOW}, []),
        (
            {
                "window": rules.Window(
                    MONDAY + timedelta(days=9), MONDAY + timedelta(days=12), MONDAY + timedelta(days=2)
                )
            },
            [("interval-too-short", "block")],
        ),
        (
            {
                "window": rules.Window(
                    MONDAY + timedelta(days=1), MONDAY + timedelta(days=4), MONDAY - timedelta(days=6)
                )
            },
            [("outside-series-window", "warn")],
        ),
        ({"plan_status": "draft"}, [("plan-not-active", "block")]),
        (
            {"series_number": 9, "planned_sessions": 8, "protocol_sessions_max": 10},
            [("beyond-planned-sessions", "warn")],
        ),
        (
            {"series_number": 11, "planned_sessions": 8, "protocol_sessions_max": 10},
            [("series-complete", "block")],
        ),
        ({"portal_notice_hours": 24 * 10}, [("portal-short-notice", "block")]),
        ({"horizon_days": 3}, [("beyond-horizon", "block")]),
    ],
)
def test_booking_findings(overrides: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert _codes(_facts(**overrides)) == expected


def test_a_booking_that_makes_the_next_booked_session_too_early_warns() -> None:
    day = MONDAY + timedelta(days=8)
    rule = SeriesRule(7, 14)
    assert _codes(_facts(rule=rule, next_booked=(3, day + timedelta(days=7)))) == []
    (finding,) = rules.booking_findings(_facts(rule=rule, next_booked=(3, day + timedelta(days=6))))
    assert (finding.code, finding.severity, finding.key) == (
        "next-session-too-soon",
        "warn",
        "next-session-too-soon:3",
    )
    # Once improvement is recorded the next session must wait the tapered interval.
    tapered = SeriesRule(7, 14, 14, 30)
    assert _codes(_facts(rule=tapered, improved=True, next_booked=(3, day + timedelta(days=10)))) == [
        ("next-session-too-soon", "warn")
    ]
    assert rules.shortest_interval(tapered, improved=True) == timedelta(days=14)


def test_a_session_less_than_a_week_ahead_notes_the_nsaid_washout() -> None:
    soon = rules.localize(MONDAY + timedelta(days=2), time(10), PARIS)
    facts = _facts(
        interval=rules.Interval(soon, soon + timedelta(minutes=45)),
        working=tuple(rules.working_intervals(MONDAY + timedelta(days=2), PARIS, WEEKDAYS)),
    )
    (finding,) = rules.booking_findings(facts)
    assert (finding.code, finding.severity, finding.rule) == ("nsaid-short-notice", "info", "R-PRE-NSAID")
    assert _codes(_facts(interval=facts.interval, working=facts.working, treatment=False)) == []


# --- series proposals ---------------------------------------------------------------------------------------


def _calendar(zone: ZoneInfo = PARIS, busy: tuple[rules.Interval, ...] = ()) -> rules.Calendar:
    return rules.Calendar(
        zone=zone, practitioners={1: rules.PractitionerFacts(WEEKDAYS, (), busy)}, rooms=[10]
    )


def _series(**overrides: object) -> rules.SeriesFacts:
    values: dict[str, object] = {
        "rule": SeriesRule(7, 10, 14, 30),
        "improved": False,
        "planned_sessions": 6,
        "done": (),
        "booked": {},
        "today": MONDAY,
        "now": NOW,
        "minutes": 45,
        "horizon": MONDAY + timedelta(days=365),
    }
    values.update(overrides)
    return rules.SeriesFacts(**values)  # type: ignore[arg-type]


def _local(proposal: rules.Proposal) -> str:
    assert proposal.slot is not None
    return proposal.slot.starts_at.astimezone(PARIS).strftime("%a %Y-%m-%d %H:%M")


def test_a_new_series_is_proposed_a_week_apart_from_the_first_free_slot() -> None:
    proposals = rules.series_proposals(_series(), _calendar())
    assert [p.state for p in proposals] == ["proposed"] * 6
    assert [_local(p) for p in proposals] == [
        "Mon 2026-12-07 09:00",
        "Mon 2026-12-14 09:00",
        "Mon 2026-12-21 09:00",
        "Mon 2026-12-28 09:00",
        "Mon 2027-01-04 09:00",
        "Mon 2027-01-11 09:00",
    ]
    assert proposals[1].window == rules.Window(date(2026, 12, 14), date(2026, 12, 17), date(2026, 12, 7))


def test_after_improvement_the_series_tapers() -> None:
    done = (MONDAY - timedelta(days=14),)
    proposals = rules.series_proposals(_series(done=done, improved=True, planned_sessions=3), _calendar())
    assert [(p.earliest, p.latest) for p in proposals] == [
        (MONDAY, MONDAY + timedelta(days=16)),
        (MONDAY + timedelta(days=14), MONDAY + timedelta(days=30)),
    ]


def test_a_delay_proposes_the_following_sessions_again() -> None:
    """Session 2 was missed (no-show): it is proposed from today, and the booked session 3, now less than 7
    days after it, is proposed again ("rebook"); session 4, booked far enough after, stays."""
    done = (MONDAY - timedelta(days=9),)
    three = rules.localize(MONDAY + timedelta(days=3), time(9), PARIS)
    four = rules.localize(MONDAY + timedelta(days=14), time(9), PARIS)
    booked = {
        3: rules.Booked(30, rules.Slot(three, three + timedelta(minutes=45), 1, 10)),
        4: rules.Booked(40, rules.Slot(four, four + timedelta(minutes=45), 1, 10)),
    }
    busy = tuple(b.slot.interval for b in booked.values())
    proposals = rules.series_proposals(
        _series(done=done, booked=booked, planned_sessions=4), _calendar(busy=busy)
    )
    assert [(p.number, p.state) for p in proposals] == [(2, "proposed"), (3, "rebook"), (4, "booked")]
    assert _local(proposals[0]) == "Mon 2026-12-07 09:00"
    assert _local(proposals[1]) == "Mon 2026-12-14 09:00"  # a week after the new session 2
    assert proposals[1].booked == booked[3]


def test_a_full_window_proposes_the_first_later_slot_and_says_so() -> None:
    # The practitioner is away from the 14th to the 18th: session 2 cannot be inside 14th–17th.
    away = tuple(rules.DayException(MONDAY + timedelta(days=d), None, None, False) for d in range(7, 12))
    calendar = rules.Calendar(
        zone=PARIS, practitioners={1: rules.PractitionerFacts(WEEKDAYS, away)}, rooms=[10]
    )
    proposals = rules.series_proposals(_series(planned_sessions=2), calendar)
    assert _local(proposals[1]) == "Mon 2026-12-21 09:00" and proposals[1].outside_window(PARIS)


def test_no_slot_at_all() -> None:
    calendar = rules.Calendar(zone=PARIS, practitioners={1: rules.PractitionerFacts(())}, rooms=[10])
    proposals = rules.series_proposals(
        _series(planned_sessions=2, horizon=MONDAY + timedelta(days=30)), calendar
    )
    assert [p.state for p in proposals] == ["no-slot", "no-slot"] and proposals[1].window.anchor == MONDAY


hours_strategy = st.lists(
    st.tuples(
        st.integers(0, 6),
        st.integers(0, 22 * 4).map(lambda q: q * 15),  # start, minutes of the day
        st.integers(4, 40).map(lambda q: q * 15),  # length
    ),
    min_size=0,
    max_size=8,
)


@st.composite
def series_cases(draw: st.DrawFn) -> tuple[rules.SeriesFacts, dict[str, object]]:
    zone_name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(zone_name)
    days = TRANSITIONS[zone_name]
    today = days[draw(st.integers(0, len(days) - 1))] + timedelta(days=draw(st.integers(-10, 3)))
    low = draw(st.integers(1, 21))
    high = draw(st.integers(low, low + 20))
    taper = draw(st.booleans())
    taper_low = draw(st.integers(low, low + 20)) if taper else None
    taper_high = draw(st.integers(taper_low, taper_low + 20)) if taper_low is not None else None
    rule = SeriesRule(low, high, taper_low, taper_high)
    planned = draw(st.integers(1, 10))
    done_count = draw(st.integers(0, planned - 1))
    gap_back = draw(st.integers(0, 40))
    done: list[date] = []
    day = today - timedelta(days=gap_back)
    for _ in range(done_count):
        done.insert(0, day)
        day -= timedelta(days=draw(st.integers(low, high)))
    practitioners: dict[int, list[rules.Hours]] = {}
    for pid in (1, 2)[: draw(st.integers(1, 2))]:
        practitioners[pid] = [
            rules.Hours(wd, rules._clock(start), rules._clock(min(start + length, 24 * 60 - 1)))
            for wd, start, length in draw(hours_strategy)
            if start + 15 < 24 * 60
        ]
    rooms = [10, 11][: draw(st.integers(1, 2))]
    horizon = today + timedelta(days=90)
    now = rules.resolve(today, time(draw(st.integers(0, 23))), zone)
    busy_base = rules.resolve(today, time(0), zone)
    busy = [
        rules.Interval(busy_base + timedelta(minutes=5 * m), busy_base + timedelta(minutes=5 * m + 5 * n))
        for m, n in draw(st.lists(st.tuples(st.integers(0, 12 * 24 * 60), st.integers(1, 36)), max_size=25))
    ]
    split = len(busy) // 3
    facts = rules.SeriesFacts(
        rule=rule,
        improved=draw(st.booleans()),
        planned_sessions=planned,
        done=tuple(done),
        booked={},
        today=today,
        now=now,
        minutes=draw(st.integers(3, 24).map(lambda q: q * 5)),
        horizon=horizon,
    )
    calendar_args: dict[str, object] = {
        "zone": zone,
        "practitioners": {
            pid: rules.PractitionerFacts(tuple(h), (), tuple(busy[:split]))
            for pid, h in practitioners.items()
        },
        "rooms": rooms,
        "room_busy": {rooms[0]: tuple(busy[split : 2 * split])},
        "patient_busy": tuple(busy[2 * split :]),
        "step_minutes": draw(st.sampled_from([5, 10, 15, 30])),
    }
    return facts, calendar_args


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_cases())
def test_series_proposals_stay_in_the_window_never_overlap_and_respect_the_calendar(
    case: tuple[rules.SeriesFacts, dict[str, object]],
) -> None:
    facts, calendar_args = case
    calendar = rules.Calendar(**calendar_args)  # type: ignore[arg-type]
    zone = calendar.zone
    proposals = rules.series_proposals(facts, calendar)
    assert [p.number for p in proposals] == list(range(len(facts.done) + 1, facts.planned_sessions + 1))
    previous = facts.done[-1] if facts.done else None
    taken: list[rules.Slot] = []
    for proposal in proposals:
        window = proposal.window
        assert window.anchor == previous
        expected = next_window(facts.rule, last_session_on=previous, improved=facts.improved)
        assert (window.earliest, window.latest) == (expected if expected else (facts.today, None))
        if proposal.slot is None:
            assert proposal.state == "no-slot"
            previous = max(window.earliest, facts.today)
            continue
        slot = proposal.slot
        on = rules.local_date(slot.starts_at, zone)
        # Never sooner than the protocol allows, never in the past, inside the working hours, on the grid.
        assert on >= window.earliest and on >= facts.today and slot.starts_at >= facts.now
        assert rules.on_grid(slot.starts_at) and slot.ends_at - slot.starts_at == timedelta(
            minutes=facts.minutes
        )
        assert any(span.contains(slot.interval) for span in calendar.working(slot.practitioner_id, on))
        # Inside the window whenever the calendar had room there; later only when it had none.
        if proposal.outside_window(zone):
            fresh = rules.Calendar(**calendar_args)  # type: ignore[arg-type]
            for earlier in taken:
                fresh.take(earlier)
            assert window.latest is not None
            first = max(window.earliest, facts.today)
            if first <= window.latest:
                assert (
                    fresh.first_free(
                        first, min(window.latest, facts.horizon), facts.minutes, not_before=facts.now
                    )
                    is None
                )
        # No overlap with anything busy or with the other proposals.
        practitioner_facts = cast(dict[int, rules.PractitionerFacts], calendar_args["practitioners"])
        patient_busy = cast(tuple[rules.Interval, ...], calendar_args["patient_busy"])
        room_busy = cast(dict[int, tuple[rules.Interval, ...]], calendar_args["room_busy"])
        busy = [*practitioner_facts[slot.practitioner_id].busy, *patient_busy]
        if slot.room_id is not None:
            busy.extend(room_busy.get(slot.room_id, ()))
        assert not any(other.overlaps(slot.interval) for other in busy)
        assert not any(other.interval.overlaps(slot.interval) for other in taken)
        taken.append(slot)
        previous = on


# --- messages -----------------------------------------------------------------------------------------------


def test_reminder_times_in_clinic_time_across_a_dst_change() -> None:
    """A session on Monday 30 March 2026 at 10:00 in Paris (the clocks went forward on the 29th): the NSAID
    reminder goes at 10:00 CET on the 23rd, the day-before reminder at 10:00 CEST on the 29th."""
    start = rules.localize(date(2026, 3, 30), time(10), PARIS)
    end = start + timedelta(minutes=45)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    due = {
        kind: rules.appointment_message_due(
            kind, starts_at=start, ends_at=end, zone=PARIS, now=now, reminder_time=time(10), treatment=True
        )
        for kind in ("confirmation", "nsaid", "day_before", "aftercare", "side_effect_check")
    }
    assert due == {
        "confirmation": now,
        "nsaid": datetime(2026, 3, 23, 9, tzinfo=UTC),
        "day_before": datetime(2026, 3, 29, 8, tzinfo=UTC),
        "aftercare": end,
        "side_effect_check": datetime(2026, 4, 1, 8, tzinfo=UTC),
    }


@pytest.mark.parametrize(
    ("hours_ahead", "treatment", "nsaid", "day_before"),
    [
        (24 * 10, True, "scheduled", "scheduled"),
        (24 * 3, True, "now", "scheduled"),
        (6, True, None, "now"),
        (1, True, None, None),
        (24 * 10, False, None, "scheduled"),
    ],
)
def test_late_bookings_get_their_reminders_now_or_not_at_all(
    hours_ahead: int, treatment: bool, nsaid: str | None, day_before: str | None
) -> None:
    now = datetime(2026, 12, 7, 7, 5, tzinfo=UTC)
    start = now + timedelta(hours=hours_ahead)

    def label(kind: str) -> str | None:
        due = rules.appointment_message_due(
            kind,
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            zone=PARIS,
            now=now,
            reminder_time=time(10),
            treatment=treatment,
        )
        return None if due is None else ("now" if due == now else "scheduled")

    assert (label("nsaid"), label("day_before")) == (nsaid, day_before)


def test_infection_watch_at_2_6_and_12_weeks() -> None:
    due = [
        rules.infection_due(
            kind, last_session_on=date(2026, 12, 7), zone=PARIS, reminder_time=time(10)
        ).date()
        for kind in ("infection_2w", "infection_6w", "infection_12w")
    ]
    assert due == [date(2026, 12, 21), date(2027, 1, 18), date(2027, 3, 1)]


R = rules.Recipient


@pytest.mark.parametrize(
    ("kind", "recipient", "expected"),
    [
        ("confirmation", R("a@x.test", "+33 6", "email", True, True), ("email", "a@x.test")),
        ("confirmation", R("a@x.test", "+33 6", "sms", True, True), ("sms", "+33 6")),
        ("confirmation", R("", "+33 6", "email", True, True), ("sms", "+33 6")),
        ("nsaid", R("a@x.test", "", "sms", True, True), ("email", "a@x.test")),
        ("day_before", R("a@x.test", "", "email", False, True), (None, "opted-out")),
        ("aftercare", R("a@x.test", "", "email", False, True), ("email", "a@x.test")),
        ("infection_12w", R("a@x.test", "", "email", True, False), (None, "opted-out")),
        ("side_effect_check", R(" ", "", "email", True, True), (None, "no-address")),
    ],
)
def test_delivery_choice(kind: str, recipient: rules.Recipient, expected: tuple[str | None, str]) -> None:
    assert rules.delivery_choice(kind, recipient) == expected


LEASE = timedelta(minutes=10)


@pytest.mark.parametrize(
    ("status", "due_minutes", "claimed_minutes_ago", "expected"),
    [
        ("pending", -1, None, "send"),
        ("pending", 5, None, "not-yet"),
        ("sending", -1, 2, "busy"),
        ("sending", -1, 11, "in-doubt"),
        ("sending", -1, None, "in-doubt"),
        ("sent", -1, None, "done"),
        ("failed", -1, None, "done"),
        ("uncertain", -1, None, "done"),
        ("cancelled", -1, None, "done"),
        ("skipped", -1, None, "done"),
    ],
)
def test_claim_decision(
    status: str, due_minutes: int, claimed_minutes_ago: int | None, expected: str
) -> None:
    claimed = None if claimed_minutes_ago is None else NOW - timedelta(minutes=claimed_minutes_ago)
    assert (
        rules.claim_decision(
            status=status,
            due_at=NOW + timedelta(minutes=due_minutes),
            claimed_at=claimed,
            now=NOW,
            lease=LEASE,
        )
        == expected
    )


def test_retries_back_off_then_stop() -> None:
    assert [rules.retry_delay(n) for n in range(0, 6)] == [
        None,
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        None,
    ]

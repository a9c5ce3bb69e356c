"""The pure rules of side effects (issue 8): R-AE (the list, the expected course, checking an event, linking
it to sessions, follow-ups), R-PRE-BRUISE (the gate's answer), R-SIGNAL (the scan) and R-EVID (rates with
Wilson intervals). No database: plain values in, values out; boundaries tested exactly and ranges with
hypothesis; the statistics compared with scipy and statsmodels on the same counts."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest  # type: ignore[import-untyped]
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]
from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

from mesoclinic.safety import rules
from mesoclinic.safety.rules import (
    BruiseFacts,
    EventFacts,
    Exposure,
    Infection,
    SessionFacts,
    SignalSettings,
    Source,
)

TODAY = date(2026, 6, 30)
FIRST = date(2026, 3, 1)
DAY = timedelta(days=1)


# --- R-AE: the list and the expected course -----------------------------------------------------------------


def test_the_kinds_are_the_fifteen_effects_of_r_ae() -> None:
    assert list(rules.KINDS) == [
        "bruising",
        "swelling",
        "bumps",
        "numbness",
        "stinging",
        "itching",
        "discoloration",
        "nausea",
        "pain",
        "sensitivity",
        "redness",
        "rash",
        "infection",
        "scarring",
        "other",
    ]
    assert list(rules.SEVERITIES) == ["mild", "moderate", "severe", "life-threatening"]
    assert {"arnica", "topical-antibiotic"} <= set(rules.ACTIONS)
    assert set(rules.OUTCOMES) == rules.RESOLVED_OUTCOMES | rules.OPEN_OUTCOMES
    assert not rules.RESOLVED_OUTCOMES & rules.OPEN_OUTCOMES


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        ("bruising", 10),  # "within days"
        ("swelling", 2),  # "a day or two"
        ("bumps", 2),
        ("numbness", 10),  # "3-10 days"
        ("stinging", 1),  # "brief"
        ("itching", 2),
        ("discoloration", 90),
        ("nausea", 1),
        ("pain", 3),
        ("sensitivity", 3),
        ("redness", 3),
        ("rash", 7),
        ("other", 7),
        ("infection", None),  # reviewed at once
        ("scarring", None),
    ],
)
def test_the_expected_course_is_data_per_kind(kind: str, days: int | None) -> None:
    onset = date(2026, 5, 1)
    assert rules.KINDS[kind].course_days == days
    assert rules.expected_end(kind, onset) == (None if days is None else onset + timedelta(days=days))
    assert rules.KINDS[kind].course  # said in words, shown on the form


def test_labels_fall_back_to_the_code() -> None:
    assert rules.kind_label("bruising") == "Bruising"
    assert rules.kind_label("unheard-of") == "unheard-of"
    assert rules.label_of(rules.OUTCOMES, "recovered") == "Recovered"
    assert rules.label_of(rules.OUTCOMES, "zzz") == "zzz"


# --- R-AE: checking an event --------------------------------------------------------------------------------


def facts(**changes: object) -> EventFacts:
    values: dict[str, object] = {
        "kind": "bruising",
        "severity": "mild",
        "onset_on": TODAY - 3 * DAY,
        "today": TODAY,
        "first_session_on": FIRST,
    }
    values.update(changes)
    return EventFacts(**values)  # type: ignore[arg-type]


def test_a_plain_event_is_acceptable() -> None:
    assert rules.event_problems(facts()) == {}
    assert rules.event_problems(facts(resolved_on=TODAY)) == {}
    assert rules.event_problems(facts(kind="other", other_kind="Headache")) == {}


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"kind": "sneezing"}, "kind"),
        ({"kind": "other"}, "other_kind"),
        ({"kind": "other", "other_kind": "   "}, "other_kind"),
        ({"severity": "catastrophic"}, "severity"),
        ({"serious_criteria": ("hospitalisation", "bored")}, "serious_criteria"),
        ({"actions": ("arnica", "leeches")}, "actions"),
        ({"outcome": "mostly-fine"}, "outcome"),
        ({"onset_on": TODAY + DAY}, "onset_on"),  # the future
        ({"first_session_on": None}, "onset_on"),  # no session at all
        ({"onset_on": FIRST - DAY}, "onset_on"),  # before the first session
        ({"session_on": TODAY - 2 * DAY}, "onset_on"),  # before the session named
        ({"resolved_on": TODAY - 4 * DAY}, "resolved_on"),  # before the onset
        ({"resolved_on": TODAY + DAY}, "resolved_on"),  # the future
        ({"outcome": "recovered"}, "resolved_on"),  # recovered but when?
        ({"outcome": "recovered-with-sequelae"}, "resolved_on"),
        ({"resolved_on": TODAY, "outcome": "recovering"}, "outcome"),  # resolved but not recovered
        ({"resolved_on": TODAY, "outcome": "fatal"}, "outcome"),
    ],
)
def test_each_problem_names_its_field(changes: dict[str, object], field_name: str) -> None:
    problems = rules.event_problems(facts(**changes))
    assert list(problems) == [field_name], problems
    assert problems[field_name].strip()


def test_the_boundaries_are_accepted() -> None:
    assert rules.event_problems(facts(onset_on=TODAY)) == {}  # today
    assert rules.event_problems(facts(onset_on=FIRST)) == {}  # the day of the first session
    assert rules.event_problems(facts(onset_on=FIRST, session_on=FIRST)) == {}  # the day of the session
    assert rules.event_problems(facts(resolved_on=TODAY - 3 * DAY)) == {}  # resolved on the onset day


def test_several_problems_are_reported_together() -> None:
    problems = rules.event_problems(facts(kind="nope", severity="nope", resolved_on=TODAY - 10 * DAY))
    assert set(problems) == {"kind", "severity", "resolved_on"}


def test_the_outcome_follows_the_dates_when_not_given() -> None:
    assert rules.outcome_for(facts()) == "not-recovered"
    assert rules.outcome_for(facts(resolved_on=TODAY)) == "recovered"
    assert rules.outcome_for(facts(outcome="recovering")) == "recovering"


@pytest.mark.parametrize(
    ("severity", "criteria", "serious"),
    [
        ("mild", (), False),
        ("severe", (), False),  # severe is intensity, not seriousness (ICH E2A)
        ("life-threatening", (), True),
        ("mild", ("hospitalisation",), True),
        ("moderate", ("medically-important", "disability"), True),
    ],
)
def test_seriousness(severity: str, criteria: tuple[str, ...], serious: bool) -> None:
    assert rules.is_serious(severity, criteria) is serious


@settings(max_examples=300, deadline=None)
@given(
    onset=st.integers(-40, 10),
    resolved=st.one_of(st.none(), st.integers(-40, 10)),
    first=st.one_of(st.none(), st.integers(-40, 0)),
    session=st.one_of(st.none(), st.integers(-40, 0)),
)
def test_dates_are_refused_exactly_when_impossible(
    onset: int, resolved: int | None, first: int | None, session: int | None
) -> None:
    def day(offset: int) -> date:
        return TODAY + timedelta(days=offset)

    got = rules.event_problems(
        facts(
            onset_on=day(onset),
            resolved_on=None if resolved is None else day(resolved),
            first_session_on=None if first is None else day(first),
            session_on=None if session is None else day(session),
        )
    )
    onset_bad = onset > 0 or first is None or onset < first or (session is not None and onset < session)
    resolved_bad = resolved is not None and (resolved < onset or resolved > 0)
    assert ("onset_on" in got) is onset_bad
    assert ("resolved_on" in got) is resolved_bad
    assert set(got) <= {"onset_on", "resolved_on"}


# --- R-AE: linking an event to the sessions before it -------------------------------------------------------

ONSET = date(2026, 6, 1)


def sessions(*days_before: int) -> list[SessionFacts]:
    return [SessionFacts(100 + index, ONSET - timedelta(days=d)) for index, d in enumerate(days_before)]


def linked(kind: str, days: list[SessionFacts], named: int | None = None) -> list[tuple[int, bool, int]]:
    return [
        (lk.session_id, lk.primary, lk.days_after)
        for lk in rules.link_sessions(kind, ONSET, days, named=named)
    ]


def test_a_local_effect_follows_its_most_recent_session_only() -> None:
    assert linked("bruising", sessions(30, 3, 10)) == [(101, True, 3)]
    assert linked("swelling", sessions(0)) == [(100, True, 0)]  # the same day
    assert linked("swelling", sessions(-1)) == []  # a session after the onset is not its cause
    assert linked("swelling", sessions(14)) == [(100, True, 14)]
    assert linked("swelling", sessions(15)) == []  # outside the 14-day window: unlinked
    assert linked("nausea", []) == []


def test_an_infection_follows_every_session_of_the_twelve_weeks() -> None:
    assert linked("infection", sessions(85, 84, 40, 5, -2)) == [
        (103, True, 5),
        (102, False, 40),
        (101, False, 84),
    ]
    assert rules.link_window_days("infection") == 84 and rules.link_window_days("pain") == 14


def test_sessions_of_the_same_day_are_ordered_by_id() -> None:
    same = [SessionFacts(7, ONSET - 2 * DAY), SessionFacts(9, ONSET - 2 * DAY)]
    assert linked("redness", same) == [(9, True, 2)]
    assert linked("infection", same) == [(9, True, 2), (7, False, 2)]


def test_the_session_named_by_the_reporter_is_primary_whatever_the_window() -> None:
    days = sessions(30, 3)
    assert linked("bumps", days, named=100) == [(100, True, 30)]
    assert linked("infection", days, named=100) == [(100, True, 30), (101, False, 3)]
    assert linked("infection", sessions(120, 3), named=100) == [(100, True, 120), (101, False, 3)]
    assert linked("bumps", days, named=999) == [(101, True, 3)]  # unknown: ignored here (the service refuses)
    assert linked("bumps", sessions(-3), named=100) == []  # after the onset: never


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(rules.KINDS)),
    offsets=st.lists(st.integers(-20, 200), max_size=12),
)
def test_links_are_the_sessions_in_the_window_most_recent_first(kind: str, offsets: list[int]) -> None:
    days = sessions(*offsets)
    links = rules.link_sessions(kind, ONSET, days)
    window = rules.link_window_days(kind)
    inside = sorted(
        (s for s in days if 0 <= (ONSET - s.on).days <= window),
        key=lambda s: (s.on, s.session_id),
        reverse=True,
    )
    expected = inside if kind == "infection" else inside[:1]
    assert [lk.session_id for lk in links] == [s.session_id for s in expected]
    assert [lk.primary for lk in links] == [index == 0 for index in range(len(links))]
    assert all(lk.days_after == (ONSET - lk.on).days for lk in links)


# --- R-AE: follow-up ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "severity", "serious", "expected"),
    [
        ("swelling", "mild", False, [("course", 3)]),  # the day after "a day or two"
        ("bruising", "moderate", False, [("course", 11)]),
        ("discoloration", "mild", False, [("course", 91)]),
        ("swelling", "severe", False, [("course", 0)]),  # severe: at once
        ("swelling", "life-threatening", True, [("course", 0)]),
        ("itching", "mild", True, [("course", 0)]),  # serious: at once
        ("scarring", "mild", False, [("course", 0)]),  # no self-limiting course: at once
        ("infection", "mild", False, [("course", 0), ("infection-watch", 84)]),  # 12 weeks
        ("infection", "severe", True, [("course", 0), ("infection-watch", 84)]),
    ],
)
def test_follow_ups(kind: str, severity: str, serious: bool, expected: list[tuple[str, int]]) -> None:
    onset = date(2026, 4, 10)
    plans = rules.follow_ups(kind, onset, serious=serious, severity=severity)
    assert [(p.kind, (p.due_on - onset).days) for p in plans] == expected


def test_only_an_infection_opens_a_watch() -> None:
    for kind in rules.KINDS:
        plans = rules.follow_ups(kind, ONSET, serious=False, severity="mild")
        assert ("infection-watch" in [p.kind for p in plans]) is (kind == "infection")


def test_past_course() -> None:
    end = date(2026, 5, 10)
    assert not rules.past_course(end, None, end)  # the last day of the course
    assert rules.past_course(end, None, end + DAY)
    assert not rules.past_course(end, end, end + 5 * DAY)  # resolved
    assert not rules.past_course(None, None, end + 100 * DAY)  # no course: followed from the onset


# --- R-PRE-BRUISE -------------------------------------------------------------------------------------------


def bruise(event_id: int, onset: int, resolved: int | None, area: str = "Forehead") -> BruiseFacts:
    return BruiseFacts(
        event_id,
        ONSET + timedelta(days=onset),
        None if resolved is None else ONSET + timedelta(days=resolved),
        area,
        ONSET - DAY,
    )


def test_no_bruising_says_it_was_checked() -> None:
    found = rules.bruising_findings([], ONSET)
    assert [(f.code, f.severity, f.rule) for f in found] == [("bruising-unresolved", "info", "R-PRE-BRUISE")]


def test_open_bruising_blocks_with_each_event_named() -> None:
    found = rules.bruising_findings([bruise(2, 0, None), bruise(1, -1, None, area="")], ONSET + 3 * DAY)
    assert [(f.severity, f.subject) for f in found] == [("block", "1"), ("block", "2")]  # by onset
    assert "Forehead" in found[1].message and "(" not in found[0].message.split("since")[0]
    assert (ONSET - DAY).isoformat() in found[0].message


@pytest.mark.parametrize(
    ("onset", "resolved", "blocks"),
    [
        (0, None, True),
        (0, 5, False),  # resolved on the day of the session
        (0, 4, False),
        (0, 6, True),  # resolved only after it
        (6, None, False),  # begins after the session day: not from the previous session yet
        (5, None, True),
    ],
)
def test_bruising_blocks_until_resolved_on_the_day(onset: int, resolved: int | None, blocks: bool) -> None:
    found = rules.bruising_findings([bruise(1, onset, resolved)], ONSET + 5 * DAY)
    assert [f.severity for f in found] == (["block"] if blocks else ["info"])


# --- R-SIGNAL: the scan -------------------------------------------------------------------------------------


def src(kind: rules.SourceKind, key: object) -> Source:
    return (kind, str(key))


class Clinic:
    """A generated clinic, in plain values: sessions (exposures) and infections linked to them."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.exposures: list[Exposure] = []
        self.infections: list[Infection] = []
        self.next_session = 1
        self.next_event = 1
        self.sources_of: dict[int, frozenset[Source]] = {}

    def session(
        self, patient: int, days_ago: int, *, device: int | None, practitioner: int, room: int, lot: int
    ) -> int:
        on = TODAY - timedelta(days=days_ago)
        sources = {
            src("practitioner", practitioner),
            src("room", room),
            src("lot", lot),
            src("day", on.isoformat()),
        }
        if device is not None:
            sources.add(src("device", device))
        session_id = self.next_session
        self.next_session += 1
        self.exposures.append(Exposure(patient, on, frozenset(sources), session_id))
        self.sources_of[session_id] = frozenset(sources)
        return session_id

    def random_session(self, patient: int, days_ago: int, device: int | None = None) -> int:
        if device is None and self.rng.random() < 0.6:
            device = self.rng.choice([2, 3])
        return self.session(
            patient,
            days_ago,
            device=device,
            practitioner=self.rng.randrange(4),
            room=self.rng.randrange(3),
            lot=self.rng.randrange(6),
        )

    def infect(self, patient: int, onset_days_ago: int, session_ids: list[int]) -> int:
        event_id = self.next_event
        self.next_event += 1
        sources = frozenset(s for sid in session_ids for s in self.sources_of[sid])
        self.infections.append(
            Infection(
                event_id, patient, TODAY - timedelta(days=onset_days_ago), sources, frozenset(session_ids)
            )
        )
        return event_id

    def scan(self, **changes: object) -> rules.ScanResult:
        return rules.scan(
            exposures=self.exposures,
            infections=self.infections,
            today=TODAY,
            settings=SignalSettings(**changes),  # type: ignore[arg-type]
        )


def paris_2007(seed: int = 2007, background_infections: int = 1) -> tuple[Clinic, set[int]]:
    """16 infections among the 105 patients treated with one multi-injector gun (device 1), 300 other
    patients treated with other devices or none, and ``background_infections`` sporadic infections among
    them; rooms, practitioners, lots and days drawn at random."""
    clinic = Clinic(seed)
    gun_patients = list(range(1, 106))
    infected = set(clinic.rng.sample(gun_patients, 16))
    for patient in gun_patients:
        session = clinic.random_session(patient, clinic.rng.randrange(20, 80), device=1)
        if patient in infected:
            clinic.infect(
                patient, (TODAY - clinic.exposures[-1].on).days - clinic.rng.randrange(7, 21), [session]
            )
    others = list(range(1000, 1300))
    for index, patient in enumerate(others):
        session = clinic.random_session(patient, clinic.rng.randrange(1, 150))
        if index < background_infections:
            on = clinic.exposures[-1].on
            clinic.infect(patient, max(0, (TODAY - on).days - 10), [session])
    return clinic, infected


def test_the_paris_outbreak_raises_an_alert_for_the_gun_and_no_other_source() -> None:
    clinic, infected = paris_2007()
    result = clinic.scan()
    alerts = [s for s in result.signals if s.level == "alert"]
    assert [s.source for s in alerts] == [src("device", 1)]
    gun = alerts[0]
    assert (gun.cases, gun.exposed) == (16, 105)
    assert set(gun.patients) == infected and len(gun.events) == 16
    assert gun.rate == pytest.approx(16 / 105)
    # The baseline: one infection among the 300 other patients.
    assert (gun.baseline_cases, gun.baseline_patients) == (1, 300)
    assert gun.baseline_rate == pytest.approx(1 / 300)
    assert gun.p_value == pytest.approx(binomtest(16, 105, 1 / 300, alternative="greater").pvalue)
    assert gun.adjusted_p < 1e-10
    # Rooms, practitioners, lots and days share the gun's cases: clusters that point at the gun.
    clusters = [s for s in result.signals if s.level == "cluster"]
    assert clusters and all(s.source[0] != "device" for s in clusters)
    assert all(s.within == (src("device", 1),) for s in clusters if set(s.patients) <= infected)
    assert result.infections == 17 and result.treated_patients == 405


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_alert_is_the_gun_whatever_the_draw(seed: int) -> None:
    clinic, _infected = paris_2007(seed=seed, background_infections=seed % 3)
    assert [s.source for s in clinic.scan().signals if s.level == "alert"] == [src("device", 1)]


def test_the_holm_adjustment_is_statsmodels_over_every_signal_of_the_scan() -> None:
    clinic, _infected = paris_2007()
    result = clinic.scan()
    by_source = sorted(result.signals, key=lambda s: (rules.SOURCE_KINDS.index(s.source[0]), s.source[1]))
    expected = multipletests([s.p_value for s in by_source], method="holm")[1]
    assert [s.adjusted_p for s in by_source] == pytest.approx(list(expected))
    for signal in result.signals:
        assert signal.p_value == pytest.approx(
            binomtest(signal.cases, signal.exposed, signal.baseline_rate, alternative="greater").pvalue
        )


def test_alerts_come_first_then_by_adjusted_p() -> None:
    clinic, _infected = paris_2007()
    signals = clinic.scan().signals
    levels = [s.level for s in signals]
    assert levels == sorted(levels, key=lambda level: level != "alert")
    clusters = [s.adjusted_p for s in signals if s.level == "cluster"]
    assert clusters == sorted(clusters)


def test_one_infection_is_no_signal_and_two_sharing_a_source_are() -> None:
    clinic = Clinic()
    a = clinic.session(1, 30, device=None, practitioner=1, room=1, lot=1)
    b = clinic.session(2, 30, device=None, practitioner=2, room=2, lot=2)
    for patient in range(3, 50):
        clinic.session(patient, 30, device=None, practitioner=3, room=3, lot=3)
    clinic.infect(1, 20, [a])
    assert clinic.scan().signals == ()
    clinic.infect(2, 15, [b])
    # Two infections share only the day of their sessions: a signal on that day, and on nothing else.
    signals = clinic.scan().signals
    assert [s.source for s in signals] == [src("day", (TODAY - timedelta(days=30)).isoformat())]
    assert signals[0].cases == 2 and signals[0].exposed == 49


def test_the_same_patient_twice_is_one_case() -> None:
    clinic = Clinic()
    a = clinic.session(1, 30, device=5, practitioner=1, room=1, lot=1)
    for patient in range(2, 20):
        clinic.session(patient, 30 + patient, device=5, practitioner=2, room=2, lot=2)
    clinic.infect(1, 20, [a])
    clinic.infect(1, 10, [a])
    assert clinic.scan().signals == ()


def test_min_infections_is_a_setting() -> None:
    clinic = Clinic()
    ids = [clinic.session(p, 40 + p, device=9, practitioner=p, room=p, lot=p) for p in range(1, 4)]
    for patient in range(10, 40):
        clinic.session(patient, 20, device=None, practitioner=50, room=50, lot=50)
    clinic.infect(1, 20, [ids[0]])
    clinic.infect(2, 20, [ids[1]])
    assert [s.source for s in clinic.scan().signals] == [src("device", 9)]
    assert clinic.scan(min_infections=3).signals == ()
    clinic.infect(3, 20, [ids[2]])
    assert [s.source for s in clinic.scan(min_infections=3).signals] == [src("device", 9)]


def test_only_onsets_in_the_window_and_exposures_in_the_period_count() -> None:
    clinic = Clinic()
    ids = [clinic.session(p, 95 + p, device=4, practitioner=p, room=p, lot=p) for p in range(1, 5)]
    clinic.infect(1, 85, [ids[0]])  # onset before the 84-day window
    clinic.infect(2, -1, [ids[1]])  # onset after today (not yet)
    clinic.infect(3, 84, [ids[2]])  # the first day of the window
    assert clinic.scan().infections == 1 and clinic.scan().signals == ()
    clinic.infect(4, 0, [ids[3]])  # today
    assert [(s.source, s.cases) for s in clinic.scan().signals] == [(src("device", 4), 2)]
    # A longer window counts the onset of 85 days ago too; the period is twice the window.
    result = clinic.scan(window_days=100)
    assert [(s.source, s.cases) for s in result.signals] == [(src("device", 4), 3)]
    assert result.period_start == TODAY - timedelta(days=200)
    assert result.window_start == TODAY - timedelta(days=100)
    # With 49 days, the period is 98 days: the session of 99 days ago is outside it, those of 96 to 98 in.
    short = clinic.scan(window_days=49)
    assert short.signals == () and short.treated_patients == 3 and short.infections == 1


def test_an_infection_linked_to_a_source_the_patient_met_outside_the_period_is_not_its_case() -> None:
    clinic = Clinic()
    old = clinic.session(1, 200, device=8, practitioner=1, room=1, lot=1)  # outside the 168-day period
    recent = clinic.session(2, 30, device=8, practitioner=2, room=2, lot=2)
    third = clinic.session(3, 31, device=8, practitioner=3, room=3, lot=3)
    clinic.infect(1, 10, [old])
    clinic.infect(2, 10, [recent])
    assert clinic.scan().signals == ()
    clinic.infect(3, 10, [third])
    [signal] = clinic.scan().signals
    assert signal.source == src("device", 8) and signal.patients == (2, 3) and signal.exposed == 2


def test_a_clean_clinic_is_tested_against_the_floor_not_zero() -> None:
    clinic = Clinic()
    ids = [clinic.session(p, 30, device=6, practitioner=p, room=p, lot=p) for p in range(1, 3)]
    for patient in range(3, 2003):
        clinic.session(patient, 40, device=None, practitioner=99, room=99, lot=99)
    for patient, session in enumerate(ids, start=1):
        clinic.infect(patient, 10, [session])
    device = next(s for s in clinic.scan().signals if s.source == src("device", 6))
    assert device.baseline_cases == 0 and device.baseline_rate == 0.001
    assert device.p_value == pytest.approx(binomtest(2, 2, 0.001, alternative="greater").pvalue)
    assert clinic.scan(baseline_floor=0.2).signals[0].level == "cluster"  # 0.2^2 = 0.04 x 3 tests


def test_two_unrelated_outbreaks_are_two_alerts() -> None:
    clinic = Clinic(11)
    for patient in range(1, 61):  # a device outbreak
        session = clinic.session(patient, 40, device=1, practitioner=patient % 4, room=patient % 3, lot=0)
        if patient <= 8:
            clinic.infect(patient, 25, [session])
    for patient in range(100, 160):  # a contaminated lot, on other days, devices and rooms
        session = clinic.session(
            patient, 60, device=2, practitioner=patient % 4, room=10 + patient % 3, lot=7
        )
        if patient < 108:
            clinic.infect(patient, 40, [session])
    for patient in range(500, 900):
        clinic.session(patient, 100, device=3, practitioner=patient % 4, room=20, lot=9)
    result = clinic.scan()
    alerts = {s.source for s in result.signals if s.level == "alert"}
    # The lot outbreak's day and device are confounded with the lot; device 2 was withdrawn-able first.
    assert src("device", 1) in alerts
    assert alerts & {src("lot", 7), src("device", 2), src("day", (TODAY - timedelta(days=60)).isoformat())}
    assert len(alerts) == 2
    assert src("practitioner", 1) not in alerts and src("room", 20) not in alerts


def test_a_direct_administration_exposes_to_its_lot() -> None:
    clinic = Clinic()
    for patient in (1, 2):
        on = TODAY - timedelta(days=20)
        clinic.exposures.append(
            Exposure(patient, on, frozenset({src("lot", 33), src("day", on.isoformat())}))
        )
        clinic.infections.append(
            Infection(
                patient, patient, TODAY - 5 * DAY, frozenset({src("lot", 33), src("day", on.isoformat())})
            )
        )
    for patient in range(3, 30):
        clinic.session(patient, 20, device=None, practitioner=1, room=1, lot=44)
    found = {s.source: s for s in clinic.scan().signals}
    assert found[src("lot", 33)].exposed == 2 and found[src("lot", 33)].exposed_sessions == 0
    assert found[src("lot", 33)].sessions == ()


def test_the_evidence_lists_the_exposed_sessions_of_the_cases() -> None:
    clinic = Clinic()
    a1 = clinic.session(1, 60, device=3, practitioner=1, room=1, lot=1)
    a2 = clinic.session(1, 30, device=None, practitioner=1, room=2, lot=2)
    b1 = clinic.session(2, 50, device=3, practitioner=2, room=3, lot=3)
    clinic.infect(1, 20, [a1, a2])
    clinic.infect(2, 20, [b1])
    found = {s.source: s for s in clinic.scan().signals}
    assert found[src("device", 3)].sessions == (a1, b1)  # not a2, which used no device
    assert found[src("device", 3)].exposed_sessions == 2 and found[src("device", 3)].events == (1, 2)


def test_no_infection_no_signal_and_empty_clinic() -> None:
    empty = rules.scan(exposures=[], infections=[], today=TODAY)
    assert (empty.infections, empty.treated_patients, empty.signals) == (0, 0, ())
    clinic = Clinic()
    for patient in range(50):
        clinic.random_session(patient, 30)
    assert clinic.scan().signals == ()


def test_statistics_helpers() -> None:
    assert rules.binomial_p_value(3, 0, 0.1) == 1.0
    assert rules.binomial_p_value(5, 3, 0.1) == pytest.approx(
        binomtest(3, 3, 0.1, alternative="greater").pvalue
    )
    assert rules.holm([]) == []
    assert rules.holm([0.01, 0.04, 0.03]) == pytest.approx(
        list(multipletests([0.01, 0.04, 0.03], method="holm")[1])
    )


@st.composite
def random_clinics(draw: st.DrawFn) -> tuple[list[Exposure], list[Infection]]:
    patients = draw(st.integers(1, 40))
    exposures: list[Exposure] = []
    infections: list[Infection] = []
    session_id = 0
    for patient in range(patients):
        mine: list[tuple[int, frozenset[Source]]] = []
        for _ in range(draw(st.integers(0, 3))):
            session_id += 1
            on = TODAY - timedelta(days=draw(st.integers(-5, 200)))
            sources = frozenset(
                {
                    src("device", draw(st.integers(0, 2))),
                    src("room", draw(st.integers(0, 2))),
                    src("lot", draw(st.integers(0, 3))),
                    src("practitioner", draw(st.integers(0, 2))),
                    src("day", on.isoformat()),
                }
            )
            exposures.append(Exposure(patient, on, sources, session_id))
            mine.append((session_id, sources))
        infected: bool = draw(st.booleans())
        if mine and infected:
            onset = TODAY - timedelta(days=draw(st.integers(-5, 120)))
            infections.append(
                Infection(
                    len(infections) + 1,
                    patient,
                    onset,
                    frozenset(s for _sid, sources in mine for s in sources),
                    frozenset(sid for sid, _sources in mine),
                )
            )
    return exposures, infections


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=random_clinics(), min_infections=st.integers(2, 4))
def test_scan_invariants(data: tuple[list[Exposure], list[Infection]], min_infections: int) -> None:
    exposures, infections = data
    config = SignalSettings(min_infections=min_infections)
    result = rules.scan(exposures=exposures, infections=infections, today=TODAY, settings=config)
    period = [e for e in exposures if TODAY - timedelta(days=168) <= e.on <= TODAY]
    counted = [i for i in infections if TODAY - timedelta(days=84) <= i.onset_on <= TODAY]
    assert result.infections == len(counted)
    assert result.treated_patients == len({e.patient_id for e in period})
    sources = [s.source for s in result.signals]
    assert len(sources) == len(set(sources))
    for signal in result.signals:
        exposed = {e.patient_id for e in period if signal.source in e.sources}
        cases = {i.patient_id for i in counted if signal.source in i.sources} & exposed
        assert signal.exposed == len(exposed) and signal.cases == len(cases) == len(signal.patients)
        assert set(signal.patients) == cases and signal.cases >= min_infections
        assert 0.0 < signal.rate <= 1.0 and 0.0 <= signal.p_value <= signal.adjusted_p <= 1.0
        assert signal.baseline_rate >= config.baseline_floor
        if signal.level == "alert":
            assert signal.adjusted_p < config.alpha and signal.within == ()
    # Every source with enough cases is a signal.
    all_sources = {s for e in period for s in e.sources}
    for source in all_sources:
        exposed = {e.patient_id for e in period if source in e.sources}
        cases = {i.patient_id for i in counted if source in i.sources} & exposed
        assert (source in sources) is (len(cases) >= min_infections)


# --- R-EVID: rates per 100 sessions with Wilson intervals ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_rates_and_intervals_match_statsmodels(counts: tuple[int, int]) -> None:
    k, n = counts
    row = rules.rate_row("p", "Protocol", with_event=k, sessions=n)
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert row.per_100 == pytest.approx(100 * k / n)
    assert row.low_per_100 == pytest.approx(100 * low) and row.high_per_100 == pytest.approx(100 * high)
    assert 0.0 <= row.low_per_100 <= row.per_100 <= row.high_per_100 <= 100.0 + 1e-9
    assert row.small_sample is (n < 30)
    assert rules.wilson(k, n) == pytest.approx((low, high))


def test_known_wilson_interval() -> None:
    # 16 of 105: 15.24 per 100, 95 % Wilson 9.6 to 23.3.
    row = rules.rate_row("gun", "Gun", with_event=16, sessions=105)
    assert round(row.per_100, 2) == 15.24
    assert (round(row.low_per_100, 1), round(row.high_per_100, 1)) == (9.6, 23.3)


@pytest.mark.parametrize(("sessions", "small"), [(1, True), (29, True), (30, False), (500, False)])
def test_small_samples_are_labelled(sessions: int, small: bool) -> None:
    assert rules.rate_row("k", "K", with_event=0, sessions=sessions).small_sample is small
    assert rules.rate_row("k", "K", with_event=0, sessions=sessions, small_below=2).small_sample is (
        sessions < 2
    )


@pytest.mark.parametrize(("k", "n"), [(0, 0), (1, 0), (-1, 5), (6, 5)])
def test_a_count_that_is_not_a_proportion_is_refused(k: int, n: int) -> None:
    with pytest.raises(ValueError):
        rules.rate_row("k", "K", with_event=k, sessions=n)

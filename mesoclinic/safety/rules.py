"""Side effects, their expected course, the bruising gate, safety signals and adverse-event rates (R-AE,
R-PRE-BRUISE, R-SIGNAL, R-EVID). Pure: plain values in, values or findings out; no ORM, no request, no clock.

The rules written down here (``mesoclinic/safety/README.md`` says why):

- **R-AE, the list and the expected course** (``KINDS``): the fifteen effects of domain.md, each with the
  course the seeds give it and the number of days after which an event still open needs a follow-up. The
  seeds say "a day or two", "3–10 days", "within days"; where they give no course (nausea, pain, rash…) the
  number is the clinic's follow-up threshold and says so. Infection and scarring have no self-limiting
  course: they are reviewed at once, and an infection opens a **12-week watch** (NTM infections appear 1–12
  weeks after an injection).
- **R-AE, linking an event to sessions** (``link_sessions``): the patient's sessions on or before the
  onset, most recent first, within the link window — **84 days (12 weeks) for an infection**, any of whose
  sessions may be its source, and **14 days for every other effect**, which is linked to its most recent
  session only (local reactions follow an injection within hours to days). The most recent linked session
  is the *primary* one: rates per session count an event once, against it. An onset before the patient's
  first session, or before the session named, is refused.
- **R-PRE-BRUISE** (``bruising_findings``): bruising linked to the previous session (of the plan or of the
  patient) and not resolved on the day of the new session blocks it.
- **R-SIGNAL** (``scan``): over a window of ``window_days`` (84) ending today, for each source — a lot, a
  practitioner, a room, a device, a session day — the *cases* are the patients with an infection whose onset
  falls in the window and whose linked sessions used that source; the *exposed* are the patients with a
  session (or a direct administration) using it in the 2 × window before today, the period in which a
  session can precede an onset in the window. A source with ``min_infections`` (2) or more cases is a
  **signal**. Its attack rate (cases / exposed patients) is then tested against the clinic's baseline — the
  rate among the other patients treated in the same period, never below a floor (default 1 in 1,000) so that
  a clean clinic is not a zero baseline — with **scipy's exact binomial test** (one-sided, "greater"): each
  exposed patient is infected or not and their number is known exactly, which is the binomial model; a
  Poisson test would be for counts over person-time, which we do not have. The p-values of every signal of
  one scan are adjusted together (Holm, statsmodels): a signal whose adjusted p-value is below ``alpha``
  (0.05) is a candidate alert. Sources are confounded — the room, the days, the practitioner and the lots in
  use during a device's outbreak share its cases — so the candidates are confirmed strongest first, each
  tested again (``conditional_p``) without the patients exposed to the alerts already confirmed: only a
  source that still has ``min_infections`` cases and still exceeds the baseline without them is an
  **alert** (more infections than chance explains). The others stay **clusters** to review, and say which
  alerts explain their cases (``within``): a day cluster inside a device outbreak points at the device.
- **R-EVID, rates** (``rate_row``): sessions followed by at least one adverse event, per 100 sessions, with a
  95 % **Wilson** interval from statsmodels (``proportion_confint(method="wilson")``); a row with fewer than
  ``small_sample_sessions`` (default 30) sessions is labelled a small sample.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from mesoclinic.lib.findings import Finding

# --- R-AE: the effects and their expected course ----------------------------------------------------------

INFECTION = "infection"
BRUISING = "bruising"
OTHER = "other"
INFECTION_WATCH_DAYS = 84  # 12 weeks: NTM infections appear 1–12 weeks after injection (domain.md R-AE)
INFECTION_LINK_DAYS = 84
LOCAL_LINK_DAYS = 14


@dataclass(frozen=True)
class EventKind:
    code: str
    label: str  # English; translated with gettext where shown
    course: str  # the expected course, as the source says it
    course_days: int | None  # an event open longer than this needs a follow-up; None: reviewed at once
    source: str
    local: bool = True  # at an injection site: the area is asked for


def _no_course(days: int) -> str:
    return {
        1: gettext_noop("No course in the sources (follow-up after 1 day: the clinic's threshold)."),
        3: gettext_noop("No course in the sources (follow-up after 3 days: the clinic's threshold)."),
        7: gettext_noop("No course in the sources (follow-up after 7 days: the clinic's threshold)."),
    }[days]


KINDS: dict[str, EventKind] = {
    kind.code: kind
    for kind in (
        EventKind(
            "bruising",
            gettext_noop("Bruising"),
            gettext_noop("Disappears within days; the next session waits until it has gone."),
            10,
            "001, 003 (R-AE, R-PRE-BRUISE)",
        ),
        EventKind("swelling", gettext_noop("Swelling"), gettext_noop("Mild, a day or two."), 2, "003"),
        EventKind(
            "bumps",
            gettext_noop("Bumps or nodules"),
            gettext_noop("Small painless bumps: mild, a day or two."),
            2,
            "003",
        ),
        EventKind("numbness", gettext_noop("Numbness"), gettext_noop("Clears in 3 to 10 days."), 10, "003"),
        EventKind(
            "stinging",
            gettext_noop("Stinging or burning"),
            gettext_noop("Brief, during the injection."),
            1,
            "003",
        ),
        EventKind("itching", gettext_noop("Itching"), gettext_noop("Slight and short-lived."), 2, "003"),
        EventKind(
            "discoloration",
            gettext_noop("Discoloration or dark patches"),
            gettext_noop("Temporary, clears on its own (follow-up after 90 days: the clinic's threshold)."),
            90,
            "003, 004",
        ),
        EventKind("nausea", gettext_noop("Nausea"), _no_course(1), 1, "004", local=False),
        EventKind("pain", gettext_noop("Pain"), _no_course(3), 3, "004"),
        EventKind("sensitivity", gettext_noop("Sensitivity"), _no_course(3), 3, "004"),
        EventKind("redness", gettext_noop("Redness"), _no_course(3), 3, "004"),
        EventKind("rash", gettext_noop("Rash"), _no_course(7), 7, "004"),
        EventKind(
            "infection",
            gettext_noop("Infection"),
            gettext_noop(
                "Reviewed at once; a 12-week watch follows (NTM infections appear 1 to 12 weeks after "
                "injection). Every linked lot, practitioner, room, device and day is a candidate source."
            ),
            None,
            "003, 004; lit. (R-AE, R-SIGNAL)",
        ),
        EventKind("scarring", gettext_noop("Scarring"), gettext_noop("Reviewed at once."), None, "004"),
        EventKind(
            "other",
            gettext_noop("Other"),
            gettext_noop("Follow-up after 7 days: the clinic's threshold."),
            7,
            "—",
            local=False,
        ),
    )
}

SEVERITIES: dict[str, str] = {
    "mild": gettext_noop("Mild"),
    "moderate": gettext_noop("Moderate"),
    "severe": gettext_noop("Severe"),
    "life-threatening": gettext_noop("Life-threatening"),
}
# Seriousness as ICH E2A defines it: any one makes the event serious.
SERIOUS_CRITERIA: dict[str, str] = {
    "death": gettext_noop("Resulted in death"),
    "life-threatening": gettext_noop("Life-threatening"),
    "hospitalisation": gettext_noop("Hospitalisation or a longer stay"),
    "disability": gettext_noop("Persistent or significant disability"),
    "medically-important": gettext_noop("Medically important"),
}
# Outcomes as ICH E2B names them; two are "resolved" (they need a resolution date), the others open.
OUTCOMES: dict[str, str] = {
    "not-recovered": gettext_noop("Not recovered"),
    "recovering": gettext_noop("Recovering"),
    "recovered": gettext_noop("Recovered"),
    "recovered-with-sequelae": gettext_noop("Recovered with sequelae"),
    "fatal": gettext_noop("Fatal"),
    "unknown": gettext_noop("Unknown"),
}
RESOLVED_OUTCOMES = frozenset({"recovered", "recovered-with-sequelae"})
OPEN_OUTCOMES = frozenset(OUTCOMES) - RESOLVED_OUTCOMES
ACTIONS: dict[str, str] = {
    "none": gettext_noop("None needed"),
    "cold-compress": gettext_noop("Cold compress"),
    "arnica": gettext_noop("Arnica"),
    "topical-antibiotic": gettext_noop("Topical antibiotic cream"),
    "oral-antibiotic": gettext_noop("Oral antibiotic"),
    "antihistamine": gettext_noop("Antihistamine"),
    "analgesic": gettext_noop("Pain relief"),
    "drainage": gettext_noop("Incision or drainage"),
    "culture": gettext_noop("Swab, culture or biopsy"),
    "referral": gettext_noop("Referred to a specialist"),
    "treatment-paused": gettext_noop("Treatment paused"),
    "other": gettext_noop("Other"),
}


def kind_label(code: str) -> str:
    kind = KINDS.get(code)
    return _(kind.label) if kind else code


def label_of(table: Mapping[str, str], code: str) -> str:
    return _(table[code]) if code in table else code


def expected_end(kind: str, onset_on: date) -> date | None:
    """The last day of the expected course (None: no self-limiting course — reviewed at once)."""
    days = KINDS[kind].course_days
    return onset_on + timedelta(days=days) if days is not None else None


# --- R-AE: checking an event ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFacts:
    kind: str
    severity: str
    onset_on: date
    today: date  # in the clinic
    resolved_on: date | None = None
    outcome: str = ""  # "": derived from the resolution date
    serious_criteria: tuple[str, ...] = ()
    other_kind: str = ""
    actions: tuple[str, ...] = ()
    first_session_on: date | None = None  # the patient's first session (None: none at all)
    session_on: date | None = None  # the session named by the reporter, if any


def outcome_for(facts: EventFacts) -> str:
    """The outcome given, or the one the dates say: recovered when resolved, else not recovered."""
    if facts.outcome:
        return facts.outcome
    return "recovered" if facts.resolved_on is not None else "not-recovered"


def is_serious(severity: str, criteria: Iterable[str]) -> bool:
    """ICH E2A: a life-threatening event is serious, and so is one meeting any criterion."""
    return severity == "life-threatening" or bool(tuple(criteria))


def event_problems(facts: EventFacts) -> dict[str, str]:
    """What is wrong with an event as given, by field (empty: acceptable)."""
    problems: dict[str, str] = {}
    if facts.kind not in KINDS:
        problems["kind"] = _("Choose a side effect from the list.")
    elif facts.kind == OTHER and not facts.other_kind.strip():
        problems["other_kind"] = _("Say what the side effect was.")
    if facts.severity not in SEVERITIES:
        problems["severity"] = _("Choose a severity.")
    if unknown := [c for c in facts.serious_criteria if c not in SERIOUS_CRITERIA]:
        problems["serious_criteria"] = _("Unknown seriousness criterion: %(codes)s.") % {
            "codes": ", ".join(unknown)
        }
    if unknown := [c for c in facts.actions if c not in ACTIONS]:
        problems["actions"] = _("Unknown action: %(codes)s.") % {"codes": ", ".join(unknown)}
    if facts.outcome and facts.outcome not in OUTCOMES:
        problems["outcome"] = _("Choose an outcome.")
    if facts.onset_on > facts.today:
        problems["onset_on"] = _("The onset cannot be in the future.")
    elif facts.first_session_on is None:
        problems["onset_on"] = _("This patient has had no session: a side effect is recorded after one.")
    elif facts.onset_on < facts.first_session_on:
        problems["onset_on"] = _(
            "The onset is before this patient's first session (%(day)s): a side effect follows a session."
        ) % {"day": facts.first_session_on.isoformat()}
    elif facts.session_on is not None and facts.onset_on < facts.session_on:
        problems["onset_on"] = _("The onset is before the session it follows (%(day)s).") % {
            "day": facts.session_on.isoformat()
        }
    if facts.resolved_on is not None:
        if facts.resolved_on < facts.onset_on:
            problems["resolved_on"] = _("The resolution cannot be before the onset.")
        elif facts.resolved_on > facts.today:
            problems["resolved_on"] = _("The resolution cannot be in the future.")
    outcome = outcome_for(facts)
    if "outcome" not in problems and "resolved_on" not in problems:
        if outcome in RESOLVED_OUTCOMES and facts.resolved_on is None:
            problems["resolved_on"] = _("Give the date it resolved.")
        elif outcome in OPEN_OUTCOMES and facts.resolved_on is not None:
            problems["outcome"] = _("An event with a resolution date has recovered: choose that outcome.")
    return problems


# --- R-AE: linking an event to the sessions before it -----------------------------------------------------


@dataclass(frozen=True)
class SessionFacts:
    session_id: int
    on: date


@dataclass(frozen=True)
class Link:
    session_id: int
    on: date
    primary: bool
    days_after: int


def link_window_days(kind: str) -> int:
    return INFECTION_LINK_DAYS if kind == INFECTION else LOCAL_LINK_DAYS


def link_sessions(
    kind: str, onset_on: date, sessions: Iterable[SessionFacts], *, named: int | None = None
) -> list[Link]:
    """The sessions an event is linked to, primary first (see the module's note). ``named``: the session the
    reporter chose, which is then the primary one whatever the window."""
    before = sorted(
        (s for s in sessions if s.on <= onset_on), key=lambda s: (s.on, s.session_id), reverse=True
    )
    start = onset_on - timedelta(days=link_window_days(kind))
    window = [s for s in before if s.on >= start]
    if named is not None:
        chosen = next((s for s in before if s.session_id == named), None)
        if chosen is not None:
            window = [chosen, *(s for s in window if s.session_id != named)]
    if kind != INFECTION:
        window = window[:1]
    return [
        Link(s.session_id, s.on, primary=index == 0, days_after=(onset_on - s.on).days)
        for index, s in enumerate(window)
    ]


# --- R-AE: follow-up --------------------------------------------------------------------------------------

FollowUpKind = Literal["course", "infection-watch"]


@dataclass(frozen=True)
class FollowUpPlan:
    kind: FollowUpKind
    due_on: date


def follow_ups(kind: str, onset_on: date, *, serious: bool, severity: str) -> list[FollowUpPlan]:
    """The follow-ups an event opens. ``course``: due the day after the expected course ends (it shows on the
    dashboard from then on if the event is still open; its resolution closes it) — at once for an effect
    with no self-limiting course, a serious one or a severe one. ``infection-watch``: any infection, due 12
    weeks after the onset, closed by a clinician."""
    end = expected_end(kind, onset_on)
    urgent = end is None or serious or severity in ("severe", "life-threatening")
    plans = [FollowUpPlan("course", onset_on if urgent or end is None else end + timedelta(days=1))]
    if kind == INFECTION:
        plans.append(FollowUpPlan("infection-watch", onset_on + timedelta(days=INFECTION_WATCH_DAYS)))
    return plans


def past_course(expected_end_on: date | None, resolved_on: date | None, today: date) -> bool:
    """An event still open after the last day of its expected course."""
    return resolved_on is None and expected_end_on is not None and today > expected_end_on


# --- R-PRE-BRUISE: the check-in gate ----------------------------------------------------------------------


@dataclass(frozen=True)
class BruiseFacts:
    event_id: int
    onset_on: date
    resolved_on: date | None
    area: str  # label, or "" when not given
    session_on: date


def bruising_findings(bruises: Iterable[BruiseFacts], on: date) -> list[Finding]:
    """Bruising from the previous session still there on ``on`` blocks the session (003: "not performed
    until all bruising from the previous one has disappeared"). When there is none, an ``info`` says the rule
    was checked — the gate never passes a rule in silence."""
    still_open = [b for b in bruises if b.onset_on <= on and (b.resolved_on is None or b.resolved_on > on)]
    if not still_open:
        return [
            Finding(
                "bruising-unresolved",
                "info",
                "R-PRE-BRUISE",
                _("Checked: no bruising from the previous session is still recorded as open."),
                "003",
            )
        ]
    findings: list[Finding] = []
    for bruise in sorted(still_open, key=lambda b: (b.onset_on, b.event_id)):
        values = {
            "area": bruise.area,
            "day": bruise.onset_on.isoformat(),
            "session": bruise.session_on.isoformat(),
        }
        where = (
            _("Bruising (%(area)s) since %(day)s after the session of %(session)s is not resolved.")
            if bruise.area
            else _("Bruising since %(day)s after the session of %(session)s is not resolved.")
        )
        findings.append(
            Finding(
                "bruising-unresolved",
                "block",
                "R-PRE-BRUISE",
                (where % values)
                + " "
                + _("Record its resolution first: the session waits until it has gone."),
                "003",
                subject=str(bruise.event_id),
            )
        )
    return findings


# --- R-SIGNAL: infections sharing a source ----------------------------------------------------------------

SourceKind = Literal["lot", "practitioner", "room", "device", "day"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("lot", "practitioner", "room", "device", "day")
# When two sources explain exactly the same patients, the one that can be withdrawn comes first.
TIE_ORDER: tuple[SourceKind, ...] = ("device", "lot", "room", "practitioner", "day")
SOURCE_LABELS: dict[str, str] = {
    "lot": gettext_noop("Lot"),
    "practitioner": gettext_noop("Practitioner"),
    "room": gettext_noop("Room"),
    "device": gettext_noop("Device"),
    "day": gettext_noop("Session day"),
}
Source = tuple[SourceKind, str]  # ("device", "12"), ("day", "2026-03-04")
Level = Literal["alert", "cluster"]


@dataclass(frozen=True)
class Exposure:
    """One session (or a direct administration, ``session_id`` None) and the sources it used."""

    patient_id: int
    on: date
    sources: frozenset[Source]
    session_id: int | None = None


@dataclass(frozen=True)
class Infection:
    event_id: int
    patient_id: int
    onset_on: date
    sources: frozenset[Source]  # of its linked sessions and lots
    sessions: frozenset[int] = frozenset()


@dataclass(frozen=True)
class SignalSettings:
    window_days: int = 84
    min_infections: int = 2
    alpha: float = 0.05
    baseline_floor: float = 0.001  # infections per patient treated


@dataclass(frozen=True)
class Signal:
    source: Source
    cases: int  # infected patients linked to the source
    exposed: int  # patients exposed to the source in the period
    exposed_sessions: int
    rate: float  # cases / exposed
    baseline_cases: int
    baseline_patients: int
    baseline_rate: float  # as tested (the observed rate of the other patients, or the floor)
    p_value: float
    adjusted_p: float
    level: Level
    events: tuple[int, ...]
    patients: tuple[int, ...]
    sessions: tuple[int, ...]  # the exposed sessions of the cases
    within: tuple[Source, ...] = ()  # the alerts that explain some of its cases
    conditional_p: float | None = None  # tested again without the patients of stronger alerts


@dataclass(frozen=True)
class ScanResult:
    today: date
    window_start: date  # first onset day counted
    period_start: date  # first exposure day counted
    infections: int
    treated_patients: int
    signals: tuple[Signal, ...] = field(default_factory=tuple)


def binomial_p_value(cases: int, exposed: int, baseline_rate: float) -> float:
    """One-sided exact binomial test: the chance of ``cases`` or more among ``exposed`` at the baseline."""
    from scipy.stats import binomtest  # type: ignore[import-untyped]

    if exposed <= 0:
        return 1.0
    return float(binomtest(min(cases, exposed), exposed, baseline_rate, alternative="greater").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), from statsmodels.

    statsmodels' Holm branch ends with a full ``gc.collect()``, which walks every object of the process (a
    Django worker with numpy, scipy and statsmodels loaded: 80 ms or more, most of a scan). The heap that
    exists before the call is frozen for its duration, so that collection only walks the few objects the call
    makes; nothing is lost (``unfreeze`` hands the frozen objects back to the oldest generation, collected as
    usual later). Left alone when something else has frozen the heap (a pre-fork server), since unfreezing
    would undo that; the collection is then cheap anyway."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped]

    if gc.get_freeze_count():
        return [float(p) for p in multipletests(list(p_values), method="holm")[1]]
    gc.freeze()
    try:
        return [float(p) for p in multipletests(list(p_values), method="holm")[1]]
    finally:
        gc.unfreeze()


def scan(
    *,
    exposures: Iterable[Exposure],
    infections: Iterable[Infection],
    today: date,
    settings: SignalSettings | None = None,
) -> ScanResult:
    """Every source shared by ``min_infections`` or more infected patients in the window, tested against
    the clinic's baseline (see the module's note). Alerts first, then by p-value."""
    settings = settings or SignalSettings()
    window_start = today - timedelta(days=settings.window_days)
    period_start = today - timedelta(days=2 * settings.window_days)
    exposed: dict[Source, set[int]] = defaultdict(set)
    exposed_sessions: dict[Source, set[int]] = defaultdict(set)
    session_sources: dict[int, frozenset[Source]] = {}
    treated: set[int] = set()
    for exposure in exposures:
        if not period_start <= exposure.on <= today:
            continue
        treated.add(exposure.patient_id)
        if exposure.session_id is not None:
            session_sources[exposure.session_id] = exposure.sources
        for source in exposure.sources:
            exposed[source].add(exposure.patient_id)
            if exposure.session_id is not None:
                exposed_sessions[source].add(exposure.session_id)
    counted = [i for i in infections if window_start <= i.onset_on <= today]
    infected = {i.patient_id for i in counted}
    cases: dict[Source, set[int]] = defaultdict(set)
    events: dict[Source, set[int]] = defaultdict(set)
    sessions: dict[Source, set[int]] = defaultdict(set)
    for infection in counted:
        for source in infection.sources:
            if infection.patient_id not in exposed.get(source, ()):
                continue  # linked, but outside the exposure period: not counted against the source
            cases[source].add(infection.patient_id)
            events[source].add(infection.event_id)
            sessions[source].update(
                s for s in infection.sessions if source in session_sources.get(s, frozenset())
            )
    candidates = sorted(
        (source for source, patients in cases.items() if len(patients) >= settings.min_infections),
        key=lambda s: (SOURCE_KINDS.index(s[0]), s[1]),
    )
    raw: list[tuple[Source, int, int, int, int, float, float]] = []
    for source in candidates:
        k, n = len(cases[source]), len(exposed[source])
        others = treated - exposed[source]
        k0 = len(infected & others)
        observed = k0 / len(others) if others else 0.0
        baseline = min(1.0, max(observed, settings.baseline_floor))
        raw.append((source, k, n, k0, len(others), baseline, binomial_p_value(k, n, baseline)))
    adjusted = holm([row[6] for row in raw])
    signals: list[Signal] = []
    for (source, k, n, k0, n0, baseline, p), adj in zip(raw, adjusted, strict=True):
        signals.append(
            Signal(
                source=source,
                cases=k,
                exposed=n,
                exposed_sessions=len(exposed_sessions[source]),
                rate=k / n if n else 0.0,
                baseline_cases=k0,
                baseline_patients=n0,
                baseline_rate=baseline,
                p_value=p,
                adjusted_p=adj,
                level="alert" if adj < settings.alpha else "cluster",
                events=tuple(sorted(events[source])),
                patients=tuple(sorted(cases[source])),
                sessions=tuple(sorted(sessions[source])),
            )
        )
    # Confounding: the room, the day, the practitioner or a lot in use during a device's outbreak share its
    # cases. Strongest first, each provisional alert is confirmed only if it still exceeds the baseline once
    # the patients exposed to the alerts already confirmed are set aside (their cases and the others alike).
    by_source = {signal.source: signal for signal in signals}
    order = sorted(
        (s for s in signals if s.level == "alert"),
        key=lambda s: (s.p_value, TIE_ORDER.index(s.source[0]), s.source[1]),
    )
    confirmed: list[Source] = []
    explained: set[int] = set()
    conditional: dict[Source, float] = {}
    for signal in order:
        source = signal.source
        if explained:
            left_cases = cases[source] - explained
            left_exposed = exposed[source] - explained
            others = treated - exposed[source] - explained
            k0 = len(infected & others)
            observed = k0 / len(others) if others else 0.0
            baseline = min(1.0, max(observed, settings.baseline_floor))
            p = binomial_p_value(len(left_cases), len(left_exposed), baseline)
            conditional[source] = p
            if len(left_cases) < settings.min_infections or p >= settings.alpha:
                continue
        confirmed.append(source)
        explained |= exposed[source]
    final: list[Signal] = []
    for signal in signals:
        is_alert = signal.source in confirmed
        final.append(
            replace(
                signal,
                level="alert" if is_alert else "cluster",
                conditional_p=conditional.get(signal.source),
                within=()
                if is_alert
                else tuple(
                    other
                    for other in confirmed
                    if set(signal.patients) & exposed[other] and by_source[other].p_value <= signal.p_value
                ),
            )
        )
    final.sort(key=lambda s: (s.level != "alert", s.adjusted_p, s.p_value, s.source))
    return ScanResult(
        today=today,
        window_start=window_start,
        period_start=period_start,
        infections=len(counted),
        treated_patients=len(treated),
        signals=tuple(final),
    )


# --- R-EVID: adverse-event rates per 100 sessions ---------------------------------------------------------


@dataclass(frozen=True)
class RateRow:
    key: str
    label: str
    sessions: int
    with_event: int  # sessions followed by at least one adverse event
    per_100: float
    low_per_100: float  # 95 % Wilson interval
    high_per_100: float
    small_sample: bool


def wilson(count: int, total: int, alpha: float = 0.05) -> tuple[float, float]:
    """The Wilson score interval of count / total, from statsmodels (never hand-rolled)."""
    from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

    low, high = proportion_confint(count, total, alpha=alpha, method="wilson")
    return float(low), float(high)


def rate_row(key: str, label: str, *, with_event: int, sessions: int, small_below: int = 30) -> RateRow:
    """One row of the safety report. Refuses counts that are not a proportion."""
    if sessions < 1 or not 0 <= with_event <= sessions:
        raise ValueError("with_event must be between 0 and sessions, and sessions at least 1")
    low, high = wilson(with_event, sessions)
    share = with_event / sessions
    low, high = max(0.0, min(low, share)), min(1.0, max(high, share))  # no rounding noise past the estimate
    return RateRow(
        key=key,
        label=label,
        sessions=sessions,
        with_event=with_event,
        per_100=100.0 * share,
        low_per_100=100.0 * low,
        high_per_100=100.0 * high,
        small_sample=sessions < small_below,
    )

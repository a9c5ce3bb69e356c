"""Protocols, plans, the check-in gate and session charting: pure rules over plain facts.

No ORM, no request, no clock (``on``/``now`` come in). Rules (domain.md):

- R-TECH: a charted depth outside the technique's range (or the protocol's range for that area) warns
  (``depth-out-of-range``); a depth ≤ 0 or over 13 mm is invalid input; product limits (e.g. deoxycholic
  acid 10 mg/mL: ≤ 0.2 mL per injection, ≤ 50 injections and ≤ 10 mL per session, sessions ≥ 28 days apart,
  ≤ 6 sessions) block (``product-limit``).
- R-SERIES / R-PRE-INTERVAL: a session sooner than the protocol's shortest interval after the plan's last
  session blocks (``interval-too-short``); the protocol's most sessions blocks, the plan's planned number
  warns.
- R-PRE-NSAID: comes from the screening rules (``nsaid-washout``), evaluated for the session date.
- R-PRE-NUMB: topical anaesthetic is optional and recorded; with a documented local-anaesthetic allergy it
  warns (``numbing-allergy``).
- R-PRE-CONSENT and R-PRE-BRUISE: answered by the consent and side-effect apps through gate hooks; until a
  hook answers, the gate says ``info`` "not checked" — never a silent pass.
- R-PROV: the practitioner's licence (``licence-invalid``), from ``accounts.rules``.
- R-FORM / R-SIGNAL: every lot of the preparations for the session must still be usable (``lot-recalled``,
  ``lot-expired``), from ``formulary.rules``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from mesoclinic.accounts.rules import LicenceFacts, licence_findings
from mesoclinic.formulary.rules import LotFacts, lot_findings
from mesoclinic.lib.findings import SEVERITY_ORDER, Finding

MAX_DEPTH_MM = Decimal("13")
MAX_POINTS_PER_AREA = 500
MAX_INJECTIONS_PER_AREA = 5000
MAX_AREAS_PER_SESSION = 40
SERIES_HARD_MAX = 30

SEED_003 = "seed 003_f92b52b170801ca0.txt"
SEED_004 = "seed 004_99daaf86bc4fb4d2.txt"
SOURCE_DEPTH = (
    f"{SEED_004}: injections 1–4 mm deep depending on the condition; deep fat techniques 4–13 mm (lit.)"
)
SOURCE_INTERVAL = f"{SEED_004}: sessions every 7–10 days at first, then every two weeks or once a month"
SOURCE_NUMB = f"{SEED_003}; {SEED_004}: numbing cream about 30 minutes before, optional"
SOURCE_SERIES = f"{SEED_004}: a series of 3 to 15 visits"


# --- the catalogue of words the data refers to ------------------------------------------------------------

# Procedures that are not mesotherapy, for combinations and alternatives (R-ALT, seeds 000, 001, 003, 004).
PROCEDURES: dict[str, str] = {
    "velasmooth": gettext_noop("Velasmooth (cellulite device)"),
    "botulinum-toxin": gettext_noop("Botulinum toxin (Botox)"),
    "dermal-filler": gettext_noop("Dermal filler (e.g. Restylane)"),
    "laser-liposuction": gettext_noop("Laser liposuction (SmartLipo)"),
    "liposuction": gettext_noop("Liposuction"),
    "injection-lipolysis": gettext_noop("Injection lipolysis"),
    "deoxycholic-acid": gettext_noop("Deoxycholic acid injection (Kybella)"),
    "topical-minoxidil": gettext_noop("Topical minoxidil"),
    "oral-finasteride": gettext_noop("Oral finasteride (men)"),
    "hair-transplant": gettext_noop("Hair transplant"),
    "chemical-peel": gettext_noop("Chemical peel"),
    "microneedling": gettext_noop("Microneedling"),
    "radiofrequency": gettext_noop("Radiofrequency skin tightening"),
    "physiotherapy": gettext_noop("Physiotherapy"),
    "diet-exercise": gettext_noop("Diet and exercise programme"),
    "other": gettext_noop("Other procedure"),
}

# Outcome measures a protocol may ask for (R-OUT); the outcomes app records them.
OUTCOME_MEASURES: dict[str, str] = {
    "weight": gettext_noop("Weight"),
    "waist-circumference": gettext_noop("Waist circumference"),
    "hip-circumference": gettext_noop("Hip circumference"),
    "thigh-circumference": gettext_noop("Thigh circumference"),
    "arm-circumference": gettext_noop("Arm circumference"),
    "fat-thickness": gettext_noop("Ultrasound fat thickness"),
    "photos": gettext_noop("Standardised photos"),
    "gais": gettext_noop("Global Aesthetic Improvement Scale (GAIS)"),
    "cr-smfrs": gettext_noop("Clinician-reported submental fat rating (CR-SMFRS)"),
    "pr-smfrs": gettext_noop("Patient-reported submental fat rating (PR-SMFRS)"),
    "nurnberger-muller": gettext_noop("Nürnberger-Müller cellulite grade"),
    "hexsel-css": gettext_noop("Hexsel Cellulite Severity Scale"),
    "glogau": gettext_noop("Glogau photoageing"),
    "wrinkle-severity": gettext_noop("Wrinkle severity (5 points)"),
    "norwood-hamilton": gettext_noop("Norwood-Hamilton"),
    "ludwig": gettext_noop("Ludwig"),
    "hair-density": gettext_noop("Hair density (hairs/cm²)"),
    "satisfaction": gettext_noop("Patient satisfaction"),
    "pain-nrs": gettext_noop("Pain (0–10)"),
}

# Aftercare instructions (R-AE, seeds 001, 003, 004; infection window from the literature).
AFTERCARE: dict[str, str] = {
    "bruising": gettext_noop(
        "Small bruises are common and disappear within days. The next session waits until all bruising from "
        "this one has gone."
    ),
    "swelling": gettext_noop("Mild swelling and small painless bumps can last a day or two."),
    "numbness": gettext_noop("The treated skin may feel numb; this clears in 3 to 10 days."),
    "discoloration": gettext_noop("Darker patches can appear; they are temporary and clear on their own."),
    "arnica": gettext_noop("Arnica cream may be applied to bruises if your practitioner prescribed it."),
    "topical-antibiotic": gettext_noop(
        "Apply the antibiotic cream your practitioner prescribed, as directed."
    ),
    "no-exercise": gettext_noop("Avoid strenuous exercise for the first few days."),
    "loose-clothing": gettext_noop("Wear loose clothing over the treated area for the first few days."),
    "day-off": gettext_noop("Some people need a day off after treatment: plan a quiet day if you can."),
    "no-nsaid": gettext_noop(
        "Before your next session, avoid aspirin and other anti-inflammatory painkillers (NSAIDs) for 7 days."
    ),
    "infection-watch": gettext_noop(
        "Call the clinic if the area becomes more painful, red, warm or swollen, if pus appears, if you have "
        "a "
        "fever, or if lumps or sores appear in the weeks after treatment (infections can show up to 12 weeks "
        "later)."
    ),
    "hair-washing": gettext_noop("Do not wash your hair or use hair products until the next day."),
    "sun": gettext_noop("Avoid sun and make-up on the treated skin for 24 hours."),
}

# Gate hooks answered by other apps, and what the gate says until they do.
HOOK_RULES: dict[str, tuple[str, str]] = {
    "no-consent": (
        "R-PRE-CONSENT",
        gettext_noop("Consent is not checked yet: confirm a signed, current consent."),
    ),
    "bruising-unresolved": (
        "R-PRE-BRUISE",
        gettext_noop(
            "Bruising is not checked yet: confirm that all bruising from the last session has gone."
        ),
    ),
}


def procedure_label(code: str) -> str:
    return _(PROCEDURES.get(code, code))


def measure_label(code: str) -> str:
    return _(OUTCOME_MEASURES.get(code, code))


# --- geometry: points on the body map -----------------------------------------------------------------------

Point = tuple[float, float]


def point_in_polygon(point: Point, polygon: Sequence[Sequence[float]]) -> bool:
    """Whether ``point`` lies inside the polygon or on its edge (even-odd rule)."""
    x, y = point
    inside = False
    count = len(polygon)
    for index in range(count):
        x1, y1 = polygon[index][0], polygon[index][1]
        x2, y2 = polygon[(index + 1) % count][0], polygon[(index + 1) % count][1]
        # On the edge: collinear and within the segment's box.
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        on_line = abs(cross) < 1e-9
        if (
            on_line
            and min(x1, x2) - 1e-9 <= x <= max(x1, x2) + 1e-9
            and min(y1, y2) - 1e-9 <= y <= max(y1, y2) + 1e-9
        ):
            return True
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


def interior_point(polygon: Sequence[Sequence[float]]) -> Point:
    """A point well inside the polygon (concave ones too): the middle of the widest inside stretch of the
    horizontal line through the polygon's middle height, or of the nearest line that has one."""
    ys = [vertex[1] for vertex in polygon]
    low, high = min(ys), max(ys)
    middle = (low + high) / 2
    for step in range(0, 50):
        for sign in (1, -1):
            y = middle + sign * step * (high - low) / 100
            crossings: list[float] = []
            count = len(polygon)
            for index in range(count):
                x1, y1 = polygon[index][0], polygon[index][1]
                x2, y2 = polygon[(index + 1) % count][0], polygon[(index + 1) % count][1]
                if (y1 > y) != (y2 > y):
                    crossings.append(x1 + (y - y1) * (x2 - x1) / (y2 - y1))
            crossings.sort()
            stretches = [(crossings[i], crossings[i + 1]) for i in range(0, len(crossings) - 1, 2)]
            if stretches:
                left, right = max(stretches, key=lambda pair: pair[1] - pair[0])
                return (round((left + right) / 2, 1), round(y, 1))
    raise ValueError("degenerate polygon")


def points_outside(points: Iterable[Point], polygon: Sequence[Sequence[float]]) -> list[int]:
    """The indexes of the points that are not inside the polygon."""
    return [index for index, point in enumerate(points) if not point_in_polygon(point, polygon)]


# --- charting -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TechniqueFacts:
    code: str
    name: str
    depth_min_mm: Decimal
    depth_max_mm: Decimal
    many_punctures: bool = False


@dataclass(frozen=True)
class LimitFacts:
    """A labelled product limit (formulary ProductLimit) that applies to a formula used in the session."""

    ingredient: str  # name, for messages
    label: str
    source: str
    max_volume_per_injection_ml: Decimal | None = None
    max_injections_per_session: int | None = None
    max_volume_per_session_ml: Decimal | None = None
    min_interval_days: int | None = None
    max_sessions: int | None = None


@dataclass(frozen=True)
class AreaEntry:
    """One charted area as the rules see it (already parsed into numbers)."""

    area_code: str
    area_label: str
    outline: Sequence[Sequence[float]]
    technique: TechniqueFacts
    depth_mm: Decimal
    points: tuple[Point, ...]
    injections: int
    volume_per_point_ml: Decimal | None
    total_volume_ml: Decimal
    protocol_depth: tuple[Decimal, Decimal] | None = None  # the protocol's range for this area, if any
    planned: bool = True  # a target area of the plan
    limits: tuple[LimitFacts, ...] = ()


def depth_problem(depth_mm: Decimal) -> str | None:
    """R-TECH: a depth ≤ 0 or over 13 mm is not a depth mesotherapy can have (invalid input)."""
    if not depth_mm.is_finite() or depth_mm <= 0:
        return _("The depth must be more than 0 mm.")
    if depth_mm > MAX_DEPTH_MM:
        return _("The depth cannot be more than %(max)s mm.") % {"max": MAX_DEPTH_MM}
    return None


def entry_volume(
    injections: int, volume_per_point_ml: Decimal | None, total_volume_ml: Decimal | None
) -> Decimal:
    """The total volume of an area: given, or injections × volume per injection."""
    if total_volume_ml is not None:
        return total_volume_ml
    if volume_per_point_ml is None:
        raise ValueError("a volume per injection or a total volume is needed")
    return (volume_per_point_ml * injections).quantize(Decimal("0.001"))


def per_injection_volume(entry: AreaEntry) -> Decimal:
    if entry.volume_per_point_ml is not None:
        return entry.volume_per_point_ml
    return (entry.total_volume_ml / entry.injections).quantize(Decimal("0.001"))


def entry_problems(entry: AreaEntry) -> dict[str, list[str]]:
    """Why an area entry cannot be stored (invalid input, not findings), by field."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    depth = depth_problem(entry.depth_mm)
    if depth:
        add("depth_mm", depth)
    if not entry.points:
        add("points", _("Place at least one injection point on %(area)s.") % {"area": entry.area_label})
    elif len(entry.points) > MAX_POINTS_PER_AREA:
        add("points", _("At most %(count)d points per area.") % {"count": MAX_POINTS_PER_AREA})
    else:
        outside = points_outside(entry.points, entry.outline)
        if outside:
            add(
                "points",
                _("%(count)d point(s) fall outside %(area)s (points %(which)s).")
                % {
                    "count": len(outside),
                    "area": entry.area_label,
                    "which": ", ".join(str(index + 1) for index in outside[:10]),
                },
            )
    if entry.injections < max(len(entry.points), 1):
        add("injections", _("The injections cannot be fewer than the points marked."))
    elif entry.injections > MAX_INJECTIONS_PER_AREA:
        add("injections", _("At most %(count)d injections per area.") % {"count": MAX_INJECTIONS_PER_AREA})
    if entry.volume_per_point_ml is not None and entry.volume_per_point_ml <= 0:
        add("volume_per_point_ml", _("The volume per injection must be more than zero."))
    if entry.total_volume_ml <= 0:
        add("total_volume_ml", _("The volume must be more than zero."))
    return problems


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


def depth_findings(entry: AreaEntry) -> list[Finding]:
    """R-TECH: a depth outside the technique's range, or the protocol's range for the area, warns."""
    findings: list[Finding] = []
    technique = entry.technique
    params = {"area": entry.area_label, "depth": _fmt(entry.depth_mm), "technique": technique.name}
    if not technique.depth_min_mm <= entry.depth_mm <= technique.depth_max_mm:
        findings.append(
            Finding(
                "depth-out-of-range",
                "warn",
                "R-TECH",
                _("%(area)s: %(depth)s mm is outside the %(min)s–%(max)s mm of %(technique)s.")
                % {**params, "min": _fmt(technique.depth_min_mm), "max": _fmt(technique.depth_max_mm)},
                SOURCE_DEPTH,
                subject=f"{entry.area_code}:technique",
            )
        )
    if entry.protocol_depth is not None:
        low, high = entry.protocol_depth
        if not low <= entry.depth_mm <= high:
            findings.append(
                Finding(
                    "depth-out-of-range",
                    "warn",
                    "R-TECH",
                    _("%(area)s: %(depth)s mm is outside the protocol's %(min)s–%(max)s mm for this area.")
                    % {**params, "min": _fmt(low), "max": _fmt(high)},
                    SOURCE_DEPTH,
                    subject=f"{entry.area_code}:protocol",
                )
            )
    return findings


def _limit_finding(limit: LimitFacts, message: str, subject: str) -> Finding:
    return Finding("product-limit", "block", "R-TECH", message, limit.source, subject=subject)


def product_limit_findings(
    entries: Sequence[AreaEntry], *, on: date, previous_sessions: Mapping[str, Sequence[date]]
) -> list[Finding]:
    """R-TECH product limits over the whole session. ``previous_sessions``: for each limit label, the dates of
    the patient's earlier sessions that used it (signed or open, this one excluded)."""
    findings: list[Finding] = []
    by_limit: dict[str, tuple[LimitFacts, list[AreaEntry]]] = {}
    for entry in entries:
        for limit in entry.limits:
            by_limit.setdefault(limit.label, (limit, []))[1].append(entry)
    for label, (limit, used) in by_limit.items():
        params = {"product": limit.label}
        if limit.max_volume_per_injection_ml is not None:
            for entry in used:
                per = per_injection_volume(entry)
                if per > limit.max_volume_per_injection_ml:
                    findings.append(
                        _limit_finding(
                            limit,
                            _(
                                "%(area)s: %(per)s mL per injection of %(product)s; "
                                "the label allows %(max)s mL."
                            )
                            % {
                                **params,
                                "area": entry.area_label,
                                "per": _fmt(per),
                                "max": _fmt(limit.max_volume_per_injection_ml),
                            },
                            f"{label}:{entry.area_code}:per-injection",
                        )
                    )
        injections = sum(entry.injections for entry in used)
        if limit.max_injections_per_session is not None and injections > limit.max_injections_per_session:
            findings.append(
                _limit_finding(
                    limit,
                    _("%(count)d injections of %(product)s in one session; the label allows %(max)d.")
                    % {**params, "count": injections, "max": limit.max_injections_per_session},
                    f"{label}:injections",
                )
            )
        volume = sum((entry.total_volume_ml for entry in used), Decimal(0))
        if limit.max_volume_per_session_ml is not None and volume > limit.max_volume_per_session_ml:
            findings.append(
                _limit_finding(
                    limit,
                    _("%(volume)s mL of %(product)s in one session; the label allows %(max)s mL.")
                    % {**params, "volume": _fmt(volume), "max": _fmt(limit.max_volume_per_session_ml)},
                    f"{label}:volume",
                )
            )
        findings.extend(product_history_findings(limit, on=on, previous=previous_sessions.get(label, ())))
    return findings


def product_history_findings(limit: LimitFacts, *, on: date, previous: Sequence[date]) -> list[Finding]:
    """R-TECH: the label's sessions-apart and most-sessions limits, over the patient's earlier sessions."""
    findings: list[Finding] = []
    params = {"product": limit.label}
    earlier = [day for day in previous if day <= on]
    if limit.max_sessions is not None and len(earlier) >= limit.max_sessions:
        findings.append(
            _limit_finding(
                limit,
                _("%(product)s has been used in %(count)d sessions already; the label allows %(max)d.")
                % {**params, "count": len(earlier), "max": limit.max_sessions},
                f"{limit.label}:sessions",
            )
        )
    if limit.min_interval_days is not None and earlier:
        last = max(earlier)
        elapsed = (on - last).days
        if elapsed < limit.min_interval_days:
            findings.append(
                _limit_finding(
                    limit,
                    _(
                        "%(product)s was last used %(elapsed)d day(s) ago; "
                        "the label asks for %(min)d days apart."
                    )
                    % {**params, "elapsed": elapsed, "min": limit.min_interval_days},
                    f"{limit.label}:interval",
                )
            )
    return findings


def planning_findings(entry: AreaEntry) -> list[Finding]:
    if entry.planned:
        return []
    return [
        Finding(
            "area-not-planned",
            "warn",
            "R-IND",
            _("%(area)s is not a target area of the plan.") % {"area": entry.area_label},
            "domain.md R-IND: a plan names its target areas",
            subject=entry.area_code,
        )
    ]


def numbing_findings(*, anaesthetic: str, local_anaesthetic_allergy: Sequence[str]) -> list[Finding]:
    """R-PRE-NUMB: numbing cream is optional and needs no local-anaesthetic allergy."""
    if anaesthetic == "none" or not local_anaesthetic_allergy:
        return []
    return [
        Finding(
            "numbing-allergy",
            "warn",
            "R-PRE-NUMB",
            _("A numbing cream was used although the patient reports an allergy: %(allergy)s.")
            % {"allergy": "; ".join(local_anaesthetic_allergy)},
            SOURCE_NUMB,
        )
    ]


def chart_findings(
    entries: Sequence[AreaEntry],
    *,
    on: date,
    previous_sessions: Mapping[str, Sequence[date]],
    anaesthetic: str,
    local_anaesthetic_allergy: Sequence[str],
    preparation_overdraws: Sequence[tuple[str, Decimal, Decimal]] = (),
) -> list[Finding]:
    """Everything the chart says, blocks first. ``preparation_overdraws``: (label, charted, prepared) for each
    preparation charted beyond what it held."""
    findings: list[Finding] = []
    for entry in entries:
        findings.extend(depth_findings(entry))
        findings.extend(planning_findings(entry))
    findings.extend(product_limit_findings(entries, on=on, previous_sessions=previous_sessions))
    findings.extend(
        numbing_findings(anaesthetic=anaesthetic, local_anaesthetic_allergy=local_anaesthetic_allergy)
    )
    for label, charted, prepared in preparation_overdraws:
        findings.append(
            Finding(
                "preparation-overdrawn",
                "block",
                "R-FORM",
                _("%(preparation)s: %(charted)s mL charted, but only %(prepared)s mL was prepared.")
                % {"preparation": label, "charted": _fmt(charted), "prepared": _fmt(prepared)},
                "domain.md R-FORM: every volume injected comes from a traced preparation",
                subject=label,
            )
        )
    return sort_findings(findings)


# --- the check-in gate --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateLot:
    preparation: str  # label, for messages
    lot: LotFacts


@dataclass(frozen=True)
class GateFacts:
    on: date  # the session's clinic-local date
    now: datetime
    plan_status: str
    sessions_done: int  # sessions of this plan before this one
    planned_sessions: int
    protocol_sessions_max: int
    last_session_on: date | None
    interval_min_days: int
    licences: tuple[LicenceFacts, ...]
    jurisdiction: str
    # Findings of the screening rules for the session date that concern the session (nsaid-washout, a new
    # pregnancy…), computed by the screening app.
    patient_findings: tuple[Finding, ...] = ()
    patient_screened: bool = True
    lots: tuple[GateLot, ...] = ()
    local_anaesthetic_allergy: tuple[str, ...] = ()
    limit_history: tuple[tuple[LimitFacts, tuple[date, ...]], ...] = ()
    # Answers of the hooks (consent, bruising): None when no app answers yet.
    hooks: Mapping[str, tuple[Finding, ...] | None] = field(default_factory=dict)


def interval_findings(*, on: date, last_session_on: date | None, interval_min_days: int) -> list[Finding]:
    """R-PRE-INTERVAL: never sooner than the protocol allows after the plan's last session."""
    if last_session_on is None:
        return []
    elapsed = (on - last_session_on).days
    if elapsed >= interval_min_days:
        return []
    earliest = last_session_on + timedelta(days=interval_min_days)
    return [
        Finding(
            "interval-too-short",
            "block",
            "R-PRE-INTERVAL",
            _(
                "The last session was %(elapsed)d day(s) before; "
                "the protocol asks for at least %(min)d days. "
                "The earliest date is %(earliest)s."
            )
            % {
                "elapsed": elapsed,
                "min": interval_min_days,
                "earliest": date_format(earliest, "SHORT_DATE_FORMAT"),
            },
            SOURCE_INTERVAL,
        )
    ]


def series_findings(
    *, sessions_done: int, planned_sessions: int, protocol_sessions_max: int
) -> list[Finding]:
    """R-SERIES: the protocol's most sessions blocks; going past the plan's planned number warns."""
    if sessions_done >= protocol_sessions_max:
        return [
            Finding(
                "series-complete",
                "block",
                "R-SERIES",
                _("The protocol allows at most %(max)d sessions in a series; %(done)d are done.")
                % {"max": protocol_sessions_max, "done": sessions_done},
                SOURCE_SERIES,
            )
        ]
    if sessions_done >= planned_sessions:
        return [
            Finding(
                "beyond-planned-sessions",
                "warn",
                "R-SERIES",
                _("The plan has %(planned)d sessions and %(done)d are done: this one goes beyond the plan.")
                % {"planned": planned_sessions, "done": sessions_done},
                SOURCE_SERIES,
            )
        ]
    return []


def hook_findings(hooks: Mapping[str, tuple[Finding, ...] | None]) -> list[Finding]:
    findings: list[Finding] = []
    for code, (rule, message) in HOOK_RULES.items():
        answer = hooks.get(code)
        if answer is None:
            findings.append(Finding(code, "info", rule, _(message), "domain.md " + rule))
        else:
            findings.extend(answer)
    return findings


def gate_findings(facts: GateFacts) -> list[Finding]:
    """Every R-PRE rule before a session starts, blocks first. Blocks stop the session; each warning needs an
    acknowledged reason."""
    findings: list[Finding] = []
    if facts.plan_status != "active":
        findings.append(
            Finding(
                "plan-not-active",
                "block",
                "R-SERIES",
                _("The plan is not active: sessions are charted only on an active plan."),
                "domain.md R-SERIES",
            )
        )
    findings.extend(
        series_findings(
            sessions_done=facts.sessions_done,
            planned_sessions=facts.planned_sessions,
            protocol_sessions_max=facts.protocol_sessions_max,
        )
    )
    findings.extend(
        interval_findings(
            on=facts.on, last_session_on=facts.last_session_on, interval_min_days=facts.interval_min_days
        )
    )
    if not facts.patient_screened:
        findings.append(
            Finding(
                "no-intake",
                "block",
                "R-PRE-NSAID",
                _("There is no intake questionnaire to check medicines against."),
                SEED_004,
            )
        )
    findings.extend(facts.patient_findings)
    findings.extend(licence_findings(facts.licences, jurisdiction=facts.jurisdiction, on=facts.on))
    for item in facts.lots:
        for finding in lot_findings(item.lot, volume_ml=Decimal(0), today=facts.on, now=facts.now):
            findings.append(
                Finding(
                    finding.code,
                    finding.severity,
                    finding.rule,
                    f"{item.preparation}: {finding.message}",
                    finding.source,
                    subject=f"{item.preparation}:{item.lot.number}",
                )
            )
    for limit, previous in facts.limit_history:
        findings.extend(product_history_findings(limit, on=facts.on, previous=previous))
    if facts.local_anaesthetic_allergy:
        findings.append(
            Finding(
                "numbing-allergy",
                "info",
                "R-PRE-NUMB",
                _("Documented allergy (%(allergy)s): no local-anaesthetic numbing cream.")
                % {"allergy": "; ".join(facts.local_anaesthetic_allergy)},
                SOURCE_NUMB,
            )
        )
    findings.extend(hook_findings(facts.hooks))
    return sort_findings(findings)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda finding: SEVERITY_ORDER[finding.severity])


def unacknowledged(findings: Iterable[Finding], acknowledgements: Mapping[str, str]) -> list[Finding]:
    """The warnings without a reason (blank reasons do not count)."""
    return [
        finding
        for finding in findings
        if finding.severity == "warn" and not acknowledgements.get(finding.key, "").strip()
    ]


# --- plans --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFacts:
    """The latest signed screening review of the patient, as the activation rule needs it."""

    decision: str  # "candidate" | "not_candidate"
    stale_reasons: tuple[str, ...] = ()


def activation_findings(review: ReviewFacts | None, *, plan_status: str) -> list[Finding]:
    """A plan becomes active only from a draft, after a practitioner has reviewed a current screening with no
    unacknowledged findings (the review records a reason for every warning; a block forbids "candidate")."""
    findings: list[Finding] = []
    if plan_status != "draft":
        findings.append(
            Finding(
                "plan-not-draft", "block", "R-SERIES", _("Only a draft plan can be activated."), "domain.md"
            )
        )
    if review is None:
        findings.append(
            Finding(
                "screening-not-reviewed",
                "block",
                "R-CAND-AGE",
                _("No practitioner has reviewed the screening yet: review it first."),
                "domain.md R-CAND: candidacy is assessed by a provider at consultation (000, 001, 002)",
            )
        )
        return findings
    if review.stale_reasons:
        findings.append(
            Finding(
                "screening-stale",
                "block",
                "R-CAND-AGE",
                _("The screening review is out of date: %(reasons)s")
                % {"reasons": " ".join(review.stale_reasons)},
                "domain.md R-CAND",
            )
        )
    if review.decision != "candidate":
        findings.append(
            Finding(
                "not-a-candidate",
                "block",
                "R-CAND-AGE",
                _("The practitioner recorded that the patient is not a candidate."),
                "domain.md R-CAND",
            )
        )
    return findings


def plan_input_problems(
    *,
    planned_sessions: int,
    sessions_min: int,
    sessions_max: int,
    areas: Sequence[str],
    allowed_areas: Iterable[str],
    procedures: Sequence[str],
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not sessions_min <= planned_sessions <= sessions_max:
        problems["planned_sessions"] = [
            _("This protocol plans %(min)d to %(max)d sessions.") % {"min": sessions_min, "max": sessions_max}
        ]
    if not areas:
        problems["areas"] = [_("Choose at least one target area.")]
    else:
        allowed = set(allowed_areas)
        outside = [area for area in areas if area not in allowed]
        if outside:
            problems["areas"] = [
                _("Not an area of this protocol: %(areas)s.") % {"areas": ", ".join(outside)}
            ]
    unknown = [code for code in procedures if code not in PROCEDURES]
    if unknown:
        problems["procedures"] = [_("Unknown procedure: %(codes)s.") % {"codes": ", ".join(unknown)}]
    return problems


@dataclass(frozen=True)
class SeriesRule:
    interval_min_days: int
    interval_max_days: int
    taper_interval_min_days: int | None = None
    taper_interval_max_days: int | None = None


def next_window(
    rule: SeriesRule, *, last_session_on: date | None, improved: bool
) -> tuple[date, date] | None:
    """The earliest and latest dates of the next session (R-SERIES): 7–10 days at first, stretched to the
    tapered interval once improvement is recorded. None before the first session (any date)."""
    if last_session_on is None:
        return None
    low, high = rule.interval_min_days, rule.interval_max_days
    if improved and rule.taper_interval_min_days and rule.taper_interval_max_days:
        low, high = max(low, rule.taper_interval_min_days), max(high, rule.taper_interval_max_days)
    return last_session_on + timedelta(days=low), last_session_on + timedelta(days=high)


def protocol_input_problems(
    *,
    sessions_min: int,
    sessions_max: int,
    interval_min_days: int,
    interval_max_days: int,
    taper_interval_min_days: int | None,
    taper_interval_max_days: int | None,
    areas: Sequence[tuple[str, Decimal, Decimal, Decimal, Decimal]],
    measures: Sequence[str],
    procedures: Sequence[str],
    aftercare: Sequence[str],
) -> dict[str, list[str]]:
    """Why a protocol version cannot be stored. ``areas``: (area code, depth min, depth max, technique min,
    technique max) for each area."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if not 1 <= sessions_min <= sessions_max <= SERIES_HARD_MAX:
        add("sessions_max", _("Sessions: from 1 to %(max)d, fewest first.") % {"max": SERIES_HARD_MAX})
    if not 1 <= interval_min_days <= interval_max_days <= 365:
        add("interval_max_days", _("Intervals: from 1 to 365 days, shortest first."))
    if (taper_interval_min_days is None) != (taper_interval_max_days is None):
        add("taper_interval_max_days", _("Give both tapered intervals, or neither."))
    elif (
        taper_interval_min_days is not None
        and taper_interval_max_days is not None
        and not interval_min_days <= taper_interval_min_days <= taper_interval_max_days <= 365
    ):
        add(
            "taper_interval_max_days",
            _("Tapered intervals are at least the initial interval, shortest first."),
        )
    if not areas:
        add("areas", _("A protocol treats at least one area."))
    for index, (code, low, high, tech_low, tech_high) in enumerate(areas):
        for value in (low, high):
            problem = depth_problem(value)
            if problem:
                add(f"areas.{index}.depth", problem)
                break
        else:
            if low > high:
                add(f"areas.{index}.depth", _("The shallowest depth comes first."))
            elif low < tech_low or high > tech_high:
                add(
                    f"areas.{index}.depth",
                    _("%(area)s: %(low)s–%(high)s mm goes outside the technique's %(tlow)s–%(thigh)s mm.")
                    % {
                        "area": code,
                        "low": _fmt(low),
                        "high": _fmt(high),
                        "tlow": _fmt(tech_low),
                        "thigh": _fmt(tech_high),
                    },
                )
    codes = [code for code, *_rest in areas]
    if len(codes) != len(set(codes)):
        add("areas", _("Each area once."))
    for name, values, known in (
        ("outcome_measures", measures, OUTCOME_MEASURES),
        ("combinations", procedures, PROCEDURES),
        ("aftercare", aftercare, AFTERCARE),
    ):
        unknown = [value for value in values if value not in known]
        if unknown:
            add(name, _("Unknown code: %(codes)s.") % {"codes": ", ".join(unknown)})
    return problems


# --- the medical director's co-signature --------------------------------------------------------------------


def cosign_sample(clinic_id: int, session_id: int) -> float:
    """A stable number in [0, 1) for the session: the same session is always in or out of the sample."""
    digest = hashlib.sha256(f"cosign:{clinic_id}:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def cosign_required(
    *, share_percent: int, new_practitioner_sessions: int, signed_before: int, sample: float
) -> bool:
    """Every session of a new practitioner (fewer than ``new_practitioner_sessions`` signed in the clinic),
    and
    a ``share_percent`` share of the others, go to the medical director's review queue."""
    if signed_before < new_practitioner_sessions:
        return True
    return sample * 100 < share_percent


def aftercare_texts(codes: Sequence[str]) -> list[tuple[str, str]]:
    """(code, text) in the active language; unknown codes are skipped."""
    return [(code, _(AFTERCARE[code])) for code in codes if code in AFTERCARE]


ALL_AFTERCARE_CODES = tuple(AFTERCARE)

"""The generator's sessions family (mesoclinic.treatments): treatment plans and the sessions charted on them.

Reads the visits that bench/clinical.py planned and bench/stock.py gave a preparation each
(``ctx.clinics[i].visits``), and writes, per clinic:

- one **TreatmentPlan** per series (a visit with ``series == 1`` starts one), from the seeded template
  protocol of the formula's indication (:data:`PROTOCOL_FOR_INDICATION`, the template's current version),
  with the series' planned sessions (drawn by bench/clinical.py within the protocol's range), its
  **PlanArea** rows (a realistic subset of the protocol's areas, from the areas the screening review named:
  both sides of a bilateral area, most of the time) and a **PlanFormula** row. Status: *active* while the
  series runs (and while its last session is open or just finished), *completed* some days after its last
  planned session, *stopped* with a reason for the few series the patient leaves early.
  ``screening_review_id`` is the review signed before the series; the plan is made just after it.
- one **TreatmentSession** per visit: number = its place in the series, date = the visit's local day,
  practitioner = the visit's, the visit's room (``bench.rows.spread_visits``), the multi-injector gun for some
  superficial sessions, checked in by the desk (mostly), charted and signed within the hour; the co-signature
  as ``treatments.rules.cosign_required`` decides it at sign-off (every session of a practitioner's first
  ``cosign_new_practitioner_sessions``, and ``cosign_share_percent`` of the others, by the same stable
  sample), co-signed by the medical director 1–14 days later (never their own sessions: nobody else may);
  ``gate_findings`` as the check-in gate stores them for a patient with nothing else to say: the consent
  hook's ``consent-valid`` row for the consent that covers the session (bench/consent.py writes them:
  ``consent_days``), the bruising hook's "not checked" row (and the numbing-cream note for a
  local-anaesthetic allergy). The visits
  of the clinic's last day with visits (the open day before ``as_of``) are **open** sessions: charted, not
  signed, no aftercare, so that the chart-save scenario has open sessions with fresh preparations
  (``chart_save`` in bench/run.py).
- about 4 **ChartedArea** rows per session (targets.md's charted areas): the plan's areas (sometimes one
  fewer), the protocol's technique and a depth inside both its range and the technique's, volumes per
  injection inside the technique's range, injections that use 85–100 % of the preparation (never more:
  the charted volume of a session is at most its preparation's ``total_volume_ml``), and points drawn from
  a few hundred points per area precomputed inside its outline (``treatments.rules.interior_point`` plus
  jitter, each checked with ``point_in_polygon``);
- one **SessionPreparation** per session (the visit's preparation: one-to-one) and, for every signed
  session, its **Aftercare** (the protocol's instructions in the patient's language, as
  ``services._issue_aftercare`` writes them).

No audit rows. Plans and sessions take their ids here (``ctx.next_ids``: session *i* is visit *i*); plan
areas, plan formulas, charted areas, session preparations and aftercare take the database's, in write order.
The rows are built by worker processes, a slice of a clinic's visits per job; what a slice needs to know
about the plans (their areas, size, review, when they end) is decided once in this process
(:func:`clinic_plans`)."""

from __future__ import annotations

import json
import random
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils import translation
from django.utils.translation import gettext

from bench.consent import consent_days, validity_months
from bench.rows import SECONDS_PER_DAY, RowJob, Visits, day_text, ml, ml_text, moment_text
from mesoclinic.accounts.models import Role
from mesoclinic.clinics.models import Device, Room
from mesoclinic.consent import rules as consent_rules
from mesoclinic.consent.rules import ConsentFacts
from mesoclinic.formulary import rules as formulary_rules
from mesoclinic.lib.findings import Finding
from mesoclinic.patients.models import Patient
from mesoclinic.screening.models import Intake, Review
from mesoclinic.treatments import rules as treatment_rules
from mesoclinic.treatments.models import (
    Aftercare,
    BodyArea,
    ChartedArea,
    PlanArea,
    PlanFormula,
    ProtocolArea,
    ProtocolVersion,
    SessionPreparation,
    Technique,
    TreatmentPlan,
    TreatmentSession,
)

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts
    from bench.stock import FormulaPlan

# The seeded template protocol for a formula's indication (its first indication that has one). The
# templates have no pigmentation or stretch-mark protocol: pigmentation is treated on the face like
# rejuvenation (nappage), stretch marks on the body like cellulite (intradermal).
PROTOCOL_FOR_INDICATION: dict[str, str] = {
    "localized-fat": "localized-fat",
    "cellulite": "cellulite",
    "stretch-marks": "cellulite",
    "rejuvenation": "facial-rejuvenation",
    "wrinkles": "facial-rejuvenation",
    "pigmentation": "facial-rejuvenation",
    "sagging-skin": "loose-skin",
    "hair-loss": "hair-loss",
    "submental-fat": "submental-deoxycholic-acid",
    "pain": "pain",
}
# The words of a screening review's areas (bench/stock.py's formula templates) → body-area codes (without
# their -left/-right side).
AREA_WORDS: dict[str, tuple[str, ...]] = {
    "thighs": ("thigh-front", "thigh-inner", "thigh-back"),
    "buttocks": ("buttock",),
    "hips": ("hip",),
    "abdomen": ("abdomen",),
    "flanks": ("flank",),
    "submental": ("submental",),
    "face": ("forehead", "periorbital", "cheek", "perioral"),
    "cheeks": ("cheek",),
    "periorbital": ("periorbital",),
    "neck": ("neck",),
    "decollete": ("decolletage",),
    "scalp": ("scalp-frontal", "scalp-midscalp", "scalp-vertex", "scalp-temporal"),
}
NEEDLES: dict[str, tuple[str, ...]] = {
    "intraepidermal": ("32G 4 mm",),
    "nappage": ("32G 4 mm", "30G 4 mm", "30G 4 mm"),
    "papule": ("30G 4 mm",),
    "intradermal": ("30G 4 mm", "30G 4 mm", "30G 6 mm"),
    "point-by-point-deep": ("27G 13 mm", "30G 13 mm", "30G 13 mm"),
    "linear-retrograde": ("30G 13 mm",),
    "mesoperfusion": ("30G 13 mm",),
    "multi-injector-gun": ("Multi-needle plate 5 × 32G",),
}
POINTS_PER_AREA = 300  # precomputed valid points per body area, which charts draw from
SESSIONS_PER_JOB = 2_000
USED_SHARE = (0.85, 1.0)  # of the preparation's volume charted
NUMBING_SHARE = 0.35  # sessions of face, scalp and intradermal protocols with a numbing cream
GUN_SHARE = 0.25  # superficial sessions done with the multi-injector gun
IMPROVED_SHARE = 0.35  # plans whose improvement is recorded (intervals may taper)

FIELDS_PLAN = (
    "id",
    "clinic",
    "patient",
    "protocol_version",
    "indication",
    "planned_sessions",
    "status",
    "goals",
    "stop_reason",
    "screening_review_id",
    "improved_on",
    "created_at",
    "created_by",
    "activated_at",
    "activated_by",
    "ended_at",
    "ended_by",
)
FIELDS_PLAN_AREA = ("plan", "area")
FIELDS_PLAN_FORMULA = ("plan", "formula")
FIELDS_SESSION = (
    "id",
    "clinic",
    "plan",
    "patient",
    "number",
    "session_date",
    "practitioner",
    "room",
    "device",
    "status",
    "checked_in_at",
    "checked_in_by",
    "gate_findings",
    "gate_acknowledgements",
    "topical_anaesthetic",
    "anaesthetic_minutes",
    "notes",
    "chart_findings",
    "chart_acknowledgements",
    "charted_at",
    "charted_by",
    "signed_at",
    "signed_by",
    "cosign_required",
    "cosigned_at",
    "cosigned_by",
    "cosign_note",
)
FIELDS_CHARTED = (
    "session",
    "position",
    "area",
    "technique",
    "depth_mm",
    "needle",
    "points",
    "injections",
    "volume_per_point_ml",
    "total_volume_ml",
    "preparation",
    "notes",
)
FIELDS_SESSION_PREPARATION = ("session", "preparation")
FIELDS_AFTERCARE = ("session", "patient", "issued_at", "language", "instructions", "note")

GOALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # protocol → (English, French)
    "localized-fat": (
        ("Reduce the stubborn fat on the belly and flanks", "Slimmer thighs"),
        ("Affiner la taille et les flancs", "Réduire la culotte de cheval"),
    ),
    "cellulite": (
        ("Smoother skin on the thighs and hips", "Less orange-peel skin"),
        ("Une peau plus lisse sur les cuisses", "Atténuer la cellulite"),
    ),
    "facial-rejuvenation": (
        ("Brighter, more hydrated skin", "Fewer fine lines", "More even skin tone"),
        ("Un teint plus éclatant", "Atténuer les ridules", "Un teint plus uniforme"),
    ),
    "hair-loss": (("Thicker hair at the crown", "Slow the hair loss"), ("Des cheveux plus denses",)),
}
STOP_REASONS = (
    "The patient moved away.",
    "The patient asked to stop (cost).",
    "Not satisfied with the results so far; alternatives discussed.",
    "Pregnancy: treatment stopped.",
    "Bruising after each session; the patient prefers to stop.",
    "No response at the non-responder check.",
)
SESSION_NOTES = (
    "Well tolerated.",
    "Well tolerated; a few small bruises.",
    "Patient reports visible improvement.",
    "Slight swelling at the end of the session.",
    "Mild discomfort; short pauses taken.",
    "Same as last session.",
)
AREA_NOTES = ("Slight bleeding, pressure applied.", "Small bruise.", "Fewer points: sensitive area.")
COSIGN_NOTES = ("", "", "", "Reviewed: no concerns.", "Depths and volumes appropriate.")


# --- What is read once: protocols, body areas and their points -------------------------------------------


@dataclass(frozen=True)
class AreaPlan:
    """One area of a protocol version, as a chart of it is drawn."""

    area_id: int
    code: str
    group: str  # the code without its side: both sides of a bilateral area are planned together
    technique_id: int
    technique: str
    many_punctures: bool
    depths: tuple[str, ...]  # depth texts (0.5 mm steps) inside the protocol's and the technique's ranges
    volume_ul: tuple[int, int]  # per injection, the technique's range
    needles: tuple[str, ...]


@dataclass(frozen=True)
class ProtocolPlan:
    code: str
    version_id: int
    indication: str
    sessions: tuple[int, int]
    areas: tuple[AreaPlan, ...]  # in body-map order
    groups: tuple[tuple[str, tuple[int, ...]], ...]  # group → indexes into ``areas``
    aftercare: tuple[str, ...]
    aftercare_note: str
    numbing: bool  # numbing cream usual for its areas (face, scalp, intradermal)
    superficial: bool  # the multi-injector gun can do it

    def group_areas(self, group: str) -> tuple[int, ...]:
        return dict(self.groups)[group]


def _side_less(code: str) -> str:
    for suffix in ("-left", "-right"):
        if code.endswith(suffix):
            return code[: -len(suffix)]
    return code


def _depths(low: Decimal, high: Decimal) -> tuple[str, ...]:
    steps = []
    value = (low * 2).to_integral_value(rounding="ROUND_CEILING") / 2
    while value <= high:
        steps.append(f"{value:.1f}")
        value += Decimal("0.5")
    return tuple(steps) or (f"{low:.1f}",)


def load_protocols() -> dict[str, ProtocolPlan]:
    """The seeded template protocols (``clinic`` NULL, migration 0002_seed), each at its current version."""
    current: dict[str, ProtocolVersion] = {}
    for version in (
        ProtocolVersion.objects.filter(protocol__clinic__isnull=True, protocol__is_active=True)
        .select_related("protocol")
        .order_by("protocol_id", "number")
    ):
        current[version.protocol.code] = version
    rows: dict[int, list[ProtocolArea]] = {}
    for row in (
        ProtocolArea.objects.filter(version__in=list(current.values()))
        .select_related("area", "technique")
        .order_by("area__position", "area__code")
    ):
        rows.setdefault(row.version_id, []).append(row)
    protocols: dict[str, ProtocolPlan] = {}
    for code, version in current.items():
        areas: list[AreaPlan] = []
        groups: dict[str, list[int]] = {}
        for row in rows.get(version.pk, []):
            technique: Technique = row.technique
            low = max(row.depth_min_mm, technique.depth_min_mm)
            high = min(row.depth_max_mm, technique.depth_max_mm)
            volume = (
                ml(float(technique.volume_per_point_min_ml or Decimal("0.01"))),
                ml(float(technique.volume_per_point_max_ml or Decimal("0.1"))),
            )
            group = _side_less(row.area.code)
            groups.setdefault(group, []).append(len(areas))
            areas.append(
                AreaPlan(
                    area_id=row.area_id,
                    code=row.area.code,
                    group=group,
                    technique_id=technique.pk,
                    technique=technique.code,
                    many_punctures=technique.many_punctures,
                    depths=_depths(low, high),
                    volume_ul=volume,
                    needles=NEEDLES.get(technique.code, (technique.needles.split(",")[0].strip(),)),
                )
            )
        views = {row.area.view for row in rows.get(version.pk, [])}
        techniques = {area.technique for area in areas}
        protocols[code] = ProtocolPlan(
            code=code,
            version_id=version.pk,
            indication=version.protocol.indication,
            sessions=(version.sessions_min, version.sessions_max),
            areas=tuple(areas),
            groups=tuple((group, tuple(indexes)) for group, indexes in groups.items()),
            aftercare=tuple(version.aftercare),
            aftercare_note=version.aftercare_note,
            numbing=bool(views & {"face", "scalp"}) or "intradermal" in techniques,
            superficial=bool(techniques & {"nappage", "intradermal", "intraepidermal"}),
        )
    return protocols


def protocol_for(indications: Iterable[str], protocols: Mapping[str, ProtocolPlan]) -> ProtocolPlan:
    for indication in indications:
        code = PROTOCOL_FOR_INDICATION.get(indication)
        if code is not None and code in protocols:
            return protocols[code]
    raise LookupError(f"no template protocol for {sorted(indications)}")


def series_ranges(formulas: Sequence[FormulaPlan]) -> dict[int, tuple[int, int]]:
    """Formula id → the (fewest, most) sessions of its protocol: bench/clinical.py plans series in it."""
    protocols = load_protocols()
    return {formula.formula_id: protocol_for(formula.indications, protocols).sessions for formula in formulas}


@dataclass(frozen=True)
class PointPool:
    """Valid points of one area, as JSON texts joined in one string: a chart of ``k`` points is the slice
    from point ``s`` to point ``s + k - 1`` (random ``s``), a few µs whatever ``k``."""

    joined: str
    starts: array[int]
    ends: array[int]

    def __len__(self) -> int:
        return len(self.starts)

    def points(self, start: int, count: int) -> str:
        return "[" + self.joined[self.starts[start] : self.ends[start + count - 1]] + "]"


def point_pool(stream: str, outline: Sequence[Sequence[float]], size: int = POINTS_PER_AREA) -> PointPool:
    """``size`` distinct points (0.1 unit precision, as the service rounds them) inside ``outline``: the
    area's interior point plus Gaussian jitter of a third of its extent, each kept only if
    ``point_in_polygon`` says it is inside."""
    rng = random.Random(stream)  # noqa: S311 (generated data)
    xs = [float(vertex[0]) for vertex in outline]
    ys = [float(vertex[1]) for vertex in outline]
    centre_x, centre_y = treatment_rules.interior_point(outline)
    spread_x, spread_y = (max(xs) - min(xs)) / 3, (max(ys) - min(ys)) / 3
    found: dict[tuple[float, float], None] = {}
    tries = 0
    while len(found) < size and tries < size * 200:
        tries += 1
        point = (round(rng.gauss(centre_x, spread_x), 1), round(rng.gauss(centre_y, spread_y), 1))
        if point not in found and treatment_rules.point_in_polygon(point, outline):
            found[point] = None
    if not found:  # pragma: no cover - every seeded outline holds a 8 × 8 square
        raise ValueError("no point inside the outline")
    texts = [f"[{x!r},{y!r}]" for x, y in found]  # compact JSON: what is read back is the same list
    starts, ends = array("l"), array("l")
    offset = 0
    for text in texts:
        starts.append(offset)
        ends.append(offset + len(text))
        offset += len(text) + 1
    return PointPool(",".join(texts), starts, ends)


# --- Per clinic: the plan of the sessions -------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInfo:
    """One plan as the session jobs need it (decided in this process, before the jobs)."""

    plan_id: int
    protocol: str
    formula_id: int
    patient: int
    practitioner: int
    first: int  # index of its first visit in the clinic's visits
    count: int  # sessions
    planned: int
    stopped: bool
    last_moment: int  # clinic-local second of its last visit (ordinal × 86,400 + second)
    has_open: bool
    areas: tuple[int, ...]  # indexes into the protocol's areas
    review_id: int | None
    review_moment: int  # clinic-local second the review was signed (the plan is made just after)
    improved_day: int  # ordinal, 0 for none
    # The check-in gate's findings as stored (JSON text) from each session number on: the consent that
    # covers it changes when the patient signs again (bench/consent.py's ``consent_days``).
    gates: tuple[tuple[int, str], ...] = ()

    def gate_for(self, number: int) -> str:
        text = self.gates[0][1]
        for first, found in self.gates:
            if first <= number:
                text = found
        return text


@dataclass(frozen=True)
class SessionClinic:
    """What every session job of one clinic shares."""

    clinic_id: int
    utc_offset: int
    as_of: int  # ordinal
    last_day: int  # ordinal of the clinic's last day with visits: its visits are open sessions
    cosign_share_percent: int
    cosign_new_practitioner_sessions: int
    director: int
    desk: tuple[int, ...]
    rooms: tuple[int, ...]
    gun: int | None  # the multi-injector gun (Device)
    protocols: Mapping[str, ProtocolPlan]
    volumes: Mapping[int, tuple[tuple[int, int, int], ...]]  # formula id → preparation_volumes()
    pools: Mapping[int, PointPool]  # BodyArea id → its points
    languages: Mapping[int, str]  # patient → preferred language
    numbing_allergy: frozenset[int]  # patients with a documented local-anaesthetic allergy
    # The gate's findings besides the hooks' for the patients whose gate says more (numbing allergy).
    gate_extra: Mapping[int, tuple[Finding, ...]]
    staff_language: str  # what the gate's messages are written in
    aftercare: Mapping[tuple[str, str], str]  # (protocol, language) → instructions (JSON text)


def choose_areas(
    rng: random.Random, protocol: ProtocolPlan, words: Sequence[str], half: bool
) -> tuple[int, ...]:
    """The plan's target areas: among the protocol's areas those the review named (all of the protocol's
    when it named none of them), whole groups (both sides) in a random order until 4–8 areas (2 for a small
    area), sometimes one side only; fewer when the review's areas have fewer."""
    rand = rng.random
    wanted = {base for word in words for base in AREA_WORDS.get(word, ())}
    groups = [group for group, _indexes in protocol.groups if group in wanted]
    if not groups:
        groups = [group for group, _indexes in protocol.groups]
    rng.shuffle(groups)
    target = 2 if half else 4 + int(rand() * 5)
    chosen: list[int] = []
    for group in groups:
        indexes = protocol.group_areas(group)
        if len(indexes) == 2 and (rand() < 0.08 or (half and len(chosen) + 2 > target)):
            indexes = (indexes[int(rand() * 2)],)
        chosen.extend(indexes)
        if len(chosen) >= target:
            break
    return tuple(sorted(chosen))


def clinic_plans(
    ctx: Context, data: ClinicData, protocols: Mapping[str, ProtocolPlan], last_day: int
) -> tuple[list[PlanInfo], array[int], array[int]]:
    """The clinic's plans (one per series), each visit's plan (index into the list) and how many sessions its
    practitioner had signed before it in the clinic (what ``session_sign`` counts for the co-signature)."""
    visits = data.visits
    count = len(visits)
    formulas = {formula.formula_id: formula for formula in data.formulas}
    reviews: dict[tuple[int, int], tuple[int | None, int, list[str]]] = {}
    for review_id, patient_id, day, signed_at, areas in Review.objects.filter(
        patient__clinic=data.clinic, decision="candidate"
    ).values_list("id", "patient_id", "session_date", "signed_at", "areas"):
        utc = signed_at.astimezone(UTC)
        moment = utc.toordinal() * SECONDS_PER_DAY + utc.hour * 3600 + utc.minute * 60 + utc.second
        reviews[(patient_id, day.toordinal())] = (review_id, moment + data.utc_offset, list(areas))
    plan_of = array("l", [0]) * count
    signed_before = array("l", [0]) * count
    firsts: list[int] = []
    lasts: list[int] = []
    sizes: list[int] = []
    current: dict[int, int] = {}
    signed: dict[int, int] = {}
    patient, series, day_of, practitioner = visits.patient, visits.series, visits.day, visits.practitioner
    for index in range(count):
        who = patient[index]
        if series[index] == 1:
            plan = current[who] = len(firsts)
            firsts.append(index)
            lasts.append(index)
            sizes.append(1)
        else:
            plan = current[who]
            lasts[plan] = index
            sizes[plan] += 1
        plan_of[index] = plan
        by = practitioner[index]
        done = signed.get(by, 0)
        signed_before[index] = done
        if day_of[index] != last_day:
            signed[by] = done + 1
    improved: list[int] = [0] * len(firsts)
    rng = ctx.rng("sessions", "plans", data.number)
    rand = rng.random
    marks: dict[int, int] = {}  # plan → the session number at which improvement is recorded
    for plan, size in enumerate(sizes):
        if size >= 3 and rand() < IMPROVED_SHARE:
            marks[plan] = size // 2 + 1
    for index in range(count):
        plan = plan_of[index]
        if marks.get(plan) == series[index]:
            improved[plan] = day_of[index]
    plan_ids = ctx.next_ids(TreatmentPlan, len(firsts))
    plans: list[PlanInfo] = []
    for plan, (first, last, size) in enumerate(zip(firsts, lasts, sizes, strict=True)):
        formula = formulas[visits.formula[first]]
        protocol = protocol_for(formula.indications, protocols)
        who = patient[first]
        review_id, review_moment, words = reviews.get(
            (who, day_of[first]), (None, day_of[first] * SECONDS_PER_DAY + 8 * 3600, list(formula.areas))
        )
        plans.append(
            PlanInfo(
                plan_id=plan_ids[plan],
                protocol=protocol.code,
                formula_id=formula.formula_id,
                patient=who,
                practitioner=practitioner[first],
                first=first,
                count=size,
                planned=max(visits.planned[first], size),
                stopped=bool(visits.stopped[first]),
                last_moment=day_of[last] * SECONDS_PER_DAY + visits.second[last],
                has_open=day_of[last] == last_day,
                areas=choose_areas(rng, protocol, words, bool(visits.half[first])),
                review_id=review_id,
                review_moment=review_moment,
                improved_day=improved[plan],
            )
        )
    return plans, plan_of, signed_before


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _gate_text(extra: Sequence[Finding] = (), consent: Sequence[Finding] | None = None) -> str:
    """The check-in gate's findings as ``session_check_in`` stores them when no rule has anything to say but
    ``extra``: the consent hook's answer (``consent``: what ``consent_gate`` says of the consent that covers
    the session), the bruising hook's "not checked" row (``rules.hook_findings``: the generated adverse
    events are all resolved before the next session)."""
    hooks = {} if consent is None else {"no-consent": tuple(consent)}
    findings = treatment_rules.sort_findings([*extra, *treatment_rules.hook_findings(hooks)])
    return _json([finding.as_dict() for finding in findings])


def plan_gates(
    clinic: SessionClinic, plan: PlanInfo, days: Sequence[int], validity_months: int, memo: dict[Any, str]
) -> tuple[tuple[int, str], ...]:
    """The gate's stored findings of the plan's sessions (``days``: their clinic-local days, in order), from
    the session number each consent starts covering (``bench.consent.consent_days``, the consents the
    consent family writes): ``consent_gate``'s ``consent-valid`` row, in the staff's language."""
    gates: list[tuple[int, str]] = []
    for signed_on, until, first in consent_days(plan.review_moment, days, validity_months):
        key = (plan.patient if plan.patient in clinic.gate_extra else 0, signed_on, until)
        text = memo.get(key)
        if text is None:
            facts = ConsentFacts(0, date.fromordinal(signed_on), date.fromordinal(until), True, None, "")
            with translation.override(clinic.staff_language):
                answer = consent_rules.gate_findings([facts], on=facts.signed_on, current_fingerprint="")
                text = memo[key] = _gate_text(clinic.gate_extra.get(plan.patient, ()), answer)
        gates.append((first + 1, text))
    return tuple(gates)


def _numbing_allergies(clinic_id: int) -> dict[int, tuple[str, ...]]:
    """Patients with a local-anaesthetic allergy in an intake, and the entries as the gate names them."""
    found: dict[int, tuple[str, ...]] = {}
    groups = ("amide-local-anaesthetics", "ester-local-anaesthetics")
    known: dict[tuple[str, str], bool] = {}  # (entry, group) → it names the group (entries repeat a lot)
    for patient_id, allergies in (
        Intake.objects.filter(patient__clinic_id=clinic_id)
        .exclude(allergies=[])
        .order_by("patient_id", "version")
        .values_list("patient_id", "allergies")
    ):
        matched: list[str] = []
        for group in groups:  # as services._local_anaesthetic_allergy lists them
            for entry in allergies:
                key = (entry, group)
                if key not in known:
                    known[key] = bool(formulary_rules.allergy_matches([entry], group))
                if known[key] and entry not in matched:
                    matched.append(entry)
        if matched and patient_id not in found:
            found[patient_id] = tuple(matched)
    return found


def session_clinic(
    ctx: Context,
    data: ClinicData,
    protocols: Mapping[str, ProtocolPlan],
    pools: Mapping[int, PointPool],
    last_day: int,
) -> SessionClinic:
    clinic = data.clinic
    staff_language = "fr" if data.place.french_share > 0.5 else "en"  # as bench/generate.py's gen_staff
    allergies = _numbing_allergies(clinic.pk)
    with translation.override(staff_language):
        gate_extra = {
            patient: (
                Finding(
                    "numbing-allergy",
                    "info",
                    "R-PRE-NUMB",
                    gettext("Documented allergy (%(allergy)s): no local-anaesthetic numbing cream.")
                    % {"allergy": "; ".join(entries)},
                    treatment_rules.SOURCE_NUMB,
                ),
            )
            for patient, entries in allergies.items()
        }
    aftercare: dict[tuple[str, str], str] = {}
    for code, protocol in protocols.items():
        for language in ("fr", "en"):
            with translation.override(language):
                texts = treatment_rules.aftercare_texts(protocol.aftercare)
            aftercare[(code, language)] = json.dumps([{"code": c, "text": text} for c, text in texts])
    rooms = tuple(
        Room.objects.filter(clinic=clinic, is_active=True).order_by("id").values_list("id", flat=True)
    )
    gun = (
        Device.objects.filter(clinic=clinic, kind=Device.Kind.MULTI_INJECTOR, is_active=True)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    director = data.staff[Role.MEDICAL_DIRECTOR.value][0].pk
    return SessionClinic(
        clinic_id=clinic.pk,
        utc_offset=data.utc_offset,
        as_of=ctx.as_of.toordinal(),
        last_day=last_day,
        cosign_share_percent=clinic.cosign_share_percent,
        cosign_new_practitioner_sessions=clinic.cosign_new_practitioner_sessions,
        director=director,
        desk=tuple(user.pk for user in data.staff.get(Role.FRONT_DESK.value, [])) or (director,),
        rooms=rooms,
        gun=gun,
        protocols=protocols,
        volumes={formula.formula_id: preparation_volumes(formula) for formula in data.formulas},
        pools=pools,
        languages=dict(Patient.objects.filter(clinic=clinic).values_list("id", "preferred_language")),
        numbing_allergy=frozenset(allergies),
        gate_extra=gate_extra,
        staff_language=staff_language,
        aftercare=aftercare,
    )


# --- The rows -----------------------------------------------------------------------------------------------


def preparation_volumes(formula: FormulaPlan) -> tuple[tuple[int, int, int], ...]:
    """(created, µL, µL for a small area) of each version of the formula, as bench/stock.py draws them."""
    return tuple(
        (
            version.created,
            sum(volume for _key, volume in version.draws),
            sum(max(100, volume // 2) for _key, volume in version.draws),
        )
        for version in formula.versions
    )


def preparation_ul(volumes: Sequence[tuple[int, int, int]], moment: int, half: int) -> int:
    """The volume of a visit's preparation (made 10 minutes before the visit's ``moment``) in µL: the
    version current then, as ``FormulaPlan.version_at`` finds it."""
    made = moment - 600
    current = volumes[0]
    for version in volumes:
        if version[0] <= made:
            current = version
    return current[2] if half else current[1]


def _plan_row(rng: random.Random, clinic: SessionClinic, plan: PlanInfo) -> tuple[Any, ...]:
    rand = rng.random
    protocol = clinic.protocols[plan.protocol]
    offset = clinic.utc_offset
    created = plan.review_moment + 300 + int(rand() * 900)  # made at the consultation, after the review
    activated = created + 60 + int(rand() * 240)
    now = clinic.as_of * SECONDS_PER_DAY
    status, reason, ended = "active", "", None
    if not plan.has_open:
        if plan.count >= plan.planned:
            end = plan.last_moment + 7_200 + int(rand() * 15) * SECONDS_PER_DAY
            if end < now:
                status, ended = "completed", end
        elif plan.stopped:
            end = plan.last_moment + (20 + int(rand() * 70)) * SECONDS_PER_DAY
            if end < now:
                status, ended = "stopped", end
                reason = STOP_REASONS[int(rand() * len(STOP_REASONS))]
    language = 1 if clinic.languages.get(plan.patient) == "fr" else 0
    goals_by_language = GOALS.get(plan.protocol)
    goals = ""
    if goals_by_language and rand() < 0.8:
        options = goals_by_language[language]
        goals = options[int(rand() * len(options))]
    return (
        plan.plan_id,
        clinic.clinic_id,
        plan.patient,
        protocol.version_id,
        protocol.indication,
        plan.planned,
        status,
        goals,
        reason,
        plan.review_id,
        day_text(plan.improved_day) if plan.improved_day else None,
        moment_text(created, offset),
        plan.practitioner,
        moment_text(activated, offset),
        plan.practitioner,
        moment_text(ended, offset) if ended is not None else None,
        plan.practitioner if ended is not None else None,
    )


def session_rows(
    stream: str,
    clinic: SessionClinic,
    visits: Visits,
    first_index: int,
    first_session: int,
    plans: Mapping[int, PlanInfo],
    plan_of: array[int],
    signed_before: array[int],
) -> dict[str, list[tuple[Any, ...]]]:
    """The plans starting in one slice of a clinic's visits (``visits``, the clinic's visits from
    ``first_index``), and the sessions, charted areas, session preparations and aftercare of every visit in
    it. Session ids: ``first_session + first_index + i``. A pure function of its arguments."""
    rng = random.Random(stream)  # noqa: S311 (generated data)
    rand = rng.random
    offset = clinic.utc_offset
    out: dict[str, list[tuple[Any, ...]]] = {
        "plan": [],
        "plan_area": [],
        "plan_formula": [],
        "session": [],
        "charted": [],
        "session_preparation": [],
        "aftercare": [],
    }
    sessions, charted, used, aftercare = (
        out["session"],
        out["charted"],
        out["session_preparation"],
        out["aftercare"],
    )
    low_used, high_used = USED_SHARE
    cosign_required, cosign_sample = treatment_rules.cosign_required, treatment_rules.cosign_sample
    now = clinic.as_of * SECONDS_PER_DAY
    for index in range(len(visits)):
        number_in_clinic = first_index + index
        plan = plans[plan_of[index]]
        protocol = clinic.protocols[plan.protocol]
        if plan.first == number_in_clinic:
            out["plan"].append(_plan_row(rng, clinic, plan))
            out["plan_area"].extend((plan.plan_id, protocol.areas[area].area_id) for area in plan.areas)
            out["plan_formula"].append((plan.plan_id, plan.formula_id))
        session_id = first_session + number_in_clinic
        patient = visits.patient[index]
        practitioner = visits.practitioner[index]
        day, second = visits.day[index], visits.second[index]
        moment = day * SECONDS_PER_DAY + second
        is_open = day == clinic.last_day
        checked_in = moment - 660 - int(rand() * 240)
        charted_at = moment + 900 + int(rand() * 1_500)
        signed_at = charted_at + 60 + int(rand() * 300)
        device = (
            clinic.gun if protocol.superficial and clinic.gun is not None and rand() < GUN_SHARE else None
        )
        anaesthetic, minutes = "none", None
        if protocol.numbing and patient not in clinic.numbing_allergy and rand() < NUMBING_SHARE:
            anaesthetic = "lidocaine-prilocaine" if rand() < 0.8 else "lidocaine"
            minutes = 20 + int(rand() * 26)
        # As session_sign decides it (the stable sample is only needed past a practitioner's first sessions).
        required = not is_open and (
            signed_before[index] < clinic.cosign_new_practitioner_sessions
            or cosign_required(
                share_percent=clinic.cosign_share_percent,
                new_practitioner_sessions=clinic.cosign_new_practitioner_sessions,
                signed_before=signed_before[index],
                sample=cosign_sample(clinic.clinic_id, session_id),
            )
        )
        cosigned_at = cosigned_by = None
        cosign_note = ""
        if required and practitioner != clinic.director:
            when = signed_at + (1 + int(rand() * 14)) * SECONDS_PER_DAY + int(rand() * 7_200)
            if when < now:
                cosigned_at = moment_text(when, offset)
                cosigned_by = clinic.director
                cosign_note = COSIGN_NOTES[int(rand() * len(COSIGN_NOTES))]
        signed_text = None if is_open else moment_text(signed_at, offset)
        sessions.append(
            (
                session_id,
                clinic.clinic_id,
                plan.plan_id,
                patient,
                visits.series[index],
                day_text(day),
                practitioner,
                clinic.rooms[visits.room[index]] if 0 <= visits.room[index] < len(clinic.rooms) else None,
                device,
                "open" if is_open else "signed",
                moment_text(checked_in, offset),
                clinic.desk[int(rand() * len(clinic.desk))] if rand() < 0.7 else practitioner,
                plan.gate_for(visits.series[index]),
                "[]",
                anaesthetic,
                minutes,
                SESSION_NOTES[int(rand() * len(SESSION_NOTES))] if rand() < 0.5 else "",
                "[]",
                "[]",
                moment_text(charted_at, offset),
                practitioner,
                signed_text,
                None if is_open else practitioner,
                required,
                cosigned_at,
                cosigned_by,
                cosign_note,
            )
        )
        # The chart: the plan's areas (sometimes one fewer), from the visit's preparation.
        preparation = visits.preparation_ids[index]
        areas = list(plan.areas)
        if len(areas) >= 3 and rand() < 0.15:
            del areas[int(rand() * len(areas))]
        available = preparation_ul(clinic.volumes[visits.formula[index]], moment, visits.half[index])
        budget = int(available * (low_used + (high_used - low_used) * rand()))
        weights = [0.7 + 0.6 * rand() for _ in areas]
        scale = budget / sum(weights)
        for position, (area_index, weight) in enumerate(zip(areas, weights, strict=True)):
            area = protocol.areas[area_index]
            share = max(5, int(scale * weight))
            low, high = area.volume_ul
            per = low + 5 * int(rand() * ((high - low) // 5 + 1))
            if share < per:
                per = max(5, share - share % 5)
            injections = max(1, share // per)
            if area.many_punctures:
                marked = min(injections, 4 + int(rand() * 12))
            else:
                marked = min(injections, 8 + int(rand() * 25))
            pool = clinic.pools[area.area_id]
            start = int(rand() * (len(pool) - marked + 1))
            charted.append(
                (
                    session_id,
                    position,
                    area.area_id,
                    area.technique_id,
                    area.depths[int(rand() * len(area.depths))],
                    area.needles[int(rand() * len(area.needles))],
                    pool.points(start, marked),
                    injections,
                    ml_text(per),
                    ml_text(injections * per),
                    preparation,
                    AREA_NOTES[int(rand() * len(AREA_NOTES))] if rand() < 0.05 else "",
                )
            )
        used.append((session_id, preparation))
        if not is_open:
            language = clinic.languages.get(patient, "fr")
            aftercare.append(
                (
                    session_id,
                    patient,
                    signed_text,
                    language,
                    clinic.aftercare[(plan.protocol, language if language in ("fr", "en") else "en")],
                    protocol.aftercare_note,
                )
            )
    return out


def session_jobs(ctx: Context) -> list[RowJob]:
    """:func:`session_rows` jobs, a slice of :data:`SESSIONS_PER_JOB` visits of one clinic each. Takes the
    plan and session ids: call it once."""
    protocols = load_protocols()
    pools = {
        area.pk: point_pool(ctx.stream("sessions", "points", area.code), area.outline)
        for area in BodyArea.objects.order_by("id")
    }
    jobs: list[RowJob] = []
    for data in ctx.clinics:
        visits = data.visits
        count = len(visits)
        if not count:
            continue
        if len(visits.preparation_ids) != count:
            raise RuntimeError("the sessions family runs after the stock family (one preparation per visit)")
        last_day = max(visits.day)
        plans, plan_of, signed_before = clinic_plans(ctx, data, protocols, last_day)
        clinic = session_clinic(ctx, data, protocols, pools, last_day)
        days: list[list[int]] = [[] for _plan in plans]
        for index in range(count):
            days[plan_of[index]].append(visits.day[index])
        months, memo = validity_months(ctx, data), dict[Any, str]()
        plans = [
            replace(plan, gates=plan_gates(clinic, plan, days[number], months, memo))
            for number, plan in enumerate(plans)
        ]
        first_session = ctx.next_ids(TreatmentSession, count).start
        slices = max(1, -(-count // SESSIONS_PER_JOB))
        for part in range(slices):
            low, high = count * part // slices, count * (part + 1) // slices
            needed = {plan_of[index] for index in range(low, high)}
            jobs.append(
                RowJob(
                    session_rows,
                    (
                        ctx.stream("sessions", data.number, part),
                        clinic,
                        visits.sliced(low, high),
                        low,
                        first_session,
                        {plan: plans[plan] for plan in needed},
                        plan_of[low:high],
                        signed_before[low:high],
                    ),
                )
            )
    return jobs


def gen_sessions(ctx: Context) -> Counts:
    """Treatment plans, sessions, charted areas, session preparations and aftercare of every visit."""
    counts = ctx.write_table_jobs(
        {
            "plan": (TreatmentPlan, FIELDS_PLAN),
            "plan_area": (PlanArea, FIELDS_PLAN_AREA),
            "plan_formula": (PlanFormula, FIELDS_PLAN_FORMULA),
            "session": (TreatmentSession, FIELDS_SESSION),
            "charted": (ChartedArea, FIELDS_CHARTED),
            "session_preparation": (SessionPreparation, FIELDS_SESSION_PREPARATION),
            "aftercare": (Aftercare, FIELDS_AFTERCARE),
        },
        session_jobs(ctx),
        plain=True,
    )
    return {
        "plan": counts["plan"],
        "plan area": counts["plan_area"],
        "plan formula": counts["plan_formula"],
        "session": counts["session"],
        "charted area": counts["charted"],
        "session preparation": counts["session_preparation"],
        "aftercare": counts["aftercare"],
    }

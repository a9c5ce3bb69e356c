"""The generator's intake and screening family (mesoclinic.screening): questionnaires, the medicines patients
list, signed screening reviews, and the plan of treatment visits that follows a review.

Each patient of a clinic slice gets 0–3 intake versions (4 % none yet, 66 % one, 22 % two, 8 % three),
answered at the desk: conditions from the seeded catalogue (most have none), medicines written as patients
write them (brand names with doses, generic names, a few the catalogue does not know; ~9 % an NSAID, often
taken in the days before, ~3 % a blood thinner, rarely isotretinoin or an immunosuppressant), allergies
(penicillin, pollen, nickel; soy, lidocaine, bee stings for a few %), pregnancy and breastfeeding rarely,
goals in the patient's language (a few expecting too much). About 90 % come for treatment: 1–3 series of
3–15 sessions 7–30 days apart, each after a practitioner's signed review of the screening that
``mesoclinic.screening.rules.screen`` gives for the intake, the planned formula (one of the clinic's, chosen
for the patient's concern and avoiding their allergies) and the first session's date. A review that is not
"candidate" (a blocking finding, or a blood thinner the practitioner will not accept) means no series.

The visits go to ``ctx.clinics[i].visits`` (bench/rows.py ``Visits``), in time order: bench/stock.py gives
each one its preparation, a sessions family will chart them. Ids of intakes are decided here (the number of
versions per patient is drawn in the main process); medicines and reviews take their ids from the database
(nothing refers to them), in write order, so they are deterministic too."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from typing import TYPE_CHECKING, Any

from bench.rows import (
    SECONDS_PER_DAY,
    RowJob,
    Visits,
    day_text,
    local_stamp_text,
    next_open_day,
    spread_visits,
    weighted,
)
from bench.treatments import series_ranges
from mesoclinic.accounts.models import Role
from mesoclinic.clinics.models import Room
from mesoclinic.lib.findings import SEVERITY_ORDER, Finding
from mesoclinic.patients.models import Patient
from mesoclinic.screening import rules as screening_rules
from mesoclinic.screening.models import Intake, IntakeMedication, MedicineName, Review
from mesoclinic.screening.rules import (
    RULES_VERSION,
    CatalogueMedicine,
    ConditionRule,
    IntakeFacts,
    MedicationFacts,
    PatientFacts,
    Screening,
    ScreeningFacts,
    medicine_name_keys,
    resolve_medicine,
)
from mesoclinic.screening.services import condition_catalogue, finding_dict

if TYPE_CHECKING:
    from bench.generate import Context, Counts
    from bench.stock import FormulaPlan

PATIENTS_PER_JOB = 1_000  # small enough that one clinic still keeps every core busy
# Versions of the questionnaire per patient: (count, weight).
VERSIONS = ((0, 0.04), (1, 0.66), (2, 0.22), (3, 0.08))
TREATED_SHARE = 0.90
# Series per treated patient, (count, weight), by the length of the clinic's history in years: a shorter
# history cuts more series short at "today", so its patients come back sooner and more often, to keep about
# targets.md's 10 sessions per patient at every scale (a series plans its protocol's 4–12 sessions, 7–8 on
# average).
SERIES_BY_HISTORY: dict[int, tuple[tuple[int, float], ...]] = {
    2: ((1, 0.30), (2, 0.35), (3, 0.20), (4, 0.15)),
    3: ((1, 0.10), (2, 0.25), (3, 0.30), (4, 0.20), (5, 0.15)),
    5: ((1, 0.22), (2, 0.35), (3, 0.26), (4, 0.17)),
    10: ((1, 0.33), (2, 0.33), (3, 0.20), (4, 0.14)),
}
SERIES_SESSIONS = (3, 15)  # a series' planned sessions when its formula has no protocol (domain: 3–15)
STOPPED_SHARE = 0.05  # series the patient leaves before the planned number (the plan is then stopped)
SERIES_GAP_DAYS = (30, 180)  # between two series: around the protocols' maintenance intervals (60–90 d)
INTERVALS = (7, 7, 10, 14, 14, 14, 21, 21, 28, 30)  # days between the sessions of a series
SLOTS = tuple(9 * 3600 + quarter * 900 for quarter in range(39))  # 09:00–18:30 local, every 15 minutes

INTAKE_FIELDS = (
    "id",
    "patient",
    "version",
    "pregnancy",
    "conditions",
    "allergies",
    "weight_stable",
    "goals",
    "previous_treatments",
    "submitted_by",
    "submitted_as",
    "submitted_at",
)
MEDICATION_FIELDS = ("intake", "position", "name", "last_taken")
REVIEW_FIELDS = (
    "patient",
    "intake",
    "rules_version",
    "session_date",
    "formula_id",
    "areas",
    "verdict",
    "findings",
    "acknowledgements",
    "decision",
    "note",
    "signed_by",
    "signed_at",
)

# --- What patients write ----------------------------------------------------------------------------------

# (kind, share of patients, names as written). Kinds decide when the last dose was.
MEDICINES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    (
        "daily",
        0.30,
        (
            "Levothyrox 75 µg",
            "levothyroxine",
            "Doliprane 1000",
            "paracetamol",
            "Tylenol",
            "Metformin 850 mg",
            "Glucophage",
            "atorvastatin 20mg",
            "Tahor",
            "amlodipine",
            "Omeprazole 20 mg",
            "Mopral",
            "sertraline 50 mg",
            "Zoloft",
            "cetirizine",
            "Zyrtec",
            "Claritin",
            "Vitamin D",
            "cholecalciferol",
            "lisinopril",
        ),
    ),
    (
        "nsaid",
        0.09,
        ("Advil", "ibuprofen 400 mg", "Nurofen", "Aleve", "naproxen", "Voltaren", "aspirin", "Kardegic 75"),
    ),
    ("thinner", 0.02, ("Eliquis 5 mg", "apixaban", "Xarelto 20 mg", "rivaroxaban", "warfarin", "Previscan")),
    ("thinner", 0.01, ("Plavix 75 mg", "clopidogrel", "Lovenox")),
    ("daily", 0.005, ("Roaccutane 20 mg", "isotretinoin")),
    ("daily", 0.01, ("methotrexate", "Humira", "prednisone 5 mg", "Cortancyl")),
    # Not in the catalogue (the screening asks the practitioner to check them).
    ("daily", 0.08, ("pilule contraceptive", "Spasfon", "magnésium", "oméga 3", "Ventolin", "homéopathie")),
)
FINASTERIDE = ("Propecia", "finasteride 1 mg")  # some men with hair loss

# (entry as written in English, in French, share of patients)
ALLERGIES: tuple[tuple[str, str, float], ...] = (
    ("penicillin", "pénicilline", 0.05),
    ("pollen", "pollen", 0.03),
    ("nickel", "nickel", 0.015),
    ("soy", "soja", 0.015),
    ("lidocaine", "Xylocaïne", 0.015),
    ("latex", "latex", 0.01),
    ("amoxicillin", "amoxicilline", 0.01),
    ("bee stings", "piqûres d'abeille", 0.007),
    ("iodine", "iode", 0.005),
    ("procaine", "procaïne", 0.003),
    ("fish", "poisson", 0.003),
)

# Condition codes of the seeded catalogue and the share of patients who tick them.
CONDITIONS: tuple[tuple[str, float], ...] = (
    ("autoimmune", 0.03),
    ("severe-cardiovascular", 0.01),
    ("diabetes-uncontrolled", 0.01),
    ("psychiatric-unstable", 0.01),
    ("liver-disease", 0.005),
    ("kidney-disease", 0.005),
    ("skin-disease-at-site", 0.005),
    ("bleeding-disorder", 0.003),
    ("active-cancer", 0.003),
    ("site-infection", 0.003),
    ("dysphagia", 0.001),
)

# What brings patients in (an indication code of the formulary), by sex.
CONCERNS_FEMALE = weighted(
    [
        ("cellulite", 0.30),
        ("rejuvenation", 0.25),
        ("localized-fat", 0.15),
        ("pigmentation", 0.10),
        ("hair-loss", 0.10),
        ("stretch-marks", 0.10),
    ]
)
CONCERNS_MALE = weighted(
    [("hair-loss", 0.45), ("localized-fat", 0.25), ("rejuvenation", 0.20), ("pigmentation", 0.10)]
)

GOALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # concern → (English, French)
    "cellulite": (
        ("Smoother skin on my thighs", "Reduce cellulite before summer", "Less orange-peel skin on the hips"),
        ("Réduire la cellulite des cuisses", "Une peau plus lisse sur les hanches", "Moins de capitons"),
    ),
    "rejuvenation": (
        ("Brighter, more hydrated skin", "Fewer fine lines around the eyes", "Tired-looking skin"),
        ("Un teint plus éclatant", "Atténuer les ridules", "Peau terne et fatiguée"),
    ),
    "localized-fat": (
        ("Lose the stubborn fat on my belly", "Slimmer flanks", "Less fat under the chin"),
        ("Affiner la taille", "Réduire le double menton", "Déloger les bourrelets du ventre"),
    ),
    "pigmentation": (
        ("Even out dark spots", "Melasma on the cheeks"),
        ("Atténuer les taches brunes", "Mélasma sur les pommettes"),
    ),
    "hair-loss": (
        ("Thicker hair", "Stop my hair thinning at the crown"),
        ("Des cheveux plus denses", "Freiner la chute de cheveux"),
    ),
    "stretch-marks": (
        ("Fade stretch marks after pregnancy", "Less visible stretch marks on the hips"),
        ("Atténuer les vergetures", "Vergetures après la grossesse"),
    ),
}
# Goals that expect more than mesotherapy gives (R-CAND-EXPECT finds them).
OVER_EXPECTING = (
    ("Lose 15 kg without diet", "Get rid of cellulite permanently", "Results in one session"),
    ("Perdre 12 kilos sans régime", "Un résultat définitif", "Résultat du jour au lendemain"),
)
PREVIOUS = (
    ("Botox in 2023", "Mesotherapy a few years ago", "Hyaluronic acid fillers", "Chemical peel"),
    ("Botox en 2023", "Mésothérapie il y a quelques années", "Injections d'acide hyaluronique", "Peeling"),
)
# What the practitioner writes when accepting a warning (code → reason).
REASONS = {
    "anticoagulant": "Discussed with the prescriber; bruising risk explained and accepted.",
    "nsaid-washout": "The patient stops the NSAID 7 days before each session.",
    "unknown-medicine": "Checked: not a blood thinner or an NSAID.",
    "unstable-weight": "Weight discussed; treatment targets stubborn areas only.",
    "unrealistic-expectations": "Expected results discussed; the patient understands.",
    "health-concern": "Condition stable and followed by the GP.",
    "significant-condition": "Condition controlled; the patient's physician agrees.",
    "pregnant": "Pregnancy test negative; to confirm before each session.",
    "allergy-caution": "Skin test negative.",
    "teratogen": "The patient cannot become pregnant.",
}
NOT_CANDIDATE_NOTES = (
    "Not a candidate for now; see again at the next intake.",
    "Blood thinner: not treated, to discuss with the prescriber.",
    "Referred to the GP first.",
)


@dataclass(frozen=True)
class Catalogue:
    """What the screening rules need from the database, read once: the condition catalogue and the global
    medicine names (folded name → the medicine as the rules see it)."""

    conditions: Mapping[str, ConditionRule]
    medicines: Mapping[str, CatalogueMedicine]

    @classmethod
    def load(cls) -> Catalogue:
        medicines: dict[str, CatalogueMedicine] = {}
        rows = MedicineName.objects.filter(clinic__isnull=True, medicine__clinic__isnull=True).values_list(
            "name_folded", "medicine__generic_name", "medicine__classes"
        )
        for folded_name, generic, classes in rows:
            medicines[folded_name] = CatalogueMedicine(
                generic_name=generic, classes=frozenset(str(value) for value in classes)
            )
        return cls(conditions=condition_catalogue(), medicines=medicines)

    def medication(self, name: str, last_taken: date | None) -> MedicationFacts:
        """What ``screening.services.medicine_matches`` finds in a line, with the global catalogue."""
        known = {key: self.medicines[key] for key in medicine_name_keys(name) if key in self.medicines}
        resolution = resolve_medicine(name, known)
        return MedicationFacts(
            name=name,
            last_taken=last_taken,
            medicines=resolution.medicines,
            unrecognised=resolution.unrecognised,
        )


@dataclass(frozen=True)
class ClinicPlan:
    """What a worker needs about one clinic to plan its patients' screening and treatment."""

    clinic_id: int
    jurisdiction: str
    as_of: int  # ordinal
    utc_offset: int
    series: tuple[list[int], list[float]]  # series per treated patient: counts and cumulative weights
    practitioners: tuple[int, ...]  # practitioners, then the medical director
    desk: tuple[int, ...]
    formulas: tuple[FormulaPlan, ...]
    catalogue: Catalogue
    # Formula id → the (fewest, most) sessions of the protocol its series follow (bench/treatments.py).
    series_rules: Mapping[int, tuple[int, int]]


@dataclass(frozen=True)
class PatientIn:
    id: int
    registered_day: int  # ordinal (UTC date of created_at)
    registered_second: int
    sex: str
    born: date
    language: str


@dataclass
class Answers:
    pregnancy: str
    conditions: list[str]
    medications: list[tuple[str, int | None]]  # (name as written, last dose as a day ordinal)
    allergies: list[str]
    weight_stable: bool | None
    goals: str
    previous: str
    concern: str


def _draw_medications(rng: random.Random, patient: PatientIn, day: int) -> list[tuple[str, int | None]]:
    rand = rng.random
    age = (date.fromordinal(day) - patient.born).days // 365
    chosen: list[tuple[str, int | None]] = []
    for kind, share, names in MEDICINES:
        if kind == "thinner" and age >= 55:
            share *= 2.5
        if rand() >= share:
            continue
        name = names[int(rand() * len(names))]
        if kind == "nsaid":
            draw = rand()
            last = (
                day - int(rand() * 20)
                if draw < 0.7
                else None
                if draw < 0.85
                else day - 30 - int(rand() * 200)
            )
        elif kind == "thinner":
            last = day
        else:
            last = None if rand() < 0.6 else day - int(rand() * 3)
        chosen.append((name, last))
    if patient.sex == "male" and rand() < 0.05:
        chosen.append((FINASTERIDE[int(rand() * 2)], day))
    return chosen[:4]


def _draw_answers(
    rng: random.Random, patient: PatientIn, day: int, french: bool, before: Answers | None
) -> Answers:
    """One version of the questionnaire, filled on ``day``; later versions mostly repeat the one before."""
    rand = rng.random
    age = (date.fromordinal(day) - patient.born).days // 365
    pregnancy = "none"
    if patient.sex == "female" and age <= 45:
        draw = rand()
        pregnancy = (
            "pregnant"
            if draw < 0.01
            else "breastfeeding"
            if draw < 0.025
            else "planning"
            if draw < 0.05
            else "none"
        )
    if before is not None and rand() < 0.7:
        medications = _refresh_doses(rng, before.medications, day)
    else:
        medications = _draw_medications(rng, patient, day)
    if before is not None:
        conditions = list(before.conditions)
        allergies = list(before.allergies)
        concern = before.concern if rand() < 0.7 else _concern(rng, patient)
    else:
        conditions = [code for code, share in CONDITIONS if rand() < share][:2]
        allergies = [
            (french_word if french else word) for word, french_word, share in ALLERGIES if rand() < share
        ]
        concern = _concern(rng, patient)
    draw = rand()
    weight_stable = True if draw < 0.78 else False if draw < 0.9 else None
    language = 1 if french else 0
    options = OVER_EXPECTING[language] if rand() < 0.04 else GOALS[concern][language]
    goals = options[int(rand() * len(options))]
    previous = PREVIOUS[language][int(rand() * 4)] if rand() < 0.45 else ""
    return Answers(pregnancy, conditions, medications, allergies, weight_stable, goals, previous, concern)


def _refresh_doses(
    rng: random.Random, medications: Sequence[tuple[str, int | None]], day: int
) -> list[tuple[str, int | None]]:
    """The same medicines, written again: daily ones taken on the day, NSAIDs sometimes recently."""
    out: list[tuple[str, int | None]] = []
    for name, last in medications:
        if last is None:
            out.append((name, None))
        elif rng.random() < 0.5:
            out.append((name, day - int(rng.random() * 10)))
        else:
            out.append((name, max(last, day - 400)))
    return out


def _concern(rng: random.Random, patient: PatientIn) -> str:
    concerns, cumulative = CONCERNS_MALE if patient.sex == "male" else CONCERNS_FEMALE
    return str(rng.choices(concerns, cum_weights=cumulative)[0])


def _formula_order(rng: random.Random, plan: ClinicPlan, concern: str, sex: str) -> list[FormulaPlan]:
    """The clinic's formulas in the order a practitioner would consider them for this concern."""
    matching = [formula for formula in plan.formulas if concern in formula.indications]
    others = [formula for formula in plan.formulas if concern not in formula.indications]
    pool = matching or others
    weights = [formula.weight_male if sex == "male" else formula.weight_female for formula in pool]
    order: list[FormulaPlan] = []
    candidates, candidate_weights = list(pool), [max(weight, 0.01) for weight in weights]
    while candidates and len(order) < 3:
        index = rng.choices(range(len(candidates)), weights=candidate_weights)[0]
        order.append(candidates.pop(index))
        candidate_weights.pop(index)
    return order


def _facts(
    patient: PatientIn, version: int, answers: Answers, catalogue: Catalogue
) -> tuple[PatientFacts, IntakeFacts]:
    medications = tuple(
        catalogue.medication(name, date.fromordinal(last) if last is not None else None)
        for name, last in answers.medications
    )
    return (
        PatientFacts(date_of_birth=patient.born, sex=patient.sex),
        IntakeFacts(
            version=version,
            pregnancy=answers.pregnancy,
            conditions=tuple(answers.conditions),
            medications=medications,
            allergies=tuple(answers.allergies),
            weight_stable=answers.weight_stable,
            goals=answers.goals,
            previous_treatments=answers.previous,
        ),
    )


FormulaMemo = dict[tuple[Any, ...], list[Finding]]


def screened(facts: ScreeningFacts, version_id: int, memo: FormulaMemo) -> Screening:
    """``screening.rules.screen(facts)``, rule by rule, with the planned formula's findings (the formulary's
    allergy, teratogen and regulatory checks: most of the cost, and the same for every patient with the same
    allergies, pregnancy status and sex) kept in ``memo`` per formula version and jurisdiction (one memo per
    job: version ids mean one thing per data set). tests/test_bench.py checks that it finds exactly what
    ``screen`` finds."""
    screening_rules.check_inputs(facts)
    findings: list[Finding] = []
    for rule in screening_rules.RULES:
        if rule is screening_rules.check_formula and facts.formula is not None:
            key = (version_id, facts.jurisdiction, screening_rules.formula_patient(facts))
            found = memo.get(key)
            if found is None:
                found = memo[key] = rule(facts)
            findings.extend(found)
        else:
            findings.extend(rule(facts))
    findings.sort(key=lambda finding: SEVERITY_ORDER[finding.severity])
    return Screening(
        verdict=screening_rules.verdict_of(findings),
        findings=tuple(findings),
        intake_version=facts.intake.version,
        rules_version=RULES_VERSION,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class _History:
    """Builds one slice's rows, patient by patient (see :func:`clinical_rows`)."""

    def __init__(self, rng: random.Random, plan: ClinicPlan, intake_ids: range) -> None:
        self.rng = rng
        self.plan = plan
        self.next_id = iter(intake_ids)
        self.intakes: list[tuple[Any, ...]] = []
        self.medications: list[tuple[Any, ...]] = []
        self.reviews: list[tuple[Any, ...]] = []
        self.visits = Visits()
        self.formula_findings: FormulaMemo = {}

    def add_version(
        self, patient: PatientIn, answers: list[Answers], ids: list[int], day: int, second: int, by: int
    ) -> None:
        """The next version of the patient's questionnaire, filled on ``day`` at the desk."""
        filled = _draw_answers(
            self.rng, patient, day, patient.language == "fr", answers[-1] if answers else None
        )
        answers.append(filled)
        intake_id = next(self.next_id)
        ids.append(intake_id)
        self.intakes.append(
            (
                intake_id,
                patient.id,
                len(answers),
                filled.pregnancy,
                _dumps(filled.conditions),
                _dumps(filled.allergies),
                filled.weight_stable,
                filled.goals,
                filled.previous,
                by,
                "staff",
                local_stamp_text(day, second, self.plan.utc_offset),
            )
        )
        for position, (name, last) in enumerate(filled.medications):
            self.medications.append((intake_id, position, name, day_text(last) if last is not None else None))

    def patient(self, patient: PatientIn, count: int) -> None:
        rng, plan = self.rng, self.plan
        rand = rng.random
        as_of = plan.as_of
        practitioner = plan.practitioners[int(rand() * len(plan.practitioners))]
        if rand() < 0.15:
            practitioner = plan.practitioners[-1]  # the medical director treats too
        treated = rand() < TREATED_SHARE
        counts, cumulative = plan.series
        series_count = rng.choices(counts, cum_weights=cumulative)[0] if treated else 0
        answers: list[Answers] = []
        ids: list[int] = []

        def desk_or_practitioner() -> int:
            return plan.desk[int(rand() * len(plan.desk))] if rand() < 0.7 else practitioner

        # The first version at registration, then one before a new series, the rest at some later visit.
        version_days = [
            (patient.registered_day, min(patient.registered_second + 300 + int(rand() * 1500), 86_000))
        ]
        self.add_version(patient, answers, ids, *version_days[0], desk_or_practitioner())
        start = next_open_day(patient.registered_day + 1 + int(rand() * 45))  # after the consultation
        for series_index in range(series_count):
            if start >= as_of:
                break
            if series_index > 0 and len(answers) < count:
                day = max(version_days[-1][0], start - 1 - int(rand() * 14))
                version_days.append((day, SLOTS[int(rand() * len(SLOTS))]))
                self.add_version(patient, answers, ids, *version_days[-1], desk_or_practitioner())
            end = self.series(
                patient, answers[-1], len(answers), ids[-1], version_days[-1], start, practitioner
            )
            if end is None:
                break
            low, high = SERIES_GAP_DAYS
            start = next_open_day(end + low + int(rand() * (high - low)))
        while len(answers) < count:  # versions after the last series: before "today", after the last one
            last_day, last_second = version_days[-1]
            day = min(last_day + 1 + int(rand() * max(as_of - last_day - 1, 1)), as_of - 1)
            second = SLOTS[int(rand() * len(SLOTS))]
            if day <= last_day:
                day, second = last_day, min(last_second + 600, 86_399)
            version_days.append((day, second))
            self.add_version(patient, answers, ids, day, second, desk_or_practitioner())

    def series(
        self,
        patient: PatientIn,
        current: Answers,
        version: int,
        intake_id: int,
        submitted: tuple[int, int],
        start: int,
        practitioner: int,
    ) -> int | None:
        """The review before a series starting on ``start`` and, if the patient is a candidate, its visits.
        Returns the day after the last visit, or None when the patient is not treated."""
        rng, plan = self.rng, self.plan
        rand = rng.random
        intake_day, intake_second = submitted
        review_day = max(intake_day, start - 1 - int(rand() * 10))  # before the first session's day
        review_second = SLOTS[int(rand() * len(SLOTS))]
        if review_day == intake_day and review_second <= intake_second:
            review_second = min(intake_second + 1200 + int(rand() * 2400), 86_399)
        patient_facts, intake_facts = _facts(patient, version, current, plan.catalogue)
        chosen: FormulaPlan | None = None
        result = None
        areas: tuple[str, ...] = ()
        for formula in _formula_order(rng, plan, current.concern, patient.sex):
            areas = tuple(sorted(rng.sample(formula.areas, min(len(formula.areas), 1 + int(rand() * 3)))))
            version_plan = formula.version_on(start)
            result = screened(
                ScreeningFacts(
                    patient=patient_facts,
                    intake=intake_facts,
                    session_date=date.fromordinal(start),
                    conditions=plan.catalogue.conditions,
                    formula=version_plan.facts,
                    areas=areas,
                    jurisdiction=plan.jurisdiction,
                ),
                version_plan.version_id,
                self.formula_findings,
            )
            chosen = formula
            if not any(f.code in ("allergy", "teratogen") and f.severity == "block" for f in result.findings):
                break  # else another formula, without what the patient is allergic to
        if chosen is None or result is None:
            return None
        warnings = list(dict.fromkeys(f.code for f in result.findings if f.severity == "warn"))
        if result.verdict == "ineligible":
            candidate = False
        elif "anticoagulant" in warnings:
            candidate = rand() < 0.25  # "generally not candidates": the practitioner decides
        else:
            candidate = rand() < (0.9 if result.verdict == "review" else 0.98)
        # As review_sign stores them: one per warning key (a code, or code:subject), with its reason.
        first_of_key: dict[str, Finding] = {}
        for finding in result.findings:
            if finding.severity == "warn":
                first_of_key.setdefault(finding.key, finding)
        acknowledgements = [
            {
                "key": key,
                "code": finding.code,
                "subject": finding.subject,
                "reason": REASONS.get(finding.code, "Discussed with the patient."),
            }
            for key, finding in first_of_key.items()
            if candidate
        ]
        note = "" if candidate else NOT_CANDIDATE_NOTES[1 if "anticoagulant" in warnings else int(rand() * 3)]
        self.reviews.append(
            (
                patient.id,
                intake_id,
                RULES_VERSION,
                day_text(start),
                chosen.formula_id,
                _dumps(list(areas)),
                result.verdict,
                _dumps([finding_dict(finding) for finding in result.findings]),
                _dumps(acknowledgements),
                "candidate" if candidate else "not_candidate",
                note,
                practitioner,
                local_stamp_text(review_day, review_second, plan.utc_offset),
            )
        )
        if not candidate:
            return None
        # The plan's sessions, within its protocol's range; a few patients stop before the end.
        fewest, most = plan.series_rules.get(chosen.formula_id, SERIES_SESSIONS)
        planned = fewest + int(rand() * (most - fewest + 1))
        length, stopped = planned, 0
        if planned > 1 and rand() < STOPPED_SHARE:
            length, stopped = 1 + int(rand() * (planned - 1)), 1
        interval = INTERVALS[int(rand() * len(INTERVALS))]
        half = 1 if rand() < 0.2 else 0  # a small area: half the formula's volume
        day = start
        for number in range(1, length + 1):
            if day >= plan.as_of:
                break
            slot = SLOTS[int(rand() * len(SLOTS))]
            self.visits.append(
                patient.id, practitioner, day, slot, chosen.formula_id, number, half, planned, stopped
            )
            day = next_open_day(day + max(7, min(30, interval + int(rand() * 5) - 2)))
        return day


def clinical_rows(
    stream: str, plan: ClinicPlan, patients: Sequence[PatientIn], versions: Sequence[int], intake_ids: range
) -> dict[str, Any]:
    """Intakes, their medicines and the signed reviews of one slice of a clinic's patients, and the treatment
    visits that follow (``"visits"``, a :class:`Visits`). ``versions``: how many intake versions each patient
    has (``intake_ids`` holds exactly that many ids). A pure function of its arguments."""
    history = _History(random.Random(stream), plan, intake_ids)  # noqa: S311 (generated data)
    for patient, count in zip(patients, versions, strict=True):
        if count:
            history.patient(patient, count)
    return {
        "intake": history.intakes,
        "medication": history.medications,
        "review": history.reviews,
        "visits": history.visits,
    }


def _patients_of(clinic_id: int, utc_offset: int) -> list[PatientIn]:
    """The clinic's patients, registration as a clinic-local day and second (what the plan works in)."""
    rows = Patient.objects.filter(clinic_id=clinic_id).order_by("id")
    patients: list[PatientIn] = []
    for patient_id, created, sex, born, language in rows.values_list(
        "id", "created_at", "sex", "date_of_birth", "preferred_language"
    ):
        utc = created.astimezone(UTC)
        moment = (
            utc.toordinal() * SECONDS_PER_DAY + utc.hour * 3600 + utc.minute * 60 + utc.second + utc_offset
        )
        day, second = divmod(moment, SECONDS_PER_DAY)
        patients.append(PatientIn(patient_id, day, second, sex, born, language))
    return patients


def intake_jobs(ctx: Context) -> tuple[list[RowJob], list[int]]:
    """One :func:`clinical_rows` job per slice of each clinic's patients, and the clinic (index into
    ``ctx.clinics``) of each. Takes the intake ids: call it once."""
    catalogue = Catalogue.load()
    years = min(SERIES_BY_HISTORY, key=lambda known: abs(known - ctx.scale.history_years))
    series = weighted(SERIES_BY_HISTORY[years])
    jobs: list[RowJob] = []
    owners: list[int] = []  # the clinic (index into ctx.clinics) of each job
    for index, data in enumerate(ctx.clinics):
        if not data.formulas:
            continue
        practitioners = tuple(user.pk for user in data.staff.get(Role.PRACTITIONER.value, [])) + tuple(
            user.pk for user in data.staff.get(Role.MEDICAL_DIRECTOR.value, [])
        )
        desk = tuple(user.pk for user in data.staff.get(Role.FRONT_DESK.value, [])) or practitioners
        plan = ClinicPlan(
            clinic_id=data.clinic.pk,
            jurisdiction=data.clinic.jurisdiction,
            as_of=ctx.as_of.toordinal(),
            utc_offset=data.utc_offset,
            series=series,
            practitioners=practitioners,
            desk=desk,
            formulas=tuple(data.formulas),
            catalogue=catalogue,
            series_rules=series_ranges(data.formulas),
        )
        patients = _patients_of(data.clinic.pk, data.utc_offset)
        slices = max(1, -(-len(patients) // PATIENTS_PER_JOB))
        for part in range(slices):
            chunk = patients[len(patients) * part // slices : len(patients) * (part + 1) // slices]
            rng = ctx.rng("intakes", data.number, part)
            version_counts, cumulative = weighted(VERSIONS)
            versions = rng.choices(version_counts, cum_weights=cumulative, k=len(chunk))
            ids = ctx.next_ids(Intake, sum(versions))
            jobs.append(
                RowJob(clinical_rows, (ctx.stream("intakes", data.number, part), plan, chunk, versions, ids))
            )
            owners.append(index)
    return jobs, owners


def gen_intakes(ctx: Context) -> Counts:
    """Intakes, medicines and reviews per slice of each clinic's patients (worker processes), and each
    clinic's treatment visits (``ctx.clinics[i].visits``)."""
    jobs, owners = intake_jobs(ctx)
    collected: list[Visits] = [Visits() for _ in ctx.clinics]

    def keep(job_index: int, result: dict[str, Any]) -> None:
        collected[owners[job_index]].extend(result["visits"])

    counts = ctx.write_table_jobs(
        {
            "intake": (Intake, INTAKE_FIELDS),
            "medication": (IntakeMedication, MEDICATION_FIELDS),
            "review": (Review, REVIEW_FIELDS),
        },
        jobs,
        keep,
    )
    for data, visits in zip(ctx.clinics, collected, strict=True):
        # Nobody in two places at once (the calendar's guard, bench/scheduling.py), rooms given.
        rooms = Room.objects.filter(clinic=data.clinic, is_active=True).count()
        data.visits = spread_visits(visits.in_time_order(), rooms)
    return {"intake": counts["intake"], "intake medicine": counts["medication"], "review": counts["review"]}

"""Candidacy screening (domain.md R-CAND-*, R-PRE-NSAID): pure rules over plain facts.

No ORM, no request, no clock: the planned session date comes in with the facts, the catalogue entries the
rules need (conditions, the classes of each medicine) are plain values, and the answer is a verdict with
findings.
Every finding code this module can produce is listed in ``FINDING_CODES`` (tests assert each is reachable).

Decisions written down here (see also docs/adr/0007-candidacy-screening.md):

- Age (R-CAND-AGE): 18 on the planned session date. The 18th birthday itself is eligible. Someone born on
  29 February turns a year older on 1 March in common years.
- NSAID washout (R-PRE-NSAID): a dose of an NSAID (aspirin included) taken fewer than 7 days before the
  session (``(session - last dose).days < 7``) warns; a dose exactly 7 days before passes. A last dose after
  the session date is invalid input. An NSAID whose last dose is not known warns too (the washout cannot
  be confirmed).
- Weight (R-CAND-WEIGHT applies to fat indications): with a planned fat formula, an unstable *or unknown*
  weight warns; with a planned formula for another indication it says nothing; with no formula planned yet an
  unstable weight warns and an unknown weight is shown as ``info``.
- Pregnancy planned: ``pregnant`` as a warning (confirm at each session); a teratogen is then blocked.
- Teratogens (R-CAND-ANDRO): a finasteride/dutasteride formula (or a 5-alpha-reductase inhibitor taken) blocks
  for a patient who is pregnant or planning a pregnancy; a formula with a teratogen for any other patient
  who is not male warns, so that the clinician confirms she cannot become pregnant.
- Dysphagia is a significant condition (warn); with a planned submental/neck area it blocks (Kybella label).
- Several warnings of one code are acknowledged together: a review's acknowledgement is per finding code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Literal, Protocol

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mesoclinic.lib.findings import SEVERITY_ORDER, Finding, Severity, blocks, warns
from mesoclinic.lib.text import fold

# Bump when any rule below changes what it finds: every signed review records the version it was signed under.
RULES_VERSION = "screening-2026.1"

ADULT_AGE_YEARS = 18
NSAID_WASHOUT_DAYS = 7

SEED_000 = "seed 000_2edeac59aef879af.txt"
SEED_001 = "seed 001_5e54515e35d4687b.txt"
SEED_002 = "seed 002_31eeec912ef0d88d.txt"
SEED_003 = "seed 003_f92b52b170801ca0.txt"
SEED_004 = "seed 004_99daaf86bc4fb4d2.txt"
LIT_KYBELLA = "literature: Kybella (deoxycholic acid) label"
LIT_PREGNANCY = "literature: injectables are avoided in pregnancy and breastfeeding (no safety data)"
LIT_FINASTERIDE = "literature: finasteride (Propecia) and dutasteride (Avodart) labels"
LIT_ALLERGY = "literature: product labels — contraindicated in hypersensitivity to any ingredient"
LIT_ISOTRETINOIN = "literature: isotretinoin labels — delayed wound healing and scarring"
LIT_IMMUNOSUPPRESSION = "literature: immunosuppression raises the risk of injection-site infection"

Verdict = Literal["eligible", "review", "ineligible"]
PREGNANCY_VALUES = ("none", "pregnant", "breastfeeding", "planning")
FAT_INDICATIONS = frozenset({"localized-fat", "weight-loss", "cellulite"})
# Area codes (our own code system, domain.md R-IND) where treatment reaches the swallowing muscles.
SUBMENTAL_AREAS = frozenset({"submental", "chin", "jaw", "jawline", "neck"})


class MedicineClass(StrEnum):
    ANTICOAGULANT = "anticoagulant"
    ANTIPLATELET = "antiplatelet"
    NSAID = "nsaid"
    FIVE_ALPHA_REDUCTASE_INHIBITOR = "5-alpha-reductase-inhibitor"
    ISOTRETINOIN = "isotretinoin"
    IMMUNOSUPPRESSANT = "immunosuppressant"
    OTHER = "other"


MEDICINE_CLASS_LABELS = {
    MedicineClass.ANTICOAGULANT: gettext_lazy("Anticoagulant"),
    MedicineClass.ANTIPLATELET: gettext_lazy("Antiplatelet"),
    MedicineClass.NSAID: gettext_lazy("NSAID"),
    MedicineClass.FIVE_ALPHA_REDUCTASE_INHIBITOR: gettext_lazy("5-alpha-reductase inhibitor"),
    MedicineClass.ISOTRETINOIN: gettext_lazy("Isotretinoin"),
    MedicineClass.IMMUNOSUPPRESSANT: gettext_lazy("Immunosuppressant"),
    MedicineClass.OTHER: gettext_lazy("Other"),
}

# The seeded condition codes, translated. A clinic's own condition shows the label stored with it.
CONDITION_LABELS = {
    "bleeding-disorder": gettext_lazy("Bleeding disorder"),
    "active-cancer": gettext_lazy("Active cancer or cancer treatment"),
    "autoimmune": gettext_lazy("Autoimmune disease"),
    "diabetes-uncontrolled": gettext_lazy("Uncontrolled diabetes"),
    "site-infection": gettext_lazy("Infection at the area to treat"),
    "skin-disease-at-site": gettext_lazy("Skin disease at the area to treat"),
    "liver-disease": gettext_lazy("Liver disease"),
    "kidney-disease": gettext_lazy("Kidney disease"),
    "severe-cardiovascular": gettext_lazy("Severe heart or circulation disease"),
    "psychiatric-unstable": gettext_lazy("Psychological condition that is not stable"),
    "dysphagia": gettext_lazy("Difficulty swallowing (dysphagia)"),
}


@dataclass(frozen=True)
class CodeSpec:
    code: str
    rule: str
    severities: frozenset[Severity]
    summary: str


def _spec(code: str, rule: str, severities: set[Severity], summary: str) -> tuple[str, CodeSpec]:
    return code, CodeSpec(code, rule, frozenset(severities), summary)


# Every finding code the screening produces (domain.md R-CAND and R-PRE-NSAID, plus unknown medicines).
FINDING_CODES: dict[str, CodeSpec] = dict(
    [
        _spec("age-under-18", "R-CAND-AGE", {"block"}, "under 18 on the planned session date"),
        _spec(
            "pregnant", "R-CAND-PREG", {"block", "warn"}, "pregnant (block) or planning a pregnancy (warn)"
        ),
        _spec("breastfeeding", "R-CAND-BF", {"block"}, "breastfeeding"),
        _spec("anticoagulant", "R-CAND-ANTICOAG", {"warn"}, "takes an anticoagulant or antiplatelet"),
        _spec("significant-condition", "R-CAND-MED", {"block", "warn"}, "significant medical issue"),
        _spec("health-concern", "R-CAND-HEALTH", {"warn"}, "general health, physical or psychological"),
        _spec("unrealistic-expectations", "R-CAND-EXPECT", {"warn"}, "goals beyond what mesotherapy does"),
        _spec("unstable-weight", "R-CAND-WEIGHT", {"warn", "info"}, "weight not stable (or not known)"),
        _spec("allergy", "R-CAND-ALLERGY", {"block"}, "allergy to an ingredient of the planned formula"),
        _spec("allergy-caution", "R-CAND-XALLERGY", {"warn"}, "cross-sensitivity with an ingredient"),
        _spec("teratogen", "R-CAND-ANDRO", {"block", "warn"}, "finasteride/dutasteride and pregnancy"),
        _spec("site-infection", "R-CAND-SITE", {"block"}, "infection or skin disease at the site"),
        _spec("nsaid-washout", "R-PRE-NSAID", {"warn"}, "NSAID or aspirin within 7 days of the session"),
        _spec("unknown-medicine", "R-CAND-ANTICOAG", {"warn"}, "a medicine not in the catalogue"),
    ]
)


class InvalidFacts(ValueError):
    """Facts no screening can be computed from (e.g. a last dose after the session date)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


# --- the facts --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFacts:
    date_of_birth: date
    sex: str  # "female", "male", "other", "unknown"


@dataclass(frozen=True)
class MedicationFacts:
    name: str  # as the patient wrote it
    last_taken: date | None
    generic_name: str | None = None  # None: not found in the medicine catalogue
    classes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class IntakeFacts:
    version: int
    pregnancy: str
    conditions: tuple[str, ...] = ()
    medications: tuple[MedicationFacts, ...] = ()
    allergies: tuple[str, ...] = ()
    weight_stable: bool | None = None
    goals: str = ""
    previous_treatments: str = ""


@dataclass(frozen=True)
class ConditionRule:
    """One condition of the catalogue: which finding it raises, how serious, under which rule."""

    code: str
    finding_code: str  # "significant-condition", "site-infection" or "health-concern"
    severity: Severity
    rule: str
    label: str
    source: str


class CautionLike(Protocol):
    @property
    def group(self) -> str: ...
    @property
    def note(self) -> str: ...
    @property
    def source(self) -> str: ...


class IngredientLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def allergy_groups(self) -> frozenset[str]: ...
    @property
    def cautions(self) -> Sequence[CautionLike]: ...
    @property
    def teratogen(self) -> bool: ...


class PlannedFormula(Protocol):
    """What screening needs to know about a planned formula.
    ``mesoclinic.formulary.rules.PlannedFormulaFacts`` satisfies it as it is; tests use ``FormulaFacts``."""

    @property
    def name(self) -> str: ...
    @property
    def ingredients(self) -> Sequence[IngredientLike]: ...
    @property
    def indications(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class CautionFacts:
    group: str  # allergy group code, e.g. "soy", "bee-wasp-venom"
    note: str
    source: str


@dataclass(frozen=True)
class IngredientFacts:
    code: str
    name: str
    allergy_groups: frozenset[str] = frozenset()
    cautions: tuple[CautionFacts, ...] = ()
    teratogen: bool = False


@dataclass(frozen=True)
class FormulaFacts:
    name: str
    ingredients: tuple[IngredientFacts, ...] = ()
    indications: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScreeningFacts:
    patient: PatientFacts
    intake: IntakeFacts
    session_date: date
    conditions: Mapping[str, ConditionRule] = field(default_factory=dict)
    formula: PlannedFormula | None = None
    areas: tuple[str, ...] = ()


@dataclass(frozen=True)
class Screening:
    verdict: Verdict
    findings: tuple[Finding, ...]
    intake_version: int
    rules_version: str = RULES_VERSION


# --- small pure helpers -----------------------------------------------------------------------------------


def age_on(date_of_birth: date, day: date) -> int:
    """Completed years on ``day``. A 29 February birthday is reached on 1 March in common years."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def days_since(last: date, day: date) -> int:
    return (day - last).days


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    listed = list(findings)
    if blocks(listed):
        return "ineligible"
    if warns(listed):
        return "review"
    return "eligible"


_DOSE_RE = re.compile(r"\b\d+([.,]\d+)?\s*(mg|mcg|µg|g|ml|iu|ui|%)?\b")
_WORD_RE = re.compile(r"[a-z0-9-]+")


def medicine_name_keys(text: str) -> tuple[str, ...]:
    """The catalogue keys to try for what a patient wrote, most specific first: the whole folded text, the
    text without doses ("Advil 200 mg" → "advil"), then each word of four letters or more."""
    whole = fold(text)
    without_doses = " ".join(_DOSE_RE.sub(" ", whole).split())
    keys: list[str] = []
    for key in (whole, without_doses, *[w for w in _WORD_RE.findall(without_doses) if len(w) >= 4]):
        if key and key not in keys:
            keys.append(key)
    return tuple(keys)


def _mentions(text: str, term: str) -> bool:
    """Whether ``term`` appears as whole words in ``text`` (both folded; hyphens read as spaces)."""
    folded_term = " ".join(fold(term).replace("-", " ").split())
    if not folded_term:
        return False
    folded_text = " ".join(fold(text).replace("-", " ").split())
    return re.search(rf"(?<![a-z0-9]){re.escape(folded_term)}(?![a-z0-9])", folded_text) is not None


# How patients write the allergy groups the formulary uses (codes are matched too, hyphens read as spaces).
ALLERGY_GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "soy": ("soy", "soya", "soybean", "soybeans", "soja"),
    "bee-wasp-venom": ("bee", "bees", "wasp", "wasps", "venom", "hymenoptera", "abeille", "guepe"),
    "amide-local-anaesthetics": ("lidocaine", "lignocaine", "xylocaine", "articaine", "mepivacaine"),
    "ester-local-anaesthetics": ("procaine", "benzocaine", "tetracaine", "novocaine"),
    "sulfonamides": ("sulfa", "sulfonamide", "sulfonamides", "sulphonamide"),
    "penicillins": ("penicillin", "penicillins", "amoxicillin"),
}


def allergy_matches(allergies: Sequence[str], term: str) -> list[str]:
    """The patient's allergy entries that name ``term`` (an ingredient code or name, or an allergy group)."""
    words = (term, *ALLERGY_GROUP_WORDS.get(term, ()))
    return [entry for entry in allergies if any(_mentions(entry, word) for word in words)]


# --- the rules ------------------------------------------------------------------------------------------


def check_inputs(facts: ScreeningFacts) -> None:
    """Refuse facts that cannot be right for this session date (the caller turns this into a 422)."""
    if facts.patient.date_of_birth > facts.session_date:
        raise InvalidFacts("on", _("The session date is before the patient's date of birth."))
    for medication in facts.intake.medications:
        if medication.last_taken is not None and medication.last_taken > facts.session_date:
            raise InvalidFacts(
                "on",
                _("The last dose of %(name)s (%(day)s) is after the session date.")
                % {"name": medication.name, "day": medication.last_taken.isoformat()},
            )
    if facts.intake.pregnancy not in PREGNANCY_VALUES:
        raise InvalidFacts("pregnancy", _("Unknown pregnancy status."))


def check_age(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-AGE (003): over 18 on the planned session date."""
    age = age_on(facts.patient.date_of_birth, facts.session_date)
    if age >= ADULT_AGE_YEARS:
        return []
    return [
        Finding(
            code="age-under-18",
            severity="block",
            rule="R-CAND-AGE",
            message=_(
                "The patient will be %(age)d on the session date; mesotherapy is for adults (18 and over)."
            )
            % {"age": age},
            source=SEED_003,
        )
    ]


def check_pregnancy(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-PREG (000) and R-CAND-BF (lit.)."""
    status = facts.intake.pregnancy
    if status == "pregnant":
        return [
            Finding(
                "pregnant",
                "block",
                "R-CAND-PREG",
                _("The patient is pregnant: pregnant women are not candidates."),
                SEED_000,
            )
        ]
    if status == "breastfeeding":
        return [
            Finding(
                "breastfeeding",
                "block",
                "R-CAND-BF",
                _("The patient is breastfeeding: not a candidate until breastfeeding ends."),
                LIT_PREGNANCY,
            )
        ]
    if status == "planning":
        return [
            Finding(
                "pregnant",
                "warn",
                "R-CAND-PREG",
                _("The patient plans a pregnancy: confirm she is not pregnant before each session."),
                SEED_000,
            )
        ]
    return []


def _medicine_label(medication: MedicationFacts) -> str:
    if medication.generic_name and fold(medication.generic_name) != fold(medication.name):
        return f"{medication.generic_name} ({medication.name})"
    return medication.name


def check_medicines(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-ANTICOAG (000), R-PRE-NSAID (004), medicines that touch general health, unknown medicines."""
    findings: list[Finding] = []
    medications = facts.intake.medications
    thinners = [
        _medicine_label(m)
        for m in medications
        if m.classes & {MedicineClass.ANTICOAGULANT, MedicineClass.ANTIPLATELET}
    ]
    if thinners:
        findings.append(
            Finding(
                "anticoagulant",
                "warn",
                "R-CAND-ANTICOAG",
                _(
                    "Takes a blood thinner: %(names)s. People on blood thinners are generally not candidates "
                    "(bleeding and bruising); the prescriber and the practitioner decide."
                )
                % {"names": ", ".join(thinners)},
                SEED_000,
            )
        )
    for medication in medications:
        if MedicineClass.NSAID not in medication.classes:
            continue
        if medication.last_taken is None:
            message = _(
                "%(name)s is an NSAID and the date of the last dose is not known: it must be stopped "
                "%(days)d days before the session."
            ) % {"name": _medicine_label(medication), "days": NSAID_WASHOUT_DAYS}
        else:
            elapsed = days_since(medication.last_taken, facts.session_date)
            if elapsed >= NSAID_WASHOUT_DAYS:
                continue
            message = _(
                "%(name)s (an NSAID) was last taken %(elapsed)d day(s) before the session: avoid aspirin and "
                "other NSAIDs for %(days)d days before (bleeding and bruising)."
            ) % {"name": _medicine_label(medication), "elapsed": elapsed, "days": NSAID_WASHOUT_DAYS}
        findings.append(Finding("nsaid-washout", "warn", "R-PRE-NSAID", message, SEED_004))
    for medication in medications:
        if MedicineClass.ISOTRETINOIN in medication.classes:
            findings.append(
                Finding(
                    "health-concern",
                    "warn",
                    "R-CAND-HEALTH",
                    _("Takes isotretinoin (%(name)s): skin heals slowly and may scar; check when it stopped.")
                    % {"name": _medicine_label(medication)},
                    LIT_ISOTRETINOIN,
                )
            )
        if MedicineClass.IMMUNOSUPPRESSANT in medication.classes:
            findings.append(
                Finding(
                    "health-concern",
                    "warn",
                    "R-CAND-HEALTH",
                    _("Takes an immunosuppressant (%(name)s): a higher risk of injection-site infection.")
                    % {"name": _medicine_label(medication)},
                    LIT_IMMUNOSUPPRESSION,
                )
            )
    unknown = [m.name for m in medications if m.generic_name is None]
    if unknown:
        findings.append(
            Finding(
                "unknown-medicine",
                "warn",
                "R-CAND-ANTICOAG",
                _(
                    "Not in the medicine catalogue: %(names)s. Check that none is a blood thinner or an "
                    "NSAID, or add it to the catalogue."
                )
                % {"names": ", ".join(unknown)},
                f"{SEED_000}; {SEED_004}",
            )
        )
    return findings


def _condition_message(rule: ConditionRule, escalated: bool) -> str:
    if rule.finding_code == "site-infection":
        return _("%(label)s: no injection into an area with an infection or a skin disease.") % {
            "label": rule.label
        }
    if rule.finding_code == "health-concern":
        return _(
            "%(label)s: candidates should be in general good health, physically and psychologically."
        ) % {"label": rule.label}
    if escalated:
        return _("%(label)s: treatment under the chin or on the neck can make swallowing worse.") % {
            "label": rule.label
        }
    if rule.severity == "block":
        return _("%(label)s: not a candidate while this lasts.") % {"label": rule.label}
    return _("%(label)s: a significant medical issue; the practitioner decides whether to go ahead.") % {
        "label": rule.label
    }


def check_conditions(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-MED (000, lit.), R-CAND-SITE (Kybella label), R-CAND-HEALTH (000, 003): per the catalogue."""
    findings: list[Finding] = []
    submental = bool(SUBMENTAL_AREAS & set(facts.areas))
    for code in facts.intake.conditions:
        rule = facts.conditions.get(code)
        if rule is None:
            findings.append(
                Finding(
                    "significant-condition",
                    "warn",
                    "R-CAND-MED",
                    _("Condition %(code)s is no longer in the catalogue: review it.") % {"code": code},
                    SEED_000,
                )
            )
            continue
        escalated = code == "dysphagia" and submental and rule.severity != "block"
        findings.append(
            Finding(
                rule.finding_code,
                "block" if escalated else rule.severity,
                rule.rule,
                _condition_message(rule, escalated),
                LIT_KYBELLA if escalated else rule.source,
            )
        )
    return findings


# Phrases (folded, so accents do not matter) that expect more than mesotherapy gives (000, 003, 004).
_EXPECTATION_PATTERNS = [
    re.compile(
        r"\b(permanent(ly)?|forever|for good|guarantee[ds]?|garanti[es]*|definiti(f|fs|ve|ves|vement))\b"
    ),
    re.compile(
        r"\b(instead of|rather than|a la place d[eu]|au lieu d[eu]|replace)\b.{0,30}"
        r"\b(diet|dieting|exercise|sport|surgery|liposuction|regime|chirurgie|liposuccion)\b"
    ),
    re.compile(r"\b(without|sans)\s+(diet(ing)?|exercis(e|ing)|sport|effort|regime)\b"),
    re.compile(r"\b(overnight|instant(ly)?|one session|in a week|du jour au lendemain|une seule seance)\b"),
]
_WEIGHT_RE = re.compile(r"\b(\d{1,3})\s*(kg|kgs|kilos?|kilogram(me)?s?|lbs?|pounds?)\b")
LARGE_LOSS_KG = 10
LARGE_LOSS_LB = 20


def expectation_phrases(goals: str) -> list[str]:
    """The phrases of the goals that expect too much: permanent or guaranteed results, a replacement for diet,
    exercise or surgery, results overnight, or a large weight loss (10 kg / 20 lb or more)."""
    text = " ".join(fold(goals).split())
    found = [match.group(0) for pattern in _EXPECTATION_PATTERNS for match in pattern.finditer(text)]
    for match in _WEIGHT_RE.finditer(text):
        amount, unit = int(match.group(1)), match.group(2)
        limit = LARGE_LOSS_KG if unit.startswith("k") else LARGE_LOSS_LB
        if amount >= limit:
            found.append(match.group(0))
    return found


def check_expectations(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-EXPECT (003, 000): reasonable expectations; mesotherapy supplements a healthy lifestyle."""
    phrases = expectation_phrases(facts.intake.goals)
    if not phrases:
        return []
    return [
        Finding(
            "unrealistic-expectations",
            "warn",
            "R-CAND-EXPECT",
            _(
                "The goals expect more than mesotherapy gives (%(phrases)s): it supplements a healthy "
                "lifestyle and works best on small amounts of stubborn fat. Discuss what to expect."
            )
            % {"phrases": ", ".join(f"“{phrase}”" for phrase in phrases)},
            f"{SEED_003}; {SEED_000}",
        )
    ]


def check_weight(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-WEIGHT (000): for fat indications, a stable weight."""
    stable = facts.intake.weight_stable
    if stable is True:
        return []
    formula = facts.formula
    if formula is not None and not (formula.indications & FAT_INDICATIONS):
        return []
    if stable is False:
        return [
            Finding(
                "unstable-weight",
                "warn",
                "R-CAND-WEIGHT",
                _(
                    "The weight has not been stable over the last 6 months: fat treatments suit a stable "
                    "weight and small amounts of stubborn fat."
                ),
                SEED_000,
            )
        ]
    severity: Severity = "warn" if formula is not None else "info"
    return [
        Finding(
            "unstable-weight",
            severity,
            "R-CAND-WEIGHT",
            _(
                "Whether the weight has been stable over the last 6 months is not known: ask before fat "
                "treatments."
            ),
            SEED_000,
        )
    ]


def check_formula(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-ALLERGY, R-CAND-XALLERGY and R-CAND-ANDRO for each ingredient of the planned formula."""
    formula = facts.formula
    if formula is None:
        return []
    findings: list[Finding] = []
    allergies = facts.intake.allergies
    for ingredient in formula.ingredients:
        terms = [ingredient.code, ingredient.name, *sorted(ingredient.allergy_groups)]
        matched = sorted({entry for term in terms for entry in allergy_matches(allergies, term)})
        if matched:
            findings.append(
                Finding(
                    "allergy",
                    "block",
                    "R-CAND-ALLERGY",
                    _("Documented allergy (%(allergy)s) to %(ingredient)s in %(formula)s.")
                    % {"allergy": "; ".join(matched), "ingredient": ingredient.name, "formula": formula.name},
                    LIT_ALLERGY,
                )
            )
        else:
            for caution in ingredient.cautions:
                caution_matched = allergy_matches(allergies, caution.group)
                if caution_matched:
                    findings.append(
                        Finding(
                            "allergy-caution",
                            "warn",
                            "R-CAND-XALLERGY",
                            _("%(ingredient)s with an allergy to %(allergy)s: %(note)s")
                            % {
                                "ingredient": ingredient.name,
                                "allergy": "; ".join(caution_matched),
                                "note": caution.note,
                            },
                            caution.source,
                        )
                    )
        if ingredient.teratogen:
            findings.extend(_teratogen_findings(facts, ingredient.name))
    return findings


def _teratogen_findings(facts: ScreeningFacts, name: str) -> list[Finding]:
    if facts.intake.pregnancy in ("pregnant", "planning"):
        return [
            Finding(
                "teratogen",
                "block",
                "R-CAND-ANDRO",
                _("%(name)s must not be given to a patient who is or may become pregnant.") % {"name": name},
                LIT_FINASTERIDE,
            )
        ]
    if facts.patient.sex != "male":
        return [
            Finding(
                "teratogen",
                "warn",
                "R-CAND-ANDRO",
                _("%(name)s is for men only: confirm the patient cannot become pregnant.") % {"name": name},
                LIT_FINASTERIDE,
            )
        ]
    return []


def check_teratogen_medicines(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-ANDRO: a 5-alpha-reductase inhibitor taken by a patient who is or plans to become pregnant."""
    if facts.intake.pregnancy not in ("pregnant", "planning"):
        return []
    return [
        Finding(
            "teratogen",
            "block",
            "R-CAND-ANDRO",
            _("Takes %(name)s, which must not be taken by a patient who is or may become pregnant.")
            % {"name": _medicine_label(medication)},
            LIT_FINASTERIDE,
        )
        for medication in facts.intake.medications
        if MedicineClass.FIVE_ALPHA_REDUCTASE_INHIBITOR in medication.classes
    ]


RULES = (
    check_age,
    check_pregnancy,
    check_conditions,
    check_medicines,
    check_teratogen_medicines,
    check_weight,
    check_expectations,
    check_formula,
)


def screen(facts: ScreeningFacts) -> Screening:
    """Run every rule. Findings come most serious first, in rule order within a severity."""
    check_inputs(facts)
    findings = [finding for rule in RULES for finding in rule(facts)]
    findings.sort(key=lambda finding: SEVERITY_ORDER[finding.severity])
    return Screening(
        verdict=verdict_of(findings),
        findings=tuple(findings),
        intake_version=facts.intake.version,
        rules_version=RULES_VERSION,
    )


# --- intake answers: validation and "what changed" ------------------------------------------------------


@dataclass(frozen=True)
class MedicationAnswer:
    name: str
    last_taken: date | None


@dataclass(frozen=True)
class IntakeAnswers:
    """One filled questionnaire, as the portal form, the desk form and the API hand it to the service."""

    pregnancy: str
    conditions: tuple[str, ...] = ()
    medications: tuple[MedicationAnswer, ...] = ()
    allergies: tuple[str, ...] = ()
    weight_stable: bool | None = None
    goals: str = ""
    previous_treatments: str = ""


MAX_TEXT = 2000
MAX_ITEM = 100
MAX_ITEMS = 40


def intake_problems(
    answers: IntakeAnswers, *, today: date, known_conditions: frozenset[str]
) -> dict[str, list[str]]:
    """Why these answers cannot be stored, by field (empty when they can)."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if answers.pregnancy not in PREGNANCY_VALUES:
        add("pregnancy", _("Choose one of: none, pregnant, breastfeeding, planning."))
    unknown = sorted(set(answers.conditions) - known_conditions)
    if unknown:
        add("conditions", _("Unknown condition code(s): %(codes)s.") % {"codes": ", ".join(unknown)})
    for label, items in (
        ("conditions", answers.conditions),
        ("medications", answers.medications),
        ("allergies", answers.allergies),
    ):
        if len(items) > MAX_ITEMS:
            add(label, _("At most %(count)d entries.") % {"count": MAX_ITEMS})
    for index, medication in enumerate(answers.medications):
        if not medication.name.strip():
            add(f"medications.{index}.name", _("Name the medicine."))
        elif len(medication.name) > MAX_ITEM:
            add(f"medications.{index}.name", _("At most %(count)d characters.") % {"count": MAX_ITEM})
        if medication.last_taken is not None and medication.last_taken > today:
            add(f"medications.{index}.last_taken", _("The date last taken is in the future."))
    for index, allergy in enumerate(answers.allergies):
        if not allergy.strip():
            add(f"allergies.{index}", _("This entry is empty."))
        elif len(allergy) > MAX_ITEM:
            add(f"allergies.{index}", _("At most %(count)d characters.") % {"count": MAX_ITEM})
    for name in ("goals", "previous_treatments"):
        if len(getattr(answers, name)) > MAX_TEXT:
            add(name, _("At most %(count)d characters.") % {"count": MAX_TEXT})
    return problems


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _medication_text(medication: MedicationAnswer) -> str:
    if medication.last_taken is None:
        return medication.name
    return f"{medication.name} ({medication.last_taken.isoformat()})"


def _weight_text(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def intake_changes(before: IntakeAnswers, after: IntakeAnswers) -> list[Change]:
    """What changed between two versions, field by field; lists as items added and removed."""
    changes: list[Change] = []
    list_fields: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
        ("conditions", before.conditions, after.conditions),
        (
            "medications",
            tuple(_medication_text(m) for m in before.medications),
            tuple(_medication_text(m) for m in after.medications),
        ),
        ("allergies", before.allergies, after.allergies),
    ]
    if before.pregnancy != after.pregnancy:
        changes.append(Change("pregnancy", before.pregnancy, after.pregnancy))
    for name, old, new in list_fields:
        added = tuple(item for item in new if item not in old)
        removed = tuple(item for item in old if item not in new)
        if added or removed:
            changes.append(Change(name, ", ".join(old), ", ".join(new), added, removed))
    if before.weight_stable != after.weight_stable:
        changes.append(
            Change("weight_stable", _weight_text(before.weight_stable), _weight_text(after.weight_stable))
        )
    for name in ("goals", "previous_treatments"):
        old_text, new_text = getattr(before, name), getattr(after, name)
        if old_text != new_text:
            changes.append(Change(name, old_text, new_text))
    return changes

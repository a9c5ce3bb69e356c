"""Candidacy screening (domain.md R-CAND-*, R-PRE-NSAID): pure rules over plain facts.

No ORM, no request, no clock: the planned session date (and, for reviews, the clinic's today) comes in with
the facts, the catalogue entries the rules need (conditions, the medicines a line names) are plain values, and
the answer is a verdict with findings. Every finding code this module can produce is listed in
``FINDING_CODES`` (tests assert each is reachable).

Decisions written down here (see also docs/adr/0007-candidacy-screening.md):

- Age (R-CAND-AGE): 18 on the planned session date. The 18th birthday itself is eligible. Someone born on
  29 February turns a year older on 1 March in common years.
- NSAID washout (R-PRE-NSAID): a dose of an NSAID (aspirin included) taken fewer than 7 days before the
  session (``(session - last dose).days < 7``) warns; a dose exactly 7 days before passes. A last dose after
  the session date is invalid input. An NSAID whose last dose is not known warns too (the washout cannot
  be confirmed).
- Medicine lines: one line may name several medicines ("Eliquis and Advil"); every medicine it names counts
  (the union of their classes). "Aspirin-free Excedrin", "sans aspirine", "no aspirin" name aspirin as absent.
  A line the catalogue does not know, or knows only in part (a word that looks like a medicine name is left
  over), raises ``unknown-medicine`` so that a person checks it.
- Weight (R-CAND-WEIGHT applies to fat indications): with a planned fat formula, an unstable *or unknown*
  weight warns; with a planned formula for another indication it says nothing; with no formula planned yet an
  unstable weight warns and an unknown weight is shown as ``info``.
- Pregnancy planned: ``pregnant`` as a warning (confirm at each session); a teratogen is then blocked.
- The planned formula is checked by the formulary's rules, the one implementation (``formulary.rules.
  formula_findings``): allergies (R-CAND-ALLERGY, -XALLERGY), teratogens (R-CAND-ANDRO: block when pregnant or
  planning, warn for anyone else who is not male) and the clinic's jurisdiction (R-REG).
- Dysphagia is a significant condition (warn); with a planned submental/neck area it blocks (Kybella label).
- Each warning is acknowledged on its own: a finding's ``subject`` (the condition code, the medicine line as
  written, the ingredient code) makes its ``key`` (``code:subject``), and a review needs a reason per key.
- Reviews: signed for a session from the clinic's today to ``REVIEW_HORIZON_DAYS`` ahead; stale when a newer
  intake exists, the rules changed, or it was signed more than ``REVIEW_VALIDITY_DAYS`` ago.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Literal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mesoclinic.formulary import rules as formulary
from mesoclinic.lib.findings import SEVERITY_ORDER, Finding, Severity, blocks, warns
from mesoclinic.lib.text import fold

# Bump when any rule below changes what it finds: every signed review records the version it was signed under,
# and a review signed under another version is stale.
RULES_VERSION = "screening-2026.2"

ADULT_AGE_YEARS = 18
NSAID_WASHOUT_DAYS = 7
# A review is signed for a session from the clinic's today up to this many days ahead…
REVIEW_HORIZON_DAYS = 180
# …and speaks for this many days after it was signed (clinic dates): then it is stale and is signed again.
REVIEW_VALIDITY_DAYS = 180

SEED_000 = "seed 000_2edeac59aef879af.txt"
SEED_001 = "seed 001_5e54515e35d4687b.txt"
SEED_002 = "seed 002_31eeec912ef0d88d.txt"
SEED_003 = "seed 003_f92b52b170801ca0.txt"
SEED_004 = "seed 004_99daaf86bc4fb4d2.txt"
LIT_KYBELLA = "literature: Kybella (deoxycholic acid) label"
LIT_PREGNANCY = "literature: injectables are avoided in pregnancy and breastfeeding (no safety data)"
LIT_FINASTERIDE = "literature: finasteride (Propecia) and dutasteride (Avodart) labels"
LIT_ISOTRETINOIN = "literature: isotretinoin labels — delayed wound healing and scarring"
LIT_IMMUNOSUPPRESSION = "literature: immunosuppression raises the risk of injection-site infection"

Verdict = Literal["eligible", "review", "ineligible"]
PREGNANCY_VALUES = ("none", "pregnant", "breastfeeding", "planning")
FAT_INDICATIONS = frozenset({"localized-fat", "weight-loss", "cellulite", "submental-fat"})
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
THINNER_CLASSES = frozenset({MedicineClass.ANTICOAGULANT, MedicineClass.ANTIPLATELET})

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


# Every finding code the screening produces (domain.md R-CAND, R-PRE-NSAID and, for a planned formula, R-REG;
# plus unknown medicines).
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
        _spec("unknown-medicine", "R-CAND-ANTICOAG", {"warn"}, "a medicine not (fully) in the catalogue"),
        _spec("banned-in-jurisdiction", "R-REG", {"block"}, "the formula is banned where the clinic is"),
        _spec("not-approved", "R-REG", {"warn"}, "an ingredient is not approved where the clinic is"),
        _spec("off-label", "R-REG", {"warn"}, "an ingredient is approved for another use"),
        _spec("regulatory-unknown", "R-REG", {"info"}, "no regulatory status recorded"),
        _spec("procedure-not-approved", "R-REG", {"info"}, "the procedure itself is not approved"),
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
class CatalogueMedicine:
    """One medicine of the catalogue, as the rules see it."""

    generic_name: str
    classes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MedicationFacts:
    """One line of the intake's medicines: what the patient wrote, the last dose, and what the catalogue
    recognised in it (``medicines`` empty: nothing; ``unrecognised``: words that look like medicine names and
    that the catalogue does not know)."""

    name: str  # as the patient wrote it
    last_taken: date | None
    medicines: tuple[CatalogueMedicine, ...] = ()
    unrecognised: tuple[str, ...] = ()

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(value for medicine in self.medicines for value in medicine.classes)

    @property
    def generic_names(self) -> tuple[str, ...]:
        return tuple(medicine.generic_name for medicine in self.medicines)

    def generic_names_in(self, classes: frozenset[str]) -> tuple[str, ...]:
        return tuple(medicine.generic_name for medicine in self.medicines if medicine.classes & classes)


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


@dataclass(frozen=True)
class ScreeningFacts:
    patient: PatientFacts
    intake: IntakeFacts
    session_date: date
    conditions: Mapping[str, ConditionRule] = field(default_factory=dict)
    formula: formulary.PlannedFormulaFacts | None = None
    areas: tuple[str, ...] = ()
    jurisdiction: str = ""  # the clinic's (R-REG), e.g. "FR", "US-NY"


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
    if blocks(findings):
        return "ineligible"
    if warns(findings):
        return "review"
    return "eligible"


# --- what a medicine line names ---------------------------------------------------------------------------

_DOSE_RE = re.compile(r"\b\d+([.,]\d+)?\s*(mg|mcg|µg|μg|ug|g|ml|iu|ui|%)?\b")
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|[,;/+&()\[\]]")
# Words that join two names: a negation before one does not reach the other ("no aspirin and Advil").
CONJUNCTIONS = frozenset({"and", "et", "or", "ou", "with", "avec", "plus"})
_FREE_SUFFIX = "-free"
# The longest catalogue name, in words, looked for inside a line ("acide acetylsalicylique", "aspirin free
# excedrin").
MAX_NAME_WORDS = 4
# Words that say the next name is absent: "no aspirin", "sans aspirine", "pas d'aspirine", "without Advil".
NEGATIONS = frozenset(
    {"no", "not", "non", "without", "sans", "pas", "hors", "except", "sauf", "never", "jamais"}
)
# Words of a medicine line that are not medicine names (English and French): doses, forms, times, filler.
_STOP_WORDS_TEXT = """
    an and or the of for per with plus to in on at as if from by about each every any other same
    et ou le la les un une des de du au aux en avec par pour sur si chaque tous toutes tout autre autres
    daily day days week weeks weekly month months monthly year years night nightly morning evening noon
    jour jours semaine semaines mois an ans annee annees matin midi soir nuit hebdomadaire
    once twice thrice times time fois when needed necessary need prn besoin
    tablet tablets tab tabs pill pills capsule capsules caps softgel softgels comprime comprimes gelule
    gelules sachet sachets drop drops goutte gouttes cream creme gel ointment pommade spray patch patches
    injection injections injectable inhaler syrup sirop solution oral orale topical local
    low dose doses dosage high extra strength forte fort max maximum mini junior adult adulte child enfant
    generic generique brand marque taken take takes taking pris prise prend prends stopped stop arrete
    since depuis until jusqu last dernier derniere ago il environ approx about sometimes parfois
    occasionally rarely usually often souvent headache headaches pain pains douleur douleurs mal tete
    free unknown inconnu name nom mg ml
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
MIN_NAME_LETTERS = 4


@dataclass(frozen=True)
class MedicineResolution:
    """What the catalogue recognised in one line: every medicine it names (in order, once each), the words
    left over that look like medicine names, and the medicines the line names as absent."""

    medicines: tuple[CatalogueMedicine, ...] = ()
    unrecognised: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # generic names, e.g. ("aspirin",) for "Aspirin-free Excedrin"

    @property
    def recognised(self) -> bool:
        return bool(self.medicines)

    @property
    def partial(self) -> bool:
        return bool(self.medicines) and bool(self.unrecognised)

    @property
    def generic_names(self) -> tuple[str, ...]:
        return tuple(medicine.generic_name for medicine in self.medicines)

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(value for medicine in self.medicines for value in medicine.classes)


@dataclass(frozen=True)
class _Word:
    text: str
    free: bool = False  # written "X-free" (or followed by "free")
    separator: bool = False  # punctuation or a conjunction: names and negations end there


def _without_doses(text: str) -> str:
    return " ".join(_DOSE_RE.sub(" ", fold(text)).split())


def _words(text: str) -> list[_Word]:
    words: list[_Word] = []
    for piece in _TOKEN_RE.findall(_without_doses(text)):
        if not piece[0].isalnum() or piece in CONJUNCTIONS:
            words.append(_Word(piece, separator=True))
        elif piece.endswith(_FREE_SUFFIX) and len(piece) > len(_FREE_SUFFIX):
            words.append(_Word(piece[: -len(_FREE_SUFFIX)], free=True))
        elif piece == "free" and words and not words[-1].separator:
            words[-1] = _Word(words[-1].text, free=True)
            words.append(_Word(piece))
        else:
            words.append(_Word(piece))
    return words


def _name_like(word: str) -> bool:
    return (
        len(word) >= MIN_NAME_LETTERS
        and word not in STOP_WORDS
        and word not in NEGATIONS
        and sum(ch.isalpha() for ch in word) >= MIN_NAME_LETTERS
    )


def _filler(word: _Word) -> bool:
    return word.separator or word.text in STOP_WORDS or word.text in NEGATIONS


def medicine_name_keys(text: str) -> tuple[str, ...]:
    """Every catalogue key worth looking up for what a patient wrote (folded): the whole line, the line
    without doses ("Advil 200 mg" → "advil"), and each run of up to ``MAX_NAME_WORDS`` words within one part
    of the line that neither starts nor ends with a filler word ("eliquis", "advil", "acide
    acetylsalicylique"…)."""
    words = _words(text)
    candidates = [fold(text), _without_doses(text)]
    for start in range(len(words)):
        if _filler(words[start]):
            continue
        for end in range(start + 1, min(start + MAX_NAME_WORDS, len(words)) + 1):
            if words[end - 1].separator:
                break
            if not _filler(words[end - 1]):
                candidates.append(" ".join(word.text for word in words[start:end]))
    return tuple(dict.fromkeys(key for key in candidates if key))


def resolve_medicine(text: str, catalogue: Mapping[str, CatalogueMedicine]) -> MedicineResolution:
    """What one medicine line names, given the catalogue entries of its keys (``medicine_name_keys``).

    The whole line (with or without doses) is one name when the catalogue knows it. Otherwise the line is read
    word by word, the longest known name first. A name after a negation ("no", "sans", "without"…, up to the
    next comma or "and") or written "X-free" / "X free" is absent, and so is every other name of the same
    medicine in the line ("Aspirin-free Excedrin" is not aspirin, although Excedrin usually is). Every other
    medicine found counts, and a word that looks like a medicine name but is not in the catalogue (or names
    only an absent medicine) is left over, for a person to check."""
    for key in (fold(text), _without_doses(text)):
        if key in catalogue:
            return MedicineResolution(medicines=(catalogue[key],))
    words = _words(text)
    found: list[tuple[CatalogueMedicine, str]] = []
    absent: list[str] = []
    leftover: list[str] = []
    negate = False
    index = 0
    while index < len(words):
        word = words[index]
        if word.separator:
            negate = False
            index += 1
            continue
        if word.text in NEGATIONS:
            negate = True
            index += 1
            continue
        hit: tuple[int, CatalogueMedicine] | None = None
        for end in range(min(index + MAX_NAME_WORDS, len(words)), index, -1):
            if any(item.separator for item in words[index:end]):
                continue
            key = " ".join(item.text for item in words[index:end])
            if key in catalogue:
                hit = (end, catalogue[key])
                break
        if hit is not None:
            end, medicine = hit
            if negate or any(item.free for item in words[index:end]):
                absent.append(medicine.generic_name)
            else:
                found.append((medicine, " ".join(item.text for item in words[index:end])))
            negate = False
            index = end
            continue
        if _name_like(
            word.text
        ):  # short and filler words neither count nor end a negation ("pas d'aspirine")
            if not negate and not word.free:
                leftover.append(word.text)
            negate = False
        index += 1
    medicines: list[CatalogueMedicine] = []
    for medicine, written in found:
        if medicine.generic_name in absent:
            leftover.append(written)  # named, but the line says this medicine is absent: a person checks it
        elif medicine.generic_name not in [known.generic_name for known in medicines]:
            medicines.append(medicine)
    return MedicineResolution(
        medicines=tuple(medicines),
        unrecognised=tuple(dict.fromkeys(leftover)),
        absent=tuple(dict.fromkeys(absent)),
    )


# --- the clinic's additions to the medicine catalogue ---------------------------------------------------

MAX_MEDICINE_NAME = 100
MAX_NAMES_AT_ONCE = 20
MIN_MEDICINE_LETTERS = 3
# What a catalogue name may be made of, once folded: words of letters and digits joined by spaces, hyphens or
# slashes ("Advil Liqui-Gels", "aspirin/dipyridamole") — what the matching reads.
_MEDICINE_NAME_RE = re.compile(r"^[a-z0-9]+(?:[ /-][a-z0-9]+)*$")
AREA_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def medicine_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a catalogue name (None when it can)."""
    text = " ".join(name.split())
    folded = fold(text)
    if not text:
        return _("Give the name.")
    if len(text) > MAX_MEDICINE_NAME:
        return _("At most %(count)d characters.") % {"count": MAX_MEDICINE_NAME}
    if not _MEDICINE_NAME_RE.match(folded):
        return _("Use letters, digits, spaces, hyphens and slashes only, as on the box (“Advil Liqui-Gels”).")
    if sum(ch.isalpha() for ch in folded) < MIN_MEDICINE_LETTERS or folded in (
        STOP_WORDS | NEGATIONS | CONJUNCTIONS
    ):
        return _("This is not a medicine name.")
    return None


def medicine_names_problems(
    *, names: Sequence[str], taken: Mapping[str, str], field: str, also: Iterable[str] = ()
) -> dict[str, list[str]]:
    """Why these names cannot be added, by field ``<field>.<index>``. ``taken``: folded name → the generic
    name of the medicine it already names in the clinic's catalogue (a known name never changes meaning);
    ``also``: names given elsewhere in the same request (folded)."""
    problems: dict[str, list[str]] = {}
    if len(names) > MAX_NAMES_AT_ONCE:
        problems[field] = [_("At most %(count)d names at once.") % {"count": MAX_NAMES_AT_ONCE}]
    seen = set(also)
    for index, name in enumerate(names):
        key = f"{field}.{index}"
        problem = medicine_name_problem(name)
        folded = fold(" ".join(name.split()))
        if problem is not None:
            problems[key] = [problem]
        elif folded in taken:
            problems[key] = [
                _("“%(name)s” is already in the catalogue (as %(generic)s).")
                % {"name": " ".join(name.split()), "generic": taken[folded]}
            ]
        elif folded in seen:
            problems[key] = [_("This name is given twice.")]
        seen.add(folded)
    return problems


def medicine_entry_problems(
    *, generic_name: str, classes: Sequence[str], names: Sequence[str], taken: Mapping[str, str]
) -> dict[str, list[str]]:
    """Why a clinic's new medicine cannot be added, by field: its generic name (a valid name not already in
    the catalogue), its classes (at least one ``MedicineClass``), its other names."""
    problems: dict[str, list[str]] = {}
    problem = medicine_name_problem(generic_name)
    folded = fold(" ".join(generic_name.split()))
    if problem is not None:
        problems["generic_name"] = [problem]
    elif folded in taken:
        problems["generic_name"] = [
            _("“%(name)s” is already in the catalogue (as %(generic)s): add names to that medicine instead.")
            % {"name": " ".join(generic_name.split()), "generic": taken[folded]}
        ]
    known = {str(value) for value in MedicineClass}
    if not classes:
        problems["classes"] = [_("Choose at least one class.")]
    elif any(value not in known for value in classes):
        problems["classes"] = [
            _("Unknown class: choose among %(classes)s.") % {"classes": ", ".join(sorted(known))}
        ]
    problems.update(medicine_names_problems(names=names, taken=taken, field="names", also=[folded]))
    return problems


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


def _medicine_label(medication: MedicationFacts, generic_names: Sequence[str]) -> str:
    """ "ibuprofen (Advil)": the catalogue's names for what the line names, then the line as written."""
    names = ", ".join(generic_names)
    if not names or fold(names) == fold(medication.name):
        return medication.name
    return f"{names} ({medication.name})"


def check_medicines(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-ANTICOAG (000), R-PRE-NSAID (004), medicines that touch general health, unknown medicines. One
    finding per medicine line, its subject the line as written."""
    findings: list[Finding] = []
    medications = facts.intake.medications
    for medication in medications:
        thinners = medication.generic_names_in(THINNER_CLASSES)
        if thinners:
            findings.append(
                Finding(
                    "anticoagulant",
                    "warn",
                    "R-CAND-ANTICOAG",
                    _(
                        "Takes a blood thinner: %(names)s. People on blood thinners are generally not "
                        "candidates (bleeding and bruising); the prescriber and the practitioner decide."
                    )
                    % {"names": _medicine_label(medication, thinners)},
                    SEED_000,
                    subject=medication.name,
                )
            )
    for medication in medications:
        nsaids = medication.generic_names_in(frozenset({MedicineClass.NSAID}))
        if not nsaids:
            continue
        label = _medicine_label(medication, nsaids)
        if medication.last_taken is None:
            message = _(
                "%(name)s is an NSAID and the date of the last dose is not known: it must be stopped "
                "%(days)d days before the session."
            ) % {"name": label, "days": NSAID_WASHOUT_DAYS}
        else:
            elapsed = days_since(medication.last_taken, facts.session_date)
            if elapsed >= NSAID_WASHOUT_DAYS:
                continue
            message = _(
                "%(name)s (an NSAID) was last taken %(elapsed)d day(s) before the session: avoid aspirin and "
                "other NSAIDs for %(days)d days before (bleeding and bruising)."
            ) % {"name": label, "elapsed": elapsed, "days": NSAID_WASHOUT_DAYS}
        findings.append(
            Finding("nsaid-washout", "warn", "R-PRE-NSAID", message, SEED_004, subject=medication.name)
        )
    for medication in medications:
        isotretinoin = medication.generic_names_in(frozenset({MedicineClass.ISOTRETINOIN}))
        if isotretinoin:
            findings.append(
                Finding(
                    "health-concern",
                    "warn",
                    "R-CAND-HEALTH",
                    _("Takes isotretinoin (%(name)s): skin heals slowly and may scar; check when it stopped.")
                    % {"name": _medicine_label(medication, isotretinoin)},
                    LIT_ISOTRETINOIN,
                    subject=medication.name,
                )
            )
        suppressants = medication.generic_names_in(frozenset({MedicineClass.IMMUNOSUPPRESSANT}))
        if suppressants:
            findings.append(
                Finding(
                    "health-concern",
                    "warn",
                    "R-CAND-HEALTH",
                    _("Takes an immunosuppressant (%(name)s): a higher risk of injection-site infection.")
                    % {"name": _medicine_label(medication, suppressants)},
                    LIT_IMMUNOSUPPRESSION,
                    subject=medication.name,
                )
            )
    for medication in medications:
        if not medication.medicines:
            message = _(
                "Not in the medicine catalogue: %(name)s. Check that it is not a blood thinner or an NSAID, "
                "or add it to the catalogue."
            ) % {"name": medication.name}
        elif medication.unrecognised:
            message = _(
                "Only partly recognised: “%(name)s” names %(found)s, but not %(words)s. Check that nothing "
                "else on this line is a blood thinner or an NSAID, or add it to the catalogue."
            ) % {
                "name": medication.name,
                "found": ", ".join(medication.generic_names),
                "words": ", ".join(f"“{word}”" for word in medication.unrecognised),
            }
        else:
            continue
        findings.append(
            Finding(
                "unknown-medicine",
                "warn",
                "R-CAND-ANTICOAG",
                message,
                f"{SEED_000}; {SEED_004}",
                subject=medication.name,
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
    """R-CAND-MED (000, lit.), R-CAND-SITE (Kybella label), R-CAND-HEALTH (000, 003): per the catalogue. Each
    finding's subject is the condition code."""
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
                    subject=code,
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
                subject=code,
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


def formula_patient(facts: ScreeningFacts) -> formulary.PatientFacts:
    """The patient as the formulary's checks see them: the intake's allergies as written, its pregnancy
    status, the record's sex."""
    return formulary.PatientFacts(
        allergies=facts.intake.allergies, pregnancy=facts.intake.pregnancy, sex=facts.patient.sex
    )


def check_formula(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-ALLERGY, R-CAND-XALLERGY, R-CAND-ANDRO and R-REG for the planned formula: the formulary's checks
    (one implementation), in the clinic's jurisdiction."""
    if facts.formula is None:
        return []
    return formulary.formula_findings(facts.formula, formula_patient(facts), facts.jurisdiction)


def check_teratogen_medicines(facts: ScreeningFacts) -> list[Finding]:
    """R-CAND-ANDRO: a 5-alpha-reductase inhibitor taken by a patient who is or plans to become pregnant."""
    if facts.intake.pregnancy not in ("pregnant", "planning"):
        return []
    findings: list[Finding] = []
    for medication in facts.intake.medications:
        names = medication.generic_names_in(frozenset({MedicineClass.FIVE_ALPHA_REDUCTASE_INHIBITOR}))
        if names:
            findings.append(
                Finding(
                    "teratogen",
                    "block",
                    "R-CAND-ANDRO",
                    _("Takes %(name)s, which must not be taken by a patient who is or may become pregnant.")
                    % {"name": _medicine_label(medication, names)},
                    LIT_FINASTERIDE,
                    subject=medication.name,
                )
            )
    return findings


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


# --- reviews: for which session, and how long they speak --------------------------------------------------


def review_date_problem(on: date, *, today: date) -> str | None:
    """Why a review cannot be signed for a session on ``on`` (None when it can): from the clinic's today to
    ``REVIEW_HORIZON_DAYS`` ahead, both included."""
    if on < today:
        return _("The session date is in the past: sign the review for today or a later session.")
    if (on - today).days > REVIEW_HORIZON_DAYS:
        return _("Sign the review for a session within %(days)d days from today.") % {
            "days": REVIEW_HORIZON_DAYS
        }
    return None


def review_stale_reasons(
    *,
    reviewed_intake_version: int,
    latest_intake_version: int,
    reviewed_rules_version: str,
    signed_on: date,
    today: date,
) -> list[str]:
    """Why a signed review no longer speaks for the patient (empty: it does). ``signed_on`` and ``today`` are
    clinic dates; a review is valid through ``REVIEW_VALIDITY_DAYS`` days after the day it was signed."""
    reasons: list[str] = []
    if latest_intake_version > reviewed_intake_version:
        reasons.append(
            _("A newer intake (version %(new)d) was submitted after this review of version %(old)d.")
            % {"new": latest_intake_version, "old": reviewed_intake_version}
        )
    if reviewed_rules_version != RULES_VERSION:
        reasons.append(
            _("The screening rules changed since this review (%(old)s, now %(new)s).")
            % {"old": reviewed_rules_version, "new": RULES_VERSION}
        )
    if (today - signed_on).days > REVIEW_VALIDITY_DAYS:
        reasons.append(
            _("This review was signed more than %(days)d days ago (on %(day)s): screen and sign again.")
            % {"days": REVIEW_VALIDITY_DAYS, "day": signed_on.isoformat()}
        )
    return reasons


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
    """Why these answers cannot be stored, by field (empty when they can). Run on the answers as given, before
    anything is trimmed or dropped, so that ``medications.2.name`` is the third row the client sent."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if answers.pregnancy not in PREGNANCY_VALUES:
        add("pregnancy", _("Choose one of: none, pregnant, breastfeeding, planning."))
    codes = [code.strip() for code in answers.conditions]
    if any(not code for code in codes):
        add("conditions", _("A condition code is empty."))
    unknown = sorted({code for code in codes if code} - known_conditions)
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
        name = " ".join(medication.name.split())
        if not name:
            add(f"medications.{index}.name", _("Name the medicine."))
        elif len(name) > MAX_ITEM:
            add(f"medications.{index}.name", _("At most %(count)d characters.") % {"count": MAX_ITEM})
        if medication.last_taken is not None and medication.last_taken > today:
            add(f"medications.{index}.last_taken", _("The date last taken is in the future."))
    for index, allergy in enumerate(answers.allergies):
        if not allergy.strip():
            add(f"allergies.{index}", _("This entry is empty."))
        elif len(allergy.strip()) > MAX_ITEM:
            add(f"allergies.{index}", _("At most %(count)d characters.") % {"count": MAX_ITEM})
    for name in ("goals", "previous_treatments"):
        if len(getattr(answers, name).strip()) > MAX_TEXT:
            add(name, _("At most %(count)d characters.") % {"count": MAX_TEXT})
    return problems


def clean_answers(answers: IntakeAnswers) -> IntakeAnswers:
    """The answers as stored, once ``intake_problems`` found nothing: text trimmed (runs of spaces in a
    medicine name made one), conditions without duplicates. Nothing is dropped, so indexes stay as sent."""
    return IntakeAnswers(
        pregnancy=answers.pregnancy,
        conditions=tuple(dict.fromkeys(code.strip() for code in answers.conditions)),
        medications=tuple(
            MedicationAnswer(name=" ".join(m.name.split()), last_taken=m.last_taken)
            for m in answers.medications
        ),
        allergies=tuple(allergy.strip() for allergy in answers.allergies),
        weight_stable=answers.weight_stable,
        goals=answers.goals.strip(),
        previous_treatments=answers.previous_treatments.strip(),
    )


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

"""Pure formulary rules: plain dataclasses in, findings or values out. No ORM, no request, no clock.

- formula vs patient: R-CAND-ALLERGY (``allergy``, block), R-CAND-XALLERGY (``allergy-caution``, warn),
  R-CAND-ANDRO (``teratogen``, block);
- formula vs the clinic's jurisdiction: R-REG (``banned-in-jurisdiction`` block, ``not-approved`` warn,
  ``off-label`` warn, ``regulatory-unknown`` info, ``procedure-not-approved`` info);
- a lot drawn into a preparation or administered straight from the vial: R-FORM / R-SIGNAL
  (``lot-recalled``, ``lot-expired``, ``lot-beyond-use``, ``lot-insufficient``, all block);
- input limits shared by the API, the pages and the services: numbers the columns can hold exactly, dates a
  delivery can have, a beyond-use time a vial can have.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mesoclinic.accounts.rules import jurisdiction_covers
from mesoclinic.lib.findings import Finding
from mesoclinic.lib.text import fold

SEED_FORMULAS = "004_99daaf86bc4fb4d2.txt (no standard formula; every vial a lot with expiry)"
SOURCE_ALLERGY = "literature: product labels — contraindicated in hypersensitivity to any ingredient"
SOURCE_TERATOGEN = (
    "literature: finasteride (Propecia) and dutasteride (Avodart) labels — contraindicated in women who are "
    "or may become pregnant"
)
SOURCE_LOT = "domain.md R-FORM (001, 003, 004): expired or recalled lots cannot be charted"
SOURCE_RECALL = "domain.md R-SIGNAL: a recalled lot is blocked at once"
SOURCE_BEYOND_USE = "literature: USP <797> — a punctured multi-dose vial has a beyond-use date (28 days)"

STATUS_APPROVED = "approved"
STATUS_OTHER_INDICATION = "approved-other-indication"
STATUS_NOT_APPROVED = "not-approved"
STATUS_BANNED = "banned"
# Worst first: when several rows apply, the worst one speaks.
_STATUS_RANK = {STATUS_BANNED: 0, STATUS_NOT_APPROVED: 1, STATUS_OTHER_INDICATION: 2, STATUS_APPROVED: 3}


@dataclass(frozen=True)
class StatusFacts:
    """One RegulatoryStatus row. ``clinic``: the clinic's own configuration rather than a seeded row."""

    jurisdiction: str
    status: str
    use: str
    source: str
    indications: frozenset[str] = frozenset()  # empty: any use
    clinic: bool = False


@dataclass(frozen=True)
class CautionFacts:
    group: str  # allergy group code
    note: str
    source: str


@dataclass(frozen=True)
class IngredientFacts:
    code: str
    name: str
    allergy_groups: frozenset[str] = frozenset()
    cautions: tuple[CautionFacts, ...] = ()
    teratogen: bool = False
    statuses: tuple[StatusFacts, ...] = ()


@dataclass(frozen=True)
class PlannedFormulaFacts:
    """A formula version as the rules see it. ``procedure_statuses``: rows about mesotherapy mixtures as
    such (no ingredient), e.g. France's ban of fat lysis by mesotherapy mixtures."""

    name: str
    ingredients: tuple[IngredientFacts, ...]
    indications: frozenset[str] = frozenset()
    procedure_statuses: tuple[StatusFacts, ...] = ()
    version: int = 1


@dataclass(frozen=True)
class PatientFacts:
    """What the formula checks need to know about the patient (from the latest intake and the record).

    ``allergies``: the entries as the patient or staff wrote them ("soya milk", "Xylocaine at the dentist"),
    matched as whole words with accents and case ignored; allergy group codes ("soy",
    "amide-local-anaesthetics") and ingredient codes ("lidocaine") are matched too. ``pregnancy``: the
    intake's status ("none", "pregnant", "breastfeeding", "planning"). ``sex``: the record's ("female",
    "male", "other", "unknown"); anything but "male" may become pregnant."""

    allergies: Collection[str] = ()
    pregnancy: str = "none"
    sex: str = "unknown"

    @property
    def pregnant_or_planning(self) -> bool:
        return self.pregnancy in ("pregnant", "planning")


def _precedence(row: StatusFacts) -> tuple[int, bool, bool]:
    """How strongly a row speaks for a use it covers (see ``applicable_statuses``)."""
    return (len(row.jurisdiction), row.clinic, bool(row.indications))


def applicable_statuses(
    statuses: Iterable[StatusFacts], jurisdiction: str, indications: frozenset[str]
) -> list[StatusFacts]:
    """The rows that speak for this jurisdiction and these uses. A row is a candidate for a use when its
    jurisdiction covers the clinic's ("US" covers "US-NY") and it names that use or any use; for each use only
    the strongest candidates speak, in this order of precedence:

    1. the most specific jurisdiction (a "US-NY" row overrides the "US" rows);
    2. the clinic's own rows over the seeded ones (R-REG: jurisdiction rules are clinic configuration);
    3. a row naming the use over a row for any use (deoxycholic acid: approved for submental fat, off-label
       for anything else).

    With no use given (the catalogue page), every row that speaks for some use is returned."""
    covering = [row for row in statuses if jurisdiction_covers(row.jurisdiction, jurisdiction)]
    uses: list[str | None] = [*sorted(indications)]
    if not indications:
        uses = [None, *sorted({use for row in covering for use in row.indications})]
    chosen: list[StatusFacts] = []
    for use in uses:
        candidates = [row for row in covering if not row.indications or use in row.indications]
        if not candidates:
            continue
        best = max(_precedence(row) for row in candidates)
        chosen += [row for row in candidates if _precedence(row) == best and row not in chosen]
    return chosen


def worst_status(rows: Sequence[StatusFacts]) -> StatusFacts | None:
    if not rows:
        return None
    return min(rows, key=lambda row: (_STATUS_RANK.get(row.status, 1), row.jurisdiction))


def regulatory_findings(formula: PlannedFormulaFacts, jurisdiction: str) -> list[Finding]:
    """R-REG: what the clinic's jurisdiction says about each ingredient and about the mixture."""
    findings: list[Finding] = []
    procedure = worst_status(
        applicable_statuses(formula.procedure_statuses, jurisdiction, formula.indications)
    )
    if procedure is not None and procedure.status == STATUS_BANNED:
        findings.append(
            Finding(
                code="banned-in-jurisdiction",
                severity="block",
                rule="R-REG",
                message=_("%(formula)s: banned in %(jurisdiction)s — %(use)s.")
                % {"formula": formula.name, "jurisdiction": procedure.jurisdiction, "use": procedure.use},
                source=procedure.source,
            )
        )
    elif procedure is not None and procedure.status != STATUS_APPROVED:
        findings.append(
            Finding(
                code="procedure-not-approved",
                severity="info",
                rule="R-REG",
                message=_("%(formula)s: %(use)s (%(jurisdiction)s).")
                % {"formula": formula.name, "jurisdiction": procedure.jurisdiction, "use": procedure.use},
                source=procedure.source,
            )
        )
    for ingredient in formula.ingredients:
        row = worst_status(applicable_statuses(ingredient.statuses, jurisdiction, formula.indications))
        params = {"ingredient": ingredient.name, "jurisdiction": jurisdiction}
        if row is None:
            findings.append(
                Finding(
                    code="regulatory-unknown",
                    severity="info",
                    rule="R-REG",
                    message=_("%(ingredient)s: no regulatory status recorded for %(jurisdiction)s.") % params,
                    source="domain.md R-REG: the software never claims approval an ingredient lacks",
                )
            )
            continue
        params = {**params, "jurisdiction": row.jurisdiction, "use": row.use}
        if row.status == STATUS_BANNED:
            findings.append(
                Finding(
                    code="banned-in-jurisdiction",
                    severity="block",
                    rule="R-REG",
                    message=_("%(ingredient)s is banned in %(jurisdiction)s: %(use)s.") % params,
                    source=row.source,
                )
            )
        elif row.status == STATUS_NOT_APPROVED:
            findings.append(
                Finding(
                    code="not-approved",
                    severity="warn",
                    rule="R-REG",
                    message=_("%(ingredient)s is not approved in %(jurisdiction)s: %(use)s.") % params,
                    source=row.source,
                )
            )
        elif row.status == STATUS_OTHER_INDICATION:
            findings.append(
                Finding(
                    code="off-label",
                    severity="warn",
                    rule="R-REG",
                    message=_("%(ingredient)s is used off-label in %(jurisdiction)s (approved for: %(use)s).")
                    % params,
                    source=row.source,
                )
            )
    return findings


# --- allergies as people write them (R-CAND-ALLERGY, R-CAND-XALLERGY) ---------------------------------------

# How patients write the allergy groups (codes are matched too, hyphens read as spaces). Folded: no accents.
ALLERGY_GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "soy": ("soy", "soya", "soybean", "soybeans", "soja", "lecithin", "lecithine"),
    "bee-wasp-venom": (
        "bee",
        "bees",
        "wasp",
        "wasps",
        "venom",
        "hymenoptera",
        "abeille",
        "abeilles",
        "guepe",
        "guepes",
        "venin",
    ),
    "amide-local-anaesthetics": (
        "lidocaine",
        "lignocaine",
        "xylocaine",
        "articaine",
        "mepivacaine",
        "bupivacaine",
        "prilocaine",
        "ropivacaine",
        "emla",
        "local anaesthetic",
        "local anesthetic",
        "local anaesthetics",
        "local anesthetics",
        "anesthesique local",
        "anesthesiques locaux",
    ),
    "ester-local-anaesthetics": ("procaine", "benzocaine", "tetracaine", "novocaine", "chloroprocaine"),
    "paba": ("paba", "para-aminobenzoic", "aminobenzoic"),
    "aminoglycosides": (
        "aminoglycoside",
        "aminoglycosides",
        "gentamicin",
        "gentamicine",
        "neomycin",
        "tobramycin",
        "amikacin",
        "streptomycin",
    ),
    "fish": ("fish", "salmon", "poisson", "saumon"),
    "benzyl-alcohol": ("benzyl alcohol", "alcool benzylique"),
    "thyroid-hormones": ("levothyroxine", "thyroxine", "liothyronine", "levothyrox"),
    "xanthines": ("caffeine", "cafeine", "theophylline", "aminophylline", "xanthine", "xanthines"),
    "sulfonamides": ("sulfa", "sulfonamide", "sulfonamides", "sulphonamide", "sulphonamides"),
    "penicillins": ("penicillin", "penicillins", "penicilline", "amoxicillin", "amoxicilline"),
}


def _words(text: str) -> str:
    return " ".join(fold(text).replace("-", " ").split())


def mentions(text: str, term: str) -> bool:
    """Whether ``term`` appears as whole words in ``text`` (both folded; hyphens read as spaces)."""
    folded_term = _words(term)
    if not folded_term:
        return False
    return re.search(rf"(?<![a-z0-9]){re.escape(folded_term)}(?![a-z0-9])", _words(text)) is not None


def allergy_matches(allergies: Iterable[str], term: str) -> list[str]:
    """The allergy entries that name ``term`` (an ingredient code or name, or an allergy group code)."""
    words = (term, *ALLERGY_GROUP_WORDS.get(term, ()))
    return [entry for entry in allergies if any(mentions(entry, word) for word in words)]


def patient_findings(formula: PlannedFormulaFacts, patient: PatientFacts) -> list[Finding]:
    """R-CAND-ALLERGY, R-CAND-XALLERGY and R-CAND-ANDRO for each ingredient of the formula; each finding's
    subject is the ingredient code.

    - an allergy entry naming the ingredient (code or name) or one of its allergy groups blocks;
    - otherwise an entry naming a group of one of its cautions warns (one finding per ingredient);
    - a teratogen blocks for a patient who is pregnant or planning a pregnancy, and warns for anyone else who
      is not male (the clinician confirms she cannot become pregnant)."""
    findings: list[Finding] = []
    allergies = tuple(patient.allergies)
    for ingredient in formula.ingredients:
        terms = [ingredient.code, ingredient.name, *sorted(ingredient.allergy_groups)]
        matched = sorted({entry for term in terms for entry in allergy_matches(allergies, term)})
        if matched:
            findings.append(
                Finding(
                    code="allergy",
                    severity="block",
                    rule="R-CAND-ALLERGY",
                    message=_("Documented allergy (%(allergy)s) to %(ingredient)s in %(formula)s.")
                    % {"allergy": "; ".join(matched), "ingredient": ingredient.name, "formula": formula.name},
                    source=SOURCE_ALLERGY,
                    subject=ingredient.code,
                )
            )
        else:  # a block says it all; no caution on top for the same ingredient
            cautions = [
                (caution, entries)
                for caution in ingredient.cautions
                if (entries := allergy_matches(allergies, caution.group))
            ]
            if cautions:
                findings.append(
                    Finding(
                        code="allergy-caution",
                        severity="warn",
                        rule="R-CAND-XALLERGY",
                        message=" ".join(
                            _("%(ingredient)s with an allergy to %(allergy)s: %(note)s")
                            % {
                                "ingredient": ingredient.name,
                                "allergy": "; ".join(entries),
                                "note": caution.note,
                            }
                            for caution, entries in cautions
                        ),
                        source="; ".join(dict.fromkeys(caution.source for caution, _entries in cautions)),
                        subject=ingredient.code,
                    )
                )
        if ingredient.teratogen:
            findings.extend(_teratogen_findings(ingredient, patient))
    return findings


def _teratogen_findings(ingredient: IngredientFacts, patient: PatientFacts) -> list[Finding]:
    if patient.pregnant_or_planning:
        return [
            Finding(
                code="teratogen",
                severity="block",
                rule="R-CAND-ANDRO",
                message=_("%(ingredient)s must not be given to a patient who is or may become pregnant.")
                % {"ingredient": ingredient.name},
                source=SOURCE_TERATOGEN,
                subject=ingredient.code,
            )
        ]
    if patient.sex != "male":
        return [
            Finding(
                code="teratogen",
                severity="warn",
                rule="R-CAND-ANDRO",
                message=_("%(ingredient)s is for men only: confirm the patient cannot become pregnant.")
                % {"ingredient": ingredient.name},
                source=SOURCE_TERATOGEN,
                subject=ingredient.code,
            )
        ]
    return []


def _regulatory_by_subject(formula: PlannedFormulaFacts, jurisdiction: str) -> list[Finding]:
    """``regulatory_findings``, with each ingredient's findings carrying the ingredient code as subject (so
    that two ``off-label`` warnings are acknowledged one by one); the mixture's own findings come first."""
    mixture = regulatory_findings(replace(formula, ingredients=()), jurisdiction)
    per_ingredient = [
        replace(finding, subject=ingredient.code)
        for ingredient in formula.ingredients
        for finding in regulatory_findings(
            replace(formula, ingredients=(ingredient,), procedure_statuses=()), jurisdiction
        )
    ]
    return mixture + per_ingredient


def formula_findings(formula: PlannedFormulaFacts, patient: PatientFacts, jurisdiction: str) -> list[Finding]:
    """Everything there is to say about giving this formula to this patient in this jurisdiction: the one
    implementation, used by screening's ``formula`` parameter and by ``preparation_create``."""
    return patient_findings(formula, patient) + _regulatory_by_subject(formula, jurisdiction)


# --- lots, vials and draws -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotFacts:
    number: str
    expires_on: date
    recalled: bool
    available_ml: Decimal  # what this draw may take: the opened vial's remainder, or the lot's unopened stock
    vial_beyond_use_at: datetime | None = None  # the opened vial's beyond-use moment, if drawing from one
    recall_reason: str = ""


def lot_findings(lot: LotFacts, *, volume_ml: Decimal, today: date, now: datetime) -> list[Finding]:
    """Why this lot (or opened vial) cannot give ``volume_ml`` now; empty when it can. ``today`` is the
    clinic-local date: a lot is usable through its expiry date."""
    findings: list[Finding] = []
    params = {"lot": lot.number}
    if lot.recalled:
        findings.append(
            Finding(
                code="lot-recalled",
                severity="block",
                rule="R-SIGNAL",
                message=_("Lot %(lot)s is recalled: %(reason)s") % {**params, "reason": lot.recall_reason},
                source=SOURCE_RECALL,
            )
        )
    if today > lot.expires_on:
        findings.append(
            Finding(
                code="lot-expired",
                severity="block",
                rule="R-FORM",
                message=_("Lot %(lot)s expired on %(date)s.")
                % {**params, "date": lot.expires_on.isoformat()},
                source=SOURCE_LOT,
            )
        )
    if lot.vial_beyond_use_at is not None and now >= lot.vial_beyond_use_at:
        findings.append(
            Finding(
                code="lot-beyond-use",
                severity="block",
                rule="R-FORM",
                message=_("The opened vial of lot %(lot)s was past its beyond-use time (%(at)s).")
                % {**params, "at": lot.vial_beyond_use_at.isoformat(timespec="minutes")},
                source=SOURCE_BEYOND_USE,
            )
        )
    if volume_ml > lot.available_ml:
        findings.append(
            Finding(
                code="lot-insufficient",
                severity="block",
                rule="R-FORM",
                message=_("Lot %(lot)s has %(left)s mL left; %(wanted)s mL asked.")
                % {**params, "left": _fmt(lot.available_ml), "wanted": _fmt(volume_ml)},
                source=SEED_FORMULAS,
            )
        )
    return findings


def beyond_use_at(opened_at: datetime, beyond_use_hours: int) -> datetime:
    if not 0 < beyond_use_hours <= MAX_BEYOND_USE_HOURS:
        raise ValueError("beyond_use_hours out of range")
    return opened_at + timedelta(hours=beyond_use_hours)


def beyond_use_hours_problem(hours: object) -> str | None:
    """Why this cannot be a product's beyond-use time after opening (hours), or None."""
    if not isinstance(hours, int) or isinstance(hours, bool) or hours <= 0:
        return _("Give the hours a vial may be used after opening (more than zero).")
    if hours > MAX_BEYOND_USE_HOURS:
        return _(
            "At most %(hours)d hours (a year): an opened vial is not kept longer (USP <797>: 28 days for a "
            "multi-dose vial unless its label says otherwise)."
        ) % {"hours": MAX_BEYOND_USE_HOURS}
    return None


def single_dose_vials(volume_ml: Decimal, vial_volume_ml: Decimal) -> int:
    """Single-dose vials needed for a draw: each is punctured once and its remainder discarded."""
    if volume_ml <= 0 or vial_volume_ml <= 0:
        raise ValueError("volumes must be positive")
    return math.ceil(volume_ml / vial_volume_ml)


def _fmt(volume: Decimal) -> str:
    return format(volume.normalize(), "f")


# --- input checks shared by the API and the pages ---------------------------------------------------------

# A punctured vial is never kept a year (USP <797>: 28 days for a multi-dose vial unless the label says
# otherwise): a bigger number is a typing error, and would overflow the dates computed from it.
MAX_BEYOND_USE_HOURS = 8760
# A delivery recorded more than this long ago, or a lot expiring more than this long after its receipt, is a
# typing error (shelf lives of injectables are months to a few years).
MAX_LOT_AGE_DAYS = 3653
MAX_SHELF_LIFE_DAYS = 3653
MAX_VIALS_PER_LOT = 100_000


@dataclass(frozen=True)
class DecimalLimits:
    """What a decimal column holds exactly: ``max_digits`` digits, ``decimal_places`` of them decimals."""

    max_digits: int
    decimal_places: int

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimal_places)

    @property
    def maximum(self) -> Decimal:
        return Decimal(10) ** (self.max_digits - self.decimal_places) - self.quantum


VOLUME_LIMITS = DecimalLimits(max_digits=9, decimal_places=3)  # mL, to the microlitre
STRENGTH_LIMITS = DecimalLimits(max_digits=12, decimal_places=4)  # concentrations and strengths


def decimal_bounds_problem(value: Decimal, limits: DecimalLimits) -> str | None:
    """Why a finite number cannot be stored exactly: too big, or more decimals than the column keeps (it is
    refused rather than rounded: 0.00001 mg/mL must not become 0, nor 1.23456 become 1.2346)."""
    if abs(value) > limits.maximum:
        return _("At most %(maximum)s.") % {"maximum": format(limits.maximum, "f")}
    if value != value.quantize(limits.quantum):
        return ngettext(
            "At most %(places)d decimal place.", "At most %(places)d decimal places.", limits.decimal_places
        ) % {"places": limits.decimal_places}
    return None


def decimal_problem(value: Decimal | None, limits: DecimalLimits, *, signed: bool = False) -> str | None:
    """Why this cannot be a quantity of the column: missing, not a number, zero, negative (unless ``signed``),
    too big or too precise; None when it can."""
    if value is None or not value.is_finite():
        return _("Give a number.")
    if value == 0 or (value < 0 and not signed):
        return _("The quantity must be more than zero.")
    return decimal_bounds_problem(value, limits)


def lot_receipt_problems(
    *, number: str, expires_on: date, received_on: date, received_vials: object, today: date
) -> dict[str, list[str]]:
    """Field → messages for a delivery: a lot number, vials received, a receipt date that is not in the future
    nor years ago, an expiry on or after receipt and not decades later."""
    problems: dict[str, list[str]] = {}
    if not number:
        problems["number"] = [_("This field cannot be blank.")]
    if not isinstance(received_vials, int) or isinstance(received_vials, bool) or received_vials <= 0:
        problems["received_vials"] = [_("The quantity must be more than zero.")]
    elif received_vials > MAX_VIALS_PER_LOT:
        problems["received_vials"] = [_("At most %(count)d vials.") % {"count": MAX_VIALS_PER_LOT}]
    if received_on > today:
        problems["received_on"] = [_("The date of receipt is in the future.")]
    elif (today - received_on).days > MAX_LOT_AGE_DAYS:
        problems["received_on"] = [_("The date of receipt is more than ten years ago: check the year.")]
    if "received_on" in problems:
        pass  # the expiry is judged against a plausible receipt date only
    elif expires_on < received_on:
        problems["expires_on"] = [_("The expiry date is before the date of receipt.")]
    elif (expires_on - received_on).days > MAX_SHELF_LIFE_DAYS:
        problems["expires_on"] = [_("The expiry date is more than ten years after receipt: check the year.")]
    return problems


@dataclass(frozen=True)
class ComponentInput:
    ingredient_id: int | None
    concentration: Decimal | None
    unit: str


@dataclass(frozen=True)
class FormulaInput:
    components: tuple[ComponentInput, ...]
    total_volume_ml: Decimal | None
    indications: tuple[str, ...]
    known_units: frozenset[str] = field(default_factory=frozenset)
    known_indications: frozenset[str] = field(default_factory=frozenset)


def formula_input_problems(data: FormulaInput) -> dict[str, list[str]]:
    """Field → messages: no ingredients, concentrations without a unit, not positive or beyond what the column
    holds exactly, duplicates, a total volume that is not positive or out of range, no or unknown
    indications."""
    problems: dict[str, list[str]] = {}
    if not data.components:
        problems["components"] = [_("A formula needs at least one ingredient.")]
    seen: set[int] = set()
    for index, component in enumerate(data.components):
        prefix = f"components.{index}"
        if component.ingredient_id is None:
            problems[f"{prefix}.ingredient_id"] = [_("Choose an ingredient.")]
        elif component.ingredient_id in seen:
            problems[f"{prefix}.ingredient_id"] = [_("This ingredient is already in the formula.")]
        else:
            seen.add(component.ingredient_id)
        if component.concentration is None or not component.concentration.is_finite():
            problems[f"{prefix}.concentration"] = [_("Give the concentration.")]
        elif component.concentration <= 0:
            problems[f"{prefix}.concentration"] = [_("The concentration must be more than zero.")]
        elif (bounds := decimal_bounds_problem(component.concentration, STRENGTH_LIMITS)) is not None:
            problems[f"{prefix}.concentration"] = [bounds]
        if not component.unit:
            problems[f"{prefix}.unit"] = [_("A concentration needs a unit.")]
        elif data.known_units and component.unit not in data.known_units:
            problems[f"{prefix}.unit"] = [_("Unknown unit.")]
    if data.total_volume_ml is None or not data.total_volume_ml.is_finite():
        problems["total_volume_ml"] = [_("Give the total volume.")]
    elif data.total_volume_ml <= 0:
        problems["total_volume_ml"] = [_("The total volume must be more than zero.")]
    elif (bounds := decimal_bounds_problem(data.total_volume_ml, VOLUME_LIMITS)) is not None:
        problems["total_volume_ml"] = [bounds]
    if not data.indications:
        problems["indications"] = [_("Name at least one intended indication.")]
    elif data.known_indications and set(data.indications) - data.known_indications:
        problems["indications"] = [_("Unknown indication.")]
    return problems

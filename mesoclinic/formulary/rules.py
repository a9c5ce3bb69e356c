"""Pure formulary rules: plain dataclasses in, findings or values out. No ORM, no request, no clock.

- formula vs patient: R-CAND-ALLERGY (``allergy``, block), R-CAND-XALLERGY (``allergy-caution``, warn),
  R-CAND-ANDRO (``teratogen``, block);
- formula vs the clinic's jurisdiction: R-REG (``banned-in-jurisdiction`` block, ``not-approved`` warn,
  ``off-label`` warn, ``regulatory-unknown`` info, ``procedure-not-approved`` info);
- a lot drawn into a preparation: R-FORM / R-SIGNAL (``lot-recalled``, ``lot-expired``, ``lot-beyond-use``,
  ``lot-insufficient``, all block).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils.translation import gettext as _

from mesoclinic.accounts.rules import jurisdiction_covers
from mesoclinic.lib.findings import Finding

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
    """One RegulatoryStatus row."""

    jurisdiction: str
    status: str
    use: str
    source: str
    indications: frozenset[str] = frozenset()  # empty: any use


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
    """What the formula checks need to know about the patient. ``allergies`` holds allergy group codes
    ("soy", "amide-local-anaesthetics", "bee-wasp-venom"…) and/or ingredient codes ("lidocaine")."""

    allergies: frozenset[str] = frozenset()
    pregnant: bool = False
    may_become_pregnant: bool = False


def applicable_statuses(
    statuses: Iterable[StatusFacts], jurisdiction: str, indications: frozenset[str]
) -> list[StatusFacts]:
    """The rows that speak for this jurisdiction and use: rows whose jurisdiction covers the clinic's
    ("US" covers "US-NY") and whose indications meet the formula's (or are empty); of those, only the most
    specific jurisdiction's rows count (a "US-NY" row overrides the "US" rows)."""
    covering = [
        row
        for row in statuses
        if jurisdiction_covers(row.jurisdiction, jurisdiction)
        and (not row.indications or row.indications & indications)
    ]
    if not covering:
        return []
    most_specific = max(len(row.jurisdiction) for row in covering)
    return [row for row in covering if len(row.jurisdiction) == most_specific]


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


def patient_findings(formula: PlannedFormulaFacts, patient: PatientFacts) -> list[Finding]:
    """R-CAND-ALLERGY, R-CAND-XALLERGY and R-CAND-ANDRO for each ingredient of the formula."""
    findings: list[Finding] = []
    allergies = frozenset(code.strip().lower() for code in patient.allergies)
    for ingredient in formula.ingredients:
        matched = sorted((ingredient.allergy_groups | {ingredient.code}) & allergies)
        if matched:
            findings.append(
                Finding(
                    code="allergy",
                    severity="block",
                    rule="R-CAND-ALLERGY",
                    message=_("Documented allergy (%(allergy)s) to %(ingredient)s in %(formula)s.")
                    % {"allergy": ", ".join(matched), "ingredient": ingredient.name, "formula": formula.name},
                    source=SOURCE_ALLERGY,
                )
            )
            continue  # a block says it all; no caution on top for the same ingredient
        for caution in ingredient.cautions:
            if caution.group in allergies:
                findings.append(
                    Finding(
                        code="allergy-caution",
                        severity="warn",
                        rule="R-CAND-XALLERGY",
                        message=_("%(ingredient)s with a %(allergy)s allergy: %(note)s")
                        % {"ingredient": ingredient.name, "allergy": caution.group, "note": caution.note},
                        source=caution.source,
                    )
                )
        if ingredient.teratogen and (patient.pregnant or patient.may_become_pregnant):
            findings.append(
                Finding(
                    code="teratogen",
                    severity="block",
                    rule="R-CAND-ANDRO",
                    message=_("%(ingredient)s must not be given to a patient who is or may become pregnant.")
                    % {"ingredient": ingredient.name},
                    source=SOURCE_TERATOGEN,
                )
            )
    return findings


def formula_findings(formula: PlannedFormulaFacts, patient: PatientFacts, jurisdiction: str) -> list[Finding]:
    """Everything the formulary says about giving this formula to this patient in this jurisdiction.
    Screening's ``formula`` parameter calls this."""
    return patient_findings(formula, patient) + regulatory_findings(formula, jurisdiction)


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
    return opened_at + timedelta(hours=beyond_use_hours)


def single_dose_vials(volume_ml: Decimal, vial_volume_ml: Decimal) -> int:
    """Single-dose vials needed for a draw: each is punctured once and its remainder discarded."""
    if volume_ml <= 0 or vial_volume_ml <= 0:
        raise ValueError("volumes must be positive")
    return math.ceil(volume_ml / vial_volume_ml)


def _fmt(volume: Decimal) -> str:
    return format(volume.normalize(), "f")


# --- input checks shared by the API and the pages ---------------------------------------------------------


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
    """Field → messages: no ingredients, concentrations without a unit or not positive, duplicates, a total
    volume that is not positive, no or unknown indications."""
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
        if not component.unit:
            problems[f"{prefix}.unit"] = [_("A concentration needs a unit.")]
        elif data.known_units and component.unit not in data.known_units:
            problems[f"{prefix}.unit"] = [_("Unknown unit.")]
    if data.total_volume_ml is None or not data.total_volume_ml.is_finite():
        problems["total_volume_ml"] = [_("Give the total volume.")]
    elif data.total_volume_ml <= 0:
        problems["total_volume_ml"] = [_("The total volume must be more than zero.")]
    if not data.indications:
        problems["indications"] = [_("Name at least one intended indication.")]
    elif data.known_indications and set(data.indications) - data.known_indications:
        problems["indications"] = [_("Unknown indication.")]
    return problems

"""Consent and patient education: pure rules over plain facts. No ORM, no request, no clock.

- R-PRE-CONSENT: a session needs a signed, countersigned consent for *this* plan that is neither withdrawn nor
  expired (a clinic-set number of months, default 12) and that covers the plan as it is now: the consent
  keeps a fingerprint of the plan's indication, treated areas and formulas (every ingredient, strength and
  the diluent of their current versions); any change ends it. Otherwise the gate answers ``no-consent``
  (block), saying why.
- R-REG: each ingredient of the plan's formulas is shown with the status the clinic's jurisdiction gives it
  for the plan's indication (``formulary.rules``); with no status recorded the consent says it is *not known
  to be approved* — it never claims an approval an ingredient lacks. A banned ingredient or mixture refuses
  the consent.
- R-COST: the cost range is the clinic's price per session times the protocol's fewest and most sessions,
  and the plan's planned number; money is ``Decimal`` in the clinic's currency.
- R-EDU: articles and templates are chosen by precedence (the plan's indication over "every indication", the
  most specific jurisdiction, the clinic's own over the seeded text) and filled with the clinic's data.
- The signed text is canonical plain text (``#`` title, ``##`` headings, ``- `` bullets, blank lines between
  paragraphs); pages and the PDF are drawn from that stored text, so what is shown is what was hashed.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from mesoclinic.accounts.rules import jurisdiction_covers
from mesoclinic.formulary import rules as formulary_rules
from mesoclinic.lib.findings import Finding
from mesoclinic.lib.text import fold

SOURCE_CONSENT = (
    "domain.md R-PRE-CONSENT (standard practice): signed, current consent before the first session"
)
SEED_COST = "seeds 003, 004: $250–$350 and $250–$600 per session; insurance usually does not cover it"

JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
MAX_TEXT = 20_000  # one template section or article body
MAX_TYPED_NAME = 200
# ISO 4217 currencies without minor units (the rest are quantised to cents).
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "ISK", "VND", "XOF", "XAF", "UGX", "PYG"})


# --- dates --------------------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it is shorter (31 Jan + 1 → 28/29 Feb)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def valid_until(signed_on: date, months: int) -> date:
    """The last day a consent signed on ``signed_on`` covers: the day before that date ``months`` later."""
    return add_months(signed_on, months) - timedelta(days=1)


# --- what a consent covers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormulaCover:
    formula_id: int
    name: str
    version: int
    components: tuple[tuple[str, str, str], ...]  # (ingredient code, concentration, unit)
    diluent: str = ""


@dataclass(frozen=True)
class Cover:
    """What a consent is about: the plan's indication, areas and formulas as they are."""

    indication: str
    areas: tuple[str, ...]
    formulas: tuple[FormulaCover, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "indication": self.indication,
            "areas": sorted(self.areas),
            "formulas": [
                {
                    "id": item.formula_id,
                    "name": item.name,
                    "version": item.version,
                    "components": [list(component) for component in sorted(item.components)],
                    "diluent": item.diluent,
                }
                for item in sorted(self.formulas, key=lambda item: item.formula_id)
            ],
        }


def _comparable(covers: Mapping[str, Any]) -> dict[str, Any]:
    formulas = covers.get("formulas")
    return {
        "indication": covers.get("indication"),
        "areas": sorted(covers.get("areas") or []),
        "formulas": [
            {key: value for key, value in row.items() if key != "name"}
            for row in (formulas if isinstance(formulas, list) else [])
            if isinstance(row, dict)
        ],
    }


def fingerprint(cover: Cover) -> str:
    """SHA-256 of the cover in a canonical form: the same plan always gives the same fingerprint, whatever
    the order its parts come in. Names are left out (renaming a formula changes nothing injected)."""
    canonical = json.dumps(
        _comparable(cover.as_dict()), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def cover_changes(before: Mapping[str, Any], now: Cover) -> list[str]:
    """What changed since the consent, in words (the indication, the treated areas, the formula)."""
    old, new = _comparable(before), _comparable(now.as_dict())
    changes: list[str] = []
    if old["indication"] != new["indication"]:
        changes.append(_("the indication"))
    if old["areas"] != new["areas"]:
        changes.append(_("the treated areas"))
    if old["formulas"] != new["formulas"]:
        changes.append(_("the formula"))
    return changes


# --- validity and the check-in gate -------------------------------------------------------------------------

State = Literal["valid", "awaiting-countersignature", "expired", "withdrawn", "plan-changed", "not-yet"]


@dataclass(frozen=True)
class ConsentFacts:
    consent_id: int
    signed_on: date
    valid_until: date
    countersigned: bool
    withdrawn_on: date | None
    fingerprint: str


def consent_state(consent: ConsentFacts, *, on: date, current_fingerprint: str) -> State:
    """Whether this consent covers a session of the plan on ``on``, and if not, the first reason."""
    if consent.withdrawn_on is not None:
        return "withdrawn"
    if consent.fingerprint != current_fingerprint:
        return "plan-changed"
    if on > consent.valid_until:
        return "expired"
    if on < consent.signed_on:
        return "not-yet"
    if not consent.countersigned:
        return "awaiting-countersignature"
    return "valid"


def _day(value: date) -> str:
    return date_format(value, "DATE_FORMAT")


def gate_findings(consents: Sequence[ConsentFacts], *, on: date, current_fingerprint: str) -> list[Finding]:
    """R-PRE-CONSENT for a session on ``on``: an ``info`` naming the consent that covers it, or a ``block``
    ``no-consent`` that says what is missing (about the most recent consent)."""
    states = [
        (consent, consent_state(consent, on=on, current_fingerprint=current_fingerprint))
        for consent in consents
    ]
    for consent, state in states:
        if state == "valid":
            return [
                Finding(
                    "consent-valid",
                    "info",
                    "R-PRE-CONSENT",
                    _("Consent signed on %(signed)s covers this plan until %(until)s.")
                    % {"signed": _day(consent.signed_on), "until": _day(consent.valid_until)},
                    SOURCE_CONSENT,
                )
            ]
    if not states:
        message = _("No signed consent covers this plan: the patient reads and signs it first.")
    else:
        consent, state = max(states, key=lambda pair: (pair[0].signed_on, pair[0].consent_id))
        params = {"signed": _day(consent.signed_on), "until": _day(consent.valid_until)}
        messages = {
            "awaiting-countersignature": _(
                "The patient signed the consent on %(signed)s; it waits for the practitioner's "
                "countersignature."
            ),
            "expired": _(
                "The consent signed on %(signed)s expired after %(until)s: the patient signs a new one."
            ),
            "withdrawn": _("The patient withdrew the consent signed on %(signed)s."),
            "plan-changed": _(
                "The plan's formula, indication or areas changed after the consent of %(signed)s: "
                "the patient signs a new one."
            ),
            "not-yet": _("The consent was signed on %(signed)s, after the session date."),
        }
        message = messages[state] % params
    return [Finding("no-consent", "block", "R-PRE-CONSENT", message, SOURCE_CONSENT)]


# --- choosing content: templates and articles ---------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A template or an article as the choice sees it."""

    key: int
    clinic_owned: bool
    indication: str = ""
    jurisdiction: str = ""


def choose(candidates: Iterable[Candidate], *, indication: str, jurisdiction: str = "") -> int | None:
    """The key of the text that speaks for this plan, by precedence: the plan's indication over "every
    indication", then the most specific jurisdiction that covers the clinic's ("US-NY" over "US" over any),
    then the clinic's own over the seeded text; the lowest key breaks a tie."""
    best: Candidate | None = None
    best_rank: tuple[bool, int, bool, int] | None = None
    for candidate in candidates:
        if candidate.indication not in ("", indication):
            continue
        if candidate.jurisdiction and not jurisdiction_covers(candidate.jurisdiction, jurisdiction):
            continue
        rank = (
            bool(candidate.indication),
            len(candidate.jurisdiction),
            candidate.clinic_owned,
            -candidate.key,
        )
        if best_rank is None or rank > best_rank:
            best, best_rank = candidate, rank
    return best.key if best is not None else None


# --- placeholders and the canonical text --------------------------------------------------------------------

PLACEHOLDERS = ("clinic_name", "clinic_phone", "price_per_session")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace the known placeholders ({clinic_name}, {clinic_phone}, {price_per_session}); anything else in
    braces stays as written."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def normalise(text: str) -> str:
    """One form for stored text: Unix newlines, no trailing spaces, at most one blank line in a row."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def text_problem(text: str, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
    if required and not text.strip():
        return _("This field cannot be blank.")
    if len(text) > limit:
        return _("At most %(count)d characters.") % {"count": limit}
    if "\x00" in text:
        return _("This text contains a character that cannot be stored.")
    return None


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


BlockKind = Literal["title", "heading", "paragraph", "list"]


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def blocks(text: str) -> list[Block]:
    """The canonical text as blocks for a page or a PDF: ``# `` a title, ``## `` a heading, a run of ``- ``
    lines a list, anything else a paragraph (consecutive lines joined)."""
    found: list[Block] = []
    paragraph: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if paragraph:
            found.append(Block("paragraph", (" ".join(paragraph),)))
            paragraph.clear()
        if items:
            found.append(Block("list", tuple(items)))
            items.clear()

    for raw in normalise(text).split("\n"):
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("## "):
            flush()
            found.append(Block("heading", (line[3:].strip(),)))
        elif line.startswith("# "):
            flush()
            found.append(Block("title", (line[2:].strip(),)))
        elif line.startswith("- "):
            if paragraph:
                flush()
            items.append(line[2:].strip())
        else:
            if items:
                flush()
            paragraph.append(line)
    flush()
    return found


def plain_text(text: str) -> str:
    """An article as plain text for a message: headings and bullets kept readable, no markup."""
    out: list[str] = []
    for block in blocks(text):
        if block.kind == "list":
            out.append("\n".join(f"• {item}" for item in block.lines))
        elif block.kind in ("title", "heading"):
            out.append(block.text.upper() if block.kind == "title" else block.text)
        else:
            out.append(block.text)
    return "\n\n".join(out)


# --- money (R-COST) -----------------------------------------------------------------------------------------


def money_quantum(currency: str) -> Decimal:
    return Decimal("1") if currency.upper() in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")


def format_money(amount: Decimal, currency: str) -> str:
    """``1,750.00 USD`` in English, ``1 750,00 USD`` in French (the active language's format)."""
    quantum = money_quantum(currency)
    places = 0 if quantum == 1 else 2
    value = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{number_format(value, places, use_l10n=True, force_grouping=True)} {currency.upper()}"


@dataclass(frozen=True)
class CostRange:
    price_per_session: Decimal
    fewest: Decimal  # price × the protocol's fewest sessions
    most: Decimal  # price × the protocol's most sessions
    planned: Decimal  # price × the plan's planned sessions


def cost_range(
    price_per_session: Decimal, *, sessions_min: int, sessions_max: int, planned_sessions: int, currency: str
) -> CostRange:
    """R-COST: the total for the fewest, the most and the planned number of sessions, in the currency's
    minor unit (half up)."""
    if not price_per_session.is_finite() or price_per_session <= 0:
        raise ValueError("price_per_session must be positive")
    if not 1 <= sessions_min <= sessions_max or planned_sessions < 1:
        raise ValueError("sessions out of range")
    quantum = money_quantum(currency)

    def times(count: int) -> Decimal:
        return (price_per_session * count).quantize(quantum, rounding=ROUND_HALF_UP)

    return CostRange(
        price_per_session=price_per_session.quantize(quantum, rounding=ROUND_HALF_UP),
        fewest=times(sessions_min),
        most=times(sessions_max),
        planned=times(planned_sessions),
    )


def price_for(prices: Mapping[str, Decimal], indication: str) -> Decimal | None:
    """The clinic's price for this indication, else its default ("" key), else none."""
    return prices.get(indication, prices.get(""))


def price_problem(value: object) -> str | None:
    try:
        price = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return _("Give a price, e.g. 350.00.")
    if not price.is_finite() or price <= 0:
        return _("A price is more than zero.")
    if price > Decimal("99999999.99") or price != price.quantize(Decimal("0.01")):
        return _("At most 99,999,999.99, to the cent.")
    return None


# --- regulatory status in words (R-REG) ---------------------------------------------------------------------


@dataclass(frozen=True)
class IngredientStatus:
    name: str
    status: str  # formulary.rules STATUS_* or "unknown"
    jurisdiction: str
    use: str = ""


def ingredient_statuses(
    formula: formulary_rules.PlannedFormulaFacts, *, jurisdiction: str, indication: str
) -> list[IngredientStatus]:
    """Each ingredient with the worst status the jurisdiction gives it for this indication (the same choice
    as ``formulary.rules.regulatory_findings``), or ``unknown``."""
    uses = frozenset({indication}) if indication else formula.indications
    lines: list[IngredientStatus] = []
    for ingredient in formula.ingredients:
        row = formulary_rules.worst_status(
            formulary_rules.applicable_statuses(ingredient.statuses, jurisdiction, uses)
        )
        if row is None:
            lines.append(IngredientStatus(ingredient.name, "unknown", jurisdiction))
        else:
            lines.append(IngredientStatus(ingredient.name, row.status, row.jurisdiction, row.use))
    return lines


def procedure_status(
    formula: formulary_rules.PlannedFormulaFacts, *, jurisdiction: str, indication: str
) -> IngredientStatus:
    uses = frozenset({indication}) if indication else formula.indications
    row = formulary_rules.worst_status(
        formulary_rules.applicable_statuses(formula.procedure_statuses, jurisdiction, uses)
    )
    label = _("Mesotherapy as a procedure")
    if row is None:
        return IngredientStatus(label, "unknown", jurisdiction)
    return IngredientStatus(label, row.status, row.jurisdiction, row.use)


def status_sentence(line: IngredientStatus) -> str:
    params = {"name": line.name, "jurisdiction": line.jurisdiction, "use": line.use}
    if line.status == formulary_rules.STATUS_APPROVED:
        return _("%(name)s: approved in %(jurisdiction)s for %(use)s.") % params
    if line.status == formulary_rules.STATUS_OTHER_INDICATION:
        return (
            _("%(name)s: approved in %(jurisdiction)s for another use (%(use)s); its use here is off-label.")
            % params
        )
    if line.status == formulary_rules.STATUS_BANNED:
        return _("%(name)s: banned in %(jurisdiction)s for this use (%(use)s).") % params
    if line.status == formulary_rules.STATUS_NOT_APPROVED:
        return _("%(name)s: not approved in %(jurisdiction)s (%(use)s).") % params
    return (
        _(
            "%(name)s: no regulatory status is recorded for %(jurisdiction)s, so it is not known to be "
            "approved."
        )
        % params
    )


def regulatory_blocks(
    formulas: Sequence[formulary_rules.PlannedFormulaFacts], *, jurisdiction: str, indication: str
) -> list[Finding]:
    """R-REG: what refuses a consent — a banned ingredient or mixture for the plan's indication."""
    found: list[Finding] = []
    for formula in formulas:
        uses = frozenset({indication}) if indication else formula.indications
        for finding in formulary_rules.regulatory_findings(
            formulary_rules.PlannedFormulaFacts(
                name=formula.name,
                ingredients=formula.ingredients,
                indications=uses,
                procedure_statuses=formula.procedure_statuses,
                version=formula.version,
            ),
            jurisdiction,
        ):
            if finding.severity == "block":
                found.append(finding)
    return found


# --- the consent document -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormulaText:
    name: str
    version: int
    ingredients: tuple[IngredientStatus, ...]
    procedure: IngredientStatus | None = None


def formula_texts(
    formulas: Sequence[formulary_rules.PlannedFormulaFacts], *, jurisdiction: str, indication: str
) -> tuple[FormulaText, ...]:
    """What the consent says of each planned formula: its ingredients' and the procedure's regulatory
    status in ``jurisdiction`` for ``indication`` (in the active language)."""
    return tuple(
        FormulaText(
            name=item.name,
            version=item.version,
            ingredients=tuple(ingredient_statuses(item, jurisdiction=jurisdiction, indication=indication)),
            procedure=procedure_status(item, jurisdiction=jurisdiction, indication=indication),
        )
        for item in formulas
    )


@dataclass(frozen=True)
class ConsentParts:
    """Everything a consent says, already in the patient's language except the sentences this module
    writes."""

    title: str
    clinic_name: str
    clinic_phone: str
    patient_name: str
    date_of_birth: date
    record_number: str
    on: date
    valid_until: date
    validity_months: int
    protocol_name: str
    indication_label: str
    areas: tuple[str, ...]
    combined: tuple[str, ...]
    procedure: str
    risks: str
    evidence: str
    declaration: str
    formulas: tuple[FormulaText, ...]
    alternatives: tuple[str, ...]
    sessions_min: int
    sessions_max: int
    planned_sessions: int
    interval_min_days: int
    interval_max_days: int
    currency: str
    price_per_session: Decimal | None = None
    template_label: str = ""
    extra: tuple[str, ...] = field(default_factory=tuple)


def consent_text(parts: ConsentParts) -> str:
    """The consent in canonical text: what the patient reads, what is hashed, stored and printed."""
    out: list[str] = [f"# {parts.title}", ""]
    out.append(
        _("%(clinic)s · %(patient)s, born %(born)s (record %(record)s) · %(day)s")
        % {
            "clinic": parts.clinic_name,
            "patient": parts.patient_name,
            "born": _day(parts.date_of_birth),
            "record": parts.record_number,
            "day": _day(parts.on),
        }
    )
    out += ["", "## " + _("The procedure"), "", parts.procedure, ""]
    out += ["## " + _("Your treatment plan"), ""]
    out.append("- " + _("Protocol: %(name)s") % {"name": parts.protocol_name})
    out.append("- " + _("Indication: %(name)s") % {"name": parts.indication_label})
    out.append("- " + _("Areas treated: %(areas)s") % {"areas": ", ".join(parts.areas) or "—"})
    if parts.combined:
        out.append("- " + _("Combined with: %(items)s") % {"items": ", ".join(parts.combined)})
    out.append("")
    out += ["## " + _("What will be injected, and its regulatory status"), ""]
    if not parts.formulas:
        out += [
            _(
                "No formula is recorded in the plan yet. Your practitioner names every ingredient before the "
                "first session; the consent is then signed again."
            ),
            "",
        ]
    for formula in parts.formulas:
        out.append(
            _("%(formula)s (version %(version)d) contains:")
            % {"formula": formula.name, "version": formula.version}
        )
        out += ["- " + status_sentence(line) for line in formula.ingredients]
        if formula.procedure is not None:
            out.append("- " + status_sentence(formula.procedure))
        out.append("")
    out += ["## " + _("Risks and side effects"), "", parts.risks, ""]
    out += ["## " + _("What the evidence says"), "", parts.evidence, ""]
    out += ["## " + _("Alternatives"), ""]
    out += ["- " + item for item in parts.alternatives]
    out.append("- " + _("Not having this treatment."))
    out.append("")
    out += ["## " + _("Sessions"), ""]
    out.append(
        _(
            "The protocol foresees %(min)d to %(max)d sessions, %(imin)d to %(imax)d days apart at first; "
            "your "
            "plan has %(planned)d. Each session waits until any bruising from the last one has gone."
        )
        % {
            "min": parts.sessions_min,
            "max": parts.sessions_max,
            "imin": parts.interval_min_days,
            "imax": parts.interval_max_days,
            "planned": parts.planned_sessions,
        }
    )
    out += ["", "## " + _("Costs"), ""]
    if parts.price_per_session is None:
        out.append(_("The clinic has not set a price per session: ask for a written quote before you sign."))
    else:
        costs = cost_range(
            parts.price_per_session,
            sessions_min=parts.sessions_min,
            sessions_max=parts.sessions_max,
            planned_sessions=parts.planned_sessions,
            currency=parts.currency,
        )
        out.append(
            _(
                "One session costs %(price)s. For %(min)d to %(max)d sessions that is %(low)s to %(high)s in "
                "all; the %(planned)d sessions of your plan cost %(total)s."
            )
            % {
                "price": format_money(costs.price_per_session, parts.currency),
                "min": parts.sessions_min,
                "max": parts.sessions_max,
                "low": format_money(costs.fewest, parts.currency),
                "high": format_money(costs.most, parts.currency),
                "planned": parts.planned_sessions,
                "total": format_money(costs.planned, parts.currency),
            }
        )
    out.append(
        _(
            "Mesotherapy is cosmetic: health insurance usually does not cover it. Combined procedures are "
            "priced separately."
        )
    )
    out += ["", "## " + _("How long this consent lasts"), ""]
    out.append(
        _(
            "This consent covers this treatment plan only, until %(until)s (%(months)d months). It ends "
            "earlier if the plan's formula, indication or treated areas change, and you may withdraw it at "
            "any time in the portal or by telling the clinic; withdrawing does not affect care already given."
        )
        % {"until": _day(parts.valid_until), "months": parts.validity_months}
    )
    for line in parts.extra:
        out += ["", line]
    out += ["", "## " + _("Your declaration"), "", parts.declaration]
    if parts.template_label:
        out += ["", parts.template_label]
    return normalise("\n".join(out))


# --- the signature (typed name) -----------------------------------------------------------------------------


def typed_name_problem(typed: str, *, given_name: str, family_name: str) -> str | None:
    """The typed name must be there and name the patient (their family name, accents and case ignored)."""
    text = " ".join(typed.split())
    if not text:
        return _("Type your full name.")
    if len(text) > MAX_TYPED_NAME:
        return _("At most %(count)d characters.") % {"count": MAX_TYPED_NAME}
    if "\x00" in text:
        return _("This text contains a character that cannot be stored.")
    family = fold(family_name)
    if family and f" {family} " not in f" {fold(text)} ":
        return _("Type the name on the patient's record (%(name)s).") % {
            "name": f"{given_name} {family_name}"
        }
    return None

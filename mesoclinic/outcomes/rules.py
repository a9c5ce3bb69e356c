"""Outcome measures, change from baseline and responder status: pure rules over plain values.

No ORM, no request, no clock. Rules (domain.md):

- R-OUT: every built-in scale is data here (``SCALES``): its range, step, unit, the direction that is better,
  its version and its LOINC code where one exists. A score is stored with its scale and version; GAIS may be
  recorded reversed by a clinic (5 = very much improved), so values are turned to the standard orientation
  (``standard_value``) before any comparison. Values outside a scale's range are invalid input.
- R-EVID: a plan records a baseline and repeated measurements; change from baseline is computed per series
  (a measure at one marked landmark); the responder rule of the protocol (``RESPONDER_RULES``, by protocol
  code, with a default built from the protocol's measures) says whether the patient responds; after the
  protocol's number of sessions without response the patient is a non-responder (``non-responder``, warn)
  and is shown the protocol's alternatives (R-ALT).
- The improvement that lets intervals taper (R-SERIES) is ``improved_series``: any measure better than its
  baseline by at least its meaningful change (GAIS: "improved" or better).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from mesoclinic.lib.findings import Finding

Direction = Literal["lower", "higher", "none"]
Kind = Literal["quantity", "grade", "items"]
Rater = Literal["clinician", "patient", "any"]
Status = Literal["responder", "non-responder", "not-yet", "not-measured"]
Verdict = Literal["better", "worse", "same", "none"]

SOURCE_EVID = "domain.md R-EVID (seeds 000, 002, 004)"
SOURCE_OUT = "domain.md R-OUT (literature)"
SOURCE_REFINE = "REFINE-1 trial (deoxycholic acid): responder = ≥ 1 grade better on CR-SMFRS and PR-SMFRS"

# The GAIS as published: 1 very much improved … 5 worse. Some clinics record it the other way round.
GAIS_VERSION = "GAIS 5-point v1 (1 = very much improved)"
GAIS_REVERSED_VERSION = "GAIS 5-point v1 reversed (5 = very much improved)"

ROMAN = {0: "0", 1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII"}
GAIS_REVERSED_GRADES = (
    (1, gettext_noop("1 — worse")),
    (2, gettext_noop("2 — no change")),
    (3, gettext_noop("3 — improved")),
    (4, gettext_noop("4 — much improved")),
    (5, gettext_noop("5 — very much improved")),
)


@dataclass(frozen=True)
class Scale:
    """One built-in measure (R-OUT). ``step`` is the resolution values are kept at; grades are whole
    numbers. ``meaningful`` is the smallest change counted as improvement (``meaningful_percent`` instead,
    when the scale is relative, as hair density). ``rates_change``: the score itself rates the change since
    baseline (GAIS) or the treatment (satisfaction), so it is not taken at baseline."""

    code: str
    name: str
    kind: Kind
    minimum: Decimal
    maximum: Decimal
    step: Decimal
    unit: str
    version: str
    better: Direction
    source: str
    meaningful: Decimal = Decimal(0)
    meaningful_percent: Decimal | None = None
    loinc: str = ""
    rater: Rater = "any"
    grades: tuple[tuple[int, str], ...] = ()
    roman: bool = False
    items: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (item, labels of 0…3)
    landmark: bool = False
    rates_change: bool = False
    improved_at_most: Decimal | None = None  # a change-rating scale: this value or better is improvement
    derived: bool = False  # computed, never entered (BMI)

    @property
    def label(self) -> str:
        return _(self.name)

    def grade_label(self, value: int) -> str:
        return _(dict(self.grades).get(value, "")) if self.grades else ""

    def display(self, value: Decimal) -> str:
        """A value as the scale writes it: a Roman grade, a whole score, or a quantity with its unit."""
        if self.kind in ("grade", "items"):
            number = int(value)
            return ROMAN.get(number, str(number)) if self.roman else str(number)
        shown = value.quantize(self.step, rounding=ROUND_HALF_UP)
        text = f"{shown.to_integral_value():f}" if shown == shown.to_integral_value() else f"{shown:f}"
        return f"{text} {self.unit_label}".strip()

    @property
    def unit_label(self) -> str:
        return {"kg/m2": "kg/m²", "/cm2": "hairs/cm²", "{score}": ""}.get(self.unit, self.unit)


def _d(text: str) -> Decimal:
    return Decimal(text)


_HEXSEL_ITEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        gettext_noop("Number of evident depressions"),
        (gettext_noop("None"), gettext_noop("1 to 4"), gettext_noop("5 to 9"), gettext_noop("10 or more")),
    ),
    (
        gettext_noop("Depth of depressions"),
        (gettext_noop("None"), gettext_noop("Superficial"), gettext_noop("Medium"), gettext_noop("Deep")),
    ),
    (
        gettext_noop("Appearance of the skin surface"),
        (
            gettext_noop("No raised areas"),
            gettext_noop("Orange-peel"),
            gettext_noop("Cottage cheese"),
            gettext_noop("Mattress"),
        ),
    ),
    (
        gettext_noop("Laxity, flaccidity or sagging"),
        (
            gettext_noop("Absent"),
            gettext_noop("Slightly draped"),
            gettext_noop("Moderately draped"),
            gettext_noop("Severely draped"),
        ),
    ),
    (
        gettext_noop("Nürnberger-Müller grade"),
        (gettext_noop("0"), gettext_noop("I"), gettext_noop("II"), gettext_noop("III")),
    ),
)

_SMFRS = (
    (0, gettext_noop("0 — absent")),
    (1, gettext_noop("1 — mild")),
    (2, gettext_noop("2 — moderate")),
    (3, gettext_noop("3 — severe")),
    (4, gettext_noop("4 — extreme")),
)


def _circumference(code: str, name: str, loinc: str = "") -> Scale:
    return Scale(
        code=code,
        name=name,
        kind="quantity",
        minimum=_d("5"),
        maximum=_d("250"),
        step=_d("0.1"),
        unit="cm",
        version="tape at a marked landmark v1",
        better="lower",
        meaningful=_d("1"),
        loinc=loinc,
        rater="clinician",
        landmark=True,
        source=SOURCE_OUT,
    )


SCALES: dict[str, Scale] = {
    scale.code: scale
    for scale in (
        Scale(
            code="weight",
            name=gettext_noop("Weight"),
            kind="quantity",
            minimum=_d("20"),
            maximum=_d("350"),
            step=_d("0.1"),
            unit="kg",
            version="scale v1",
            better="none",  # body contouring asks for a stable weight (000): weight is watched, not a goal
            loinc="29463-7",
            source=SOURCE_OUT,
        ),
        Scale(
            code="height",
            name=gettext_noop("Height"),
            kind="quantity",
            minimum=_d("50"),
            maximum=_d("250"),
            step=_d("0.1"),
            unit="cm",
            version="stadiometer v1",
            better="none",
            loinc="8302-2",
            source=SOURCE_OUT,
        ),
        Scale(
            code="bmi",
            name=gettext_noop("Body mass index"),
            kind="quantity",
            minimum=_d("5"),
            maximum=_d("150"),
            step=_d("0.1"),
            unit="kg/m2",
            version="weight / height² v1",
            better="none",
            loinc="39156-5",
            derived=True,
            source=SOURCE_OUT,
        ),
        _circumference("waist-circumference", gettext_noop("Waist circumference"), "8280-0"),
        _circumference("hip-circumference", gettext_noop("Hip circumference")),
        _circumference("thigh-circumference", gettext_noop("Thigh circumference")),
        _circumference("arm-circumference", gettext_noop("Arm circumference")),
        Scale(
            code="fat-thickness",
            name=gettext_noop("Ultrasound fat thickness"),
            kind="quantity",
            minimum=_d("0.5"),
            maximum=_d("150"),
            step=_d("0.1"),
            unit="mm",
            version="B-mode ultrasound at a marked landmark v1",
            better="lower",
            meaningful=_d("2"),
            rater="clinician",
            landmark=True,
            source=SOURCE_OUT,
        ),
        Scale(
            code="gais",
            name=gettext_noop("Global Aesthetic Improvement Scale (GAIS)"),
            kind="grade",
            minimum=_d("1"),
            maximum=_d("5"),
            step=_d("1"),
            unit="{score}",
            version=GAIS_VERSION,
            better="lower",
            rater="any",
            grades=(
                (1, gettext_noop("1 — very much improved")),
                (2, gettext_noop("2 — much improved")),
                (3, gettext_noop("3 — improved")),
                (4, gettext_noop("4 — no change")),
                (5, gettext_noop("5 — worse")),
            ),
            rates_change=True,
            improved_at_most=_d("3"),
            source=SOURCE_OUT,
        ),
        Scale(
            code="cr-smfrs",
            name=gettext_noop("Clinician-reported submental fat rating (CR-SMFRS)"),
            kind="grade",
            minimum=_d("0"),
            maximum=_d("4"),
            step=_d("1"),
            unit="{score}",
            version="CR-SMFRS 0–4 v1",
            better="lower",
            meaningful=_d("1"),
            rater="clinician",
            grades=_SMFRS,
            source=SOURCE_REFINE,
        ),
        Scale(
            code="pr-smfrs",
            name=gettext_noop("Patient-reported submental fat rating (PR-SMFRS)"),
            kind="grade",
            minimum=_d("0"),
            maximum=_d("4"),
            step=_d("1"),
            unit="{score}",
            version="PR-SMFRS 0–4 v1",
            better="lower",
            meaningful=_d("1"),
            rater="patient",
            grades=_SMFRS,
            source=SOURCE_REFINE,
        ),
        Scale(
            code="nurnberger-muller",
            name=gettext_noop("Nürnberger-Müller cellulite grade"),
            kind="grade",
            minimum=_d("0"),
            maximum=_d("3"),
            step=_d("1"),
            unit="{score}",
            version="Nürnberger-Müller 0–III v1",
            better="lower",
            meaningful=_d("1"),
            rater="clinician",
            roman=True,
            grades=(
                (0, gettext_noop("0 — smooth standing and lying; no change on pinching")),
                (1, gettext_noop("I — smooth standing and lying; orange peel on pinching")),
                (2, gettext_noop("II — orange peel standing, without pinching")),
                (3, gettext_noop("III — orange peel standing and lying, with nodules")),
            ),
            source=SOURCE_OUT,
        ),
        Scale(
            code="hexsel-css",
            name=gettext_noop("Hexsel Cellulite Severity Scale"),
            kind="items",
            minimum=_d("0"),
            maximum=_d("15"),
            step=_d("1"),
            unit="{score}",
            version="Hexsel CSS 5 items × 0–3 (2009)",
            better="lower",
            meaningful=_d("3"),
            rater="clinician",
            items=_HEXSEL_ITEMS,
            source=SOURCE_OUT,
        ),
        Scale(
            code="glogau",
            name=gettext_noop("Glogau photoageing"),
            kind="grade",
            minimum=_d("1"),
            maximum=_d("4"),
            step=_d("1"),
            unit="{score}",
            version="Glogau I–IV v1",
            better="lower",
            meaningful=_d("1"),
            rater="clinician",
            roman=True,
            grades=(
                (1, gettext_noop("I — no wrinkles")),
                (2, gettext_noop("II — wrinkles in motion")),
                (3, gettext_noop("III — wrinkles at rest")),
                (4, gettext_noop("IV — only wrinkles")),
            ),
            source=SOURCE_OUT,
        ),
        Scale(
            code="wrinkle-severity",
            name=gettext_noop("Wrinkle severity (5 points)"),
            kind="grade",
            minimum=_d("1"),
            maximum=_d("5"),
            step=_d("1"),
            unit="{score}",
            version="Wrinkle severity 1–5 v1",
            better="lower",
            meaningful=_d("1"),
            rater="clinician",
            grades=(
                (1, gettext_noop("1 — absent")),
                (2, gettext_noop("2 — mild")),
                (3, gettext_noop("3 — moderate")),
                (4, gettext_noop("4 — severe")),
                (5, gettext_noop("5 — extreme")),
            ),
            source=SOURCE_OUT,
        ),
        Scale(
            code="norwood-hamilton",
            name=gettext_noop("Norwood-Hamilton"),
            kind="grade",
            minimum=_d("1"),
            maximum=_d("7"),
            step=_d("1"),
            unit="{score}",
            version="Norwood-Hamilton I–VII v1",
            better="lower",
            meaningful=_d("1"),
            rater="clinician",
            roman=True,
            grades=tuple((grade, ROMAN[grade]) for grade in range(1, 8)),
            source=SOURCE_OUT,
        ),
        Scale(
            code="ludwig",
            name=gettext_noop("Ludwig"),
            kind="grade",
            minimum=_d("1"),
            maximum=_d("3"),
            step=_d("1"),
            unit="{score}",
            version="Ludwig I–III v1",
            better="lower",
            meaningful=_d("1"),
            rater="clinician",
            roman=True,
            grades=(
                (1, gettext_noop("I — mild")),
                (2, gettext_noop("II — moderate")),
                (3, gettext_noop("III — extensive")),
            ),
            source=SOURCE_OUT,
        ),
        Scale(
            code="hair-density",
            name=gettext_noop("Hair density"),
            kind="quantity",
            minimum=_d("0"),
            maximum=_d("1000"),
            step=_d("1"),
            unit="/cm2",
            version="hairs counted in a marked 1 cm² area v1",
            better="higher",
            meaningful_percent=_d("10"),
            rater="clinician",
            source=SOURCE_OUT,
        ),
        Scale(
            code="satisfaction",
            name=gettext_noop("Patient satisfaction"),
            kind="grade",
            minimum=_d("1"),
            maximum=_d("5"),
            step=_d("1"),
            unit="{score}",
            version="Satisfaction 1–5 v1",
            better="higher",
            rater="patient",
            grades=(
                (1, gettext_noop("1 — very dissatisfied")),
                (2, gettext_noop("2 — dissatisfied")),
                (3, gettext_noop("3 — neither")),
                (4, gettext_noop("4 — satisfied")),
                (5, gettext_noop("5 — very satisfied")),
            ),
            rates_change=True,
            source=SOURCE_OUT,
        ),
        Scale(
            code="pain-nrs",
            name=gettext_noop("Pain (0–10)"),
            kind="grade",
            minimum=_d("0"),
            maximum=_d("10"),
            step=_d("1"),
            unit="{score}",
            version="NRS 0–10 v1",
            better="lower",
            meaningful=_d("2"),
            loinc="72514-3",
            rater="patient",
            source=SOURCE_OUT,
        ),
    )
}

# Measures a protocol may ask for that are not numbers (the photos) or that come with another (height, BMI).
NON_SCALE_MEASURES = frozenset({"photos"})
BODY_MEASURES = frozenset({"weight", "height"})  # always allowed: BMI needs them


def scale_for(code: str) -> Scale | None:
    return SCALES.get(code)


def scale_version(code: str, *, gais_reversed: bool) -> str:
    scale = SCALES[code]
    if code == "gais" and gais_reversed:
        return GAIS_REVERSED_VERSION
    return scale.version


def standard_value(code: str, value: Decimal, version: str) -> Decimal:
    """The value in the scale's published orientation: a reversed GAIS (5 = very much improved) is turned
    back, so that every comparison reads one way."""
    if code == "gais" and version == GAIS_REVERSED_VERSION:
        return Decimal(6) - value
    return value


def grade_choices(code: str, *, gais_reversed: bool = False) -> list[tuple[int, str]]:
    """The grades of a scale as the clinic records them, labelled (a reversed GAIS is labelled reversed)."""
    scale = SCALES[code]
    if not scale.grades:
        low, high = int(scale.minimum), int(scale.maximum)
        return [(value, scale.display(Decimal(value))) for value in range(low, high + 1)]
    if code == "gais" and gais_reversed:
        return [(value, _(label)) for value, label in GAIS_REVERSED_GRADES]
    return [(value, _(label)) for value, label in scale.grades]


# --- input: numbers in range ------------------------------------------------------------------------------


def parse_decimal(raw: object) -> Decimal | None:
    """A finite decimal from text or a number, or None."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        number = Decimal(str(raw).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def quantise(scale: Scale, value: Decimal) -> Decimal:
    return value.quantize(scale.step, rounding=ROUND_HALF_UP)


def _range_text(scale: Scale) -> str:
    return _("%(low)s to %(high)s") % {
        "low": scale.display(scale.minimum),
        "high": scale.display(scale.maximum),
    }


def value_problem(scale: Scale, value: Decimal | None) -> str | None:
    """Why a value cannot be recorded on this scale, or None. Out of range or not a whole grade is invalid
    input: a negative circumference, a weight of 0, a GAIS of 6."""
    if value is None:
        return _("Give a number.")
    if scale.derived:
        return _("This value is computed, not entered.")
    if value < scale.minimum or value > scale.maximum:
        return _("Out of range: %(name)s goes from %(range)s.") % {
            "name": scale.label,
            "range": _range_text(scale),
        }
    if scale.kind != "quantity" and value != value.to_integral_value():
        return _("%(name)s takes whole grades only.") % {"name": scale.label}
    return None


def items_problem(scale: Scale, items: Sequence[object] | None) -> str | None:
    """A multi-item scale (Hexsel CSS) needs every item, each a whole number from 0 to 3."""
    if scale.kind != "items":
        return None
    if items is None or len(items) != len(scale.items):
        return _("%(name)s needs all %(count)d items.") % {"name": scale.label, "count": len(scale.items)}
    for item in items:
        number = parse_decimal(item)
        if (
            number is None
            or number != number.to_integral_value()
            or not 0 <= number <= len(scale.items[0][1]) - 1
        ):
            return _("Each item of %(name)s is a whole number from 0 to 3.") % {"name": scale.label}
    return None


def items_total(items: Sequence[object]) -> Decimal:
    total = Decimal(0)
    for item in items:
        number = parse_decimal(item)
        total += number if number is not None else Decimal(0)
    return total


def bmi(*, weight_kg: Decimal, height_cm: Decimal) -> Decimal:
    """Body mass index (kg/m²), to one decimal."""
    metres = height_cm / Decimal(100)
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


# --- landmarks: where a circumference or a thickness is taken, so it is taken there again ------------------

FIXED_POINTS: dict[str, str] = {
    "umbilicus": gettext_noop("the navel"),
    "iliac-crest": gettext_noop("the top of the hip bone (iliac crest)"),
    "greater-trochanter": gettext_noop("the greater trochanter"),
    "inguinal-crease": gettext_noop("the groin crease"),
    "patella-top": gettext_noop("the top of the kneecap"),
    "acromion": gettext_noop("the tip of the shoulder (acromion)"),
    "olecranon": gettext_noop("the tip of the elbow (olecranon)"),
    "gluteal-fold": gettext_noop("the buttock crease"),
    "mandible-angle": gettext_noop("the angle of the jaw"),
    "menton": gettext_noop("the chin (menton)"),
}
DIRECTIONS: dict[str, str] = {
    "at": gettext_noop("at"),
    "above": gettext_noop("above"),
    "below": gettext_noop("below"),
}
SIDES: dict[str, str] = {
    "": gettext_noop("midline"),
    "left": gettext_noop("left"),
    "right": gettext_noop("right"),
}
MAX_LANDMARK_DISTANCE_CM = Decimal(60)

# Where each landmark measure is usually taken (the form's first suggestion).
DEFAULT_LANDMARKS: dict[str, tuple[str, str, Decimal, str]] = {
    "waist-circumference": ("umbilicus", "at", Decimal(0), ""),
    "hip-circumference": ("greater-trochanter", "at", Decimal(0), ""),
    "thigh-circumference": ("patella-top", "above", Decimal(15), "left"),
    "arm-circumference": ("olecranon", "above", Decimal(10), "left"),
    "fat-thickness": ("umbilicus", "at", Decimal(5), "left"),
}


@dataclass(frozen=True)
class Landmark:
    fixed_point: str
    direction: str
    distance_cm: Decimal
    side: str = ""

    @property
    def key(self) -> str:
        return f"{self.fixed_point}:{self.direction}:{self.distance_cm.normalize():f}:{self.side}"

    def label(self) -> str:
        point = _(FIXED_POINTS.get(self.fixed_point, self.fixed_point))
        side = _(SIDES.get(self.side, self.side))
        if self.direction == "at" or self.distance_cm == 0:
            where = _("at %(point)s") % {"point": point}
        else:
            where = _("%(distance)s cm %(direction)s %(point)s") % {
                "distance": f"{self.distance_cm.normalize():f}",
                "direction": _(DIRECTIONS.get(self.direction, self.direction)),
                "point": point,
            }
        return f"{where} ({side})" if self.side else where


def landmark_problems(
    *, fixed_point: str, direction: str, distance_cm: Decimal | None, side: str
) -> dict[str, str]:
    """What is wrong with a landmark, by field name."""
    problems: dict[str, str] = {}
    if fixed_point not in FIXED_POINTS:
        problems["fixed_point"] = _("Choose the fixed point the distance is measured from.")
    if direction not in DIRECTIONS:
        problems["direction"] = _("Say whether the landmark is at, above or below the fixed point.")
    if side not in SIDES:
        problems["side"] = _("Choose left, right or midline.")
    if distance_cm is None or distance_cm < 0 or distance_cm > MAX_LANDMARK_DISTANCE_CM:
        problems["distance_cm"] = _("The distance goes from 0 to %(max)s cm.") % {
            "max": MAX_LANDMARK_DISTANCE_CM
        }
    elif direction == "at" and distance_cm != 0:
        problems["distance_cm"] = _("A landmark at the fixed point has a distance of 0.")
    elif direction in ("above", "below") and distance_cm == 0:
        problems["distance_cm"] = _("Give the distance above or below the fixed point.")
    elif distance_cm != distance_cm.quantize(Decimal("0.1")):
        problems["distance_cm"] = _("Give the distance to the millimetre (one decimal).")
    return problems


# --- which measures a timepoint takes --------------------------------------------------------------------


def allowed_measures(protocol_measures: Iterable[str], *, baseline: bool) -> list[str]:
    """The scale codes a timepoint of this protocol may record: the protocol's, plus weight and height;
    change-rating scales (GAIS, satisfaction) not at baseline."""
    codes = [code for code in protocol_measures if code in SCALES]
    for code in ("weight", "height"):
        if code not in codes:
            codes.append(code)
    return [
        code for code in codes if not SCALES[code].derived and not (baseline and SCALES[code].rates_change)
    ]


def due_measures(protocol_measures: Iterable[str], *, baseline: bool) -> list[str]:
    """What the protocol asks at this timepoint (height only at baseline, with weight)."""
    measures = list(protocol_measures)
    codes = [
        code
        for code in measures
        if code in SCALES and not SCALES[code].derived and not (baseline and SCALES[code].rates_change)
    ]
    if baseline and "weight" in measures:
        codes.append("height")
    return codes


# --- standardised photo views ---------------------------------------------------------------------------

PHOTO_VIEWS: dict[str, tuple[str, str]] = {
    "abdomen-front": (
        gettext_noop("Abdomen, front"),
        gettext_noop("Standing, arms crossed on the chest, camera at navel height, 1.5 m away."),
    ),
    "abdomen-left-45": (
        gettext_noop("Abdomen, left 45°"),
        gettext_noop("Standing, turned 45° to the right so the left side faces the camera."),
    ),
    "abdomen-right-45": (
        gettext_noop("Abdomen, right 45°"),
        gettext_noop("Standing, turned 45° to the left so the right side faces the camera."),
    ),
    "abdomen-left-90": (
        gettext_noop("Abdomen, left 90°"),
        gettext_noop("Standing in profile, left side to the camera, arms crossed on the chest."),
    ),
    "abdomen-right-90": (
        gettext_noop("Abdomen, right 90°"),
        gettext_noop("Standing in profile, right side to the camera, arms crossed on the chest."),
    ),
    "back": (
        gettext_noop("Back"),
        gettext_noop("Standing, back to the camera, arms relaxed, camera at waist height."),
    ),
    "thighs-front": (
        gettext_noop("Thighs, front"),
        gettext_noop("Standing, feet apart at hip width, camera at mid-thigh height."),
    ),
    "thighs-back": (
        gettext_noop("Thighs and buttocks, back"),
        gettext_noop("Standing, back to the camera, muscles relaxed, camera at mid-thigh height."),
    ),
    "thighs-left-90": (
        gettext_noop("Thighs, left 90°"),
        gettext_noop("Standing in profile, left side to the camera."),
    ),
    "thighs-right-90": (
        gettext_noop("Thighs, right 90°"),
        gettext_noop("Standing in profile, right side to the camera."),
    ),
    "arms-back": (
        gettext_noop("Arms, back"),
        gettext_noop("Back to the camera, arms raised sideways to shoulder height."),
    ),
    "face-front": (
        gettext_noop("Face, front"),
        gettext_noop("Seated, head in the Frankfort plane, eyes open, neutral expression."),
    ),
    "face-left-45": (
        gettext_noop("Face, left 45°"),
        gettext_noop("Head turned 45° to the right, neutral expression."),
    ),
    "face-right-45": (
        gettext_noop("Face, right 45°"),
        gettext_noop("Head turned 45° to the left, neutral expression."),
    ),
    "face-left-90": (
        gettext_noop("Face, left 90°"),
        gettext_noop("Left profile, head in the Frankfort plane."),
    ),
    "face-right-90": (
        gettext_noop("Face, right 90°"),
        gettext_noop("Right profile, head in the Frankfort plane."),
    ),
    "chin-up": (
        gettext_noop("Under the chin, head tilted up"),
        gettext_noop("Seated, head tilted back 30°, camera below the chin."),
    ),
    "scalp-top": (
        gettext_noop("Scalp, from above"),
        gettext_noop("Seated, head bowed, camera 30 cm above the vertex, hair parted in the middle."),
    ),
    "scalp-front": (
        gettext_noop("Hairline, front"),
        gettext_noop("Seated, hair combed back, camera at eye level."),
    ),
    "scalp-marked-area": (
        gettext_noop("Marked 1 cm² area (close-up)"),
        gettext_noop("The tattooed or marked area, hair clipped to 1 mm, dermoscope or macro lens."),
    ),
    "area-front": (
        gettext_noop("Treated area, front"),
        gettext_noop("The treated area square to the camera, even light, no flash."),
    ),
    "area-left-90": (
        gettext_noop("Treated area, left 90°"),
        gettext_noop("The treated area in left profile."),
    ),
    "area-right-90": (
        gettext_noop("Treated area, right 90°"),
        gettext_noop("The treated area in right profile."),
    ),
}

_BODY_VIEWS = (
    "abdomen-front",
    "abdomen-left-45",
    "abdomen-right-45",
    "abdomen-left-90",
    "abdomen-right-90",
    "back",
)
_FACE_VIEWS = ("face-front", "face-left-45", "face-right-45", "face-left-90", "face-right-90")
VIEWS_BY_INDICATION: dict[str, tuple[str, ...]] = {
    "localized-fat": _BODY_VIEWS,
    "weight-loss": _BODY_VIEWS,
    "cellulite": ("thighs-back", "thighs-front", "thighs-left-90", "thighs-right-90"),
    "wrinkles": _FACE_VIEWS,
    "rejuvenation": _FACE_VIEWS,
    "sagging-skin": _FACE_VIEWS,
    "pigmentation": _FACE_VIEWS,
    "acne": _FACE_VIEWS,
    "submental-fat": ("face-front", "face-left-90", "face-right-90", "chin-up"),
    "hair-loss": ("scalp-top", "scalp-front", "scalp-marked-area"),
}
DEFAULT_VIEWS = ("area-front", "area-left-90", "area-right-90")


def photo_views(indication: str) -> tuple[str, ...]:
    return VIEWS_BY_INDICATION.get(indication, DEFAULT_VIEWS)


def view_label(code: str) -> str:
    return _(PHOTO_VIEWS[code][0]) if code in PHOTO_VIEWS else code


def view_instruction(code: str) -> str:
    return _(PHOTO_VIEWS[code][1]) if code in PHOTO_VIEWS else ""


# --- change from baseline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    baseline: Decimal
    latest: Decimal
    delta: Decimal  # latest − baseline, in the scale's standard orientation
    percent: Decimal | None  # delta as a share of the baseline, when the baseline is not 0
    improvement: Decimal  # how much better (negative: worse); 0 for a measure with no better direction
    verdict: Verdict


def change(scale: Scale, *, baseline: Decimal, latest: Decimal) -> Change:
    delta = latest - baseline
    percent = (delta * 100 / baseline).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) if baseline else None
    if scale.better == "none":
        improvement, verdict = Decimal(0), "none"
    else:
        improvement = -delta if scale.better == "lower" else delta
        verdict = "better" if improvement > 0 else "worse" if improvement < 0 else "same"
    return Change(baseline, latest, delta, percent, improvement, verdict)  # type: ignore[arg-type]


def meaningfully_better(scale: Scale, step: Change) -> bool:
    """Better than baseline by at least the scale's meaningful change (the taper trigger)."""
    if step.verdict != "better":
        return False
    if scale.meaningful_percent is not None:
        if step.baseline == 0:
            return step.improvement > 0
        return step.improvement * 100 / abs(step.baseline) >= scale.meaningful_percent
    return step.improvement >= max(scale.meaningful, scale.step)


@dataclass(frozen=True)
class SeriesFacts:
    """One measure at one landmark over a plan, in the standard orientation: the baseline (None when not
    taken, or for a change-rating scale) and the latest value with the number of sessions done by then."""

    code: str
    key: str
    baseline: Decimal | None
    latest: Decimal | None
    latest_after_sessions: int = 0
    landmark: str = ""

    @property
    def scale(self) -> Scale:
        return SCALES[self.code]

    @property
    def change(self) -> Change | None:
        if self.baseline is None or self.latest is None:
            return None
        return change(self.scale, baseline=self.baseline, latest=self.latest)


def improved_series(series: Iterable[SeriesFacts]) -> list[str]:
    """The series that show improvement: a change-rating scale at "improved" or better (GAIS ≤ 3), or any
    measure better than baseline by its meaningful change."""
    found: list[str] = []
    for item in series:
        scale = item.scale
        if scale.rates_change:
            if (
                scale.improved_at_most is not None
                and item.latest is not None
                and item.latest <= scale.improved_at_most
            ):
                found.append(item.key)
            continue
        step = item.change
        if step is not None and meaningfully_better(scale, step):
            found.append(item.key)
    return found


# --- responder rules (R-EVID): data per protocol code -------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """Met by any series of these measures that is better than baseline by ``improve_by`` (absolute, in the
    scale's unit) or ``improve_by_percent``, or that reads ``at_most`` or better (a change-rating scale)."""

    measures: tuple[str, ...]
    improve_by: Decimal | None = None
    improve_by_percent: Decimal | None = None
    at_most: Decimal | None = None

    def describe(self) -> str:
        names = " / ".join(SCALES[code].label for code in self.measures)
        scale = SCALES[self.measures[0]]
        if self.at_most is not None:
            return _("%(name)s %(value)s or better") % {"name": names, "value": scale.display(self.at_most)}
        if self.improve_by_percent is not None:
            return _("%(name)s %(percent)s %% better than baseline") % {
                "name": names,
                "percent": f"{self.improve_by_percent.normalize():f}",
            }
        amount = self.improve_by or Decimal(0)
        if scale.kind == "quantity":
            return _("%(name)s %(amount)s better than baseline") % {
                "name": names,
                "amount": scale.display(amount),
            }
        return _("%(name)s %(amount)s point(s) or grade(s) better than baseline") % {
            "name": names,
            "amount": f"{amount.normalize():f}",
        }


@dataclass(frozen=True)
class ResponderRule:
    code: str
    criteria: tuple[Criterion, ...]
    combine: Literal["all", "any"]
    source: str

    def describe(self) -> str:
        parts = [criterion.describe() for criterion in self.criteria]
        joiner = _(" and ") if self.combine == "all" else _(" or ")
        return joiner.join(parts)


CIRCUMFERENCES = ("waist-circumference", "hip-circumference", "thigh-circumference", "arm-circumference")

RESPONDER_RULES: dict[str, ResponderRule] = {
    "localized-fat": ResponderRule(
        "localized-fat",
        (Criterion(CIRCUMFERENCES, improve_by=Decimal(2)),),
        "any",
        f"{SOURCE_EVID}: a reduction of at least 2 cm in the treated circumference",
    ),
    "cellulite": ResponderRule(
        "cellulite",
        (
            Criterion(("nurnberger-muller",), improve_by=Decimal(1)),
            Criterion(("hexsel-css",), improve_by=Decimal(3)),
        ),
        "any",
        f"{SOURCE_OUT}: 1 Nürnberger-Müller grade or 3 Hexsel CSS points",
    ),
    "facial-rejuvenation": ResponderRule(
        "facial-rejuvenation", (Criterion(("gais",), at_most=Decimal(3)),), "any", f"{SOURCE_OUT}: GAIS"
    ),
    "loose-skin": ResponderRule(
        "loose-skin", (Criterion(("gais",), at_most=Decimal(3)),), "any", f"{SOURCE_OUT}: GAIS"
    ),
    "hair-loss": ResponderRule(
        "hair-loss",
        (Criterion(("hair-density",), improve_by_percent=Decimal(10)),),
        "any",
        f"{SOURCE_OUT}: hair density in a marked 1 cm² area",
    ),
    "submental-deoxycholic-acid": ResponderRule(
        "submental-deoxycholic-acid",
        (Criterion(("cr-smfrs",), improve_by=Decimal(1)), Criterion(("pr-smfrs",), improve_by=Decimal(1))),
        "all",
        SOURCE_REFINE,
    ),
    "pain": ResponderRule(
        "pain", (Criterion(("pain-nrs",), improve_by=Decimal(2)),), "any", "IMMPACT: 2 points on the NRS 0–10"
    ),
}
# A clinic's own protocol without a template behind it answers by its indication.
RULE_BY_INDICATION: dict[str, str] = {
    "localized-fat": "localized-fat",
    "weight-loss": "localized-fat",
    "cellulite": "cellulite",
    "rejuvenation": "facial-rejuvenation",
    "wrinkles": "facial-rejuvenation",
    "sagging-skin": "loose-skin",
    "hair-loss": "hair-loss",
    "submental-fat": "submental-deoxycholic-acid",
    "pain": "pain",
}
_COPY_SUFFIX = re.compile(r"-\d+$")


def default_rule(protocol_measures: Iterable[str]) -> ResponderRule:
    """Any measure of the protocol that has a better direction, better by its meaningful change."""
    criteria: list[Criterion] = []
    for code in protocol_measures:
        scale = SCALES.get(code)
        if scale is None or scale.better == "none" or scale.derived or code == "satisfaction":
            continue
        if scale.improved_at_most is not None:
            criteria.append(Criterion((code,), at_most=scale.improved_at_most))
        elif scale.meaningful_percent is not None:
            criteria.append(Criterion((code,), improve_by_percent=scale.meaningful_percent))
        else:
            criteria.append(Criterion((code,), improve_by=max(scale.meaningful, scale.step)))
    return ResponderRule("default", tuple(criteria), "any", SOURCE_EVID)


def responder_rule_for(
    protocol_codes: Sequence[str], *, indication: str, protocol_measures: Sequence[str]
) -> ResponderRule:
    """The rule for a protocol: by its code, the code of the template it was copied from (in order), the
    code without a copy suffix ("localized-fat-2"), its indication, and else the default."""
    for code in protocol_codes:
        for candidate in (code, _COPY_SUFFIX.sub("", code)):
            if candidate in RESPONDER_RULES:
                return RESPONDER_RULES[candidate]
    by_indication = RULE_BY_INDICATION.get(indication)
    if by_indication is not None:
        return RESPONDER_RULES[by_indication]
    return default_rule(protocol_measures)


@dataclass(frozen=True)
class CriterionResult:
    criterion: Criterion
    met: bool | None  # None: not measured (no baseline, or no later value)
    best: str = ""  # the series that met it, or the one nearest to it
    improvement: Decimal | None = None


@dataclass(frozen=True)
class Response:
    status: Status
    rule: ResponderRule
    results: tuple[CriterionResult, ...]
    judge_after: int | None
    sessions_done: int
    findings: tuple[Finding, ...] = field(default=())

    @property
    def non_responder(self) -> bool:
        return self.status == "non-responder"


def _criterion_result(
    criterion: Criterion, series: Sequence[SeriesFacts], *, min_sessions: int
) -> CriterionResult:
    measured: list[tuple[Decimal, str, bool]] = []
    for item in series:
        if (
            item.code not in criterion.measures
            or item.latest is None
            or item.latest_after_sessions < min_sessions
        ):
            continue
        if criterion.at_most is not None:
            margin = criterion.at_most - item.latest
            measured.append((margin, item.key, item.latest <= criterion.at_most))
            continue
        step = item.change
        if step is None:
            continue
        if criterion.improve_by_percent is not None:
            if step.baseline == 0:
                met = step.improvement > 0
                value = step.improvement
            else:
                value = (step.improvement * 100 / abs(step.baseline)).quantize(
                    Decimal("0.1"), rounding=ROUND_HALF_UP
                )
                met = step.improvement * 100 / abs(step.baseline) >= criterion.improve_by_percent
            measured.append((value, item.key, met))
        else:
            threshold = criterion.improve_by or Decimal(0)
            measured.append((step.improvement, item.key, step.improvement >= threshold))
    if not measured:
        return CriterionResult(criterion, None)
    best = max(measured, key=lambda entry: (entry[2], entry[0]))
    return CriterionResult(criterion, best[2], best[1], best[0])


def _combine(results: Sequence[CriterionResult], combine: str) -> bool | None:
    values = [result.met for result in results]
    if not values:
        return None
    if combine == "all":
        if any(value is False for value in values):
            return False
        return None if any(value is None for value in values) else True
    # "any": met by one measured criterion; not met when something was measured and nothing met (a measure
    # the clinic did not take does not hold the verdict back); unknown when nothing was measured.
    if any(value is True for value in values):
        return True
    return False if any(value is False for value in values) else None


def response(
    rule: ResponderRule,
    series: Sequence[SeriesFacts],
    *,
    sessions_done: int,
    judge_after: int | None,
    alternatives: Sequence[str] = (),
) -> Response:
    """Responder status by the protocol's rule. A responder as soon as the rule is met. Once the protocol's
    number of sessions is done, the rule is judged on values taken after that many sessions: not met is a
    non-responder (R-EVID), shown the alternatives (R-ALT); not measured since then asks for a measurement."""
    judging = judge_after is not None and sessions_done >= judge_after
    results = tuple(_criterion_result(c, series, min_sessions=0) for c in rule.criteria)
    met = _combine(results, rule.combine)
    if met is True:
        return Response("responder", rule, results, judge_after, sessions_done)
    if not judging:
        return Response(
            "not-yet" if met is False else "not-measured", rule, results, judge_after, sessions_done
        )
    limit = judge_after or 0
    late = tuple(_criterion_result(c, series, min_sessions=limit) for c in rule.criteria)
    verdict = _combine(late, rule.combine)
    if verdict is False:
        from mesoclinic.treatments.rules import procedure_label

        names = ", ".join(procedure_label(code) for code in alternatives) or _("none listed in the protocol")
        finding = Finding(
            code="non-responder",
            severity="warn",
            rule="R-EVID",
            message=_(
                "No measurable response after %(count)d sessions (%(rule)s): discuss the alternatives — "
                "%(alternatives)s."
            )
            % {"count": limit, "rule": rule.describe(), "alternatives": names},
            source=rule.source,
        )
        return Response("non-responder", rule, late, judge_after, sessions_done, (finding,))
    finding = Finding(
        code="response-not-measured",
        severity="info",
        rule="R-EVID",
        message=_("%(count)d sessions are done: measure %(rule)s to judge the response.")
        % {"count": limit, "rule": rule.describe()},
        source=rule.source,
    )
    return Response("not-measured", rule, late, judge_after, sessions_done, (finding,))


def judge_after(non_responder_after_sessions: int | None, sessions_min: int) -> int:
    """The protocol's number of sessions before response is judged; its fewest sessions when it sets none."""
    return non_responder_after_sessions or sessions_min


def series_key(code: str, landmark_key: str = "") -> str:
    return f"{code}@{landmark_key}" if landmark_key else code


def status_label(status: str) -> str:
    return _(STATUS_LABELS.get(status, status))


STATUS_LABELS: Mapping[str, str] = {
    "responder": gettext_noop("Responder"),
    "non-responder": gettext_noop("Non-responder"),
    "not-yet": gettext_noop("No response yet"),
    "not-measured": gettext_noop("Not measured yet"),
}

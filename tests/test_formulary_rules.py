"""The formulary's pure rules: every block and warn, table-driven, and hypothesis on the numbers and dates.

R-CAND-ALLERGY (allergy, block), R-CAND-XALLERGY (allergy-caution, warn), R-CAND-ANDRO (teratogen, block),
R-REG (banned-in-jurisdiction block, not-approved warn, off-label warn, regulatory-unknown and
procedure-not-approved info), R-FORM / R-SIGNAL (lot-expired, lot-recalled, lot-beyond-use,
lot-insufficient)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.formulary.rules import (
    MAX_BEYOND_USE_HOURS,
    MAX_LOT_AGE_DAYS,
    MAX_SHELF_LIFE_DAYS,
    MAX_VIALS_PER_LOT,
    STRENGTH_LIMITS,
    VOLUME_LIMITS,
    CautionFacts,
    ComponentInput,
    DecimalLimits,
    FormulaInput,
    IngredientFacts,
    LotFacts,
    PatientFacts,
    PlannedFormulaFacts,
    StatusFacts,
    applicable_statuses,
    beyond_use_at,
    beyond_use_hours_problem,
    decimal_problem,
    formula_findings,
    formula_input_problems,
    lot_findings,
    lot_receipt_problems,
    single_dose_vials,
    worst_status,
)

FAT = frozenset({"localized-fat", "weight-loss"})
PC = IngredientFacts(
    code="phosphatidylcholine",
    name="Phosphatidylcholine",
    cautions=(CautionFacts("soy", "soy-derived", "R-CAND-XALLERGY"),),
    statuses=(
        StatusFacts("US", "not-approved", "compounded", "s-us"),
        StatusFacts("FR", "banned", "fat lysis", "s-fr", FAT),
        StatusFacts("BR", "banned", "aesthetic", "s-br"),
    ),
)
HYALURONIDASE = IngredientFacts(
    code="hyaluronidase",
    name="Hyaluronidase",
    cautions=(CautionFacts("bee-wasp-venom", "venom component", "R-CAND-XALLERGY"),),
    statuses=(StatusFacts("US", "approved-other-indication", "dispersion", "s"),),
)
LIDOCAINE = IngredientFacts(
    code="lidocaine",
    name="Lidocaine",
    allergy_groups=frozenset({"amide-local-anaesthetics"}),
    statuses=(StatusFacts("US", "approved-other-indication", "local anaesthesia", "s"),),
)
FINASTERIDE = IngredientFacts(
    code="finasteride",
    name="Finasteride",
    teratogen=True,
    statuses=(StatusFacts("US", "approved-other-indication", "oral", "s"),),
)
SALINE = IngredientFacts(
    code="sodium-chloride", name="Saline", statuses=(StatusFacts("US", "approved", "d", "s"),)
)
PROCEDURE = (
    StatusFacts("US", "not-approved", "mesotherapy is not FDA-approved", "003"),
    StatusFacts("FR", "banned", "fat lysis by mesotherapy mixtures", "decree", FAT),
)


def formula(
    *ingredients: IngredientFacts, indications: frozenset[str] = frozenset({"rejuvenation"})
) -> PlannedFormulaFacts:
    return PlannedFormulaFacts(
        name="Test", ingredients=ingredients, indications=indications, procedure_statuses=PROCEDURE
    )


# Nothing to say about the patient: no allergy, not pregnant, male (a teratogen warns for anyone else).
NOBODY = PatientFacts(sex="male")


def codes(findings: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return sorted((f.code, f.severity, f.rule) for f in findings)


@pytest.mark.parametrize(
    ("name", "planned", "patient", "jurisdiction", "expected"),
    [
        ("nothing to say", formula(SALINE), NOBODY, "US", [("procedure-not-approved", "info", "R-REG")]),
        (
            "allergy by group blocks",
            formula(LIDOCAINE),
            PatientFacts(allergies=frozenset({"amide-local-anaesthetics"})),
            "US",
            [
                ("allergy", "block", "R-CAND-ALLERGY"),
                ("off-label", "warn", "R-REG"),
                ("procedure-not-approved", "info", "R-REG"),
            ],
        ),
        (
            "allergy by ingredient code blocks",
            formula(LIDOCAINE),
            PatientFacts(allergies=frozenset({"Lidocaine"})),
            "US",
            [
                ("allergy", "block", "R-CAND-ALLERGY"),
                ("off-label", "warn", "R-REG"),
                ("procedure-not-approved", "info", "R-REG"),
            ],
        ),
        (
            "soy with phosphatidylcholine is a caution",
            formula(PC),
            PatientFacts(allergies=frozenset({"soy"})),
            "US",
            [
                ("allergy-caution", "warn", "R-CAND-XALLERGY"),
                ("not-approved", "warn", "R-REG"),
                ("procedure-not-approved", "info", "R-REG"),
            ],
        ),
        (
            "bee venom with hyaluronidase is a caution",
            formula(HYALURONIDASE),
            PatientFacts(allergies=frozenset({"bee-wasp-venom"})),
            "US",
            [
                ("allergy-caution", "warn", "R-CAND-XALLERGY"),
                ("off-label", "warn", "R-REG"),
                ("procedure-not-approved", "info", "R-REG"),
            ],
        ),
        (
            "an unrelated allergy says nothing",
            formula(HYALURONIDASE),
            PatientFacts(allergies=frozenset({"soy"})),
            "US",
            [("off-label", "warn", "R-REG"), ("procedure-not-approved", "info", "R-REG")],
        ),
        (
            "finasteride in pregnancy blocks",
            formula(FINASTERIDE),
            PatientFacts(pregnancy="pregnant"),
            "US",
            [
                ("off-label", "warn", "R-REG"),
                ("procedure-not-approved", "info", "R-REG"),
                ("teratogen", "block", "R-CAND-ANDRO"),
            ],
        ),
        (
            "finasteride when she may become pregnant blocks",
            formula(FINASTERIDE),
            PatientFacts(pregnancy="planning"),
            "US",
            [
                ("off-label", "warn", "R-REG"),
                ("procedure-not-approved", "info", "R-REG"),
                ("teratogen", "block", "R-CAND-ANDRO"),
            ],
        ),
        (
            "finasteride otherwise is off-label only",
            formula(FINASTERIDE),
            NOBODY,
            "US",
            [("off-label", "warn", "R-REG"), ("procedure-not-approved", "info", "R-REG")],
        ),
        (
            "PC for fat in France: banned twice (ingredient and mixture)",
            formula(PC, indications=frozenset({"localized-fat"})),
            NOBODY,
            "FR",
            [("banned-in-jurisdiction", "block", "R-REG"), ("banned-in-jurisdiction", "block", "R-REG")],
        ),
        (
            "PC for skin in France: the fat ban does not apply; no status recorded",
            formula(PC),
            NOBODY,
            "FR",
            [("regulatory-unknown", "info", "R-REG")],
        ),
        (
            "PC in Brazil: banned for any aesthetic use",
            formula(PC),
            NOBODY,
            "BR",
            [("banned-in-jurisdiction", "block", "R-REG")],
        ),
        (
            "a US state reads the US rows",
            formula(PC),
            NOBODY,
            "US-NY",
            [("not-approved", "warn", "R-REG"), ("procedure-not-approved", "info", "R-REG")],
        ),
        (
            "no row at all is said, not guessed",
            formula(LIDOCAINE),
            NOBODY,
            "DE",
            [("regulatory-unknown", "info", "R-REG")],
        ),
    ],
)
def test_formula_findings_table(
    name: str,
    planned: PlannedFormulaFacts,
    patient: PatientFacts,
    jurisdiction: str,
    expected: list[tuple[str, str, str]],
) -> None:
    findings = formula_findings(planned, patient, jurisdiction)
    assert codes(findings) == sorted(expected), name
    assert all(f.message and f.source for f in findings)


def test_allergy_block_is_not_doubled_by_a_caution() -> None:
    both = IngredientFacts(
        code="x", name="X", allergy_groups=frozenset({"soy"}), cautions=(CautionFacts("soy", "n", "s"),)
    )
    findings = formula_findings(formula(both), PatientFacts(allergies=frozenset({"soy"})), "DE")
    assert [f.code for f in findings if f.rule.startswith("R-CAND")] == ["allergy"]


def test_the_most_specific_jurisdiction_wins() -> None:
    rows = [
        StatusFacts("US", "approved-other-indication", "federal", "s"),
        StatusFacts("US-NY", "banned", "state ban", "s"),
        StatusFacts("US-CA", "approved", "other state", "s"),
    ]
    assert [row.use for row in applicable_statuses(rows, "US-NY", frozenset())] == ["state ban"]
    assert [row.use for row in applicable_statuses(rows, "US-TX", frozenset())] == ["federal"]
    assert applicable_statuses(rows, "USA", frozenset()) == []  # "US" does not cover "USA"


def test_an_indication_specific_row_only_speaks_for_its_indications() -> None:
    """…and for those it overrides the row for any use (Kybella: approved for submental fat only)."""
    rows = [StatusFacts("FR", "banned", "fat", "s", FAT), StatusFacts("FR", "not-approved", "any", "s")]
    assert {row.use for row in applicable_statuses(rows, "FR", frozenset({"localized-fat"}))} == {"fat"}
    assert {row.use for row in applicable_statuses(rows, "FR", frozenset({"hair-loss"}))} == {"any"}
    both = frozenset({"localized-fat", "hair-loss"})
    assert {row.use for row in applicable_statuses(rows, "FR", both)} == {"fat", "any"}
    assert {row.use for row in applicable_statuses(rows, "FR", frozenset())} == {"fat", "any"}  # catalogue


@given(
    allergies=st.frozensets(
        st.sampled_from(["soy", "bee-wasp-venom", "amide-local-anaesthetics", "lidocaine", "x"])
    ),
    pregnant=st.booleans(),
    may=st.booleans(),
    jurisdiction=st.sampled_from(["US", "US-NY", "FR", "BR", "DE", "FR-75"]),
    fat=st.booleans(),
)
@settings(max_examples=300)
def test_findings_follow_the_facts(
    allergies: frozenset[str], pregnant: bool, may: bool, jurisdiction: str, fat: bool
) -> None:
    planned = formula(
        PC, HYALURONIDASE, LIDOCAINE, FINASTERIDE, indications=FAT if fat else frozenset({"hair-loss"})
    )
    pregnancy = "pregnant" if pregnant else "planning" if may else "none"
    patient = PatientFacts(allergies=allergies, pregnancy=pregnancy, sex="male")
    found = {f.code for f in formula_findings(planned, patient, jurisdiction)}
    assert ("allergy" in found) == bool(allergies & {"amide-local-anaesthetics", "lidocaine"})
    assert ("allergy-caution" in found) == bool(allergies & {"soy", "bee-wasp-venom"})
    assert ("teratogen" in found) == (pregnant or may)
    banned = jurisdiction.startswith("BR") or (jurisdiction.startswith("FR") and fat)
    assert ("banned-in-jurisdiction" in found) == banned


# --- lots --------------------------------------------------------------------------------------------------

TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
GOOD = LotFacts(number="L1", expires_on=TODAY + timedelta(days=30), recalled=False, available_ml=Decimal("5"))


@pytest.mark.parametrize(
    ("name", "lot", "volume", "expected"),
    [
        ("usable", GOOD, "1", []),
        ("usable on its expiry day", LotFacts("L1", TODAY, False, Decimal("5")), "1", []),
        (
            "expired yesterday",
            LotFacts("L1", TODAY - timedelta(days=1), False, Decimal("5")),
            "1",
            ["lot-expired"],
        ),
        (
            "recalled",
            LotFacts("L1", TODAY + timedelta(days=9), True, Decimal("5"), recall_reason="NTM"),
            "1",
            ["lot-recalled"],
        ),
        ("takes exactly what is left", GOOD, "5", []),
        ("takes more than is left", GOOD, "5.001", ["lot-insufficient"]),
        (
            "empty",
            LotFacts("L1", TODAY + timedelta(days=9), False, Decimal("0")),
            "0.1",
            ["lot-insufficient"],
        ),
        (
            "opened vial past its beyond-use time",
            LotFacts("L1", TODAY + timedelta(days=9), False, Decimal("5"), vial_beyond_use_at=NOW),
            "1",
            ["lot-beyond-use"],
        ),
        (
            "opened vial within its beyond-use time",
            LotFacts(
                "L1",
                TODAY + timedelta(days=9),
                False,
                Decimal("5"),
                vial_beyond_use_at=NOW + timedelta(seconds=1),
            ),
            "1",
            [],
        ),
        (
            "everything wrong at once",
            LotFacts(
                "L1",
                TODAY - timedelta(days=1),
                True,
                Decimal("0"),
                vial_beyond_use_at=NOW - timedelta(days=1),
            ),
            "1",
            ["lot-beyond-use", "lot-expired", "lot-insufficient", "lot-recalled"],
        ),
    ],
)
def test_lot_findings_table(name: str, lot: LotFacts, volume: str, expected: list[str]) -> None:
    findings = lot_findings(lot, volume_ml=Decimal(volume), today=TODAY, now=NOW)
    assert sorted(f.code for f in findings) == expected, name
    assert all(f.severity == "block" and f.rule in {"R-FORM", "R-SIGNAL"} for f in findings)


volumes = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)


@given(
    expires=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 1, 1)),
    today=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 1, 1)),
    available=st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=3),
    volume=volumes,
    hours=st.integers(min_value=1, max_value=24 * 60),
    minutes_since_opening=st.integers(min_value=0, max_value=24 * 60 * 70),
    recalled=st.booleans(),
)
@settings(max_examples=400)
def test_each_lot_block_exactly_when_its_condition_holds(
    expires: date,
    today: date,
    available: Decimal,
    volume: Decimal,
    hours: int,
    minutes_since_opening: int,
    recalled: bool,
) -> None:
    now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    opened = now - timedelta(minutes=minutes_since_opening)
    lot = LotFacts("L", expires, recalled, available, vial_beyond_use_at=beyond_use_at(opened, hours))
    found = {f.code for f in lot_findings(lot, volume_ml=volume, today=today, now=now)}
    assert ("lot-expired" in found) == (today > expires)
    assert ("lot-insufficient" in found) == (volume > available)
    assert ("lot-beyond-use" in found) == (minutes_since_opening >= hours * 60)
    assert ("lot-recalled" in found) == recalled


@given(volume=volumes, vial=st.decimals(min_value=Decimal("0.1"), max_value=Decimal("100"), places=3))
@settings(max_examples=300)
def test_single_dose_vials_cover_the_draw_with_no_vial_to_spare(volume: Decimal, vial: Decimal) -> None:
    count = single_dose_vials(volume, vial)
    assert count * vial >= volume
    assert (count - 1) * vial < volume


def test_single_dose_vials_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        single_dose_vials(Decimal(0), Decimal(1))


# --- formula input -----------------------------------------------------------------------------------------

UNITS = frozenset({"mg/mL", "%"})
INDICATIONS = frozenset({"rejuvenation", "localized-fat"})


def entry(
    *components: ComponentInput, volume: str | None = "5", indications: tuple[str, ...] = ("rejuvenation",)
) -> FormulaInput:
    return FormulaInput(
        components=components,
        total_volume_ml=Decimal(volume) if volume is not None else None,
        indications=indications,
        known_units=UNITS,
        known_indications=INDICATIONS,
    )


@pytest.mark.parametrize(
    ("name", "data", "fields"),
    [
        ("valid", entry(ComponentInput(1, Decimal("3"), "mg/mL")), set()),
        ("no ingredients", entry(), {"components"}),
        ("concentration without unit", entry(ComponentInput(1, Decimal("3"), "")), {"components.0.unit"}),
        ("unknown unit", entry(ComponentInput(1, Decimal("3"), "kg")), {"components.0.unit"}),
        ("zero concentration", entry(ComponentInput(1, Decimal("0"), "%")), {"components.0.concentration"}),
        (
            "negative concentration",
            entry(ComponentInput(1, Decimal("-1"), "%")),
            {"components.0.concentration"},
        ),
        ("missing concentration", entry(ComponentInput(1, None, "%")), {"components.0.concentration"}),
        (
            "no ingredient chosen",
            entry(ComponentInput(None, Decimal("1"), "%")),
            {"components.0.ingredient_id"},
        ),
        (
            "twice the same ingredient",
            entry(ComponentInput(1, Decimal("1"), "%"), ComponentInput(1, Decimal("2"), "%")),
            {"components.1.ingredient_id"},
        ),
        ("zero volume", entry(ComponentInput(1, Decimal("1"), "%"), volume="0"), {"total_volume_ml"}),
        ("no volume", entry(ComponentInput(1, Decimal("1"), "%"), volume=None), {"total_volume_ml"}),
        ("no indication", entry(ComponentInput(1, Decimal("1"), "%"), indications=()), {"indications"}),
        (
            "unknown indication",
            entry(ComponentInput(1, Decimal("1"), "%"), indications=("flying",)),
            {"indications"},
        ),
    ],
)
def test_formula_input_problems(name: str, data: FormulaInput, fields: set[str]) -> None:
    assert set(formula_input_problems(data)) == fields, name


@given(
    concentration=st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-1000, max_value=1000
    )
)
@settings(max_examples=200)
def test_a_concentration_is_accepted_exactly_when_positive(concentration: Decimal) -> None:
    problems = formula_input_problems(entry(ComponentInput(1, concentration, "%")))
    assert ("components.0.concentration" in problems) == (concentration <= 0)


# --- regulatory precedence, clinic overrides, input limits (the formulary's own part of this file) -------


KYBELLA_US = (
    StatusFacts("US", "approved-other-indication", "submental fat only", "label"),
    StatusFacts("US", "approved", "submental fat", "label", frozenset({"submental-fat"})),
)


@pytest.mark.parametrize(
    ("name", "rows", "jurisdiction", "indications", "expected"),
    [
        ("kybella for submental fat", KYBELLA_US, "US", {"submental-fat"}, "approved"),
        ("kybella for other fat", KYBELLA_US, "US-NY", {"localized-fat"}, "approved-other-indication"),
        (
            "kybella for both uses: the worst speaks",
            KYBELLA_US,
            "US",
            {"submental-fat", "cellulite"},
            "approved-other-indication",
        ),
        (
            "the clinic's row overrides the seeded one",
            (
                StatusFacts("FR", "banned", "seeded", "s"),
                StatusFacts("FR", "not-approved", "ours", "s", clinic=True),
            ),
            "FR",
            {"rejuvenation"},
            "not-approved",
        ),
        (
            "the clinic's row for one use leaves the others to the seeded one",
            (
                StatusFacts("FR", "not-approved", "seeded", "s"),
                StatusFacts("FR", "approved", "ours", "s", frozenset({"hair-loss"}), clinic=True),
            ),
            "FR",
            {"acne"},
            "not-approved",
        ),
        (
            "a more specific seeded row beats the clinic's national row",
            (
                StatusFacts("US", "approved", "ours", "s", clinic=True),
                StatusFacts("US-NY", "banned", "state", "s"),
            ),
            "US-NY",
            {"acne"},
            "banned",
        ),
        (
            "the clinic's general row beats a seeded row for the use",
            (
                StatusFacts("US", "approved", "s", "s", frozenset({"acne"})),
                StatusFacts("US", "banned", "ours", "s", clinic=True),
            ),
            "US",
            {"acne"},
            "banned",
        ),
        ("nothing covers the jurisdiction", KYBELLA_US, "FR", {"submental-fat"}, None),
    ],
)
def test_regulatory_precedence(
    name: str, rows: tuple[StatusFacts, ...], jurisdiction: str, indications: set[str], expected: str | None
) -> None:
    found = worst_status(applicable_statuses(rows, jurisdiction, frozenset(indications)))
    assert (found.status if found else None) == expected, name


status_rows = st.builds(
    StatusFacts,
    jurisdiction=st.sampled_from(["US", "US-NY", "US-CA", "FR", "BR"]),
    status=st.sampled_from(["approved", "approved-other-indication", "not-approved", "banned"]),
    use=st.sampled_from(["a", "b"]),
    source=st.just("s"),
    indications=st.frozensets(st.sampled_from(["acne", "hair-loss", "submental-fat"]), max_size=2),
    clinic=st.booleans(),
)


@given(
    rows=st.lists(status_rows, max_size=8),
    jurisdiction=st.sampled_from(["US", "US-NY", "FR", "DE"]),
    indications=st.frozensets(st.sampled_from(["acne", "hair-loss", "submental-fat"]), max_size=3),
)
@settings(max_examples=400)
def test_the_rows_that_speak_follow_the_precedence(
    rows: list[StatusFacts], jurisdiction: str, indications: frozenset[str]
) -> None:
    """For every use: if any row covers it, some row speaks, and every candidate that speaks is of the
    strongest kind (jurisdiction length, clinic, specific); nothing speaks that does not cover the use."""
    spoken = applicable_statuses(rows, jurisdiction, indications)
    covering = [
        row
        for row in rows
        if jurisdiction == row.jurisdiction or jurisdiction.startswith(row.jurisdiction + "-")
    ]
    assert all(row in covering for row in spoken)
    for use in indications:
        candidates = [row for row in covering if not row.indications or use in row.indications]
        speaking = [row for row in candidates if row in spoken]
        if not candidates:
            continue
        key = max((len(r.jurisdiction), r.clinic, bool(r.indications)) for r in candidates)
        best = [
            row for row in candidates if (len(row.jurisdiction), row.clinic, bool(row.indications)) == key
        ]
        assert speaking and set(best) <= set(speaking)
    if indications:
        assert all(not row.indications or row.indications & indications for row in spoken)


@given(value=st.decimals(allow_nan=True, allow_infinity=True))
@settings(max_examples=400)
def test_a_decimal_is_accepted_exactly_when_the_column_holds_it(value: Decimal) -> None:
    for limits in (VOLUME_LIMITS, STRENGTH_LIMITS):
        problem = decimal_problem(value, limits)
        storable = (
            value.is_finite() and 0 < value <= limits.maximum and value == value.quantize(limits.quantum)
        )
        assert (problem is None) == storable, (value, limits)
        signed = decimal_problem(value, limits, signed=True)
        assert (signed is None) == (
            value.is_finite()
            and value != 0
            and abs(value) <= limits.maximum
            and value == value.quantize(limits.quantum)
        )


@pytest.mark.parametrize(
    ("value", "limits", "fragment"),
    [
        (Decimal("1e13"), STRENGTH_LIMITS, "At most 99999999.9999"),
        (Decimal("123456789.12345"), STRENGTH_LIMITS, "At most 99999999.9999"),
        (Decimal("0.00001"), STRENGTH_LIMITS, "4 decimal places"),
        (Decimal("1.23456"), STRENGTH_LIMITS, "4 decimal places"),
        (Decimal("0.0005"), VOLUME_LIMITS, "3 decimal places"),
        (Decimal("0"), VOLUME_LIMITS, "more than zero"),
        (None, VOLUME_LIMITS, "Give a number"),
        (Decimal("99999999.9999"), STRENGTH_LIMITS, None),
        (Decimal("1E+2"), VOLUME_LIMITS, None),
        (Decimal("2.50000"), STRENGTH_LIMITS, None),  # trailing zeros are not precision
    ],
)
def test_decimal_problems(value: Decimal | None, limits: DecimalLimits, fragment: str | None) -> None:
    problem = decimal_problem(value, limits)
    assert (problem is None) == (fragment is None)
    if fragment is not None:
        assert problem is not None and fragment in problem


def test_the_limits_are_the_columns() -> None:
    from mesoclinic.formulary.models import FormulaComponent, PreparationLine, ProductComponent, StockMovement

    for model, name, limits in [
        (FormulaComponent, "concentration", STRENGTH_LIMITS),
        (ProductComponent, "strength", STRENGTH_LIMITS),
        (PreparationLine, "volume_ml", VOLUME_LIMITS),
        (StockMovement, "quantity_ml", VOLUME_LIMITS),
    ]:
        column = model._meta.get_field(name)
        assert (column.max_digits, column.decimal_places) == (limits.max_digits, limits.decimal_places)  # type: ignore[union-attr]


@given(hours=st.one_of(st.integers(min_value=-10, max_value=2**40), st.booleans(), st.none(), st.floats()))
@settings(max_examples=300)
def test_a_beyond_use_time_is_accepted_exactly_from_an_hour_to_a_year(hours: object) -> None:
    good = isinstance(hours, int) and not isinstance(hours, bool) and 1 <= hours <= MAX_BEYOND_USE_HOURS
    assert (beyond_use_hours_problem(hours) is None) == good
    if good:
        assert isinstance(hours, int)
        opened = datetime(9000, 1, 1, tzinfo=UTC)
        assert beyond_use_at(opened, hours) > opened  # never an overflow once accepted


DELIVERY_DAY = date(2026, 6, 1)


@given(
    received=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    expires=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    vials=st.one_of(st.integers(min_value=-5, max_value=200_000), st.booleans()),
)
@settings(max_examples=400)
def test_lot_receipt_problems_follow_the_dates(received: date, expires: date, vials: object) -> None:
    problems = lot_receipt_problems(
        number="L1", expires_on=expires, received_on=received, received_vials=vials, today=DELIVERY_DAY
    )
    plausible_receipt = received <= DELIVERY_DAY and (DELIVERY_DAY - received).days <= MAX_LOT_AGE_DAYS
    assert ("received_on" in problems) == (not plausible_receipt)
    if plausible_receipt:
        sane = received <= expires and (expires - received).days <= MAX_SHELF_LIFE_DAYS
        assert ("expires_on" in problems) == (not sane)
    else:
        assert "expires_on" not in problems
    counted = isinstance(vials, int) and not isinstance(vials, bool) and 0 < vials <= MAX_VIALS_PER_LOT
    assert ("received_vials" in problems) == (not counted)
    assert "number" not in problems
    assert "number" in lot_receipt_problems(
        number="", expires_on=DELIVERY_DAY, received_on=DELIVERY_DAY, received_vials=1, today=DELIVERY_DAY
    )

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
    CautionFacts,
    ComponentInput,
    FormulaInput,
    IngredientFacts,
    LotFacts,
    PatientFacts,
    PlannedFormulaFacts,
    StatusFacts,
    applicable_statuses,
    beyond_use_at,
    formula_findings,
    formula_input_problems,
    lot_findings,
    single_dose_vials,
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


NOBODY = PatientFacts()


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
            PatientFacts(pregnant=True),
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
            PatientFacts(may_become_pregnant=True),
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
    rows = [StatusFacts("FR", "banned", "fat", "s", FAT), StatusFacts("FR", "not-approved", "any", "s")]
    assert {row.use for row in applicable_statuses(rows, "FR", frozenset({"localized-fat"}))} == {
        "fat",
        "any",
    }
    assert {row.use for row in applicable_statuses(rows, "FR", frozenset({"hair-loss"}))} == {"any"}


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
    found = {f.code for f in formula_findings(planned, PatientFacts(allergies, pregnant, may), jurisdiction)}
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

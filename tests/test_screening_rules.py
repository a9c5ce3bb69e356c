"""screening.rules: every R-CAND-* code and R-PRE-NSAID, their boundaries, several findings at once, and
hypothesis over ages and dates. Pure: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.lib.findings import Finding
from mesoclinic.screening.rules import (
    FINDING_CODES,
    PREGNANCY_VALUES,
    RULES_VERSION,
    CautionFacts,
    ConditionRule,
    FormulaFacts,
    IngredientFacts,
    IntakeAnswers,
    IntakeFacts,
    InvalidFacts,
    MedicationAnswer,
    MedicationFacts,
    PatientFacts,
    PlannedFormula,
    ScreeningFacts,
    age_on,
    allergy_matches,
    expectation_phrases,
    intake_changes,
    intake_problems,
    medicine_name_keys,
    screen,
    verdict_of,
)

SESSION = date(2026, 6, 15)
ADULT = PatientFacts(date_of_birth=date(1985, 3, 2), sex="female")
MAN = PatientFacts(date_of_birth=date(1980, 1, 1), sex="male")

CATALOGUE = {
    rule.code: rule
    for rule in [
        ConditionRule(
            "bleeding-disorder", "significant-condition", "block", "R-CAND-MED", "Bleeding disorder", "s"
        ),
        ConditionRule("active-cancer", "significant-condition", "block", "R-CAND-MED", "Active cancer", "s"),
        ConditionRule("autoimmune", "significant-condition", "warn", "R-CAND-MED", "Autoimmune disease", "s"),
        ConditionRule(
            "diabetes-uncontrolled", "significant-condition", "warn", "R-CAND-MED", "Diabetes", "s"
        ),
        ConditionRule("site-infection", "site-infection", "block", "R-CAND-SITE", "Infection at site", "s"),
        ConditionRule("skin-disease-at-site", "site-infection", "block", "R-CAND-SITE", "Skin disease", "s"),
        ConditionRule("liver-disease", "health-concern", "warn", "R-CAND-HEALTH", "Liver disease", "s"),
        ConditionRule("kidney-disease", "health-concern", "warn", "R-CAND-HEALTH", "Kidney disease", "s"),
        ConditionRule("severe-cardiovascular", "health-concern", "warn", "R-CAND-HEALTH", "Heart", "s"),
        ConditionRule(
            "psychiatric-unstable", "health-concern", "warn", "R-CAND-HEALTH", "Psychological", "s"
        ),
        ConditionRule("dysphagia", "significant-condition", "warn", "R-CAND-MED", "Dysphagia", "s"),
    ]
}

APIXABAN = MedicationFacts("Eliquis", None, "apixaban", frozenset({"anticoagulant"}))
CLOPIDOGREL = MedicationFacts("Plavix", None, "clopidogrel", frozenset({"antiplatelet"}))
FINASTERIDE = MedicationFacts("Propecia", None, "finasteride", frozenset({"5-alpha-reductase-inhibitor"}))
ISOTRETINOIN = MedicationFacts("Roaccutane", None, "isotretinoin", frozenset({"isotretinoin"}))
METHOTREXATE = MedicationFacts("methotrexate", None, "methotrexate", frozenset({"immunosuppressant"}))
PARACETAMOL = MedicationFacts("Tylenol", SESSION, "paracetamol", frozenset({"other"}))


def ibuprofen(last: date | None) -> MedicationFacts:
    return MedicationFacts("Advil", last, "ibuprofen", frozenset({"nsaid"}))


def aspirin(last: date | None) -> MedicationFacts:
    return MedicationFacts("Bufferin", last, "aspirin", frozenset({"nsaid", "antiplatelet"}))


PC = IngredientFacts(
    code="phosphatidylcholine",
    name="Phosphatidylcholine",
    cautions=(CautionFacts("soy", "soy-derived; an inference, no label says it", "literature: inference"),),
)
HYALURONIDASE = IngredientFacts(
    code="hyaluronidase",
    name="Hyaluronidase",
    cautions=(CautionFacts("bee-wasp-venom", "skin test first", "literature: hyaluronidase label"),),
)
LIDOCAINE = IngredientFacts(
    code="lidocaine", name="Lidocaine", allergy_groups=frozenset({"amide-local-anaesthetics"})
)
FINASTERIDE_INGREDIENT = IngredientFacts(code="finasteride", name="Finasteride", teratogen=True)
FAT_FORMULA = FormulaFacts(
    name="Lipo mix", ingredients=(PC, LIDOCAINE), indications=frozenset({"localized-fat"})
)
HAIR_FORMULA = FormulaFacts(
    name="Hair mix", ingredients=(FINASTERIDE_INGREDIENT,), indications=frozenset({"hair-loss"})
)
SKIN_FORMULA = FormulaFacts(
    name="Glow", ingredients=(HYALURONIDASE,), indications=frozenset({"rejuvenation"})
)


def facts(**changes: object) -> ScreeningFacts:
    """A healthy adult with a stable weight and modest goals, unless told otherwise."""
    intake_changes_ = {
        key: value for key, value in changes.items() if key in IntakeFacts.__dataclass_fields__
    }
    other = {key: value for key, value in changes.items() if key not in IntakeFacts.__dataclass_fields__}
    intake = IntakeFacts(
        version=1, pregnancy="none", weight_stable=True, goals="Smoother thighs before summer."
    )
    intake = replace(intake, **intake_changes_)  # type: ignore[arg-type]
    base = ScreeningFacts(patient=ADULT, intake=intake, session_date=SESSION, conditions=CATALOGUE)
    return replace(base, **other)  # type: ignore[arg-type]


def codes(findings: tuple[Finding, ...]) -> list[tuple[str, str]]:
    return [(finding.code, finding.severity) for finding in findings]


# --- one table: every code, its trigger, its severity -------------------------------------------------

CASES: list[tuple[str, ScreeningFacts, list[tuple[str, str]], str]] = [
    ("healthy adult", facts(), [], "eligible"),
    (
        "17 the day before the 18th birthday",
        facts(patient=PatientFacts(date(2008, 6, 16), "female")),
        [("age-under-18", "block")],
        "ineligible",
    ),
    ("18th birthday itself", facts(patient=PatientFacts(date(2008, 6, 15), "female")), [], "eligible"),
    ("pregnant", facts(pregnancy="pregnant"), [("pregnant", "block")], "ineligible"),
    ("breastfeeding", facts(pregnancy="breastfeeding"), [("breastfeeding", "block")], "ineligible"),
    ("planning a pregnancy", facts(pregnancy="planning"), [("pregnant", "warn")], "review"),
    ("anticoagulant", facts(medications=(APIXABAN,)), [("anticoagulant", "warn")], "review"),
    ("antiplatelet", facts(medications=(CLOPIDOGREL,)), [("anticoagulant", "warn")], "review"),
    (
        "two blood thinners: one finding naming both",
        facts(medications=(APIXABAN, CLOPIDOGREL)),
        [("anticoagulant", "warn")],
        "review",
    ),
    ("paracetamol is not an NSAID", facts(medications=(PARACETAMOL,)), [], "eligible"),
    (
        "bleeding disorder blocks",
        facts(conditions=("bleeding-disorder",)),
        [("significant-condition", "block")],
        "ineligible",
    ),
    (
        "active cancer blocks",
        facts(conditions=("active-cancer",)),
        [("significant-condition", "block")],
        "ineligible",
    ),
    ("autoimmune warns", facts(conditions=("autoimmune",)), [("significant-condition", "warn")], "review"),
    (
        "uncontrolled diabetes warns",
        facts(conditions=("diabetes-uncontrolled",)),
        [("significant-condition", "warn")],
        "review",
    ),
    ("dysphagia warns", facts(conditions=("dysphagia",)), [("significant-condition", "warn")], "review"),
    (
        "dysphagia blocks under the chin",
        facts(conditions=("dysphagia",), areas=("submental",)),
        [("significant-condition", "block")],
        "ineligible",
    ),
    (
        "dysphagia with the abdomen only warns",
        facts(conditions=("dysphagia",), areas=("abdomen",)),
        [("significant-condition", "warn")],
        "review",
    ),
    (
        "infection at the site",
        facts(conditions=("site-infection",)),
        [("site-infection", "block")],
        "ineligible",
    ),
    (
        "skin disease at the site",
        facts(conditions=("skin-disease-at-site",)),
        [("site-infection", "block")],
        "ineligible",
    ),
    ("liver disease", facts(conditions=("liver-disease",)), [("health-concern", "warn")], "review"),
    ("kidney disease", facts(conditions=("kidney-disease",)), [("health-concern", "warn")], "review"),
    (
        "severe heart disease",
        facts(conditions=("severe-cardiovascular",)),
        [("health-concern", "warn")],
        "review",
    ),
    (
        "psychiatric, unstable",
        facts(conditions=("psychiatric-unstable",)),
        [("health-concern", "warn")],
        "review",
    ),
    (
        "a condition no longer in the catalogue",
        facts(conditions=("retired-code",)),
        [("significant-condition", "warn")],
        "review",
    ),
    ("isotretinoin", facts(medications=(ISOTRETINOIN,)), [("health-concern", "warn")], "review"),
    ("immunosuppressant", facts(medications=(METHOTREXATE,)), [("health-concern", "warn")], "review"),
    (
        "unrealistic goals",
        facts(goals="I want to lose 15 kg without dieting"),
        [("unrealistic-expectations", "warn")],
        "review",
    ),
    ("weight not stable, no formula", facts(weight_stable=False), [("unstable-weight", "warn")], "review"),
    ("weight unknown, no formula", facts(weight_stable=None), [("unstable-weight", "info")], "eligible"),
    (
        "weight unknown, fat formula",
        facts(weight_stable=None, formula=FAT_FORMULA),
        [("unstable-weight", "warn")],
        "review",
    ),
    (
        "weight not stable, fat formula",
        facts(weight_stable=False, formula=FAT_FORMULA),
        [("unstable-weight", "warn")],
        "review",
    ),
    (
        "weight not stable, rejuvenation formula: not a fat indication",
        facts(weight_stable=False, formula=SKIN_FORMULA),
        [],
        "eligible",
    ),
    (
        "lidocaine allergy by the ingredient's name",
        facts(allergies=("Lidocaine",), formula=FAT_FORMULA),
        [("allergy", "block")],
        "ineligible",
    ),
    (
        "allergy to a group member (xylocaine → amide local anaesthetics)",
        facts(allergies=("allergic to Xylocaine at the dentist",), formula=FAT_FORMULA),
        [("allergy", "block")],
        "ineligible",
    ),
    (
        "soy allergy and phosphatidylcholine",
        facts(allergies=("Soya",), formula=FAT_FORMULA),
        [("allergy-caution", "warn")],
        "review",
    ),
    (
        "wasp venom and hyaluronidase",
        facts(allergies=("wasp stings",), formula=SKIN_FORMULA),
        [("allergy-caution", "warn")],
        "review",
    ),
    ("soy allergy, no formula planned", facts(allergies=("soy",)), [], "eligible"),
    (
        "finasteride formula, planning a pregnancy",
        facts(pregnancy="planning", formula=HAIR_FORMULA),
        [("teratogen", "block"), ("pregnant", "warn")],
        "ineligible",
    ),
    ("finasteride formula, a woman", facts(formula=HAIR_FORMULA), [("teratogen", "warn")], "review"),
    ("finasteride formula, a man", facts(patient=MAN, formula=HAIR_FORMULA), [], "eligible"),
    (
        "takes finasteride while pregnant",
        facts(pregnancy="pregnant", medications=(FINASTERIDE,)),
        [("pregnant", "block"), ("teratogen", "block")],
        "ineligible",
    ),
    ("takes finasteride, a man", facts(patient=MAN, medications=(FINASTERIDE,)), [], "eligible"),
    (
        "NSAID 6 days before",
        facts(medications=(ibuprofen(SESSION - timedelta(days=6)),)),
        [("nsaid-washout", "warn")],
        "review",
    ),
    (
        "NSAID exactly 7 days before",
        facts(medications=(ibuprofen(SESSION - timedelta(days=7)),)),
        [],
        "eligible",
    ),
    (
        "NSAID on the session day",
        facts(medications=(ibuprofen(SESSION),)),
        [("nsaid-washout", "warn")],
        "review",
    ),
    (
        "NSAID, last dose unknown",
        facts(medications=(ibuprofen(None),)),
        [("nsaid-washout", "warn")],
        "review",
    ),
    (
        "aspirin 3 days before: blood thinner and washout",
        facts(medications=(aspirin(SESSION - timedelta(days=3)),)),
        [("anticoagulant", "warn"), ("nsaid-washout", "warn")],
        "review",
    ),
    (
        "aspirin stopped 8 days before: still a listed blood thinner",
        facts(medications=(aspirin(SESSION - timedelta(days=8)),)),
        [("anticoagulant", "warn")],
        "review",
    ),
    (
        "unknown medicine",
        facts(medications=(MedicationFacts("Zorblax 20", None),)),
        [("unknown-medicine", "warn")],
        "review",
    ),
    (
        "several at once: minor, pregnant, anticoagulant, washout, infection, expectations",
        facts(
            patient=PatientFacts(date(2010, 1, 1), "female"),
            pregnancy="pregnant",
            conditions=("site-infection", "autoimmune"),
            medications=(APIXABAN, ibuprofen(SESSION - timedelta(days=2))),
            goals="Permanent results please",
        ),
        [
            ("age-under-18", "block"),
            ("pregnant", "block"),
            ("site-infection", "block"),
            ("significant-condition", "warn"),
            ("anticoagulant", "warn"),
            ("nsaid-washout", "warn"),
            ("unrealistic-expectations", "warn"),
        ],
        "ineligible",
    ),
]


@pytest.mark.parametrize(
    ("name", "given_facts", "expected", "verdict"), CASES, ids=[case[0] for case in CASES]
)
def test_screening_table(
    name: str, given_facts: ScreeningFacts, expected: list[tuple[str, str]], verdict: str
) -> None:
    result = screen(given_facts)
    assert codes(result.findings) == expected
    assert result.verdict == verdict
    assert result.intake_version == 1
    assert result.rules_version == RULES_VERSION
    for finding in result.findings:
        spec = FINDING_CODES[finding.code]
        assert finding.rule == spec.rule
        assert finding.severity in spec.severities
        assert finding.message and finding.source


def test_every_code_in_the_registry_is_reached_with_every_severity_it_declares() -> None:
    reached = {(code, severity) for *_, expected, _ in CASES for code, severity in expected}
    declared = {(code, severity) for code, spec in FINDING_CODES.items() for severity in spec.severities}
    assert declared == reached


def test_the_registry_names_every_code_of_domain_md() -> None:
    domain = {
        "age-under-18": "R-CAND-AGE",
        "pregnant": "R-CAND-PREG",
        "breastfeeding": "R-CAND-BF",
        "anticoagulant": "R-CAND-ANTICOAG",
        "significant-condition": "R-CAND-MED",
        "health-concern": "R-CAND-HEALTH",
        "unrealistic-expectations": "R-CAND-EXPECT",
        "unstable-weight": "R-CAND-WEIGHT",
        "allergy": "R-CAND-ALLERGY",
        "allergy-caution": "R-CAND-XALLERGY",
        "teratogen": "R-CAND-ANDRO",
        "site-infection": "R-CAND-SITE",
        "nsaid-washout": "R-PRE-NSAID",
    }
    assert {code: FINDING_CODES[code].rule for code in domain} == domain
    assert set(FINDING_CODES) - set(domain) == {"unknown-medicine"}


def test_findings_come_most_serious_first() -> None:
    result = screen(facts(weight_stable=None, pregnancy="pregnant", medications=(APIXABAN,)))
    assert [finding.severity for finding in result.findings] == ["block", "warn", "info"]


def test_verdict_of() -> None:
    block = Finding("x", "block", "R", "m", "s")
    warn = Finding("x", "warn", "R", "m", "s")
    info = Finding("x", "info", "R", "m", "s")
    assert verdict_of([]) == "eligible"
    assert verdict_of([info]) == "eligible"
    assert verdict_of([info, warn]) == "review"
    assert verdict_of([warn, block]) == "ineligible"


def test_the_washout_message_says_how_long_ago() -> None:
    result = screen(facts(medications=(ibuprofen(SESSION - timedelta(days=3)),)))
    assert "3 day(s)" in result.findings[0].message
    assert "ibuprofen (Advil)" in result.findings[0].message


# --- boundaries: the 18th birthday, leap days, the washout ----------------------------------------------


@pytest.mark.parametrize(
    ("born", "day", "age"),
    [
        (date(2008, 6, 15), date(2026, 6, 14), 17),
        (date(2008, 6, 15), date(2026, 6, 15), 18),
        (date(2008, 2, 29), date(2026, 2, 28), 17),  # leap-day birth, common year: not yet
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 29), 20),  # leap year: on the day
        (date(2008, 2, 29), date(2028, 2, 28), 19),
        (date(2000, 12, 31), date(2001, 1, 1), 0),
        (date(1990, 1, 1), date(1990, 1, 1), 0),
    ],
)
def test_age_on(born: date, day: date, age: int) -> None:
    assert age_on(born, day) == age


@pytest.mark.parametrize(
    ("born", "session", "minor"),
    [
        (date(2008, 2, 29), date(2026, 2, 28), True),
        (date(2008, 2, 29), date(2026, 3, 1), False),
        (date(2008, 6, 15), date(2026, 6, 14), True),
        (date(2008, 6, 15), date(2026, 6, 15), False),
    ],
)
def test_age_rule_on_birthdays(born: date, session: date, minor: bool) -> None:
    result = screen(facts(patient=PatientFacts(born, "female"), session_date=session))
    assert (("age-under-18", "block") in codes(result.findings)) == minor


@pytest.mark.parametrize(("days_before", "warns"), [(0, True), (1, True), (6, True), (7, False), (8, False)])
def test_nsaid_washout_boundary(days_before: int, warns: bool) -> None:
    result = screen(facts(medications=(ibuprofen(SESSION - timedelta(days=days_before)),)))
    assert (("nsaid-washout", "warn") in codes(result.findings)) == warns


def test_a_last_dose_after_the_session_is_invalid() -> None:
    with pytest.raises(InvalidFacts) as raised:
        screen(facts(medications=(ibuprofen(SESSION + timedelta(days=1)),)))
    assert raised.value.field == "on"


def test_a_session_before_birth_is_invalid() -> None:
    with pytest.raises(InvalidFacts) as raised:
        screen(facts(patient=PatientFacts(SESSION + timedelta(days=1), "female")))
    assert raised.value.field == "on"


# --- hypothesis over ages and dates ---------------------------------------------------------------------

dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@given(born=dates, session=dates)
@settings(max_examples=400)
def test_age_finding_exactly_when_under_18(born: date, session: date) -> None:
    given_facts = facts(patient=PatientFacts(born, "female"), session_date=session)
    if born > session:
        with pytest.raises(InvalidFacts):
            screen(given_facts)
        return
    found = ("age-under-18", "block") in codes(screen(given_facts).findings)
    try:
        eighteenth = born.replace(year=born.year + 18)
    except ValueError:  # 29 February → 1 March in a common year
        eighteenth = date(born.year + 18, 3, 1)
    assert found == (session < eighteenth)


@given(born=dates, session=dates)
@settings(max_examples=300)
def test_age_is_monotonic_and_within_a_year_of_the_day_count(born: date, session: date) -> None:
    if born > session:
        return
    age = age_on(born, session)
    assert age >= 0
    assert age <= (session - born).days / 365 + 1
    assert age_on(born, session + timedelta(days=366)) >= age + 1 - (1 if born.month == 2 else 0)


@given(last=dates, session=dates, pregnancy=st.sampled_from(PREGNANCY_VALUES))
@settings(max_examples=400)
def test_nsaid_washout_exactly_within_seven_days(last: date, session: date, pregnancy: str) -> None:
    given_facts = facts(
        patient=PatientFacts(date(1880, 1, 1), "female"),
        medications=(aspirin(last),),
        pregnancy=pregnancy,
        session_date=session,
    )
    if last > session:
        with pytest.raises(InvalidFacts):
            screen(given_facts)
        return
    result = screen(given_facts)
    assert (("nsaid-washout", "warn") in codes(result.findings)) == ((session - last).days < 7)
    assert ("anticoagulant", "warn") in codes(result.findings)
    assert result.verdict in ("review", "ineligible")


@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)),
    days=st.integers(min_value=0, max_value=40_000),
    weight=st.sampled_from([True, False, None]),
    goals=st.text(max_size=200),
    allergies=st.lists(st.text(max_size=30), max_size=4),
)
@settings(max_examples=300)
def test_screen_never_fails_on_valid_facts(
    born: date, days: int, weight: bool | None, goals: str, allergies: list[str]
) -> None:
    session = born + timedelta(days=days)
    result = screen(
        facts(
            patient=PatientFacts(born, "other"),
            session_date=session,
            weight_stable=weight,
            goals=goals,
            allergies=tuple(allergies),
            formula=FAT_FORMULA,
        )
    )
    assert result.verdict == verdict_of(result.findings)
    assert all(finding.code in FINDING_CODES for finding in result.findings)


# --- helpers: names, allergies, expectations, intake validation and changes -----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Eliquis", ("eliquis",)),
        ("  ELIQUIS  5 mg ", ("eliquis 5 mg", "eliquis")),
        ("Advil 200mg", ("advil 200mg", "advil")),
        ("baby aspirin", ("baby aspirin", "baby", "aspirin")),
        ("Éliquis", ("eliquis",)),
        ("", ()),
    ],
)
def test_medicine_name_keys(text: str, expected: tuple[str, ...]) -> None:
    assert medicine_name_keys(text) == expected


@pytest.mark.parametrize(
    ("allergies", "term", "matched"),
    [
        (("Soy",), "soy", ["Soy"]),
        (("soya milk",), "soy", ["soya milk"]),
        (("soybean oil",), "soy", ["soybean oil"]),
        (("Soyuz rocket",), "soy", []),
        (("bee stings", "latex"), "bee-wasp-venom", ["bee stings"]),
        (("LIDOCAINE",), "lidocaine", ["LIDOCAINE"]),
        (("lidocaine-free cream ok",), "procaine", []),
        (("penicillin",), "amide-local-anaesthetics", []),
    ],
)
def test_allergy_matches(allergies: tuple[str, ...], term: str, matched: list[str]) -> None:
    assert allergy_matches(allergies, term) == matched


@pytest.mark.parametrize(
    ("goals", "unrealistic"),
    [
        ("Lose the love handles that stay despite running", False),
        ("Lose 3 kg around the waist", False),
        ("Lose 12 kg for the wedding", True),
        ("lose 25 lbs", True),
        ("lose 15 lbs", False),
        ("Permanent results", True),
        ("résultats définitifs", True),
        ("instead of going on a diet", True),
        ("à la place du régime", True),
        ("without exercise", True),
        ("overnight change", True),
        ("", False),
    ],
)
def test_expectation_phrases(goals: str, unrealistic: bool) -> None:
    assert bool(expectation_phrases(goals)) == unrealistic


KNOWN = frozenset(CATALOGUE)
TODAY = date(2026, 5, 1)


@pytest.mark.parametrize(
    ("answers", "fields"),
    [
        (IntakeAnswers(pregnancy="none"), set()),
        (IntakeAnswers(pregnancy="maybe"), {"pregnancy"}),
        (IntakeAnswers(pregnancy="none", conditions=("autoimmune", "flu")), {"conditions"}),
        (
            IntakeAnswers(
                pregnancy="none", medications=(MedicationAnswer("Advil", TODAY + timedelta(days=1)),)
            ),
            {"medications.0.last_taken"},
        ),
        (IntakeAnswers(pregnancy="none", medications=(MedicationAnswer("Advil", TODAY),)), set()),
        (IntakeAnswers(pregnancy="none", medications=(MedicationAnswer(" ", None),)), {"medications.0.name"}),
        (IntakeAnswers(pregnancy="none", allergies=("",)), {"allergies.0"}),
        (IntakeAnswers(pregnancy="none", goals="x" * 2001), {"goals"}),
        (IntakeAnswers(pregnancy="none", allergies=("x",) * 41), {"allergies"}),
    ],
)
def test_intake_problems(answers: IntakeAnswers, fields: set[str]) -> None:
    assert set(intake_problems(answers, today=TODAY, known_conditions=KNOWN)) == fields


def test_intake_changes_lists_what_changed() -> None:
    before = IntakeAnswers(
        pregnancy="none",
        conditions=("autoimmune",),
        medications=(MedicationAnswer("Advil", date(2026, 4, 1)),),
        allergies=("soy",),
        weight_stable=None,
        goals="Thighs",
    )
    after = IntakeAnswers(
        pregnancy="planning",
        conditions=("autoimmune", "liver-disease"),
        medications=(MedicationAnswer("Advil", date(2026, 4, 20)), MedicationAnswer("Eliquis", None)),
        allergies=("soy",),
        weight_stable=True,
        goals="Thighs",
    )
    changes = {change.field: change for change in intake_changes(before, after)}
    assert set(changes) == {"pregnancy", "conditions", "medications", "weight_stable"}
    assert (changes["pregnancy"].before, changes["pregnancy"].after) == ("none", "planning")
    assert changes["conditions"].added == ("liver-disease",)
    assert changes["conditions"].removed == ()
    assert changes["medications"].added == ("Advil (2026-04-20)", "Eliquis")
    assert changes["medications"].removed == ("Advil (2026-04-01)",)
    assert (changes["weight_stable"].before, changes["weight_stable"].after) == ("unknown", "yes")
    assert intake_changes(after, after) == []


def test_the_formularys_planned_formula_facts_plug_into_screening() -> None:
    """The contract with the formulary: its PlannedFormulaFacts is a screening PlannedFormula as it is."""
    from mesoclinic.formulary import rules as formulary

    planned: PlannedFormula = formulary.PlannedFormulaFacts(
        name="Lipo mix",
        ingredients=(
            formulary.IngredientFacts(
                code="phosphatidylcholine",
                name="Phosphatidylcholine",
                cautions=(formulary.CautionFacts("soy", "soy-derived", "literature: inference"),),
            ),
            formulary.IngredientFacts(code="finasteride", name="Finasteride", teratogen=True),
        ),
        indications=frozenset({"localized-fat"}),
    )
    result = screen(facts(allergies=("soy",), pregnancy="planning", formula=planned))
    assert codes(result.findings) == [
        ("teratogen", "block"),
        ("pregnant", "warn"),
        ("allergy-caution", "warn"),
    ]

"""screening.rules: every R-CAND-* code, R-PRE-NSAID and (for a planned formula) R-REG, their boundaries,
several findings at once, what a medicine line names, review dates and staleness, the clinic's catalogue
additions, and hypothesis over ages and dates. Pure: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.formulary.rules import CautionFacts, IngredientFacts, PlannedFormulaFacts, StatusFacts
from mesoclinic.lib.findings import Finding, resolve_acknowledgement_keys, warning_keys
from mesoclinic.screening.rules import (
    FINDING_CODES,
    PREGNANCY_VALUES,
    REVIEW_HORIZON_DAYS,
    REVIEW_VALIDITY_DAYS,
    RULES_VERSION,
    CatalogueMedicine,
    ConditionRule,
    IntakeAnswers,
    IntakeFacts,
    InvalidFacts,
    MedicationAnswer,
    MedicationFacts,
    PatientFacts,
    ScreeningFacts,
    age_on,
    clean_answers,
    expectation_phrases,
    intake_changes,
    intake_problems,
    medicine_entry_problems,
    medicine_name_keys,
    medicine_name_problem,
    resolve_medicine,
    review_date_problem,
    review_stale_reasons,
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

APIXABAN_ = CatalogueMedicine("apixaban", frozenset({"anticoagulant"}))
IBUPROFEN_ = CatalogueMedicine("ibuprofen", frozenset({"nsaid"}))
ASPIRIN_ = CatalogueMedicine("aspirin", frozenset({"nsaid", "antiplatelet"}))
PARACETAMOL_ = CatalogueMedicine("paracetamol", frozenset({"other"}))


def med(
    name: str, last: date | None, *medicines: CatalogueMedicine, unrecognised: tuple[str, ...] = ()
) -> MedicationFacts:
    return MedicationFacts(name, last, medicines, unrecognised)


APIXABAN = med("Eliquis", None, APIXABAN_)
CLOPIDOGREL = med("Plavix", None, CatalogueMedicine("clopidogrel", frozenset({"antiplatelet"})))
FINASTERIDE = med(
    "Propecia", None, CatalogueMedicine("finasteride", frozenset({"5-alpha-reductase-inhibitor"}))
)
ISOTRETINOIN = med("Roaccutane", None, CatalogueMedicine("isotretinoin", frozenset({"isotretinoin"})))
METHOTREXATE = med("methotrexate", None, CatalogueMedicine("methotrexate", frozenset({"immunosuppressant"})))
PARACETAMOL = med("Tylenol", SESSION, PARACETAMOL_)


def ibuprofen(last: date | None) -> MedicationFacts:
    return med("Advil", last, IBUPROFEN_)


def aspirin(last: date | None) -> MedicationFacts:
    return med("Bufferin", last, ASPIRIN_)


# Every test ingredient is approved in the test jurisdiction ("US") unless said otherwise, so that the tables
# speak of the patient; the R-REG cases below use statuses of their own.
APPROVED = (StatusFacts("US", "approved", "test", "s"),)
PC = IngredientFacts(
    code="phosphatidylcholine",
    name="Phosphatidylcholine",
    cautions=(CautionFacts("soy", "soy-derived; an inference, no label says it", "literature: inference"),),
    statuses=APPROVED,
)
HYALURONIDASE = IngredientFacts(
    code="hyaluronidase",
    name="Hyaluronidase",
    cautions=(CautionFacts("bee-wasp-venom", "skin test first", "literature: hyaluronidase label"),),
    statuses=APPROVED,
)
LIDOCAINE = IngredientFacts(
    code="lidocaine",
    name="Lidocaine",
    allergy_groups=frozenset({"amide-local-anaesthetics"}),
    statuses=APPROVED,
)
FINASTERIDE_INGREDIENT = IngredientFacts(
    code="finasteride", name="Finasteride", teratogen=True, statuses=APPROVED
)
FAT_FORMULA = PlannedFormulaFacts(
    name="Lipo mix", ingredients=(PC, LIDOCAINE), indications=frozenset({"localized-fat"})
)
HAIR_FORMULA = PlannedFormulaFacts(
    name="Hair mix", ingredients=(FINASTERIDE_INGREDIENT,), indications=frozenset({"hair-loss"})
)
SKIN_FORMULA = PlannedFormulaFacts(
    name="Glow", ingredients=(HYALURONIDASE,), indications=frozenset({"rejuvenation"})
)
FAT = frozenset({"localized-fat", "weight-loss", "cellulite"})
# Injection lipolysis with its real statuses (domain.md R-REG): banned for fat in France, unapproved
# (compounded) in the US; deoxycholic acid approved in the US for submental fat only.
LIPOLYSIS = PlannedFormulaFacts(
    name="PC/DC",
    ingredients=(
        IngredientFacts(
            code="phosphatidylcholine",
            name="Phosphatidylcholine",
            statuses=(
                StatusFacts("US", "not-approved", "compounded", "s-us"),
                StatusFacts("FR", "banned", "fat lysis", "s-fr", FAT),
            ),
        ),
        IngredientFacts(
            code="deoxycholic-acid",
            name="Deoxycholic acid",
            statuses=(
                StatusFacts("US", "approved-other-indication", "submental fat only", "s-kybella"),
                StatusFacts("FR", "banned", "fat lysis", "s-fr", FAT),
            ),
        ),
    ),
    indications=frozenset({"localized-fat"}),
    procedure_statuses=(
        StatusFacts("US", "not-approved", "mesotherapy is not FDA-approved", "003"),
        StatusFacts("FR", "banned", "fat lysis by mesotherapy mixtures", "decree", FAT),
    ),
)


def facts(**changes: object) -> ScreeningFacts:
    """A healthy adult with a stable weight and modest goals, in a US clinic, unless told otherwise."""
    intake_changes_ = {
        key: value for key, value in changes.items() if key in IntakeFacts.__dataclass_fields__
    }
    other = {key: value for key, value in changes.items() if key not in IntakeFacts.__dataclass_fields__}
    intake = IntakeFacts(
        version=1, pregnancy="none", weight_stable=True, goals="Smoother thighs before summer."
    )
    intake = replace(intake, **intake_changes_)  # type: ignore[arg-type]
    base = ScreeningFacts(
        patient=ADULT, intake=intake, session_date=SESSION, conditions=CATALOGUE, jurisdiction="US"
    )
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
        "two blood thinners: one finding each, to acknowledge one by one",
        facts(medications=(APIXABAN, CLOPIDOGREL)),
        [("anticoagulant", "warn"), ("anticoagulant", "warn")],
        "review",
    ),
    (
        "one line, two medicines: the anticoagulant and the NSAID both count",
        facts(medications=(med("Eliquis and Advil", SESSION - timedelta(days=2), APIXABAN_, IBUPROFEN_),)),
        [("anticoagulant", "warn"), ("nsaid-washout", "warn")],
        "review",
    ),
    (
        "a line recognised in part is checked by a person",
        facts(
            medications=(
                med("Advil + Zorblax", SESSION - timedelta(days=9), IBUPROFEN_, unrecognised=("zorblax",)),
            )
        ),
        [("unknown-medicine", "warn")],
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
        "R-REG: PC/DC for fat in France is banned (the ingredients and the mixture)",
        facts(formula=LIPOLYSIS, jurisdiction="FR"),
        [("banned-in-jurisdiction", "block")] * 3,
        "ineligible",
    ),
    (
        "R-REG: PC/DC in the US: PC unapproved, deoxycholic acid off-label, procedure not approved",
        facts(formula=LIPOLYSIS),
        [("not-approved", "warn"), ("off-label", "warn"), ("procedure-not-approved", "info")],
        "review",
    ),
    (
        "R-REG: no status recorded where the clinic is",
        facts(formula=SKIN_FORMULA, jurisdiction="DE"),
        [("regulatory-unknown", "info")],
        "eligible",
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
    regulatory = {"banned-in-jurisdiction", "not-approved", "off-label", "regulatory-unknown"}
    assert set(FINDING_CODES) - set(domain) == {"unknown-medicine", "procedure-not-approved", *regulatory}
    assert {FINDING_CODES[code].rule for code in regulatory} == {"R-REG"}


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


# --- what a medicine line names ----------------------------------------------------------------------------

C = CatalogueMedicine
LINE_CATALOGUE: dict[str, CatalogueMedicine] = {
    "eliquis": APIXABAN_,
    "apixaban": APIXABAN_,
    "advil": IBUPROFEN_,
    "ibuprofen": IBUPROFEN_,
    "ibuprofene": IBUPROFEN_,
    "aspirin": ASPIRIN_,
    "aspirine": ASPIRIN_,
    "acide acetylsalicylique": ASPIRIN_,
    "baby aspirin": ASPIRIN_,
    "low-dose aspirin": ASPIRIN_,
    "excedrin": ASPIRIN_,
    "bayer aspirin": ASPIRIN_,
    "bayer": ASPIRIN_,
    "aspirin/dipyridamole": C("aspirin/dipyridamole", frozenset({"nsaid", "antiplatelet"})),
    "kardegic": ASPIRIN_,
    "tylenol": PARACETAMOL_,
    "vitamin d": C("vitamin d", frozenset({"other"})),
    "advil liqui-gels": IBUPROFEN_,
}


def resolved(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys = medicine_name_keys(text)
    result = resolve_medicine(text, {key: LINE_CATALOGUE[key] for key in keys if key in LINE_CATALOGUE})
    return result.generic_names, result.unrecognised


@pytest.mark.parametrize(
    ("text", "generics", "unrecognised"),
    [
        ("Eliquis", ("apixaban",), ()),
        ("ELIQUIS 5 mg", ("apixaban",), ()),
        ("Éliquis", ("apixaban",), ()),
        ("Eliquis and Advil", ("apixaban", "ibuprofen"), ()),
        ("Eliquis & Advil 200mg", ("apixaban", "ibuprofen"), ()),
        ("Advil, aspirin", ("ibuprofen", "aspirin"), ()),
        ("advil/aspirin", ("ibuprofen", "aspirin"), ()),
        ("Eliquis Advil", ("apixaban", "ibuprofen"), ()),
        ("Advil twice daily when needed", ("ibuprofen",), ()),
        ("aspirin/dipyridamole", ("aspirin/dipyridamole",), ()),
        ("Advil Liqui-Gels", ("ibuprofen",), ()),
        ("baby aspirin 81 mg", ("aspirin",), ()),
        ("Bayer Aspirin", ("aspirin",), ()),
        ("acide acétylsalicylique 75 mg", ("aspirin",), ()),
        ("Kardégic et ibuprofène", ("aspirin", "ibuprofen"), ()),
        ("Vitamin D and Advil", ("vitamin d", "ibuprofen"), ()),
        # negations: the named medicine is absent, and so is every other name of it on the line
        ("Aspirin-free Excedrin", (), ("excedrin",)),
        ("Excedrin aspirin free", (), ("excedrin",)),
        ("no aspirin", (), ()),
        ("sans aspirine", (), ()),
        ("pas d'aspirine, Advil", ("ibuprofen",), ()),
        ("no aspirin and Advil", ("ibuprofen",), ()),
        ("Eliquis, no pain, Advil", ("apixaban", "ibuprofen"), ()),
        ("gluten-free Tylenol", ("paracetamol",), ()),
        # partly or not recognised: a word that looks like a medicine name is left over
        ("Eliquis + Zorblax", ("apixaban",), ("zorblax",)),
        ("Zorblax", (), ("zorblax",)),
        ("Zorblax 20", (), ("zorblax",)),
        ("", (), ()),
    ],
)
def test_what_a_medicine_line_names(
    text: str, generics: tuple[str, ...], unrecognised: tuple[str, ...]
) -> None:
    assert resolved(text) == (generics, unrecognised)


def test_every_medicine_of_a_line_counts_once_with_the_union_of_classes() -> None:
    keys = medicine_name_keys("Advil, aspirin and Advil again")
    result = resolve_medicine(
        "Advil, aspirin and Advil again", {k: LINE_CATALOGUE[k] for k in keys if k in LINE_CATALOGUE}
    )
    assert result.generic_names == ("ibuprofen", "aspirin")
    assert result.classes == {"nsaid", "antiplatelet"}
    assert result.unrecognised == ("again",)  # looks like a name: a person checks it


def test_the_keys_of_a_line() -> None:
    assert medicine_name_keys("Eliquis and Advil 200 mg twice daily") == (
        "eliquis and advil 200 mg twice daily",
        "eliquis and advil twice daily",
        "eliquis",
        "advil",
    )
    assert medicine_name_keys("  ELIQUIS  5 mg ") == ("eliquis 5 mg", "eliquis")
    assert "acide acetylsalicylique" in medicine_name_keys("Acide acétylsalicylique")
    assert "aspirin" in medicine_name_keys("Aspirin-free Excedrin")  # looked up, to be named as absent
    assert medicine_name_keys("") == ()


names = st.sampled_from(["Eliquis", "Advil", "aspirin", "Tylenol", "ibuprofène", "Kardégic"])
joins = st.sampled_from([" and ", ", ", " + ", " & ", "/", " et ", "; ", " with "])


@given(first=names, second=names, join=joins, dose=st.integers(min_value=0, max_value=2000))
@settings(max_examples=300)
def test_two_names_joined_in_any_way_are_both_found(first: str, second: str, join: str, dose: int) -> None:
    text = f"{first} {dose} mg{join}{second}"
    found, unrecognised = resolved(text)
    expected = {LINE_CATALOGUE[fold_(first)].generic_name, LINE_CATALOGUE[fold_(second)].generic_name}
    assert set(found) == expected
    assert unrecognised == ()


def fold_(text: str) -> str:
    from mesoclinic.lib.text import fold

    return fold(text)


@given(text=st.text(max_size=100))
@settings(max_examples=300)
def test_any_line_resolves_without_error(text: str) -> None:
    keys = medicine_name_keys(text)
    result = resolve_medicine(text, {key: LINE_CATALOGUE[key] for key in keys if key in LINE_CATALOGUE})
    assert len(set(result.generic_names)) == len(result.generic_names)
    assert not set(result.generic_names) & set(result.absent)


# --- each warning its own key -----------------------------------------------------------------------------


def test_a_finding_key_is_its_code_or_code_and_subject() -> None:
    plain = Finding("pregnant", "warn", "R-CAND-PREG", "m", "s")
    about = Finding("anticoagulant", "warn", "R-CAND-ANTICOAG", "m", "s", subject="Eliquis 5 mg")
    assert plain.key == "pregnant"
    assert about.key == "anticoagulant:Eliquis 5 mg"
    assert Finding("x", "info", "R", "m", "s") == Finding("x", "info", "R", "m", "s", "")


def test_two_significant_conditions_are_two_warnings_to_acknowledge() -> None:
    result = screen(
        facts(conditions=("autoimmune", "diabetes-uncontrolled"), medications=(APIXABAN, CLOPIDOGREL))
    )
    assert warning_keys(result.findings) == [
        "significant-condition:autoimmune",
        "significant-condition:diabetes-uncontrolled",
        "anticoagulant:Eliquis",
        "anticoagulant:Plavix",
    ]


def test_subjects_name_the_condition_the_medicine_line_and_the_ingredient() -> None:
    result = screen(
        facts(
            conditions=("liver-disease",),
            medications=(
                ibuprofen(SESSION - timedelta(days=1)),
                ISOTRETINOIN,
                MedicationFacts("Zorblax", None),
            ),
            allergies=("soya",),
            formula=FAT_FORMULA,
        )
    )
    assert {(f.code, f.subject) for f in result.findings} == {
        ("health-concern", "liver-disease"),
        ("nsaid-washout", "Advil"),
        ("health-concern", "Roaccutane"),
        ("unknown-medicine", "Zorblax"),
        ("allergy-caution", "phosphatidylcholine"),
    }


@pytest.mark.parametrize(
    ("given", "resolved_", "unknown", "ambiguous"),
    [
        (["anticoagulant:Eliquis"], {"anticoagulant:Eliquis": "anticoagulant:Eliquis"}, [], []),
        (["pregnant"], {"pregnant": "pregnant"}, [], []),
        (["nsaid-washout"], {"nsaid-washout": "nsaid-washout:Advil"}, [], []),  # the only one of its code
        (["anticoagulant"], {}, [], ["anticoagulant"]),  # two warnings share it: name each
        (["allergy"], {}, ["allergy"], []),
        (["age-under-18"], {}, ["age-under-18"], []),  # a block is not acknowledged
    ],
)
def test_acknowledgements_name_keys_or_a_code_with_one_warning(
    given: list[str], resolved_: dict[str, str], unknown: list[str], ambiguous: list[str]
) -> None:
    findings = [
        Finding("age-under-18", "block", "R", "m", "s"),
        Finding("pregnant", "warn", "R", "m", "s"),
        Finding("anticoagulant", "warn", "R", "m", "s", "Eliquis"),
        Finding("anticoagulant", "warn", "R", "m", "s", "Plavix"),
        Finding("nsaid-washout", "warn", "R", "m", "s", "Advil"),
    ]
    assert resolve_acknowledgement_keys(findings, given) == (resolved_, unknown, ambiguous)


# --- reviews: the session window and staleness --------------------------------------------------------------

TODAY = date(2026, 5, 1)


@pytest.mark.parametrize(
    ("on", "ok"),
    [
        (TODAY, True),
        (TODAY - timedelta(days=1), False),
        (TODAY + timedelta(days=REVIEW_HORIZON_DAYS), True),
        (TODAY + timedelta(days=REVIEW_HORIZON_DAYS + 1), False),
        (date(2999, 1, 1), False),
    ],
)
def test_a_review_is_signed_for_a_session_from_today_to_the_horizon(on: date, ok: bool) -> None:
    assert (review_date_problem(on, today=TODAY) is None) == ok


@given(
    on=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)),
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
)
@settings(max_examples=400)
def test_the_review_window_exactly(on: date, today: date) -> None:
    assert (review_date_problem(on, today=today) is None) == (0 <= (on - today).days <= REVIEW_HORIZON_DAYS)


def stale(**changes: object) -> list[str]:
    arguments: dict[str, object] = {
        "reviewed_intake_version": 2,
        "latest_intake_version": 2,
        "reviewed_rules_version": RULES_VERSION,
        "signed_on": TODAY,
        "today": TODAY,
    }
    arguments.update(changes)
    return review_stale_reasons(**arguments)  # type: ignore[arg-type]


def test_what_makes_a_review_stale() -> None:
    assert stale() == []
    assert "version 3" in stale(latest_intake_version=3)[0]
    assert "screening-2025.9" in stale(reviewed_rules_version="screening-2025.9")[0]
    assert stale(today=TODAY + timedelta(days=REVIEW_VALIDITY_DAYS)) == []
    older = stale(today=TODAY + timedelta(days=REVIEW_VALIDITY_DAYS + 1))
    assert len(older) == 1 and str(REVIEW_VALIDITY_DAYS) in older[0]
    assert len(stale(latest_intake_version=3, reviewed_rules_version="old", signed_on=date(2020, 1, 1))) == 3


@given(
    signed=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    later=st.integers(min_value=0, max_value=2_000),
    reviewed=st.integers(min_value=1, max_value=50),
    newer=st.integers(min_value=0, max_value=3),
)
@settings(max_examples=400)
def test_staleness_follows_the_version_and_the_age_exactly(
    signed: date, later: int, reviewed: int, newer: int
) -> None:
    reasons = stale(
        reviewed_intake_version=reviewed,
        latest_intake_version=reviewed + newer,
        signed_on=signed,
        today=signed + timedelta(days=later),
    )
    assert len(reasons) == (newer > 0) + (later > REVIEW_VALIDITY_DAYS)


# --- the clinic's additions to the catalogue ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Zontivity", True),
        ("Advil Liqui-Gels", True),
        ("aspirin/dipyridamole", True),
        ("Vitamine B12", True),
        ("Éliquis", True),
        ("", False),
        ("   ", False),
        ("x" * 101, False),
        ("St. John's wort", False),
        ("Zorblax; DROP TABLE", False),
        ("ab", False),
        ("daily", False),
        ("and", False),
    ],
)
def test_medicine_name_problem(name: str, ok: bool) -> None:
    assert (medicine_name_problem(name) is None) == ok


@pytest.mark.parametrize(
    ("generic", "classes", "names", "fields"),
    [
        ("vorapaxar", ["antiplatelet"], ["Zontivity"], set()),
        ("vorapaxar", [], [], {"classes"}),
        ("vorapaxar", ["blood-thinner"], [], {"classes"}),
        ("apixaban", ["anticoagulant"], [], {"generic_name"}),  # already known
        ("vorapaxar", ["antiplatelet"], ["Advil"], {"names.0"}),  # a known name never changes meaning
        ("vorapaxar", ["antiplatelet"], ["Zontivity", "ZONTIVITY"], {"names.1"}),
        ("vorapaxar", ["antiplatelet"], ["Vorapaxar"], {"names.0"}),  # the generic name twice
        ("", ["antiplatelet"], ["", "ok name"], {"generic_name", "names.0"}),
    ],
)
def test_medicine_entry_problems(
    generic: str, classes: list[str], names: list[str], fields: set[str]
) -> None:
    taken = {"apixaban": "apixaban", "eliquis": "apixaban", "advil": "ibuprofen"}
    problems = medicine_entry_problems(generic_name=generic, classes=classes, names=names, taken=taken)
    assert set(problems) == fields


# --- expectations, intake validation and changes -----------------------------------------------------------


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


@pytest.mark.parametrize(
    ("answers", "fields"),
    [
        (IntakeAnswers(pregnancy="none"), set()),
        (IntakeAnswers(pregnancy="maybe"), {"pregnancy"}),
        (IntakeAnswers(pregnancy="none", conditions=("autoimmune", "flu")), {"conditions"}),
        (IntakeAnswers(pregnancy="none", conditions=(" autoimmune ",)), set()),
        (IntakeAnswers(pregnancy="none", conditions=("",)), {"conditions"}),
        (
            IntakeAnswers(
                pregnancy="none", medications=(MedicationAnswer("Advil", TODAY + timedelta(days=1)),)
            ),
            {"medications.0.last_taken"},
        ),
        (IntakeAnswers(pregnancy="none", medications=(MedicationAnswer("Advil", TODAY),)), set()),
        (IntakeAnswers(pregnancy="none", medications=(MedicationAnswer(" ", None),)), {"medications.0.name"}),
        # the index is the row as sent: a blank row before does not shift it
        (
            IntakeAnswers(
                pregnancy="none",
                medications=(
                    MedicationAnswer("  ", None),
                    MedicationAnswer("Advil", TODAY + timedelta(days=3)),
                    MedicationAnswer("", TODAY),
                ),
            ),
            {"medications.0.name", "medications.1.last_taken", "medications.2.name"},
        ),
        (IntakeAnswers(pregnancy="none", allergies=("",)), {"allergies.0"}),
        (IntakeAnswers(pregnancy="none", allergies=("soy", " ")), {"allergies.1"}),
        (IntakeAnswers(pregnancy="none", goals="x" * 2001), {"goals"}),
        (IntakeAnswers(pregnancy="none", allergies=("x",) * 41), {"allergies"}),
    ],
)
def test_intake_problems(answers: IntakeAnswers, fields: set[str]) -> None:
    assert set(intake_problems(answers, today=TODAY, known_conditions=KNOWN)) == fields


def test_clean_answers_trims_and_keeps_every_row() -> None:
    cleaned = clean_answers(
        IntakeAnswers(
            pregnancy="none",
            conditions=(" autoimmune", "autoimmune "),
            medications=(MedicationAnswer("  Advil   200 mg ", None), MedicationAnswer("Eliquis", TODAY)),
            allergies=(" soy ",),
            goals=" Thighs ",
        )
    )
    assert cleaned.conditions == ("autoimmune",)
    assert cleaned.medications == (MedicationAnswer("Advil 200 mg", None), MedicationAnswer("Eliquis", TODAY))
    assert (cleaned.allergies, cleaned.goals) == (("soy",), "Thighs")


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


def test_the_formula_checks_are_the_formularys() -> None:
    """One implementation: screening's formula findings are exactly ``formulary.rules.formula_findings``."""
    from mesoclinic.formulary import rules as formulary

    given_facts = facts(allergies=("soy",), pregnancy="planning", formula=LIPOLYSIS, jurisdiction="FR")
    expected = formulary.formula_findings(
        LIPOLYSIS, formulary.PatientFacts(allergies=("soy",), pregnancy="planning", sex="female"), "FR"
    )
    found = [
        f
        for f in screen(given_facts).findings
        if f.rule in {"R-REG", "R-CAND-ALLERGY", "R-CAND-XALLERGY", "R-CAND-ANDRO"}
    ]
    assert sorted(found, key=repr) == sorted(expected, key=repr)

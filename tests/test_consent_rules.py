"""The pure rules of consent and patient education, and the signature upload check: tables and properties
(issue 6; R-PRE-CONSENT, R-REG, R-COST, R-EDU). No database."""

from __future__ import annotations

import base64
import io
import itertools
import struct
import zlib
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, PngImagePlugin

from mesoclinic.accounts.rules import jurisdiction_covers
from mesoclinic.consent import rules
from mesoclinic.consent.signature import MAX_BYTES, SignatureProblem, clean_signature, sample_signature
from mesoclinic.formulary import rules as formulary_rules

DAY = date(2026, 3, 3)


# --- dates: how long a consent lasts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 3, 3), 12, date(2027, 3, 3)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 3, 3), 60, date(2031, 3, 3)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert rules.add_months(day, months) == expected


def test_a_twelve_month_consent_covers_the_day_before_the_anniversary() -> None:
    assert rules.valid_until(DAY, 12) == date(2027, 3, 2)
    assert rules.valid_until(date(2026, 1, 31), 1) == date(2026, 2, 27)


@given(day=st.dates(date(2000, 1, 1), date(2090, 12, 31)), months=st.integers(1, 60))
@settings(max_examples=400)
def test_add_months_properties(day: date, months: int) -> None:
    later = rules.add_months(day, months)
    assert (later.year * 12 + later.month) - (day.year * 12 + day.month) == months
    assert later.day <= day.day
    assert later.day == day.day or later.month != (later + timedelta(days=1)).month  # clamped to month end
    until = rules.valid_until(day, months)
    assert day <= until < later and (later - until).days == 1


# --- validity and the gate ----------------------------------------------------------------------------------

FP = "a" * 64


def facts(**overrides: object) -> rules.ConsentFacts:
    values: dict[str, object] = {
        "consent_id": 1,
        "signed_on": DAY,
        "valid_until": date(2027, 3, 2),
        "countersigned": True,
        "withdrawn_on": None,
        "fingerprint": FP,
    }
    values.update(overrides)
    return rules.ConsentFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "on", "fingerprint", "state"),
    [
        ({}, DAY, FP, "valid"),
        ({}, date(2027, 3, 2), FP, "valid"),  # the last day
        ({}, date(2027, 3, 3), FP, "expired"),
        ({}, DAY - timedelta(days=1), FP, "not-yet"),
        ({"countersigned": False}, DAY, FP, "awaiting-countersignature"),
        ({"withdrawn_on": DAY}, DAY, FP, "withdrawn"),
        ({}, DAY, "b" * 64, "plan-changed"),
        # The most serious reason wins: withdrawn before changed before expired before waiting.
        ({"withdrawn_on": DAY, "countersigned": False}, date(2030, 1, 1), "b" * 64, "withdrawn"),
        ({"countersigned": False}, date(2030, 1, 1), "b" * 64, "plan-changed"),
        ({"countersigned": False}, date(2030, 1, 1), FP, "expired"),
    ],
)
def test_consent_state(overrides: dict[str, object], on: date, fingerprint: str, state: str) -> None:
    assert rules.consent_state(facts(**overrides), on=on, current_fingerprint=fingerprint) == state


def test_the_gate_blocks_without_a_consent_and_says_why() -> None:
    (finding,) = rules.gate_findings([], on=DAY, current_fingerprint=FP)
    assert (finding.code, finding.severity, finding.rule) == ("no-consent", "block", "R-PRE-CONSENT")
    assert "No signed consent" in finding.message
    cases = {
        "countersignature": facts(countersigned=False),
        "expired": facts(valid_until=DAY),
        "withdrew": facts(withdrawn_on=DAY),
        "changed": facts(fingerprint="c" * 64),
    }
    on = DAY + timedelta(days=1)
    for word, consent in cases.items():
        (finding,) = rules.gate_findings([consent], on=on, current_fingerprint=FP)
        assert finding.code == "no-consent" and finding.severity == "block" and word in finding.message


def test_the_gate_passes_with_one_valid_consent_among_old_ones() -> None:
    old = facts(consent_id=1, signed_on=date(2025, 1, 1), valid_until=date(2025, 12, 31))
    withdrawn = facts(consent_id=2, withdrawn_on=DAY)
    good = facts(consent_id=3)
    (finding,) = rules.gate_findings([old, withdrawn, good], on=DAY, current_fingerprint=FP)
    assert (finding.code, finding.severity) == ("consent-valid", "info")
    # About the most recent one when none is valid.
    (finding,) = rules.gate_findings([old, withdrawn], on=DAY, current_fingerprint=FP)
    assert finding.severity == "block" and "withdrew" in finding.message


@given(
    signed=st.dates(date(2020, 1, 1), date(2030, 12, 31)),
    months=st.integers(1, 60),
    offset=st.integers(-400, 2000),
    countersigned=st.booleans(),
    withdrawn=st.booleans(),
    changed=st.booleans(),
)
@settings(max_examples=400)
def test_the_gate_blocks_exactly_when_no_consent_is_valid(
    signed: date, months: int, offset: int, countersigned: bool, withdrawn: bool, changed: bool
) -> None:
    consent = facts(
        signed_on=signed,
        valid_until=rules.valid_until(signed, months),
        countersigned=countersigned,
        withdrawn_on=signed if withdrawn else None,
    )
    on = signed + timedelta(days=offset)
    current = "d" * 64 if changed else FP
    (finding,) = rules.gate_findings([consent], on=on, current_fingerprint=current)
    covered = countersigned and not withdrawn and not changed and signed <= on <= consent.valid_until
    assert (finding.severity == "info") is covered
    assert finding.code == ("consent-valid" if covered else "no-consent")


# --- the fingerprint of what a consent covers ---------------------------------------------------------------


def cover(**overrides: object) -> rules.Cover:
    values: dict[str, object] = {
        "indication": "rejuvenation",
        "areas": ("forehead", "neck"),
        "formulas": (
            rules.FormulaCover(
                7,
                "Facial",
                1,
                (("hyaluronic-acid", "3.0000", "mg/mL"), ("vitamin-c", "50.0000", "mg/mL")),
                "sodium-chloride",
            ),
        ),
    }
    values.update(overrides)
    return rules.Cover(**values)  # type: ignore[arg-type]


def test_the_fingerprint_changes_with_what_is_injected_where_and_for_what() -> None:
    base = rules.fingerprint(cover())
    assert rules.fingerprint(cover()) == base and len(base) == 64
    formula = cover().formulas[0]
    changed = {
        "indication": cover(indication="wrinkles"),
        "areas": cover(areas=("forehead",)),
        "strength": cover(
            formulas=(
                rules.FormulaCover(
                    7,
                    "Facial",
                    1,
                    (("hyaluronic-acid", "4.0000", "mg/mL"), formula.components[1]),
                    "sodium-chloride",
                ),
            )
        ),
        "version": cover(
            formulas=(rules.FormulaCover(7, "Facial", 2, formula.components, "sodium-chloride"),)
        ),
        "diluent": cover(
            formulas=(rules.FormulaCover(7, "Facial", 1, formula.components, "water-for-injection"),)
        ),
        "formula": cover(formulas=(*cover().formulas, rules.FormulaCover(8, "Other", 1, (), ""))),
    }
    for what, other in changed.items():
        assert rules.fingerprint(other) != base, what
    # A formula's name is not what is injected.
    assert (
        rules.fingerprint(
            cover(formulas=(rules.FormulaCover(7, "Renamed", 1, formula.components, "sodium-chloride"),))
        )
        == base
    )
    assert rules.cover_changes(cover().as_dict(), changed["areas"]) == ["the treated areas"]
    assert rules.cover_changes(cover().as_dict(), changed["strength"]) == ["the formula"]
    assert rules.cover_changes(cover().as_dict(), cover()) == []


@given(
    areas=st.lists(st.sampled_from(["forehead", "neck", "cheek-left", "cheek-right", "chin"]), unique=True),
    components=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.decimals(Decimal("0.0001"), Decimal("999"), places=4).map(str),
            st.just("mg/mL"),
        ),
        unique_by=lambda row: row[0],
        max_size=4,
    ),
    seed=st.randoms(use_true_random=False),
)
@settings(max_examples=300)
def test_the_fingerprint_ignores_order(
    areas: list[str], components: list[tuple[str, str, str]], seed: object
) -> None:
    first = cover(areas=tuple(areas), formulas=(rules.FormulaCover(1, "F", 1, tuple(components)),))
    shuffled_areas, shuffled_components = list(areas), list(components)
    seed.shuffle(shuffled_areas)  # type: ignore[attr-defined]
    seed.shuffle(shuffled_components)  # type: ignore[attr-defined]
    second = cover(
        areas=tuple(shuffled_areas), formulas=(rules.FormulaCover(1, "G", 1, tuple(shuffled_components)),)
    )
    assert rules.fingerprint(first) == rules.fingerprint(second)
    assert rules.cover_changes(first.as_dict(), second) == []


# --- costs (R-COST) -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "low", "high", "planned", "currency", "expected"),
    [
        ("350.00", 5, 10, 6, "USD", ("350.00", "1750.00", "3500.00", "2100.00")),
        ("250", 3, 15, 10, "EUR", ("250.00", "750.00", "3750.00", "2500.00")),
        ("33.335", 1, 3, 2, "EUR", ("33.34", "33.34", "100.01", "66.67")),  # half up, to the cent
        ("45000", 4, 8, 6, "JPY", ("45000", "180000", "360000", "270000")),
    ],
)
def test_cost_range(
    price: str, low: int, high: int, planned: int, currency: str, expected: tuple[str, str, str, str]
) -> None:
    costs = rules.cost_range(
        Decimal(price), sessions_min=low, sessions_max=high, planned_sessions=planned, currency=currency
    )
    assert (
        tuple(str(value) for value in (costs.price_per_session, costs.fewest, costs.most, costs.planned))
        == expected
    )


@given(
    price=st.decimals(Decimal("0.01"), Decimal("99999999.99"), places=2),
    low=st.integers(1, 30),
    span=st.integers(0, 29),
    planned=st.integers(1, 30),
)
@settings(max_examples=400)
def test_cost_range_properties(price: Decimal, low: int, span: int, planned: int) -> None:
    high = min(low + span, 30)
    costs = rules.cost_range(
        price, sessions_min=low, sessions_max=high, planned_sessions=planned, currency="USD"
    )
    assert costs.fewest == price * low and costs.most == price * high and costs.planned == price * planned
    assert costs.fewest <= costs.most
    assert all(isinstance(value, Decimal) for value in (costs.fewest, costs.most, costs.planned))


def test_cost_range_refuses_nonsense() -> None:
    for price, low, high in (
        (Decimal("0"), 1, 2),
        (Decimal("-5"), 1, 2),
        (Decimal("10"), 3, 2),
        (Decimal("NaN"), 1, 2),
    ):
        with pytest.raises(ValueError):
            rules.cost_range(price, sessions_min=low, sessions_max=high, planned_sessions=1, currency="USD")


def test_money_is_written_the_patients_way() -> None:
    with translation.override("en"):
        assert rules.format_money(Decimal("1750"), "USD") == "1,750.00 USD"
    with translation.override("fr"):
        assert (
            rules.format_money(Decimal("1750"), "EUR").replace("\u202f", " ").replace("\xa0", " ")
            == "1 750,00 EUR"
        )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("350", True),
        ("350.00", True),
        ("0.01", True),
        ("0", False),
        ("-1", False),
        ("1.005", False),
        ("abc", False),
        ("NaN", False),
        ("Infinity", False),
        ("100000000", False),
        (None, False),
    ],
)
def test_price_problem(value: object, ok: bool) -> None:
    assert (rules.price_problem(value) is None) is ok


def test_price_for_an_indication_falls_back_to_the_default() -> None:
    prices = {"": Decimal("300"), "localized-fat": Decimal("450")}
    assert rules.price_for(prices, "localized-fat") == Decimal("450")
    assert rules.price_for(prices, "cellulite") == Decimal("300")
    assert rules.price_for({}, "cellulite") is None


# --- choosing content ---------------------------------------------------------------------------------------


def test_the_most_specific_text_speaks_for_the_plan() -> None:
    candidates = [
        rules.Candidate(1, False),
        rules.Candidate(2, False, jurisdiction="US"),
        rules.Candidate(3, False, jurisdiction="FR"),
        rules.Candidate(4, True, jurisdiction="US"),
        rules.Candidate(5, False, indication="hair-loss"),
        rules.Candidate(6, True, jurisdiction="US-NY"),
    ]
    assert rules.choose(candidates, indication="rejuvenation", jurisdiction="US-NY") == 6
    assert rules.choose(candidates, indication="rejuvenation", jurisdiction="US-CA") == 4  # the clinic's own
    assert rules.choose(candidates[:3], indication="rejuvenation", jurisdiction="US-CA") == 2
    assert rules.choose(candidates, indication="rejuvenation", jurisdiction="FR") == 3
    assert rules.choose(candidates, indication="rejuvenation", jurisdiction="BR") == 1
    assert rules.choose(candidates, indication="hair-loss", jurisdiction="US-NY") == 5  # indication first
    assert (
        rules.choose([rules.Candidate(2, False, jurisdiction="US")], indication="x", jurisdiction="FR")
        is None
    )
    assert rules.choose([], indication="x") is None


# --- text ---------------------------------------------------------------------------------------------------


def test_placeholders_fill_only_what_they_know() -> None:
    text = "Call {clinic_name} on {clinic_phone}: {price_per_session} a session. {unknown} {clinic_name"
    assert rules.fill(
        text, {"clinic_name": "Parc", "clinic_phone": "01", "price_per_session": "350.00 EUR"}
    ) == ("Call Parc on 01: 350.00 EUR a session. {unknown} {clinic_name")


def test_blocks_of_the_canonical_text() -> None:
    text = (
        "# Title\r\n\r\nOne line\ncontinued.\n\n## Risks\n- bruising\n- swelling\nAfter the list.\n\n\n\n"
        "End   \n"
    )
    assert rules.blocks(text) == [
        rules.Block("title", ("Title",)),
        rules.Block("paragraph", ("One line continued.",)),
        rules.Block("heading", ("Risks",)),
        rules.Block("list", ("bruising", "swelling")),
        rules.Block("paragraph", ("After the list.",)),
        rules.Block("paragraph", ("End",)),
    ]
    assert rules.normalise("a  \r\n\r\n\r\nb\n\n") == "a\n\nb"
    assert rules.plain_text("## Risks\n- a\n- b") == "Risks\n\n• a\n• b"


@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=300))
@settings(max_examples=300)
def test_normalising_is_stable_and_hashing_is_deterministic(text: str) -> None:
    once = rules.normalise(text)
    assert rules.normalise(once) == once
    assert rules.sha256_text(once) == rules.sha256_text(rules.normalise(text))
    rules.blocks(text)  # never raises


@pytest.mark.parametrize(
    ("typed", "ok"),
    [
        ("Claire Martin", True),
        ("claire   MARTIN", True),
        ("C. Martin", True),
        ("Claire Martín", True),
        ("", False),
        ("   ", False),
        ("Claire", False),
        ("Martinez", False),
        ("x" * 201, False),
    ],
)
def test_the_typed_name_names_the_patient(typed: str, ok: bool) -> None:
    assert (rules.typed_name_problem(typed, given_name="Claire", family_name="Martin") is None) is ok


def test_a_family_name_with_accents_and_words() -> None:
    assert (
        rules.typed_name_problem("helene de la fontaine", given_name="Hélène", family_name="De La Fontaine")
        is None
    )
    assert rules.typed_name_problem("Hélène Fontaine", given_name="Hélène", family_name="De La Fontaine")


# --- regulatory status in words: never an approval an ingredient lacks (R-REG) ------------------------------

STATUS = st.sampled_from(
    [
        formulary_rules.STATUS_APPROVED,
        formulary_rules.STATUS_OTHER_INDICATION,
        formulary_rules.STATUS_NOT_APPROVED,
        formulary_rules.STATUS_BANNED,
    ]
)


def status(
    jurisdiction: str, value: str, indications: frozenset[str] = frozenset()
) -> formulary_rules.StatusFacts:
    return formulary_rules.StatusFacts(jurisdiction, value, f"use {value}", "src", indications)


def test_ingredient_statuses_in_words() -> None:
    formula = formulary_rules.PlannedFormulaFacts(
        name="F",
        ingredients=(
            formulary_rules.IngredientFacts(
                "dca",
                "Deoxycholic acid",
                statuses=(
                    status("US", "approved-other-indication"),
                    status("US", "approved", frozenset({"submental-fat"})),
                ),
            ),
            formulary_rules.IngredientFacts(
                "ha", "Hyaluronic acid", statuses=(status("US", "not-approved"),)
            ),
            formulary_rules.IngredientFacts(
                "pc", "Phosphatidylcholine", statuses=(status("FR", "banned", frozenset({"localized-fat"})),)
            ),
        ),
    )
    with translation.override("en"):
        us_fat = [
            rules.status_sentence(line)
            for line in rules.ingredient_statuses(formula, jurisdiction="US-NY", indication="localized-fat")
        ]
        us_chin = rules.ingredient_statuses(formula, jurisdiction="US", indication="submental-fat")
        fr_fat = rules.ingredient_statuses(formula, jurisdiction="FR", indication="localized-fat")
    assert (
        "off-label" in us_fat[0]
        and "not approved in US" in us_fat[1]
        and "not known to be approved" in us_fat[2]
    )
    assert [line.status for line in us_chin] == ["approved", "not-approved", "unknown"]
    assert [line.status for line in fr_fat] == ["unknown", "unknown", "banned"]
    blocks = rules.regulatory_blocks([formula], jurisdiction="FR", indication="localized-fat")
    assert [finding.code for finding in blocks] == ["banned-in-jurisdiction"]
    assert rules.regulatory_blocks([formula], jurisdiction="FR", indication="rejuvenation") == []


@given(
    rows=st.lists(st.tuples(st.sampled_from(["US", "US-NY", "FR", "BR"]), STATUS, st.booleans()), max_size=5),
    jurisdiction=st.sampled_from(["US", "US-NY", "US-CA", "FR", "DE"]),
    indication=st.sampled_from(["localized-fat", "rejuvenation"]),
)
@settings(max_examples=400)
def test_a_consent_never_claims_an_approval_no_row_gives(
    rows: list[tuple[str, str, bool]], jurisdiction: str, indication: str
) -> None:
    statuses = tuple(
        status(j, s, frozenset({indication}) if specific else frozenset()) for j, s, specific in rows
    )
    formula = formulary_rules.PlannedFormulaFacts(
        name="F", ingredients=(formulary_rules.IngredientFacts("x", "Ingredient X", statuses=statuses),)
    )
    (line,) = rules.ingredient_statuses(formula, jurisdiction=jurisdiction, indication=indication)
    with translation.override("en"):
        sentence = rules.status_sentence(line)
    applicable = [
        row
        for row in statuses
        if jurisdiction_covers(row.jurisdiction, jurisdiction)
        and (not row.indications or indication in row.indications)
    ]
    claims_approval = ": approved in" in sentence and "another use" not in sentence
    if claims_approval:
        assert line.status == "approved"
        assert any(row.status == "approved" for row in applicable)
    if not applicable:
        assert line.status == "unknown" and "not known to be approved" in sentence
    # Among the rows that speak loudest (the most specific jurisdiction, then a row naming the use), the
    # worst one speaks: a ban there is never shown as an approval.
    if applicable:
        loudest = max((len(row.jurisdiction), bool(row.indications)) for row in applicable)
        if any(
            row.status == "banned"
            for row in applicable
            if (len(row.jurisdiction), bool(row.indications)) == loudest
        ):
            assert line.status == "banned" and not claims_approval


# --- the consent document -----------------------------------------------------------------------------------


def parts(**overrides: object) -> rules.ConsentParts:
    values: dict[str, object] = {
        "title": "Consent to mesotherapy treatment",
        "clinic_name": "Clinique du Parc",
        "clinic_phone": "+33 1 23 45 67 89",
        "patient_name": "Claire Martin",
        "date_of_birth": date(1986, 4, 12),
        "record_number": "P-000001",
        "on": DAY,
        "valid_until": date(2027, 3, 2),
        "validity_months": 12,
        "protocol_name": "Localized fat",
        "indication_label": "Localized fat / body contouring",
        "areas": ("Left flank", "Right flank"),
        "combined": ("Diet and exercise programme",),
        "procedure": "Small injections.",
        "risks": "- bruising\n- infection up to 12 weeks later",
        "evidence": "A 2008 study of 20 women found no reduction in thigh size.",
        "declaration": "I consent.",
        "formulas": (
            rules.FormulaText(
                "Lipolysis",
                2,
                (rules.IngredientStatus("Phosphatidylcholine", "not-approved", "US", "unapproved drug"),),
            ),
        ),
        "alternatives": ("Liposuction",),
        "sessions_min": 4,
        "sessions_max": 10,
        "planned_sessions": 6,
        "interval_min_days": 7,
        "interval_max_days": 14,
        "currency": "USD",
        "price_per_session": Decimal("450"),
    }
    values.update(overrides)
    return rules.ConsentParts(**values)  # type: ignore[arg-type]


def test_the_consent_says_what_the_patient_must_know() -> None:
    with translation.override("en"):
        text = rules.consent_text(parts())
    for expected in (
        "# Consent to mesotherapy treatment",
        "Claire Martin",
        "Left flank, Right flank",
        "Lipolysis (version 2) contains:",
        "- Phosphatidylcholine: not approved in US (unapproved drug).",
        "- bruising",
        "A 2008 study of 20 women",
        "- Liposuction",
        "- Not having this treatment.",
        "4 to 10 sessions",
        "your plan has 6",
        "One session costs 450.00 USD. For 4 to 10 sessions that is 1,800.00 USD to 4,500.00 USD in all; "
        "the 6 sessions of your plan cost 2,700.00 USD.",
        "insurance usually does not cover",
        "(12 months)",
        "I consent.",
    ):
        assert expected in text, expected
    assert text == rules.normalise(text)
    with translation.override("en"):
        unpriced = rules.consent_text(parts(price_per_session=None, formulas=()))
    assert "has not set a price" in unpriced and "No formula is recorded" in unpriced
    with translation.override("en"):
        assert rules.consent_text(parts()) == text  # deterministic: the same facts, the same hash


# --- the drawn signature: validated like an upload (targets.md #6) ------------------------------------------


def png(
    width: int = 600, height: int = 200, *, ink: bool = True, info: dict[str, str] | None = None
) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if ink:
        ImageDraw.Draw(image).line(
            [(40, 100), (200, 60), (400, 140), (560, 90)], fill=(0, 0, 0, 255), width=4
        )
    out = io.BytesIO()
    meta = PngImagePlugin.PngInfo()
    for key, value in (info or {}).items():
        meta.add_text(key, value)
    image.save(out, format="PNG", pnginfo=meta)
    return out.getvalue()


def dot_png() -> bytes:
    image = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((100, 100, 104, 104), fill=(0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def flood_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge image (a pixel flood)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_drawn_signature_is_kept_as_a_clean_png() -> None:
    dirty = png(info={"Author": "someone", "GPS": "48.85,2.35"})
    assert b"GPS" in dirty
    clean = clean_signature("data:image/png;base64," + base64.b64encode(dirty).decode())
    assert clean.startswith(b"\x89PNG") and b"GPS" not in clean and b"tEXt" not in clean
    with Image.open(io.BytesIO(clean)) as image:
        assert image.size == (600, 200) and image.mode == "RGBA" and not image.text  # type: ignore[attr-defined]
    assert clean_signature(base64.b64encode(dirty).decode()) == clean
    assert clean_signature(sample_signature(3))


BAD = {
    "empty": "",
    "blank canvas": "data:image/png;base64," + base64.b64encode(png(ink=False)).decode(),
    "a single dot": base64.b64encode(dot_png()).decode(),
    "svg with script": "data:image/svg+xml;base64,"
    + base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>').decode(),
    "svg as png": base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>').decode(),
    "html": base64.b64encode(b"<html><script>alert(1)</script></html>").decode(),
    "renamed executable": base64.b64encode(b"MZ\x90\x00" + b"\x00" * 200).decode(),
    "jpeg": base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 200).decode(),
    "polyglot (PNG + zip)": base64.b64encode(png() + b"PK\x03\x04" + b"\x00" * 40).decode(),
    "polyglot (PNG + html)": base64.b64encode(png() + b"<script>alert(1)</script>").decode(),
    "truncated": base64.b64encode(png()[:120]).decode(),
    "pixel flood": base64.b64encode(flood_png(60000, 60000)).decode(),
    "too small": base64.b64encode(png(50, 20)).decode(),
    "oversize": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_BYTES + 10)).decode(),
    "not base64": "data:image/png;base64,@@@@",
    "../ name": "../../etc/passwd",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_signatures_are_refused_with_a_message(name: str) -> None:
    with pytest.raises(SignatureProblem) as refused:
        clean_signature(BAD[name])
    assert refused.value.message


def test_every_pair_of_bad_inputs_is_still_refused() -> None:
    for first, second in itertools.combinations(["svg as png", "html", "renamed executable"], 2):
        with pytest.raises(SignatureProblem):
            clean_signature(
                base64.b64encode(base64.b64decode(BAD[first]) + base64.b64decode(BAD[second])).decode()
            )

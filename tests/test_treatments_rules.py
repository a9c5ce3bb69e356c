"""The pure rules of protocols, plans, the check-in gate and charting: tables and properties (issue 5).

R-TECH (depth, product limits), R-SERIES / R-PRE-INTERVAL (intervals, series length), R-PRE-NUMB, R-PROV,
R-SIGNAL (lots), the gate hooks for R-PRE-CONSENT and R-PRE-BRUISE, plan activation, co-signature sampling."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.accounts.rules import LicenceFacts
from mesoclinic.formulary.rules import LotFacts
from mesoclinic.lib.findings import Finding
from mesoclinic.treatments import rules
from mesoclinic.treatments.bodymap_data import AREAS, VIEWS

SQUARE = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
NAPPAGE = rules.TechniqueFacts("nappage", "Nappage", Decimal("1"), Decimal("2"))
DEEP = rules.TechniqueFacts("point-by-point-deep", "Deep", Decimal("4"), Decimal("13"))
DCA = rules.LimitFacts(
    ingredient="Deoxycholic acid",
    label="Deoxycholic acid 10 mg/mL",
    source="Kybella label",
    max_volume_per_injection_ml=Decimal("0.2"),
    max_injections_per_session=50,
    max_volume_per_session_ml=Decimal("10"),
    min_interval_days=28,
    max_sessions=6,
)
DAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
LICENCE = LicenceFacts(jurisdiction="FR", valid_from=None, expires_on=date(2030, 1, 1))


def entry(**overrides: object) -> rules.AreaEntry:
    values: dict[str, object] = {
        "area_code": "abdomen",
        "area_label": "Abdomen",
        "outline": SQUARE,
        "technique": NAPPAGE,
        "depth_mm": Decimal("1.5"),
        "points": ((5.0, 5.0),),
        "injections": 10,
        "volume_per_point_ml": Decimal("0.02"),
        "total_volume_ml": Decimal("0.2"),
    }
    values.update(overrides)
    return rules.AreaEntry(**values)  # type: ignore[arg-type]


def gate(**overrides: object) -> rules.GateFacts:
    values: dict[str, object] = {
        "on": DAY,
        "now": NOW,
        "plan_status": "active",
        "sessions_done": 1,
        "planned_sessions": 6,
        "protocol_sessions_max": 8,
        "last_session_on": DAY - timedelta(days=10),
        "interval_min_days": 7,
        "licences": (LICENCE,),
        "jurisdiction": "FR",
        "hooks": {"no-consent": (), "bruising-unresolved": ()},
    }
    values.update(overrides)
    return rules.GateFacts(**values)  # type: ignore[arg-type]


def codes(findings: list[Finding]) -> set[str]:
    return {finding.code for finding in findings}


# --- geometry -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((5, 5), True),
        ((0, 0), True),  # a vertex
        ((10, 5), True),  # an edge
        ((10.01, 5), False),
        ((-0.01, 5), False),
        ((5, 10.5), False),
        ((100, 100), False),
    ],
)
def test_point_in_polygon(point: tuple[float, float], inside: bool) -> None:
    assert rules.point_in_polygon(point, SQUARE) is inside


def test_a_concave_outline_excludes_its_notch() -> None:
    notched = [[0, 0], [10, 0], [10, 10], [5, 4], [0, 10]]
    assert rules.point_in_polygon((5, 2), notched)
    assert not rules.point_in_polygon((5, 8), notched)


@given(x=st.floats(-50, 60, allow_nan=False), y=st.floats(-50, 60, allow_nan=False))
@settings(max_examples=300)
def test_the_square_contains_exactly_its_box(x: float, y: float) -> None:
    tolerance = 1e-9  # a point on an edge counts as inside, to a rounding error
    expected = -tolerance <= x <= 10 + tolerance and -tolerance <= y <= 10 + tolerance
    assert rules.point_in_polygon((x, y), SQUARE) is expected


def test_every_seeded_outline_contains_its_own_centre_and_no_other_area_does() -> None:
    for area in AREAS:
        centre = rules.interior_point(area["outline"])
        assert rules.point_in_polygon(centre, area["outline"]), area["code"]
        width, height = VIEWS[area["view"]]["width"], VIEWS[area["view"]]["height"]
        assert all(0 <= x <= width and 0 <= y <= height for x, y in area["outline"])
        others = [o for o in AREAS if o["view"] == area["view"] and o["code"] != area["code"]]
        assert not any(rules.point_in_polygon(centre, o["outline"]) for o in others), area["code"]


def test_laterality_follows_the_view() -> None:
    centre_x = {a["code"]: sum(p[0] for p in a["outline"]) / len(a["outline"]) for a in AREAS}
    assert centre_x["thigh-front-left"] > 100  # the patient faces us: their left is on our right
    assert centre_x["buttock-left"] < 100  # seen from behind
    assert centre_x["cheek-left"] > 100
    assert centre_x["scalp-temporal-left"] < 100  # seen from above, face up


# --- depth and chart entries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "problem"),
    [("0", True), ("-0.5", True), ("0.1", False), ("13", False), ("13.1", True), ("100", True)],
)
def test_depth_limits(depth: str, problem: bool) -> None:
    assert (rules.depth_problem(Decimal(depth)) is not None) is problem


@given(depth=st.decimals(min_value=Decimal("-20"), max_value=Decimal("30"), places=1, allow_nan=False))
@settings(max_examples=300)
def test_depth_is_valid_exactly_in_the_half_open_range(depth: Decimal) -> None:
    assert (rules.depth_problem(depth) is None) is (Decimal(0) < depth <= Decimal(13))


@pytest.mark.parametrize(
    ("technique", "depth", "protocol", "warnings"),
    [
        (NAPPAGE, "1.5", None, 0),
        (NAPPAGE, "1", None, 0),  # the range's ends are inside
        (NAPPAGE, "2", None, 0),
        (NAPPAGE, "2.1", None, 1),
        (NAPPAGE, "0.9", None, 1),
        (NAPPAGE, "1.5", ("1.8", "2"), 1),  # inside the technique, outside the protocol's range for the area
        (NAPPAGE, "3", ("1", "2"), 2),
        (DEEP, "6", ("6", "13"), 0),
    ],
)
def test_depth_outside_the_technique_or_protocol_warns(
    technique: rules.TechniqueFacts, depth: str, protocol: tuple[str, str] | None, warnings: int
) -> None:
    found = rules.depth_findings(
        entry(
            technique=technique,
            depth_mm=Decimal(depth),
            protocol_depth=(Decimal(protocol[0]), Decimal(protocol[1])) if protocol else None,
        )
    )
    assert len(found) == warnings
    assert all((f.code, f.severity, f.rule) == ("depth-out-of-range", "warn", "R-TECH") for f in found)
    assert len({f.key for f in found}) == len(found)  # each can be acknowledged on its own


def test_entry_problems_name_the_field() -> None:
    assert set(rules.entry_problems(entry(points=()))) == {"points"}
    assert set(rules.entry_problems(entry(points=((5.0, 5.0), (6.0, 6.0)), injections=1))) == {"injections"}
    assert set(rules.entry_problems(entry(points=((20.0, 20.0),)))) == {"points"}
    assert set(rules.entry_problems(entry(injections=0))) == {"injections"}
    assert set(rules.entry_problems(entry(volume_per_point_ml=Decimal("-1")))) == {"volume_per_point_ml"}
    assert set(rules.entry_problems(entry(total_volume_ml=Decimal("0")))) == {"total_volume_ml"}
    assert rules.entry_problems(entry()) == {}


@given(injections=st.integers(1, 5000), per=st.decimals(Decimal("0.001"), Decimal("1"), places=3))
@settings(max_examples=300)
def test_the_total_volume_is_injections_times_the_volume_per_injection(injections: int, per: Decimal) -> None:
    assert rules.entry_volume(injections, per, None) == per * injections
    assert rules.entry_volume(injections, per, Decimal("2.5")) == Decimal("2.5")  # a total given wins


def test_an_area_outside_the_plan_warns() -> None:
    assert codes(rules.planning_findings(entry(planned=False))) == {"area-not-planned"}
    assert rules.planning_findings(entry()) == []


# --- product limits -----------------------------------------------------------------------------------------


def dca(**overrides: object) -> rules.AreaEntry:
    values: dict[str, object] = {
        "area_code": "submental",
        "area_label": "Submental",
        "technique": DEEP,
        "depth_mm": Decimal("6"),
        "injections": 40,
        "volume_per_point_ml": Decimal("0.2"),
        "total_volume_ml": Decimal("8"),
        "limits": (DCA,),
    }
    values.update(overrides)
    return entry(**values)


@pytest.mark.parametrize(
    ("entries", "previous", "subjects"),
    [
        ([dca()], [], set()),
        ([dca(volume_per_point_ml=Decimal("0.21"), total_volume_ml=Decimal("8.4"))], [], {"per-injection"}),
        ([dca(injections=50, total_volume_ml=Decimal("10"))], [], set()),  # exactly the label's limits
        ([dca(injections=51, total_volume_ml=Decimal("10"), volume_per_point_ml=None)], [], {"injections"}),
        (
            [
                dca(injections=30, total_volume_ml=Decimal("6")),
                dca(area_code="jawline-left", injections=25, total_volume_ml=Decimal("5")),
            ],
            [],
            {"injections", "volume"},
        ),
        ([dca()], [DAY - timedelta(days=27)], {"interval"}),
        ([dca()], [DAY - timedelta(days=28)], set()),
        ([dca()], [DAY - timedelta(days=30 * n) for n in range(1, 7)], {"sessions"}),
        ([dca()], [DAY - timedelta(days=30 * n) for n in range(1, 6)], set()),
    ],
)
def test_deoxycholic_acid_label_limits_block(
    entries: list[rules.AreaEntry], previous: list[date], subjects: set[str]
) -> None:
    found = rules.product_limit_findings(entries, on=DAY, previous_sessions={DCA.label: previous})
    assert all((f.code, f.severity, f.rule) == ("product-limit", "block", "R-TECH") for f in found)
    assert {f.subject.rsplit(":", 1)[-1] for f in found} == subjects


def test_an_entry_without_limits_has_no_product_findings() -> None:
    assert rules.product_limit_findings([entry(injections=999)], on=DAY, previous_sessions={}) == []


@given(
    per=st.decimals(Decimal("0.01"), Decimal("0.5"), places=2),
    injections=st.integers(1, 120),
    elapsed=st.integers(0, 120),
)
@settings(max_examples=300)
def test_product_limits_block_exactly_over_the_label(per: Decimal, injections: int, elapsed: int) -> None:
    total = per * injections
    found = rules.product_limit_findings(
        [dca(volume_per_point_ml=per, injections=injections, total_volume_ml=total)],
        on=DAY,
        previous_sessions={DCA.label: [DAY - timedelta(days=elapsed)]},
    )
    subjects = {f.subject.rsplit(":", 1)[-1] for f in found}
    assert ("per-injection" in subjects) is (per > Decimal("0.2"))
    assert ("injections" in subjects) is (injections > 50)
    assert ("volume" in subjects) is (total > 10)
    assert ("interval" in subjects) is (elapsed < 28)


# --- the gate -----------------------------------------------------------------------------------------------


def test_a_clear_gate_has_no_block_and_no_warning() -> None:
    assert [f for f in rules.gate_findings(gate()) if f.severity != "info"] == []


@pytest.mark.parametrize(("elapsed", "blocked"), [(0, True), (6, True), (7, False), (8, False), (30, False)])
def test_the_minimum_interval_blocks(elapsed: int, blocked: bool) -> None:
    found = rules.gate_findings(gate(last_session_on=DAY - timedelta(days=elapsed)))
    assert ("interval-too-short" in codes(found)) is blocked


@given(elapsed=st.integers(0, 400), minimum=st.integers(1, 60))
@settings(max_examples=300)
def test_interval_property(elapsed: int, minimum: int) -> None:
    found = rules.interval_findings(
        on=DAY, last_session_on=DAY - timedelta(days=elapsed), interval_min_days=minimum
    )
    assert bool(found) is (elapsed < minimum)
    assert all(f.severity == "block" and f.rule == "R-PRE-INTERVAL" for f in found)


def test_the_first_session_has_no_interval() -> None:
    assert "interval-too-short" not in codes(rules.gate_findings(gate(last_session_on=None)))


@pytest.mark.parametrize(
    ("done", "planned", "maximum", "expected"),
    [
        (5, 6, 8, None),
        (6, 6, 8, ("beyond-planned-sessions", "warn")),
        (8, 10, 8, ("series-complete", "block")),
    ],
)
def test_series_length(done: int, planned: int, maximum: int, expected: tuple[str, str] | None) -> None:
    found = rules.series_findings(sessions_done=done, planned_sessions=planned, protocol_sessions_max=maximum)
    assert [(f.code, f.severity) for f in found] == ([expected] if expected else [])


def test_an_inactive_plan_blocks() -> None:
    assert "plan-not-active" in codes(rules.gate_findings(gate(plan_status="draft")))


def test_hooks_not_answered_are_reported_as_not_checked_never_passed() -> None:
    found = rules.gate_findings(gate(hooks={}))
    by_code = {f.code: f for f in found}
    assert by_code["no-consent"].severity == "info" and by_code["no-consent"].rule == "R-PRE-CONSENT"
    assert (
        by_code["bruising-unresolved"].severity == "info"
        and by_code["bruising-unresolved"].rule == "R-PRE-BRUISE"
    )
    answered = rules.gate_findings(
        gate(
            hooks={
                "no-consent": (),
                "bruising-unresolved": (Finding("bruising-unresolved", "block", "R-PRE-BRUISE", "x", "003"),),
            }
        )
    )
    assert {(f.code, f.severity) for f in answered} >= {("bruising-unresolved", "block")}
    assert "no-consent" not in codes(answered)


def test_an_expired_licence_blocks_the_gate() -> None:
    expired = LicenceFacts(jurisdiction="FR", valid_from=None, expires_on=DAY - timedelta(days=1))
    assert "licence-invalid" in codes(rules.gate_findings(gate(licences=(expired,))))
    assert "licence-invalid" in codes(rules.gate_findings(gate(licences=())))
    assert "licence-invalid" not in codes(
        rules.gate_findings(gate(on=DAY, licences=(LicenceFacts("FR", None, DAY),)))
    )


@pytest.mark.parametrize(
    ("lot", "expected"),
    [
        (LotFacts("A1", DAY + timedelta(days=1), False, Decimal(0)), set()),
        (LotFacts("A1", DAY, False, Decimal(0)), set()),  # usable through its expiry date
        (LotFacts("A1", DAY - timedelta(days=1), False, Decimal(0)), {"lot-expired"}),
        (
            LotFacts("A1", DAY + timedelta(days=9), True, Decimal(0), recall_reason="supplier"),
            {"lot-recalled"},
        ),
    ],
)
def test_lots_of_the_preparations_must_be_usable(lot: LotFacts, expected: set[str]) -> None:
    found = rules.gate_findings(gate(lots=(rules.GateLot("Facial v1 (preparation 3)", lot),)))
    assert codes(found) & {"lot-expired", "lot-recalled"} == expected


def test_screening_findings_for_the_day_are_part_of_the_gate() -> None:
    nsaid = Finding("nsaid-washout", "warn", "R-PRE-NSAID", "Advil 3 days ago", "004", subject="Advil")
    found = rules.gate_findings(gate(patient_findings=(nsaid,)))
    assert nsaid in found
    assert rules.unacknowledged(found, {}) == [nsaid]
    assert rules.unacknowledged(found, {nsaid.key: "  "}) == [nsaid]  # a blank reason is no reason
    assert rules.unacknowledged(found, {nsaid.key: "accepted"}) == []
    assert "no-intake" in codes(rules.gate_findings(gate(patient_screened=False)))


def test_a_local_anaesthetic_allergy_is_shown_and_numbing_cream_then_warns() -> None:
    found = rules.gate_findings(gate(local_anaesthetic_allergy=("lidocaine",)))
    assert {(f.code, f.severity) for f in found} >= {("numbing-allergy", "info")}
    assert codes(
        rules.numbing_findings(anaesthetic="lidocaine", local_anaesthetic_allergy=["lidocaine"])
    ) == {"numbing-allergy"}
    assert rules.numbing_findings(anaesthetic="none", local_anaesthetic_allergy=["lidocaine"]) == []
    assert rules.numbing_findings(anaesthetic="lidocaine", local_anaesthetic_allergy=[]) == []


def test_blocks_come_first() -> None:
    found = rules.gate_findings(gate(plan_status="draft", hooks={}, last_session_on=DAY))
    order = [f.severity for f in found]
    assert order == sorted(order, key=lambda s: {"block": 0, "warn": 1, "info": 2}[s])


# --- plans, series windows, co-signature --------------------------------------------------------------------


def test_activation_needs_a_current_candidate_review() -> None:
    assert codes(rules.activation_findings(None, plan_status="draft")) == {"screening-not-reviewed"}
    stale = rules.ReviewFacts("candidate", ("A newer intake was submitted.",))
    assert codes(rules.activation_findings(stale, plan_status="draft")) == {"screening-stale"}
    assert codes(rules.activation_findings(rules.ReviewFacts("not_candidate"), plan_status="draft")) == {
        "not-a-candidate"
    }
    assert rules.activation_findings(rules.ReviewFacts("candidate"), plan_status="draft") == []
    assert codes(rules.activation_findings(rules.ReviewFacts("candidate"), plan_status="active")) == {
        "plan-not-draft"
    }


@given(
    last=st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    low=st.integers(1, 30),
    spread=st.integers(0, 30),
    taper=st.integers(0, 60),
    improved=st.booleans(),
)
@settings(max_examples=300)
def test_the_next_window_respects_the_protocol(
    last: date, low: int, spread: int, taper: int, improved: bool
) -> None:
    rule = rules.SeriesRule(low, low + spread, low + taper, low + taper + spread)
    window = rules.next_window(rule, last_session_on=last, improved=improved)
    assert window is not None
    earliest, latest = window
    assert earliest - last >= timedelta(days=low)  # never sooner than the protocol allows
    assert earliest <= latest
    if not improved:
        assert (earliest - last, latest - last) == (timedelta(days=low), timedelta(days=low + spread))
    else:
        assert earliest - last == timedelta(days=low + taper)


def test_no_window_before_the_first_session() -> None:
    assert rules.next_window(rules.SeriesRule(7, 10), last_session_on=None, improved=False) is None


@pytest.mark.parametrize(
    ("share", "new", "signed", "sample", "required"),
    [
        (10, 20, 0, 0.99, True),  # a new practitioner: always
        (10, 20, 19, 0.99, True),
        (10, 20, 20, 0.99, False),
        (10, 20, 20, 0.05, True),  # in the sampled share
        (10, 20, 20, 0.10, False),
        (0, 0, 100, 0.0, False),
        (100, 0, 100, 0.999, True),
    ],
)
def test_cosign_selection(share: int, new: int, signed: int, sample: float, required: bool) -> None:
    assert (
        rules.cosign_required(
            share_percent=share, new_practitioner_sessions=new, signed_before=signed, sample=sample
        )
        is required
    )


def test_the_cosign_sample_is_stable_and_near_the_share() -> None:
    samples = [rules.cosign_sample(1, session) for session in range(1, 5001)]
    assert samples == [rules.cosign_sample(1, session) for session in range(1, 5001)]
    share = sum(sample < 0.10 for sample in samples) / len(samples)
    assert 0.08 < share < 0.12
    assert all(0 <= sample < 1 for sample in samples)


def test_protocol_input_problems() -> None:
    good = {
        "sessions_min": 4,
        "sessions_max": 8,
        "interval_min_days": 7,
        "interval_max_days": 14,
        "taper_interval_min_days": 14,
        "taper_interval_max_days": 30,
        "areas": [("forehead", Decimal("1"), Decimal("2"), Decimal("1"), Decimal("2"))],
        "measures": ["gais"],
        "procedures": ["botulinum-toxin"],
        "aftercare": ["bruising"],
    }
    assert rules.protocol_input_problems(**good) == {}  # type: ignore[arg-type]
    for change, field in (
        ({"sessions_min": 9}, "sessions_max"),
        ({"sessions_max": 31}, "sessions_max"),
        ({"interval_min_days": 15}, "interval_max_days"),
        ({"taper_interval_max_days": None}, "taper_interval_max_days"),
        ({"taper_interval_min_days": 3}, "taper_interval_max_days"),
        ({"areas": []}, "areas"),
        ({"areas": [("forehead", Decimal("3"), Decimal("2"), Decimal("1"), Decimal("4"))]}, "areas.0.depth"),
        (
            {"areas": [("forehead", Decimal("1"), Decimal("14"), Decimal("1"), Decimal("13"))]},
            "areas.0.depth",
        ),
        ({"measures": ["vibes"]}, "outcome_measures"),
        ({"aftercare": ["champagne"]}, "aftercare"),
    ):
        assert field in rules.protocol_input_problems(**{**good, **change}), change  # type: ignore[arg-type]


def test_aftercare_texts_skip_unknown_codes() -> None:
    assert [code for code, _text in rules.aftercare_texts(["bruising", "nope", "infection-watch"])] == [
        "bruising",
        "infection-watch",
    ]
    assert "12 weeks" in dict(rules.aftercare_texts(["infection-watch"]))["infection-watch"]

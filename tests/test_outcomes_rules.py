"""The pure outcome rules (R-OUT, R-EVID, R-ALT): every scale's range, change from baseline, the responder
rule of every seeded protocol, the non-responder flag, landmarks, BMI and the taper trigger. Table-driven,
and with hypothesis where numbers are involved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.outcomes import rules
from mesoclinic.outcomes.rules import SCALES, SeriesFacts
from mesoclinic.treatments.seed import PROTOCOLS

D = Decimal

# Every scale, as domain.md R-OUT gives it: (code, lowest, highest, whole grades only, LOINC).
SCALE_TABLE = [
    ("weight", D("20"), D("350"), False, "29463-7"),
    ("height", D("50"), D("250"), False, "8302-2"),
    ("waist-circumference", D("5"), D("250"), False, "8280-0"),
    ("hip-circumference", D("5"), D("250"), False, ""),
    ("thigh-circumference", D("5"), D("250"), False, ""),
    ("arm-circumference", D("5"), D("250"), False, ""),
    ("fat-thickness", D("0.5"), D("150"), False, ""),
    ("gais", D("1"), D("5"), True, ""),
    ("cr-smfrs", D("0"), D("4"), True, ""),
    ("pr-smfrs", D("0"), D("4"), True, ""),
    ("nurnberger-muller", D("0"), D("3"), True, ""),
    ("hexsel-css", D("0"), D("15"), True, ""),
    ("glogau", D("1"), D("4"), True, ""),
    ("wrinkle-severity", D("1"), D("5"), True, ""),
    ("norwood-hamilton", D("1"), D("7"), True, ""),
    ("ludwig", D("1"), D("3"), True, ""),
    ("hair-density", D("0"), D("1000"), False, ""),
    ("satisfaction", D("1"), D("5"), True, ""),
    ("pain-nrs", D("0"), D("10"), True, "72514-3"),
]


def test_the_table_covers_every_entered_scale_and_every_protocol_measure() -> None:
    entered = {code for code, scale in SCALES.items() if not scale.derived}
    assert {row[0] for row in SCALE_TABLE} == entered
    from mesoclinic.treatments.rules import OUTCOME_MEASURES

    assert set(OUTCOME_MEASURES) - {"photos"} <= set(SCALES)
    assert SCALES["bmi"].loinc == "39156-5" and SCALES["bmi"].derived


@pytest.mark.parametrize(("code", "low", "high", "whole", "loinc"), SCALE_TABLE)
def test_every_scale_accepts_its_range_and_refuses_outside_it(
    code: str, low: Decimal, high: Decimal, whole: bool, loinc: str
) -> None:
    scale = SCALES[code]
    assert scale.loinc == loinc and scale.version
    assert rules.value_problem(scale, low) is None
    assert rules.value_problem(scale, high) is None
    below = rules.value_problem(scale, low - scale.step)
    above = rules.value_problem(scale, high + scale.step)
    assert below is not None and "Out of range" in below and scale.label in below
    assert above is not None and "Out of range" in above
    assert rules.value_problem(scale, None) == "Give a number."
    middle = (low + high) / 2
    if whole:
        assert rules.value_problem(scale, low + D("0.5")) is not None
    else:
        assert rules.value_problem(scale, middle) is None


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("waist-circumference", D("-3")),  # a negative circumference
        ("thigh-circumference", D("0")),
        ("weight", D("0")),  # a weight of 0
        ("gais", D("6")),
        ("gais", D("0")),
        ("cr-smfrs", D("5")),
        ("pain-nrs", D("11")),
        ("hair-density", D("-1")),
        ("fat-thickness", D("0")),
    ],
)
def test_impossible_values_are_refused(code: str, value: Decimal) -> None:
    assert rules.value_problem(SCALES[code], value) is not None


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from([row[0] for row in SCALE_TABLE]),
    value=st.decimals(min_value=-2000, max_value=2000, places=2, allow_nan=False, allow_infinity=False),
)
def test_a_value_is_valid_exactly_when_in_range_and_whole_for_grades(code: str, value: Decimal) -> None:
    scale = SCALES[code]
    expected = scale.minimum <= value <= scale.maximum and (
        scale.kind == "quantity" or value == value.to_integral_value()
    )
    assert (rules.value_problem(scale, value) is None) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("82.5", D("82.5")),
        ("82,5", D("82.5")),
        (" 7 ", D("7")),
        ("nan", None),
        ("inf", None),
        ("x", None),
        (None, None),
        (True, None),
        (3, D("3")),
    ],
)
def test_parse_decimal(raw: object, expected: Decimal | None) -> None:
    assert rules.parse_decimal(raw) == expected


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        ([0, 1, 2, 3, 3], False),
        ([3, 3, 3, 3, 3], False),
        ([0, 0, 0, 0, 0], False),
        ([0, 1, 2, 3], True),  # an item missing
        ([0, 1, 2, 3, 4], True),  # an item above 3
        ([0, 1, 2, 3, -1], True),
        ([0, 1, 2, 3, 1.5], True),
        (None, True),
    ],
)
def test_hexsel_needs_five_items_each_0_to_3(items: list[object] | None, problem: bool) -> None:
    scale = SCALES["hexsel-css"]
    assert (rules.items_problem(scale, items) is not None) is problem
    if not problem:
        assert items is not None
        total = rules.items_total(items)
        assert total == sum(D(str(item)) for item in items) and rules.value_problem(scale, total) is None


def test_gais_reversed_is_compared_in_the_published_orientation() -> None:
    assert rules.scale_version("gais", gais_reversed=False) == rules.GAIS_VERSION
    assert rules.scale_version("gais", gais_reversed=True) == rules.GAIS_REVERSED_VERSION
    for recorded in range(1, 6):
        assert rules.standard_value("gais", D(recorded), rules.GAIS_REVERSED_VERSION) == 6 - recorded
        assert rules.standard_value("gais", D(recorded), rules.GAIS_VERSION) == recorded
    reversed_labels = dict(rules.grade_choices("gais", gais_reversed=True))
    assert reversed_labels[5].endswith("very much improved") and reversed_labels[1].endswith("worse")
    assert dict(rules.grade_choices("gais"))[1].endswith("very much improved")


@pytest.mark.parametrize(
    ("code", "value", "shown"),
    [
        ("nurnberger-muller", D(3), "III"),
        ("glogau", D(2), "II"),
        ("norwood-hamilton", D(7), "VII"),
        ("ludwig", D(1), "I"),
        ("pain-nrs", D(4), "4"),
        ("weight", D("81.5"), "81.5 kg"),
        ("hair-density", D(150), "150 hairs/cm²"),
        ("waist-circumference", D("90.0"), "90 cm"),
    ],
)
def test_display(code: str, value: Decimal, shown: str) -> None:
    assert SCALES[code].display(value) == shown


# --- change from baseline -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "baseline", "latest", "verdict", "improvement"),
    [
        ("waist-circumference", D("90"), D("87.5"), "better", D("2.5")),
        ("waist-circumference", D("90"), D("91"), "worse", D("-1")),
        ("hair-density", D("100"), D("120"), "better", D("20")),
        ("pain-nrs", D("7"), D("7"), "same", D("0")),
        ("weight", D("70"), D("68"), "none", D("0")),
    ],
)
def test_change(code: str, baseline: Decimal, latest: Decimal, verdict: str, improvement: Decimal) -> None:
    step = rules.change(SCALES[code], baseline=baseline, latest=latest)
    assert (step.verdict, step.improvement, step.delta) == (verdict, improvement, latest - baseline)


@settings(max_examples=250, deadline=None)
@given(
    baseline=st.decimals(min_value=5, max_value=250, places=1),
    latest=st.decimals(min_value=5, max_value=250, places=1),
)
def test_change_is_consistent(baseline: Decimal, latest: Decimal) -> None:
    step = rules.change(SCALES["thigh-circumference"], baseline=baseline, latest=latest)
    assert step.delta == latest - baseline and step.improvement == baseline - latest
    assert (step.verdict == "better") is (latest < baseline)
    assert step.percent is not None and abs(step.percent - (latest - baseline) * 100 / baseline) <= D("0.05")
    # The taper trigger: at least 1 cm better.
    facts = SeriesFacts("thigh-circumference", "t", baseline, latest, 1)
    assert (rules.improved_series([facts]) == ["t"]) is (baseline - latest >= 1)


@settings(max_examples=250, deadline=None)
@given(
    weight=st.decimals(min_value=20, max_value=350, places=1),
    height=st.decimals(min_value=50, max_value=250, places=1),
)
def test_bmi(weight: Decimal, height: Decimal) -> None:
    value = rules.bmi(weight_kg=weight, height_cm=height)
    exact = weight / (height / 100) ** 2
    assert abs(value - exact) <= D("0.05") and value == value.quantize(D("0.1"))


def test_bmi_example() -> None:
    assert rules.bmi(weight_kg=D("70"), height_cm=D("175")) == D("22.9")


# --- landmarks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "direction", "distance", "side", "fields"),
    [
        ("umbilicus", "at", D("0"), "", set()),
        ("patella-top", "above", D("15"), "left", set()),
        ("patella-top", "above", D("0"), "left", {"distance_cm"}),
        ("umbilicus", "at", D("3"), "", {"distance_cm"}),
        ("umbilicus", "below", D("-2"), "", {"distance_cm"}),
        ("umbilicus", "below", D("61"), "", {"distance_cm"}),
        ("umbilicus", "below", D("2.25"), "", {"distance_cm"}),
        ("elbow", "at", D("0"), "", {"fixed_point"}),
        ("umbilicus", "beside", D("0"), "", {"direction"}),
        ("umbilicus", "at", D("0"), "middle", {"side"}),
        ("umbilicus", "at", None, "", {"distance_cm"}),
    ],
)
def test_landmark_problems(
    point: str, direction: str, distance: Decimal | None, side: str, fields: set[str]
) -> None:
    problems = rules.landmark_problems(
        fixed_point=point, direction=direction, distance_cm=distance, side=side
    )
    assert set(problems) == fields


def test_landmark_label_and_key() -> None:
    thigh = rules.Landmark("patella-top", "above", D("15.0"), "left")
    assert thigh.label() == "15 cm above the top of the kneecap (left)"
    assert thigh.key == rules.Landmark("patella-top", "above", D("15"), "left").key
    assert rules.Landmark("umbilicus", "at", D("0")).label() == "at the navel"


# --- which measures a timepoint takes ---------------------------------------------------------------------


def test_change_rating_scales_are_not_taken_at_baseline() -> None:
    measures = ["gais", "glogau", "photos", "satisfaction", "weight"]
    assert rules.allowed_measures(measures, baseline=True) == ["glogau", "weight", "height"]
    assert rules.allowed_measures(measures, baseline=False) == [
        "gais",
        "glogau",
        "satisfaction",
        "weight",
        "height",
    ]
    assert rules.due_measures(measures, baseline=True) == ["glogau", "weight", "height"]
    assert rules.due_measures(measures, baseline=False) == ["gais", "glogau", "satisfaction", "weight"]


@pytest.mark.parametrize(
    ("indication", "first"),
    [
        ("localized-fat", "abdomen-front"),
        ("cellulite", "thighs-back"),
        ("rejuvenation", "face-front"),
        ("hair-loss", "scalp-top"),
        ("submental-fat", "face-front"),
        ("pain", "area-front"),
    ],
)
def test_photo_views_per_indication(indication: str, first: str) -> None:
    views = rules.photo_views(indication)
    assert views[0] == first and all(view in rules.PHOTO_VIEWS for view in views)
    if indication == "localized-fat":
        assert {"abdomen-left-45", "abdomen-right-45", "abdomen-left-90", "abdomen-right-90"} <= set(views)


# --- responder rules: one per seeded protocol, and the default ----------------------------------------------


def s(code: str, baseline: str | None, latest: str | None, after: int = 4, key: str = "") -> SeriesFacts:
    return SeriesFacts(
        code, key or code, D(baseline) if baseline else None, D(latest) if latest else None, after
    )


RESPONDER_TABLE = [
    # localized fat: ≥ 2 cm reduction in the treated circumference (any landmark)
    ("localized-fat", [s("waist-circumference", "90", "88")], "responder"),
    ("localized-fat", [s("waist-circumference", "90", "88.1")], "non-responder"),
    (
        "localized-fat",
        [s("waist-circumference", "90", "89.5"), s("thigh-circumference", "60", "57.9", key="t")],
        "responder",
    ),
    ("localized-fat", [s("weight", "70", "66")], "not-measured"),  # weight is not the rule's measure
    # cellulite: 1 Nürnberger-Müller grade or 3 Hexsel CSS points
    ("cellulite", [s("nurnberger-muller", "3", "2")], "responder"),
    ("cellulite", [s("nurnberger-muller", "3", "3"), s("hexsel-css", "12", "9")], "responder"),
    ("cellulite", [s("nurnberger-muller", "3", "3"), s("hexsel-css", "12", "10")], "non-responder"),
    # facial rejuvenation and loose skin: GAIS 3 (improved) or better
    ("facial-rejuvenation", [s("gais", None, "3")], "responder"),
    ("facial-rejuvenation", [s("gais", None, "4")], "non-responder"),
    ("loose-skin", [s("gais", None, "1")], "responder"),
    ("loose-skin", [s("gais", None, "5")], "non-responder"),
    # hair loss: density up ≥ 10 %
    ("hair-loss", [s("hair-density", "100", "110")], "responder"),
    ("hair-loss", [s("hair-density", "100", "109")], "non-responder"),
    # submental fat: ≥ 1 grade better on BOTH CR-SMFRS and PR-SMFRS (REFINE-1)
    ("submental-deoxycholic-acid", [s("cr-smfrs", "3", "2"), s("pr-smfrs", "3", "2")], "responder"),
    ("submental-deoxycholic-acid", [s("cr-smfrs", "3", "1"), s("pr-smfrs", "3", "3")], "non-responder"),
    ("submental-deoxycholic-acid", [s("cr-smfrs", "3", "2")], "not-measured"),
    # pain: ≥ 2 points on the NRS
    ("pain", [s("pain-nrs", "7", "5")], "responder"),
    ("pain", [s("pain-nrs", "7", "6")], "non-responder"),
]


def test_the_table_has_a_responder_rule_for_every_seeded_protocol() -> None:
    assert (
        {row[0] for row in RESPONDER_TABLE}
        == {spec["code"] for spec in PROTOCOLS}
        == set(rules.RESPONDER_RULES)
    )


@pytest.mark.parametrize(("protocol", "series", "expected"), RESPONDER_TABLE)
def test_responder_rule_of_every_protocol(protocol: str, series: list[SeriesFacts], expected: str) -> None:
    spec = next(spec for spec in PROTOCOLS if spec["code"] == protocol)
    rule = rules.responder_rule_for(
        [protocol], indication=spec["indication"], protocol_measures=spec["measures"]
    )
    result = rules.response(rule, series, sessions_done=4, judge_after=4, alternatives=spec["alternatives"])
    assert result.status == expected
    if expected == "non-responder":
        (finding,) = result.findings
        assert (finding.code, finding.severity, finding.rule) == ("non-responder", "warn", "R-EVID")
        from mesoclinic.treatments.rules import procedure_label

        for code in spec["alternatives"]:
            assert procedure_label(code) in finding.message


def test_not_met_before_the_protocols_number_of_sessions_is_not_yet_a_non_responder() -> None:
    rule = rules.RESPONDER_RULES["localized-fat"]
    series = [s("waist-circumference", "90", "89.5", after=2)]
    assert rules.response(rule, series, sessions_done=3, judge_after=4).status == "not-yet"
    # Four sessions done, but the last value was taken after two: measure again before judging.
    judged = rules.response(rule, series, sessions_done=4, judge_after=4)
    assert judged.status == "not-measured" and judged.findings[0].code == "response-not-measured"
    late = [s("waist-circumference", "90", "89.5", after=4)]
    assert rules.response(rule, late, sessions_done=4, judge_after=4).non_responder
    # A responder does not wait for the judging session.
    early = [s("waist-circumference", "90", "87", after=1)]
    assert rules.response(rule, early, sessions_done=1, judge_after=4).status == "responder"


@settings(max_examples=250, deadline=None)
@given(
    baseline=st.decimals(min_value=30, max_value=200, places=1),
    reduction=st.decimals(min_value=-10, max_value=20, places=1),
    done=st.integers(min_value=0, max_value=15),
    judge=st.integers(min_value=1, max_value=10),
)
def test_localized_fat_responder_iff_two_cm(
    baseline: Decimal, reduction: Decimal, done: int, judge: int
) -> None:
    rule = rules.RESPONDER_RULES["localized-fat"]
    series = [s("waist-circumference", str(baseline), str(baseline - reduction), after=done)]
    result = rules.response(rule, series, sessions_done=done, judge_after=judge, alternatives=["liposuction"])
    if reduction >= 2:
        assert result.status == "responder"
    elif done >= judge:
        assert result.status == "non-responder" and "Liposuction" in result.findings[0].message
    else:
        assert result.status == "not-yet" and result.findings == ()


@settings(max_examples=250, deadline=None)
@given(
    cr=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    pr=st.tuples(st.integers(0, 4), st.integers(0, 4)),
)
def test_submental_needs_both_scales(cr: tuple[int, int], pr: tuple[int, int]) -> None:
    rule = rules.RESPONDER_RULES["submental-deoxycholic-acid"]
    series = [s("cr-smfrs", str(cr[0]), str(cr[1])), s("pr-smfrs", str(pr[0]), str(pr[1]))]
    result = rules.response(rule, series, sessions_done=4, judge_after=4)
    both = cr[0] - cr[1] >= 1 and pr[0] - pr[1] >= 1
    assert (result.status == "responder") is both
    assert (result.status == "non-responder") is (not both)


@pytest.mark.parametrize(
    ("codes", "indication", "expected"),
    [
        (["localized-fat"], "localized-fat", "localized-fat"),
        (["localized-fat-2"], "localized-fat", "localized-fat"),  # a clinic's copy
        (["our-fat-protocol", "cellulite"], "cellulite", "cellulite"),  # copied from the template
        (["our-own"], "hair-loss", "hair-loss"),  # no template: by indication
        (["our-own"], "scars", "default"),
    ],
)
def test_rule_resolution(codes: list[str], indication: str, expected: str) -> None:
    rule = rules.responder_rule_for(codes, indication=indication, protocol_measures=["pain-nrs", "weight"])
    assert rule.code == expected


def test_default_rule_uses_the_protocols_measures() -> None:
    rule = rules.default_rule(["weight", "pain-nrs", "glogau", "satisfaction", "photos", "gais"])
    assert [c.measures for c in rule.criteria] == [("pain-nrs",), ("glogau",), ("gais",)]
    assert rules.response(rule, [s("glogau", "3", "2")], sessions_done=4, judge_after=4).status == "responder"
    assert rules.response(rule, [s("glogau", "3", "3")], sessions_done=4, judge_after=4).non_responder
    assert rules.judge_after(None, 3) == 3 and rules.judge_after(5, 3) == 5


def test_improvement_that_tapers_intervals() -> None:
    series = [
        s("waist-circumference", "90", "89.5", key="w"),  # under 1 cm: not yet
        s("gais", None, "3", key="g"),  # "improved"
        s("weight", "80", "75", key="kg"),  # weight has no better direction
        s("hair-density", "100", "109", key="h"),  # under 10 %
        s("pain-nrs", "6", "4", key="p"),
    ]
    assert rules.improved_series(series) == ["g", "p"]


# --- every responder rule, as a property: the rule's own words, checked against random measurements ---------


def _values_of(code: str) -> st.SearchStrategy[Decimal]:
    """Any value the scale accepts, at its resolution."""
    scale = SCALES[code]
    if scale.kind == "quantity":
        places = max(0, -int(scale.step.as_tuple().exponent))
        return st.decimals(min_value=scale.minimum, max_value=scale.maximum, places=places)
    return st.integers(int(scale.minimum), int(scale.maximum)).map(Decimal)


def _criterion_met(criterion: rules.Criterion, item: SeriesFacts) -> bool:
    """The criterion as domain.md and the rule's source say it, written out again for each case."""
    assert item.latest is not None
    if criterion.at_most is not None:  # a change-rating scale: "improved" (GAIS 3) or better
        return item.latest <= criterion.at_most
    assert item.baseline is not None
    lower_is_better = SCALES[item.code].better == "lower"
    gain = item.baseline - item.latest if lower_is_better else item.latest - item.baseline
    if criterion.improve_by_percent is not None:
        if item.baseline == 0:
            return gain > 0
        return gain * 100 >= criterion.improve_by_percent * item.baseline
    assert criterion.improve_by is not None
    return gain >= criterion.improve_by


@st.composite
def _rule_case(draw: st.DrawFn) -> tuple[rules.ResponderRule, list[SeriesFacts], int, int]:
    rule = rules.RESPONDER_RULES[draw(st.sampled_from(sorted(rules.RESPONDER_RULES)))]
    done = draw(st.integers(min_value=0, max_value=15))
    judge = draw(st.integers(min_value=1, max_value=10))
    series: list[SeriesFacts] = []
    for index, criterion in enumerate(rule.criteria):
        code = draw(st.sampled_from(criterion.measures))
        baseline = None if criterion.at_most is not None else draw(_values_of(code))
        series.append(SeriesFacts(code, f"{code}#{index}", baseline, draw(_values_of(code)), done))
    return rule, series, done, judge


@settings(max_examples=600, deadline=None)
@given(case=_rule_case())
def test_every_responder_rule_over_the_whole_range_of_its_scales(
    case: tuple[rules.ResponderRule, list[SeriesFacts], int, int],
) -> None:
    """R-EVID for every protocol's rule (localized fat ≥ 2 cm; cellulite 1 Nürnberger-Müller grade or 3 Hexsel
    points; GAIS ≤ 3; hair density + 10 %; CR-SMFRS and PR-SMFRS both ≥ 1 grade; pain NRS ≥ 2 points): a
    responder exactly when the rule is met; otherwise a non-responder (warn, with the R-ALT alternatives)
    once the protocol's number of sessions is done, and "not yet" before."""
    rule, series, done, judge = case
    met = [_criterion_met(criterion, item) for criterion, item in zip(rule.criteria, series, strict=True)]
    expected_met = all(met) if rule.combine == "all" else any(met)
    result = rules.response(rule, series, sessions_done=done, judge_after=judge, alternatives=["liposuction"])
    if expected_met:
        assert result.status == "responder" and result.findings == ()
    elif done >= judge:
        assert result.status == "non-responder" and result.non_responder
        (finding,) = result.findings
        assert (finding.code, finding.severity, finding.rule) == ("non-responder", "warn", "R-EVID")
        assert "Liposuction" in finding.message and str(judge) in finding.message
    else:
        assert result.status == "not-yet" and result.findings == ()


@st.composite
def _any_series(draw: st.DrawFn) -> SeriesFacts:
    code = draw(st.sampled_from(sorted(code for code, scale in SCALES.items() if not scale.derived)))
    baseline = None if SCALES[code].rates_change else draw(_values_of(code))
    return SeriesFacts(code, code, baseline, draw(_values_of(code)), draw(st.integers(0, 15)))


@settings(max_examples=600, deadline=None)
@given(item=_any_series())
def test_the_taper_trigger_over_every_scale(item: SeriesFacts) -> None:
    """R-SERIES via outcomes: a measure counts as improved (intervals may taper) when it is better than its
    baseline by the scale's meaningful change (hair density: 10 %), or GAIS reads 3 "improved" or better; a
    measure with no better direction (weight, height) and satisfaction never trigger it."""
    scale = item.scale
    assert item.latest is not None
    if scale.rates_change:
        expected = scale.code == "gais" and item.latest <= 3
    elif scale.better == "none":
        expected = False
    else:
        assert item.baseline is not None
        gain = item.baseline - item.latest if scale.better == "lower" else item.latest - item.baseline
        if scale.meaningful_percent is not None:
            share = scale.meaningful_percent * item.baseline
            expected = gain > 0 if item.baseline == 0 else gain * 100 >= share
        else:
            expected = gain >= max(scale.meaningful, scale.step)
    assert (rules.improved_series([item]) == [item.key]) is expected

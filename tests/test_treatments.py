"""Protocols, plans, the check-in gate, charting, sign-off, amendments and co-signature through the services,
on the real database (issue 5; R-IND, R-TECH, R-SERIES, R-ALT, R-PRE-*, R-PROV)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import PractitionerLicence, Role
from mesoclinic.audit.models import AuditEvent
from mesoclinic.formulary import services as formulary
from mesoclinic.formulary.models import Lot, Preparation, StockMovement
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.treatments import services
from mesoclinic.treatments.models import (
    Aftercare,
    ChartedArea,
    Protocol,
    ProtocolVersion,
    SessionAmendment,
    SessionPreparation,
    TreatmentPlan,
    TreatmentSession,
)
from tests.consent_support import give_consent
from tests.factories import ClinicFactory, LicenceFactory, PatientFactory, staff
from tests.screening_support import submit
from tests.treatments_support import Treat, candidate, centre, days_later, ensure_seed, sign, treat

pytestmark = pytest.mark.django_db


@pytest.fixture
def t(db: None) -> Treat:
    return treat()


def codes(error: FindingsRefused) -> set[str]:
    return {finding.code for finding in error.findings}


# --- seeded data --------------------------------------------------------------------------------------------


def test_every_area_the_seeds_name_is_on_the_body_map(db: None) -> None:
    ensure_seed()
    from mesoclinic.treatments.models import BodyArea

    regions = set(BodyArea.objects.values_list("region", flat=True))
    assert {
        "abdomen",
        "flanks",
        "hips",
        "thighs",
        "buttocks",
        "legs",
        "arms",
        "forehead",
        "periorbital",
        "cheeks",
        "jawline",
        "chin",
        "submental",
        "neck",
        "decolletage",
        "scalp",
    } <= regions
    views = set(BodyArea.objects.values_list("view", flat=True))
    assert views == {"front", "back", "face", "scalp"}
    for code in ("thigh-front-left", "thigh-back-right", "thigh-inner-left", "scalp-vertex", "scalp-frontal"):
        assert BodyArea.objects.filter(code=code).exists()


def test_techniques_carry_their_depth_ranges(db: None) -> None:
    ensure_seed()
    from mesoclinic.treatments.models import Technique

    ranges = {t.code: (t.depth_min_mm, t.depth_max_mm) for t in Technique.objects.all()}
    assert ranges["nappage"] == (Decimal("1.0"), Decimal("2.0"))
    assert ranges["intradermal"] == (Decimal("1.0"), Decimal("4.0"))
    assert ranges["point-by-point-deep"] == (Decimal("4.0"), Decimal("13.0"))
    assert {"intraepidermal", "papule", "linear-retrograde", "multi-injector-gun"} <= set(ranges)


def test_the_seven_protocol_templates_are_seeded(db: None) -> None:
    ensure_seed()
    templates = {p.code: p for p in Protocol.objects.filter(clinic__isnull=True)}
    assert set(templates) >= {
        "localized-fat",
        "cellulite",
        "facial-rejuvenation",
        "loose-skin",
        "hair-loss",
        "submental-deoxycholic-acid",
        "pain",
    }
    kybella = services.current_version(templates["submental-deoxycholic-acid"])
    assert (kybella.sessions_max, kybella.interval_min_days) == (6, 28)
    assert [row.area.code for row in kybella.areas.all()] == ["submental"]
    fat = services.current_version(templates["localized-fat"])
    assert (fat.interval_min_days, fat.interval_max_days, fat.taper_interval_min_days) == (7, 10, 14)
    assert "liposuction" in fat.alternatives and fat.non_responder_after_sessions == 4


# --- protocols ----------------------------------------------------------------------------------------------


def test_a_clinic_copies_a_template_and_edits_it_into_a_new_version(t: Treat) -> None:
    template = Protocol.objects.get(clinic__isnull=True, code="cellulite")
    copy = services.protocol_copy(
        caller=t.caller(t.director), clinic=t.clinic, protocol=template, name="Our cellulite"
    )
    assert copy.clinic_id == t.clinic.pk and copy.copied_from_id == template.pk
    content = services.content_of(services.current_version(copy))
    revised = services.protocol_revise(
        caller=t.caller(t.director),
        protocol=copy,
        content=services.ProtocolContent(
            **{**content.__dict__, "sessions_max": 10, "formula_ids": [t.formulary.formula.pk]}
        ),
    )
    assert revised.number == 2
    assert services.current_version(copy).sessions_max == 10
    assert services.current_version(template).sessions_max == 12  # the template is untouched


def test_a_protocol_version_used_by_a_plan_is_immutable(t: Treat) -> None:
    version = t.plan.protocol_version
    version.sessions_max = 3
    with pytest.raises(Exception, match="used by a plan"):
        version.save()
    assert ProtocolVersion.objects.get(pk=version.pk).sessions_max == 8


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sessions_min": 9, "sessions_max": 3}, "sessions_max"),
        ({"interval_min_days": 20, "interval_max_days": 10}, "interval_max_days"),
        ({"outcome_measures": ["height-of-hopes"]}, "outcome_measures"),
        ({"combinations": ["magic"]}, "combinations"),
        ({"areas": []}, "areas"),
    ],
)
def test_bad_protocol_content_is_refused_and_nothing_is_written(
    t: Treat, change: dict[str, object], field: str
) -> None:
    template = Protocol.objects.get(clinic__isnull=True, code="pain")
    copy = services.protocol_copy(caller=t.caller(t.director), clinic=t.clinic, protocol=template)
    content = services.content_of(services.current_version(copy))
    with pytest.raises(ValidationError) as caught:
        services.protocol_revise(
            caller=t.caller(t.director),
            protocol=copy,
            content=services.ProtocolContent(**{**content.__dict__, **change}),
        )
    assert field in caught.value.message_dict
    assert copy.versions.count() == 1


def test_a_protocol_depth_outside_its_technique_is_refused(t: Treat) -> None:
    template = Protocol.objects.get(clinic__isnull=True, code="pain")
    copy = services.protocol_copy(caller=t.caller(t.director), clinic=t.clinic, protocol=template)
    content = services.content_of(services.current_version(copy))
    areas = [services.ProtocolAreaIn("back-lower", "intradermal", "2", "9")]
    with pytest.raises(ValidationError) as caught:
        services.protocol_revise(
            caller=t.caller(t.director),
            protocol=copy,
            content=services.ProtocolContent(**{**content.__dict__, "areas": areas}),
        )
    assert "areas.0.depth" in caught.value.message_dict


def test_the_front_desk_cannot_edit_protocols(t: Treat) -> None:
    template = Protocol.objects.get(clinic__isnull=True, code="pain")
    with pytest.raises(PermissionDenied):
        services.protocol_copy(caller=t.caller(t.desk), clinic=t.clinic, protocol=template)


# --- plans --------------------------------------------------------------------------------------------------


def test_a_plan_cannot_be_activated_without_a_reviewed_screening(t: Treat) -> None:
    patient = PatientFactory.create(clinic=t.clinic)
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    plan = services.plan_create(
        caller=t.caller(),
        patient=patient,
        protocol=protocol,
        data=services.PlanIn(planned_sessions=5, areas=["forehead"]),
    )
    with pytest.raises(FindingsRefused) as caught:
        services.plan_activate(caller=t.caller(), plan=plan)
    assert codes(caught.value) == {"screening-not-reviewed"}
    submit(patient, t.practitioner)  # an intake, but nobody reviewed it
    with pytest.raises(FindingsRefused):
        services.plan_activate(caller=t.caller(), plan=plan)
    candidate(patient, t.practitioner)
    assert services.plan_activate(caller=t.caller(), plan=plan).status == TreatmentPlan.Status.ACTIVE


def test_a_newer_intake_makes_the_review_stale_and_blocks_activation(t: Treat) -> None:
    patient = PatientFactory.create(clinic=t.clinic)
    candidate(patient, t.practitioner)
    submit(patient, t.practitioner, goals="Changed my mind about the goals.")
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    plan = services.plan_create(
        caller=t.caller(),
        patient=patient,
        protocol=protocol,
        data=services.PlanIn(planned_sessions=5, areas=["forehead"]),
    )
    with pytest.raises(FindingsRefused) as caught:
        services.plan_activate(caller=t.caller(), plan=plan)
    assert codes(caught.value) == {"screening-stale"}


def test_a_not_a_candidate_decision_blocks_activation(t: Treat) -> None:
    from mesoclinic.screening.services import review_sign

    patient = PatientFactory.create(clinic=t.clinic)
    version = submit(patient, t.practitioner).version
    review_sign(
        caller=t.caller(),
        patient=patient,
        decision="not_candidate",
        intake_version=version,
        acknowledgements={},
    )
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    plan = services.plan_create(
        caller=t.caller(),
        patient=patient,
        protocol=protocol,
        data=services.PlanIn(planned_sessions=5, areas=["forehead"]),
    )
    with pytest.raises(FindingsRefused) as caught:
        services.plan_activate(caller=t.caller(), plan=plan)
    assert "not-a-candidate" in codes(caught.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"planned_sessions": 2, "areas": ["forehead"]}, "planned_sessions"),  # the protocol plans 4 to 8
        ({"planned_sessions": 9, "areas": ["forehead"]}, "planned_sessions"),
        ({"planned_sessions": 5, "areas": ["abdomen"]}, "areas"),  # not a facial area
        ({"planned_sessions": 5, "areas": []}, "areas"),
        ({"planned_sessions": 5, "areas": ["forehead"], "procedures": [("time-travel", "")]}, "procedures"),
        ({"planned_sessions": 5, "areas": ["forehead"], "formula_ids": [999999]}, "formula_ids"),
    ],
)
def test_bad_plans_are_refused_and_nothing_is_written(t: Treat, data: dict[str, object], field: str) -> None:
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    before = TreatmentPlan.objects.count()
    with pytest.raises(ValidationError) as caught:
        services.plan_create(
            caller=t.caller(),
            patient=t.patient,
            protocol=protocol,
            data=services.PlanIn(**data),  # type: ignore[arg-type]
        )
    assert field in caught.value.message_dict
    assert TreatmentPlan.objects.count() == before


def test_combined_procedures_are_recorded_as_not_mesotherapy(t: Treat) -> None:
    protocol = Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation")
    plan = services.plan_create(
        caller=t.caller(),
        patient=t.patient,
        protocol=protocol,
        data=services.PlanIn(
            planned_sessions=5, areas=["forehead"], procedures=[("botulinum-toxin", "glabella, 20 U")]
        ),
    )
    overview = services.plan_overview(caller=t.caller(), plan=plan)
    assert [(p.procedure, p.note) for p in overview.procedures] == [("botulinum-toxin", "glabella, 20 U")]
    assert overview.procedures[0].label == "Botulinum toxin (Botox)"


def test_a_plan_ends_completed_or_stopped_with_a_reason(t: Treat) -> None:
    with pytest.raises(ValidationError) as caught:
        services.plan_end(caller=t.caller(), plan=t.plan, status="stopped", reason=" ")
    assert "reason" in caught.value.message_dict
    stopped = services.plan_end(caller=t.caller(), plan=t.plan, status="stopped", reason="Moved abroad.")
    assert (stopped.status, stopped.stop_reason) == ("stopped", "Moved abroad.")
    with pytest.raises(ValidationError):
        services.plan_end(caller=t.caller(), plan=t.plan, status="completed")


# --- the check-in gate -------------------------------------------------------------------------------------


def test_the_first_session_passes_the_gate_with_consent_and_no_open_bruising(t: Treat) -> None:
    t.prepare()
    findings = services.gate_evaluate(caller=t.caller(), plan=t.plan)
    by_code = {f.code: f for f in findings}
    # The hooks of the consent and safety apps answer their rules (R-PRE-CONSENT, R-PRE-BRUISE).
    assert by_code["consent-valid"].severity == "info"
    assert by_code["bruising-unresolved"].severity == "info"
    assert "Checked" in by_code["bruising-unresolved"].message
    assert "no-consent" not in by_code
    assert not [f for f in findings if f.severity in ("block", "warn")]
    session = t.check_in()
    assert session.number == 1 and session.status == TreatmentSession.Status.OPEN
    assert {f["code"] for f in session.gate_findings} >= {"consent-valid", "bruising-unresolved"}


def test_a_plan_without_consent_is_blocked_at_check_in() -> None:
    t = treat(consented=False)
    t.prepare()
    with pytest.raises(FindingsRefused) as caught:
        t.check_in()
    assert "no-consent" in codes(caught.value)
    assert not TreatmentSession.objects.filter(plan=t.plan).exists()


def test_a_session_sooner_than_the_protocol_allows_is_blocked(t: Treat) -> None:
    preparation = t.prepare()
    first = t.check_in()
    t.chart(first, t.chart_area(preparation))
    sign(t, first)
    t.prepare()
    with pytest.raises(FindingsRefused) as caught:
        t.check_in(now=days_later(first, 6))  # the protocol asks for 7 days
    assert "interval-too-short" in codes(caught.value)
    assert TreatmentSession.objects.filter(plan=t.plan).count() == 1
    second = t.check_in(now=days_later(first, 7))
    assert second.number == 2


def test_nsaid_within_seven_days_warns_and_needs_a_reason(t: Treat) -> None:
    today = t.clinic.today()
    submit(t.patient, t.practitioner, medications=(("Advil", today - timedelta(days=3)),))
    t.prepare()
    with pytest.raises(FindingsRefused) as caught:
        t.check_in()
    assert "nsaid-washout" in codes(caught.value)
    key = next(f.key for f in caught.value.findings if f.code == "nsaid-washout")
    session = t.check_in(acknowledgements={key: "Single dose for a headache; small bruises accepted."})
    assert session.gate_acknowledgements[0]["code"] == "nsaid-washout"


def test_an_expired_licence_blocks_the_session(t: Treat) -> None:
    PractitionerLicence.objects.filter(user=t.practitioner).update(expires_on=date(2020, 1, 1))
    t.prepare()
    with pytest.raises(FindingsRefused) as caught:
        t.check_in()
    assert "licence-invalid" in codes(caught.value)


def test_a_lot_recalled_after_preparation_blocks_the_session(t: Treat) -> None:
    t.prepare()
    formulary.lot_recall(
        caller=t.caller(t.director), lot=t.formulary.ha_lot, reason="Supplier recall 2026-11"
    )
    with pytest.raises(FindingsRefused) as caught:
        t.check_in()
    assert "lot-recalled" in codes(caught.value)


def test_a_new_pregnancy_blocks_the_session(t: Treat) -> None:
    submit(t.patient, t.practitioner, pregnancy="pregnant")
    with pytest.raises(FindingsRefused) as caught:
        t.check_in()
    assert "pregnant" in codes(caught.value)


def test_gate_hooks_answer_consent_when_registered(t: Treat) -> None:
    from mesoclinic.lib.findings import Finding

    def no_consent(plan: TreatmentPlan, on: date) -> list[Finding]:
        return [Finding("no-consent", "block", "R-PRE-CONSENT", "No signed consent.", "domain.md")]

    services.register_gate_hook("no-consent", no_consent)
    try:
        with pytest.raises(FindingsRefused) as caught:
            t.check_in()
        assert "no-consent" in codes(caught.value)
    finally:
        services.GATE_HOOKS.pop("no-consent")


def test_the_gate_is_audited_as_a_read(t: Treat) -> None:
    with pytest.raises(ValidationError) as caught:  # the desk is no practitioner: it names who will inject
        services.gate_evaluate(caller=t.caller(t.desk), plan=t.plan)
    assert "practitioner_id" in caught.value.message_dict
    services.gate_evaluate(caller=t.caller(t.desk), plan=t.plan, practitioner_id=t.practitioner.pk)
    event = AuditEvent.objects.filter(action="gate.read").latest("seq")
    assert (event.patient_id, event.username) == (t.patient.pk, t.desk.username)


# --- charting -----------------------------------------------------------------------------------------------


def test_a_chart_stores_points_per_area_and_uses_up_the_preparation(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    cheek = t.area("cheek-left")
    t.chart(
        session,
        t.chart_area(
            preparation,
            "forehead",
            points=[
                centre(t.area("forehead")),
                [centre(t.area("forehead"))[0] + 3, centre(t.area("forehead"))[1]],
            ],
        ),
        t.chart_area(preparation, "cheek-left", points=[centre(cheek)], injections=30),
        topical_anaesthetic="lidocaine-prilocaine",
        anaesthetic_minutes=30,
        notes="Well tolerated.",
    )
    rows = list(ChartedArea.objects.filter(session=session).order_by("position"))
    assert [row.area.code for row in rows] == ["forehead", "cheek-left"]
    assert len(rows[0].points) == 2 and rows[0].injections == 40
    assert rows[0].total_volume_ml == Decimal("0.800")  # 40 × 0.02 mL
    assert SessionPreparation.objects.get(preparation=preparation).session_id == session.pk
    session.refresh_from_db()
    assert (session.topical_anaesthetic, session.anaesthetic_minutes) == ("lidocaine-prilocaine", 30)


def test_a_point_outside_the_area_is_refused_and_nothing_is_written(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    with pytest.raises(ValidationError) as caught:
        t.chart(session, t.chart_area(preparation, "forehead", points=[centre(t.area("chin"))]))
    assert "areas.0.points" in caught.value.message_dict
    assert not ChartedArea.objects.filter(session=session).exists()
    assert not SessionPreparation.objects.exists()


@pytest.mark.parametrize("depth", [Decimal("0"), Decimal("-1"), Decimal("13.1"), Decimal("40")])
def test_an_impossible_depth_is_refused(t: Treat, depth: Decimal) -> None:
    preparation = t.prepare()
    session = t.check_in()
    with pytest.raises(ValidationError) as caught:
        t.chart(session, t.chart_area(preparation, depth_mm=depth))
    assert "areas.0.depth_mm" in caught.value.message_dict
    assert not ChartedArea.objects.exists()


def test_a_depth_outside_the_technique_warns_and_needs_a_reason(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    with pytest.raises(FindingsRefused) as caught:
        t.chart(session, t.chart_area(preparation, depth_mm=Decimal("3")))  # nappage is 1–2 mm
    warning = [f for f in caught.value.findings if f.code == "depth-out-of-range"]
    assert {f.severity for f in warning} == {"warn"} and len(
        warning
    ) == 2  # the technique's and the protocol's
    t.chart(
        session,
        t.chart_area(preparation, depth_mm=Decimal("3")),
        acknowledgements={f.key: "Thick skin at the hairline." for f in warning},
    )
    assert {a["code"] for a in TreatmentSession.objects.get(pk=session.pk).chart_acknowledgements} == {
        "depth-out-of-range"
    }


def test_a_negative_volume_and_a_preparation_of_another_patient_are_refused(t: Treat) -> None:
    preparation = t.prepare()
    other = PatientFactory.create(clinic=t.clinic)
    candidate(other, t.practitioner)
    foreign = t.formulary.prepare(other)
    session = t.check_in()
    with pytest.raises(ValidationError) as caught:
        t.chart(session, t.chart_area(preparation, volume_per_point_ml=Decimal("-0.1")))
    assert "areas.0.volume_per_point_ml" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        t.chart(session, t.chart_area(foreign))
    assert "areas.0.preparation_id" in caught.value.message_dict


def test_more_than_was_prepared_is_blocked(t: Treat) -> None:
    preparation = t.prepare()  # 3.5 mL
    session = t.check_in()
    with pytest.raises(FindingsRefused) as caught:
        t.chart(session, t.chart_area(preparation, injections=200, volume_per_point_ml=Decimal("0.02")))
    assert "preparation-overdrawn" in codes(caught.value)


def test_a_preparation_is_used_by_one_session_only(t: Treat) -> None:
    preparation = t.prepare()
    first = t.check_in()
    t.chart(first, t.chart_area(preparation))
    sign(t, first)
    second = t.check_in(now=days_later(first, 8))
    with pytest.raises(ValidationError) as caught:
        t.chart(second, t.chart_area(preparation))
    assert "another session" in str(caught.value)


def test_a_chart_can_prepare_inline_and_stock_moves_in_the_same_transaction(t: Treat) -> None:
    session = t.check_in()
    lot_stock = formulary.lot_stock(t.formulary.ha_lot)
    new = services.NewPreparationIn(formula_version_id=t.formulary.version.pk, lines=t.formulary.lines())
    services.session_chart(
        caller=t.caller(),
        session=session,
        chart=services.ChartIn(
            areas=[
                services.ChartAreaIn(
                    "forehead",
                    "nappage",
                    Decimal("1.5"),
                    [centre(t.area("forehead"))],
                    injections=40,
                    volume_per_point_ml=Decimal("0.02"),
                    new_preparation=0,
                )
            ],
            new_preparations=[new],
        ),
    )
    made = Preparation.objects.get(session_use__session=session)
    assert formulary.lot_stock(Lot.objects.get(pk=t.formulary.ha_lot.pk)) == lot_stock - Decimal("2")
    assert made.lines.count() == 3


def test_a_refused_chart_moves_no_stock_even_with_an_inline_preparation(t: Treat) -> None:
    session = t.check_in()
    movements = StockMovement.objects.count()
    preparations = Preparation.objects.count()
    new = services.NewPreparationIn(formula_version_id=t.formulary.version.pk, lines=t.formulary.lines())
    chin = centre(t.area("chin"))
    with pytest.raises(ValidationError):
        services.session_chart(
            caller=t.caller(),
            session=session,
            chart=services.ChartIn(
                areas=[
                    services.ChartAreaIn(
                        "forehead",
                        "nappage",
                        Decimal("1.5"),
                        [chin],
                        new_preparation=0,
                        volume_per_point_ml=Decimal("0.02"),
                    )
                ],
                new_preparations=[new],
            ),
        )
    assert StockMovement.objects.count() == movements and Preparation.objects.count() == preparations


def test_charting_without_a_current_licence_is_blocked(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    unlicensed = staff(t.clinic, Role.PRACTITIONER)
    with pytest.raises(FindingsRefused) as caught:
        services.session_chart(
            caller=Caller(user=unlicensed),
            session=session,
            chart=services.ChartIn(areas=[t.chart_area(preparation)]),
        )
    assert "licence-invalid" in codes(caught.value)


def test_numbing_cream_with_a_local_anaesthetic_allergy_warns(t: Treat) -> None:
    submit(t.patient, t.practitioner, allergies=("lidocaine",))
    candidate_review = t.patient  # the plan is active already; the gate reads the latest intake
    preparation = t.prepare()
    session = t.check_in()
    assert "numbing-allergy" in {f["code"] for f in session.gate_findings}
    with pytest.raises(FindingsRefused) as caught:
        t.chart(session, t.chart_area(preparation), topical_anaesthetic="lidocaine")
    assert "numbing-allergy" in codes(caught.value)
    assert candidate_review.pk


# --- product limits (R-TECH: deoxycholic acid 10 mg/mL) -----------------------------------------------------


def _kybella(t: Treat) -> TreatmentPlan:
    """A plan on the submental template with a deoxycholic acid 10 mg/mL formula and a lot of it."""
    from tests.formulary_setup import ingredient, product

    caller = t.caller(t.director)
    formula = formulary.formula_create(
        caller=caller,
        clinic=t.clinic,
        name="Deoxycholic acid 10 mg/mL",
        content=formulary.FormulaContent(
            components=[formulary.ComponentIn(ingredient("deoxycholic-acid").pk, "10", "mg/mL")],
            total_volume_ml="12",
            indications=["submental-fat"],
        ),
    )
    vial = product(caller, t.clinic, "DCA 2 mL", "deoxycholic-acid", "2", multi=False)
    lot = formulary.lot_receive(
        caller=caller,
        product=vial,
        number="DCA-1",
        expires_on=t.clinic.today() + timedelta(days=300),
        received_on=t.clinic.today(),
        received_vials=40,
    )
    t.formulary.__dict__["dca_formula"] = formula
    t.formulary.__dict__["dca_lot"] = lot
    plan = services.plan_create(
        caller=t.caller(),
        patient=t.patient,
        protocol=Protocol.objects.get(clinic__isnull=True, code="submental-deoxycholic-acid"),
        data=services.PlanIn(planned_sessions=6, areas=["submental"], formula_ids=[formula.pk]),
    )
    return services.plan_activate(caller=t.caller(), plan=plan)


def _dca_preparation(t: Treat, volume: str = "12", now: datetime | None = None) -> Preparation:
    formula = t.formulary.__dict__["dca_formula"]
    return formulary.preparation_create(
        caller=t.caller(t.director),
        patient=t.patient,
        formula_version=formulary.current_version(formula),
        lines=[formulary.LineIn(t.formulary.__dict__["dca_lot"].pk, Decimal(volume))],
        now=now,
    )


def test_deoxycholic_acid_over_its_label_is_blocked(db: None) -> None:
    # A US clinic: deoxycholic acid 10 mg/mL is approved there for submental fat (France bans fat lysis,
    # R-REG).
    us = ClinicFactory.create(
        country="US", jurisdiction="US-NY", time_zone="America/New_York", currency="USD"
    )
    t = treat(clinic=us)
    services.plan_end(caller=t.caller(), plan=t.plan, status="stopped", reason="Switch to submental.")
    plan = _kybella(t)
    give_consent(plan, t.practitioner)
    preparation = _dca_preparation(t)
    session = services.session_check_in(caller=t.caller(), plan=plan)
    submental = centre(t.area("submental"))

    def area(**overrides: object) -> services.ChartAreaIn:
        values: dict[str, object] = {
            "area": "submental",
            "technique": "point-by-point-deep",
            "depth_mm": Decimal("6"),
            "points": [submental],
            "injections": 40,
            "volume_per_point_ml": Decimal("0.2"),
            "preparation_id": preparation.pk,
        }
        values.update(overrides)
        return services.ChartAreaIn(**values)  # type: ignore[arg-type]

    for overrides, subject in (
        ({"volume_per_point_ml": Decimal("0.3"), "injections": 30}, "per-injection"),
        ({"injections": 55, "volume_per_point_ml": Decimal("0.18")}, "injections"),
    ):
        with pytest.raises(FindingsRefused) as caught:
            services.session_chart(
                caller=t.caller(), session=session, chart=services.ChartIn(areas=[area(**overrides)])
            )
        blocks = [f for f in caught.value.findings if f.code == "product-limit"]
        assert blocks and all(f.severity == "block" for f in blocks)
        assert any(f.subject.endswith(subject) for f in blocks)
    services.session_chart(caller=t.caller(), session=session, chart=services.ChartIn(areas=[area()]))
    sign(t, session)
    # The label's "at least 1 month apart" is the protocol's interval and the product's limit.
    _dca_preparation(t, now=days_later(session, 19))
    with pytest.raises(FindingsRefused) as caught:
        services.session_check_in(caller=t.caller(), plan=plan, now=days_later(session, 20))
    assert {"interval-too-short", "product-limit"} <= codes(caught.value)


# --- sign-off, amendments, co-signature, aftercare ----------------------------------------------------------


def test_a_signed_session_is_immutable_except_by_amendment(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation), notes="First note.")
    signed = sign(t, session)
    assert signed.status == TreatmentSession.Status.SIGNED
    with pytest.raises(ValidationError) as caught:
        t.chart(session, t.chart_area(preparation, depth_mm=Decimal("1.2")))
    assert "amendment" in str(caught.value)
    with pytest.raises(ValidationError):
        services.session_amend(
            caller=t.caller(),
            session=session,
            chart=services.ChartIn(areas=[t.chart_area(preparation)]),
            reason=" ",
        )
    amendment = services.session_amend(
        caller=t.caller(),
        session=session,
        chart=services.ChartIn(
            areas=[t.chart_area(preparation, depth_mm=Decimal("1.2"))], notes="First note."
        ),
        reason="Depth typed wrong.",
    )
    assert amendment.changes == [{"field": "areas.0.depth_mm", "before": "1.5", "after": "1.2"}]
    assert amendment.before["areas"][0]["depth_mm"] == "1.5"
    assert ChartedArea.objects.get(session=session).depth_mm == Decimal("1.2")
    assert SessionAmendment.objects.filter(session=session).count() == 1
    with pytest.raises(Exception, match="never changed"):
        amendment.save()


def test_sign_off_issues_aftercare_in_the_patients_language(t: Treat) -> None:
    t.patient.preferred_language = "fr"
    t.patient.save()
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    sign(t, session)
    aftercare = Aftercare.objects.get(session=session)
    assert aftercare.language == "fr"
    assert [item["code"] for item in aftercare.instructions] == t.plan.protocol_version.aftercare
    assert all(item["text"] for item in aftercare.instructions)


def test_a_session_is_signed_once_and_only_when_charted(t: Treat) -> None:
    session = t.check_in()
    with pytest.raises(ValidationError):
        sign(t, session)
    t.chart(session, t.chart_area(t.prepare()))
    sign(t, session)
    with pytest.raises(ValidationError):
        sign(t, session)


def test_new_practitioners_sessions_all_go_to_the_cosign_queue(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    signed = sign(t, session)
    assert signed.cosign_required  # fewer than 20 signed sessions in the clinic
    queue = services.cosign_queue(caller=t.caller(t.director), clinic=t.clinic)
    assert [s.pk for s in queue] == [session.pk]
    with pytest.raises(PermissionDenied):
        services.cosign_queue(caller=t.caller(), clinic=t.clinic)
    services.session_cosign(caller=t.caller(t.director), session=session, note="Reviewed.")
    assert services.cosign_queue(caller=t.caller(t.director), clinic=t.clinic) == []


def test_an_experienced_practitioner_is_sampled_at_the_clinic_share(t: Treat) -> None:
    from mesoclinic.treatments import rules

    t.clinic.cosign_new_practitioner_sessions = 0
    t.clinic.cosign_share_percent = 10
    t.clinic.save()
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    signed = sign(t, session)
    assert signed.cosign_required == (rules.cosign_sample(t.clinic.pk, session.pk) < 0.10)


def test_the_signer_cannot_cosign_their_own_session(t: Treat) -> None:
    preparation = t.prepare()
    session = services.session_check_in(
        caller=t.caller(t.director), plan=t.plan, practitioner_id=t.director.pk
    )
    services.session_chart(
        caller=t.caller(t.director),
        session=session,
        chart=services.ChartIn(areas=[t.chart_area(preparation)]),
    )
    services.session_sign(caller=t.caller(t.director), session=session)
    with pytest.raises(ValidationError):
        services.session_cosign(caller=t.caller(t.director), session=session)


# --- the plan view -----------------------------------------------------------------------------------------


def test_the_plan_overview_counts_sessions_and_proposes_the_next_window(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    sign(t, session)
    overview = services.plan_overview(caller=t.caller(), plan=t.plan)
    assert (overview.signed, overview.current_number) == (1, 1)
    assert overview.next_window == (
        session.session_date + timedelta(days=7),
        session.session_date + timedelta(days=14),
    )
    services.plan_record_improvement(caller=t.caller(), plan=t.plan, on=t.clinic.today())
    improved = services.plan_overview(caller=t.caller(), plan=TreatmentPlan.objects.get(pk=t.plan.pk))
    assert improved.next_window == (
        session.session_date + timedelta(days=14),
        session.session_date + timedelta(days=30),
    )


def test_another_clinics_plan_is_not_found(t: Treat) -> None:
    other = ClinicFactory.create()
    outsider = staff(other, Role.PRACTITIONER)
    LicenceFactory.create(user=outsider, jurisdiction=other.jurisdiction)
    from django.http import Http404

    with pytest.raises(Http404):
        services.plan_get(caller=Caller(user=outsider), plan_id=t.plan.pk)


def test_stock_only_moves_with_preparations(t: Treat) -> None:
    before = StockMovement.objects.aggregate(total=Sum("quantity_ml"))["total"]
    preparation = t.prepare()
    after_preparation = StockMovement.objects.aggregate(total=Sum("quantity_ml"))["total"]
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    assert StockMovement.objects.aggregate(total=Sum("quantity_ml"))["total"] == after_preparation != before
    assert timezone.now()

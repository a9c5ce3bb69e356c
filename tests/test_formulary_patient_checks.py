"""The one implementation of the formula-vs-patient checks (formulary.rules: R-CAND-ALLERGY,
R-CAND-XALLERGY, R-CAND-ANDRO), table-driven and with hypothesis, and what ``preparation_create`` does with
them: refused without an intake, refused on a blocking finding of the latest intake, refused for a line whose
product is not part of the formula, and a formula version that cannot change while it becomes used."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.formulary import services
from mesoclinic.formulary.models import (
    Formula,
    FormulaComponent,
    FormulaVersion,
    Preparation,
    PreparationLine,
    ProductComponent,
    StockMovement,
)
from mesoclinic.formulary.rules import (
    ALLERGY_GROUP_WORDS,
    CautionFacts,
    IngredientFacts,
    PatientFacts,
    PlannedFormulaFacts,
    StatusFacts,
    allergy_matches,
    formula_findings,
    patient_findings,
    regulatory_findings,
)
from mesoclinic.lib.findings import Finding
from mesoclinic.patients.models import Patient
from tests.conftest import World
from tests.factories import PatientFactory
from tests.formulary_setup import Setup, build, ingredient, product
from tests.screening_support import ensure_catalogues, submit

# --- allergies as people write them ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allergies", "term", "matched"),
    [
        (("Soy",), "soy", ["Soy"]),
        (("soya milk",), "soy", ["soya milk"]),
        (("soybean oil",), "soy", ["soybean oil"]),
        (("Soja",), "soy", ["Soja"]),
        (("Soyuz rocket",), "soy", []),  # whole words only
        (("bee stings", "latex"), "bee-wasp-venom", ["bee stings"]),
        (("piqûres de guêpe",), "bee-wasp-venom", ["piqûres de guêpe"]),
        (("LIDOCAINE",), "lidocaine", ["LIDOCAINE"]),
        (("Xylocaine at the dentist",), "amide-local-anaesthetics", ["Xylocaine at the dentist"]),
        (("amide-local-anaesthetics",), "amide-local-anaesthetics", ["amide-local-anaesthetics"]),  # a code
        (("lidocaine-free cream ok",), "procaine", []),
        (("penicillin",), "amide-local-anaesthetics", []),
        (("hyaluronic acid",), "hyaluronic-acid", ["hyaluronic acid"]),  # a code, hyphens read as spaces
        (("caféine",), "xanthines", ["caféine"]),
        (("saumon",), "fish", ["saumon"]),
    ],
)
def test_allergy_matches(allergies: tuple[str, ...], term: str, matched: list[str]) -> None:
    assert allergy_matches(allergies, term) == matched


def test_every_seeded_allergy_group_has_words() -> None:
    seeded = {
        "soy",
        "amide-local-anaesthetics",
        "ester-local-anaesthetics",
        "paba",
        "bee-wasp-venom",
        "aminoglycosides",
        "fish",
        "benzyl-alcohol",
        "thyroid-hormones",
        "xanthines",
    }
    assert seeded <= set(ALLERGY_GROUP_WORDS)


# --- the checks, table-driven ------------------------------------------------------------------------------

PC = IngredientFacts(
    code="phosphatidylcholine",
    name="Phosphatidylcholine",
    cautions=(CautionFacts("soy", "soy-derived (inference)", "literature: inference"),),
)
HYALURONIDASE = IngredientFacts(
    code="hyaluronidase",
    name="Hyaluronidase",
    cautions=(
        CautionFacts("bee-wasp-venom", "skin test first", "literature: hyaluronidase label"),
        CautionFacts("soy", "made in soy medium (test)", "test"),
    ),
)
LIDOCAINE = IngredientFacts(
    code="lidocaine", name="Lidocaine", allergy_groups=frozenset({"amide-local-anaesthetics"})
)
FINASTERIDE = IngredientFacts(code="finasteride", name="Finasteride", teratogen=True)
MIX = PlannedFormulaFacts(name="Mix", ingredients=(PC, HYALURONIDASE, LIDOCAINE, FINASTERIDE))


def found(patient: PatientFacts) -> list[tuple[str, str, str]]:
    return [(f.code, f.severity, f.subject) for f in patient_findings(MIX, patient)]


@pytest.mark.parametrize(
    ("name", "patient", "expected"),
    [
        ("a man with no allergy", PatientFacts(sex="male"), []),
        (
            "a woman: the teratogen warns (she confirms she cannot become pregnant)",
            PatientFacts(sex="female"),
            [("teratogen", "warn", "finasteride")],
        ),
        ("sex not known: warns too", PatientFacts(), [("teratogen", "warn", "finasteride")]),
        (
            "breastfeeding: warns",
            PatientFacts(pregnancy="breastfeeding", sex="female"),
            [("teratogen", "warn", "finasteride")],
        ),
        (
            "pregnant: blocks",
            PatientFacts(pregnancy="pregnant", sex="female"),
            [("teratogen", "block", "finasteride")],
        ),
        (
            "planning: blocks",
            PatientFacts(pregnancy="planning", sex="female"),
            [("teratogen", "block", "finasteride")],
        ),
        (
            "free-text allergy to a group member blocks the ingredient",
            PatientFacts(allergies=("reaction to Xylocaine at the dentist",), sex="male"),
            [("allergy", "block", "lidocaine")],
        ),
        (
            "an allergy to the ingredient's name",
            PatientFacts(allergies=("Lidocaine",), sex="male"),
            [("allergy", "block", "lidocaine")],
        ),
        (
            "soy: a caution for each soy-related ingredient",
            PatientFacts(allergies=("soya lecithin",), sex="male"),
            [
                ("allergy-caution", "warn", "phosphatidylcholine"),
                ("allergy-caution", "warn", "hyaluronidase"),
            ],
        ),
        (
            "two cautions of one ingredient make one finding",
            PatientFacts(allergies=("soy", "wasp stings"), sex="male"),
            [
                ("allergy-caution", "warn", "phosphatidylcholine"),
                ("allergy-caution", "warn", "hyaluronidase"),
            ],
        ),
        (
            "an allergy to the ingredient itself says it all: no caution on top",
            PatientFacts(allergies=("hyaluronidase", "soy"), sex="male"),
            [("allergy-caution", "warn", "phosphatidylcholine"), ("allergy", "block", "hyaluronidase")],
        ),
    ],
)
def test_patient_findings(name: str, patient: PatientFacts, expected: list[tuple[str, str, str]]) -> None:
    assert found(patient) == expected, name


def test_two_cautions_of_one_ingredient_are_said_in_one_message() -> None:
    [finding] = [
        f
        for f in patient_findings(MIX, PatientFacts(allergies=("soy", "wasp stings"), sex="male"))
        if f.subject == "hyaluronidase"
    ]
    assert "skin test first" in finding.message and "soy medium" in finding.message
    assert finding.key == "allergy-caution:hyaluronidase"


def test_the_regulatory_part_is_the_formularys_own_with_ingredient_subjects() -> None:
    """formula_findings gives regulatory_findings the ingredient code as subject, and changes nothing else."""
    statuses = (StatusFacts("US", "approved-other-indication", "other use", "s"),)
    planned = PlannedFormulaFacts(
        name="Two",
        ingredients=(replace(LIDOCAINE, statuses=statuses), replace(FINASTERIDE, statuses=statuses)),
        procedure_statuses=(StatusFacts("US", "not-approved", "procedure", "s"),),
    )
    combined = formula_findings(planned, PatientFacts(sex="male"), "US")
    plain = regulatory_findings(planned, "US")
    assert [replace(f, subject="") for f in combined] == plain
    assert [f.key for f in combined] == [
        "procedure-not-approved",
        "off-label:lidocaine",
        "off-label:finasteride",
    ]


group_words = st.sampled_from(["soy", "soya", "bee", "wasp", "xylocaine", "lidocaine", "latex", "peanuts"])


@given(
    words=st.lists(group_words, max_size=4),
    pregnancy=st.sampled_from(["none", "pregnant", "breastfeeding", "planning"]),
    sex=st.sampled_from(["female", "male", "other", "unknown"]),
    noise=st.text(max_size=20),
)
@settings(max_examples=300)
def test_findings_follow_the_facts(words: list[str], pregnancy: str, sex: str, noise: str) -> None:
    allergies = tuple(f"{word} {noise}" for word in words)
    findings = patient_findings(MIX, PatientFacts(allergies=allergies, pregnancy=pregnancy, sex=sex))
    by_subject: dict[str, list[Finding]] = {}
    for finding in findings:
        by_subject.setdefault(finding.subject, []).append(finding)
    anaesthetic = {"xylocaine", "lidocaine"} & set(words)
    assert bool(by_subject.get("lidocaine")) == bool(anaesthetic)
    assert bool(by_subject.get("phosphatidylcholine")) == bool({"soy", "soya"} & set(words))
    teratogen = [f.severity for f in by_subject.get("finasteride", [])]
    if pregnancy in ("pregnant", "planning"):
        assert teratogen == ["block"]
    elif sex != "male":
        assert teratogen == ["warn"]
    else:
        assert teratogen == []
    assert len({f.key for f in findings}) == len(findings)  # one finding per ingredient and code


# --- preparation_create ----------------------------------------------------------------------------------


@pytest.fixture
def setup(world: World) -> Setup:
    ensure_catalogues()
    return build(world.clinic, world.users["medical_director"])


def _counts() -> tuple[int, int, int]:
    return Preparation.objects.count(), PreparationLine.objects.count(), StockMovement.objects.count()


def _prepare(setup: Setup, patient: Patient, lines: list[services.LineIn] | None = None) -> Preparation:
    return services.preparation_create(
        caller=setup.caller,
        patient=Patient.objects.select_related("clinic").get(pk=patient.pk),
        formula_version=FormulaVersion.objects.select_related("formula").get(pk=setup.version.pk),
        lines=lines if lines is not None else setup.lines(),
    )


def _refusal(
    setup: Setup, patient: Patient, lines: list[services.LineIn] | None = None
) -> dict[str, list[str]]:
    before = _counts()
    with pytest.raises(ValidationError) as caught:
        _prepare(setup, patient, lines)
    assert _counts() == before  # nothing written
    return {
        field: [error.code or "" for error in errors] for field, errors in caught.value.error_dict.items()
    }


def test_no_intake_no_preparation(world: World, setup: Setup) -> None:
    assert _refusal(setup, world.patient) == {"patient_id": ["no-intake"]}


def test_an_allergy_of_the_latest_intake_blocks(world: World, setup: Setup) -> None:
    desk = world.users["front_desk"]
    submit(world.patient, desk, allergies=("Vitamin C (ascorbic acid) — hives",))
    assert _refusal(setup, world.patient) == {"patient_id": ["allergy"]}
    submit(world.patient, desk, allergies=("latex",))  # the latest intake speaks
    preparation = _prepare(setup, world.patient)
    assert preparation.formula_version_id == setup.version.pk
    submit(world.patient, desk, allergies=("hyaluronic acid",))
    assert _refusal(setup, world.patient) == {"patient_id": ["allergy"]}


def _hair(setup: Setup) -> tuple[FormulaVersion, list[services.LineIn]]:
    formula = services.formula_create(
        caller=setup.caller,
        clinic=setup.clinic,
        name="Hair finasteride",
        content=services.FormulaContent(
            components=[services.ComponentIn(ingredient("finasteride").pk, "0.5", "mg/mL")],
            total_volume_ml="2",
            indications=["hair-loss"],
        ),
    )
    item = product(setup.caller, setup.clinic, "Finasteride 2 mL", "finasteride", "2", multi=False)
    lot = services.lot_receive(
        caller=setup.caller,
        product=item,
        number="FIN-1",
        expires_on=setup.today + timedelta(days=200),
        received_on=setup.today,
        received_vials=10,
    )
    return services.current_version(formula), [services.LineIn(lot.pk, Decimal("2"))]


@pytest.mark.parametrize(
    ("sex", "pregnancy", "refused"),
    [
        ("female", "pregnant", True),
        ("female", "planning", True),
        ("female", "none", False),  # a warning, acknowledged at the screening review
        ("male", "none", False),
    ],
)
def test_a_teratogen_is_refused_in_pregnancy(
    world: World, setup: Setup, sex: str, pregnancy: str, refused: bool
) -> None:
    Patient.objects.filter(pk=world.patient.pk).update(sex=sex)
    submit(world.patient, world.users["front_desk"], pregnancy=pregnancy)
    version, lines = _hair(setup)
    patient = Patient.objects.select_related("clinic").get(pk=world.patient.pk)
    before = _counts()

    def call() -> Preparation:
        return services.preparation_create(
            caller=setup.caller, patient=patient, formula_version=version, lines=lines
        )

    if refused:
        with pytest.raises(ValidationError) as caught:
            call()
        assert [e.code for e in caught.value.error_dict["patient_id"]] == ["teratogen"]
        assert _counts() == before
    else:
        assert call().formula_version_id == version.pk


def test_a_line_of_a_product_outside_the_formula_is_refused(world: World, setup: Setup) -> None:
    submit(world.patient, world.users["front_desk"])
    _version, foreign_lines = _hair(setup)
    errors = _refusal(setup, world.patient, [*setup.lines(), *foreign_lines])
    assert set(errors) == {"lines.3.lot_id"}


def test_every_reason_is_given_at_once(world: World, setup: Setup) -> None:
    """No intake and a product outside the formula: both said, nothing written."""
    _version, foreign_lines = _hair(setup)
    errors = _refusal(setup, world.patient, [*setup.lines(), *foreign_lines])
    assert set(errors) == {"patient_id", "lines.3.lot_id"}


def test_the_preparation_records_the_intake_it_was_checked_against(world: World, setup: Setup) -> None:
    from mesoclinic.audit.models import Action, AuditEvent

    intake = submit(world.patient, world.users["front_desk"])
    _prepare(setup, world.patient)
    event = AuditEvent.objects.filter(action=Action.PREPARATION_CREATE).get()
    assert event.detail["intake_version"] == intake.version


# --- a version cannot change while it becomes used ---------------------------------------------------------

PREPARERS = 4
ROUNDS = 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_concurrent_revision_never_changes_a_used_version(world: World) -> None:
    ensure_catalogues()
    setup = build(world.clinic, world.users["medical_director"], vials=100)
    patients = [PatientFactory.create(clinic=world.clinic, family_name=f"Race{n}") for n in range(PREPARERS)]
    for patient in patients:
        submit(Patient.objects.select_related("clinic").get(pk=patient.pk), world.users["front_desk"])
    version_pk, formula_pk, director_pk = setup.version.pk, setup.formula.pk, setup.director.pk
    lines = setup.lines(vitc_ml="0.1")
    errors: list[BaseException] = []
    start = threading.Barrier(PREPARERS + 1)

    def preparer(patient_pk: int) -> None:
        try:
            start.wait()
            for _ in range(ROUNDS):
                caller = Caller(user=User.objects.get(pk=director_pk))
                patient = Patient.objects.select_related("clinic").get(pk=patient_pk)
                version = FormulaVersion.objects.select_related("formula").get(pk=version_pk)
                # Refused when the version was rewritten before this preparation locked it: fine.
                with contextlib.suppress(ValidationError):
                    services.preparation_create(
                        caller=caller, patient=patient, formula_version=version, lines=lines
                    )
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    def reviser() -> None:
        try:
            start.wait()
            for strength in ("1", "2", "3"):
                caller = Caller(user=User.objects.get(pk=director_pk))
                formula = Formula.objects.select_related("clinic").get(pk=formula_pk)
                # Refused when a preparation took the version between the check and the write: fine.
                with contextlib.suppress(ValidationError):
                    services.formula_revise(
                        caller=caller,
                        formula=formula,
                        content=services.FormulaContent(
                            components=[
                                services.ComponentIn(ingredient("hyaluronic-acid").pk, "3", "mg/mL"),
                                services.ComponentIn(ingredient("lidocaine").pk, strength, "mg/mL"),
                            ],
                            total_volume_ml="3.5",
                            indications=["rejuvenation"],
                            diluent_id=ingredient("sodium-chloride").pk,
                        ),
                    )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=preparer, args=(patient.pk,)) for patient in patients]
    threads.append(threading.Thread(target=reviser))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    # Every preparation drew a lot for every ingredient of the version it used, as that version is now.
    for preparation in Preparation.objects.select_related("formula_version"):
        version = preparation.formula_version
        needed = set(FormulaComponent.objects.filter(version=version).values_list("ingredient_id", flat=True))
        if version.diluent_id is not None:
            needed.add(version.diluent_id)
        drawn = set(
            ProductComponent.objects.filter(
                product_id__in=PreparationLine.objects.filter(preparation=preparation).values(
                    "lot__product_id"
                )
            ).values_list("ingredient_id", flat=True)
        )
        assert needed <= drawn, (preparation.pk, version.number)

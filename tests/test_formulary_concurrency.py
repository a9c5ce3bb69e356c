"""Stock arithmetic under parallel writers (targets.md #16), on whichever database the suite runs on (SQLite
by default, PostgreSQL with DATABASE_URL): preparations drawing from one opened multi-dose vial never take
more than it holds, and none fails with "database is locked"."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from django.db.models import Sum

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.formulary import services
from mesoclinic.formulary.models import (
    Formula,
    FormulaComponent,
    FormulaVersion,
    Lot,
    Preparation,
    Product,
    StockMovement,
    VialOpening,
)
from mesoclinic.patients.models import Patient
from tests.conftest import World
from tests.formulary_setup import build, ensure_intake, ingredient
from tests.parallel import run_in_parallel

WRITERS = 8
ROUNDS = 3  # 24 attempts of 1 mL on a 10 mL vial: exactly 10 can succeed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_preparations_never_overdraw_a_vial(world: World) -> None:
    setup = build(world.clinic, world.users["medical_director"], vials=100)
    ensure_intake(world.patient, setup.director)
    vial_pk, version_pk, patient_pk = setup.vial.pk, setup.version.pk, world.patient.pk
    lots = (setup.ha_lot.pk, setup.vitc_lot.pk, setup.saline_lot.pk)
    successes: list[int] = []
    refusals: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer() -> None:
        try:
            start.wait()
            for _ in range(ROUNDS):
                caller = Caller(user=User.objects.get(pk=setup.director.pk))
                patient = Patient.objects.select_related("clinic").get(pk=patient_pk)
                version = FormulaVersion.objects.select_related("formula").get(pk=version_pk)
                try:
                    preparation = services.preparation_create(
                        caller=caller,
                        patient=patient,
                        formula_version=version,
                        lines=[
                            services.LineIn(lots[0], Decimal("0.1")),
                            services.LineIn(lots[1], Decimal("1"), vial_pk),
                            services.LineIn(lots[2], Decimal("0.1")),
                        ],
                    )
                except ValidationError as exc:
                    refusals.extend(e.code or "" for e in exc.error_dict.get("lines.1.lot_id", []))
                else:
                    successes.append(preparation.pk)
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(successes) == 10
    assert refusals == ["lot-insufficient"] * (WRITERS * ROUNDS - 10)
    vial = VialOpening.objects.select_related("lot__product").get(pk=vial_pk)
    assert services.vial_remaining(vial) == Decimal("0")
    assert Preparation.objects.count() == 10
    # The lot's stock is still exactly the sum of its movements: 2 vials received, 10 mL drawn.
    total = StockMovement.objects.filter(lot_id=lots[1]).aggregate(total=Sum("quantity_ml"))["total"]
    assert total == Decimal("10")
    assert services.lot_stock(Lot.objects.get(pk=lots[1])) == Decimal("10")
    assert Lot.objects.get(pk=lots[1]).stock_ml == Decimal("10")  # the stored balance moved with each
    assert services.stock_discrepancies() == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_waste_never_drives_a_lot_below_zero(world: World) -> None:
    setup = build(world.clinic, world.users["medical_director"], vials=5)  # HA: 5 × 2 mL = 10 mL
    lot_pk = setup.ha_lot.pk
    errors: list[BaseException] = []
    done: list[int] = []

    def writer() -> None:
        try:
            for _ in range(4):
                caller = Caller(user=User.objects.get(pk=setup.director.pk))
                lot = Lot.objects.select_related("clinic").get(pk=lot_pk)
                try:
                    services.stock_move(caller=caller, lot=lot, kind="wasted", quantity_ml="0.5", reason="t")
                except ValidationError:
                    pass
                else:
                    done.append(1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(done) == 20
    assert services.lot_stock(Lot.objects.get(pk=lot_pk)) == Decimal("0")
    assert Lot.objects.get(pk=lot_pk).stock_ml == Decimal("0")
    assert services.stock_discrepancies() == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_administrations_never_overdraw_a_vial(world: World) -> None:
    """Direct administrations (session charting's draw) under the same lot lock as preparations."""
    setup = build(world.clinic, world.users["medical_director"])
    vial_pk, lot_pk, patient_pk = setup.vial.pk, setup.vitc_lot.pk, world.patient.pk
    given: list[int] = []
    refused: list[str] = []

    def body(_index: int) -> None:
        for _ in range(ROUNDS):
            caller = Caller(user=User.objects.get(pk=setup.director.pk))
            patient = Patient.objects.select_related("clinic").get(pk=patient_pk)
            lot = Lot.objects.select_related("product", "clinic").get(pk=lot_pk)
            try:
                movement = services.lot_administer(
                    caller=caller, patient=patient, lot=lot, volume_ml=Decimal("1"), vial_id=vial_pk
                )
            except ValidationError as exc:
                refused.extend(e.code or "" for e in exc.error_dict.get("lot_id", []))
            else:
                given.append(movement.pk)

    assert run_in_parallel(WRITERS, body) == []
    assert len(given) == 10 and refused == ["lot-insufficient"] * (WRITERS * ROUNDS - 10)
    vial = VialOpening.objects.select_related("lot__product").get(pk=vial_pk)
    assert services.vial_remaining(vial) == Decimal("0")
    assert StockMovement.objects.filter(kind="administered", patient_id=patient_pk).count() == 10
    assert services.stock_discrepancies() == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_receipts_of_one_lot_number_make_one_lot(world: World) -> None:
    """Eight desks record the same delivery at once: one lot, seven clear refusals on ``number`` (a unique
    constraint race on PostgreSQL is caught and answered like the check), never an IntegrityError."""
    setup = build(world.clinic, world.users["medical_director"])
    product_pk = setup.ha.pk
    made: list[int] = []
    refused: list[str] = []

    def body(_index: int) -> None:
        caller = Caller(user=User.objects.get(pk=setup.director.pk))
        product = Product.objects.select_related("clinic").get(pk=product_pk)
        try:
            lot = services.lot_receive(
                caller=caller,
                product=product,
                number="SAME-1",
                expires_on=setup.today + timedelta(days=200),
                received_on=None,
                received_vials=3,
            )
        except ValidationError as exc:
            refused.extend(exc.message_dict)
        else:
            made.append(lot.pk)

    assert run_in_parallel(WRITERS, body) == []
    assert len(made) == 1 and refused == ["number"] * (WRITERS - 1)
    lot = Lot.objects.get(product_id=product_pk, number="SAME-1")
    assert StockMovement.objects.filter(lot=lot).count() == 1  # one "received" movement, not eight
    assert lot.stock_ml == Decimal("6") and services.stock_discrepancies() == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_revisions_and_preparations_in_parallel_never_change_a_used_version(world: World) -> None:
    """Writers revise the formula while others prepare from its current version: every call either succeeds
    or is refused with a ValidationError (never an ImmutableError or a database error), version numbers
    have no gap, and a version that a preparation uses still holds what it held when first used."""
    setup = build(world.clinic, world.users["medical_director"], vials=100)
    ensure_intake(world.patient, setup.director)
    formula_pk, patient_pk = setup.formula.pk, world.patient.pk
    lines = [
        (lot, volume, vial)
        for lot, volume, vial in (
            (setup.ha_lot.pk, Decimal("0.1"), None),
            (setup.vitc_lot.pk, Decimal("0.1"), setup.vial.pk),
            (setup.saline_lot.pk, Decimal("0.1"), None),
        )
    ]
    snapshots: dict[int, list[tuple[int, Decimal]]] = {}
    outcomes: list[str] = []

    def components(version_pk: int) -> list[tuple[int, Decimal]]:
        return sorted(
            FormulaComponent.objects.filter(version_id=version_pk).values_list(
                "ingredient_id", "concentration"
            )
        )

    def body(index: int) -> None:
        caller = Caller(user=User.objects.get(pk=setup.director.pk))
        formula = Formula.objects.select_related("clinic").get(pk=formula_pk)
        for round_ in range(3):
            if index % 2:
                content = services.FormulaContent(
                    components=[
                        services.ComponentIn(
                            setup_ingredients["hyaluronic-acid"], str(index + round_ + 1), "mg/mL"
                        ),
                        services.ComponentIn(setup_ingredients["vitamin-c"], "50", "mg/mL"),
                    ],
                    total_volume_ml="3.5",
                    indications=["rejuvenation"],
                    diluent_id=setup_ingredients["sodium-chloride"],
                )
                try:
                    services.formula_revise(caller=caller, formula=formula, content=content)
                    outcomes.append("revised")
                except ValidationError:
                    outcomes.append("revision refused")
            else:
                version = services.current_version(formula)
                patient = Patient.objects.select_related("clinic").get(pk=patient_pk)
                try:
                    preparation = services.preparation_create(
                        caller=caller,
                        patient=patient,
                        formula_version=FormulaVersion.objects.select_related("formula").get(pk=version.pk),
                        lines=[services.LineIn(lot, volume, vial) for lot, volume, vial in lines],
                    )
                except ValidationError:
                    outcomes.append("preparation refused")
                else:
                    outcomes.append("prepared")
                    snapshots.setdefault(
                        preparation.formula_version_id, components(preparation.formula_version_id)
                    )

    setup_ingredients = {
        code: ingredient(code).pk for code in ("hyaluronic-acid", "vitamin-c", "sodium-chloride")
    }
    assert run_in_parallel(WRITERS, body) == []
    assert "prepared" in outcomes and "revised" in outcomes
    numbers = sorted(FormulaVersion.objects.filter(formula_id=formula_pk).values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    for version_pk, first_seen in snapshots.items():
        assert components(version_pk) == first_seen

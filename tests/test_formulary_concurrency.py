"""Stock arithmetic under parallel writers (targets.md #16), on whichever database the suite runs on (SQLite
by default, PostgreSQL with DATABASE_URL): preparations drawing from one opened multi-dose vial never take
more than it holds, and none fails with "database is locked"."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from django.db.models import Sum

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.formulary import services
from mesoclinic.formulary.models import FormulaVersion, Lot, Preparation, StockMovement, VialOpening
from mesoclinic.patients.models import Patient
from tests.conftest import World
from tests.formulary_setup import build

WRITERS = 8
ROUNDS = 3  # 24 attempts of 1 mL on a 10 mL vial: exactly 10 can succeed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_preparations_never_overdraw_a_vial(world: World) -> None:
    setup = build(world.clinic, world.users["medical_director"], vials=100)
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

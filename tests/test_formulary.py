"""The formulary end to end: catalogue, formulas and their versions, stock as a sum of movements, preparations
and the lots they draw, recalls and exposure (page, CSV, PDF, messages), bad input, audit and query counts."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from mesoclinic.accounts.actors import Caller
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.formulary import documents, services
from mesoclinic.formulary.models import (
    Formula,
    FormulaComponent,
    FormulaVersion,
    ImmutableError,
    Ingredient,
    Lot,
    Preparation,
    PreparationLine,
    Product,
    RegulatoryStatus,
    StockMovement,
)
from mesoclinic.formulary.rules import PatientFacts, formula_findings
from mesoclinic.patients.models import Patient
from tests.conftest import World, client_for
from tests.factories import ClinicFactory, PatientFactory
from tests.formulary_setup import Setup, build, ensure_intake, ingredient


@pytest.fixture
def setup(world: World) -> Setup:
    built = build(world.clinic, world.users["medical_director"])
    for patient in (world.patient, world.own_patient):
        ensure_intake(patient, built.director)
    return built


NEXT_YEAR = (timezone.now().date() + timedelta(days=365)).isoformat()


def stock(lot: Lot) -> Decimal:
    return StockMovement.objects.filter(lot=lot).aggregate(total=Sum("quantity_ml"))["total"] or Decimal(0)


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body, default=str), content_type="application/json")


def error_fields(response: Any) -> set[str]:
    assert response.status_code == 422, response.content
    return {error["field"] for error in response.json()["errors"]}


def counts() -> tuple[int, ...]:
    return (
        Formula.objects.count(),
        FormulaVersion.objects.count(),
        Lot.objects.count(),
        StockMovement.objects.count(),
        Preparation.objects.count(),
        PreparationLine.objects.count(),
        AuditEvent.objects.count(),
    )


# --- the seeded catalogue ----------------------------------------------------------------------------------


NAMED_BY_THE_ISSUE = [
    "phosphatidylcholine",
    "sodium-deoxycholate",
    "deoxycholic-acid",
    "caffeine",
    "l-carnitine",
    "aminophylline",
    "hyaluronidase",
    "collagenase",
    "procaine",
    "lidocaine",
    "minoxidil",
    "finasteride",
    "dutasteride",
    "biotin",
    "hyaluronic-acid",
    "organic-silicon",
    "vitamin-a",
    "vitamin-b-complex",
    "vitamin-c",
    "vitamin-e",
    "vitamin-k",
    "zinc",
    "copper",
    "selenium",
    "amino-acids",
    "artichoke-extract",
    "ginkgo-extract",
    "centella-extract",
    "buflomedil",
    "calcitonin",
    "thyroxin",
    "gentamicin",
    "pentoxifylline",
]


def test_the_catalogue_is_seeded_with_every_named_ingredient(db: None) -> None:
    codes = set(Ingredient.objects.filter(clinic__isnull=True).values_list("code", flat=True))
    assert len(codes) >= 40
    assert set(NAMED_BY_THE_ISSUE) <= codes
    classes = set(Ingredient.objects.values_list("ingredient_class", flat=True))
    assert {
        "vasodilator",
        "antibiotic",
        "hormone",
        "enzyme",
        "plant-extract",
        "vitamin",
        "mineral",
    } <= classes
    assert set(Ingredient.objects.filter(teratogen=True).values_list("code", flat=True)) == {
        "finasteride",
        "dutasteride",
    }
    assert ingredient("lidocaine").allergy_groups.filter(code="amide-local-anaesthetics").exists()
    assert ingredient("phosphatidylcholine").cautions.filter(group__code="soy").exists()
    assert ingredient("hyaluronidase").cautions.filter(group__code="bee-wasp-venom").exists()
    limit = ingredient("deoxycholic-acid").limits.get()
    assert (
        limit.max_volume_per_injection_ml,
        limit.max_injections_per_session,
        limit.max_volume_per_session_ml,
    ) == (
        Decimal("0.2"),
        50,
        Decimal("10"),
    )
    assert limit.max_sessions == 6 and limit.min_interval_days is not None and limit.min_interval_days >= 28
    # Every status names its source; France and Brazil carry the R-REG bans.
    assert not RegulatoryStatus.objects.filter(source="").exists()
    assert RegulatoryStatus.objects.filter(
        ingredient__code="phosphatidylcholine", jurisdiction="FR", status="banned"
    ).exists()
    assert RegulatoryStatus.objects.filter(
        ingredient__code="phosphatidylcholine", jurisdiction="BR", status="banned"
    ).exists()
    assert RegulatoryStatus.objects.filter(
        ingredient__isnull=True, jurisdiction="FR", status="banned"
    ).exists()
    us_dc = {
        row.status: row.indications
        for row in RegulatoryStatus.objects.filter(ingredient__code="deoxycholic-acid", jurisdiction="US")
    }
    # Kybella: approved for submental fat (migration 0004), off-label for any other use.
    assert us_dc == {"approved": ["submental-fat"], "approved-other-indication": []}
    assert not RegulatoryStatus.objects.filter(clinic__isnull=False).exists()


def _lipolysis(world: World, clinic_jurisdiction: str) -> Formula:
    clinic = world.clinic
    clinic.jurisdiction = clinic_jurisdiction
    clinic.save()
    return services.formula_create(
        caller=Caller(user=world.users["practitioner"]),
        clinic=clinic,
        name="Lipolysis",
        content=services.FormulaContent(
            components=[
                services.ComponentIn(ingredient("phosphatidylcholine").pk, "50", "mg/mL"),
                services.ComponentIn(ingredient("sodium-deoxycholate").pk, "25", "mg/mL"),
            ],
            total_volume_ml="10",
            indications=["localized-fat"],
        ),
    )


@pytest.mark.parametrize(
    ("jurisdiction", "expected"),
    [
        ("FR", {"banned-in-jurisdiction"}),
        ("US-NY", {"not-approved", "procedure-not-approved"}),
        ("BR", {"banned-in-jurisdiction", "regulatory-unknown"}),
    ],
)
def test_seeded_statuses_reach_the_checks(world: World, jurisdiction: str, expected: set[str]) -> None:
    formula = _lipolysis(world, jurisdiction)
    facts = services.planned_formula_facts(clinic=world.clinic, formula_id=formula.pk)
    found = formula_findings(facts, PatientFacts(allergies=frozenset({"soy"})), jurisdiction)
    assert {f.code for f in found if f.rule == "R-REG"} == expected
    assert "allergy-caution" in {f.code for f in found}  # soy-derived phosphatidylcholine, R-CAND-XALLERGY


def test_screening_hook_gives_the_facts_of_this_clinics_formulas_only(world: World, setup: Setup) -> None:
    facts = services.formula_screening_facts(formula_id=setup.formula.pk, clinic=world.clinic)
    assert facts is not None
    assert {i.code for i in facts.ingredients} == {"hyaluronic-acid", "vitamin-c", "sodium-chloride"}
    assert facts.indications == frozenset({"rejuvenation"})
    assert services.formula_screening_facts(formula_id=setup.formula.pk, clinic=world.other_clinic) is None
    assert services.formula_screening_facts(formula_id=999_999, clinic=world.clinic) is None


def test_a_clinic_ingredient_is_seen_by_that_clinic_only(world: World) -> None:
    client = client_for(world.users["practitioner"])
    response = post(
        client,
        "/api/v1/formulary/ingredients",
        {
            "code": "house-serum",
            "name": "House serum",
            "ingredient_class": "skin-conditioner",
            "allergy_groups": ["soy"],
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["allergy_groups"] == ["soy"]
    other = services.ingredients_for(world.other_clinic)
    assert not other.filter(code="house-serum").exists()
    assert (
        post(
            client,
            "/api/v1/formulary/ingredients",
            {"code": "lidocaine", "name": "X", "ingredient_class": "vitamin"},
        ).status_code
        == 422
    )


# --- formulas and versions ----------------------------------------------------------------------------------


def test_a_used_version_is_immutable_and_a_revision_makes_the_next(world: World, setup: Setup) -> None:
    content = services.FormulaContent(
        components=[services.ComponentIn(ingredient("hyaluronic-acid").pk, "5", "mg/mL")],
        total_volume_ml="2",
        indications=["rejuvenation"],
    )
    # Unused: the revision rewrites version 1.
    version = services.formula_revise(caller=setup.caller, formula=setup.formula, content=content)
    assert version.number == 1 and FormulaVersion.objects.filter(formula=setup.formula).count() == 1
    content_back = services.FormulaContent(
        components=[
            services.ComponentIn(ingredient("hyaluronic-acid").pk, "3", "mg/mL"),
            services.ComponentIn(ingredient("vitamin-c").pk, "50", "mg/mL"),
        ],
        total_volume_ml="3.5",
        indications=["rejuvenation"],
        diluent_id=ingredient("sodium-chloride").pk,
    )
    services.formula_revise(caller=setup.caller, formula=setup.formula, content=content_back)
    setup.prepare(world.patient)
    used = FormulaVersion.objects.get(pk=setup.version.pk)
    before = list(
        FormulaComponent.objects.filter(version=used).values_list("ingredient_id", "concentration", "unit")
    )
    # Used: nothing can change it in place…
    used.total_volume_ml = Decimal("9")
    with pytest.raises(ImmutableError):
        used.save()
    with pytest.raises(ImmutableError):
        FormulaComponent(version=used, ingredient=ingredient("biotin"), concentration=1, unit="%").save()
    with pytest.raises(ImmutableError):
        used.delete()
    # …and a revision becomes version 2, leaving version 1 as it was.
    new = services.formula_revise(caller=setup.caller, formula=setup.formula, content=content)
    assert new.number == 2 and new.pk != used.pk
    used.refresh_from_db()
    assert used.total_volume_ml == Decimal("3.5")
    after = list(
        FormulaComponent.objects.filter(version=used).values_list("ingredient_id", "concentration", "unit")
    )
    assert after == before
    assert services.current_version(setup.formula).pk == new.pk


def test_formula_api_round_trip_with_findings(world: World) -> None:
    client = client_for(world.users["practitioner"])
    body = {
        "name": "Hair",
        "components": [
            {"ingredient_id": ingredient("minoxidil").pk, "concentration": "5", "unit": "mg/mL"},
            {"ingredient_id": ingredient("finasteride").pk, "concentration": "0.5", "unit": "mg/mL"},
        ],
        "total_volume_ml": "4",
        "indications": ["hair-loss"],
    }
    response = post(client, "/api/v1/formulary/formulas", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["current_version"]["number"] == 1
    assert [c["unit"] for c in data["current_version"]["components"]] == ["mg/mL", "mg/mL"]
    assert {f["code"] for f in data["findings"]} == {"off-label"}  # FR: minoxidil and finasteride, other uses
    listed = client.get("/api/v1/formulary/formulas").json()
    assert [row["name"] for row in listed] == ["Hair"]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"components": []}, {"components"}),
        ({"components": [{"ingredient_id": 1, "concentration": "5"}]}, {"components.0.unit"}),
        (
            {"components": [{"ingredient_id": 1, "concentration": "0", "unit": "%"}]},
            {"components.0.concentration"},
        ),
        (
            {"components": [{"ingredient_id": 1, "concentration": "-2", "unit": "%"}]},
            {"components.0.concentration"},
        ),
        ({"total_volume_ml": "0"}, {"total_volume_ml"}),
        ({"total_volume_ml": "-1"}, {"total_volume_ml"}),
        ({"indications": []}, {"indications"}),
        (
            {"components": [{"ingredient_id": 999999, "concentration": "1", "unit": "%"}]},
            {"components.0.ingredient_id"},
        ),
        ({"name": ""}, {"name"}),
    ],
)
def test_bad_formulas_are_refused_and_nothing_is_written(
    world: World, change: dict[str, Any], fields: set[str]
) -> None:
    body = {
        "name": "Bad",
        "components": [{"ingredient_id": ingredient("caffeine").pk, "concentration": "20", "unit": "mg/mL"}],
        "total_volume_ml": "5",
        "indications": ["cellulite"],
        **change,
    }
    for component in body["components"]:
        if component["ingredient_id"] == 1:
            component["ingredient_id"] = ingredient("caffeine").pk
    client = client_for(world.users["practitioner"])
    before = counts()
    assert error_fields(post(client, "/api/v1/formulary/formulas", body)) == fields
    assert counts() == before


# --- stock --------------------------------------------------------------------------------------------------


def test_stock_is_the_sum_of_movements(world: World, setup: Setup) -> None:
    assert stock(setup.ha_lot) == Decimal("20")  # 10 vials × 2 mL
    services.stock_move(
        caller=setup.caller, lot=setup.ha_lot, kind="wasted", quantity_ml="2", reason="dropped"
    )
    services.stock_move(
        caller=setup.caller, lot=setup.ha_lot, kind="adjusted", quantity_ml="-2", reason="count"
    )
    services.stock_move(
        caller=setup.caller, lot=setup.ha_lot, kind="adjusted", quantity_ml="1", reason="found one"
    )
    services.stock_move(caller=setup.caller, lot=setup.ha_lot, kind="returned", quantity_ml="3")
    assert stock(setup.ha_lot) == Decimal("14")
    assert services.lot_stock(setup.ha_lot) == Decimal("14")
    kinds = list(
        StockMovement.objects.filter(lot=setup.ha_lot).order_by("id").values_list("kind", "quantity_ml")
    )
    assert kinds == [
        ("received", Decimal("20")),
        ("wasted", Decimal("-2")),
        ("adjusted", Decimal("-2")),
        ("adjusted", Decimal("1")),
        ("returned", Decimal("-3")),
    ]


def test_a_preparation_draws_each_lot_and_discards_single_dose_remainders(world: World, setup: Setup) -> None:
    preparation = setup.prepare(world.patient, vitc_ml="0.5")
    assert preparation.total_volume_ml == Decimal("3.5")
    assert stock(setup.ha_lot) == Decimal("18")  # one 2 mL vial
    assert stock(setup.saline_lot) == Decimal("90")  # one 10 mL vial: 1 mL drawn, 9 mL discarded
    assert StockMovement.objects.get(lot=setup.saline_lot, kind="wasted").quantity_ml == Decimal("-9")
    assert stock(setup.vitc_lot) == Decimal("19.5")  # drawn from the opened vial
    assert services.vial_remaining(setup.vial) == Decimal("9.5")
    lots = set(preparation.lines.values_list("lot_id", flat=True))
    assert lots == {setup.ha_lot.pk, setup.vitc_lot.pk, setup.saline_lot.pk}


def _api_preparation(setup: Setup, patient: Patient, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": patient.pk,
        "formula_version_id": setup.version.pk,
        "lines": [
            {"lot_id": setup.ha_lot.pk, "volume_ml": "2"},
            {"lot_id": setup.vitc_lot.pk, "volume_ml": "0.5", "vial_id": setup.vial.pk},
            {"lot_id": setup.saline_lot.pk, "volume_ml": "1"},
        ],
    }
    body.update(changes)
    return body


def test_preparation_api(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    response = post(client, "/api/v1/formulary/preparations", _api_preparation(setup, world.patient))
    assert response.status_code == 201, response.content
    assert [line["lot_number"] for line in response.json()["lines"]] == ["HA-1", "VC-1", "NS-1"]
    preparation_id = response.json()["id"]
    assert client.get(f"/api/v1/formulary/preparations/{preparation_id}").status_code == 200


@pytest.mark.parametrize(
    ("spoil", "field", "code"),
    [
        ("expired", "lines.0.lot_id", "lot-expired"),
        ("recalled", "lines.0.lot_id", "lot-recalled"),
        ("beyond-use", "lines.1.lot_id", "lot-beyond-use"),
        ("empty-vial", "lines.1.lot_id", "lot-insufficient"),
        ("empty-lot", "lines.0.lot_id", "lot-insufficient"),
    ],
)
def test_blocked_lots_stop_the_preparation_with_the_reason(
    world: World, setup: Setup, spoil: str, field: str, code: str
) -> None:
    if spoil == "expired":
        Lot.objects.filter(pk=setup.ha_lot.pk).update(
            expires_on=setup.today - timedelta(days=1), received_on=setup.today - timedelta(days=30)
        )
    elif spoil == "recalled":
        services.lot_recall(caller=setup.caller, lot=setup.ha_lot, reason="Sterility failure")
    elif spoil == "beyond-use":
        type(setup.vial).objects.filter(pk=setup.vial.pk).update(
            opened_at=timezone.now() - timedelta(days=40), beyond_use_at=timezone.now() - timedelta(days=12)
        )
    elif spoil == "empty-vial":
        setup.prepare(world.patient, vitc_ml="9.9")
    elif spoil == "empty-lot":
        services.stock_move(caller=setup.caller, lot=setup.ha_lot, kind="returned", quantity_ml="19")
    before = counts()
    with pytest.raises(ValidationError) as caught:
        setup.prepare(world.patient, vitc_ml="0.5")
    assert code in [error.code for error in caught.value.error_dict[field]]
    assert counts() == before


def test_drawing_more_than_remains_is_a_422_naming_the_line(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    body = _api_preparation(setup, world.patient)
    body["lines"][1]["volume_ml"] = "10.5"
    before = counts()
    response = post(client, "/api/v1/formulary/preparations", body)
    assert error_fields(response) == {"lines.1.lot_id"}
    assert "left" in response.json()["errors"][0]["message"]
    assert counts() == before


@pytest.mark.parametrize(
    ("lines", "fields"),
    [
        ([], {"lines"}),
        ([{"lot_id": 0, "volume_ml": "0"}], {"lines.0.volume_ml"}),
        ([{"lot_id": 0, "volume_ml": "-1"}], {"lines.0.volume_ml"}),
        ([{"lot_id": 999999, "volume_ml": "1"}], {"lines.0.lot_id"}),
        ("missing-ingredient", {"lines"}),
        ("missing-vial", {"lines.1.vial_id"}),
    ],
)
def test_bad_preparations_are_refused(world: World, setup: Setup, lines: Any, fields: set[str]) -> None:
    body = _api_preparation(setup, world.patient)
    if lines == "missing-ingredient":
        body["lines"] = body["lines"][:2]
    elif lines == "missing-vial":
        del body["lines"][1]["vial_id"]
    else:
        body["lines"] = [{**line, "lot_id": line["lot_id"] or setup.ha_lot.pk} for line in lines]
    client = client_for(world.users["practitioner"])
    before = counts()
    assert error_fields(post(client, "/api/v1/formulary/preparations", body)) == fields
    assert counts() == before


def test_a_formula_banned_in_the_jurisdiction_cannot_be_prepared(world: World, setup: Setup) -> None:
    formula = _lipolysis(world, "FR")
    pcdc = services.product_create(
        caller=setup.caller,
        clinic=world.clinic,
        data={
            "name": "PC/DC",
            "supplier": "S",
            "vial_volume_ml": "10",
            "multi_dose": False,
            "beyond_use_hours": 1,
        },
        components=[
            services.ProductComponentIn(ingredient("phosphatidylcholine").pk, "50", "mg/mL"),
            services.ProductComponentIn(ingredient("sodium-deoxycholate").pk, "25", "mg/mL"),
        ],
    )
    lot = services.lot_receive(
        caller=setup.caller,
        product=pcdc,
        number="PCDC-1",
        expires_on=setup.today + timedelta(days=90),
        received_on=None,
        received_vials=5,
    )
    with pytest.raises(ValidationError) as caught:
        services.preparation_create(
            caller=setup.caller,
            patient=world.patient,
            formula_version=services.current_version(formula),
            lines=[services.LineIn(lot.pk, Decimal("5"))],
        )
    assert "banned-in-jurisdiction" in [e.code for e in caught.value.error_dict["formula_version_id"]]


@pytest.mark.parametrize(
    ("url", "body", "fields"),
    [
        (
            "lots",
            {"number": "X", "expires_on": "2020-01-01", "received_on": "2020-02-01", "received_vials": 2},
            {"expires_on"},
        ),
        ("lots", {"number": "X", "expires_on": NEXT_YEAR, "received_vials": 0}, {"received_vials"}),
        ("lots", {"number": "X", "expires_on": NEXT_YEAR, "received_vials": -3}, {"received_vials"}),
        ("lots", {"number": "X", "expires_on": "9999-12-31", "received_vials": 1}, {"expires_on"}),
        (
            "lots",
            {"number": "X", "expires_on": NEXT_YEAR, "received_on": "0001-01-01", "received_vials": 1},
            {"received_on"},
        ),
        ("lots", {"number": "X\x00", "expires_on": NEXT_YEAR, "received_vials": 1}, {"number"}),
        ("lots", {"number": "X", "expires_on": NEXT_YEAR, "received_vials": 10**12}, {"received_vials"}),
        (
            "lots",
            {"number": "X", "expires_on": NEXT_YEAR, "received_vials": 1, "product_id": 2**70},
            {"product_id"},
        ),
        ("movements", {"kind": "wasted", "quantity_ml": "0"}, {"quantity_ml"}),
        ("movements", {"kind": "wasted", "quantity_ml": "-1"}, {"quantity_ml"}),
        ("movements", {"kind": "adjusted", "quantity_ml": "-1"}, {"reason"}),
        ("movements", {"kind": "returned", "quantity_ml": "500"}, {"quantity_ml"}),
        ("movements", {"kind": "received", "quantity_ml": "5"}, {"kind"}),
        (
            "products",
            {"name": "P", "supplier": "S", "vial_volume_ml": "0", "beyond_use_hours": 1, "components": []},
            {"vial_volume_ml", "components"},
        ),
        (
            "products",
            {
                "name": "P",
                "supplier": "S",
                "vial_volume_ml": "2",
                "beyond_use_hours": 0,
                "components": [{"ingredient_id": 1, "strength": "1"}],
            },
            {"beyond_use_hours", "components.0.unit"},
        ),
    ],
)
def test_bad_stock_input_is_a_422_and_writes_nothing(
    world: World, setup: Setup, url: str, body: dict[str, Any], fields: set[str]
) -> None:
    client = client_for(world.users["front_desk"])
    path = {
        "lots": "/api/v1/formulary/lots",
        "movements": f"/api/v1/formulary/lots/{setup.ha_lot.pk}/movements",
        "products": "/api/v1/formulary/products",
    }[url]
    if url == "lots":
        body = {"product_id": setup.ha.pk, **body}
    before = counts()
    assert error_fields(post(client, path, body)) == fields
    assert counts() == before


def test_vials_open_and_close_through_the_api(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    opened = post(client, f"/api/v1/formulary/lots/{setup.vitc_lot.pk}/vials", {})
    assert opened.status_code == 201, opened.content
    assert Decimal(opened.json()["remaining_ml"]) == Decimal("10")
    # Two vials received, two opened: no unopened vial left to open.
    assert error_fields(post(client, f"/api/v1/formulary/lots/{setup.vitc_lot.pk}/vials", {})) == {"lot_id"}
    single = post(client, f"/api/v1/formulary/lots/{setup.ha_lot.pk}/vials", {})
    assert error_fields(single) == {"lot_id"}
    closed = post(client, f"/api/v1/formulary/vials/{opened.json()['id']}/close", {"reason": "contaminated"})
    assert closed.status_code == 200 and closed.json()["closed_at"]
    assert stock(setup.vitc_lot) == Decimal("10")


# --- stock screens ------------------------------------------------------------------------------------------


def test_stock_overview_shows_low_and_expiring(world: World, setup: Setup) -> None:
    Lot.objects.filter(pk=setup.saline_lot.pk).update(expires_on=setup.today + timedelta(days=5))
    services.stock_move(
        caller=setup.caller, lot=setup.ha_lot, kind="returned", quantity_ml="16"
    )  # 2 vials left
    overview = services.stock_overview(caller=setup.caller, clinic=world.clinic)
    assert [row.lot.number for row in overview.expiring] == ["NS-1"]
    assert [product.product.name for product in overview.low] == ["HA 2 mL"]
    client = client_for(world.users["front_desk"])
    page = client.get("/formulary/stock/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-expiring="{setup.saline_lot.pk}"' in html and f'data-low="{setup.ha.pk}"' in html
    data = client.get("/api/v1/formulary/stock").json()
    assert {p["product"]: p["low"] for p in data["products"]} == {
        "HA 2 mL": True,
        "Saline 10 mL": False,
        "Vitamin C 10 mL": False,
    }


def test_expiring_soon_uses_the_clinic_local_date(world: World, setup: Setup) -> None:
    """A lot expiring on the clinic's today is still usable there, whatever UTC says."""
    Lot.objects.filter(pk=setup.ha_lot.pk).update(expires_on=setup.today)
    overview = services.stock_overview(caller=setup.caller, clinic=world.clinic)
    row = next(r for p in overview.products for r in p.lots if r.lot.pk == setup.ha_lot.pk)
    assert row.expiring_soon and not row.expired


def test_every_stock_writer_keeps_the_stored_balance(world: World, setup: Setup) -> None:
    """``Lot.stock_ml``, what the stock screen reads, is the sum of the lot's movements after every kind of
    write: receipt, preparation (with a single-dose remainder), direct administration, manual movements,
    a vial closed with what it held."""
    setup.prepare(world.patient)  # HA 2 mL, vitamin C 0.5 mL from the vial, saline 1 mL of a 10 mL vial
    setup.administer(world.patient, volume_ml="1.5")  # a 2 mL vial: 0.5 mL remainder wasted
    caller = setup.caller
    services.stock_move(caller=caller, lot=setup.ha_lot, kind="wasted", quantity_ml="2")
    services.stock_move(caller=caller, lot=setup.ha_lot, kind="returned", quantity_ml="2")
    services.stock_move(caller=caller, lot=setup.saline_lot, kind="adjusted", quantity_ml="-0.3", reason="t")
    services.stock_move(caller=caller, lot=setup.saline_lot, kind="adjusted", quantity_ml="0.1", reason="t")
    services.vial_close(caller=caller, vial=setup.vial)
    assert services.stock_discrepancies() == {}
    assert {lot.pk: lot.stock_ml for lot in Lot.objects.filter(clinic=world.clinic)} == {
        setup.ha_lot.pk: Decimal("20") - 2 - 2 - 2 - 2,
        setup.vitc_lot.pk: Decimal("10"),  # the opened vial was closed: its 10 mL are gone
        setup.saline_lot.pk: Decimal("100") - 10 - Decimal("0.2"),
    }
    # What the stock screen shows is that balance, and a stored balance out of step is found.
    overview = services.stock_overview(caller=caller, clinic=world.clinic)
    assert {row.lot.pk: row.stock_ml for p in overview.products for row in p.lots} == {
        lot.pk: lot.stock_ml for lot in Lot.objects.filter(clinic=world.clinic)
    }
    Lot.objects.filter(pk=setup.ha_lot.pk).update(stock_ml=Decimal("1"))
    assert services.stock_discrepancies(world.clinic.pk) == {setup.ha_lot.pk: (Decimal("1"), Decimal("12"))}


def test_an_emptied_lot_leaves_the_stock_screen(world: World, setup: Setup) -> None:
    """Tenths of a millilitre add up to exactly zero (no floating point residue keeps the lot listed)."""
    caller = setup.caller
    services.stock_move(caller=caller, lot=setup.saline_lot, kind="adjusted", quantity_ml="0.3", reason="t")
    for _ in range(3):
        services.stock_move(caller=caller, lot=setup.saline_lot, kind="wasted", quantity_ml="0.1")
    services.stock_move(caller=caller, lot=setup.saline_lot, kind="returned", quantity_ml="100")
    assert Lot.objects.get(pk=setup.saline_lot.pk).stock_ml == 0
    overview = services.stock_overview(caller=caller, clinic=world.clinic)
    saline = next(p for p in overview.products if p.product.pk == setup.saline.pk)
    assert saline.lots == [] and saline.stock_ml == 0


def _count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_stock_page_runs_a_constant_number_of_queries(world: World, setup: Setup) -> None:
    client = client_for(world.users["front_desk"])
    client.get("/formulary/stock/")
    small = _count_queries(client, "/formulary/stock/")
    for index in range(8):
        extra = build(world.clinic, setup.director, prefix=f"X{index}-")
        services.vial_open(caller=setup.caller, lot=extra.vitc_lot)
    assert _count_queries(client, "/formulary/stock/") == small
    assert _count_queries(client, "/api/v1/formulary/stock") <= small


# --- recalls and exposure -----------------------------------------------------------------------------------


def test_a_recall_blocks_at_once_and_is_audited(world: World, setup: Setup) -> None:
    setup.prepare(world.patient)
    client = client_for(world.users["medical_director"])
    response = post(client, f"/api/v1/formulary/lots/{setup.ha_lot.pk}/recall", {"reason": "Endotoxin OOS"})
    assert response.status_code == 200 and response.json()["recalled_at"]
    event = AuditEvent.objects.filter(action=Action.LOT_RECALL).get()
    assert event.object_id == str(setup.ha_lot.pk) and event.detail["patients"] == 1
    assert (
        post(client, f"/api/v1/formulary/lots/{setup.ha_lot.pk}/recall", {"reason": "again"}).status_code
        == 422
    )
    with pytest.raises(ValidationError) as caught:
        setup.prepare(world.own_patient)
    assert "lot-recalled" in [e.code for e in caught.value.error_dict["lines.0.lot_id"]]


def test_recall_finds_exactly_the_exposed_patients_in_a_generated_data_set(
    world: World, setup: Setup
) -> None:
    rng = random.Random(4)  # noqa: S311
    setup = build(world.clinic, setup.director, prefix="A-", vials=100)
    second = build(world.clinic, setup.director, prefix="B-", vials=100)
    patients = [PatientFactory.create(clinic=world.clinic, family_name=f"Gen{index}") for index in range(40)]
    exposed: dict[int, set[int]] = {setup.ha_lot.pk: set(), second.ha_lot.pk: set()}
    received: dict[int, set[int]] = {patient.pk: set() for patient in patients}  # patient → HA lots
    for patient in patients:
        for _ in range(rng.randrange(0, 3)):
            chosen = rng.choice([setup, second])
            chosen.prepare(patient, vitc_ml="0.1")
            exposed[chosen.ha_lot.pk].add(patient.pk)
            received[patient.pk].add(chosen.ha_lot.pk)
        if rng.random() < 0.3:  # injected straight from the vial, no preparation
            chosen = rng.choice([setup, second])
            chosen.administer(patient, volume_ml="1.5")
            exposed[chosen.ha_lot.pk].add(patient.pk)
            received[patient.pk].add(chosen.ha_lot.pk)
    assert StockMovement.objects.filter(kind="administered").exists()
    # A patient of another clinic drawing from that clinic's own lots is never in this clinic's report.
    foreign = build(world.other_clinic, prefix="F-")
    foreign.prepare(world.foreign_patient)
    foreign.administer(world.foreign_patient)
    for lot_pk, expected in exposed.items():
        lot = Lot.objects.get(pk=lot_pk)
        report = services.lot_exposure(caller=setup.caller, lot=lot)
        assert {row.patient.pk for row in report.patients} == expected
        assert report.patient_count == len(expected)
        assert report.preparation_count == Preparation.objects.filter(lines__lot=lot).distinct().count()
        administered = StockMovement.objects.filter(lot=lot, kind="administered")
        assert report.administration_count == administered.count()
        assert {a.id for row in report.patients for a in row.administrations} == set(
            administered.values_list("id", flat=True)
        )
        assert all(
            row.patient.phone == Patient.objects.get(pk=row.patient.pk).phone for row in report.patients
        )
    # …and the other way round: which lots did patient Y receive.
    ha_lots = {setup.ha_lot.pk, second.ha_lot.pk}
    for patient in patients[:12]:
        _patient, rows = services.patient_lots(caller=setup.caller, patient_id=patient.pk)
        assert {row.lot_id for row in rows} & ha_lots == received[patient.pk]


def test_exposure_page_csv_and_pdf(world: World, setup: Setup) -> None:
    world.patient.preferred_language = "fr"
    world.patient.phone = "+33 6 12 34 56 78"
    world.patient.save()
    world.own_patient.phone = "=HYPERLINK(evil)"
    world.own_patient.save()
    setup.prepare(world.patient)
    setup.prepare(world.own_patient)
    third = PatientFactory.create(clinic=world.clinic, given_name="Inès", family_name="Zidane")
    injected = setup.administer(third, volume_ml="1.5")  # straight from the vial: no preparation
    services.lot_recall(caller=setup.caller, lot=setup.ha_lot, reason="Particles")
    client = client_for(world.users["practitioner"])
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    everyone = {world.patient.pk, world.own_patient.pk, third.pk}

    page = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "LEFÈVRE" in html and "MARTIN" in html and "+33 6 12 34 56 78" in html
    assert "Bonjour Hélène" in html and "Dear Claire" in html and "HA-1" in html
    assert "ZIDANE" in html and f'data-administration="{injected.pk}"' in html and "Dear Inès" in html

    response = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure.csv")
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["lot", "HA-1"]
    assert rows[1] == documents.CSV_HEADER
    assert {row[1] for row in rows[2:]} == {"Lefèvre", "Martin", "Zidane"}
    assert "'=HYPERLINK(evil)" in {row[4] for row in rows[2:]}  # no spreadsheet formula
    administration = next(row for row in rows[2:] if row[1] == "Zidane")
    assert administration[10:12] == ["administration", str(injected.pk)]
    assert Decimal(administration[13]) == Decimal("1.5") and administration[14] == "HA 2 mL"

    pdf = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure.pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("attachment;") and "no-store" in pdf["Cache-Control"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "HA-1" in text and "LEFÈVRE" in text and "MARTIN" in text and "Particles" in text
    assert "ZIDANE" in text and "(adm.)" in text

    actions = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", "detail"))
    assert [a for a, _ in actions] == [Action.EXPOSURE_READ, Action.PATIENT_EXPORT, Action.PATIENT_PRINT]
    assert all(set(detail["patients"]) == everyone for _, detail in actions)


def test_the_recall_report_runs_a_constant_number_of_queries(world: World, setup: Setup) -> None:
    """Page, API, CSV and PDF: the same number of queries for 1 patient as for 12 (preparations and direct
    administrations), so 100,000 preparations cost no more queries than one (docs/performance.md)."""
    client = client_for(world.users["practitioner"])
    setup = build(world.clinic, setup.director, prefix="Q-", vials=40)
    setup.prepare(world.patient)
    setup.administer(world.patient)
    base = f"/formulary/lots/{setup.ha_lot.pk}"
    urls = [
        f"{base}/exposure/",
        f"/api/v1/formulary/lots/{setup.ha_lot.pk}/exposure",
        f"{base}/exposure.csv",
        f"{base}/exposure.pdf",
    ]
    for url in urls:
        client.get(url)
    small = [_count_queries(client, url) for url in urls]
    for index in range(11):
        patient = PatientFactory.create(clinic=world.clinic, family_name=f"Many{index}")
        setup.prepare(patient)
        if index % 2:
            setup.administer(patient, volume_ml="0.5")
    assert [_count_queries(client, url) for url in urls] == small
    assert small[1] <= small[0] + 2


def test_which_lots_did_a_patient_receive(world: World, setup: Setup) -> None:
    setup.prepare(world.patient)
    client = client_for(world.users["front_desk"])
    data = client.get(f"/api/v1/formulary/patients/{world.patient.pk}/lots").json()
    assert {item["lot_number"] for item in data["items"]} == {"HA-1", "VC-1", "NS-1"}
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None and event.action == Action.EXPOSURE_READ and event.patient_id == world.patient.pk
    page = client.get(f"/formulary/patients/{world.patient.pk}/lots/")
    assert page.status_code == 200 and "VC-1" in page.content.decode()
    assert client.get(f"/api/v1/formulary/patients/{world.own_patient.pk}/lots").json()["items"] == []


def test_exposure_api_has_contacts_and_a_message_in_the_patients_language(world: World, setup: Setup) -> None:
    world.patient.preferred_language = "fr"
    world.patient.save()
    setup.prepare(world.patient)
    data = (
        client_for(world.users["front_desk"])
        .get(f"/api/v1/formulary/lots/{setup.vitc_lot.pk}/exposure")
        .json()
    )
    assert data["patient_count"] == 1 and data["preparation_count"] == 1
    row = data["patients"][0]
    assert row["email"] == world.patient.email
    assert row["message"].startswith("Bonjour") and "VC-1" in row["message"]


def test_preparation_is_audited_with_the_patient(world: World, setup: Setup) -> None:
    preparation = setup.prepare(world.patient)
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None
    assert (event.action, event.patient_id, event.object_id) == (
        Action.PREPARATION_CREATE,
        world.patient.pk,
        str(preparation.pk),
    )
    assert set(event.detail["lots"]) == {setup.ha_lot.pk, setup.vitc_lot.pk, setup.saline_lot.pk}


# --- pages --------------------------------------------------------------------------------------------------


def test_pages_render_for_staff(world: World, setup: Setup) -> None:
    setup.prepare(world.patient)
    client = client_for(world.users["medical_director"])
    for url in [
        "/formulary/",
        "/formulary/ingredients/",
        "/formulary/ingredients/?class=enzyme",
        f"/formulary/formulas/{setup.formula.pk}/",
        f"/formulary/formulas/{setup.formula.pk}/revise/",
        "/formulary/formulas/new/",
        "/formulary/lots/new/",
        f"/formulary/lots/{setup.vitc_lot.pk}/",
        f"/formulary/patients/{world.patient.pk}/prepare/?formula_version={setup.version.pk}",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert b"<html" not in client.get("/formulary/ingredients/", headers={"HX-Request": "true"}).content
    page = client.get("/formulary/").content.decode()
    assert 'href="/formulary/stock/"' in page and 'href="/formulary/"' in page


def test_forms_create_a_formula_receive_a_lot_and_prepare(world: World, setup: Setup) -> None:
    client = client_for(world.users["medical_director"])
    management = {"components-TOTAL_FORMS": "6", "components-INITIAL_FORMS": "0"}
    response = client.post(
        "/formulary/formulas/new/",
        {
            **management,
            "name": "Cellulite",
            "indications": ["cellulite"],
            "total_volume_ml": "5",
            "components-0-ingredient": ingredient("caffeine").pk,
            "components-0-concentration": "20",
            "components-0-unit": "",
        },
    )
    assert response.status_code == 400 and "unit" in response.content.decode()
    assert not Formula.objects.filter(name="Cellulite").exists()
    response = client.post(
        "/formulary/formulas/new/",
        {
            **management,
            "name": "Cellulite",
            "indications": ["cellulite"],
            "total_volume_ml": "5",
            "components-0-ingredient": ingredient("caffeine").pk,
            "components-0-concentration": "20",
            "components-0-unit": "mg/mL",
        },
    )
    assert response.status_code == 302
    response = client.post(
        "/formulary/lots/new/",
        {
            "product": setup.ha.pk,
            "number": "HA-9",
            "expires_on": "2000-01-01",
            "received_on": "",
            "received_vials": "3",
        },
    )
    assert response.status_code == 400 and not Lot.objects.filter(number="HA-9").exists()
    lines = {"lines-TOTAL_FORMS": "6", "lines-INITIAL_FORMS": "0", "formula_version": setup.version.pk}
    response = client.post(
        f"/formulary/patients/{world.patient.pk}/prepare/",
        {
            **lines,
            "lines-0-lot": setup.ha_lot.pk,
            "lines-0-volume_ml": "2",
            "lines-1-lot": setup.vitc_lot.pk,
            "lines-1-volume_ml": "0.5",
            "lines-1-vial": setup.vial.pk,
            "lines-2-lot": setup.saline_lot.pk,
            "lines-2-volume_ml": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()
    assert Preparation.objects.filter(patient=world.patient).count() == 1


def test_ui_recall_then_report(world: World, setup: Setup) -> None:
    setup.prepare(world.patient)
    client = client_for(world.users["clinic_admin"])
    response = client.post(
        f"/formulary/lots/{setup.ha_lot.pk}/recall/", {"reason": "Supplier notice 2026-11"}
    )
    assert response.status_code == 302 and response["Location"].endswith(
        f"/formulary/lots/{setup.ha_lot.pk}/exposure/"
    )
    assert Lot.objects.get(pk=setup.ha_lot.pk).recalled_at is not None


def test_other_clinic_ids_are_not_found(world: World, setup: Setup) -> None:
    foreign = build(world.other_clinic, prefix="F-")
    client = client_for(world.users["medical_director"])
    for url in [
        f"/api/v1/formulary/lots/{foreign.ha_lot.pk}",
        f"/api/v1/formulary/lots/{foreign.ha_lot.pk}/exposure",
        f"/api/v1/formulary/formulas/{foreign.formula.pk}",
        f"/api/v1/formulary/products/{foreign.ha.pk}",
        f"/formulary/lots/{foreign.ha_lot.pk}/exposure.pdf",
    ]:
        assert client.get(url).status_code == 404, url
    body = _api_preparation(setup, world.patient)
    body["lines"][0]["lot_id"] = foreign.ha_lot.pk
    assert "lines.0.lot_id" in error_fields(post(client, "/api/v1/formulary/preparations", body))
    other = ClinicFactory.create()
    assert services.formula_screening_facts(formula_id=setup.formula.pk, clinic=other) is None


def test_exposure_pages_by_patient_in_name_order(world: World, setup: Setup) -> None:
    for index in range(5):
        setup.prepare(PatientFactory.create(clinic=world.clinic, family_name=f"Page{index}"))
    client = client_for(world.users["practitioner"])
    data = client.get(f"/api/v1/formulary/lots/{setup.ha_lot.pk}/exposure", {"limit": 2, "offset": 1}).json()
    assert data["patient_count"] == 5 and data["preparation_count"] == 5
    assert [row["family_name"] for row in data["patients"]] == ["Page1", "Page2"]
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None and len(event.detail["patients"]) == 2 and event.detail["total_patients"] == 5
    assert client.get(f"/api/v1/formulary/lots/{setup.ha_lot.pk}/exposure", {"limit": 0}).status_code == 422


def test_ingredient_list_runs_a_constant_number_of_queries(world: World) -> None:
    client = client_for(world.users["front_desk"])
    client.get("/api/v1/formulary/ingredients")
    with CaptureQueriesContext(connection) as queries:
        data = client.get("/api/v1/formulary/ingredients").json()
    assert len(data) >= 40 and len(queries) <= 12
    dca = next(row for row in data if row["code"] == "deoxycholic-acid")
    assert dca["limits"][0]["max_injections_per_session"] == 50


@pytest.mark.parametrize(
    "page", ["/formulary/stock/", "/formulary/lots/{lot}/exposure/", "/formulary/lots/{lot}/"]
)
def test_formulary_pages_carry_the_security_headers(world: World, setup: Setup, page: str) -> None:
    setup.prepare(world.patient)
    response = client_for(world.users["practitioner"]).get(page.format(lot=setup.ha_lot.pk))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "<script>" not in html and " style=" not in html and "<style" not in html


# --- input limits: anything a client can send is stored exactly or refused on its field (never a 500) -----


FORMULA_BODY: dict[str, Any] = {
    "name": "Limits",
    "components": [{"ingredient_id": 0, "concentration": "20", "unit": "mg/mL"}],
    "total_volume_ml": "5",
    "indications": ["cellulite"],
}


def _formula_body(**changes: Any) -> dict[str, Any]:
    component = {**FORMULA_BODY["components"][0], "ingredient_id": ingredient("caffeine").pk}
    component.update(changes.pop("component", {}))
    return {**FORMULA_BODY, "components": [component], **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"component": {"concentration": "1e13"}}, "components.0.concentration"),
        ({"component": {"concentration": 1e13}}, "components.0.concentration"),  # a JSON number
        ({"component": {"concentration": "123456789.12345"}}, "components.0.concentration"),
        ({"component": {"concentration": "0.00001"}}, "components.0.concentration"),  # would round to 0
        ({"component": {"concentration": "1.23456"}}, "components.0.concentration"),  # would be rounded
        ({"component": {"concentration": "NaN"}}, "components.0.concentration"),
        ({"component": {"ingredient_id": 2**70}}, "components.0.ingredient_id"),
        ({"component": {"ingredient_id": 2**63 - 1}}, "components.0.ingredient_id"),
        ({"total_volume_ml": "1e7"}, "total_volume_ml"),
        ({"total_volume_ml": "0.0001"}, "total_volume_ml"),
        ({"diluent_id": 2**64}, "diluent_id"),
        ({"name": "Nul\x00byte"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"preparation_notes": "x" * 4001}, "preparation_notes"),
        ({"preparation_notes": "a\x00b"}, "preparation_notes"),
        ({"indications": ["x" * 5000]}, "indications.0"),
        ({"indications": ["submental-fat", "no-such-use"]}, "indications"),
        ({"components": [{"ingredient_id": 1, "concentration": "1", "unit": "%"}] * 41}, "components"),
    ],
)
def test_formula_input_outside_the_columns_is_a_422_on_the_field(
    world: World, changes: dict[str, Any], field: str
) -> None:
    client = client_for(world.users["practitioner"])
    before = counts()
    assert field in error_fields(post(client, "/api/v1/formulary/formulas", _formula_body(**changes)))
    assert counts() == before


def _product_body(**changes: Any) -> dict[str, Any]:
    component = {"ingredient_id": ingredient("caffeine").pk, "strength": "20", "unit": "mg/mL"}
    component.update(changes.pop("component", {}))
    body = {
        "name": "Limits product",
        "supplier": "S",
        "vial_volume_ml": "5",
        "multi_dose": True,
        "beyond_use_hours": 672,
        "components": [component],
    }
    return {**body, **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"beyond_use_hours": 2147483647}, "beyond_use_hours"),
        ({"beyond_use_hours": 8761}, "beyond_use_hours"),
        ({"beyond_use_hours": 0}, "beyond_use_hours"),
        ({"beyond_use_hours": 10**30}, "beyond_use_hours"),
        ({"vial_volume_ml": "0.0001"}, "vial_volume_ml"),
        ({"vial_volume_ml": "1e9"}, "vial_volume_ml"),
        ({"component": {"strength": "1e13"}}, "components.0.strength"),
        ({"component": {"strength": "0.00001"}}, "components.0.strength"),
        ({"component": {"ingredient_id": 2**70}}, "components.0.ingredient_id"),
        ({"low_stock_vials": -1}, "low_stock_vials"),
        ({"supplier": "x\x00"}, "supplier"),
        ({"clinic_id": 2**70}, "clinic_id"),
    ],
)
def test_product_input_outside_the_columns_is_a_422_on_the_field(
    world: World, changes: dict[str, Any], field: str
) -> None:
    client = client_for(world.users["front_desk"])
    before = counts()
    assert field in error_fields(post(client, "/api/v1/formulary/products", _product_body(**changes)))
    assert counts() == before


def test_a_year_of_beyond_use_is_accepted_and_a_vial_opens(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    response = post(client, "/api/v1/formulary/products", _product_body(beyond_use_hours=8760))
    assert response.status_code == 201, response.content
    product = services.product_get(caller=setup.caller, product_id=response.json()["id"])
    lot = services.lot_receive(
        caller=setup.caller,
        product=product,
        number="Y-1",
        expires_on=setup.today + timedelta(days=400),
        received_on=None,
        received_vials=1,
    )
    opened = post(client, f"/api/v1/formulary/lots/{lot.pk}/vials", {})
    assert opened.status_code == 201, opened.content


def test_the_services_refuse_the_same_input_for_every_caller(world: World, setup: Setup) -> None:
    """Session charting and the pages call the services directly: the limits hold there too."""
    caffeine = ingredient("caffeine").pk
    with pytest.raises(ValidationError) as caught:
        services.product_create(
            caller=setup.caller,
            clinic=world.clinic,
            data={"name": "P", "supplier": "S", "vial_volume_ml": "5", "beyond_use_hours": 2147483647},
            components=[services.ProductComponentIn(caffeine, "1", "mg/mL")],
        )
    assert set(caught.value.message_dict) == {"beyond_use_hours"}
    with pytest.raises(ValidationError) as caught:
        services.formula_create(
            caller=setup.caller,
            clinic=world.clinic,
            name="Tiny",
            content=services.FormulaContent(
                components=[services.ComponentIn(caffeine, Decimal("0.00001"), "mg/mL")],
                total_volume_ml="5",
                indications=["cellulite"],
            ),
        )
    assert set(caught.value.message_dict) == {"components.0.concentration"}
    with pytest.raises(ValidationError) as caught:
        services.stock_move(caller=setup.caller, lot=setup.ha_lot, kind="wasted", quantity_ml="0.0005")
    assert "decimal" in caught.value.message_dict["quantity_ml"][0]
    with pytest.raises(ValidationError) as caught:
        services.lot_receive(
            caller=setup.caller,
            product=setup.ha,
            number="Z",
            expires_on=setup.today + timedelta(days=30),
            received_on=None,
            received_vials=10**9,
        )
    assert set(caught.value.message_dict) == {"received_vials"}


def test_the_database_refuses_a_beyond_use_time_over_a_year(setup: Setup) -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        type(setup.ha).objects.filter(pk=setup.ha.pk).update(beyond_use_hours=8761)


def test_the_pages_refuse_out_of_range_numbers_with_a_form_error(world: World, setup: Setup) -> None:
    client = client_for(world.users["medical_director"])
    response = client.post(
        "/formulary/products/new/",
        {
            "name": "Huge BUD",
            "supplier": "S",
            "vial_volume_ml": "5",
            "beyond_use_hours": "2147483647",
            "low_stock_vials": "0",
            "components-TOTAL_FORMS": "4",
            "components-INITIAL_FORMS": "0",
            "components-0-ingredient": ingredient("caffeine").pk,
            "components-0-strength": "1",
            "components-0-unit": "mg/mL",
        },
    )
    assert response.status_code == 400 and "8760" in response.content.decode()
    response = client.post(
        "/formulary/formulas/new/",
        {
            "components-TOTAL_FORMS": "100000",  # tampered: at most 40 rows
            "components-INITIAL_FORMS": "0",
            "name": "Tiny",
            "indications": ["cellulite"],
            "total_volume_ml": "5",
            "components-0-ingredient": ingredient("caffeine").pk,
            "components-0-concentration": "0.00001",
            "components-0-unit": "mg/mL",
        },
    )
    assert response.status_code == 400
    assert (
        not Formula.objects.filter(name="Tiny").exists()
        and not type(setup.ha).objects.filter(name="Huge BUD").exists()
    )
    response = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure/?page=99999999999999999999999")
    assert response.status_code == 200


# --- races: a concurrent writer's row turns into a clear 422, never a 500 ---------------------------------


@contextmanager
def another_writer_first(table: str, insert: Callable[[], object]) -> Iterator[list[str]]:
    """Interleave a concurrent writer at the worst moment: just before this connection inserts into
    ``table``, ``insert`` writes the same key (as another transaction committing between our uniqueness
    check and our insert would). Django's execute_wrapper is the hook; the rows are real."""
    done: list[str] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not done and sql.lstrip().upper().startswith(f'INSERT INTO "{table.upper()}"'):
            done.append(sql)
            insert()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield done


@pytest.mark.parametrize("what", ["lot", "formula", "product", "ingredient"])
def test_a_unique_key_taken_by_a_concurrent_writer_is_a_422_on_the_field(
    world: World, setup: Setup, what: str
) -> None:
    client = client_for(world.users["medical_director"])
    caffeine = ingredient("caffeine")
    if what == "lot":
        url, field, table = "/api/v1/formulary/lots", "number", "formulary_lot"
        body: dict[str, Any] = {"product_id": setup.ha.pk, "number": "RACE-1", "expires_on": NEXT_YEAR}
        body["received_vials"] = 1

        def insert() -> object:
            return Lot.objects.create(
                clinic=world.clinic,
                product=setup.ha,
                number="RACE-1",
                expires_on=setup.today + timedelta(days=30),
                received_on=setup.today,
                received_vials=1,
            )

    elif what == "formula":
        url, field, table = "/api/v1/formulary/formulas", "name", "formulary_formula"
        body = _formula_body(name="Race")

        def insert() -> object:
            return Formula.objects.create(clinic=world.clinic, name="Race")

    elif what == "product":
        url, field, table = "/api/v1/formulary/products", "name", "formulary_product"
        body = _product_body(name="Race")

        def insert() -> object:
            return type(setup.ha).objects.create(
                clinic=world.clinic, name="Race", supplier="S", vial_volume_ml=1, beyond_use_hours=1
            )

    else:
        url, field, table = "/api/v1/formulary/ingredients", "code", "formulary_ingredient"
        body = {"code": "race", "name": "Race", "ingredient_class": "vitamin"}

        def insert() -> object:
            return Ingredient.objects.create(
                clinic=world.clinic, code="race", name="Race", ingredient_class="vitamin"
            )

    del caffeine
    before = counts()
    with another_writer_first(table, insert) as raced:
        response = post(client, url, body)
    assert raced, "the concurrent insert did not happen"
    assert error_fields(response) == {field}
    assert counts() == before


def _snapshot(version: FormulaVersion) -> list[tuple[int, Decimal, str]]:
    return list(
        FormulaComponent.objects.filter(version=version).values_list("ingredient_id", "concentration", "unit")
    )


def test_a_version_used_while_it_is_being_revised_is_a_clear_422(world: World, setup: Setup) -> None:
    """formula_revise found the current version unused; a preparation takes it before the write. The
    version refuses to change (ImmutableError) and the revision answers a 422 that says to revise again,
    with nothing written — never a 500, never a used version rewritten."""
    version = setup.version
    before_content = _snapshot(version)
    versions_before = FormulaVersion.objects.filter(formula=setup.formula).count()
    checks: list[str] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if "formulary_preparation" in sql and sql.lstrip().upper().startswith("SELECT") and not checks:
            checks.append(sql)  # formula_revise's own check has just answered "unused": now it is used
            Preparation.objects.create(
                clinic=world.clinic,
                patient=world.patient,
                formula_version=version,
                prepared_at=timezone.now(),
                total_volume_ml=Decimal("1"),
            )
        return result

    client = client_for(world.users["medical_director"])
    body = {**_formula_body(), "total_volume_ml": "9"}
    del body["name"]
    with connection.execute_wrapper(wrapper):
        response = post(client, f"/api/v1/formulary/formulas/{setup.formula.pk}/versions", body)
    assert checks
    assert response.status_code == 422, response.content
    assert "Revise again" in response.json()["errors"][0]["message"]
    version.refresh_from_db()
    assert version.total_volume_ml == Decimal("3.5") and _snapshot(version) == before_content
    assert FormulaVersion.objects.filter(formula=setup.formula).count() == versions_before
    # The simulated preparation was part of the refused transaction: the version is unused again, and
    # revising again simply works.
    assert not Preparation.objects.filter(formula_version=version).exists()
    assert post(client, f"/api/v1/formulary/formulas/{setup.formula.pk}/versions", body).status_code == 201


# --- direct administration (no preparation) ---------------------------------------------------------------


def test_administering_from_a_single_dose_lot(world: World, setup: Setup) -> None:
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    movement = setup.administer(world.patient, volume_ml="1.5")
    assert (movement.kind, movement.quantity_ml, movement.patient_id) == (
        "administered",
        Decimal("-1.5"),
        world.patient.pk,
    )
    assert stock(setup.ha_lot) == Decimal("18")  # a whole 2 mL vial: 1.5 mL given, 0.5 mL discarded
    waste = StockMovement.objects.get(lot=setup.ha_lot, kind="wasted")
    assert waste.quantity_ml == Decimal("-0.5") and waste.patient_id is None
    event = AuditEvent.objects.get(seq__gt=start)
    assert (event.action, event.patient_id, event.object_id) == (
        Action.LOT_ADMINISTER,
        world.patient.pk,
        str(movement.pk),
    )
    assert event.detail["lot"] == setup.ha_lot.pk and event.detail["volume_ml"] == "1.500"


def test_administering_from_an_opened_multi_dose_vial(world: World, setup: Setup) -> None:
    with pytest.raises(ValidationError) as caught:
        setup.administer(world.patient, lot=setup.vitc_lot, volume_ml="0.4")
    assert set(caught.value.message_dict) == {"vial_id"}
    movement = setup.administer(world.patient, lot=setup.vitc_lot, volume_ml="0.4", vial=setup.vial)
    assert movement.vial_id == setup.vial.pk
    assert services.vial_remaining(setup.vial) == Decimal("9.6")
    assert stock(setup.vitc_lot) == Decimal("19.6")


@pytest.mark.parametrize(
    ("spoil", "field", "code"),
    [
        ("expired", "lot_id", "lot-expired"),
        ("recalled", "lot_id", "lot-recalled"),
        ("beyond-use", "lot_id", "lot-beyond-use"),
        ("insufficient", "lot_id", "lot-insufficient"),
        ("foreign-lot", "lot_id", None),
        ("closed-vial", "vial_id", None),
        ("zero", "volume_ml", None),
        ("too-precise", "volume_ml", None),
        ("unknown-use", "indications", None),
    ],
)
def test_a_blocked_administration_gives_the_reason_and_writes_nothing(
    world: World, setup: Setup, spoil: str, field: str, code: str | None
) -> None:
    lot, vial, volume = setup.vitc_lot, setup.vial, "0.5"
    indications: tuple[str, ...] = ()
    if spoil == "expired":
        Lot.objects.filter(pk=lot.pk).update(
            expires_on=setup.today - timedelta(days=1), received_on=setup.today - timedelta(days=30)
        )
    elif spoil == "recalled":
        services.lot_recall(caller=setup.caller, lot=lot, reason="Sterility failure")
    elif spoil == "beyond-use":
        type(vial).objects.filter(pk=vial.pk).update(
            opened_at=timezone.now() - timedelta(days=40), beyond_use_at=timezone.now() - timedelta(days=12)
        )
    elif spoil == "insufficient":
        volume = "10.5"
    elif spoil == "foreign-lot":
        foreign = build(world.other_clinic, prefix="F-")
        lot, vial = foreign.vitc_lot, foreign.vial
    elif spoil == "closed-vial":
        services.vial_close(caller=setup.caller, vial=vial)
    elif spoil == "zero":
        volume = "0"
    elif spoil == "too-precise":
        volume = "0.0001"
    elif spoil == "unknown-use":
        indications = ("no-such-use",)
    lot = Lot.objects.select_related("product", "clinic").get(pk=lot.pk)
    before = counts()
    with pytest.raises(ValidationError) as caught:
        services.lot_administer(
            caller=setup.caller,
            patient=world.patient,
            lot=lot,
            volume_ml=volume,
            vial_id=vial.pk,
            indications=indications,
        )
    assert field in caught.value.error_dict
    if code is not None:
        assert code in [error.code for error in caught.value.error_dict[field]]
    assert counts() == before


def test_administration_needs_the_clinical_permission(world: World, setup: Setup) -> None:
    from django.core.exceptions import PermissionDenied

    for role in ("front_desk", "clinic_admin", "researcher"):
        with pytest.raises(PermissionDenied):
            services.lot_administer(
                caller=Caller(user=world.users[role]), patient=world.patient, lot=setup.ha_lot, volume_ml="1"
            )
    assert not StockMovement.objects.filter(kind="administered").exists()


def test_an_administration_rolls_back_with_the_callers_transaction(world: World, setup: Setup) -> None:
    """Session charting calls lot_administer inside its own transaction: if the chart fails, the stock
    movement and its audit row go with it."""
    from django.db import transaction

    before = counts()
    with pytest.raises(RuntimeError), transaction.atomic():
        setup.administer(world.patient)
        raise RuntimeError("the chart could not be saved")
    assert counts() == before


def test_an_administration_checks_the_products_status_for_the_plans_use(world: World, setup: Setup) -> None:
    """R-REG with the plan's indications: deoxycholic acid for fat is banned in France."""
    kybella = services.product_create(
        caller=setup.caller,
        clinic=world.clinic,
        data={"name": "DCA 2 mL", "supplier": "S", "vial_volume_ml": "2", "beyond_use_hours": 1},
        components=[services.ProductComponentIn(ingredient("deoxycholic-acid").pk, "10", "mg/mL")],
    )
    lot = services.lot_receive(
        caller=setup.caller,
        product=kybella,
        number="DCA-1",
        expires_on=setup.today + timedelta(days=90),
        received_on=None,
        received_vials=5,
    )
    with pytest.raises(ValidationError) as caught:
        services.lot_administer(
            caller=setup.caller,
            patient=world.patient,
            lot=lot,
            volume_ml="2",
            indications=["submental-fat"],
        )
    assert {e.code for e in caught.value.error_dict["indications"]} == {"banned-in-jurisdiction"}
    world.clinic.jurisdiction = "US"
    world.clinic.save()
    patient = Patient.objects.select_related("clinic").get(pk=world.patient.pk)
    movement = services.lot_administer(
        caller=setup.caller, patient=patient, lot=lot, volume_ml="2", indications=["submental-fat"]
    )
    assert movement.patient_id == patient.pk


def test_the_database_keeps_patients_on_administrations_only(world: World, setup: Setup) -> None:
    from django.db import IntegrityError, transaction

    common = {"clinic": world.clinic, "lot": setup.ha_lot, "at": timezone.now(), "quantity_ml": Decimal("-1")}
    with pytest.raises(IntegrityError), transaction.atomic():
        StockMovement.objects.create(kind="administered", **common)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockMovement.objects.create(kind="wasted", patient=world.patient, **common)


def test_two_lines_from_one_lot_are_one_exposure(world: World, setup: Setup) -> None:
    lines = setup.lines()
    preparation = services.preparation_create(
        caller=setup.caller,
        patient=world.patient,
        formula_version=setup.version,
        lines=[services.LineIn(setup.ha_lot.pk, Decimal("1")), *lines],
    )
    report = services.lot_exposure(caller=setup.caller, lot=setup.ha_lot)
    assert (report.patient_count, report.preparation_count) == (1, 1)
    (exposed,) = report.patients[0].preparations
    assert (exposed.id, exposed.volume_ml) == (preparation.pk, Decimal("3"))


def test_patient_lots_lists_preparations_and_administrations(world: World, setup: Setup) -> None:
    setup.prepare(world.patient)
    movement = setup.administer(world.patient, lot=setup.vitc_lot, volume_ml="0.3", vial=setup.vial)
    client = client_for(world.users["front_desk"])
    items = client.get(f"/api/v1/formulary/patients/{world.patient.pk}/lots").json()["items"]
    assert items[0]["kind"] == "administration" and items[0]["administration_id"] == movement.pk
    assert Decimal(items[0]["volume_ml"]) == Decimal("0.3") and items[0]["preparation_id"] is None
    assert {item["kind"] for item in items[1:]} == {"preparation"}
    page = client.get(f"/formulary/patients/{world.patient.pk}/lots/").content.decode()
    assert 'data-kind="administration"' in page
    exposure = client.get(f"/api/v1/formulary/lots/{setup.vitc_lot.pk}/exposure").json()
    assert exposure["administration_count"] == 1 and exposure["preparation_count"] == 1
    assert exposure["patients"][0]["administrations"][0]["id"] == movement.pk


def test_administered_is_not_a_manual_movement(world: World, setup: Setup) -> None:
    client = client_for(world.users["medical_director"])
    response = post(
        client,
        f"/api/v1/formulary/lots/{setup.ha_lot.pk}/movements",
        {"kind": "administered", "quantity_ml": 1},
    )
    assert error_fields(response) == {"kind"}
    with pytest.raises(ValidationError):
        services.stock_move(caller=setup.caller, lot=setup.ha_lot, kind="administered", quantity_ml="1")


# --- the PDF by parts, the whole report by command ---------------------------------------------------------


def test_the_pdf_is_printed_by_parts(world: World, setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "PDF_PART_PATIENTS", 2)
    patients = [PatientFactory.create(clinic=world.clinic, family_name=f"Part{index}") for index in range(5)]
    for patient in patients:
        setup.administer(patient)
    client = client_for(world.users["practitioner"])
    page = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure/").content.decode()
    assert "?part=3" in page and "?part=4" not in page
    url = f"/formulary/lots/{setup.ha_lot.pk}/exposure.pdf"
    for part, names in [(1, {"PART0", "PART1"}), (3, {"PART4"})]:
        start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        response = client.get(url, {"part": part})
        assert response.status_code == 200
        assert response["Content-Disposition"].endswith(f'-part{part}.pdf"')
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
        assert {name for name in ("PART0", "PART1", "PART2", "PART3", "PART4") if name in text} == names
        assert f"Part {part} of 3" in text
        event = AuditEvent.objects.get(seq__gt=start)
        assert event.action == Action.PATIENT_PRINT and len(event.detail["patients"]) == len(names)
    assert client.get(url, {"part": 4}).status_code == 404


def test_a_full_part_lists_each_patient_with_at_most_the_pdf_dates(world: World) -> None:
    """The worst full part — documents.PDF_PART_PATIENTS patients who each received the lot more often than
    the PDF lists — prints every patient with the first dates and "and N more" (its time is measured by
    bench/formulary_recall.py, not here)."""
    clinic = world.clinic
    now = timezone.now()
    fake_lot = Lot(clinic=clinic, number="BIG-1", expires_on=now.date(), received_on=now.date())
    fake_lot.product = Product(clinic=clinic, name="Saline 10 mL", vial_volume_ml=Decimal(10))
    rows = [
        services.ExposedPatient(
            patient=Patient(
                pk=index,
                clinic=clinic,
                record_number=f"P-{index:06d}",
                given_name="Élodie",
                family_name=f"Durand-Lefèvre{index}",
                date_of_birth=now.date() - timedelta(days=12000),
                email=f"p{index}@example.test",
                phone="+33 6 12 34 56 78",
                address_line="12 rue de la Paix",
                postal_code="75002",
                city="Paris",
            ),
            preparations=[
                services.ExposedPreparation(
                    index * 100 + k, now - timedelta(days=7 * k), Decimal("0.5"), "F", 1
                )
                for k in range(documents.PDF_DATES_PER_PATIENT + 5)
            ],
        )
        for index in range(documents.PDF_PART_PATIENTS)
    ]
    report = services.ExposureReport(
        lot=fake_lot, patients=rows, patient_count=len(rows) * 3, preparation_count=len(rows) * 15
    )
    pdf = documents.recall_pdf(report, clinic, part=1)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert text.count("and 5 more") == documents.PDF_PART_PATIENTS
    assert "P-000000" in text and f"P-{documents.PDF_PART_PATIENTS - 1:06d}" in text


def test_the_whole_report_by_command(world: World, setup: Setup, tmp_path: Any) -> None:
    from django.core.management import CommandError, call_command

    setup.prepare(world.patient)
    setup.administer(world.own_patient)
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    pdf, csv_file = tmp_path / "recall.pdf", tmp_path / "recall.csv"
    call_command(
        "recall_report", setup.ha_lot.pk, "--user", "practitioner", "--pdf", str(pdf), "--csv", str(csv_file)
    )
    text = "".join(p.extract_text() for p in PdfReader(str(pdf)).pages)
    assert "LEFÈVRE" in text and "MARTIN" in text and "Part 1" not in text
    assert {row[1] for row in list(csv.reader(csv_file.open(encoding="utf-8")))[2:]} == {"Lefèvre", "Martin"}
    actions = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", "username"))
    assert actions == [(Action.PATIENT_EXPORT, "practitioner"), (Action.PATIENT_PRINT, "practitioner")]
    for user in ("researcher", "nobody"):  # no exposure.view; no such user
        with pytest.raises(CommandError):
            call_command("recall_report", setup.ha_lot.pk, "--user", user, "--pdf", str(pdf))
    foreign = build(world.other_clinic, prefix="F-")
    with pytest.raises(CommandError):
        call_command("recall_report", foreign.ha_lot.pk, "--user", "practitioner", "--csv", str(csv_file))


# --- the clinic's own reference data ----------------------------------------------------------------------


def _us(world: World) -> None:
    world.clinic.jurisdiction = "US"
    world.clinic.country = "US"
    world.clinic.save()


def _findings(world: World, formula: Formula) -> set[tuple[str, str]]:
    clinic = type(world.clinic).objects.get(pk=world.clinic.pk)
    facts = services.planned_formula_facts(clinic=clinic, formula_id=formula.pk)
    from mesoclinic.formulary.rules import regulatory_findings

    return {(f.code, f.message.split(" ")[0]) for f in regulatory_findings(facts, clinic.jurisdiction)}


def test_submental_fat_with_deoxycholic_acid_is_approved_in_the_us(world: World) -> None:
    _us(world)
    caller = Caller(user=world.users["practitioner"])

    def dca(indication: str) -> Formula:
        return services.formula_create(
            caller=caller,
            clinic=world.clinic,
            name=f"DCA {indication} {world.clinic.jurisdiction}",
            content=services.FormulaContent(
                components=[services.ComponentIn(ingredient("deoxycholic-acid").pk, "10", "mg/mL")],
                total_volume_ml="2",
                indications=[indication],
            ),
        )

    submental = _findings(world, dca("submental-fat"))
    assert not {code for code, _who in submental} & {"off-label", "not-approved", "banned-in-jurisdiction"}
    assert ("off-label", "Deoxycholic") in _findings(world, dca("localized-fat"))
    world.clinic.jurisdiction = "FR"
    world.clinic.country = "FR"
    world.clinic.save()
    assert ("banned-in-jurisdiction", "Deoxycholic") in _findings(world, dca("submental-fat"))


def test_a_clinic_status_overrides_the_seeded_one_for_that_clinic_only(world: World) -> None:
    _us(world)
    other = ClinicFactory.create(country="US", jurisdiction="US-NY")
    client = client_for(world.users["medical_director"])
    hair = _lipolysis_like(world, world.clinic, "hyaluronic-acid", "rejuvenation")
    twin = _lipolysis_like(world, other, "hyaluronic-acid", "rejuvenation")
    assert ("not-approved", "Hyaluronic") in _findings(world, hair)
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    response = post(
        client,
        "/api/v1/formulary/regulatory-statuses",
        {
            "ingredient_id": ingredient("hyaluronic-acid").pk,
            "jurisdiction": "US",
            "status": "approved",
            "indications": ["rejuvenation"],
            "use": "cleared as a device (clinic's legal review 2026-03)",
            "source": "Counsel letter 2026-03-02",
        },
    )
    assert response.status_code == 201, response.content
    row = response.json()
    assert row["clinic_id"] == world.clinic.pk
    event = AuditEvent.objects.get(seq__gt=start)
    assert event.action == Action.FORMULARY_CHANGE and event.detail["what"] == "regulatory-status"
    assert not {code for code, _who in _findings(world, hair)} & {"not-approved"}
    facts = services.planned_formula_facts(clinic=other, formula_id=twin.pk)
    from mesoclinic.formulary.rules import regulatory_findings

    assert "not-approved" in {f.code for f in regulatory_findings(facts, other.jurisdiction)}  # not theirs
    listed = client.get("/api/v1/formulary/regulatory-statuses").json()
    assert [item["id"] for item in listed] == [row["id"]]
    ingredient_out = client.get(f"/api/v1/formulary/ingredients/{ingredient('hyaluronic-acid').pk}").json()
    assert row["id"] in {status["id"] for status in ingredient_out["statuses"]}
    # Removing it lets the seeded status speak again.
    assert client.delete(f"/api/v1/formulary/regulatory-statuses/{row['id']}").status_code == 204
    assert ("not-approved", "Hyaluronic") in _findings(world, hair)


def _lipolysis_like(world: World, clinic: Any, code: str, indication: str) -> Formula:
    """A one-ingredient formula (a seeded ingredient's code, or one of the clinic's)."""
    director = world.users["medical_director"]
    if clinic.pk != world.clinic.pk:
        from mesoclinic.accounts.models import Role
        from tests.factories import staff

        director = staff(clinic, Role.MEDICAL_DIRECTOR)
    return services.formula_create(
        caller=Caller(user=director),
        clinic=clinic,
        name=f"One {code}",
        content=services.FormulaContent(
            components=[
                services.ComponentIn(services.ingredients_for(clinic).get(code=code).pk, "3", "mg/mL")
            ],
            total_volume_ml="2",
            indications=[indication],
        ),
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"jurisdiction": "BR"}, "jurisdiction"),  # would never apply to a US clinic
        ({"jurisdiction": "US-CA"}, "jurisdiction"),  # another state
        ({"jurisdiction": "usa!"}, "jurisdiction"),
        ({"status": "legal"}, "status"),
        ({"indications": ["fat"]}, "indications"),
        ({"source": ""}, "source"),
        ({"use": "a\x00"}, "use"),
        ({"ingredient_id": 2**70}, "ingredient_id"),
        ({"ingredient_id": 2**62}, "ingredient_id"),
    ],
)
def test_bad_clinic_statuses_are_refused(world: World, changes: dict[str, Any], field: str) -> None:
    world.clinic.country, world.clinic.jurisdiction = "US", "US-NY"
    world.clinic.save()
    body = {
        "ingredient_id": ingredient("biotin").pk,
        "jurisdiction": "US",
        "status": "approved",
        "use": "u",
        "source": "s",
        **changes,
    }
    client = client_for(world.users["practitioner"])
    before = (RegulatoryStatus.objects.count(), AuditEvent.objects.count())
    assert field in error_fields(post(client, "/api/v1/formulary/regulatory-statuses", body))
    assert (RegulatoryStatus.objects.count(), AuditEvent.objects.count()) == before


def test_seeded_and_foreign_reference_rows_cannot_be_removed(world: World) -> None:
    client = client_for(world.users["medical_director"])
    seeded = RegulatoryStatus.objects.filter(clinic__isnull=True).first()
    assert seeded is not None
    assert client.delete(f"/api/v1/formulary/regulatory-statuses/{seeded.pk}").status_code == 422
    foreign = RegulatoryStatus.objects.create(
        clinic=world.other_clinic, jurisdiction="FR", status="approved", use="u", source="s"
    )
    assert client.delete(f"/api/v1/formulary/regulatory-statuses/{foreign.pk}").status_code == 404
    caution = ingredient("lidocaine").cautions.first() or ingredient("phosphatidylcholine").cautions.first()
    assert caution is not None
    assert client.delete(f"/api/v1/formulary/cautions/{caution.pk}").status_code == 422
    assert RegulatoryStatus.objects.filter(pk__in=[seeded.pk, foreign.pk]).count() == 2


def _house_ingredient(world: World) -> Ingredient:
    return services.ingredient_create(
        caller=Caller(user=world.users["practitioner"]),
        clinic=world.clinic,
        data={"code": "house-dca", "name": "House DCA", "ingredient_class": "lipolytic"},
    )


def test_cautions_and_limits_on_the_clinics_own_ingredients(world: World) -> None:
    house = _house_ingredient(world)
    client = client_for(world.users["practitioner"])
    caution = post(
        client,
        f"/api/v1/formulary/ingredients/{house.pk}/cautions",
        {"group": "soy", "note": "made with soy lecithin", "source": "supplier sheet"},
    )
    assert caution.status_code == 201, caution.content
    again = post(
        client,
        f"/api/v1/formulary/ingredients/{house.pk}/cautions",
        {"group": "soy", "note": "twice", "source": "s"},
    )
    assert error_fields(again) == {"group"}
    limit = post(
        client,
        f"/api/v1/formulary/ingredients/{house.pk}/limits",
        {
            "label": "House DCA 10 mg/mL",
            "concentration": "10",
            "concentration_unit": "mg/mL",
            "max_volume_per_injection_ml": "0.2",
            "max_injections_per_session": 50,
            "max_volume_per_session_ml": "10",
            "min_interval_days": 28,
            "max_sessions": 6,
            "source": "label",
        },
    )
    assert limit.status_code == 201, limit.content
    data = client.get(f"/api/v1/formulary/ingredients/{house.pk}").json()
    assert [c["group"] for c in data["cautions"]] == ["soy"]
    assert data["limits"][0]["max_injections_per_session"] == 50
    facts = services.planned_formula_facts(
        clinic=world.clinic, formula_id=_lipolysis_like(world, world.clinic, "house-dca", "submental-fat").pk
    )
    assert [c.group for c in facts.ingredients[0].cautions] == ["soy"]
    # Seeded ingredients are not the clinic's to change; other clinics never see the house ingredient.
    assert (
        post(
            client,
            f"/api/v1/formulary/ingredients/{ingredient('caffeine').pk}/cautions",
            {"group": "soy", "note": "n", "source": "s"},
        ).status_code
        == 422
    )
    other = client_for(world.users["practitioner"])
    assert (
        other.get(f"/api/v1/formulary/ingredients/{house.pk}?clinic_id={world.other_clinic.pk}").status_code
        == 403
    )
    assert client.delete(f"/api/v1/formulary/limits/{limit.json()['id']}").status_code == 204
    assert client.delete(f"/api/v1/formulary/cautions/{caution.json()['id']}").status_code == 204
    assert not house.cautions.exists() and not house.limits.exists()
    changes = AuditEvent.objects.filter(action=Action.FORMULARY_CHANGE).values_list("detail", flat=True)
    assert [(d["what"], d["op"]) for d in changes] == [
        ("ingredient", "create"),
        ("caution", "create"),
        ("product-limit", "create"),
        ("product-limit", "delete"),
        ("caution", "delete"),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_volume_per_injection_ml": None, "max_injections_per_session": None}, "__all__"),
        ({"max_volume_per_injection_ml": "20"}, "max_volume_per_injection_ml"),  # more than per session
        ({"max_volume_per_injection_ml": "0.0001"}, "max_volume_per_injection_ml"),
        ({"max_injections_per_session": 10**6}, "max_injections_per_session"),
        ({"concentration": "1e13"}, "concentration"),
        ({"concentration": "0"}, "concentration"),
        ({"label": ""}, "label"),
    ],
)
def test_bad_limits_are_refused(world: World, changes: dict[str, Any], field: str) -> None:
    house = _house_ingredient(world)
    body = {
        "label": "L",
        "concentration": "10",
        "concentration_unit": "mg/mL",
        "max_volume_per_injection_ml": "0.2",
        "max_injections_per_session": 50,
        "source": "label",
        **changes,
    }
    if "max_volume_per_injection_ml" in changes and changes["max_volume_per_injection_ml"] == "20":
        body["max_volume_per_session_ml"] = "10"
    body = {key: value for key, value in body.items() if value is not None}
    before = house.limits.count()
    assert field in error_fields(
        post(
            client_for(world.users["practitioner"]), f"/api/v1/formulary/ingredients/{house.pk}/limits", body
        )
    )
    assert house.limits.count() == before


def test_reference_pages(world: World, setup: Setup) -> None:
    """Add an ingredient, a caution, a limit, a clinic status and a product through the pages."""
    client = client_for(world.users["medical_director"])
    response = client.post(
        "/formulary/ingredients/new/",
        {
            "code": "house-serum",
            "name": "House serum",
            "ingredient_class": "skin-conditioner",
            "allergy_groups": ["soy"],
        },
    )
    assert response.status_code == 302, response.content.decode()
    house = Ingredient.objects.get(clinic=world.clinic, code="house-serum")
    assert list(house.allergy_groups.values_list("code", flat=True)) == ["soy"]
    duplicate = client.post(
        "/formulary/ingredients/new/", {"code": "lidocaine", "name": "X", "ingredient_class": "vitamin"}
    )
    assert duplicate.status_code == 400 and "exists already" in duplicate.content.decode()
    url = f"/formulary/ingredients/{house.pk}/"
    assert client.post(f"{url}cautions/", {"group": "paba", "note": "n", "source": "s"}).status_code == 302
    assert client.post(f"{url}cautions/", {"group": "paba", "note": "n", "source": "s"}).status_code == 400
    limit = {
        "label": "L",
        "concentration": "1",
        "concentration_unit": "%",
        "max_sessions": "4",
        "source": "s",
    }
    assert client.post(f"{url}limits/", limit).status_code == 302
    assert client.post(f"{url}limits/", {**limit, "max_sessions": ""}).status_code == 400
    page = client.get(url).content.decode()
    assert "PABA" in page or "Para-aminobenzoic" in page
    assert "≤ 4" in page
    caution = house.cautions.get()
    assert client.post(f"/formulary/cautions/{caution.pk}/delete/").status_code == 302
    assert not house.cautions.exists()
    limit_row = house.limits.get()
    assert client.post(f"/formulary/limits/{limit_row.pk}/delete/").status_code == 302

    response = client.post(
        "/formulary/regulatory/",
        {
            "ingredient": ingredient("biotin").pk,
            "jurisdiction": "FR",
            "status": "not-approved",
            "use": "no marketing authorisation for injection",
            "source": "ANSM database, 2026",
        },
    )
    assert response.status_code == 302
    row = RegulatoryStatus.objects.get(clinic=world.clinic)
    listing = client.get("/formulary/regulatory/").content.decode()
    assert "no marketing authorisation for injection" in listing
    detail = client.get(f"/formulary/ingredients/{ingredient('biotin').pk}/").content.decode()
    assert f'data-speaks="{row.pk}"' in detail
    bad = client.post(
        "/formulary/regulatory/", {"jurisdiction": "US", "status": "banned", "use": "u", "source": "s"}
    )
    assert bad.status_code == 400 and "never apply" in bad.content.decode()
    assert client.post(f"/formulary/regulatory/{row.pk}/delete/").status_code == 302
    assert not RegulatoryStatus.objects.filter(clinic=world.clinic).exists()

    response = client.post(
        "/formulary/products/new/",
        {
            "name": "Kybella 2 mL",
            "supplier": "Allergan",
            "vial_volume_ml": "2",
            "beyond_use_hours": "24",
            "low_stock_vials": "2",
            "components-TOTAL_FORMS": "4",
            "components-INITIAL_FORMS": "0",
            "components-0-ingredient": ingredient("deoxycholic-acid").pk,
            "components-0-strength": "10",
            "components-0-unit": "mg/mL",
        },
    )
    product = type(setup.ha).objects.get(name="Kybella 2 mL")
    assert response.status_code == 302 and response["Location"].endswith(f"?product={product.pk}")
    assert client.get(response["Location"]).status_code == 200


# --- field-level notes, the prepare page's audit, the current version only ----------------------------------


def test_preparation_notes_are_for_clinical_roles_only(world: World, setup: Setup) -> None:
    """targets.md #3: the front desk sees preparations (to contact patients after a recall), never the
    clinical notes on them; nor does the clinic administrator."""
    ensure_intake(world.patient, setup.director)
    preparation = services.preparation_create(
        caller=setup.caller,
        patient=world.patient,
        formula_version=setup.version,
        lines=setup.lines(),
        notes="Bruised easily last time; warned about arnica.",
    )
    url = f"/api/v1/formulary/preparations/{preparation.pk}"
    for role, visible in [
        ("practitioner", True),
        ("medical_director", True),
        ("front_desk", False),
        ("clinic_admin", False),
    ]:
        client = client_for(world.users[role])
        data = client.get(url).json()
        assert (data["notes"] is not None) == visible, role
        if not visible:
            assert data["notes"] is None and "arnica" not in client.get(url).content.decode()
            for page in (
                f"/formulary/patients/{world.patient.pk}/lots/",
                f"/formulary/lots/{setup.ha_lot.pk}/exposure/",
                f"/formulary/lots/{setup.ha_lot.pk}/exposure.csv",
            ):
                assert "arnica" not in client.get(page).content.decode(), (role, page)


def test_the_prepare_page_audits_showing_the_patient(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    assert client.get(f"/formulary/patients/{world.patient.pk}/prepare/").status_code == 200
    event = AuditEvent.objects.get(seq__gt=start)
    assert (event.action, event.patient_id) == (Action.PATIENT_READ, world.patient.pk)


def test_only_the_current_version_of_a_formula_in_use_is_prepared(world: World, setup: Setup) -> None:
    setup.prepare(world.patient)  # version 1 is used: a revision makes version 2
    content = services.FormulaContent(
        components=[
            services.ComponentIn(ingredient("hyaluronic-acid").pk, "4", "mg/mL"),
            services.ComponentIn(ingredient("vitamin-c").pk, "50", "mg/mL"),
        ],
        total_volume_ml="3.5",
        indications=["rejuvenation"],
        diluent_id=ingredient("sodium-chloride").pk,
    )
    services.formula_revise(caller=setup.caller, formula=setup.formula, content=content)
    client = client_for(world.users["practitioner"])
    before = counts()
    response = post(client, "/api/v1/formulary/preparations", _api_preparation(setup, world.patient))
    assert error_fields(response) == {"formula_version_id"}
    assert "replaced by version 2" in response.json()["errors"][0]["message"]
    page = client.post(
        f"/formulary/patients/{world.patient.pk}/prepare/",
        {"lines-TOTAL_FORMS": "6", "lines-INITIAL_FORMS": "0", "formula_version": setup.version.pk},
    )
    assert page.status_code == 400 and "replaced by version 2" in page.content.decode()
    Formula.objects.filter(pk=setup.formula.pk).update(is_active=False)
    current = services.current_version(setup.formula)
    response = post(
        client,
        "/api/v1/formulary/preparations",
        _api_preparation(setup, world.patient, formula_version_id=current.pk),
    )
    assert error_fields(response) == {"formula_version_id"}
    assert "no longer in use" in response.json()["errors"][0]["message"]
    assert counts()[4:6] == before[4:6]  # no preparation, no line


def test_the_lot_page_runs_a_constant_number_of_queries(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    url = f"/formulary/lots/{setup.vitc_lot.pk}/"
    client.get(url)
    one = _count_queries(client, url)
    lot = Lot.objects.get(pk=setup.vitc_lot.pk)
    Lot.objects.filter(pk=lot.pk).update(received_vials=6)
    StockMovement.objects.create(
        clinic=world.clinic, lot=lot, kind="received", quantity_ml=Decimal("40"), at=timezone.now()
    )
    for _ in range(4):
        services.vial_open(caller=setup.caller, lot=lot)
    html = client.get(url).content.decode()
    assert html.count('action="/formulary/vials/') == 5
    assert _count_queries(client, url) == one

"""The formulary end to end: catalogue, formulas and their versions, stock as a sum of movements, preparations
and the lots they draw, recalls and exposure (page, CSV, PDF, messages), bad input, audit and query counts."""

from __future__ import annotations

import csv
import io
import json
import random
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
from mesoclinic.formulary import services
from mesoclinic.formulary.models import (
    Formula,
    FormulaComponent,
    FormulaVersion,
    ImmutableError,
    Ingredient,
    Lot,
    Preparation,
    PreparationLine,
    RegulatoryStatus,
    StockMovement,
)
from mesoclinic.formulary.rules import PatientFacts, formula_findings
from mesoclinic.patients.models import Patient
from tests.conftest import World, client_for
from tests.factories import ClinicFactory, PatientFactory
from tests.formulary_setup import Setup, build, ingredient


@pytest.fixture
def setup(world: World) -> Setup:
    return build(world.clinic, world.users["medical_director"])


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
    us_dc = RegulatoryStatus.objects.get(ingredient__code="deoxycholic-acid", jurisdiction="US")
    assert us_dc.status == "approved-other-indication" and "submental" in us_dc.use


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
        ("lots", {"number": "X", "expires_on": "2099-01-01", "received_vials": 0}, {"received_vials"}),
        ("lots", {"number": "X", "expires_on": "2099-01-01", "received_vials": -3}, {"received_vials"}),
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
            {"components.0.unit"},
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
        body = {**body, "product_id": setup.ha.pk}
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
    for patient in patients:
        for _ in range(rng.randrange(0, 3)):
            chosen = rng.choice([setup, second])
            chosen.prepare(patient, vitc_ml="0.1")
            exposed[chosen.ha_lot.pk].add(patient.pk)
    # A patient of another clinic drawing from that clinic's own lots is never in this clinic's report.
    foreign = build(world.other_clinic, prefix="F-")
    foreign.prepare(world.foreign_patient)
    for lot_pk, expected in exposed.items():
        lot = Lot.objects.get(pk=lot_pk)
        report = services.lot_exposure(caller=setup.caller, lot=lot)
        assert {row.patient.pk for row in report.patients} == expected
        assert report.preparation_count == Preparation.objects.filter(lines__lot=lot).distinct().count()
        assert all(
            row.patient.phone == Patient.objects.get(pk=row.patient.pk).phone for row in report.patients
        )


def test_exposure_page_csv_and_pdf(world: World, setup: Setup) -> None:
    world.patient.preferred_language = "fr"
    world.patient.phone = "+33 6 12 34 56 78"
    world.patient.save()
    world.own_patient.phone = "=HYPERLINK(evil)"
    world.own_patient.save()
    setup.prepare(world.patient)
    setup.prepare(world.own_patient)
    services.lot_recall(caller=setup.caller, lot=setup.ha_lot, reason="Particles")
    client = client_for(world.users["practitioner"])
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    page = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "LEFÈVRE" in html and "MARTIN" in html and "+33 6 12 34 56 78" in html
    assert "Bonjour Hélène" in html and "Dear Claire" in html and "HA-1" in html

    response = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure.csv")
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["lot", "HA-1"]
    assert {row[1] for row in rows[2:]} == {"Lefèvre", "Martin"}
    assert "'=HYPERLINK(evil)" in {row[4] for row in rows[2:]}  # no spreadsheet formula

    pdf = client.get(f"/formulary/lots/{setup.ha_lot.pk}/exposure.pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("attachment;") and "no-store" in pdf["Cache-Control"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "HA-1" in text and "LEFÈVRE" in text and "MARTIN" in text and "Particles" in text

    actions = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq").values_list("action", "detail"))
    assert [a for a, _ in actions] == [Action.EXPOSURE_READ, Action.PATIENT_EXPORT, Action.PATIENT_PRINT]
    assert all(set(detail["patients"]) == {world.patient.pk, world.own_patient.pk} for _, detail in actions)


def test_the_recall_report_runs_a_constant_number_of_queries(world: World, setup: Setup) -> None:
    client = client_for(world.users["practitioner"])
    setup.prepare(world.patient)
    url = f"/formulary/lots/{setup.ha_lot.pk}/exposure/"
    client.get(url)
    small = _count_queries(client, url)
    for index in range(9):
        setup.prepare(PatientFactory.create(clinic=world.clinic, family_name=f"Many{index}"))
    assert _count_queries(client, url) == small
    api = f"/api/v1/formulary/lots/{setup.ha_lot.pk}/exposure"
    assert _count_queries(client, api) <= small + 2


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

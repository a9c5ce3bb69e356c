"""targets.md #1 and #2 for the formulary: every role × every formulary page and API operation × {own clinic,
other clinic}. The expectations are written out by hand, not derived from the policy module."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from mesoclinic.formulary.models import Formula, Lot, Preparation, Product, StockMovement
from tests.conftest import ALL_ROLES, World, client_for
from tests.formulary_setup import Setup, build, ingredient

OK = {200, 201, 302}
VIEWERS = {"clinic_admin", "practitioner", "medical_director", "front_desk"}
MANAGERS = {"clinic_admin", "practitioner", "medical_director"}
STOCK = {"clinic_admin", "practitioner", "medical_director", "front_desk"}
PREPARERS = {"practitioner", "medical_director"}
RECALLERS = {"clinic_admin", "medical_director"}
EXPOSURE = {"clinic_admin", "practitioner", "medical_director", "front_desk"}


@dataclass
class Target:
    setup: Setup
    patient_id: int
    preparation_id: int


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    url: Callable[[Target], str]
    allowed: frozenset[str]
    body: Callable[[Target], dict[str, Any]] | None = None
    json_body: bool = False
    # Clinic-level operations name the clinic by the current clinic (pages) or clinic_id (API); object
    # operations name an object of that clinic.
    clinic_level: bool = False


def _formula_body(t: Target) -> dict[str, Any]:
    return {
        "name": "Matrix formula",
        "components": [{"ingredient_id": ingredient("caffeine").pk, "concentration": "20", "unit": "mg/mL"}],
        "total_volume_ml": "5",
        "indications": ["cellulite"],
        "clinic_id": t.setup.clinic.pk,
    }


def _product_body(t: Target) -> dict[str, Any]:
    return {
        "name": "Matrix product",
        "supplier": "S",
        "vial_volume_ml": "5",
        "beyond_use_hours": 1,
        "components": [{"ingredient_id": ingredient("caffeine").pk, "strength": "20", "unit": "mg/mL"}],
        "clinic_id": t.setup.clinic.pk,
    }


def _preparation_body(t: Target) -> dict[str, Any]:
    s = t.setup
    return {
        "patient_id": t.patient_id,
        "formula_version_id": s.version.pk,
        "lines": [
            {"lot_id": s.ha_lot.pk, "volume_ml": "2"},
            {"lot_id": s.vitc_lot.pk, "volume_ml": "0.5", "vial_id": s.vial.pk},
            {"lot_id": s.saline_lot.pk, "volume_ml": "1"},
        ],
    }


def _content(t: Target) -> dict[str, Any]:
    body = _formula_body(t)
    del body["name"], body["clinic_id"]
    return body


OPERATIONS = [
    # pages
    Operation("page-home", "get", lambda t: "/formulary/", frozenset(VIEWERS), clinic_level=True),
    Operation(
        "page-ingredients", "get", lambda t: "/formulary/ingredients/", frozenset(VIEWERS), clinic_level=True
    ),
    Operation("page-stock", "get", lambda t: "/formulary/stock/", frozenset(VIEWERS), clinic_level=True),
    Operation(
        "page-formula-new",
        "get",
        lambda t: "/formulary/formulas/new/",
        frozenset(MANAGERS),
        clinic_level=True,
    ),
    Operation("page-lot-new", "get", lambda t: "/formulary/lots/new/", frozenset(STOCK), clinic_level=True),
    Operation(
        "page-formula", "get", lambda t: f"/formulary/formulas/{t.setup.formula.pk}/", frozenset(VIEWERS)
    ),
    Operation(
        "page-formula-revise",
        "get",
        lambda t: f"/formulary/formulas/{t.setup.formula.pk}/revise/",
        frozenset(MANAGERS),
    ),
    Operation("page-lot", "get", lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/", frozenset(VIEWERS)),
    Operation(
        "page-movement",
        "post",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/movements/",
        frozenset(STOCK),
        lambda t: {"kind": "wasted", "quantity_ml": "1", "reason": "x"},
    ),
    Operation(
        "page-vial-open",
        "post",
        lambda t: f"/formulary/lots/{t.setup.vitc_lot.pk}/vials/",
        frozenset(PREPARERS),
        lambda t: {},
    ),
    Operation(
        "page-vial-close",
        "post",
        lambda t: f"/formulary/vials/{t.setup.vial.pk}/close/",
        frozenset(STOCK),
        lambda t: {},
    ),
    Operation(
        "page-recall",
        "post",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/recall/",
        frozenset(RECALLERS),
        lambda t: {"reason": "matrix"},
    ),
    Operation(
        "page-exposure",
        "get",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/exposure/",
        frozenset(EXPOSURE),
    ),
    Operation(
        "page-exposure-csv",
        "get",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/exposure.csv",
        frozenset(EXPOSURE),
    ),
    Operation(
        "page-exposure-pdf",
        "get",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/exposure.pdf",
        frozenset(EXPOSURE),
    ),
    Operation(
        "page-patient-lots", "get", lambda t: f"/formulary/patients/{t.patient_id}/lots/", frozenset(EXPOSURE)
    ),
    Operation(
        "page-prepare", "get", lambda t: f"/formulary/patients/{t.patient_id}/prepare/", frozenset(PREPARERS)
    ),
    # API
    Operation(
        "api-ingredients",
        "get",
        lambda t: f"/api/v1/formulary/ingredients?clinic_id={t.setup.clinic.pk}",
        frozenset(VIEWERS),
        clinic_level=True,
    ),
    Operation(
        "api-ingredient-create",
        "post",
        lambda t: "/api/v1/formulary/ingredients",
        frozenset(MANAGERS),
        lambda t: {
            "code": "matrix",
            "name": "Matrix",
            "ingredient_class": "vitamin",
            "clinic_id": t.setup.clinic.pk,
        },
        True,
        clinic_level=True,
    ),
    Operation(
        "api-formulas",
        "get",
        lambda t: f"/api/v1/formulary/formulas?clinic_id={t.setup.clinic.pk}",
        frozenset(VIEWERS),
        clinic_level=True,
    ),
    Operation(
        "api-formula-create",
        "post",
        lambda t: "/api/v1/formulary/formulas",
        frozenset(MANAGERS),
        _formula_body,
        True,
        clinic_level=True,
    ),
    Operation(
        "api-formula", "get", lambda t: f"/api/v1/formulary/formulas/{t.setup.formula.pk}", frozenset(VIEWERS)
    ),
    Operation(
        "api-formula-revise",
        "post",
        lambda t: f"/api/v1/formulary/formulas/{t.setup.formula.pk}/versions",
        frozenset(MANAGERS),
        _content,
        True,
    ),
    Operation(
        "api-products",
        "get",
        lambda t: f"/api/v1/formulary/products?clinic_id={t.setup.clinic.pk}",
        frozenset(VIEWERS),
        clinic_level=True,
    ),
    Operation(
        "api-product-create",
        "post",
        lambda t: "/api/v1/formulary/products",
        frozenset(STOCK),
        _product_body,
        True,
        clinic_level=True,
    ),
    Operation(
        "api-product", "get", lambda t: f"/api/v1/formulary/products/{t.setup.ha.pk}", frozenset(VIEWERS)
    ),
    Operation(
        "api-lot-receive",
        "post",
        lambda t: "/api/v1/formulary/lots",
        frozenset(STOCK),
        lambda t: {
            "product_id": t.setup.ha.pk,
            "number": "M-1",
            "expires_on": "2099-01-01",
            "received_vials": 1,
        },
        True,
    ),
    Operation("api-lot", "get", lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}", frozenset(VIEWERS)),
    Operation(
        "api-movements",
        "get",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/movements",
        frozenset(VIEWERS),
    ),
    Operation(
        "api-movement",
        "post",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/movements",
        frozenset(STOCK),
        lambda t: {"kind": "wasted", "quantity_ml": "1"},
        True,
    ),
    Operation(
        "api-vial-open",
        "post",
        lambda t: f"/api/v1/formulary/lots/{t.setup.vitc_lot.pk}/vials",
        frozenset(PREPARERS),
        lambda t: {},
        True,
    ),
    Operation(
        "api-vial-close",
        "post",
        lambda t: f"/api/v1/formulary/vials/{t.setup.vial.pk}/close",
        frozenset(STOCK),
        lambda t: {},
        True,
    ),
    Operation(
        "api-stock",
        "get",
        lambda t: f"/api/v1/formulary/stock?clinic_id={t.setup.clinic.pk}",
        frozenset(VIEWERS),
        clinic_level=True,
    ),
    Operation(
        "api-prepare",
        "post",
        lambda t: "/api/v1/formulary/preparations",
        frozenset(PREPARERS),
        _preparation_body,
        True,
    ),
    Operation(
        "api-preparation",
        "get",
        lambda t: f"/api/v1/formulary/preparations/{t.preparation_id}",
        frozenset(EXPOSURE),
    ),
    Operation(
        "api-recall",
        "post",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/recall",
        frozenset(RECALLERS),
        lambda t: {"reason": "matrix"},
        True,
    ),
    Operation(
        "api-exposure",
        "get",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/exposure",
        frozenset(EXPOSURE),
    ),
    Operation(
        "api-patient-lots",
        "get",
        lambda t: f"/api/v1/formulary/patients/{t.patient_id}/lots",
        frozenset(EXPOSURE),
    ),
]


def _target(world: World, which: str) -> Target:
    if which == "own":
        setup = build(world.clinic, world.users["medical_director"])
        patient = world.patient
    else:
        setup = build(world.other_clinic, prefix="F-")
        patient = world.foreign_patient
    preparation = setup.prepare(patient)
    return Target(setup=setup, patient_id=patient.pk, preparation_id=preparation.pk)


def _call(client: Client, operation: Operation, target: Target) -> int:
    url = operation.url(target)
    body = operation.body(target) if operation.body else None
    if operation.method == "get":
        response = client.get(url)
    elif operation.json_body:
        response = client.post(url, data=json.dumps(body), content_type="application/json")
    else:
        response = client.post(url, data=body or {})
    return int(response.status_code)


def _state() -> tuple[int, ...]:
    return (
        Formula.objects.count(),
        Product.objects.count(),
        Lot.objects.count(),
        Lot.objects.filter(recalled_at__isnull=False).count(),
        StockMovement.objects.count(),
        Preparation.objects.count(),
    )


def _check(world: World, role: str, operation: Operation, which: str, target: Target) -> str | None:
    """One cell of the matrix; what went wrong, or None."""
    client = client_for(world.users[role])
    before = _state()
    status = _call(client, operation, target)
    if which == "foreign" and operation.clinic_level and operation.name.startswith("page-"):
        # Pages work in the user's current clinic: the other clinic is never shown.
        if (status in OK) != (role in operation.allowed):
            return f"status {status}"
        content = client.get(operation.url(target)).content
        if b"F-HA" in content or b"F-Facial" in content:
            return "shows the other clinic"
        return None
    if which == "foreign":
        # Another clinic's objects are never revealed (404); naming another clinic is refused (403).
        expected = {403} if operation.clinic_level else {404}
        if status not in expected:
            return f"status {status}, expected {expected}"
    elif role in operation.allowed:
        if status not in OK:
            return f"status {status}, expected success"
        return None
    elif status not in {403, 404}:
        return f"status {status}, expected 403/404"
    if _state() != before:
        return "wrote something"
    return None


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
@pytest.mark.parametrize("which", ["own", "foreign"])
def test_formulary_operation_matrix(world: World, operation: Operation, which: str) -> None:
    """Every role on the same data: each call runs in a savepoint rolled back afterwards, so one role's write
    (a recall, a preparation) never changes what the next role meets."""
    target = _target(world, which)
    problems = {}
    for role in ALL_ROLES:
        with transaction.atomic():
            problem = _check(world, role, operation, which, target)
            transaction.set_rollback(True)
        if problem:
            problems[role] = problem
    assert problems == {}


def test_every_formulary_route_is_in_the_matrix() -> None:
    from mesoclinic.formulary.api import router
    from mesoclinic.formulary.urls import urlpatterns

    api_operations = sum(len(view.operations) for view in router.path_operations.values())
    assert (
        api_operations == len([op for op in OPERATIONS if op.name.startswith("api-")]) + 3
    )  # + allergy groups,
    # ingredient read and version read, covered below
    assert len(urlpatterns) == len([op for op in OPERATIONS if op.name.startswith("page-")])


@pytest.mark.parametrize("role", ALL_ROLES)
def test_catalogue_reads(world: World, role: str) -> None:
    client = client_for(world.users[role])
    lidocaine = ingredient("lidocaine").pk
    for url in ("/api/v1/formulary/allergy-groups", f"/api/v1/formulary/ingredients/{lidocaine}"):
        status = client.get(url).status_code
        assert (status == 200) == (role in VIEWERS), (url, status)


def test_version_read_is_clinic_scoped(world: World) -> None:
    own = build(world.clinic, world.users["medical_director"])
    foreign = build(world.other_clinic, prefix="F-")
    client = client_for(world.users["front_desk"])
    assert client.get(f"/api/v1/formulary/formulas/{own.formula.pk}/versions/1").status_code == 200
    assert client.get(f"/api/v1/formulary/formulas/{foreign.formula.pk}/versions/1").status_code == 404

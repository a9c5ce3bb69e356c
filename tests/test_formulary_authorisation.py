"""targets.md #1 and #2 for the formulary: every role × every formulary page and API operation, every
method each serves × {own clinic, other clinic}. The expectations are written out by hand, not derived from
the policy module; a route or method missing from the matrix fails the coverage tests at the end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern

from mesoclinic.formulary import services
from mesoclinic.formulary.models import (
    CrossSensitivity,
    Formula,
    FormulaVersion,
    Ingredient,
    Lot,
    Preparation,
    Product,
    ProductLimit,
    RegulatoryStatus,
    StockMovement,
)
from tests.conftest import ALL_ROLES, World, client_for
from tests.formulary_setup import Setup, build, ingredient

OK = {200, 201, 204, 302}
VIEWERS = frozenset({"clinic_admin", "practitioner", "medical_director", "front_desk"})
MANAGERS = frozenset({"clinic_admin", "practitioner", "medical_director"})
STOCK = frozenset({"clinic_admin", "practitioner", "medical_director", "front_desk"})
PREPARERS = frozenset({"practitioner", "medical_director"})
RECALLERS = frozenset({"clinic_admin", "medical_director"})
EXPOSURE = frozenset({"clinic_admin", "practitioner", "medical_director", "front_desk"})
# A page of the current clinic answers 403 before looking anything up when the user has no formulary
# permission there at all (which tells nothing about another clinic's objects); otherwise 404.
NO_FORMULARY_OR_HIDDEN = frozenset({403, 404})


@dataclass
class Target:
    setup: Setup
    patient_id: int
    preparation_id: int
    house: Ingredient  # the clinic's own ingredient
    caution_id: int
    limit_id: int
    status_id: int  # the clinic's own regulatory status


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    route: str  # the page's URL name, or the API operation's path
    url: Callable[[Target], str]
    allowed: frozenset[str]
    body: Callable[[Target], dict[str, Any]] | None = None
    json_body: bool = False
    # "object": names an object of the target's clinic (another clinic's: 404 for everyone);
    # "clinic": names the clinic (API: clinic_id; another clinic's: 403) or works in the current clinic
    #   (pages: the other clinic is never shown, and a form naming its objects is refused);
    # "global": names nothing of any clinic (the same call in both cases).
    scope: str = "object"
    foreign_status: frozenset[int] = frozenset({404})


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


def _formula_form(t: Target) -> dict[str, Any]:
    """The new-formula page's form, with the target clinic's own ingredient (refused for another clinic)."""
    return {
        "components-TOTAL_FORMS": "6",
        "components-INITIAL_FORMS": "0",
        "name": "Matrix page formula",
        "indications": ["cellulite"],
        "total_volume_ml": "5",
        "components-0-ingredient": t.house.pk,
        "components-0-concentration": "20",
        "components-0-unit": "mg/mL",
    }


def _revise_form(t: Target) -> dict[str, Any]:
    body = _formula_form(t)
    body["components-0-ingredient"] = ingredient("caffeine").pk
    del body["name"]
    return body


def _lot_form(t: Target) -> dict[str, Any]:
    return {
        "product": t.setup.ha.pk,
        "number": "M-PAGE",
        "expires_on": (t.setup.today + timedelta(days=365)).isoformat(),
        "received_vials": "2",
    }


def _prepare_form(t: Target) -> dict[str, Any]:
    s = t.setup
    return {
        "lines-TOTAL_FORMS": "6",
        "lines-INITIAL_FORMS": "0",
        "formula_version": s.version.pk,
        "lines-0-lot": s.ha_lot.pk,
        "lines-0-volume_ml": "2",
        "lines-1-lot": s.vitc_lot.pk,
        "lines-1-volume_ml": "0.5",
        "lines-1-vial": s.vial.pk,
        "lines-2-lot": s.saline_lot.pk,
        "lines-2-volume_ml": "1",
    }


def _product_form(t: Target) -> dict[str, Any]:
    return {
        "name": "Matrix page product",
        "supplier": "S",
        "vial_volume_ml": "5",
        "beyond_use_hours": "24",
        "low_stock_vials": "0",
        "components-TOTAL_FORMS": "4",
        "components-INITIAL_FORMS": "0",
        "components-0-ingredient": t.house.pk,
        "components-0-strength": "1",
        "components-0-unit": "mg/mL",
    }


def _status_form(t: Target) -> dict[str, Any]:
    return {
        "ingredient": t.house.pk,
        "jurisdiction": "FR",
        "status": "not-approved",
        "use": "u",
        "source": "s",
    }


def _limit(t: Target) -> dict[str, Any]:
    return {
        "label": "Matrix limit",
        "concentration": "1",
        "concentration_unit": "%",
        "max_sessions": 4,
        "source": "s",
    }


PAGE_OPERATIONS = [
    Operation("page-home", "get", "home", lambda t: "/formulary/", VIEWERS, scope="clinic"),
    Operation(
        "page-ingredients", "get", "ingredients", lambda t: "/formulary/ingredients/", VIEWERS, scope="clinic"
    ),
    Operation(
        "page-ingredient-new",
        "get",
        "ingredient_new",
        lambda t: "/formulary/ingredients/new/",
        MANAGERS,
        scope="clinic",
    ),
    Operation(
        "page-ingredient-new-post",
        "post",
        "ingredient_new",
        lambda t: "/formulary/ingredients/new/",
        MANAGERS,
        lambda t: {"code": "matrix-page", "name": "Matrix page", "ingredient_class": "vitamin"},
        scope="global",  # names nothing of any clinic: a clinic's own ingredient, in the current clinic
    ),
    Operation(
        "page-ingredient",
        "get",
        "ingredient",
        lambda t: f"/formulary/ingredients/{t.house.pk}/",
        VIEWERS,
        foreign_status=NO_FORMULARY_OR_HIDDEN,
    ),
    Operation(
        "page-caution-add",
        "post",
        "caution_add",
        lambda t: f"/formulary/ingredients/{t.house.pk}/cautions/",
        MANAGERS,
        lambda t: {"group": "fish", "note": "n", "source": "s"},
        foreign_status=NO_FORMULARY_OR_HIDDEN,
    ),
    Operation(
        "page-limit-add",
        "post",
        "limit_add",
        lambda t: f"/formulary/ingredients/{t.house.pk}/limits/",
        MANAGERS,
        lambda t: {**_limit(t), "max_sessions": "4"},
        foreign_status=NO_FORMULARY_OR_HIDDEN,
    ),
    Operation(
        "page-caution-delete",
        "post",
        "caution_delete",
        lambda t: f"/formulary/cautions/{t.caution_id}/delete/",
        MANAGERS,
        lambda t: {},
    ),
    Operation(
        "page-limit-delete",
        "post",
        "limit_delete",
        lambda t: f"/formulary/limits/{t.limit_id}/delete/",
        MANAGERS,
        lambda t: {},
    ),
    Operation(
        "page-regulatory", "get", "regulatory", lambda t: "/formulary/regulatory/", VIEWERS, scope="clinic"
    ),
    Operation(
        "page-regulatory-post",
        "post",
        "regulatory",
        lambda t: "/formulary/regulatory/",
        MANAGERS,
        _status_form,
        scope="clinic",
    ),
    Operation(
        "page-regulatory-delete",
        "post",
        "regulatory_delete",
        lambda t: f"/formulary/regulatory/{t.status_id}/delete/",
        MANAGERS,
        lambda t: {},
    ),
    Operation("page-stock", "get", "stock", lambda t: "/formulary/stock/", VIEWERS, scope="clinic"),
    Operation(
        "page-formula-new",
        "get",
        "formula_new",
        lambda t: "/formulary/formulas/new/",
        MANAGERS,
        scope="clinic",
    ),
    Operation(
        "page-formula-new-post",
        "post",
        "formula_new",
        lambda t: "/formulary/formulas/new/",
        MANAGERS,
        _formula_form,
        scope="clinic",
    ),
    Operation(
        "page-formula", "get", "formula", lambda t: f"/formulary/formulas/{t.setup.formula.pk}/", VIEWERS
    ),
    Operation(
        "page-formula-revise",
        "get",
        "formula_revise",
        lambda t: f"/formulary/formulas/{t.setup.formula.pk}/revise/",
        MANAGERS,
    ),
    Operation(
        "page-formula-revise-post",
        "post",
        "formula_revise",
        lambda t: f"/formulary/formulas/{t.setup.formula.pk}/revise/",
        MANAGERS,
        _revise_form,
    ),
    Operation(
        "page-product-new", "get", "product_new", lambda t: "/formulary/products/new/", STOCK, scope="clinic"
    ),
    Operation(
        "page-product-new-post",
        "post",
        "product_new",
        lambda t: "/formulary/products/new/",
        STOCK,
        _product_form,
        scope="clinic",
    ),
    Operation("page-lot-new", "get", "lot_new", lambda t: "/formulary/lots/new/", STOCK, scope="clinic"),
    Operation(
        "page-lot-new-post",
        "post",
        "lot_new",
        lambda t: "/formulary/lots/new/",
        STOCK,
        _lot_form,
        scope="clinic",
    ),
    Operation("page-lot", "get", "lot", lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/", VIEWERS),
    Operation(
        "page-movement",
        "post",
        "lot_movement",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/movements/",
        STOCK,
        lambda t: {"kind": "wasted", "quantity_ml": "1", "reason": "x"},
    ),
    Operation(
        "page-vial-open",
        "post",
        "vial_open",
        lambda t: f"/formulary/lots/{t.setup.vitc_lot.pk}/vials/",
        PREPARERS,
        lambda t: {},
    ),
    Operation(
        "page-vial-close",
        "post",
        "vial_close",
        lambda t: f"/formulary/vials/{t.setup.vial.pk}/close/",
        STOCK,
        lambda t: {},
    ),
    Operation(
        "page-recall",
        "post",
        "lot_recall",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/recall/",
        RECALLERS,
        lambda t: {"reason": "matrix"},
    ),
    Operation(
        "page-exposure",
        "get",
        "exposure",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/exposure/",
        EXPOSURE,
    ),
    Operation(
        "page-exposure-csv",
        "get",
        "exposure_csv",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/exposure.csv",
        EXPOSURE,
    ),
    Operation(
        "page-exposure-pdf",
        "get",
        "exposure_pdf",
        lambda t: f"/formulary/lots/{t.setup.ha_lot.pk}/exposure.pdf",
        EXPOSURE,
    ),
    Operation(
        "page-patient-lots",
        "get",
        "patient_lots",
        lambda t: f"/formulary/patients/{t.patient_id}/lots/",
        EXPOSURE,
    ),
    Operation(
        "page-prepare",
        "get",
        "preparation_new",
        lambda t: f"/formulary/patients/{t.patient_id}/prepare/",
        PREPARERS,
    ),
    Operation(
        "page-prepare-post",
        "post",
        "preparation_new",
        lambda t: f"/formulary/patients/{t.patient_id}/prepare/",
        PREPARERS,
        _prepare_form,
    ),
]

API_OPERATIONS = [
    Operation(
        "api-allergy-groups",
        "get",
        "/formulary/allergy-groups",
        lambda t: "/api/v1/formulary/allergy-groups",
        VIEWERS,
        scope="global",
    ),
    Operation(
        "api-ingredients",
        "get",
        "/formulary/ingredients",
        lambda t: f"/api/v1/formulary/ingredients?clinic_id={t.setup.clinic.pk}",
        VIEWERS,
        scope="clinic",
    ),
    Operation(
        "api-ingredient",
        "get",
        "/formulary/ingredients/{ingredient_id}",
        lambda t: f"/api/v1/formulary/ingredients/{t.house.pk}",
        VIEWERS,
        foreign_status=frozenset({403, 404}),  # 403: no formulary at all (researcher, patient)
    ),
    Operation(
        "api-ingredient-create",
        "post",
        "/formulary/ingredients",
        lambda t: "/api/v1/formulary/ingredients",
        MANAGERS,
        lambda t: {
            "code": "matrix",
            "name": "Matrix",
            "ingredient_class": "vitamin",
            "clinic_id": t.setup.clinic.pk,
        },
        True,
        scope="clinic",
    ),
    Operation(
        "api-caution-create",
        "post",
        "/formulary/ingredients/{ingredient_id}/cautions",
        lambda t: f"/api/v1/formulary/ingredients/{t.house.pk}/cautions",
        MANAGERS,
        lambda t: {"group": "fish", "note": "n", "source": "s"},
        True,
    ),
    Operation(
        "api-caution-delete",
        "delete",
        "/formulary/cautions/{caution_id}",
        lambda t: f"/api/v1/formulary/cautions/{t.caution_id}",
        MANAGERS,
    ),
    Operation(
        "api-limit-create",
        "post",
        "/formulary/ingredients/{ingredient_id}/limits",
        lambda t: f"/api/v1/formulary/ingredients/{t.house.pk}/limits",
        MANAGERS,
        _limit,
        True,
    ),
    Operation(
        "api-limit-delete",
        "delete",
        "/formulary/limits/{limit_id}",
        lambda t: f"/api/v1/formulary/limits/{t.limit_id}",
        MANAGERS,
    ),
    Operation(
        "api-statuses",
        "get",
        "/formulary/regulatory-statuses",
        lambda t: f"/api/v1/formulary/regulatory-statuses?clinic_id={t.setup.clinic.pk}",
        VIEWERS,
        scope="clinic",
    ),
    Operation(
        "api-status-create",
        "post",
        "/formulary/regulatory-statuses",
        lambda t: "/api/v1/formulary/regulatory-statuses",
        MANAGERS,
        lambda t: {
            "jurisdiction": "FR",
            "status": "banned",
            "use": "u",
            "source": "s",
            "clinic_id": t.setup.clinic.pk,
        },
        True,
        scope="clinic",
    ),
    Operation(
        "api-status-delete",
        "delete",
        "/formulary/regulatory-statuses/{status_id}",
        lambda t: f"/api/v1/formulary/regulatory-statuses/{t.status_id}",
        MANAGERS,
    ),
    Operation(
        "api-formulas",
        "get",
        "/formulary/formulas",
        lambda t: f"/api/v1/formulary/formulas?clinic_id={t.setup.clinic.pk}",
        VIEWERS,
        scope="clinic",
    ),
    Operation(
        "api-formula-create",
        "post",
        "/formulary/formulas",
        lambda t: "/api/v1/formulary/formulas",
        MANAGERS,
        _formula_body,
        True,
        scope="clinic",
    ),
    Operation(
        "api-formula",
        "get",
        "/formulary/formulas/{formula_id}",
        lambda t: f"/api/v1/formulary/formulas/{t.setup.formula.pk}",
        VIEWERS,
    ),
    Operation(
        "api-formula-revise",
        "post",
        "/formulary/formulas/{formula_id}/versions",
        lambda t: f"/api/v1/formulary/formulas/{t.setup.formula.pk}/versions",
        MANAGERS,
        _content,
        True,
    ),
    Operation(
        "api-version",
        "get",
        "/formulary/formulas/{formula_id}/versions/{number}",
        lambda t: f"/api/v1/formulary/formulas/{t.setup.formula.pk}/versions/1",
        VIEWERS,
    ),
    Operation(
        "api-products",
        "get",
        "/formulary/products",
        lambda t: f"/api/v1/formulary/products?clinic_id={t.setup.clinic.pk}",
        VIEWERS,
        scope="clinic",
    ),
    Operation(
        "api-product-create",
        "post",
        "/formulary/products",
        lambda t: "/api/v1/formulary/products",
        STOCK,
        _product_body,
        True,
        scope="clinic",
    ),
    Operation(
        "api-product",
        "get",
        "/formulary/products/{product_id}",
        lambda t: f"/api/v1/formulary/products/{t.setup.ha.pk}",
        VIEWERS,
    ),
    Operation(
        "api-lot-receive",
        "post",
        "/formulary/lots",
        lambda t: "/api/v1/formulary/lots",
        STOCK,
        lambda t: {
            "product_id": t.setup.ha.pk,
            "number": "M-1",
            "expires_on": (t.setup.today + timedelta(days=365)).isoformat(),
            "received_vials": 1,
        },
        True,
    ),
    Operation(
        "api-lot",
        "get",
        "/formulary/lots/{lot_id}",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}",
        VIEWERS,
    ),
    Operation(
        "api-movements",
        "get",
        "/formulary/lots/{lot_id}/movements",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/movements",
        VIEWERS,
    ),
    Operation(
        "api-movement",
        "post",
        "/formulary/lots/{lot_id}/movements",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/movements",
        STOCK,
        lambda t: {"kind": "wasted", "quantity_ml": "1"},
        True,
    ),
    Operation(
        "api-vial-open",
        "post",
        "/formulary/lots/{lot_id}/vials",
        lambda t: f"/api/v1/formulary/lots/{t.setup.vitc_lot.pk}/vials",
        PREPARERS,
        lambda t: {},
        True,
    ),
    Operation(
        "api-vial-close",
        "post",
        "/formulary/vials/{vial_id}/close",
        lambda t: f"/api/v1/formulary/vials/{t.setup.vial.pk}/close",
        STOCK,
        lambda t: {},
        True,
    ),
    Operation(
        "api-stock",
        "get",
        "/formulary/stock",
        lambda t: f"/api/v1/formulary/stock?clinic_id={t.setup.clinic.pk}",
        VIEWERS,
        scope="clinic",
    ),
    Operation(
        "api-prepare",
        "post",
        "/formulary/preparations",
        lambda t: "/api/v1/formulary/preparations",
        PREPARERS,
        _preparation_body,
        True,
    ),
    Operation(
        "api-preparation",
        "get",
        "/formulary/preparations/{preparation_id}",
        lambda t: f"/api/v1/formulary/preparations/{t.preparation_id}",
        EXPOSURE,
    ),
    Operation(
        "api-recall",
        "post",
        "/formulary/lots/{lot_id}/recall",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/recall",
        RECALLERS,
        lambda t: {"reason": "matrix"},
        True,
    ),
    Operation(
        "api-exposure",
        "get",
        "/formulary/lots/{lot_id}/exposure",
        lambda t: f"/api/v1/formulary/lots/{t.setup.ha_lot.pk}/exposure",
        EXPOSURE,
    ),
    Operation(
        "api-patient-lots",
        "get",
        "/formulary/patients/{patient_id}/lots",
        lambda t: f"/api/v1/formulary/patients/{t.patient_id}/lots",
        EXPOSURE,
    ),
]

OPERATIONS = PAGE_OPERATIONS + API_OPERATIONS


def _target(world: World, which: str) -> Target:
    if which == "own":
        setup = build(world.clinic, world.users["medical_director"])
        patient = world.patient
    else:
        setup = build(world.other_clinic, prefix="F-")
        patient = world.foreign_patient
    caller = setup.caller
    preparation = setup.prepare(patient)
    house = services.ingredient_create(
        caller=caller,
        clinic=setup.clinic,
        data={
            "code": f"{'own' if which == 'own' else 'foreign'}-house",
            "name": "House",
            "ingredient_class": "vitamin",
        },
    )
    caution = services.caution_create(caller=caller, ingredient=house, group="soy", note="n", source="s")
    limit = services.product_limit_create(
        caller=caller,
        ingredient=house,
        data={
            "label": "L",
            "concentration": "1",
            "concentration_unit": "%",
            "max_sessions": 3,
            "source": "s",
        },
    )
    status = services.regulatory_status_create(
        caller=caller,
        clinic=setup.clinic,
        ingredient_id=None,
        jurisdiction=setup.clinic.jurisdiction,
        status="not-approved",
        indications=[],
        use="u",
        source="s",
    )
    return Target(
        setup=setup,
        patient_id=patient.pk,
        preparation_id=preparation.pk,
        house=house,
        caution_id=caution.pk,
        limit_id=limit.pk,
        status_id=status.pk,
    )


def _call(client: Client, operation: Operation, target: Target) -> int:
    url = operation.url(target)
    body = operation.body(target) if operation.body else None
    if operation.method == "get":
        response = client.get(url)
    elif operation.method == "delete":
        response = client.delete(url)
    elif operation.json_body:
        response = client.post(url, data=json.dumps(body), content_type="application/json")
    else:
        response = client.post(url, data=body or {})
    return int(response.status_code)


def _state() -> tuple[int, ...]:
    return (
        Formula.objects.count(),
        FormulaVersion.objects.count(),
        Product.objects.count(),
        Lot.objects.count(),
        Lot.objects.filter(recalled_at__isnull=False).count(),
        StockMovement.objects.count(),
        Preparation.objects.count(),
        Ingredient.objects.count(),
        CrossSensitivity.objects.count(),
        ProductLimit.objects.count(),
        RegulatoryStatus.objects.count(),
    )


def _check(client: Client, role: str, operation: Operation, which: str, target: Target) -> str | None:
    """One cell of the matrix; what went wrong, or None."""
    before = _state()
    status = _call(client, operation, target)
    page = operation.name.startswith("page-")
    if which == "foreign" and operation.scope == "clinic" and page and operation.method == "get":
        # Pages work in the user's current clinic: the other clinic is never shown.
        if (status in OK) != (role in operation.allowed):
            return f"status {status}"
        content = client.get(operation.url(target)).content
        if b"F-HA" in content or b"F-Facial" in content or b"foreign-house" in content:
            return "shows the other clinic"
        return None
    if which == "foreign" and operation.scope == "clinic" and page:
        # A form of the current clinic naming the other clinic's objects: refused, for everyone.
        if status in OK:
            return f"status {status}: accepted another clinic's object"
    elif which == "foreign" and operation.scope != "global":
        # Another clinic's objects are never revealed (404); naming another clinic is refused (403).
        expected = {403} if operation.scope == "clinic" else set(operation.foreign_status)
        if status not in expected:
            return f"status {status}, expected {expected}"
    elif role in operation.allowed:
        if status not in OK:
            return f"status {status}, expected success"
        return None
    elif status not in {403, 404} and not (page and status == 302 and role == "patient"):
        return f"status {status}, expected 403/404"
    if _state() != before:
        return "wrote something"
    return None


def _applies(operation: Operation, which: str) -> bool:
    return which == "own" or operation.scope != "global"


@pytest.mark.parametrize("which", ["own", "foreign"])
def test_formulary_operation_matrix(world: World, which: str) -> None:
    """Every operation × every role on the same data, built once: each call runs in a savepoint rolled back
    afterwards, so one role's write (a recall, a preparation, a deletion) never changes what the next call
    meets. Failures are collected and reported together, by (operation, role)."""
    target = _target(world, which)
    # One browser per role (a test client loads the middleware stack, WhiteNoise's file scan included).
    clients = {role: client_for(world.users[role]) for role in ALL_ROLES}
    problems = {}
    cells = 0
    for operation in OPERATIONS:
        if not _applies(operation, which):
            continue  # names nothing of any clinic: the own-clinic case is the whole story
        for role in ALL_ROLES:
            with transaction.atomic():
                problem = _check(clients[role], role, operation, which, target)
                transaction.set_rollback(True)
            cells += 1
            if problem:
                problems[(operation.name, role)] = problem
    assert problems == {}
    assert cells >= len(OPERATIONS) * len(ALL_ROLES) - 2 * len(ALL_ROLES)


# --- the matrix covers every route and every method each serves ------------------------------------------

METHODS = ["get", "head", "post", "put", "patch", "delete", "options"]


def _dummy_url(pattern: URLPattern) -> str:
    route = str(pattern.pattern)
    route = re.sub(r"<int:[a-z_]+>", "999999", route)
    assert "<" not in route, route
    return f"/formulary/{route}"


def test_every_page_and_every_method_it_serves_is_in_the_matrix(world: World) -> None:
    """A method the pages answer with anything but 405 (even a 404 for a dummy id) must be in the matrix;
    HEAD goes with GET. The medical director holds every formulary permission."""
    from mesoclinic.formulary.urls import urlpatterns

    client = client_for(world.users["medical_director"])
    covered = {(op.route, op.method) for op in PAGE_OPERATIONS}
    served = set()
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        url = _dummy_url(pattern)
        for method in METHODS:
            status = getattr(client, method)(url).status_code
            if status != 405:
                served.add((pattern.name, "get" if method == "head" else method))
                assert method != "head" or (pattern.name, "get") in covered, (pattern.name, method)
    assert served == covered
    assert {pattern.name for pattern in urlpatterns} == {op.route for op in PAGE_OPERATIONS}


def test_every_api_operation_and_method_is_in_the_matrix(world: World) -> None:
    from mesoclinic.formulary.api import router

    declared = {
        (path, method.lower())
        for path, view in router.path_operations.items()
        for operation in view.operations
        for method in operation.methods
    }
    assert declared == {(op.route, op.method) for op in API_OPERATIONS}
    # Any other method on those paths is a 405, whatever the caller may do.
    client = client_for(world.users["medical_director"])
    for path, view in router.path_operations.items():
        url = "/api/v1" + "/".join("999999" if part.startswith("{") else part for part in path.split("/"))
        methods = {m.lower() for operation in view.operations for m in operation.methods}
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in methods:
                assert getattr(client, method)(url).status_code == 405, (path, method)


def test_version_read_is_clinic_scoped(world: World) -> None:
    own = build(world.clinic, world.users["medical_director"])
    foreign = build(world.other_clinic, prefix="F-")
    client = client_for(world.users["front_desk"])
    assert client.get(f"/api/v1/formulary/formulas/{own.formula.pk}/versions/1").status_code == 200
    assert client.get(f"/api/v1/formulary/formulas/{foreign.formula.pk}/versions/1").status_code == 404


def test_seeded_ingredients_are_read_by_every_formulary_role(world: World) -> None:
    lidocaine = ingredient("lidocaine").pk
    for role in ALL_ROLES:
        status = client_for(world.users[role]).get(f"/api/v1/formulary/ingredients/{lidocaine}").status_code
        assert (status == 200) == (role in VIEWERS), (role, status)

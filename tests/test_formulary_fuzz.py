"""targets.md #4 for the formulary, with hypothesis over the real test client (no schemathesis in the
stack yet): requests generated from the formulary's own OpenAPI document — every operation, path, query and
body — with values mixing the plausible and the hostile (ids of this clinic and another, 0, negatives,
2**63, 2**70; decimals beyond the columns' digits and decimals, NaN, 1e13; NUL bytes, 5,000-character
strings; dates in year 1 and 9999; lists far too long; missing and unknown fields).

Every answer must be below 500, and a refusal (4xx) must write nothing. Each request runs in a savepoint
rolled back afterwards, so every example meets the same data. ``FUZZ_EXAMPLES`` (per operation, default 40)
makes a deeper run: ``FUZZ_EXAMPLES=400 pytest tests/test_formulary_fuzz.py``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesoclinic.api import api
from mesoclinic.audit.models import AuditEvent
from mesoclinic.formulary import services
from mesoclinic.formulary.models import (
    CrossSensitivity,
    Formula,
    FormulaVersion,
    Ingredient,
    Lot,
    Preparation,
    PreparationLine,
    Product,
    ProductLimit,
    RegulatoryStatus,
    StockMovement,
    VialOpening,
)
from tests.conftest import World, client_for
from tests.formulary_setup import build, ensure_intake

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
SCHEMA = api.get_openapi_schema(path_prefix="/api/v1")
COMPONENTS: dict[str, Any] = SCHEMA["components"]["schemas"]
OPERATIONS = sorted(
    (path, method)
    for path, item in SCHEMA["paths"].items()
    if path.startswith("/api/v1/formulary/")
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
)

HOSTILE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, 2**64, 10**30]
DECIMALS: list[Any] = [
    "1",
    "2.5",
    "0.5",
    3,
    0.1,
    "0",
    "-1",
    "-0.0001",
    "1e13",
    1e13,
    "123456789.12345",
    "0.00001",
    "0.0005",
    "1.23456",
    "99999999.9999",
    "999999.999",
    "1000000",
    "1E+2",
    "NaN",
    "Infinity",
    "",
    "one",
]
STRINGS = [
    "",
    " ",
    "x",
    "a\x00b",
    "x" * 61,
    "x" * 301,
    "x" * 5000,
    "=HYPERLINK(evil)",
    "Lefèvre-Étienne",
    "../../etc/passwd",
    "<script>",
    "FR",
    "US",
    "US-NY",
    "soy",
    "cellulite",
    "submental-fat",
    "mg/mL",
    "wasted",
    "adjusted",
    "approved",
    "banned",
    "vitamin",
    "lipolytic",
]


def _dates() -> list[str]:
    today = timezone.now().date()
    return [
        (today + timedelta(days=delta)).isoformat() for delta in (-4000, -30, -1, 0, 1, 30, 365, 4000)
    ] + ["0001-01-01", "9999-12-31", "2026-02-30", "not a date", ""]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _value(schema: dict[str, Any], ids: list[int], depth: int = 0) -> st.SearchStrategy[Any]:
    """Plausible and hostile values for a JSON schema."""
    schema = _resolve(schema)
    if "anyOf" in schema:
        types = {branch.get("type") for branch in schema["anyOf"]}
        if {"number", "string"} <= types:  # a Decimal
            return st.one_of(st.sampled_from(DECIMALS), st.none())
        return st.one_of([_value(branch, ids, depth) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), st.sampled_from(STRINGS))
    kind = schema.get("type")
    if kind == "integer":
        return st.one_of(
            st.sampled_from(ids), st.sampled_from(HOSTILE_INTS), st.integers(min_value=-5, max_value=10_000)
        )
    if kind == "number":
        return st.sampled_from(DECIMALS)
    if kind == "boolean":
        return st.one_of(st.booleans(), st.sampled_from(["yes", 2, None]))
    if kind == "null":
        return st.none()
    if kind == "string":
        if schema.get("format") == "date":
            return st.sampled_from(_dates())
        if schema.get("format") == "date-time":
            return st.sampled_from([timezone.now().isoformat(), "0001-01-01T00:00:00Z", "x"])
        return st.one_of(st.sampled_from(STRINGS), st.text(max_size=12))
    if kind == "array":
        item = _value(schema.get("items", {}), ids, depth + 1)
        return st.one_of(st.lists(item, max_size=3), st.lists(item, min_size=41, max_size=45))
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return st.just({})
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = {
            name: _value(sub, ids, depth + 1)
            if name in required
            else st.one_of(_value(sub, ids, depth + 1), st.just(_MISSING))
            for name, sub in properties.items()
        }
        extra = st.dictionaries(st.sampled_from(["unknown", "clinic", "id"]), st.integers(), max_size=1)
        return st.builds(
            lambda values, more, drop: {
                **{k: v for k, v in values.items() if v is not _MISSING and k not in drop},
                **more,
            },
            st.fixed_dictionaries(fields),
            st.one_of(st.just({}), st.just({}), extra),
            st.sets(st.sampled_from(sorted(required) or ["-"]), max_size=1),
        )
    return st.one_of(st.none(), st.integers(), st.sampled_from(STRINGS))


_MISSING = object()


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    query: dict[str, Any]
    body: Any


def _request(path: str, method: str, ids: list[int]) -> st.SearchStrategy[Request]:
    operation = SCHEMA["paths"][path][method]
    params = operation.get("parameters", [])
    path_params = {p["name"]: _value(p["schema"], ids) for p in params if p["in"] == "path"}
    query_params = {
        p["name"]: st.one_of(_value(p["schema"], ids), st.just(_MISSING))
        for p in params
        if p["in"] == "query"
    }
    body_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    body = (
        st.one_of(_value(body_schema, ids), st.sampled_from([None, [], "x", 1]))
        if body_schema
        else st.just(None)
    )

    def make(path_values: dict[str, Any], query_values: dict[str, Any], payload: Any) -> Request:
        url = path
        for name, value in path_values.items():
            url = url.replace("{" + name + "}", str(value))
        query = {k: v for k, v in query_values.items() if v is not _MISSING and v is not None}
        return Request(method, url, query, payload)

    return st.builds(make, st.fixed_dictionaries(path_params), st.fixed_dictionaries(query_params), body)


def _state() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (
            Formula,
            FormulaVersion,
            Ingredient,
            CrossSensitivity,
            ProductLimit,
            RegulatoryStatus,
            Product,
            Lot,
            StockMovement,
            VialOpening,
            Preparation,
            PreparationLine,
        )
    ) + (Lot.objects.filter(recalled_at__isnull=False).count(),)


def _send(client: Client, request: Request) -> Any:
    if request.method == "get":
        return client.get(request.url, request.query)
    data = json.dumps(request.body, default=str) if request.body is not None else ""
    url = request.url
    if request.query:
        url += "?" + "&".join(f"{k}={v}" for k, v in request.query.items())
    return getattr(client, request.method)(url, data=data, content_type="application/json")


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p[7:]}" for p, m in OPERATIONS])
def test_no_formulary_request_answers_5xx_and_a_refusal_writes_nothing(
    world: World, path: str, method: str
) -> None:
    own = build(world.clinic, world.users["medical_director"])
    foreign = build(world.other_clinic, prefix="F-")
    ensure_intake(world.patient, own.director)
    preparation = own.prepare(world.patient)
    own.administer(world.patient)
    house = services.ingredient_create(
        caller=own.caller,
        clinic=world.clinic,
        data={"code": "fuzz-house", "name": "Fuzz house", "ingredient_class": "vitamin"},
    )
    caution = services.caution_create(caller=own.caller, ingredient=house, group="soy", note="n", source="s")
    ids = sorted(
        {
            world.clinic.pk,
            world.other_clinic.pk,
            world.patient.pk,
            world.foreign_patient.pk,
            preparation.pk,
            house.pk,
            caution.pk,
            own.formula.pk,
            own.version.pk,
            own.ha.pk,
            own.ha_lot.pk,
            own.vitc_lot.pk,
            own.vial.pk,
            foreign.formula.pk,
            foreign.ha_lot.pk,
            foreign.vial.pk,
            Ingredient.objects.filter(clinic__isnull=True, code="caffeine").values_list("pk", flat=True)[0],
        }
    )
    clients = [client_for(world.users["medical_director"]), client_for(world.users["front_desk"])]
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(request=_request(path, method, ids), who=st.sampled_from([0, 0, 0, 1]))
    def run(request: Request, who: int) -> None:
        with transaction.atomic():
            before, audit_before = _state(), AuditEvent.objects.count()
            response = _send(clients[who], request)
            status = response.status_code
            seen[status] = seen.get(status, 0) + 1
            assert status < 500, (request, response.content[:500])
            if 400 <= status < 500:
                assert _state() == before, (request, status, "a refusal wrote something")
                if status == 422:
                    assert response.json()["errors"], request
                    assert AuditEvent.objects.count() == audit_before, (
                        request,
                        "a refused write was audited",
                    )
            transaction.set_rollback(True)

    run()
    assert seen  # small search spaces (no parameters) end early: hypothesis stops when exhausted

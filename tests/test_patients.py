"""The basic patient record: validation, record numbers, search, and bounded queries per page."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.patients.rules import birth_date_problem, format_record_number, parse_search
from tests.conftest import World, client_for
from tests.factories import PatientFactory

GOOD = {
    "given_name": "Anne-Sophie",
    "family_name": "Lévêque",
    "date_of_birth": "1979-11-03",
    "sex": "female",
    "email": "as.leveque@example.test",
    "phone": "+33 6 12 34 56 78",
    "address_line": "3 rue des Lilas",
    "city": "Lyon",
    "postal_code": "69003",
    "preferred_language": "fr",
}

# The number of queries each page runs, whatever the number of patients (asserted below).
PATIENT_LIST_QUERIES = 13
PATIENT_DETAIL_QUERIES = 12


# --- rules ----------------------------------------------------------------------------------------------


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)), st.dates(min_value=date(1900, 1, 1)))
@settings(max_examples=300)
def test_birth_date_problem_exactly_when_future_or_before_1900(born: date, today: date) -> None:
    problem = birth_date_problem(born, today)
    assert (problem is not None) == (born > today)


def test_birth_date_before_1900_is_refused() -> None:
    assert birth_date_problem(date(1899, 12, 31), date(2026, 1, 1)) is not None
    assert birth_date_problem(date(1900, 1, 1), date(2026, 1, 1)) is None
    assert birth_date_problem(date(2026, 1, 1), date(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P-000042", ("P-000042", None, ())),
        ("p42", ("P-000042", None, ())),
        ("42", ("P-000042", None, ())),
        ("1986-04-12", (None, date(1986, 4, 12), ())),
        ("12/04/1986", (None, date(1986, 4, 12), ())),
        ("12.04.1986", (None, date(1986, 4, 12), ())),
        ("31/02/1986", (None, None, ("31/02/1986",))),
        ("  Élodie   DURAND ", (None, None, ("elodie", "durand"))),
        ("", (None, None, ())),
    ],
)
def test_parse_search(text: str, expected: tuple[object, object, tuple[str, ...]]) -> None:
    query = parse_search(text)
    assert (query.record_number, query.date_of_birth, query.name_prefixes) == expected


@given(st.text(max_size=120))
@settings(max_examples=300)
def test_parse_search_never_fails(text: str) -> None:
    query = parse_search(text)
    assert len(query.name_prefixes) <= 4


@given(st.integers(min_value=1, max_value=999_999))
def test_record_numbers_round_trip_through_search(number: int) -> None:
    assert parse_search(format_record_number(number)).record_number == format_record_number(number)


# --- services through the UI and the API ----------------------------------------------------------------


def test_record_numbers_are_sequential_per_clinic(world: World) -> None:
    client = client_for(world.users["front_desk"])
    numbers = []
    for index in range(3):
        response = client.post(
            "/api/v1/patients",
            data=json.dumps({**GOOD, "family_name": f"N{index}"}),
            content_type="application/json",
        )
        assert response.status_code == 201
        numbers.append(response.json()["record_number"])
    assert numbers == ["P-000001", "P-000002", "P-000003"]


def test_create_through_the_form(world: World) -> None:
    client = client_for(world.users["front_desk"])
    response = client.post("/patients/new/", GOOD)
    assert response.status_code == 302
    patient = Patient.objects.get(family_name="Lévêque")
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert patient.family_name_folded == "leveque"
    assert patient.clinic == world.clinic


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_of_birth": (timezone.localdate() + timedelta(days=2)).isoformat()}, "date_of_birth"),
        ({"date_of_birth": "1850-01-01"}, "date_of_birth"),
        ({"date_of_birth": "2001-02-30"}, "date_of_birth"),
        ({"given_name": "   "}, "given_name"),
        ({"family_name": ""}, "family_name"),
        ({"sex": "robot"}, "sex"),
        ({"email": "not-an-email"}, "email"),
        ({"preferred_language": "de"}, "preferred_language"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_written(
    world: World, change: dict[str, str], field: str
) -> None:
    client = client_for(world.users["front_desk"])
    before = Patient.objects.count()
    api = client.post(
        "/api/v1/patients", data=json.dumps({**GOOD, **change}), content_type="application/json"
    )
    assert api.status_code == 422
    body = api.json()
    assert body["detail"]
    assert field in [error["field"] for error in body["errors"]], body
    assert all(error["message"] for error in body["errors"])
    form = client.post("/patients/new/", {**GOOD, **change})
    assert form.status_code == 400
    assert form.context["form"].errors.get(field)
    assert Patient.objects.count() == before


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        '{"given_name": 5}',
        '{"unknown": 1}',
        json.dumps({**GOOD, "date_of_birth": 19790101}),
        json.dumps({**GOOD, "extra": "field"}),
    ],
)
def test_api_wrong_types_are_4xx_never_5xx(world: World, payload: str) -> None:
    client = client_for(world.users["front_desk"])
    response = client.post("/api/v1/patients", data=payload, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()
    assert Patient.objects.filter(family_name="Lévêque").count() == 0


def test_api_update_and_its_errors(world: World) -> None:
    client = client_for(world.users["practitioner"])
    url = f"/api/v1/patients/{world.patient.pk}"
    ok = client.patch(
        url, data=json.dumps({"phone": "0612345678", "city": "Nantes"}), content_type="application/json"
    )
    assert ok.status_code == 200
    assert ok.json()["city"] == "Nantes"
    bad = client.patch(url, data=json.dumps({"family_name": None}), content_type="application/json")
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "family_name"
    future = client.patch(
        url, data=json.dumps({"date_of_birth": "2999-01-01"}), content_type="application/json"
    )
    assert future.status_code == 422
    world.patient.refresh_from_db()
    assert world.patient.date_of_birth == date(1985, 6, 15)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lef", ["Lefèvre"]),
        ("LEFÈ", ["Lefèvre"]),
        ("hel", ["Lefèvre"]),
        ("hélène lef", ["Lefèvre"]),
        ("mar", ["Martin"]),
        ("cla mar", ["Martin"]),
        ("zzz", []),
        ("1985-06-15", ["Lefèvre", "Martin"]),
        ("15/06/1985", ["Lefèvre", "Martin"]),
    ],
)
def test_search(world: World, query: str, expected: list[str]) -> None:
    client = client_for(world.users["front_desk"])
    body = client.get("/api/v1/patients", {"q": query}).json()
    assert sorted(item["family_name"] for item in body["items"]) == expected
    assert body["count"] == len(expected)


def test_search_by_record_number(world: World) -> None:
    client = client_for(world.users["front_desk"])
    body = client.get("/api/v1/patients", {"q": world.patient.record_number}).json()
    assert [item["id"] for item in body["items"]] == [world.patient.pk]


def test_htmx_search_returns_only_the_results_fragment(world: World) -> None:
    client = client_for(world.users["front_desk"])
    response = client.get("/patients/", {"q": "lef"}, headers={"HX-Request": "true"})
    assert b"<html" not in response.content
    assert b"LEF\xc3\x88VRE" in response.content


def _count_queries(client_get: object) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client_get()  # type: ignore[operator]
        assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("patients", [5, 120])
def test_patient_list_runs_a_constant_number_of_queries(world: World, patients: int) -> None:
    for index in range(patients):
        PatientFactory.create(clinic=world.clinic, family_name=f"Bulk{index}")
    client = client_for(world.users["front_desk"])
    client.get("/patients/")  # warm the session's once-per-login work
    assert _count_queries(lambda: client.get("/patients/")) == PATIENT_LIST_QUERIES
    assert _count_queries(lambda: client.get("/patients/", {"q": "bulk"})) == PATIENT_LIST_QUERIES


@pytest.mark.parametrize("patients", [5, 120])
def test_patient_detail_runs_a_constant_number_of_queries(world: World, patients: int) -> None:
    for index in range(patients):
        PatientFactory.create(clinic=world.clinic, family_name=f"Bulk{index}")
    client = client_for(world.users["front_desk"])
    client.get("/patients/")
    assert _count_queries(lambda: client.get(f"/patients/{world.patient.pk}/")) == PATIENT_DETAIL_QUERIES


def test_folded_names_follow_edits(world: World) -> None:
    patient = world.patient
    patient.family_name = "Ÿsé-Çœur"
    patient.save()
    assert patient.family_name_folded == fold("Ÿsé-Çœur") == "yse-cœur"

"""targets.md #1 and #2: every role × every view and API operation × {own, other patient, other clinic}.

The expectations are written out here by hand, not derived from the policy module they test."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from django.test import Client

from mesoclinic.patients.models import Patient
from tests.conftest import ALL_ROLES, World, client_for

OK = {200, 201, 302}
VALID_PATIENT_FORM = {
    "given_name": "Anne",
    "family_name": "Test",
    "date_of_birth": "1980-01-02",
    "sex": "female",
    "email": "",
    "phone": "",
    "address_line": "",
    "city": "",
    "postal_code": "",
    "preferred_language": "fr",
}


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    url: Callable[[int], str]
    body: Mapping[str, object] | None = None
    json_body: bool = False


# Operations on one patient record.
RECORD_OPERATIONS = [
    Operation("view", "get", lambda pk: f"/patients/{pk}/"),
    Operation("edit-form", "get", lambda pk: f"/patients/{pk}/edit/"),
    Operation("edit", "post", lambda pk: f"/patients/{pk}/edit/", VALID_PATIENT_FORM),
    Operation("access-log", "get", lambda pk: f"/patients/{pk}/access/"),
    Operation("api-read", "get", lambda pk: f"/api/v1/patients/{pk}"),
    Operation(
        "api-update", "patch", lambda pk: f"/api/v1/patients/{pk}", {"phone": "+33 1 23 45 67 89"}, True
    ),
]

STAFF_WITH_CARE = {"clinic_admin", "practitioner", "medical_director", "front_desk"}

# Which roles may perform each record operation on a record of their own clinic.
RECORD_ALLOWED: dict[str, set[str]] = {
    "view": STAFF_WITH_CARE,
    "edit-form": STAFF_WITH_CARE,
    "edit": STAFF_WITH_CARE,
    "access-log": {"clinic_admin", "practitioner", "medical_director"},
    "api-read": STAFF_WITH_CARE,
    "api-update": STAFF_WITH_CARE,
}
# What the patient may do on their own record.
PATIENT_OWN_ALLOWED = {"view", "access-log", "api-read"}


def _call(client: Client, operation: Operation, pk: int) -> int:
    url = operation.url(pk)
    if operation.json_body:
        response = getattr(client, operation.method)(
            url, data=json.dumps(operation.body), content_type="application/json"
        )
    elif operation.body is not None:
        response = getattr(client, operation.method)(url, data=operation.body)
    else:
        response = getattr(client, operation.method)(url)
    return int(response.status_code)


def _target(world: World, which: str) -> Patient:
    return {"own": world.own_patient, "other": world.patient, "foreign": world.foreign_patient}[which]


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("operation", RECORD_OPERATIONS, ids=lambda op: op.name)
@pytest.mark.parametrize("which", ["own", "other", "foreign"])
def test_record_operation_matrix(world: World, role: str, operation: Operation, which: str) -> None:
    client = client_for(world.users[role])
    status = _call(client, operation, _target(world, which).pk)
    if which == "foreign":
        # Another clinic's record: never revealed, whatever the role.
        assert status == 404
    elif role == "patient":
        if which == "own":
            assert (status in OK) == (operation.name in PATIENT_OWN_ALLOWED), status
            if operation.name not in PATIENT_OWN_ALLOWED:
                assert status == 403
        else:
            assert status == 404
    elif role in RECORD_ALLOWED[operation.name]:
        assert status in OK, status
    else:
        assert status == 403


CLINIC_OPERATIONS = [
    Operation("list", "get", lambda _: "/patients/"),
    Operation("search", "get", lambda _: "/patients/?q=mar"),
    Operation("new-form", "get", lambda _: "/patients/new/"),
    Operation("create", "post", lambda _: "/patients/new/", VALID_PATIENT_FORM),
    Operation("api-search", "get", lambda _: "/api/v1/patients?q=mar"),
    Operation("api-create", "post", lambda _: "/api/v1/patients", VALID_PATIENT_FORM, True),
    Operation("portal", "get", lambda _: "/portal/"),
    Operation("portal-access", "get", lambda _: "/portal/access/"),
]
CLINIC_ALLOWED: dict[str, set[str]] = {
    "list": STAFF_WITH_CARE,
    "search": STAFF_WITH_CARE,
    "new-form": STAFF_WITH_CARE,
    "create": STAFF_WITH_CARE,
    "api-search": STAFF_WITH_CARE,
    "api-create": STAFF_WITH_CARE,
    "portal": {"patient"},
    "portal-access": {"patient"},
}


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("operation", CLINIC_OPERATIONS, ids=lambda op: op.name)
def test_clinic_operation_matrix(world: World, role: str, operation: Operation) -> None:
    client = client_for(world.users[role])
    before = Patient.objects.count()
    status = _call(client, operation, 0)
    if role in CLINIC_ALLOWED[operation.name]:
        assert status in OK, status
    else:
        assert status in {403, 404}, status
        assert Patient.objects.count() == before


def test_staff_create_lands_in_their_clinic_only(world: World) -> None:
    client = client_for(world.users["front_desk"])
    response = client.post(
        "/api/v1/patients",
        data=json.dumps({**VALID_PATIENT_FORM, "clinic_id": world.other_clinic.pk}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Patient.objects.filter(family_name="Test").exists()


def test_search_never_returns_another_clinics_patient(world: World) -> None:
    client = client_for(world.users["practitioner"])
    body = client.get("/api/v1/patients", {"q": "autre"}).json()
    assert body["count"] == 0
    response = client.get("/api/v1/patients", {"q": "", "clinic_id": str(world.other_clinic.pk)})
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "url",
    ["/patients/{pk}/", "/patients/{pk}/edit/", "/patients/{pk}/access/", "/api/v1/patients/{pk}"],
)
def test_idor_probe_with_foreign_id(world: World, method: str, url: str) -> None:
    """targets.md #2: a foreign id never answers 2xx or 3xx, and nothing about it leaks."""
    client = client_for(world.users["clinic_admin"])
    target = world.foreign_patient
    path = url.format(pk=target.pk)
    if method == "get":
        response = client.get(path)
    else:
        response = getattr(client, method)(path, data='{"phone": "1"}', content_type="application/json")
    # 405 answers "this URL has no such method" before any lookup: it says nothing about the record.
    assert response.status_code in {403, 404, 405}
    assert target.family_name.encode() not in response.content
    target.refresh_from_db()
    assert target.phone == ""


def test_unknown_and_foreign_ids_answer_alike(world: World) -> None:
    client = client_for(world.users["practitioner"])
    foreign = client.get(f"/api/v1/patients/{world.foreign_patient.pk}")
    missing = client.get("/api/v1/patients/999999")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_anonymous_is_sent_to_sign_in(world: World) -> None:
    client = Client()
    assert client.get(f"/patients/{world.patient.pk}/").status_code == 302
    assert client.get("/patients/")["Location"].startswith("/accounts/login/")
    assert client.get(f"/api/v1/patients/{world.patient.pk}").status_code == 401

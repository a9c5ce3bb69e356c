"""targets.md #13 and #14: every read and write of patient data, sign-ins and privilege changes are recorded;
the chain detects an edited, deleted, inserted or reordered row; no code path updates or deletes a row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import Client

from mesoclinic.accounts.models import Membership, Role
from mesoclinic.audit.models import Action, AppendOnlyError, AuditEvent
from mesoclinic.audit.services import audit_problems
from tests.conftest import World, client_for
from tests.factories import PASSWORD, UserFactory


def last_event() -> AuditEvent:
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None
    return event


def events_since(seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))


def head_seq() -> int:
    event = AuditEvent.objects.order_by("-seq").first()
    return event.seq if event else 0


PATIENT_FORM = {
    "given_name": "Anne",
    "family_name": "Audit",
    "date_of_birth": "1980-01-02",
    "sex": "female",
    "email": "",
    "phone": "",
    "address_line": "",
    "city": "",
    "postal_code": "",
    "preferred_language": "fr",
}


@pytest.mark.parametrize(
    ("label", "method", "url", "body", "action"),
    [
        ("ui read", "get", "/patients/{pk}/", None, Action.PATIENT_READ),
        ("api read", "get", "/api/v1/patients/{pk}", None, Action.PATIENT_READ),
        (
            "ui update",
            "post",
            "/patients/{pk}/edit/",
            {**PATIENT_FORM, "phone": "0102030405"},
            Action.PATIENT_UPDATE,
        ),
        ("api update", "patch", "/api/v1/patients/{pk}", {"phone": "0102030405"}, Action.PATIENT_UPDATE),
        ("access log", "get", "/patients/{pk}/access/", None, Action.PATIENT_ACCESS_LOG_READ),
    ],
)
def test_patient_reads_and_writes_are_audited(
    world: World, label: str, method: str, url: str, body: dict[str, str] | None, action: Action
) -> None:
    user = world.users["practitioner"]
    client = client_for(user, REMOTE_ADDR="203.0.113.7")
    before = head_seq()
    path = url.format(pk=world.patient.pk)
    if body is None:
        response = client.get(path)
    elif method == "patch":
        response = client.patch(path, data=json.dumps(body), content_type="application/json")
    else:
        response = client.post(path, data=body)
    assert response.status_code in {200, 302}
    matching = [event for event in events_since(before) if event.action == action]
    assert len(matching) == 1, label
    event = matching[0]
    assert event.user_id == user.pk
    assert event.username == "practitioner"
    assert event.role == "practitioner"
    assert event.clinic_id == world.clinic.pk
    assert event.patient_id == world.patient.pk
    assert event.object_type == "patients.patient"
    assert event.object_id == str(world.patient.pk)
    assert event.ip == "203.0.113.7"
    assert event.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("url", ["/patients/new/", "/api/v1/patients"])
def test_patient_creation_is_audited(world: World, url: str) -> None:
    client = client_for(world.users["front_desk"])
    before = head_seq()
    if url.startswith("/api/"):
        response = client.post(url, data=json.dumps(PATIENT_FORM), content_type="application/json")
    else:
        response = client.post(url, data=PATIENT_FORM)
    assert response.status_code in {201, 302}
    created = [event for event in events_since(before) if event.action == Action.PATIENT_CREATE]
    assert len(created) == 1
    assert created[0].patient_id is not None
    assert created[0].role == "front_desk"


def test_search_is_audited_with_the_ids_shown(world: World) -> None:
    client = client_for(world.users["front_desk"])
    before = head_seq()
    client.get("/patients/", {"q": "lef"})
    search = [event for event in events_since(before) if event.action == Action.PATIENT_SEARCH]
    assert len(search) == 1
    assert search[0].detail["shown"] == [world.patient.pk]
    assert search[0].detail["query"] == "lef"


def test_portal_read_is_audited_as_the_patient(world: World) -> None:
    client = client_for(world.users["patient"])
    before = head_seq()
    client.get("/portal/")
    reads = [event for event in events_since(before) if event.action == Action.PATIENT_READ]
    assert [(event.patient_id, event.role) for event in reads] == [(world.own_patient.pk, "patient")]


def test_a_refused_read_writes_no_patient_read(world: World) -> None:
    client = client_for(world.users["researcher"])
    before = head_seq()
    assert client.get(f"/patients/{world.patient.pk}/").status_code == 403
    assert not [event for event in events_since(before) if event.action == Action.PATIENT_READ]


def test_login_logout_and_failed_login_are_audited(world: World) -> None:
    client = Client(REMOTE_ADDR="198.51.100.4")
    before = head_seq()
    client.post("/accounts/login/", {"username": "front_desk", "password": "wrong password here"})
    client.post("/accounts/login/", {"username": "front_desk", "password": PASSWORD})
    client.post("/accounts/logout/")
    actions = [(event.action, event.username, event.ip) for event in events_since(before)]
    assert (Action.LOGIN_FAILED, "front_desk", "198.51.100.4") in actions
    assert (Action.LOGIN, "front_desk", "198.51.100.4") in actions
    assert (Action.LOGOUT, "front_desk", "198.51.100.4") in actions


def test_privilege_changes_are_audited(world: World) -> None:
    user = UserFactory.create(username="newcomer")
    before = head_seq()
    membership = Membership.objects.create(user=user, clinic=world.clinic, role=Role.FRONT_DESK)
    membership.role = Role.PRACTITIONER
    membership.save()
    membership.is_active = False
    membership.save()
    membership.delete()
    user.is_superuser = True
    user.save()
    user.is_active = False
    user.save()
    actions = [event.action for event in events_since(before)]
    assert actions == [
        Action.PRIVILEGE_GRANT,
        Action.PRIVILEGE_CHANGE,
        Action.PRIVILEGE_REVOKE,
        Action.PRIVILEGE_REVOKE,
        Action.ACCOUNT_CHANGE,
        Action.ACCOUNT_CHANGE,
    ]
    assert events_since(before)[1].detail["previous"] == {"role": "front_desk", "is_active": True}


def test_a_change_made_in_a_request_names_who_made_it(world: World) -> None:
    """Privilege changes record the acting user, even when made through the admin site."""
    admin = world.users["clinic_admin"]
    admin.is_staff = True
    admin.is_superuser = True
    admin.save()
    client = client_for(admin)
    target = world.users["front_desk"]
    membership = Membership.objects.get(user=target)
    before = head_seq()
    # Memberships are edited as an inline of the user's admin page.
    url = f"/admin/accounts/user/{target.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        key: value
        for key, value in form.initial.items()
        if value is not None and not isinstance(value, (list, tuple))
    }
    data.update(
        {
            "username": target.username,
            "date_joined_0": target.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": target.date_joined.strftime("%H:%M:%S"),
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": str(membership.pk),
            "memberships-0-user": str(target.pk),
            "memberships-0-clinic": str(world.clinic.pk),
            "memberships-0-role": Role.PRACTITIONER,
            "memberships-0-is_active": "on",
            "licences-TOTAL_FORMS": "0",
            "licences-INITIAL_FORMS": "0",
            "is_active": "on",
        }
    )
    data.pop("last_login", None)
    data.pop("password", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    change = [event for event in events_since(before) if event.action == Action.PRIVILEGE_CHANGE]
    assert len(change) == 1
    assert change[0].user_id == admin.pk
    assert change[0].detail["role"] == Role.PRACTITIONER


# --- tampering ---------------------------------------------------------------------------------------------


@contextmanager
def bypassing_triggers() -> Iterator[None]:
    """What a person with database access could do: drop the append-only guard, inside this test's
    transaction so that it comes back afterwards."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_event_no_update")
        else:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_change")
    yield


@pytest.fixture
def chain(world: World) -> list[AuditEvent]:
    client = client_for(world.users["practitioner"])
    for _ in range(3):
        client.get(f"/patients/{world.patient.pk}/")
    events = list(AuditEvent.objects.order_by("seq"))
    assert len(events) >= 5
    assert audit_problems() == []
    return events


def test_untouched_chain_verifies(chain: list[AuditEvent]) -> None:
    call_command("audit_verify")


def test_edited_row_is_detected(chain: list[AuditEvent]) -> None:
    victim = chain[len(chain) // 2]
    with bypassing_triggers(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET username = %s WHERE seq = %s", ["someone-else", victim.seq]
        )
    problems = audit_problems()
    assert [problem.seq for problem in problems] == [victim.seq]
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_deleted_row_is_detected(chain: list[AuditEvent]) -> None:
    victim = chain[len(chain) // 2]
    with bypassing_triggers(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [victim.seq])
    assert audit_problems()


def test_deleted_last_row_is_detected(chain: list[AuditEvent]) -> None:
    with bypassing_triggers(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [chain[-1].seq])
    assert audit_problems()


def test_inserted_row_is_detected(chain: list[AuditEvent]) -> None:
    model = chain[1]
    with bypassing_triggers(), connection.cursor() as cursor:
        # Shift the tail up by one to make room, then forge a row in the gap, as an insertion would.
        for event in reversed(chain[2:]):
            cursor.execute("UPDATE audit_auditevent SET seq = seq + 1 WHERE seq = %s", [event.seq])
        cursor.execute(
            "INSERT INTO audit_auditevent (seq, at, user_id, username, role, clinic_id, patient_id,"
            " action, object_type, object_id, ip, detail, prev_hash, hash) VALUES (%s, %s, NULL, 'ghost',"
            " '', NULL, NULL, 'patient.read', '', '', NULL, '{}', %s, %s)",
            [model.seq + 1, model.at, model.hash, "f" * 64],
        )
    assert audit_problems()


def test_reordered_rows_are_detected(chain: list[AuditEvent]) -> None:
    first, second = chain[1], chain[2]
    with bypassing_triggers(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [10_000_000, first.seq])
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [first.seq, second.seq])
        cursor.execute("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [second.seq, 10_000_000])
    problems = audit_problems()
    assert {problem.seq for problem in problems} >= {first.seq, second.seq}


def test_no_code_path_updates_or_deletes(chain: list[AuditEvent]) -> None:
    event = chain[0]
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(username="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_the_database_refuses_updates(chain: list[AuditEvent]) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET username = 'x' WHERE seq = %s", [chain[0].seq])
    assert audit_problems() == []


def test_a_deletion_is_refused_or_detected(chain: list[AuditEvent]) -> None:
    """PostgreSQL refuses it outright; SQLite lets the test runner empty tables with DELETE (migration 0002),
    so there the chain is what catches it."""
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [chain[0].seq])
        assert audit_problems() == []
    else:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent WHERE seq = %s", [chain[0].seq])
        assert [problem.seq for problem in audit_problems()][:1] == [chain[1].seq]

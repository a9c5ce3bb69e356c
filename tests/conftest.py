from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from mesoclinic.accounts.models import Role, User
from mesoclinic.clinics.models import Clinic
from mesoclinic.patients.models import Patient
from tests.factories import ClinicFactory, PatientFactory, UserFactory, staff

STAFF_ROLES = [role.value for role in Role]
ALL_ROLES = [*STAFF_ROLES, "patient"]


@dataclass
class World:
    """Two clinics; in the first, one user per role, the patient behind the portal user, another patient."""

    clinic: Clinic
    other_clinic: Clinic
    users: dict[str, User]
    own_patient: Patient  # the portal user's own record
    patient: Patient  # another patient of the same clinic
    foreign_patient: Patient  # a patient of the other clinic


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """Keep the migrated seed data (ingredients, protocols, templates) restorable in every test.

    Once Playwright's sync API runs its event loop in this thread, Django keeps database connections per
    async context, so a later test gets a new connection object without the serialized contents that
    `serialized_rollback` restores from — and silently starts from an empty database. Every connection made
    after set-up carries the contents taken at set-up."""
    saved = {
        connection.alias: connection._test_serialized_contents
        for connection in connections.all()
        if hasattr(connection, "_test_serialized_contents")
    }
    create_connection = ConnectionHandler.create_connection

    def create_with_contents(handler: ConnectionHandler, alias: str) -> BaseDatabaseWrapper:
        connection = create_connection(handler, alias)
        if alias in saved:
            setattr(connection, "_test_serialized_contents", saved[alias])  # noqa: B010 (Django's private name)
        return connection

    ConnectionHandler.create_connection = create_with_contents  # type: ignore[method-assign, assignment]
    yield
    ConnectionHandler.create_connection = create_connection  # type: ignore[method-assign]


@pytest.fixture
def world(db: None) -> World:
    clinic = ClinicFactory.create(name="Clinique du Parc")
    other_clinic = ClinicFactory.create(name="Other Clinic")
    users = {role: staff(clinic, Role(role), username=role) for role in STAFF_ROLES}
    portal_user = UserFactory.create(username="patient")
    users["patient"] = portal_user
    own = PatientFactory.create(clinic=clinic, user=portal_user, given_name="Claire", family_name="Martin")
    other = PatientFactory.create(clinic=clinic, given_name="Hélène", family_name="Lefèvre")
    foreign = PatientFactory.create(clinic=other_clinic, given_name="Zoé", family_name="Autre")
    return World(clinic, other_clinic, users, own, other, foreign)


def client_for(user: User, *, verified: bool = True, **client_kwargs: Any) -> Client:
    """A browser signed in as ``user``. With ``verified``, the user gets a confirmed TOTP device and the
    session is marked as having passed it, exactly as django_otp.login() would after a correct code."""
    client = Client(**client_kwargs)
    client.force_login(user)
    if verified:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
            user=user, name="test", confirmed=True
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client

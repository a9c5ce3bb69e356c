"""Test data through the real models. Passwords are hashed once with argon2 and the hash reused."""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

import factory
from django.contrib.auth.hashers import make_password

from mesoclinic.accounts.models import Membership, PractitionerLicence, Role, User
from mesoclinic.clinics.models import Clinic, Device, Organisation, Room
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient

PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    return make_password(PASSWORD)


class OrganisationFactory(factory.django.DjangoModelFactory[Organisation]):
    class Meta:
        model = Organisation
        django_get_or_create = ("name",)

    name = "Test Group"


class ClinicFactory(factory.django.DjangoModelFactory[Clinic]):
    class Meta:
        model = Clinic

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Clinic {n}")
    time_zone = "Europe/Paris"
    currency = "EUR"
    country = "FR"
    jurisdiction = "FR"


class RoomFactory(factory.django.DjangoModelFactory[Room]):
    class Meta:
        model = Room

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Room {n}")


class DeviceFactory(factory.django.DjangoModelFactory[Device]):
    class Meta:
        model = Device

    clinic = factory.SubFactory(ClinicFactory)
    kind = Device.Kind.MULTI_INJECTOR
    name = "Multi-injector"
    identifier = factory.Sequence(lambda n: f"MI-{n:04d}")


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.LazyFunction(password_hash)


def staff(clinic: Clinic, role: Role, **kwargs: Any) -> User:
    user = UserFactory.create(**kwargs)
    Membership.objects.create(user=user, clinic=clinic, role=role)
    return user


class LicenceFactory(factory.django.DjangoModelFactory[PractitionerLicence]):
    class Meta:
        model = PractitionerLicence

    user = factory.SubFactory(UserFactory)
    profession = PractitionerLicence.Profession.PHYSICIAN
    number = factory.Sequence(lambda n: f"LIC-{n:05d}")
    jurisdiction = "FR"
    expires_on = date(2030, 1, 1)


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    record_number = factory.Sequence(lambda n: f"P-9{n:05d}")
    given_name = "Élodie"
    family_name = factory.Sequence(lambda n: f"Durand{n}")
    date_of_birth = date(1985, 6, 15)
    sex = Patient.Sex.FEMALE
    email = factory.LazyAttribute(lambda o: f"{fold(o.given_name)}.{fold(o.family_name)}@example.test")

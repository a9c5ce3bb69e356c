"""Load the demo clinic: one clinic, a user for every role, realistic patients. Safe to run again."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, PractitionerLicence, Role, User
from mesoclinic.clinics.models import Clinic, Device, Organisation, Room
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_create

DEMO_PASSWORD = "mesoclinic-demo-2026"  # noqa: S105 (printed for the demo; never used outside it)

DEMO_USERS: list[tuple[str, str, str, Role | None]] = [
    ("admin", "Alex", "Admin", Role.CLINIC_ADMIN),
    ("practitioner", "Dr Camille", "Moreau", Role.PRACTITIONER),
    ("director", "Dr Jordan", "Hughes", Role.MEDICAL_DIRECTOR),
    ("desk", "Sam", "Rivera", Role.FRONT_DESK),
    ("researcher", "Priya", "Natarajan", Role.RESEARCHER),
    ("patient", "Claire", "Martin", None),
]

GIVEN = [
    "Emma",
    "Olivia",
    "Sophie",
    "Léa",
    "Chloé",
    "Isabelle",
    "Hannah",
    "Grace",
    "Amélie",
    "Nina",
    "Laura",
    "Marie",
    "Julia",
    "Sarah",
    "Zoé",
    "Inès",
    "Manon",
    "Rachel",
    "Diane",
    "Lucas",
    "Hugo",
    "Thomas",
    "Daniel",
    "Marc",
    "Antoine",
    "Paul",
    "Nathan",
    "Éric",
    "James",
    "Michael",
]
FAMILY = [
    "Dubois",
    "Smith",
    "Bernard",
    "Johnson",
    "Lefèvre",
    "Williams",
    "Garcia",
    "Brown",
    "Laurent",
    "Davis",
    "Rousseau",
    "Miller",
    "Fontaine",
    "Wilson",
    "Chevalier",
    "Moore",
    "Girard",
    "Taylor",
    "Bonnet",
    "Anderson",
    "Faure",
    "Thomas",
    "Mercier",
    "Jackson",
    "Blanc",
    "White",
    "Guerin",
    "Harris",
    "Muller",
    "Clark",
]
STREETS = ["Hudson St", "Bleecker St", "Greenwich Ave", "W 4th St", "Bank St", "Perry St", "Charles St"]


class Command(BaseCommand):
    help = "Create or refresh the demo clinic and its logins (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=60)

    @transaction.atomic
    def handle(self, *args: Any, patients: int, **options: Any) -> None:
        organisation, _ = Organisation.objects.get_or_create(name="Demo Aesthetics Group")
        clinic, _ = Clinic.objects.get_or_create(
            organisation=organisation,
            name="Riverside Mesotherapy",
            defaults={
                "time_zone": "America/New_York",
                "currency": "USD",
                "country": "US",
                "jurisdiction": "US-NY",
                "address_line": "212 Hudson St",
                "city": "New York",
                "postal_code": "10013",
                "phone": "+1 212 555 0142",
            },
        )
        room_one, _ = Room.objects.get_or_create(clinic=clinic, name="Treatment room 1")
        Room.objects.get_or_create(clinic=clinic, name="Treatment room 2")
        Device.objects.get_or_create(
            clinic=clinic,
            identifier="MI-2024-0117",
            defaults={"kind": Device.Kind.MULTI_INJECTOR, "name": "Multi-injector gun", "room": room_one},
        )
        users: dict[str, User] = {}
        for username, first, last, role in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@demo.mesoclinic.test",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            if role is not None:
                Membership.objects.get_or_create(user=user, clinic=clinic, role=role)
            users[username] = user
        for username, number, profession in (
            ("practitioner", "NY-RN-448120", PractitionerLicence.Profession.NURSE_PRACTITIONER),
            ("director", "NY-MD-301877", PractitionerLicence.Profession.PHYSICIAN),
        ):
            PractitionerLicence.objects.get_or_create(
                jurisdiction="US-NY",
                number=number,
                defaults={"user": users[username], "profession": profession, "expires_on": date(2028, 6, 30)},
            )

        caller = Caller(user=users["admin"])
        if not Patient.objects.filter(clinic=clinic, user=users["patient"]).exists():
            patient = patient_create(
                caller=caller,
                clinic=clinic,
                data={
                    "given_name": "Claire",
                    "family_name": "Martin",
                    "date_of_birth": date(1986, 4, 12),
                    "sex": "female",
                    "email": "patient@demo.mesoclinic.test",
                    "phone": "+1 917 555 0100",
                    "preferred_language": "fr",
                },
            )
            Patient.objects.filter(pk=patient.pk).update(user=users["patient"])
        rng = random.Random(2026)  # noqa: S311 (demo data, not secrets)
        existing = Patient.objects.filter(clinic=clinic).count()
        for index in range(existing, patients):
            given = GIVEN[index % len(GIVEN)]
            family = FAMILY[(index // len(GIVEN) + index * 7) % len(FAMILY)]
            born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 45))
            patient_create(
                caller=caller,
                clinic=clinic,
                data={
                    "given_name": given,
                    "family_name": family,
                    "date_of_birth": born,
                    "sex": "male"
                    if given
                    in {
                        "Lucas",
                        "Hugo",
                        "Thomas",
                        "Daniel",
                        "Marc",
                        "Antoine",
                        "Paul",
                        "Nathan",
                        "Éric",
                        "James",
                        "Michael",
                    }
                    else "female",
                    "email": f"{fold(given)}.{fold(family)}@example.com",
                    "phone": f"+1 646 555 {rng.randrange(1000, 9999)}",
                    "address_line": f"{rng.randrange(1, 400)} {rng.choice(STREETS)}",
                    "city": "New York",
                    "postal_code": "10014",
                    "preferred_language": "fr"
                    if family in {"Dubois", "Bernard", "Lefèvre", "Laurent"}
                    else "en",
                },
            )

        count = Patient.objects.filter(clinic=clinic).count()
        self.stdout.write(self.style.SUCCESS(f"Demo clinic ready: {clinic.name} ({count} patients)."))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, _first, _last, role in DEMO_USERS:
            label = role.label if role else "Patient (portal)"
            extra = (
                " — sets up an authenticator app at first sign-in"
                if role in (Role.CLINIC_ADMIN, Role.MEDICAL_DIRECTOR)
                else ""
            )
            self.stdout.write(f"  {username:<13} {label}{extra}")

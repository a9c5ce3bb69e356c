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

        # Intakes first: screening comes before any preparation (preparation_create refuses without one).
        load_demo_intakes(clinic, users)

        formulary_summary = load_formulary_demo(clinic, users)

        treatments_summary = load_treatments_demo(clinic, users)

        consent_summary = load_consent_demo(clinic, users)

        count = Patient.objects.filter(clinic=clinic).count()
        self.stdout.write(self.style.SUCCESS(f"Demo clinic ready: {clinic.name} ({count} patients)."))
        self.stdout.write(f"Formulary: {formulary_summary}")
        self.stdout.write(f"Treatments: {treatments_summary}")
        self.stdout.write(f"Consent: {consent_summary}")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, _first, _last, role in DEMO_USERS:
            label = role.label if role else "Patient (portal)"
            extra = (
                " — sets up an authenticator app at first sign-in"
                if role in (Role.CLINIC_ADMIN, Role.MEDICAL_DIRECTOR)
                else ""
            )
            self.stdout.write(f"  {username:<13} {label}{extra}")


# --- formulary demo (issue 4): formulas, products, lots, an opened vial, a few preparations ---------------
# Idempotent: everything is looked up by name or lot number first. Lots are dated from the day of the first
# run so that one expires soon and one product runs low.


def load_formulary_demo(clinic: Clinic, users: dict[str, User]) -> str:
    from decimal import Decimal

    from django.utils import timezone

    from mesoclinic.formulary import services as formulary
    from mesoclinic.formulary.models import Formula, Ingredient, Lot, Preparation, Product, VialOpening

    admin = Caller(user=users["admin"])
    practitioner = Caller(user=users["practitioner"])
    today = clinic.today()
    ingredient = {i.code: i.pk for i in Ingredient.objects.filter(clinic__isnull=True)}

    formulas = {
        "Lipolysis cocktail (PC/DC)": formulary.FormulaContent(
            components=[
                formulary.ComponentIn(ingredient["phosphatidylcholine"], "50", "mg/mL"),
                formulary.ComponentIn(ingredient["sodium-deoxycholate"], "25", "mg/mL"),
            ],
            total_volume_ml="10",
            indications=["localized-fat"],
            preparation_notes="Draw undiluted; inject into the fat layer, 1 cm apart.",
        ),
        "Facial revitalising cocktail": formulary.FormulaContent(
            components=[
                formulary.ComponentIn(ingredient["hyaluronic-acid"], "3", "mg/mL"),
                formulary.ComponentIn(ingredient["vitamin-c"], "50", "mg/mL"),
                formulary.ComponentIn(ingredient["organic-silicon"], "0.5", "%"),
            ],
            diluent_id=ingredient["sodium-chloride"],
            total_volume_ml="4",
            indications=["rejuvenation", "wrinkles"],
            preparation_notes="Mix in one 5 mL syringe; nappage, 1-2 mm.",
        ),
        "Hair loss (minoxidil, finasteride, biotin)": formulary.FormulaContent(
            components=[
                formulary.ComponentIn(ingredient["minoxidil"], "5", "mg/mL"),
                formulary.ComponentIn(ingredient["finasteride"], "0.5", "mg/mL"),
                formulary.ComponentIn(ingredient["biotin"], "5", "mg/mL"),
            ],
            total_volume_ml="4",
            indications=["hair-loss"],
            preparation_notes="Men only (finasteride: R-CAND-ANDRO).",
        ),
    }
    for name, content in formulas.items():
        if not Formula.objects.filter(clinic=clinic, name=name).exists():
            formulary.formula_create(caller=admin, clinic=clinic, name=name, content=content)

    # name, supplier, vial mL, multi-dose, beyond-use hours, low-stock vials, [(ingredient, strength, unit)]
    product_rows = [
        (
            "PC/DC 50/25 mg/mL, 10 mL",
            "Wedgewood Pharmacy",
            "10",
            True,
            672,
            2,
            [("phosphatidylcholine", "50", "mg/mL"), ("sodium-deoxycholate", "25", "mg/mL")],
        ),
        ("Sodium hyaluronate 3 mg/mL, 2 mL", "Fidia", "2", False, 1, 5, [("hyaluronic-acid", "3", "mg/mL")]),
        ("Ascorbic acid 500 mg/mL, 50 mL", "McGuff", "50", True, 672, 1, [("vitamin-c", "500", "mg/mL")]),
        ("Organic silicon 0.5%, 5 mL", "Dermica", "5", False, 1, 5, [("organic-silicon", "0.5", "%")]),
        ("Sodium chloride 0.9%, 10 mL", "Hospira", "10", False, 1, 20, [("sodium-chloride", "0.9", "%")]),
        ("Minoxidil 5 mg/mL, 10 mL", "Olympia Pharmacy", "10", True, 672, 1, [("minoxidil", "5", "mg/mL")]),
        (
            "Finasteride 0.5 mg/mL, 10 mL",
            "Olympia Pharmacy",
            "10",
            True,
            672,
            1,
            [("finasteride", "0.5", "mg/mL")],
        ),
        ("Biotin 5 mg/mL, 10 mL", "Olympia Pharmacy", "10", True, 672, 1, [("biotin", "5", "mg/mL")]),
    ]
    products: dict[str, Product] = {}
    for name, supplier, vial, multi, hours, low, components in product_rows:
        product = Product.objects.filter(clinic=clinic, name=name).first()
        if product is None:
            product = formulary.product_create(
                caller=admin,
                clinic=clinic,
                data={
                    "name": name,
                    "supplier": supplier,
                    "vial_volume_ml": vial,
                    "multi_dose": multi,
                    "beyond_use_hours": hours,
                    "low_stock_vials": low,
                },
                components=[formulary.ProductComponentIn(ingredient[c], s, u) for c, s, u in components],
            )
        products[name] = product

    # product, lot number, days to expiry, vials. The saline runs low (3 vials against a threshold of 20) and
    # the hyaluronate lot expires within the month.
    lot_rows = [
        ("PC/DC 50/25 mg/mL, 10 mL", "PCDC-24117", 240, 6),
        ("Sodium hyaluronate 3 mg/mL, 2 mL", "HA-2309-B", 21, 10),
        ("Sodium hyaluronate 3 mg/mL, 2 mL", "HA-2402-A", 400, 20),
        ("Ascorbic acid 500 mg/mL, 50 mL", "AA-88120", 300, 2),
        ("Organic silicon 0.5%, 5 mL", "OS-5561", 500, 20),
        ("Sodium chloride 0.9%, 10 mL", "NS-40021", 700, 3),
        ("Minoxidil 5 mg/mL, 10 mL", "MX-1187", 200, 3),
        ("Finasteride 0.5 mg/mL, 10 mL", "FN-0442", 200, 3),
        ("Biotin 5 mg/mL, 10 mL", "BT-7710", 200, 3),
    ]
    lots: dict[str, Lot] = {}
    for product_name, number, days, vials in lot_rows:
        product = products[product_name]
        lot = Lot.objects.filter(product=product, number=number).first()
        if lot is None:
            lot = formulary.lot_receive(
                caller=admin,
                product=product,
                number=number,
                expires_on=today + timedelta(days=days),
                received_on=today - timedelta(days=10),
                received_vials=vials,
            )
        lots[number] = lot

    opened = VialOpening.objects.filter(lot=lots["AA-88120"], closed_at__isnull=True).first()
    if opened is None:
        opened = formulary.vial_open(caller=practitioner, lot=lots["AA-88120"], now=timezone.now())

    if not Preparation.objects.filter(clinic=clinic).exists():
        facial = formulary.current_version(
            Formula.objects.get(clinic=clinic, name="Facial revitalising cocktail")
        )
        lines = [
            formulary.LineIn(lots["HA-2309-B"].pk, Decimal("2")),
            formulary.LineIn(lots["AA-88120"].pk, Decimal("0.4"), opened.pk),
            formulary.LineIn(lots["OS-5561"].pk, Decimal("1")),
            formulary.LineIn(lots["NS-40021"].pk, Decimal("0.6")),
        ]
        claire = Patient.objects.get(clinic=clinic, user=users["patient"])
        others = list(
            Patient.objects.filter(clinic=clinic).exclude(pk=claire.pk).order_by("record_number")[:2]
        )
        for patient in [claire, *others]:
            formulary.preparation_create(
                caller=practitioner, patient=patient, formula_version=facial, lines=lines, notes="Demo"
            )
    return (
        f"{Formula.objects.filter(clinic=clinic).count()} formulas, {len(products)} products, "
        f"{Lot.objects.filter(clinic=clinic).count()} lots, "
        f"{Preparation.objects.filter(clinic=clinic).count()} preparations"
    )


# --- Intake and screening (issue 3) ----------------------------------------------------------------------


def load_demo_intakes(clinic: Clinic, users: dict[str, User]) -> None:
    """Intakes for Claire Martin (filled by her in the portal) and three patients whose screenings show the
    rules at work: a blood thinner, an NSAID three days ago, a pregnancy. Only for patients without one."""
    from mesoclinic.screening.models import Intake
    from mesoclinic.screening.rules import IntakeAnswers, MedicationAnswer
    from mesoclinic.screening.services import intake_submit

    today = clinic.today()
    claire = Patient.objects.filter(clinic=clinic, user=users["patient"]).first()
    others = list(Patient.objects.filter(clinic=clinic, user__isnull=True).order_by("record_number")[:3])
    plans: list[tuple[Patient | None, User, IntakeAnswers]] = [
        (
            claire,
            users["patient"],
            IntakeAnswers(
                pregnancy="none",
                # Taken every day: no date of a last dose (the date only matters for NSAIDs and blood
                # thinners).
                medications=(MedicationAnswer("Levothyrox", None),),
                allergies=("latex",),
                weight_stable=True,
                goals="Less fat on the love handles; I run twice a week.",
                previous_treatments="None",
            ),
        ),
    ]
    stories = [
        IntakeAnswers(
            pregnancy="none",
            medications=(MedicationAnswer("Eliquis 5 mg", today - timedelta(days=1)),),
            weight_stable=True,
            goals="Smoother thighs.",
        ),
        IntakeAnswers(
            pregnancy="none",
            medications=(MedicationAnswer("Advil", today - timedelta(days=3)),),
            allergies=("soy",),
            weight_stable=False,
            goals="Lose 15 kg without dieting.",
        ),
        IntakeAnswers(pregnancy="pregnant", weight_stable=True, goals="Stretch marks."),
    ]
    plans += [(patient, users["desk"], answers) for patient, answers in zip(others, stories, strict=False)]
    for patient, user, answers in plans:
        if patient is None or Intake.objects.filter(patient=patient).exists():
            continue
        intake_submit(caller=Caller(user=user), patient=patient, answers=answers)


# --- Protocols, plans and sessions (issue 5) ----------------------------------------------------------------


def load_treatments_demo(clinic: Clinic, users: dict[str, User]) -> str:
    """Claire Martin's screening signed off and a localized-fat plan with two sessions charted and signed
    (they
    wait in the medical director's co-signature queue), and a draft facial plan for another patient. Only when
    Claire has no plan yet."""
    from decimal import Decimal

    from django.utils import timezone

    from mesoclinic.formulary import services as formulary
    from mesoclinic.formulary.models import Formula, Lot
    from mesoclinic.screening.services import NoIntake, review_get, review_sign, screening_run
    from mesoclinic.treatments import services as treatments
    from mesoclinic.treatments.models import BodyArea, Protocol, TreatmentPlan
    from mesoclinic.treatments.rules import interior_point

    practitioner = Caller(user=users["practitioner"])
    claire = Patient.objects.get(clinic=clinic, user=users["patient"])
    if not TreatmentPlan.objects.filter(patient=claire).exists():
        for patient in Patient.objects.filter(clinic=clinic, intakes__isnull=False).distinct():
            if review_get(caller=practitioner, patient=patient, audit=False) is not None:
                continue
            try:
                result = screening_run(caller=practitioner, patient=patient)
            except NoIntake:
                continue
            if result.screening.verdict == "ineligible":
                continue
            review_sign(
                caller=practitioner,
                patient=patient,
                decision="candidate",
                intake_version=result.intake.version,
                acknowledgements={
                    key: "Discussed at the consultation (demo)." for key in result.warning_keys
                },
            )
        fat = Protocol.objects.get(clinic__isnull=True, code="localized-fat")
        lipolysis = Formula.objects.get(clinic=clinic, name="Lipolysis cocktail (PC/DC)")
        plan = treatments.plan_create(
            caller=practitioner,
            patient=claire,
            protocol=fat,
            data=treatments.PlanIn(
                planned_sessions=6,
                areas=["flank-left", "flank-right"],
                formula_ids=[lipolysis.pk],
                procedures=[("diet-exercise", "Running twice a week")],
                goals="Less fat on the love handles.",
            ),
        )
        plan = treatments.plan_activate(caller=practitioner, plan=plan)
        load_consent_demo(clinic, users, plan=plan)  # issue 6: consent before the first session
        lot = Lot.objects.get(clinic=clinic, number="PCDC-24117")
        version = formulary.current_version(lipolysis)
        flanks = {code: BodyArea.objects.get(code=code) for code in ("flank-left", "flank-right")}
        for days_ago in (20, 10):
            moment = timezone.now() - timedelta(days=days_ago)
            vial = formulary.vial_open(caller=practitioner, lot=lot, now=moment - timedelta(minutes=20))
            preparation = formulary.preparation_create(
                caller=practitioner,
                patient=claire,
                formula_version=version,
                lines=[formulary.LineIn(lot.pk, Decimal("5"), vial.pk)],
                notes="Demo",
                now=moment - timedelta(minutes=15),
            )
            formulary.vial_close(
                caller=practitioner, vial=vial, reason="Single patient use (demo)", now=moment
            )
            room = clinic.rooms.first()
            session = treatments.session_check_in(
                caller=practitioner, plan=plan, room_id=room.pk if room else None, now=moment
            )
            areas = []
            for code, area in flanks.items():
                x, y = interior_point(area.outline)
                points = [
                    [round(x + dx, 1), round(y + dy, 1)]
                    for dx, dy in ((0, -12), (0, 0), (0, 12), (-3, 6), (3, -6))
                ]
                areas.append(
                    treatments.ChartAreaIn(
                        area=code,
                        technique="point-by-point-deep",
                        depth_mm=Decimal("8"),
                        points=points,
                        needle="27G 13 mm",
                        injections=10,
                        volume_per_point_ml=Decimal("0.2"),
                        preparation_id=preparation.pk,
                    )
                )
            treatments.session_chart(
                caller=practitioner,
                session=session,
                chart=treatments.ChartIn(
                    areas=areas, notes="Well tolerated; small bruise on the left flank."
                ),
                now=moment,
            )
            treatments.session_sign(caller=practitioner, session=session, now=moment + timedelta(minutes=30))
        other = (
            Patient.objects.filter(clinic=clinic, user__isnull=True, intakes__isnull=False)
            .order_by("record_number")
            .first()
        )
        if other is not None:
            treatments.plan_create(
                caller=practitioner,
                patient=other,
                protocol=Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation"),
                data=treatments.PlanIn(planned_sessions=5, areas=["forehead", "cheek-left", "cheek-right"]),
            )
    plans = TreatmentPlan.objects.filter(clinic=clinic)
    return f"{plans.count()} plans, {sum(p.sessions.count() for p in plans)} sessions"


# --- Informed consent and patient education (issue 6) ------------------------------------------------------


def load_consent_demo(clinic: Clinic, users: dict[str, User], plan: Any = None) -> str:
    """The clinic's consent period and session prices (R-COST), and — called by the treatments demo with
    Claire's plan before her first session — her consent, signed in the portal and countersigned, 21 days
    ago. Idempotent: prices are set once, and a plan that has a consent gets no other."""
    from decimal import Decimal

    from django.utils import timezone

    from mesoclinic.consent import services as consent
    from mesoclinic.consent.models import Consent, SessionPrice
    from mesoclinic.consent.signature import sample_signature

    if not SessionPrice.objects.filter(clinic=clinic).exists():
        consent.terms_update(
            caller=Caller(user=users["admin"]),
            clinic=clinic,
            validity_months=12,
            prices={
                "": Decimal("350.00"),
                "localized-fat": Decimal("450.00"),
                "cellulite": Decimal("400.00"),
            },
        )
    if plan is not None and not Consent.objects.filter(plan=plan).exists():
        moment = timezone.now() - timedelta(days=21)
        patient = Caller(user=users["patient"], ip="203.0.113.20")
        shown = consent.consent_document(caller=patient, plan=plan, now=moment)
        signed = consent.consent_sign(
            caller=patient,
            plan=plan,
            patient_id=plan.patient_id,
            template_version_id=shown.template_version.pk,
            text_sha256=shown.text_sha256,
            typed_name=plan.patient.full_name,
            signature=sample_signature(plan.pk),
            now=moment,
        )
        practitioner = Caller(user=users["practitioner"], ip="203.0.113.21")
        consent.consent_countersign(
            caller=practitioner,
            consent=consent.consent_get(caller=practitioner, consent_id=signed.pk, audit=False),
            now=moment + timedelta(minutes=10),
        )
    consents = Consent.objects.filter(clinic=clinic)
    prices = ", ".join(
        f"{row.indication or 'default'} {row.price_per_session} {clinic.currency}"
        for row in SessionPrice.objects.filter(clinic=clinic).order_by("indication")
    )
    countersigned = consents.filter(countersignature__isnull=False).count()
    return f"{consents.count()} consents ({countersigned} countersigned); {prices}"

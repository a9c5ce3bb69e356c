"""Measure the recall report (issue 4) on a data set with 100,000 preparations.

Run against an empty, migrated database of its own, e.g.

    export SECRET_KEY_FILE=/tmp/sk
    SQLITE_PATH=/tmp/recall.sqlite3 .venv/bin/python manage.py migrate -v0
    SQLITE_PATH=/tmp/recall.sqlite3 .venv/bin/python bench/formulary_recall.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/recall .venv/bin/python bench/formulary_recall.py

It writes one clinic, 20,000 patients and 100,000 preparations of a three-ingredient formula (300,000
preparation lines): hyaluronate from one of 50 lots (≈ 2,000 preparations each), vitamin C from one of 10 lots
(≈ 10,000 each) and saline from a single lot used by every preparation (the worst case). It then times the
recall report page, the JSON exposure query, the CSV and the PDF through the real views, counting queries.
Not a test: figures go in the notes."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
logging.getLogger("weasyprint").setLevel(logging.WARNING)  # its per-page progress is INFO

from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from mesoclinic.accounts.actors import Caller  # noqa: E402
from mesoclinic.accounts.models import Membership, Role, User  # noqa: E402
from mesoclinic.clinics.models import Clinic, Organisation  # noqa: E402
from mesoclinic.formulary import services  # noqa: E402
from mesoclinic.formulary.models import (  # noqa: E402
    Ingredient,
    Lot,
    Preparation,
    PreparationLine,
    Product,
)
from mesoclinic.lib.text import fold  # noqa: E402
from mesoclinic.patients.models import Patient  # noqa: E402

PATIENTS = 20_000
PREPARATIONS = 100_000
BATCH = 5_000


def build() -> tuple[User, dict[str, Lot]]:
    rng = random.Random(7)  # noqa: S311
    organisation = Organisation.objects.create(name="Recall bench")
    clinic = Clinic.objects.create(
        organisation=organisation,
        name="Recall bench clinic",
        time_zone="Europe/Paris",
        currency="EUR",
        country="FR",
        jurisdiction="FR",
        phone="+33 1 00 00 00 00",
    )
    user = User.objects.create_user("bench-practitioner", password=None)
    Membership.objects.create(user=user, clinic=clinic, role=Role.PRACTITIONER)
    caller = Caller(user=user)
    code = {i.code: i.pk for i in Ingredient.objects.filter(clinic__isnull=True)}
    formula = services.formula_create(
        caller=caller,
        clinic=clinic,
        name="Facial",
        content=services.FormulaContent(
            components=[
                services.ComponentIn(code["hyaluronic-acid"], "3", "mg/mL"),
                services.ComponentIn(code["vitamin-c"], "50", "mg/mL"),
            ],
            total_volume_ml="3",
            indications=["rejuvenation"],
            diluent_id=code["sodium-chloride"],
        ),
    )
    version = services.current_version(formula)

    def product(name: str, ingredient: str) -> Product:
        return services.product_create(
            caller=caller,
            clinic=clinic,
            data={"name": name, "supplier": "S", "vial_volume_ml": "10", "beyond_use_hours": 1},
            components=[services.ProductComponentIn(code[ingredient], "1", "mg/mL")],
        )

    products = {
        "ha": product("HA", "hyaluronic-acid"),
        "vc": product("VC", "vitamin-c"),
        "ns": product("NS", "sodium-chloride"),
    }
    today = date(2026, 11, 1)

    def lot(kind: str, number: str) -> Lot:
        return Lot.objects.create(
            clinic=clinic,
            product=products[kind],
            number=number,
            expires_on=today + timedelta(days=900),
            received_on=today - timedelta(days=900),
            received_vials=100_000,
        )

    ha_lots = [lot("ha", f"HA-{n:03d}") for n in range(50)]
    vc_lots = [lot("vc", f"VC-{n:03d}") for n in range(10)]
    ns_lot = lot("ns", "NS-ALL")

    with transaction.atomic():
        patients = []
        for n in range(PATIENTS):
            given, family = f"Given{n % 97}", f"Family{n:05d}"
            patients.append(
                Patient(
                    clinic=clinic,
                    record_number=f"P-{n + 1:06d}",
                    given_name=given,
                    family_name=family,
                    given_name_folded=fold(given),
                    family_name_folded=fold(family),
                    date_of_birth=date(1960 + n % 40, 1 + n % 12, 1 + n % 28),
                    sex="female",
                    email=f"p{n}@example.test",
                    phone=f"+33 6 {n:08d}",
                    address_line=f"{n % 200} rue de la Paix",
                    city="Paris",
                    postal_code="75002",
                    preferred_language="fr" if n % 3 else "en",
                )
            )
        Patient.objects.bulk_create(patients, batch_size=BATCH)
        patient_ids = list(Patient.objects.filter(clinic=clinic).values_list("pk", flat=True))
        start = datetime(2024, 11, 1, 9, tzinfo=UTC)
        for offset in range(0, PREPARATIONS, BATCH):
            batch = [
                Preparation(
                    clinic=clinic,
                    patient_id=rng.choice(patient_ids),
                    formula_version=version,
                    prepared_at=start + timedelta(minutes=10 * (offset + n)),
                    prepared_by=user,
                    total_volume_ml=Decimal("3"),
                )
                for n in range(BATCH)
            ]
            created = Preparation.objects.bulk_create(batch, batch_size=BATCH)
            if created[0].pk is None:  # SQLite before 3.35 does not return ids
                created = list(Preparation.objects.order_by("-id")[:BATCH])[::-1]
            lines = []
            for preparation in created:
                lines += [
                    PreparationLine(preparation=preparation, lot=rng.choice(ha_lots), volume_ml=Decimal("2")),
                    PreparationLine(
                        preparation=preparation, lot=rng.choice(vc_lots), volume_ml=Decimal("0.5")
                    ),
                    PreparationLine(preparation=preparation, lot=ns_lot, volume_ml=Decimal("0.5")),
                ]
            PreparationLine.objects.bulk_create(lines, batch_size=BATCH)
    return user, {
        "typical (1 of 50 lots)": ha_lots[0],
        "1 of 10 lots": vc_lots[0],
        "every preparation": ns_lot,
    }


def measure(client: Client, url: str, runs: int) -> tuple[int, float, float, int]:
    timings = []
    queries = 0
    size = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(url)
            content = response.content
            timings.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        queries = len(captured)
        size = len(content)
    return queries, statistics.median(timings), min(timings), size


def main() -> None:
    setup_test_environment()
    if Preparation.objects.exists():
        user = User.objects.get(username="bench-practitioner")
        lots = {
            "typical (1 of 50 lots)": Lot.objects.get(number="HA-000"),
            "1 of 10 lots": Lot.objects.get(number="VC-000"),
            "every preparation": Lot.objects.get(number="NS-ALL"),
        }
    else:
        began = time.perf_counter()
        user, lots = build()
        print(f"built {Preparation.objects.count():,} preparations in {time.perf_counter() - began:.0f} s")
    client = Client()
    client.force_login(user)
    print(f"database: {connection.vendor}")
    for label, lot in lots.items():
        exposed = Preparation.objects.filter(lines__lot=lot).values("id").distinct().count()
        patients = Preparation.objects.filter(lines__lot=lot).values("patient_id").distinct().count()
        print(f"lot {lot.number} — {label}: {exposed:,} preparations, {patients:,} patients")
        targets: list[tuple[str, str, int]] = [
            ("page", f"/formulary/lots/{lot.pk}/exposure/?page=2", 3),
            ("api", f"/api/v1/formulary/lots/{lot.pk}/exposure?limit=100&offset=100", 3),
            ("csv", f"/formulary/lots/{lot.pk}/exposure.csv", 3),
        ]
        if exposed <= 5_000:
            targets.append(("pdf", f"/formulary/lots/{lot.pk}/exposure.pdf", 1))
        for name, url, runs in targets:
            queries, median, best, size = measure(client, url, runs)
            timing = f"median {median * 1000:8.0f} ms  best {best * 1000:8.0f} ms"
            print(f"  {name:<4} {queries:>2} queries  {timing}  {size / 1e6:6.1f} MB")
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            report = services.lot_exposure(caller=Caller(user=user), lot=lot)
            elapsed = time.perf_counter() - began
        print(
            f"  services.lot_exposure, every patient ({report.patient_count:,}), audited: "
            f"{len(captured)} queries, {elapsed * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()

"""Measure the recall report (issue 4) on a data set with 100,000 preparations.

Reproducible: the data are generated from a fixed seed into a database of the script's own, which it makes,
migrates and fills (and reuses while the seed and the script's data version are unchanged; ``--rebuild``
forces it); the figures are the median and best of ``--runs`` requests through the real views, with the
query count of each. It prints a Markdown table for docs/performance.md ("Recall report").

    export SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')
    .venv/bin/python bench/formulary_recall.py --sqlite var/bench/recall.sqlite3
    .venv/bin/python bench/formulary_recall.py --postgres postgres://postgres@127.0.0.1:5432/postgres

The data: one clinic, 20,000 patients, 100,000 preparations of a three-ingredient formula (300,000
preparation lines) — hyaluronate from one of 50 lots (≈ 2,000 preparations each), vitamin C from one of 10
lots (≈ 10,000 each), saline from a single lot used by every preparation (the worst case) — and 5,000
direct administrations (an injection straight from an HA vial, no preparation). Not a test: the figures go
in docs/performance.md."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATIENTS = 20_000
PREPARATIONS = 100_000
ADMINISTRATIONS = 5_000
BATCH = 5_000
SEED = 7
DATA_VERSION = "3"  # bump when the generated rows change: the database is then rebuilt
PG_DATABASE = "mesoclinic_bench_recall"


def _configure(args: argparse.Namespace) -> None:
    """Point Django at the benchmark's own database (before django.setup())."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")
    os.environ.pop("DATABASE_URL", None)
    if args.postgres:
        import psycopg

        base = args.postgres.rsplit("/", 1)[0]
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE]).fetchone()
            if args.rebuild and exists:
                admin.execute(f'DROP DATABASE "{PG_DATABASE}"')
                exists = None
            if not exists:
                admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        os.environ["DATABASE_URL"] = f"{base}/{PG_DATABASE}"
    else:
        path = Path(args.sqlite).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.rebuild:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.environ["SQLITE_PATH"] = str(path)
    subprocess.run(  # noqa: S603 (our own manage.py)
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=os.environ.copy()
    )


def build() -> tuple[Any, dict[str, Any]]:
    """The data set, deterministic from SEED (same rows, same order, same ids on a fresh database)."""
    from django.db import transaction

    from mesoclinic.accounts.actors import Caller
    from mesoclinic.accounts.models import Membership, Role, User
    from mesoclinic.clinics.models import Clinic, Organisation
    from mesoclinic.formulary import services
    from mesoclinic.formulary.models import (
        Ingredient,
        Lot,
        Preparation,
        PreparationLine,
        Product,
        StockMovement,
    )
    from mesoclinic.lib.text import fold
    from mesoclinic.patients.models import Patient

    rng = random.Random(SEED)  # noqa: S311
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
        patient_ids = list(Patient.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True))
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
        administrations = [
            StockMovement(
                clinic=clinic,
                lot=rng.choice(ha_lots),
                kind=StockMovement.Kind.ADMINISTERED,
                quantity_ml=Decimal("-1"),
                patient_id=rng.choice(patient_ids),
                at=start + timedelta(minutes=7 * n),
                by=user,
            )
            for n in range(ADMINISTRATIONS)
        ]
        StockMovement.objects.bulk_create(administrations, batch_size=BATCH)
        # Each lot's stored balance is the sum of its movements, as formulary.services keeps it.
        balances: dict[int, Decimal] = {}
        for movement in administrations:
            balances[movement.lot_id] = balances.get(movement.lot_id, Decimal(0)) + movement.quantity_ml
        for lot_id, balance in balances.items():
            Lot.objects.filter(pk=lot_id).update(stock_ml=balance)
        from mesoclinic.formulary.models import RegulatoryStatus

        RegulatoryStatus.objects.filter(clinic=clinic).delete()  # none: a marker row follows
        RegulatoryStatus.objects.create(
            clinic=clinic, jurisdiction="FR", status="approved", use="bench", source=f"data {DATA_VERSION}"
        )
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics after a bulk load, as in production over time
        cursor.execute("ANALYZE")
    return user, _lots(ha_lots[0], vc_lots[0], ns_lot)


def _lots(ha: Any, vc: Any, ns: Any) -> dict[str, Any]:
    return {"typical (1 of 50 lots)": ha, "1 of 10 lots": vc, "every preparation": ns}


def measure(client: Any, url: str, runs: int) -> tuple[int, float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    counts = []
    size = 0
    client.get(url)  # warm-up, not measured: the first PDF of a process loads the fonts
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(url)
            content = response.content
            timings.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        counts.append(len(captured))
        size = len(content)
    # The fewest: a request that also refreshes the session's idle clock (at most every 30 s) adds 3.
    return min(counts), statistics.median(timings), min(timings), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sqlite", default=str(ROOT / "var" / "bench" / "recall.sqlite3"))
    where.add_argument("--postgres", help=f"an account that may create databases; data go in {PG_DATABASE}")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--full-pdf", action="store_true", help="also time manage.py recall_report --pdf")
    args = parser.parse_args()
    _configure(args)

    import logging

    import django

    django.setup()
    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # its per-page progress is INFO
    logging.getLogger("fontTools").setLevel(logging.WARNING)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from mesoclinic.accounts.models import User
    from mesoclinic.formulary.models import Lot, Preparation, RegulatoryStatus, StockMovement

    current = RegulatoryStatus.objects.filter(use="bench", source=f"data {DATA_VERSION}").exists()
    if Preparation.objects.exists() and not current:
        raise SystemExit("This database holds other data: run again with --rebuild.")
    if current:
        user = User.objects.get(username="bench-practitioner")
        lots = _lots(*(Lot.objects.get(number=n) for n in ("HA-000", "VC-000", "NS-ALL")))
    else:
        began = time.perf_counter()
        user, lots = build()
        print(f"built {Preparation.objects.count():,} preparations in {time.perf_counter() - began:.0f} s")
    # No setup_test_environment(): its instrumented template rendering would slow the pages measured.
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    print(f"\n{connection.vendor}, {args.runs} runs each (median / best, ms)\n")
    print("| lot | exposed | view | queries | median ms | best ms | size |")
    print("|---|---|---|---:|---:|---:|---:|")
    for label, lot in lots.items():
        preparations = Preparation.objects.filter(lines__lot=lot).values("id").distinct().count()
        administrations = StockMovement.objects.filter(lot=lot, kind="administered").count()
        exposed = (
            Preparation.objects.filter(lines__lot=lot).values("patient_id").distinct().count()
        )  # patients through preparations (the report also counts direct administrations)
        targets = [
            ("page (2nd page of 100)", f"/formulary/lots/{lot.pk}/exposure/?page=2"),
            ("API (100 patients)", f"/api/v1/formulary/lots/{lot.pk}/exposure?limit=100&offset=100"),
            ("CSV (every patient)", f"/formulary/lots/{lot.pk}/exposure.csv"),
            ("PDF (part 1, 250 patients)", f"/formulary/lots/{lot.pk}/exposure.pdf?part=1"),
        ]
        for name, url in targets:
            queries, median, best, size = measure(client, url, args.runs)
            who = f"{preparations:,} prep. + {administrations:,} adm., {exposed:,}+ patients"
            print(
                f"| {lot.number} — {label} | {who} | {name} | {queries} | {median * 1000:,.0f} | "
                f"{best * 1000:,.0f} | {size / 1e6:.1f} MB |"
            )
    if args.full_pdf:
        lot = lots["typical (1 of 50 lots)"]
        with tempfile.TemporaryDirectory() as folder:
            began = time.perf_counter()
            call_command("recall_report", lot.pk, "--user", user.username, "--pdf", f"{folder}/r.pdf")
            print(f"\nmanage.py recall_report {lot.number} --pdf: {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()

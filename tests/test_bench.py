"""The benchmark instrument (bench/, docs/performance.md): the generator's data are deterministic, complete
and consistent with the application's own rules; the floor and the Server-Timing stopwatch work. Nothing
here measures time (that is `make bench`'s job)."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse
from pytest_django import DjangoAssertNumQueries

from bench import database, report
from bench.clinical import Catalogue, _facts, _History, intake_jobs, screened
from bench.generate import (
    DEFAULT_AS_OF,
    FAMILIES,
    PATIENT_FIELDS,
    SCALES,
    Context,
    GenerateRefused,
    Pattern,
    Scale,
    generate,
    patient_rows,
)
from bench.names import PLACES
from bench.rows import local_stamp_text, ml_text
from bench.run import chart_bodies, scheduling_picks
from bench.stock import stock_jobs
from bench.treatments import point_pool, session_jobs
from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, PractitionerLicence, Role, User
from mesoclinic.audit.models import AuditEvent
from mesoclinic.audit.services import audit_problems
from mesoclinic.clinics.models import Clinic
from mesoclinic.floor import ServerTimingMiddleware, floor
from mesoclinic.formulary import rules as formulary_rules
from mesoclinic.formulary import services as formulary_services
from mesoclinic.formulary.models import (
    FormulaVersion,
    Lot,
    Preparation,
    PreparationLine,
    StockMovement,
    VialOpening,
)
from mesoclinic.lib.text import fold
from mesoclinic.outcomes import rules as outcome_rules
from mesoclinic.outcomes import services as outcome_services
from mesoclinic.outcomes.models import Assessment, Measurement
from mesoclinic.patients.models import Patient
from mesoclinic.patients.services import patient_create
from mesoclinic.safety.models import AdverseEvent, AdverseEventLot, AdverseEventSession
from mesoclinic.scheduling import services as scheduling_services
from mesoclinic.scheduling.models import Appointment
from mesoclinic.screening.models import Intake, IntakeMedication, Review
from mesoclinic.screening.rules import ScreeningFacts, screen
from mesoclinic.treatments import services as treatment_services
from mesoclinic.treatments.api import _chart_in
from mesoclinic.treatments.bodymap_data import AREAS
from mesoclinic.treatments.models import (
    Aftercare,
    ChartedArea,
    PlanArea,
    ProtocolArea,
    SessionPreparation,
    TreatmentPlan,
    TreatmentSession,
)
from mesoclinic.treatments.rules import point_in_polygon
from mesoclinic.treatments.schemas import ChartIn as ChartInSchema
from tests.factories import ClinicFactory


def _rows(stream: str) -> list[tuple[object, ...]]:
    return patient_rows(stream, PLACES[0], 7, range(1, 301), 1, date(2021, 1, 1), DEFAULT_AS_OF)


def test_patient_rows_are_a_function_of_the_seed() -> None:
    assert _rows("1:patients:1:0") == _rows("1:patients:1:0")
    assert _rows("1:patients:1:0") != _rows("2:patients:1:0")


def test_patient_rows_look_like_an_aesthetic_clinic() -> None:
    rows = [dict(zip(PATIENT_FIELDS, row, strict=True)) for row in _rows("1:patients:1:0")]
    assert [row["record_number"] for row in rows[:2]] == ["P-000001", "P-000002"]
    stamps = [str(row["created_at"]) for row in rows]
    assert stamps == sorted(stamps)
    for row in rows:
        born = date.fromisoformat(str(row["date_of_birth"]))
        registered = date.fromisoformat(str(row["created_at"])[:10])
        assert (registered - born).days >= 18 * 365, "registered as an adult"
        assert (DEFAULT_AS_OF - born).days < 77 * 366
        assert row["family_name_folded"] == fold(str(row["family_name"]))
        assert row["given_name_folded"] == fold(str(row["given_name"]))
    women = sum(row["sex"] == "female" for row in rows)
    assert 0.7 < women / len(rows) < 0.97
    assert any(str(row["family_name"]) != str(row["family_name_folded"]).title() for row in rows), "accents"


def test_pattern_fills_digits_and_letters() -> None:
    rng = random.Random(1)  # noqa: S311
    assert Pattern("+33 6 ## ## ## ##")(rng).startswith("+33 6 ")
    postal = Pattern("W1# #AA")(rng)
    assert postal[:2] == "W1" and postal[2].isdigit() and postal[5:].isalpha()


@pytest.mark.django_db
def test_generate_smoke_then_the_application_carries_on() -> None:
    report = generate(SCALES["smoke"], seed=5, workers=1)
    assert report.rows > 200

    clinic = Clinic.objects.get()
    assert Patient.objects.filter(clinic=clinic).count() == 200
    assert clinic.last_record_number == 200
    assert set(Patient.objects.values_list("record_number", flat=True)) == {
        f"P-{number:06d}" for number in range(1, 201)
    }
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == {role.value for role in Role}
    practitioners = Membership.objects.filter(role=Role.PRACTITIONER).count()
    assert 2 <= practitioners <= 4
    assert PractitionerLicence.objects.filter(jurisdiction=clinic.jurisdiction).count() == practitioners + 1

    # No audit rows, and the chain verifies; generated staff can sign in with the documented password.
    assert not AuditEvent.objects.exists()
    assert audit_problems() == []
    desk = User.objects.get(username="c001-desk1")
    assert desk.check_password("mesoclinic-demo-2026")

    # The application continues the record numbers and the ids.
    created = patient_create(
        caller=Caller(user=desk),
        clinic=clinic,
        data={
            "given_name": "Zoé",
            "family_name": "Après",
            "date_of_birth": date(1990, 1, 2),
            "sex": "female",
        },
    )
    assert created.record_number == "P-000201"
    assert created.pk > max(Patient.objects.exclude(pk=created.pk).values_list("pk", flat=True))

    with pytest.raises(GenerateRefused):
        generate(SCALES["smoke"], seed=5, workers=1)
    with pytest.raises(CommandError, match="already has data"):
        call_command("generate", "--scale", "smoke")


def test_floor_is_not_routed_by_default() -> None:
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor")


@pytest.mark.django_db
def test_floor_renders_with_one_query_and_server_timing(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    clinic = ClinicFactory.create(name="Clinique Étoile")
    request = RequestFactory().get(f"/bench/floor?clinic={clinic.pk}")
    timed = ServerTimingMiddleware(floor)
    with django_assert_num_queries(1):
        response = timed(request)
    assert response.status_code == 200
    assert "Clinique Étoile" in response.content.decode()
    header = response["Server-Timing"]
    assert header.startswith("app;dur=") and 'queries;desc="1"' in header


# --- The report's maths and the stopwatch's header ---------------------------------------------------------


def test_parse_server_timing_reads_durations_and_descriptions() -> None:
    header = 'app;dur=12.345, cpu;dur=10.000, db;dur=0.512, queries;desc="7"'
    assert report.parse_server_timing(header) == {"app": 12.345, "cpu": 10.0, "db": 0.512, "queries": 7.0}
    assert report.parse_server_timing("") == {}
    assert report.parse_server_timing("queries;desc=3, app;dur=1") == {"queries": 3.0, "app": 1.0}
    assert "app" not in report.parse_server_timing("total;desc=abc")  # a non-numeric description is ignored


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]  # 1 … 100
    assert report.percentile(values, 0.50) == 50.0
    assert report.percentile(values, 0.95) == 95.0
    assert report.percentile(values, 0.99) == 99.0
    assert report.percentile([7.0], 0.99) == 7.0
    assert report.percentile([], 0.5) is None
    assert report.percentile([3.0, 1.0, 2.0], 0.5) == 2.0  # unsorted input
    assert report.percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0  # rank ceil(3.8) = 4


def _sample(name: str, at: float, app: float, *, error: str | None = None, cpu: float = 1.0) -> list[Any]:
    return [name, at, app + 1.0, 200 if error is None else 500, app, cpu, 0.5, 4, error]


def test_summarise_keeps_the_measured_window_and_counts_every_error() -> None:
    samples = [_sample("x", 100.0 + n, float(n)) for n in range(10)]  # at 100 … 109
    samples.append(_sample("x", 101.0, 999.0, error="HTTP 500"))  # during the warm-up: still an error
    row = report.summarise("x", samples, measure_from=105.0, stopped_at=110.0)
    assert row["requests"] == 5 and row["requests_all"] == 11
    assert row["errors"] == 1 and row["error_kinds"] == {"HTTP 500": 1}
    assert row["seconds"] == 5.0 and row["rps"] == 1.0
    assert row["server_ms"]["p50"] == 7.0 and row["server_ms"]["max"] == 9.0
    assert row["client_ms"]["p50"] == 8.0
    assert row["queries"] == {"min": 4, "max": 4}


def _row(
    name: str, p50: float, p95: float, p99: float, *, rps: float = 10.0, cpu: float = 2.0
) -> dict[str, Any]:
    stats = {"p50": p50, "p95": p95, "p99": p99, "max": p99, "mean": p50}
    return {
        "name": name,
        "requests": 100,
        "rps": rps,
        "errors": 0,
        "error_kinds": {},
        "server_ms": dict(stats),
        "client_ms": dict(stats),
        "cpu_ms": {**stats, "mean": cpu},
        "db_ms": dict(stats),
        "queries": {"min": 5, "max": 7},
    }


def test_ratios_to_the_floor() -> None:
    floor = _row("floor", 2.0, 4.0, 5.0, rps=400.0, cpu=1.0)
    chart = _row("chart_ui", 10.0, 20.0, 30.0, rps=100.0, cpu=4.0)
    idle = _row("idle", 0.0, 0.0, 0.0, rps=0.0, cpu=0.0)
    report.add_floor_ratios([floor, chart, idle], floor)
    assert floor["x_floor_p50"] == 1.0 and floor["share_of_floor_rps"] == 1.0
    assert chart["x_floor_p50"] == 5.0  # 10 ms / 2 ms
    assert chart["share_of_floor_rps"] == 0.25  # 100 / 400 req/s
    assert chart["share_of_floor_cpu"] == 0.25  # 1 ms of CPU / 4 ms
    assert idle["x_floor_p50"] is None and idle["share_of_floor_rps"] is None
    report.add_floor_ratios([chart], None)
    assert chart["x_floor_p50"] is None and chart["share_of_floor_cpu"] is None
    assert (
        report.ratio(3.0, 0.0) is None and report.ratio(None, 2.0) is None and report.ratio(3.0, 2.0) == 1.5
    )


def test_every_key_screen_is_judged_against_targets_md() -> None:
    rows = [
        _row("floor", 2.0, 4.0, 5.0, rps=400.0, cpu=1.0),
        _row("chart_ui", 10.0, 20.0, 30.0, rps=300.0, cpu=1.5),
        _row("stock_ui", 30.0, 60.0, 90.0),  # p95 over 50 ms
        _row("recall_ui", 20.0, 45.0, 160.0),  # p99 over 150 ms
        _row("screening_api", 5.0, 50.0, 150.0),  # exactly at the bounds: met
        _row("mixed", 20.0, 150.0, 190.0),
    ]
    result: dict[str, Any] = {
        "meta": {"scale": "chain", "users": 50, "database_locked": 0},
        "scenarios": rows,
    }
    report.add_floor_ratios(rows, rows[0])
    verdicts = {t["target"].split(":")[0]: t["met"] for t in report.targets(result)}
    assert verdicts["chart_ui"] is True
    assert verdicts["stock_ui"] is False and verdicts["recall_ui"] is False
    assert verdicts["screening_api"] is True
    assert "floor" not in verdicts
    assert verdicts["framework overhead"] is True  # 75 % of the floor's req/s, 67 % by CPU
    assert verdicts["mixed workload, 50 users"] is True
    assert [row["name"] for row in report.key_screens(rows)] == [
        "chart_ui",
        "stock_ui",
        "recall_ui",
        "screening_api",
    ]
    assert (
        "(target is at chain"
        in report.targets({**result, "meta": {**result["meta"], "scale": "smoke"}})[0]["target"]
    )


def test_compare_divides_p95_at_the_large_scale_by_the_small_one() -> None:
    def run(scale: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        meta = {"scale": scale, "database": "SQLite 3", "date": "2026-11-22 10:00 UTC"}
        return {"meta": meta, "scenarios": rows}

    small = run("smoke", [_row("chart_ui", 5.0, 20.0, 25.0), _row("stock_ui", 5.0, 10.0, 12.0)])
    large = run(
        "chain",
        [_row("chart_ui", 5.0, 25.0, 30.0), _row("stock_ui", 5.0, 40.0, 45.0), _row("new", 1.0, 2.0, 3.0)],
    )
    lines = report.compare(small, large).splitlines()
    chart = next(line for line in lines if line.startswith("| chart_ui"))
    stock = next(line for line in lines if line.startswith("| stock_ui"))
    assert "| 20.0 | 25.0 | 1.25× |" in chart and chart.endswith("| met |")
    assert "| 10.0 | 40.0 | 4.00× |" in stock and stock.endswith("| **missed** |")
    assert not any(line.startswith("| new") for line in lines)  # not measured at both scales


# --- Paths and database names ------------------------------------------------------------------------------


def test_bench_files_live_under_the_settings_var_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert database.var_dir().resolve() == (Path(settings.VAR_DIR) / "bench").resolve()
    monkeypatch.delenv("BENCH_DB_SUFFIX", raising=False)
    monkeypatch.setenv("MESOCLINIC_VAR_DIR", str(tmp_path / "one"))
    assert database.var_dir() == tmp_path / "one" / "bench"
    first = database.postgres_names("chain")
    monkeypatch.setenv("MESOCLINIC_VAR_DIR", str(tmp_path / "two"))
    second = database.postgres_names("chain")
    assert first != second, "two checkouts (var directories) never share a benchmark database"
    assert first[0].startswith("mesoclinic_bench_chain_") and first[1] == f"{first[0]}_run"
    assert all(len(name) <= 63 for name in (*first, *second))  # PostgreSQL's identifier limit
    monkeypatch.setenv("BENCH_DB_SUFFIX", "ci_7")
    assert database.postgres_names("smoke") == (
        "mesoclinic_bench_smoke_ci_7",
        "mesoclinic_bench_smoke_ci_7_run",
    )
    monkeypatch.setenv("BENCH_DB_SUFFIX", "no; drop")
    with pytest.raises(ValueError, match="BENCH_DB_SUFFIX"):
        database.database_suffix()


# --- The clinical families: deterministic and consistent -------------------------------------------------

# Two clinics (in two countries, so two jurisdictions and time zones), a few dozen patients each.
TINY = Scale("tiny", clinics=2, patients=80, history_years=2, sessions=800, charted_areas=0)


def _context(seed: int, until: str) -> Context:
    """A context with the families up to and including ``until`` run (in this process)."""
    ctx = Context(
        scale=TINY, seed=seed, as_of=DEFAULT_AS_OF, batch_size=1_000, password_hash="!unusable", workers=1
    )
    for name, family in FAMILIES:
        family(ctx)
        if name == until:
            return ctx
    raise AssertionError(until)


@pytest.mark.django_db
def test_clinical_and_stock_rows_are_a_function_of_the_seed() -> None:
    ctx = _context(3, "formulary")
    jobs, owners = intake_jobs(ctx)
    assert len(jobs) == 2  # one slice per clinic
    first = [job.build(*job.args) for job in jobs]
    again = [job.build(*job.args) for job in jobs]
    for a, b in zip(first, again, strict=True):
        for key in ("intake", "medication", "review"):
            assert a[key] == b[key]
        assert list(a["visits"].day) == list(b["visits"].day)
    other = jobs[0].build(jobs[0].args[0].replace("3:", "4:", 1), *jobs[0].args[1:])
    assert other["intake"] != first[0]["intake"], "another seed, other rows"

    for owner, result in zip(owners, first, strict=True):  # what gen_intakes keeps for the stock family
        ctx.clinics[owner].visits.extend(result["visits"])
    for data in ctx.clinics:
        data.visits = data.visits.in_time_order()
    jobs = stock_jobs(ctx)
    assert len(jobs) == 4  # two clinics × two product groups
    runs = [[job.build(*job.args) for job in jobs] for _ in range(2)]
    assert runs[0] == runs[1]
    assert sum(len(result["preparation"]) for result in runs[0]) == sum(len(d.visits) for d in ctx.clinics)


@pytest.mark.django_db
def test_generated_clinical_history_is_consistent() -> None:
    generate(TINY, seed=2, workers=1)
    assert Intake.objects.exists() and Review.objects.exists() and Preparation.objects.exists()
    assert not AuditEvent.objects.exists()

    # Stock is the sum of movements: never below zero, per lot and per opened vial (summed here exactly:
    # SQLite's SUM of a decimal column is a float).
    stock: dict[int, Decimal] = defaultdict(Decimal)
    left: dict[int, Decimal] = defaultdict(Decimal)
    for lot_id, vial_id, quantity in StockMovement.objects.values_list("lot_id", "vial_id", "quantity_ml"):
        stock[lot_id] += quantity
        if vial_id is not None:
            left[vial_id] += quantity
    assert Lot.objects.count() == len(stock) and min(stock.values()) >= 0
    # The stored balance the stock screen reads is that sum, for every lot (formulary migration 0005).
    assert dict(Lot.objects.values_list("id", "stock_ml")) == stock
    for vial in VialOpening.objects.select_related("lot__product"):
        assert vial.lot.product.vial_volume_ml + left[vial.pk] >= 0
    for lot in Lot.objects.select_related("product"):
        received = StockMovement.objects.get(lot=lot, kind="received").quantity_ml
        assert received == lot.received_vials * lot.product.vial_volume_ml
        assert lot.received_on <= lot.expires_on

    # Every line draws from a lot of the patient's clinic, usable then; the movements match the lines.
    drawn: dict[int, Decimal] = defaultdict(Decimal)
    lines = PreparationLine.objects.select_related("lot", "vial", "preparation__patient__clinic")
    for line in lines:
        preparation = line.preparation
        assert line.lot.clinic_id == preparation.patient.clinic_id == preparation.clinic_id
        local_day = preparation.prepared_at.astimezone(preparation.patient.clinic.zone).date()
        assert local_day <= line.lot.expires_on
        assert line.lot.recalled_at is None or preparation.prepared_at < line.lot.recalled_at
        if line.vial is not None:
            assert line.vial.lot_id == line.lot_id
            assert line.vial.opened_at <= preparation.prepared_at < line.vial.beyond_use_at
            assert line.vial.closed_at is None or preparation.prepared_at <= line.vial.closed_at
        drawn[preparation.pk] += line.volume_ml
    for preparation in Preparation.objects.select_related("formula_version__formula"):
        assert preparation.total_volume_ml == drawn[preparation.pk]
        assert preparation.formula_version.formula.clinic_id == preparation.clinic_id
    prepared: dict[int, Decimal] = defaultdict(Decimal)
    for preparation_id, quantity in StockMovement.objects.filter(kind="prepared").values_list(
        "preparation_id", "quantity_ml"
    ):
        prepared[preparation_id] -= quantity
    assert prepared == drawn

    # Intakes, their medicines and reviews belong to the patient, and the clinic, they name.
    patients = dict(Patient.objects.values_list("id", "clinic_id"))
    positions: dict[int, list[int]] = defaultdict(list)
    for intake_id, position, patient_id in IntakeMedication.objects.values_list(
        "intake_id", "position", "intake__patient_id"
    ):
        assert patient_id in patients
        positions[intake_id].append(position)
    assert all(sorted(found) == list(range(len(found))) for found in positions.values())
    for patient_id, numbers in _versions_by_patient().items():
        assert numbers == list(range(1, len(numbers) + 1)), patient_id
    formula_clinics = dict(FormulaVersion.objects.values_list("formula_id", "formula__clinic_id"))
    for review in Review.objects.select_related("intake"):
        assert review.intake.patient_id == review.patient_id
        warned = list(dict.fromkeys(f["key"] for f in review.findings if f["severity"] == "warn"))
        acknowledged = [entry["key"] for entry in review.acknowledgements]
        assert acknowledged == (warned if review.decision == "candidate" else [])
        assert review.decision == "not_candidate" or review.verdict != "ineligible"
        assert review.intake.submitted_at <= review.signed_at
        assert review.signed_at.date() <= review.session_date
        assert review.formula_id is not None
        assert formula_clinics[review.formula_id] == patients[review.patient_id]
    # Treated only after a signed "candidate" review.
    candidates = defaultdict(list)
    for patient_id, signed_at in Review.objects.filter(decision="candidate").values_list(
        "patient_id", "signed_at"
    ):
        candidates[patient_id].append(signed_at)
    for patient_id, prepared_at in Preparation.objects.values_list("patient_id", "prepared_at"):
        assert any(signed < prepared_at for signed in candidates[patient_id])

    # The application reads the data as its own: the recall report of the recent recall lists patients.
    recalled = (
        Lot.objects.filter(recalled_at__isnull=False)
        .select_related("clinic")
        .order_by("-recalled_at")
        .first()
    )
    assert recalled is not None
    director = Membership.objects.get(clinic=recalled.clinic, role=Role.MEDICAL_DIRECTOR).user
    exposure = formulary_services.lot_exposure(caller=Caller(user=director), lot=recalled, limit=10)
    assert exposure.patient_count >= 1


def _versions_by_patient() -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for patient_id, version in Intake.objects.order_by("patient_id", "version").values_list(
        "patient_id", "version"
    ):
        found[patient_id].append(version)
    return found


@pytest.mark.django_db
def test_the_generator_screens_as_the_application_does() -> None:
    """The generator reads the formula facts and screens intakes its own way, for speed (once per formula
    version, the formula's findings memoised): it must find exactly what the application finds."""
    ctx = _context(4, "formulary")
    for data in ctx.clinics:
        for formula in data.formulas:
            for version in formula.versions:
                expected = formulary_services.planned_formula_facts(
                    clinic=data.clinic, formula_version_id=version.version_id
                )
                assert version.facts == expected
                # The templates the generator kept are the ones the clinic's jurisdiction allows.
                findings = formulary_rules.regulatory_findings(expected, data.clinic.jurisdiction)
                assert not [finding for finding in findings if finding.severity == "block"], formula.name
    jobs, _owners = intake_jobs(ctx)
    plan = jobs[0].args[1]
    catalogue: Catalogue = plan.catalogue
    history = _History(random.Random("compare"), plan, range(1, 10_000))  # noqa: S311
    checked = 0
    memo: dict[tuple[Any, ...], Any] = {}
    for patient in jobs[0].args[2][:40]:
        answers: list[Any] = []
        history.add_version(patient, answers, [], patient.registered_day, 36_000, plan.desk[0])
        patient_facts, intake_facts = _facts(patient, 1, answers[-1], catalogue)
        for formula in plan.formulas:
            version = formula.version_on(patient.registered_day + 3)
            facts = ScreeningFacts(
                patient=patient_facts,
                intake=intake_facts,
                session_date=date.fromordinal(patient.registered_day + 3),
                conditions=catalogue.conditions,
                formula=version.facts,
                areas=formula.areas[:1],
                jurisdiction=plan.jurisdiction,
            )
            assert screened(facts, version.version_id, memo) == screen(facts)
            checked += 1
    assert checked >= 40


def test_local_timestamps_and_volumes_as_text() -> None:
    paris = 3600
    assert local_stamp_text(date(2026, 1, 2).toordinal(), 9 * 3600, paris) == "2026-01-02 08:00:00"
    assert local_stamp_text(date(2026, 1, 2).toordinal(), 1800, paris) == "2026-01-01 23:30:00"
    assert local_stamp_text(date(2026, 1, 2).toordinal(), 23 * 3600, -5 * 3600) == "2026-01-03 04:00:00"
    assert [ml_text(v) for v in (2500, -2500, 5, 0, 30_000)] == [
        "2.500",
        "-2.500",
        "0.005",
        "0.000",
        "30.000",
    ]
    assert math.isclose(float(ml_text(1234)), 1.234)


# --- The sessions family (bench/treatments.py) -------------------------------------------------------------


@pytest.mark.django_db
def test_session_rows_are_a_function_of_the_seed() -> None:
    ctx = _context(6, "stock & preparations")
    jobs = session_jobs(ctx)
    assert jobs and len({job.args[1].clinic_id for job in jobs}) == 2
    first = [job.build(*job.args) for job in jobs]
    assert first == [job.build(*job.args) for job in jobs]
    other = jobs[0].build(jobs[0].args[0].replace("6:", "7:", 1), *jobs[0].args[1:])
    assert other["charted"] != first[0]["charted"], "another seed, other rows"
    # One session per visit, in the visits' order, ids included.
    sessions = [row for result in first for row in result["session"]]
    assert len(sessions) == sum(len(data.visits) for data in ctx.clinics)
    ids = [row[0] for row in sessions]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    preparations = [row[1] for result in first for row in result["session_preparation"]]
    assert sorted(preparations) == sorted(pk for data in ctx.clinics for pk in data.visits.preparation_ids), (
        "the visit's preparation, once"
    )


def test_point_pools_stay_inside_their_outlines() -> None:
    for spec in AREAS:
        pool = point_pool(f"test:{spec['code']}", spec["outline"], size=60)
        points = json.loads(pool.points(0, len(pool)))
        assert len(points) == len(pool) >= 30, spec["code"]
        assert len({tuple(point) for point in points}) == len(points)
        assert all(point_in_polygon((x, y), spec["outline"]) for x, y in points), spec["code"]
        assert json.loads(pool.points(3, 5)) == points[3:8]


@pytest.mark.django_db
def test_generated_sessions_are_consistent_and_chartable() -> None:
    generate(TINY, seed=2, workers=1)
    assert not AuditEvent.objects.exists()
    assert audit_problems() == []
    sessions = list(
        TreatmentSession.objects.select_related("plan__protocol_version", "clinic").order_by(
            "plan_id", "number"
        )
    )
    assert len(sessions) == Preparation.objects.count() > 100

    # One session per preparation (the patient's own), a plan per series, numbered 1…n, within its protocol.
    used = dict(SessionPreparation.objects.values_list("preparation_id", "session_id"))
    assert len(used) == len(sessions)
    prepared = {
        pk: (patient, total)
        for pk, patient, total in Preparation.objects.values_list("id", "patient_id", "total_volume_ml")
    }
    by_plan: dict[int, list[TreatmentSession]] = defaultdict(list)
    for session in sessions:
        by_plan[session.plan_id].append(session)
    plans = {plan.pk: plan for plan in TreatmentPlan.objects.select_related("protocol_version__protocol")}
    assert set(by_plan) == set(plans)
    intervals = []
    for plan_id, series in by_plan.items():
        plan, version = plans[plan_id], plans[plan_id].protocol_version
        assert [session.number for session in series] == list(range(1, len(series) + 1))
        assert version.protocol.clinic_id is None, "a seeded template"
        assert version.sessions_min <= plan.planned_sessions <= version.sessions_max
        assert len(series) <= plan.planned_sessions
        assert plan.indication == version.protocol.indication
        assert all(s.patient_id == plan.patient_id and s.clinic_id == plan.clinic_id for s in series)
        dates = [session.session_date for session in series]
        intervals += [(later - earlier).days for earlier, later in itertools.pairwise(dates)]
        assert all(
            (later - earlier).days >= version.interval_min_days
            for earlier, later in itertools.pairwise(dates)
        )
        assert plan.activated_at is not None
        assert plan.created_at <= plan.activated_at < series[0].checked_in_at
        if plan.status == TreatmentPlan.Status.STOPPED:
            assert plan.stop_reason and plan.ended_at is not None and len(series) < plan.planned_sessions
        if plan.status == TreatmentPlan.Status.COMPLETED:
            assert len(series) == plan.planned_sessions and plan.ended_at is not None
        if any(session.status == TreatmentSession.Status.OPEN for session in series):
            assert plan.status == TreatmentPlan.Status.ACTIVE and series[-1].status == "open"
    statuses = Counter(plan.status for plan in plans.values())
    assert statuses["completed"] and statuses["active"] and statuses["stopped"] < 0.15 * len(plans)
    assert min(intervals) >= 7

    # Open sessions on the clinic's last day with visits only (all of them), signed ones with their aftercare.
    last_day = {
        clinic: max(s.session_date for s in sessions if s.clinic_id == clinic)
        for clinic in {s.clinic_id for s in sessions}
    }
    aftercare = set(Aftercare.objects.values_list("session_id", flat=True))
    for session in sessions:
        is_open = session.status == TreatmentSession.Status.OPEN
        assert is_open == (session.session_date == last_day[session.clinic_id])
        assert (session.signed_at is None) == is_open == (session.pk not in aftercare)
        charted_at, signed_at = session.charted_at, session.signed_at
        assert charted_at is not None and session.checked_in_at < charted_at
        assert signed_at is None or charted_at < signed_at
        assert session.session_date == charted_at.astimezone(session.clinic.zone).date()
        assert [f["code"] for f in session.gate_findings][-2:] == ["consent-valid", "bruising-unresolved"]
        if session.cosigned_at is not None:
            assert session.cosign_required and session.cosigned_by_id != session.signed_by_id
            assert signed_at is not None and session.cosigned_at > signed_at
    assert 0.08 < sum(s.cosign_required for s in sessions) / len(sessions) < 0.6

    # Charted areas: planned areas of the protocol, points inside the outline, depths and volumes in range,
    # from the session's own preparation and never more than it holds.
    protocol_areas = {
        (row.version_id, row.area_id): row for row in ProtocolArea.objects.select_related("technique")
    }
    plan_areas = set(PlanArea.objects.values_list("plan_id", "area_id"))
    charted: dict[int, Decimal] = defaultdict(Decimal)
    rows = ChartedArea.objects.select_related("area", "technique", "session__plan")
    count = 0
    for row in rows:
        count += 1
        session = row.session
        assert used[row.preparation_id] == session.pk
        assert prepared[row.preparation_id][0] == session.patient_id
        assert (session.plan_id, row.area_id) in plan_areas
        rule = protocol_areas[(session.plan.protocol_version_id, row.area_id)]
        assert row.technique_id == rule.technique_id
        assert rule.depth_min_mm <= row.depth_mm <= rule.depth_max_mm
        assert row.technique.depth_min_mm <= row.depth_mm <= row.technique.depth_max_mm
        assert row.volume_per_point_ml is not None
        assert row.technique.volume_per_point_max_ml is not None
        assert row.volume_per_point_ml <= row.technique.volume_per_point_max_ml
        assert row.total_volume_ml == row.volume_per_point_ml * row.injections
        assert 1 <= len(row.points) <= row.injections
        assert all(point_in_polygon((x, y), row.area.outline) for x, y in row.points), row.area.code
        charted[row.preparation_id] += row.total_volume_ml
    assert 2.5 < count / len(sessions) < 6
    assert all(volume <= prepared[pk][1] for pk, volume in charted.items())

    # The scenarios' open sessions chart through the real service, with the body the benchmark sends.
    for clinic in Clinic.objects.all():
        bodies = chart_bodies(clinic.pk)
        assert bodies, "an open session to chart in every clinic"
        practitioner = Membership.objects.filter(clinic=clinic, role=Role.PRACTITIONER).first()
        assert practitioner is not None
        caller = Caller(user=practitioner.user)
        for session_id, body in list(bodies.items())[:2]:
            session = TreatmentSession.objects.get(pk=session_id)
            for _ in range(2):  # the same open session, saved again and again
                saved = treatment_services.session_chart(
                    caller=caller, session=session, chart=_chart_in(ChartInSchema(**body))
                )
                assert saved.chart_findings == []
            assert ChartedArea.objects.filter(session=session).count() == len(body["areas"])
            assert SessionPreparation.objects.filter(session=session).count() == 1


# --- The scheduling and outcomes families (bench/scheduling.py, bench/outcomes.py) -------------------------


def _overlaps(rows: list[tuple[int, int, int | None, int, Any, Any]]) -> list[tuple[int, int]]:
    """Pairs of active appointments that hold the same practitioner, room or patient at the same time."""
    found: list[tuple[int, int]] = []
    for position in (1, 2, 3):
        by_who: dict[int, list[tuple[Any, Any, int]]] = defaultdict(list)
        for row in rows:
            who = row[position]
            if isinstance(who, int):
                by_who[who].append((row[4], row[5], row[0]))
        for intervals in by_who.values():
            intervals.sort()
            for (_start, end, first), (start, _end, second) in itertools.pairwise(intervals):
                if start < end:
                    found.append((first, second))
    return found


@pytest.mark.django_db
def test_generated_calendar_outcomes_and_side_effects_are_what_the_application_reads() -> None:
    generate(TINY, seed=3, workers=1)
    assert not AuditEvent.objects.exists()
    sessions = {
        row[0]: row for row in TreatmentSession.objects.values_list("id", "plan_id", "number", "room_id")
    }

    # One checked-in appointment per session (its plan, number and room); a few not kept; some booked ahead.
    appointments = list(Appointment.objects.all())
    kept = [a for a in appointments if a.status == Appointment.Status.CHECKED_IN]
    assert sorted(a.treatment_session_id for a in kept if a.treatment_session_id) == sorted(sessions)
    for appointment in kept:
        assert appointment.treatment_session_id is not None
        _id, plan, number, room = sessions[appointment.treatment_session_id]
        assert (appointment.plan_id, appointment.series_number, appointment.room_id) == (plan, number, room)
        assert appointment.checked_in_at is not None and appointment.created_at < appointment.starts_at
    statuses = Counter(a.status for a in appointments)
    assert statuses["cancelled"] and statuses["no_show"] and statuses["booked"]
    assert all(a.cancel_reason for a in appointments if a.status == Appointment.Status.CANCELLED)
    as_of = DEFAULT_AS_OF
    for appointment in appointments:
        if appointment.status == Appointment.Status.BOOKED:
            assert appointment.starts_at.date() > as_of and appointment.plan is not None
            assert appointment.series_number is not None
            assert appointment.series_number > appointment.plan.sessions.count()

    # Nobody double-booked, and the database's guard is back after the load.
    active = [
        (a.pk, a.practitioner_id, a.room_id, a.patient_id, a.starts_at, a.ends_at)
        for a in appointments
        if a.status in ("booked", "checked_in")
    ]
    assert _overlaps(active) == []
    if connection.vendor == "sqlite":  # the load drops the guards (triggers here) and recreates them
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                ["scheduling_appointment"],
            )
            assert cursor.fetchone()[0] == 2
    else:  # and PostgreSQL's exclusion constraints (practitioner, room, patient)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'x'",
                ["scheduling_appointment"],
            )
            assert cursor.fetchone()[0] == 3
    # On either database, the guard refuses an overlapping insert.
    first = kept[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            clinic_id=first.clinic_id,
            patient_id=first.patient_id,
            practitioner_id=first.practitioner_id,
            kind="consultation",
            starts_at=first.starts_at,
            ends_at=first.ends_at,
            created_at=first.created_at,
            created_by_id=first.created_by_id,
        )

    # The scenarios' picks open through the real services: a busy day, a series to book, a long plan.
    for clinic in Clinic.objects.all():
        picks = scheduling_picks(random.Random(1), clinic.pk)
        assert picks["calendar_days"] and picks["series_plans"] and picks["progress_plans"]
        desk = Membership.objects.filter(clinic=clinic, role=Role.FRONT_DESK).first()
        practitioner = Membership.objects.filter(clinic=clinic, role=Role.PRACTITIONER).first()
        assert desk is not None and practitioner is not None
        busiest = date.fromisoformat(picks["calendar_days"][-1])
        view = scheduling_services.calendar_view(
            caller=Caller(user=desk.user), clinic=clinic, first_day=busiest
        )
        assert view.appointments
        to_book = TreatmentPlan.objects.get(pk=picks["series_plans"][0])
        series = scheduling_services.series_view(caller=Caller(user=desk.user), plan=to_book, audit=False)
        assert series.proposals and all(p.state in ("booked", "proposed") for p in series.proposals)
        longest = TreatmentPlan.objects.get(pk=picks["progress_plans"][0])
        progress = outcome_services.progress_of(
            caller=Caller(user=practitioner.user), plan=longest, audit=False
        )
        assert progress.series and progress.sessions_done == longest.sessions.count()

    # Outcomes: a baseline per plan, an assessment per session, each measure its protocol asks.
    assert Assessment.objects.filter(kind="baseline").count() == TreatmentPlan.objects.count()
    assert set(Assessment.objects.filter(kind="session").values_list("session_id", flat=True)) == set(
        sessions
    )
    assert Measurement.objects.count() > 2 * len(sessions)
    for measurement in Measurement.objects.select_related("assessment__plan__protocol_version")[:500]:
        scale = outcome_rules.SCALES[measurement.code]
        assert scale.minimum <= measurement.value <= scale.maximum
        if scale.landmark:
            assert measurement.landmark_id is not None
        if scale.kind == "items":
            assert measurement.items is not None and sum(measurement.items) == measurement.value

    # Side effects (bench/safety.py): a few percent of the signed sessions, each linked as the rules link it.
    signed = TreatmentSession.objects.filter(status=TreatmentSession.Status.SIGNED).count()
    events = list(AdverseEvent.objects.all())
    assert 0.01 * signed < len(events) < 0.06 * signed
    assert Counter(event.kind for event in events).most_common(1)[0][0] == "bruising"
    session_dates = dict(TreatmentSession.objects.values_list("id", "session_date"))
    links: dict[int, list[AdverseEventSession]] = defaultdict(list)
    for link in AdverseEventSession.objects.all():
        links[link.event_id].append(link)
    lots_of_session: dict[int | None, set[int]] = defaultdict(set)
    for session_id, lot_id in PreparationLine.objects.values_list(
        "preparation__session_use__session_id", "lot_id"
    ):
        lots_of_session[session_id].add(lot_id)
    for event in events:
        assert event.resolved_on is None or event.resolved_on >= event.onset_on
        own = links[event.pk]
        assert sum(link.primary for link in own) == 1
        assert all(session_dates[link.session_id] <= event.onset_on for link in own)
        assert all(link.kind == event.kind and link.onset_on == event.onset_on for link in own)
        if event.kind != "infection":
            assert len(own) == 1 and own[0].days_after <= 2
    for lot_link in AdverseEventLot.objects.all():
        assert lot_link.session_id is not None
        assert lot_link.lot_id in lots_of_session[lot_link.session_id]

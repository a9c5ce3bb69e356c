"""``make bench``: measure mesoclinic's screens on the real server with a generated data set.

    python -m bench.run run --scale smoke|clinic|chain --db sqlite|postgres [--duration 30s] [--users 50] …
    python -m bench.run compare --db sqlite [--small smoke --large chain]

``run``: (1) prepares the data set (generated once per scale and seed, copied fresh for every run, see
bench/database.py), (2) starts gunicorn with production settings and BENCH_FLOOR=1, (3) signs the personas in
through the real form (front desk and practitioners with a password, medical directors with a password and
a TOTP code) and creates API tokens with ``manage.py api_token``, (4) runs each scenario of
bench/locustfile.py with locust, headless, in a second process, (5) stops the server, verifies the audit
chain and writes ``bench/results/<date>-<scale>-<db>.json`` and ``.md``. Exit status 1 if any request failed
(or the audit chain broke); nothing about time is asserted. ``compare`` writes the scale-independence table
from the latest results of two scales.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.database import ROOT, Database, prepare_postgres, prepare_sqlite, var_dir
from bench.server import Server, sign_in

RESULTS = ROOT / "bench" / "results"
SESSION_REFRESH_SECONDS = 10 * 60  # sessions end after 15 idle minutes (SESSION_IDLE_SECONDS)
PATIENTS_PER_CLINIC = 1_000  # ids each clinic's simulated staff pick from
SEARCHES_PER_CLINIC = 300
LOTS_PER_CLINIC = 40  # lots with an exposure the recall report scenarios pick from
SESSIONS_PER_CLINIC = 1_000  # sessions the session API reads, plans the plan page and the gate open


@dataclass(frozen=True)
class Scenario:
    name: str
    classes: tuple[str, ...]  # locust user classes (bench/locustfile.py)
    pools: tuple[str, ...]  # the sessions or tokens it needs
    title: str
    mixed: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("floor", ("FloorUser",), (), "bare view: one indexed query, a tiny template (anonymous)"),
    Scenario("search_ui", ("SearchUiUser",), ("desk",), "GET /patients/?q=… as front desk"),
    Scenario("search_api", ("SearchApiUser",), ("desk_token",), "GET /api/v1/patients?q=… (bearer token)"),
    Scenario("chart_ui", ("ChartUiUser",), ("practitioner",), "GET /patients/<id>/ as practitioner"),
    Scenario("chart_api", ("ChartApiUser",), ("practitioner_token",), "GET /api/v1/patients/<id> (token)"),
    Scenario("create_api", ("CreateApiUser",), ("desk_token",), "POST /api/v1/patients (token)"),
    Scenario(
        "access_log", ("AccessLogUser",), ("director",), "GET /patients/<id>/access/ as medical director"
    ),
    Scenario(
        "screening_panel",
        ("ScreeningPanelUser",),
        ("practitioner",),
        "GET /screening/patients/<id>/panel/ (HX-Request): the chart page's htmx part, as practitioner",
    ),
    Scenario(
        "screening_ui",
        ("ScreeningUiUser",),
        ("practitioner",),
        "GET /screening/patients/<id>/ (the screening and review page) as practitioner",
    ),
    Scenario(
        "screening_api",
        ("ScreeningApiUser",),
        ("practitioner_token",),
        "GET /api/v1/patients/<id>/screening (token)",
    ),
    Scenario("stock_ui", ("StockUiUser",), ("desk",), "GET /formulary/stock/ as front desk"),
    Scenario("stock_api", ("StockApiUser",), ("desk_token",), "GET /api/v1/formulary/stock (token)"),
    Scenario(
        "recall_ui",
        ("RecallUiUser",),
        ("director",),
        "GET /formulary/lots/<id>/exposure/ (recall report, first page) as medical director",
    ),
    Scenario(
        "recall_api",
        ("RecallApiUser",),
        ("practitioner_token",),
        "GET /api/v1/formulary/lots/<id>/exposure (first 100 patients, token)",
    ),
    Scenario(
        "patient_lots_ui",
        ("PatientLotsUiUser",),
        ("practitioner",),
        "GET /formulary/patients/<id>/lots/ (which lots did the patient receive) as practitioner",
    ),
    Scenario(
        "patient_lots_api",
        ("PatientLotsApiUser",),
        ("practitioner_token",),
        "GET /api/v1/formulary/patients/<id>/lots (token)",
    ),
    Scenario(
        "session_chart_ui",
        ("SessionChartUiUser",),
        ("practitioner",),
        "GET /treatments/sessions/<id>/chart/ (the body map of an open session) as practitioner",
    ),
    Scenario(
        "session_api", ("SessionApiUser",), ("practitioner_token",), "GET /api/v1/sessions/<id> (token)"
    ),
    Scenario(
        "chart_save_api",
        ("ChartSaveApiUser",),
        ("practitioner_token",),
        "PUT /api/v1/sessions/<id>/chart: an open session's chart saved again (points, depths, volumes "
        "of its preparation; no finding), with the stock check and the audit row, token",
    ),
    Scenario(
        "plan_ui",
        ("PlanUiUser",),
        ("practitioner",),
        "GET /treatments/plans/<id>/ (sessions with their body maps, the gate) as practitioner",
    ),
    Scenario(
        "gate_api",
        ("GateApiUser",),
        ("desk_token",),
        "GET /api/v1/plans/<id>/gate?practitioner=<id> (the check-in gate for today, token of the desk)",
    ),
    Scenario(
        "cosign_ui",
        ("CosignUiUser",),
        ("director",),
        "GET /treatments/cosign/ (the co-signature queue) as medical director",
    ),
    Scenario(
        "day_calendar_ui",
        ("DayCalendarUiUser",),
        ("desk",),
        "GET /scheduling/?date=<busy day> (the clinic's day calendar, every practitioner) as front desk",
    ),
    Scenario(
        "week_calendar_ui",
        ("WeekCalendarUiUser",),
        ("desk",),
        "GET /scheduling/?view=week&date=<day> (the week view) as front desk",
    ),
    Scenario(
        "calendar_api",
        ("CalendarApiUser",),
        ("desk_token",),
        "GET /api/v1/scheduling/calendar?date=<day> (a day of the calendar, token of the desk)",
    ),
    Scenario(
        "series_ui",
        ("SeriesUiUser",),
        ("desk",),
        "GET /scheduling/series/<plan>/ (the remaining sessions of a plan, each with its window and first "
        "free slot over the booking horizon) as front desk",
    ),
    Scenario(
        "series_api",
        ("SeriesApiUser",),
        ("desk_token",),
        "GET /api/v1/scheduling/series/<plan> (the series proposal, token of the desk)",
    ),
    Scenario(
        "progress_ui",
        ("ProgressUiUser",),
        ("practitioner",),
        "GET /outcomes/plans/<id>/ (the progress page of one of the longest plans: every timepoint's "
        "measurements, the responder verdict) as practitioner",
    ),
    Scenario(
        "safety_report_ui",
        ("SafetyReportUiUser",),
        ("director",),
        "GET /safety/report/ (side effects per protocol, lot, practitioner over the default period) as "
        "medical director",
    ),
    Scenario(
        "signal_scan_ui",
        ("SignalScanUiUser",),
        ("director",),
        "POST /safety/signals/scan/ (every infection of the window against its sources, R-SIGNAL; writes the "
        "signals) as medical director",
    ),
    Scenario(
        "mixed",
        ("DeskUser", "PractitionerUser", "DirectorUser"),
        ("desk", "practitioner", "director"),
        "front desk 50 %, practitioners 40 %, directors 10 %, with think time (see docs/performance.md)",
        mixed=True,
    ),
)
# Shares of the mixed workload's users (the weights of the locust classes).
MIXED_SHARES = {"desk": 0.5, "practitioner": 0.4, "director": 0.1}


def parse_duration(text: str) -> float:
    """``30``, ``30s``, ``2m``, ``1m30s`` → seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 30s, 2m, 1m30s)")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


# --- The plan: who signs in, which patients and searches they use ----------------------------------------


@dataclass
class Account:
    username: str
    clinic: int
    totp_key: str | None = None


@dataclass
class World:
    """What the simulated staff need to know about the data set (read once, before the server starts)."""

    clinics: dict[str, dict[str, list[Any]]]
    accounts: dict[str, list[Account]]  # persona → accounts, interleaved across clinics
    tokens: dict[str, list[dict[str, Any]]]
    password: str
    floor_clinic: int


def _interleaved(accounts: list[Account]) -> list[Account]:
    """c001-desk1, c002-desk1, …, c001-desk2, …: the first N logins cover N clinics."""
    by_clinic: dict[int, list[Account]] = {}
    for account in sorted(accounts, key=lambda item: item.username):
        by_clinic.setdefault(account.clinic, []).append(account)
    columns = [by_clinic[clinic] for clinic in sorted(by_clinic)]
    return [
        column[row]
        for row in range(max(map(len, columns), default=0))
        for column in columns
        if row < len(column)
    ]


def search_terms(rng: random.Random, patients: Sequence[tuple[Any, ...]], count: int) -> list[str]:
    """What a front desk types: name prefixes (as spelled, accents included), a name and a first name,
    record numbers, dates of birth."""
    terms: list[str] = []
    for _ in range(count):
        _id, family, given, number, born = rng.choice(patients)
        draw = rng.random()
        if draw < 0.6:
            terms.append(family[: rng.randint(3, 5)])
        elif draw < 0.75:
            terms.append(f"{family} {given[: rng.randint(2, 4)]}")
        elif draw < 0.9:
            terms.append(number if rng.random() < 0.5 else str(int(number.split("-")[1])))
        else:
            terms.append(born.strftime("%d/%m/%Y") if rng.random() < 0.5 else born.isoformat())
    return terms


def read_world(env: dict[str, str], seed: int) -> World:
    """Read the data set through Django (in this process, before the server starts), create API tokens."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from bench.generate import BENCH_PASSWORD
    from mesoclinic.accounts.models import Membership, Role
    from mesoclinic.patients.models import Patient

    rng = random.Random(f"{seed}:plan")  # noqa: S311 (load pattern, not secrets)
    clinics: dict[str, dict[str, list[Any]]] = {}
    clinic_ids = sorted(set(Patient.objects.values_list("clinic_id", flat=True)))
    for clinic_id in clinic_ids:
        rows = list(
            Patient.objects.filter(clinic_id=clinic_id).values_list(
                "id", "family_name", "given_name", "record_number", "date_of_birth"
            )
        )
        picked = rng.sample(rows, min(PATIENTS_PER_CLINIC, len(rows)))
        clinics[str(clinic_id)] = {
            "patients": [row[0] for row in picked],
            "searches": search_terms(rng, rows, SEARCHES_PER_CLINIC),
            # A stream of its own, so that the picks above stay what they were before these scenarios.
            **clinical_picks(random.Random(f"{seed}:plan:clinical:{clinic_id}"), clinic_id),  # noqa: S311
        }
    keys = dict(TOTPDevice.objects.filter(confirmed=True).values_list("user__username", "key"))
    accounts: dict[str, list[Account]] = {}
    for persona, role in (
        ("desk", Role.FRONT_DESK),
        ("practitioner", Role.PRACTITIONER),
        ("director", Role.MEDICAL_DIRECTOR),
    ):
        members = Membership.objects.filter(role=role, is_active=True, clinic_id__in=clinic_ids)
        accounts[persona] = _interleaved(
            [
                Account(username, clinic_id, keys.get(username))
                for username, clinic_id in members.values_list("user__username", "clinic_id")
            ]
        )
    tokens: dict[str, list[dict[str, Any]]] = {}
    for pool, persona in (("desk_token", "desk"), ("practitioner_token", "practitioner")):
        first_per_clinic: dict[int, Account] = {}
        for account in accounts[persona]:
            first_per_clinic.setdefault(account.clinic, account)
        tokens[pool] = []
        for account in first_per_clinic.values():
            out = io.StringIO()
            call_command("api_token", account.username, name="bench", stdout=out)
            tokens[pool].append(
                {"username": account.username, "clinic": account.clinic, "token": out.getvalue().strip()}
            )
    connections.close_all()
    return World(clinics, accounts, tokens, BENCH_PASSWORD, clinic_ids[0])


def clinical_picks(rng: random.Random, clinic_id: int) -> dict[str, list[int]]:
    """Who and what the clinical scenarios ask for in one clinic: patients with an intake (screening),
    patients who received preparations (their lots), and lots that were drawn into preparations (the recall
    report), the recalled ones first (half of the picks when there are enough)."""
    from django.db.models import Exists, OuterRef

    from mesoclinic.formulary.models import Lot, Preparation, PreparationLine
    from mesoclinic.screening.models import Intake

    screened = sorted(
        set(Intake.objects.filter(patient__clinic_id=clinic_id).values_list("patient_id", flat=True))
    )
    treated = sorted(
        set(Preparation.objects.filter(clinic_id=clinic_id).values_list("patient_id", flat=True))
    )
    used = Lot.objects.filter(clinic_id=clinic_id).filter(
        Exists(PreparationLine.objects.filter(lot_id=OuterRef("pk")))
    )
    recalled = sorted(used.filter(recalled_at__isnull=False).values_list("id", flat=True))
    others = sorted(used.filter(recalled_at__isnull=True).values_list("id", flat=True))
    lots = rng.sample(recalled, min(len(recalled), LOTS_PER_CLINIC // 2))
    lots += rng.sample(others, min(len(others), LOTS_PER_CLINIC - len(lots)))
    return {
        "screened": rng.sample(screened, min(PATIENTS_PER_CLINIC, len(screened))),
        "treated": rng.sample(treated, min(PATIENTS_PER_CLINIC, len(treated))),
        "lots": lots,
        **treatment_picks(rng, clinic_id),
        **scheduling_picks(random.Random(f"{rng.random()}:scheduling"), clinic_id),  # noqa: S311
    }


PROGRESS_PLANS = 100  # the longest plans of a clinic (the most sessions: 12 at most in the templates)
CALENDAR_DAYS = 60  # the busiest clinic-local days of the last 120 days with appointments, and what is booked


def scheduling_picks(rng: random.Random, clinic_id: int) -> dict[str, Any]:
    """What the scheduling scenarios ask for in one clinic: days of its calendar (the busiest of the recent
    ones and the booked days ahead, clinic-local ISO dates) and active plans with sessions still to book
    (the series proposal)."""
    from django.db.models import Count, F

    from mesoclinic.clinics.models import Clinic
    from mesoclinic.scheduling.models import Appointment
    from mesoclinic.treatments.models import TreatmentPlan

    zone = Clinic.objects.get(pk=clinic_id).zone
    per_day: dict[str, int] = {}
    recent = Appointment.objects.filter(clinic_id=clinic_id).order_by("-starts_at")[:20_000]
    for starts_at in recent.values_list("starts_at", flat=True):
        day = starts_at.astimezone(zone).date().isoformat()
        per_day[day] = per_day.get(day, 0) + 1
    days = sorted(per_day, key=lambda day: (-per_day[day], day))[:CALENDAR_DAYS]
    plans = sorted(
        TreatmentPlan.objects.filter(clinic_id=clinic_id, status=TreatmentPlan.Status.ACTIVE)
        .annotate(done=Count("sessions"))
        .filter(done__lt=F("planned_sessions"))
        .values_list("id", flat=True)
    )
    longest = (
        TreatmentPlan.objects.filter(clinic_id=clinic_id)
        .annotate(done=Count("sessions"))
        .order_by("-done", "id")
        .values_list("id", flat=True)[:PROGRESS_PLANS]
    )
    return {
        "calendar_days": sorted(days),
        "series_plans": rng.sample(plans, min(SESSIONS_PER_CLINIC, len(plans))),
        "progress_plans": list(longest),
    }


def treatment_picks(rng: random.Random, clinic_id: int) -> dict[str, Any]:
    """What the treatment scenarios ask for in one clinic: sessions (the session API), active plans with the
    practitioner of their last session (the plan page, the gate), and the open sessions that can be charted
    (the chart page and the chart save, with the body each save sends: see :func:`chart_body`)."""
    from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession

    sessions = list(
        TreatmentSession.objects.filter(clinic_id=clinic_id).order_by("id").values_list("id", flat=True)
    )
    last_practitioner: dict[int, int] = {}
    for plan_id, practitioner_id in (
        TreatmentSession.objects.filter(clinic_id=clinic_id, plan__status=TreatmentPlan.Status.ACTIVE)
        .order_by("plan_id", "number")
        .values_list("plan_id", "practitioner_id")
    ):
        last_practitioner[plan_id] = practitioner_id
    plans = sorted(last_practitioner.items())
    bodies = {str(session_id): body for session_id, body in chart_bodies(clinic_id).items()}
    return {
        "sessions": rng.sample(sessions, min(SESSIONS_PER_CLINIC, len(sessions))),
        "plans": [list(pair) for pair in rng.sample(plans, min(SESSIONS_PER_CLINIC, len(plans)))],
        "open_sessions": sorted(int(key) for key in bodies),
        "chart_bodies": bodies,
    }


def chart_bodies(clinic_id: int, limit: int = 200) -> dict[int, dict[str, Any]]:
    """The open sessions of a clinic that can be charted (every lot of their preparations still usable on
    the session's day), each with :func:`chart_body`."""
    from django.db.models import Exists, OuterRef, Q

    from mesoclinic.formulary.models import PreparationLine
    from mesoclinic.treatments.models import TreatmentSession

    blocked = PreparationLine.objects.filter(preparation__session_use__session=OuterRef("pk")).filter(
        Q(lot__recalled_at__isnull=False) | Q(lot__expires_on__lt=OuterRef("session_date"))
    )
    sessions = (
        TreatmentSession.objects.filter(clinic_id=clinic_id, status=TreatmentSession.Status.OPEN)
        .filter(~Exists(blocked))
        .order_by("id")[:limit]
    )
    return {session.pk: chart_body(session) for session in sessions}


def chart_body(session: Any) -> dict[str, Any]:
    """The body of ``PUT /api/v1/sessions/<id>/chart`` that charts the open session again as the generator
    charted it: its plan's areas, points inside their outlines, the protocol's technique and a depth inside
    both ranges, volumes of its own preparation (so the service finds nothing to warn about)."""
    from mesoclinic.treatments.models import ChartedArea

    areas = (
        ChartedArea.objects.filter(session=session).select_related("area", "technique").order_by("position")
    )
    return {
        "areas": [
            {
                "area": row.area.code,
                "technique": row.technique.code,
                "depth_mm": float(row.depth_mm),
                "points": row.points,
                "needle": row.needle,
                "injections": row.injections,
                "volume_per_point_ml": float(row.volume_per_point_ml)
                if row.volume_per_point_ml is not None
                else None,
                "total_volume_ml": None
                if row.volume_per_point_ml is not None
                else float(row.total_volume_ml),
                "preparation_id": row.preparation_id,
            }
            for row in areas
        ],
        "topical_anaesthetic": "none",
        "room_id": session.room_id,
        "notes": "Charted again (benchmark).",
    }


@dataclass
class Sessions:
    """Signed-in sessions per persona, opened through the real form as phases need them."""

    world: World
    port: int
    parallel: int
    opened: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logins: int = 0

    def _open(self, account: Account) -> dict[str, Any]:
        cookies = sign_in(self.port, account.username, self.world.password, account.totp_key)
        return {"username": account.username, "clinic": account.clinic, "at": time.time(), **cookies}

    def ensure(self, persona: str, count: int) -> list[dict[str, Any]]:
        accounts = self.world.accounts[persona]
        if not accounts:
            raise RuntimeError(f"the data set has no {persona} account")
        if persona == "director":  # a TOTP code signs in once: one session per account, shared by users
            count = min(count, len(accounts))
        current = [s for s in self.opened.get(persona, []) if time.time() - s["at"] < SESSION_REFRESH_SECONDS]
        missing = [accounts[index % len(accounts)] for index in range(len(current), count)]
        if missing:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                current += list(pool.map(self._open, missing))
            self.logins += len(missing)
        self.opened[persona] = current
        return current[:count]


def _plan(world: World, sessions: Sessions, scenario: Scenario, users: int) -> dict[str, Any]:
    plan: dict[str, Any] = {"floor_clinic": world.floor_clinic, "clinics": world.clinics}
    for pool in scenario.pools:
        if pool.endswith("_token"):
            plan[pool] = world.tokens[pool]
        else:
            share = MIXED_SHARES[pool] if scenario.mixed else 1.0
            plan[pool] = sessions.ensure(pool, max(1, math.ceil(users * share)))
    return plan


# --- Running ------------------------------------------------------------------------------------------


def run_locust(
    scenario: Scenario,
    plan: dict[str, Any],
    *,
    url: str,
    users: int,
    seconds: float,
    warmup: float,
    think: str,
    fixed: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One locust process running ``scenario``'s user classes; ``fixed``: exactly this many users of these
    classes (the others share the rest by their weights)."""
    directory = var_dir()
    directory.mkdir(parents=True, exist_ok=True)
    plan_path = directory / f"plan-{scenario.name}.json"
    samples_path = directory / f"samples-{scenario.name}.json"
    log_path = directory / f"locust-{scenario.name}.log"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    samples_path.unlink(missing_ok=True)
    spawn_rate = min(users, 50)
    run_time = math.ceil(seconds + warmup + users / spawn_rate + 1)
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        f"--users={users}",
        f"--spawn-rate={spawn_rate}",
        f"--run-time={run_time}s",
        f"--host={url}",
        "--only-summary",
        "--exit-code-on-error=0",
        "--loglevel=WARNING",
        *scenario.classes,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_PLAN": str(plan_path),
        "BENCH_SAMPLES": str(samples_path),
        "BENCH_WARMUP": str(warmup),
        "BENCH_THINK": think,
        "BENCH_FIXED": json.dumps(fixed or {}),
    }
    with log_path.open("w", encoding="utf-8") as log:
        finished = subprocess.run(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if finished.returncode != 0 or not samples_path.exists():
        tail = "\n".join(log_path.read_text(encoding="utf-8").splitlines()[-20:])
        raise RuntimeError(f"locust failed for {scenario.name} ({finished.returncode}):\n{tail}")
    payload: dict[str, Any] = json.loads(samples_path.read_text(encoding="utf-8"))
    return payload


def scenario_of(sample_name: str) -> str:
    """The scenario a request name belongs to: single screens are named after their scenario, the mixed
    workload's requests all start with "mixed"."""
    return "mixed" if sample_name.startswith("mixed") else sample_name


def run_together(
    chosen: Sequence[Scenario],
    world: World,
    sessions: Sessions,
    *,
    url: str,
    users: int,
    scenario_users: int,
    seconds: float,
    warmup: float,
    think: str,
) -> list[tuple[Scenario, int, dict[str, Any]]]:
    """Every chosen scenario in one locust process (``--together``, ``make bench-smoke``): each single screen
    with ``scenario_users`` users of its own class, the mixed workload with ``users``; then each scenario's
    samples apart. A harness check: the scenarios load the server at the same time, so their times are not
    the figures of a ``make bench`` run (one scenario after another)."""
    fixed: dict[str, int] = {}
    needs: dict[str, int] = {}
    for scenario in chosen:
        count = users if scenario.mixed else scenario_users
        if not scenario.mixed:
            fixed.update(dict.fromkeys(scenario.classes, count))
        for pool in scenario.pools:
            share = MIXED_SHARES[pool] if scenario.mixed else 1.0
            needs[pool] = needs.get(pool, 0) + max(1, math.ceil(count * share))
    plan: dict[str, Any] = {"floor_clinic": world.floor_clinic, "clinics": world.clinics}
    for pool, count in needs.items():
        # One signed-in session per account at most: the users share them (fewer argon2 sign-ins).
        plan[pool] = (
            world.tokens[pool]
            if pool.endswith("_token")
            else sessions.ensure(pool, min(count, len(world.accounts[pool])))
        )
    mixed_users = users if any(scenario.mixed for scenario in chosen) else 0
    together = Scenario(
        "together",
        tuple(name for scenario in chosen for name in scenario.classes),
        tuple(needs),
        "every scenario at once",
    )
    payload = run_locust(
        together,
        plan,
        url=url,
        users=sum(fixed.values()) + mixed_users,
        seconds=seconds,
        warmup=warmup,
        think=think,
        fixed=fixed,
    )
    samples: dict[str, list[Any]] = {}
    for sample in payload.get("samples", []):
        samples.setdefault(scenario_of(str(sample[0])), []).append(sample)
    return [
        (
            scenario,
            users if scenario.mixed else scenario_users,
            {**payload, "samples": samples.get(scenario.name, [])},
        )
        for scenario in chosen
    ]


def collect_static() -> bool:
    """``collectstatic``, in this process (set up by :func:`read_world`), unless the collected files are
    newer than every static source file (a manifest's post-processing costs seconds even when nothing
    changed). Whether it ran."""
    from django.conf import settings
    from django.contrib.staticfiles import finders
    from django.core.management import call_command

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.exists():
        built = manifest.stat().st_mtime
        newest = 0.0
        for finder in finders.get_finders():
            for path, storage in finder.list([]):
                newest = max(newest, Path(storage.path(path)).stat().st_mtime)
        if newest < built:
            return False
    call_command("collectstatic", interactive=False, verbosity=0)
    return True


def audit_verdict() -> str:
    """``manage.py audit_verify`` on the run's database, in this process (Django is set up by
    :func:`read_world` for that database): "BROKEN: …" when the chain does not verify."""
    from django.core.management import call_command
    from django.db import connections

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
    except Exception as exc:  # noqa: BLE001 (whatever breaks, the run reports it)
        return f"BROKEN: {exc} {err.getvalue()[-2000:]}".strip()
    finally:
        connections.close_all()
    return out.getvalue().strip()


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _commit() -> str:
    if os.environ.get("BENCH_COMMIT"):  # a snapshot outside git says what it is
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("django", "gunicorn", "locust", "psycopg")} | {
        "python": sys.version.split()[0]
    }


def command_run(args: argparse.Namespace) -> int:
    began = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - began:5.1f} s] {text}", flush=True)

    # SQLite serialises writes (and every audited read writes): more workers than cores only queue on its
    # lock, whose busy handler sleeps in growing steps. PostgreSQL overlaps them.
    args.workers = args.workers or (4 if args.db == "postgres" else 2)
    # Together (a harness check), one closed-loop user per screen is enough; one after another, as many
    # users as workers keep the server busy with that screen alone.
    args.scenario_users = args.scenario_users or (1 if args.together else args.workers)
    started = datetime.now(UTC)
    load_before = _load()
    database: Database = (
        prepare_sqlite(args.scale, args.seed, regenerate=args.regenerate, log=log)
        if args.db == "sqlite"
        else prepare_postgres(args.scale, args.seed, args.pg_url, regenerate=args.regenerate, log=log)
    )
    server_log = var_dir() / f"gunicorn-{args.scale}-{args.db}.log"
    server = Server(database.env, port=args.port, workers=args.workers, log_path=server_log)
    # The server's workers import the application while this process reads the data set and collects the
    # static files (nothing asks the server for a page before the sign-ins, after both).
    server.start()
    try:
        log("data set ready; server starting; reading what the simulated staff need")
        world = read_world(database.env, args.seed)
        log("read" + ("; static files collected" if collect_static() else "; static files current"))
    except BaseException:
        server.stop()
        raise
    chosen = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios]
    users = args.users or (200 if args.db == "postgres" else 50)
    rows: list[dict[str, Any]] = []
    with server:  # waits until it answers
        log(f"server up on {server.url}")
        sessions = Sessions(world, args.port, parallel=max(2, args.workers))
        if args.together:
            log(f"{len(chosen)} scenarios together: {args.duration:g} s …")
            runs = run_together(
                chosen,
                world,
                sessions,
                url=server.url,
                users=users,
                scenario_users=args.scenario_users,
                seconds=args.duration,
                warmup=args.warmup,
                think=args.think,
            )
        else:
            runs = []
            for scenario in chosen:
                count = users if scenario.mixed else args.scenario_users
                plan = _plan(world, sessions, scenario, count)
                log(f"{scenario.name}: {count} users, {args.duration:g} s …")
                payload = run_locust(
                    scenario,
                    plan,
                    url=server.url,
                    users=count,
                    seconds=args.duration,
                    warmup=args.warmup,
                    think=args.think,
                )
                runs.append((scenario, count, payload))
        for scenario, count, payload in runs:
            overall, parts = report.scenario_result(scenario.name, payload, breakdown=scenario.mixed)
            overall["title"] = scenario.title
            overall["users"] = count
            if parts:
                overall["breakdown"] = parts
            rows.append(overall)
            server_ms = overall["server_ms"]
            log(
                f"  {scenario.name}: {overall['requests']:,} requests, {overall['rps']:.1f}/s, "
                f"{overall['errors']} errors, server p50 {report.ms(server_ms['p50'])} "
                f"p95 {report.ms(server_ms['p95'])} ms, {report.query_range(overall)} queries"
            )
        locked = server.log_count("database is locked")
        crashed = server.log_count("Traceback")
        logins = sessions.logins
    floor = next((row for row in rows if row["name"] == "floor"), None)
    report.add_floor_ratios(rows, floor)
    for row in rows:
        report.add_floor_ratios(row.get("breakdown", []), floor)
    log("server stopped; verifying the audit chain")
    verdict = audit_verdict()
    log(verdict)
    result: dict[str, Any] = {
        "meta": {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "scale": args.scale,
            "db": args.db,
            "database": database.label,
            "seed": args.seed,
            "commit": _commit(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": _load(),
            "server_workers": args.workers,
            "users": users,
            "scenario_users": args.scenario_users,
            "duration_s": args.duration,
            "together": bool(args.together),
            "warmup_s": args.warmup,
            "think": args.think.replace(",", "–"),
            "logins": logins,
            "database_locked": locked,
            "server_tracebacks": crashed,
            "audit_verify": verdict,
            "versions": _versions(),
            "generation": database.generation,
        },
        "scenarios": rows,
    }
    result["targets"] = report.targets(result)
    name = f"{started:%Y-%m-%d}-{args.scale}-{args.db}.json"
    md_path = report.write(result, (args.out or RESULTS) / name)
    print()
    print(md_path.read_text(encoding="utf-8"))
    failed = sum(row["errors"] for row in rows)
    # A scenario that sent nothing checked nothing (a task that cannot pick an id raises inside locust,
    # which is not a failed request): that fails the run too.
    idle = [row["name"] for row in rows if not row["requests_all"]]
    if failed or verdict.startswith("BROKEN") or crashed or idle:
        print(
            f"FAILED: {failed} request errors, {crashed} server tracebacks, audit: {verdict}"
            + (f"; no request at all from {', '.join(idle)}" if idle else ""),
            file=sys.stderr,
        )
        return 1
    return 0


def _latest(directory: Path, scale: str, db: str) -> dict[str, Any] | None:
    found = sorted(directory.glob(f"*-{scale}-{db}.json"))
    return json.loads(found[-1].read_text(encoding="utf-8")) if found else None


def command_compare(args: argparse.Namespace) -> int:
    directory = args.out or RESULTS
    small, large = _latest(directory, args.small, args.db), _latest(directory, args.large, args.db)
    if small is None or large is None:
        missing = args.small if small is None else args.large
        print(
            f"No {missing} results for {args.db} in {directory}: run make bench SCALE={missing} DB={args.db}"
        )
        return 1
    text = report.compare(small, large)
    path = directory / f"{datetime.now(UTC):%Y-%m-%d}-compare-{args.small}-{args.large}-{args.db}.md"
    path.write_text(text, encoding="utf-8")
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="generate (or reuse) the data set, serve it, load it, report")
    run.add_argument("--scale", choices=["smoke", "clinic", "chain"], default="smoke")
    run.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--duration", type=parse_duration, default=30.0, help="measured time per scenario")
    run.add_argument(
        "--warmup", type=parse_duration, default=2.0, help="not counted, after all users started"
    )
    run.add_argument("--users", type=int, default=0, help="mixed workload users (default 50 SQLite, 200 PG)")
    run.add_argument(
        "--scenario-users",
        type=int,
        default=0,
        help="closed-loop users per single screen (default: --workers)",
    )
    run.add_argument("--think", default="1,5", help="min,max seconds between a mixed user's actions")
    run.add_argument("--workers", type=int, default=0, help="gunicorn sync workers (default 2 SQLite, 4 PG)")
    run.add_argument("--port", type=int, default=8765)
    run.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    run.add_argument("--scenarios", type=lambda text: set(text.split(",")), default=None)
    run.add_argument(
        "--together",
        action="store_true",
        help="every scenario at once in one locust process (a quick harness check: make bench-smoke)",
    )
    run.add_argument(
        "--regenerate", action="store_true", help="make the data set again even if it is current"
    )
    run.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    run.set_defaults(handler=command_run)
    comparison = commands.add_parser("compare", help="p95 at the large scale / p95 at the small one")
    comparison.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    comparison.add_argument("--small", default="smoke")
    comparison.add_argument("--large", default="chain")
    comparison.add_argument("--out", type=Path, default=None)
    comparison.set_defaults(handler=command_compare)
    args = parser.parse_args(argv)
    unknown = (args.scenarios or set()) - {s.name for s in SCENARIOS} if args.command == "run" else set()
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    handler: Any = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())

"""The scenarios of ``make bench``, for locust (run by bench/run.py; not meant to be started by hand).

Every simulated user works through sessions and tokens that the harness opened beforehand through the real
sign-in form (see ``BENCH_PLAN``), so the load phase measures the screens, not argon2. Each response's
``Server-Timing`` header (added by mesoclinic.floor.ServerTimingMiddleware) is recorded with the client's
round trip; the samples go to ``BENCH_SAMPLES`` as JSON when the test stops.

Environment: BENCH_PLAN (JSON written by the harness), BENCH_SAMPLES (output path), BENCH_WARMUP (seconds
after all users have started during which samples are not kept for the figures; errors always count),
BENCH_THINK ("min,max" seconds between a mixed-workload user's actions; default 1,5).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from locust import FastHttpUser, between, constant, events, task

from bench.names import FAMILY, GIVEN_FEMALE, GIVEN_MALE
from bench.report import parse_server_timing

PLAN: dict[str, Any] = (
    json.loads(Path(os.environ["BENCH_PLAN"]).read_text(encoding="utf-8"))
    if "BENCH_PLAN" in os.environ
    else {}
)
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP", "1"))
THINK = tuple(float(part) for part in os.environ.get("BENCH_THINK", "1,5").split(","))

_RESULT_LINK = re.compile(r'href="/patients/(\d+)/"')

# name, started (epoch s), client ms, status, app ms, cpu ms, db ms, queries, error (or None)
Sample = tuple[str, float, float, int, float | None, float | None, float | None, int | None, str | None]
SAMPLES: list[Sample] = []
STATE: dict[str, float] = {"measure_from": float("inf"), "stopped_at": 0.0}
_NEXT: dict[str, itertools.count[int]] = {}


def _all_started(user_count: int, **kwargs: Any) -> None:
    STATE["measure_from"] = time.time() + WARMUP_SECONDS


def _write_samples(**kwargs: Any) -> None:
    STATE["stopped_at"] = time.time()
    target = os.environ.get("BENCH_SAMPLES")
    if target:
        payload = {
            "measure_from": STATE["measure_from"],
            "stopped_at": STATE["stopped_at"],
            "samples": SAMPLES,
        }
        Path(target).write_text(json.dumps(payload), encoding="utf-8")


events.spawning_complete.add_listener(_all_started)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_write_samples)  # type: ignore[no-untyped-call]


def _take(pool: str) -> dict[str, Any]:
    """The next session or token of a persona, round robin (more users than logins share them)."""
    entries: list[dict[str, Any]] = PLAN[pool]
    counter = _NEXT.setdefault(pool, itertools.count())
    return entries[next(counter) % len(entries)]


class BenchUser(FastHttpUser):
    """Shared plumbing: one persona's session (cookies) or token, and a recorded request helper."""

    abstract = True
    pool = ""  # key of PLAN holding this persona's sessions or tokens ("" for anonymous)
    scenario = ""

    def on_start(self) -> None:
        self.identity: dict[str, Any] = _take(self.pool) if self.pool else {}
        clinic = PLAN["clinics"][str(self.identity.get("clinic", PLAN["floor_clinic"]))]
        self.patient_ids: list[int] = clinic["patients"]
        self.searches: list[str] = clinic["searches"]
        # Patients with an intake, patients who received preparations, lots drawn into preparations.
        self.screened: list[int] = clinic.get("screened") or self.patient_ids
        self.treated: list[int] = clinic.get("treated") or self.patient_ids
        self.lots: list[int] = clinic.get("lots", [])
        # Treatments: sessions, active plans (with a practitioner for the gate), open sessions to chart.
        self.sessions: list[int] = clinic.get("sessions", [])
        self.plans: list[list[int]] = clinic.get("plans", [])
        self.open_sessions: list[int] = clinic.get("open_sessions", [])
        self.chart_bodies: dict[str, Any] = clinic.get("chart_bodies", {})
        # Scheduling: busy days of the calendar (clinic-local dates), plans with sessions left to book.
        self.calendar_days: list[str] = clinic.get("calendar_days", [])
        self.series_plans: list[int] = clinic.get("series_plans", [])
        # Outcomes: the plans with the most sessions (their progress pages have the most timepoints).
        self.progress_plans: list[int] = clinic.get("progress_plans", [])
        self.headers: dict[str, str] = {}
        if "sessionid" in self.identity:
            self.headers["Cookie"] = (
                f"sessionid={self.identity['sessionid']}; csrftoken={self.identity['csrftoken']}"
            )
        if "token" in self.identity:
            self.headers["Authorization"] = f"Bearer {self.identity['token']}"

    def call(
        self,
        name: str,
        method: str,
        path: str,
        expect: int,
        *,
        form: dict[str, str] | None = None,
        json_body: Any = None,
        extra_headers: dict[str, str] | None = None,
    ) -> str:
        headers = {**self.headers, **(extra_headers or {})}
        data = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(form)
        started = time.time()
        clock = time.perf_counter()
        with self.client.request(
            method,
            path,
            name=name,
            data=data,
            json=json_body,
            headers=headers,
            catch_response=True,
            allow_redirects=False,
        ) as response:
            client_ms = (time.perf_counter() - clock) * 1000
            status = int(response.status_code or 0)
            timing = parse_server_timing(str(response.headers.get("Server-Timing", "")) if status else "")
            error: str | None = None
            if status != expect:
                detail = str(getattr(response, "error", "") or "")[:120]
                error = f"HTTP {status} (expected {expect}) {method} {name}" + (
                    f": {detail}" if detail else ""
                )
            elif "app" not in timing:
                error = f"no Server-Timing header on {method} {name} (is BENCH_FLOOR on?)"
            if error:
                response.failure(error)
            else:
                response.success()
            queries = timing.get("queries")
            SAMPLES.append(
                (
                    name,
                    started,
                    client_ms,
                    status,
                    timing.get("app"),
                    timing.get("cpu"),
                    timing.get("db"),
                    int(queries) if queries is not None else None,
                    error,
                )
            )
            return str(response.text or "") if status == expect else ""

    # --- what staff do ---------------------------------------------------------------------------------

    def search_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/patients/?q={_quote(random.choice(self.searches))}", 200)

    def search_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/patients?q={_quote(random.choice(self.searches))}", 200)

    def chart_ui(self, name: str, patient_id: int | None = None) -> str:
        return self.call(name, "GET", f"/patients/{patient_id or random.choice(self.patient_ids)}/", 200)

    def chart_with_panel(self, name: str, patient_id: int | None = None) -> None:
        """What a browser does to show a patient: the page, then the intake and screening section that the
        page loads with htmx (templates/screening/_panel_loader.html)."""
        patient = patient_id or random.choice(self.patient_ids)
        self.chart_ui(f"{name}: open chart", patient)
        self.screening_panel(f"{name}: screening panel (htmx)", patient)

    def screening_panel(self, name: str, patient_id: int | None = None) -> str:
        patient = patient_id or random.choice(self.patient_ids)
        return self.call(
            name,
            "GET",
            f"/screening/patients/{patient}/panel/",
            200,
            extra_headers={"HX-Request": "true", "HX-Current-URL": f"/patients/{patient}/"},
        )

    def screening_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/screening/patients/{random.choice(self.screened)}/", 200)

    def screening_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/patients/{random.choice(self.screened)}/screening", 200)

    def stock_ui(self, name: str) -> str:
        return self.call(name, "GET", "/formulary/stock/", 200)

    def stock_api(self, name: str) -> str:
        return self.call(name, "GET", "/api/v1/formulary/stock", 200)

    def recall_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/formulary/lots/{random.choice(self.lots)}/exposure/", 200)

    def recall_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/formulary/lots/{random.choice(self.lots)}/exposure", 200)

    def patient_lots_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/formulary/patients/{random.choice(self.treated)}/lots/", 200)

    def patient_lots_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/formulary/patients/{random.choice(self.treated)}/lots", 200)

    def chart_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/patients/{random.choice(self.patient_ids)}", 200)

    def access_log(self, name: str) -> str:
        return self.call(name, "GET", f"/patients/{random.choice(self.patient_ids)}/access/", 200)

    def create_api(self, name: str) -> str:
        return self.call(name, "POST", "/api/v1/patients", 201, json_body=new_patient())

    def create_ui(self, name: str) -> str:
        form = {**new_patient(), "csrfmiddlewaretoken": self.identity["csrftoken"]}
        return self.call(name, "POST", "/patients/new/", 302, form=form)

    def session_chart_ui(self, name: str, session_id: int | None = None) -> str:
        session = session_id or random.choice(self.open_sessions)
        return self.call(name, "GET", f"/treatments/sessions/{session}/chart/", 200)

    def session_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/sessions/{random.choice(self.sessions)}", 200)

    def chart_save_api(self, name: str, session_id: int | None = None) -> str:
        """Save an open session's chart again (the body bench/run.py's ``chart_body`` made of it). With a
        browser's session the API wants the CSRF token in a header."""
        session = session_id or random.choice(self.open_sessions)
        headers = {"X-CSRFToken": self.identity["csrftoken"]} if "csrftoken" in self.identity else {}
        return self.call(
            name,
            "PUT",
            f"/api/v1/sessions/{session}/chart",
            200,
            json_body=self.chart_bodies[str(session)],
            extra_headers=headers,
        )

    def plan_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/treatments/plans/{random.choice(self.plans)[0]}/", 200)

    def gate_api(self, name: str) -> str:
        plan, practitioner = random.choice(self.plans)
        return self.call(name, "GET", f"/api/v1/plans/{plan}/gate?practitioner={practitioner}", 200)

    def cosign_ui(self, name: str) -> str:
        return self.call(name, "GET", "/treatments/cosign/", 200)

    def day_calendar_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/scheduling/?date={random.choice(self.calendar_days)}", 200)

    def week_calendar_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/scheduling/?view=week&date={random.choice(self.calendar_days)}", 200)

    def calendar_api(self, name: str) -> str:
        day = random.choice(self.calendar_days)
        return self.call(name, "GET", f"/api/v1/scheduling/calendar?date={day}", 200)

    def series_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/scheduling/series/{random.choice(self.series_plans)}/", 200)

    def progress_ui(self, name: str) -> str:
        return self.call(name, "GET", f"/outcomes/plans/{random.choice(self.progress_plans)}/", 200)

    def safety_report_ui(self, name: str) -> str:
        return self.call(name, "GET", "/safety/report/", 200)

    def signal_scan_ui(self, name: str) -> str:
        """Scan the clinic's infections for signals now (the button of the signals page): a write."""
        form = {"csrfmiddlewaretoken": self.identity["csrftoken"]}
        return self.call(name, "POST", "/safety/signals/scan/", 302, form=form)

    def series_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/scheduling/series/{random.choice(self.series_plans)}", 200)


def _quote(text: str) -> str:
    return quote(text, safe="")


def new_patient() -> dict[str, str]:
    """A walk-in patient as the front desk would type them in."""
    female = random.random() < 0.86
    origin = random.choice(["fr", "fr", "en", "es", "it", "pt", "ar"])
    given = random.choice((GIVEN_FEMALE if female else GIVEN_MALE)[origin])
    family = random.choice(FAMILY[origin])
    born = date(2026, 1, 1) - timedelta(days=int(random.triangular(18, 76, 41) * 365.25))
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": born.isoformat(),
        "sex": "female" if female else "male",
        "email": f"walk-in.{random.randrange(10**8)}@example.com",
        "phone": f"+33 6 {random.randrange(10**8):08d}",
        "preferred_language": random.choice(["fr", "en"]),
    }


# --- One scenario each: closed loop, no think time (requests/s and server time of one screen) -----------


class FloorUser(BenchUser):
    scenario = "floor"
    wait_time = constant(0)

    @task
    def floor(self) -> None:
        self.call("floor", "GET", f"/bench/floor?clinic={PLAN['floor_clinic']}", 200)


class SearchUiUser(BenchUser):
    pool = "desk"
    wait_time = constant(0)

    @task
    def search(self) -> None:
        self.search_ui("search_ui")


class SearchApiUser(BenchUser):
    pool = "desk_token"
    wait_time = constant(0)

    @task
    def search(self) -> None:
        self.search_api("search_api")


class ChartUiUser(BenchUser):
    pool = "practitioner"
    wait_time = constant(0)

    @task
    def chart(self) -> None:
        self.chart_ui("chart_ui")


class ChartApiUser(BenchUser):
    pool = "practitioner_token"
    wait_time = constant(0)

    @task
    def chart(self) -> None:
        self.chart_api("chart_api")


class CreateApiUser(BenchUser):
    pool = "desk_token"
    wait_time = constant(0)

    @task
    def create(self) -> None:
        self.create_api("create_api")


class AccessLogUser(BenchUser):
    pool = "director"
    wait_time = constant(0)

    @task
    def access(self) -> None:
        self.access_log("access_log")


class ScreeningPanelUser(BenchUser):
    """The htmx request of the patient chart, measured on its own (chart_ui is the page without it)."""

    pool = "practitioner"
    wait_time = constant(0)

    @task
    def panel(self) -> None:
        self.screening_panel("screening_panel")


class ScreeningUiUser(BenchUser):
    pool = "practitioner"
    wait_time = constant(0)

    @task
    def screening(self) -> None:
        self.screening_ui("screening_ui")


class ScreeningApiUser(BenchUser):
    pool = "practitioner_token"
    wait_time = constant(0)

    @task
    def screening(self) -> None:
        self.screening_api("screening_api")


class StockUiUser(BenchUser):
    pool = "desk"
    wait_time = constant(0)

    @task
    def stock(self) -> None:
        self.stock_ui("stock_ui")


class StockApiUser(BenchUser):
    pool = "desk_token"
    wait_time = constant(0)

    @task
    def stock(self) -> None:
        self.stock_api("stock_api")


class RecallUiUser(BenchUser):
    pool = "director"
    wait_time = constant(0)

    @task
    def recall(self) -> None:
        self.recall_ui("recall_ui")


class RecallApiUser(BenchUser):
    pool = "practitioner_token"
    wait_time = constant(0)

    @task
    def recall(self) -> None:
        self.recall_api("recall_api")


class PatientLotsUiUser(BenchUser):
    pool = "practitioner"
    wait_time = constant(0)

    @task
    def received_lots(self) -> None:
        self.patient_lots_ui("patient_lots_ui")


class PatientLotsApiUser(BenchUser):
    pool = "practitioner_token"
    wait_time = constant(0)

    @task
    def received_lots(self) -> None:
        self.patient_lots_api("patient_lots_api")


class SessionChartUiUser(BenchUser):
    pool = "practitioner"
    wait_time = constant(0)

    @task
    def chart(self) -> None:
        self.session_chart_ui("session_chart_ui")


class SessionApiUser(BenchUser):
    pool = "practitioner_token"
    wait_time = constant(0)

    @task
    def session(self) -> None:
        self.session_api("session_api")


class ChartSaveApiUser(BenchUser):
    pool = "practitioner_token"
    wait_time = constant(0)

    @task
    def save(self) -> None:
        self.chart_save_api("chart_save_api")


class PlanUiUser(BenchUser):
    pool = "practitioner"
    wait_time = constant(0)

    @task
    def plan(self) -> None:
        self.plan_ui("plan_ui")


class GateApiUser(BenchUser):
    pool = "desk_token"
    wait_time = constant(0)

    @task
    def gate(self) -> None:
        self.gate_api("gate_api")


class CosignUiUser(BenchUser):
    pool = "director"
    wait_time = constant(0)

    @task
    def queue(self) -> None:
        self.cosign_ui("cosign_ui")


class DayCalendarUiUser(BenchUser):
    pool = "desk"
    wait_time = constant(0)

    @task
    def day(self) -> None:
        self.day_calendar_ui("day_calendar_ui")


class WeekCalendarUiUser(BenchUser):
    pool = "desk"
    wait_time = constant(0)

    @task
    def week(self) -> None:
        self.week_calendar_ui("week_calendar_ui")


class CalendarApiUser(BenchUser):
    pool = "desk_token"
    wait_time = constant(0)

    @task
    def week(self) -> None:
        self.calendar_api("calendar_api")


class SeriesUiUser(BenchUser):
    pool = "desk"
    wait_time = constant(0)

    @task
    def series(self) -> None:
        self.series_ui("series_ui")


class SeriesApiUser(BenchUser):
    pool = "desk_token"
    wait_time = constant(0)

    @task
    def series(self) -> None:
        self.series_api("series_api")


class ProgressUiUser(BenchUser):
    pool = "practitioner"
    wait_time = constant(0)

    @task
    def progress(self) -> None:
        self.progress_ui("progress_ui")


class SafetyReportUiUser(BenchUser):
    pool = "director"
    wait_time = constant(0)

    @task
    def report(self) -> None:
        self.safety_report_ui("safety_report_ui")


class SignalScanUiUser(BenchUser):
    pool = "director"
    wait_time = constant(0)

    @task
    def scan(self) -> None:
        self.signal_scan_ui("signal_scan_ui")


# --- The mixed persona workload: a clinic's staff at work, with think time --------------------------------


class DeskUser(BenchUser):
    """Front desk: looks patients up (and often opens one: the page and its screening panel), registers
    walk-ins, checks the stock."""

    pool = "desk"
    weight = 5
    wait_time = between(*THINK)

    @task(8)
    def look_up(self) -> None:
        page = self.search_ui("mixed desk: search")
        found = _RESULT_LINK.findall(page)
        if found and random.random() < 0.6:
            self.chart_with_panel("mixed desk", int(random.choice(found)))

    @task(1)
    def register(self) -> None:
        self.create_ui("mixed desk: create")

    @task(1)
    def stock(self) -> None:
        self.stock_ui("mixed desk: stock")

    @task(1)
    def series(self) -> None:
        """Where a patient's series stands (the plan page), then whether today's session may start."""
        if self.plans:
            self.plan_ui("mixed desk: plan")
            self.gate_api("mixed desk: gate")

    @task(2)
    def calendar(self) -> None:
        """The day's calendar; now and then the week, or the next sessions of a series to book."""
        if self.calendar_days:
            self.day_calendar_ui("mixed desk: day calendar")
            if random.random() < 0.3:
                self.week_calendar_ui("mixed desk: week calendar")
        if self.series_plans and random.random() < 0.3:
            self.series_ui("mixed desk: series proposal")


class PractitionerUser(BenchUser):
    """Practitioner: opens the charts of the day's patients (page and screening panel), screens and reviews
    before a session, looks up which lots a patient received."""

    pool = "practitioner"
    weight = 4
    wait_time = between(*THINK)

    @task(6)
    def open_chart(self) -> None:
        self.chart_with_panel("mixed practitioner")

    @task(2)
    def screening(self) -> None:
        self.screening_ui("mixed practitioner: screening")

    @task(1)
    def patient_lots(self) -> None:
        self.patient_lots_ui("mixed practitioner: patient lots")

    @task(1)
    def progress(self) -> None:
        if self.progress_plans:
            self.progress_ui("mixed practitioner: progress")

    @task(2)
    def chart_session(self) -> None:
        """The session of the day: its plan, the body map, then the chart saved."""
        if self.open_sessions:
            session = random.choice(self.open_sessions)
            if self.plans:
                self.plan_ui("mixed practitioner: plan")
            self.session_chart_ui("mixed practitioner: session chart", session)
            self.chart_save_api("mixed practitioner: chart save", session)


class DirectorUser(BenchUser):
    """Medical director (signed in with TOTP): reviews who accessed records, follows up recalls (the recall
    report of a lot), opens charts."""

    pool = "director"
    weight = 1
    wait_time = between(*THINK)

    @task(2)
    def review_access(self) -> None:
        self.access_log("mixed director: access log")

    @task(2)
    def recall_report(self) -> None:
        if self.lots:
            self.recall_ui("mixed director: recall report")

    @task(1)
    def open_chart(self) -> None:
        self.chart_with_panel("mixed director")

    @task(1)
    def cosign_queue(self) -> None:
        self.cosign_ui("mixed director: co-signature queue")

    @task(1)
    def safety(self) -> None:
        """The safety report; now and then a scan of the infections for signals."""
        self.safety_report_ui("mixed director: safety report")
        if random.random() < 0.2:
            self.signal_scan_ui("mixed director: signal scan")


# All scenarios at once (bench/run.py --together): how many users of each single-screen class, the rest of
# the users going to the mixed workload's classes by their weights.
for _name, _count in json.loads(os.environ.get("BENCH_FIXED", "{}")).items():
    globals()[_name].fixed_count = int(_count)

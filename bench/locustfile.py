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

PLAN: dict[str, Any] = (
    json.loads(Path(os.environ["BENCH_PLAN"]).read_text(encoding="utf-8"))
    if "BENCH_PLAN" in os.environ
    else {}
)
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP", "1"))
THINK = tuple(float(part) for part in os.environ.get("BENCH_THINK", "1,5").split(","))

_TIMING = re.compile(r'(\w+);(?:dur=([0-9.]+)|desc="?([0-9]+)"?)')
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


def parse_server_timing(header: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, duration, description in _TIMING.findall(header):
        values[name] = float(duration or description)
    return values


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
    ) -> str:
        headers = dict(self.headers)
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

    def chart_api(self, name: str) -> str:
        return self.call(name, "GET", f"/api/v1/patients/{random.choice(self.patient_ids)}", 200)

    def access_log(self, name: str) -> str:
        return self.call(name, "GET", f"/patients/{random.choice(self.patient_ids)}/access/", 200)

    def create_api(self, name: str) -> str:
        return self.call(name, "POST", "/api/v1/patients", 201, json_body=new_patient())

    def create_ui(self, name: str) -> str:
        form = {**new_patient(), "csrfmiddlewaretoken": self.identity["csrftoken"]}
        return self.call(name, "POST", "/patients/new/", 302, form=form)


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


# --- The mixed persona workload: a clinic's staff at work, with think time --------------------------------


class DeskUser(BenchUser):
    """Front desk: looks patients up (and often opens one), registers walk-ins."""

    pool = "desk"
    weight = 5
    wait_time = between(*THINK)

    @task(8)
    def look_up(self) -> None:
        page = self.search_ui("mixed desk: search")
        found = _RESULT_LINK.findall(page)
        if found and random.random() < 0.6:
            self.chart_ui("mixed desk: open chart", int(random.choice(found)))

    @task(1)
    def register(self) -> None:
        self.create_ui("mixed desk: create")


class PractitionerUser(BenchUser):
    """Practitioner: opens the charts of the day's patients."""

    pool = "practitioner"
    weight = 4
    wait_time = between(*THINK)

    @task
    def open_chart(self) -> None:
        self.chart_ui("mixed practitioner: open chart")


class DirectorUser(BenchUser):
    """Medical director (signed in with TOTP): reviews who accessed records, opens charts."""

    pool = "director"
    weight = 1
    wait_time = between(*THINK)

    @task(3)
    def review_access(self) -> None:
        self.access_log("mixed director: access log")

    @task(1)
    def open_chart(self) -> None:
        self.chart_ui("mixed director: open chart")
